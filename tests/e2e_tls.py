#!/usr/bin/env python3
"""End-to-end tests of TLS in the programs, with certificates made by
tls_certs.sh: tcpchat-server with tls+line and tls+binary listeners beside
plain ones; tcpchat-client --tls chatting with a plain client; openssl
s_client chatting on the tls+line port; clients refused for an expired
certificate, a wrong host name or a wrong CA (exit 1, one stderr line with
the reason) while the server keeps serving; a plain socket on a TLS port;
--tls-require-cert; SIGHUP replacing the certificate without dropping
anyone, and a broken key file on SIGHUP keeping the old one.

usage: e2e_tls.py SERVER CLIENT
Every wait has a deadline; every process is killed at the end.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SERVER, CLIENT = sys.argv[1:3]
CERTS_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "tls_certs.sh")
DEADLINE = 10.0

procs = []
results = {"passed": 0, "failed": 0}
D = ""  # the certificate directory


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        print(f"ok - {name}")
    else:
        results["failed"] += 1
        print(f"FAIL - {name} {detail}")


def cert(name):
    return os.path.join(D, name)


class Lines:
    """The lines of a stream, read by a thread, waited on with a
    deadline."""

    def __init__(self, stream):
        self.lines = []
        self.cv = threading.Condition()
        self.done = False
        threading.Thread(target=self._pump, args=(stream,),
                         daemon=True).start()

    def _pump(self, stream):
        for raw in iter(stream.readline, b""):
            with self.cv:
                self.lines.append(raw.decode("utf-8", "replace")
                                  .rstrip("\r\n"))
                self.cv.notify_all()
        with self.cv:
            self.done = True
            self.cv.notify_all()

    def wait(self, pattern, start=0, timeout=DEADLINE):
        """The first match of pattern in a line from index start on."""
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for line in self.lines[start:]:
                    m = re.search(pattern, line)
                    if m:
                        return m
                left = end - time.monotonic()
                if left <= 0 or self.done:
                    return None
                self.cv.wait(left)

    def mark(self):
        with self.cv:
            return len(self.lines)

    def text(self):
        with self.cv:
            return "\n".join(self.lines)


class Server:
    """tcpchat-server with the listeners given (in that order), its
    ports in self.ports."""

    def __init__(self, listeners, *args):
        cmd = [SERVER, "--log-level", "debug"]
        for spec in listeners:
            cmd += ["--listen", spec]
        self.p = subprocess.Popen(cmd + list(args), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        procs.append(self.p)
        self.err = Lines(self.p.stderr)
        self.ok = self.err.wait(r"server running") is not None
        self.ports = [int(m.group(1)) for m in
                      re.finditer(r"listening on \S+:(\d+)",
                                  self.err.text())]
        self.ok = self.ok and len(self.ports) == len(listeners)
        if not self.ok:
            print(self.err.text())

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return "timeout"


class Proc:
    """A program with its stdin a pipe and its outputs read by threads."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        procs.append(self.p)
        self.out = Lines(self.p.stdout)
        self.err = Lines(self.p.stderr)

    def send(self, line):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def finish(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            return self.p.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return "timeout"


class LinePeer:
    """An nc-like socket on a plain line listener."""

    def __init__(self, port, name):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          timeout=DEADLINE)
        self.buf = b""
        self.send(name)

    def send(self, text):
        self.s.sendall(text.encode() + b"\n")

    def expect(self, pattern, timeout=DEADLINE):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.decode("utf-8", "replace").rstrip("\r")
                if re.search(pattern, line):
                    return line
            self.s.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = self.s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not data:
                break
            self.buf += data
        return None

    def close(self):
        self.s.close()


def tls_client(port, name, *args, text=None):
    """tcpchat-client over TLS to 127.0.0.1:port: with text, sends it and
    returns (exit code, stdout, stderr lines); without, a listen-only
    client (a Proc) once connected (None if it did not connect)."""
    cmd = [CLIENT, "--server", f"127.0.0.1:{port}", "--name", name,
           "--no-reconnect", *args]
    if text is not None:
        r = subprocess.run(cmd + ["--quiet"], input=text, capture_output=True,
                           text=True, timeout=DEADLINE)
        return r.returncode, r.stdout, [l for l in r.stderr.splitlines()
                                        if l.strip()]
    p = Proc(cmd + ["--listen-only"])
    if not p.out.wait(r"^=== connected to "):
        print("client did not connect:", p.err.text())
        return None
    return p


def refused(what, port, args, reason, srv, keeper, carol, tls_port=True):
    """A client that must fail: exit 1, one stderr line naming reason; the
    server logs the failed handshake (on a TLS port) and keeps serving
    keeper."""
    mark = srv.err.mark()
    code, _, err = tls_client(port, "refused", *args, text="never sent\n")
    check(f"{what}: exit 1", code == 1, f"{code} {err}")
    check(f"{what}: one stderr line with '{reason}'",
          len(err) == 1 and re.search(reason, err[0]) is not None, str(err))
    print(f"# {what}: {err}")
    if tls_port:
        check(f"{what}: the server logs the failed handshake",
              srv.err.wait(r"info .*conn \d+: TLS handshake failed: \S",
                           mark) is not None)
    t = f"after {what}"
    carol.send(t)
    check(f"{what}: the server keeps serving",
          keeper.out.wait(rf"carol: {re.escape(t)}$") is not None)


def s_client(port, *args):
    """openssl s_client -quiet on 127.0.0.1:port trusting ca.pem."""
    return Proc(["openssl", "s_client", "-quiet", "-connect",
                 f"127.0.0.1:{port}", "-CAfile", cert("ca.pem"),
                 "-verify_return_error", *args])


def server_cn(port):
    """The CN of the certificate the server at port shows."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-CAfile", cert("ca.pem"), "-verify_return_error"],
                       input="", capture_output=True, text=True,
                       timeout=DEADLINE)
    m = re.search(r"^subject=.*CN ?= ?([^,\s]+)", r.stdout, re.M)
    return m.group(1) if m else None


def wait_cn(port, want):
    end = time.monotonic() + DEADLINE
    cn = server_cn(port)
    while cn != want and time.monotonic() < end:
        cn = server_cn(port)
    return cn


def test_chat():
    live = os.path.join(D, "live")
    os.mkdir(live)
    live_pem = os.path.join(live, "srv.pem")
    live_key = os.path.join(live, "srv.key")
    shutil.copy(cert("server.pem"), live_pem)
    shutil.copy(cert("server.key"), live_key)
    srv = Server(["tls+line@127.0.0.1:0", "tls@127.0.0.1:0",
                  "line@127.0.0.1:0", "binary@127.0.0.1:0"],
                 "--tls-cert", live_pem, "--tls-key", live_key)
    check("server with TLS and plain listeners starts", srv.ok,
          srv.err.text())
    if not srv.ok:
        return
    tline, tbin, pline, pbin = srv.ports

    ca = ("--tls-ca", cert("ca.pem"))
    alice = tls_client(tbin, "alice", *ca)
    check("tcpchat-client --tls-ca connects to the TLS port", alice)
    carol = LinePeer(pline, "carol")
    check("a plain line user joins the same chat",
          carol.expect(r"^=== welcome carol$") is not None)
    if not alice:
        return
    carol.send("hello over plain TCP")
    check("the TLS client receives the plain user's text",
          alice.out.wait(r"^carol: hello over plain TCP$") is not None)
    code, _, err = tls_client(tbin, "bob", "--tls", *ca,
                              text="hi from bob over TLS\n")
    check("tcpchat-client --tls sends and exits 0", code == 0, str(err))
    check("the plain user receives it",
          carol.expect(r"^bob: hi from bob over TLS$") is not None)
    code, _, err = tls_client(tline, "lineuser", "--codec", "line", *ca,
                              "--tls-server-name", "localhost",
                              text="line codec inside TLS\n")
    check("tcpchat-client --codec line on tls+line", code == 0, str(err))
    check("its text arrives",
          carol.expect(r"^lineuser: line codec inside TLS$") is not None)

    # openssl s_client is a TLS nc
    sc = s_client(tline, "-verify_ip", "127.0.0.1")
    sc.send("dave")
    check("s_client gets the welcome",
          sc.out.wait(r"^=== welcome dave$") is not None, sc.err.text())
    sc.send("typed into s_client")
    check("a TLS client receives s_client's text",
          alice.out.wait(r"^dave: typed into s_client$") is not None)
    carol.send("to dave")
    check("s_client receives a plain user's text",
          sc.out.wait(r"^carol: to dave$") is not None)
    sc.send("/quit")
    sc.finish()

    # a plain socket on a TLS port: one line about TLS, then closed
    for port, what in ((tline, "tls+line"), (tbin, "tls+binary")):
        s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        s.sendall(b"eve\n")
        got = b""
        try:
            while True:
                data = s.recv(4096)
                if not data:
                    break
                got += data
        except OSError:
            pass
        s.close()
        text = got.decode("utf-8", "replace")
        check(f"plain socket on {what}: one line about TLS, then closed",
              "TLS" in text and text.count("\n") == 1, repr(text))

    # failures
    refused("wrong CA", tbin, ["--tls-ca", cert("other-ca.pem")],
            "certificate verify failed", srv, alice, carol)
    refused("TLS client on a plain port", pbin, list(ca),
            "wrong version number|packet length|unexpected eof", srv, alice,
            carol, tls_port=False)
    code, _, err = tls_client(tbin, "plainc", text="x\n")
    check("plain tcpchat-client on a TLS port: exit 1 with a message",
          code == 1 and len(err) >= 1, f"{code} {err}")

    # SIGHUP with a new certificate: new connections see it, alice stays
    check("the server shows server.pem", server_cn(tbin) == "localhost")
    shutil.copy(cert("server2.pem"), live_pem)
    shutil.copy(cert("server2.key"), live_key)
    srv.p.send_signal(signal.SIGHUP)
    cn = wait_cn(tbin, "localhost-2")
    check("after SIGHUP new connections see the new certificate",
          cn == "localhost-2", str(cn))
    carol.send("after the reload")
    check("a client connected before the reload is still there",
          alice.out.wait(r"^carol: after the reload$") is not None)

    # SIGHUP with a broken key: a warning, the old one stays
    mark = srv.err.mark()
    with open(live_key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nbroken\n")
    srv.p.send_signal(signal.SIGHUP)
    check("a broken key on SIGHUP is logged as a warning",
          srv.err.wait(r"warn.*srv\.key", mark) is not None,
          srv.err.text()[-2000:])
    check("the old certificate still serves", server_cn(tbin) == "localhost-2")
    code, _, err = tls_client(tbin, "frank", *ca, text="still TLS\n")
    check("new TLS clients still join", code == 0, str(err))
    check("their texts arrive", carol.expect(r"^frank: still TLS$") is not None)

    carol.close()
    alice.p.send_signal(signal.SIGINT)
    alice.finish()
    check("server exits 0", srv.stop() == 0)


def test_bad_certs():
    """Servers with an expired and a wrong-host certificate."""
    for name, cases in (
            ("expired", [((), "certificate has expired")]),
            ("wronghost", [((), "IP address mismatch"),
                           (("--tls-server-name", "localhost"),
                            "hostname mismatch")])):
        srv = Server(["tls@127.0.0.1:0", "line@127.0.0.1:0"],
                     "--tls-cert", cert(f"{name}.pem"),
                     "--tls-key", cert(f"{name}.key"))
        check(f"server with {name}.pem starts", srv.ok)
        if not srv.ok:
            continue
        tbin, pline = srv.ports
        if name == "expired":
            # nobody verifying can stay: a plain client keeps watch
            keeper = Proc([CLIENT, "--server", f"127.0.0.1:{pline}",
                           "--codec", "line", "--name", "keeper",
                           "--listen-only", "--no-reconnect"])
            if not keeper.out.wait(r"^=== connected to "):
                keeper = None
        else:
            keeper = tls_client(tbin, "keeper", "--tls-ca", cert("ca.pem"),
                                "--tls-server-name", "other.example")
        check(f"{name}: a keeper connects", keeper is not None)
        carol = LinePeer(pline, "carol")
        carol.expect(r"^=== welcome carol$")
        for args, reason in cases:
            refused(f"{name} ({reason})", tbin,
                    ["--tls-ca", cert("ca.pem"), *args], reason, srv, keeper,
                    carol)
        carol.close()
        if keeper:
            keeper.p.send_signal(signal.SIGINT)
            keeper.finish()
        srv.stop()


def test_require_cert():
    srv = Server(["tls+line@127.0.0.1:0", "tls@127.0.0.1:0",
                  "line@127.0.0.1:0"],
                 "--tls-cert", cert("server.pem"), "--tls-key",
                 cert("server.key"), "--tls-ca", cert("ca.pem"),
                 "--tls-require-cert")
    check("server with --tls-require-cert starts", srv.ok)
    if not srv.ok:
        return
    tline, tbin, pline = srv.ports
    carol = LinePeer(pline, "carol")
    carol.expect(r"^=== welcome carol$")
    mine = ("--tls-ca", cert("ca.pem"), "--tls-cert", cert("client.pem"),
            "--tls-key", cert("client.key"))
    keeper = tls_client(tbin, "alice", *mine)
    check("a client with client.pem joins", keeper is not None)
    code, _, err = tls_client(tbin, "bob", *mine, text="with a cert\n")
    check("and chats", code == 0 and
          carol.expect(r"^bob: with a cert$") is not None, f"{code} {err}")
    sc = s_client(tline, "-cert", cert("client.pem"), "-key",
                  cert("client.key"))
    sc.send("dave")
    check("s_client with client.pem joins",
          sc.out.wait(r"^=== welcome dave$") is not None, sc.err.text())
    sc.send("/quit")
    sc.finish()
    if keeper:
        refused("no client certificate", tbin, ["--tls-ca", cert("ca.pem")],
                "certificate required", srv, keeper, carol)
        refused("a certificate of another CA", tbin,
                ["--tls-ca", cert("ca.pem"), "--tls-cert",
                 cert("badclient.pem"), "--tls-key", cert("badclient.key")],
                "unknown ca", srv, keeper, carol)
        keeper.p.send_signal(signal.SIGINT)
        keeper.finish()
    carol.close()
    srv.stop()


def main():
    global D
    D = tempfile.mkdtemp(prefix="tcpchat-tls-")
    try:
        r = subprocess.run(["sh", CERTS_SH, D], capture_output=True, text=True,
                           timeout=60)
        check("tls_certs.sh makes the certificates", r.returncode == 0,
              r.stderr)
        if r.returncode:
            return
        test_chat()
        test_bad_certs()
        test_require_cert()
    finally:
        shutil.rmtree(D, ignore_errors=True)


try:
    main()
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
print(f"{results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
