#!/usr/bin/env python3
"""Smoke test of tcpchat-bench against tcpchat-server: about a second of
traffic per run with tiny parameters (broadcast, rooms, a room among
rooms), then every message must have arrived; and a small login storm.
Then short durable runs (acknowledged posting) against tcpchat-server
with --store, and against Redis (append-only file, everysec) and NATS
JetStream when they are installed: every run must get acknowledgments
and print a well-formed RESULT line.  When both programs have TLS, a
short run over TLS against a tls+binary listener (a throwaway
certificate made with the openssl command) must deliver everything.
usage: bench_smoke.py SERVER BENCH"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

server, bench = sys.argv[1:3]
failed = 0
passed = 0

RESULT_RE = re.compile(r"^RESULT( [a-z0-9_]+=[^ =]+)+$")
DURABLE_KEYS = ["proto", "mode", "senders", "size", "window", "duration",
                "sent_per_s", "acked_per_s", "acked", "refused", "unacked",
                "p50_us", "p99_us", "p999_us", "max_us", "server_cpu_s",
                "server_cpu_s_per_1k", "server_rss_kb", "server_hwm_kb",
                "bench_cpu_pct", "connections", "setup_s", "closed",
                "samples", "stray"]


def result_of(stdout):
    """The last RESULT line and its keys and values, in order."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        return None, []
    return lines[-1], [kv.split("=", 1) for kv in lines[-1].split()[1:]]


def report(ok, what, out):
    global passed
    if ok:
        print("ok - " + what)
        passed += 1
    else:
        fail(what)
        print(out.stdout[-2000:], out.stderr[-2000:])


def fail(what):
    global failed
    print("FAIL - " + what)
    failed += 1


def wait_for_line(proc, pattern, seconds=10):
    """The first match of pattern in proc's stderr, or None."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if not line:
            return None
        m = re.search(pattern, line)
        if m:
            return m
    return None


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def durable_run(proto, port, pid):
    """A short durable run; checks the acknowledgments and the RESULT
    line."""
    out = subprocess.run([bench, "--proto", proto, "--port", str(port),
                          "--server-pid", str(pid), "--mode", "durable",
                          "--senders", "2", "--window", "16",
                          "--duration", "0.5", "--warmup", "0.2",
                          "--timeout", "10"],
                         capture_output=True, text=True, timeout=60)
    line, kvs = result_of(out.stdout)
    res = dict(kvs)
    ok = (out.returncode == 0 and line is not None
          and RESULT_RE.match(line) is not None
          and [k for k, _ in kvs] == DURABLE_KEYS
          and res.get("proto") == proto and res.get("mode") == "durable"
          and int(res.get("acked", "0")) > 0
          and float(res.get("acked_per_s", "0")) > 0
          and res.get("refused") == "0" and res.get("unacked") == "0"
          and res.get("stray") == "0"
          and re.fullmatch(r"[0-9.]+", res.get("p99_us", "")) is not None)
    report(ok, f"durable {proto}: acked={res.get('acked')} "
               f"acked/s={res.get('acked_per_s')} p99_us={res.get('p99_us')}"
               f" exit={out.returncode}", out)

# Every bench client comes from 127.0.0.1, and sends as fast as it can.
NO_ADDR_LIMITS = ["--addr-conns", "0", "--addr-rate", "0",
                  "--addr-handshakes", "0", "--rate", "0", "--rate-bytes", "0"]


def start_tcpchat(listen, *extra):
    """tcpchat-server on listen (port 0) with the options extra, without
    limits; the process and the port it reports (None if it does not)."""
    srv = subprocess.Popen([server, "--listen", listen, "--idle-timeout",
                            "0", "-L", "warn", *extra, *NO_ADDR_LIMITS],
                           stderr=subprocess.PIPE, text=True)
    m = wait_for_line(srv, r"listening on \S+:(\d+) \(")
    return srv, (m.group(1) if m else None)


def fanout_runs():
    srv, port = start_tcpchat("binary@127.0.0.1:0", "--queue", "65536")
    try:
        if port is None:
            print("FAIL - server did not report its port")
            sys.exit(1)
        runs = [
            ["--mode", "throughput", "--receivers", "5", "--senders", "2",
             "--window", "32", "--duration", "1", "--warmup", "0.2"],
            ["--mode", "rate", "--rate", "500", "--receivers", "3",
             "--senders", "1", "--duration", "1", "--warmup", "0.2"],
            # protocol 2: 4 rooms of 3 members, each sending to its room
            ["--mode", "rooms", "--rooms", "4", "--members", "3", "--rate",
             "600", "--duration", "1", "--warmup", "0.2"],
            # receivers and senders in room 0 of 3, 2 idle members in the
            # others
            ["--mode", "throughput", "--receivers", "4", "--senders", "2",
             "--rooms", "3", "--members", "2", "--window", "32",
             "--duration", "1", "--warmup", "0.2"],
            # clients that never read after WELCOME
            ["--mode", "storm", "--connections", "300", "--settle", "0.2"],
        ]
        for args in runs:
            out = subprocess.run([bench, "--proto", "tcpchat", "--port", port,
                                  "--server-pid", str(srv.pid), *args],
                                 capture_output=True, text=True, timeout=60)
            res = dict(result_of(out.stdout)[1])
            if "storm" in args:
                ok = (out.returncode == 0 and res.get("connections") == "300"
                      and res.get("closed") == "0"
                      and res.get("rss_per_conn_bytes") is not None
                      and float(res.get("setup_s", "-1")) >= 0)
            else:
                ok = (out.returncode == 0 and res.get("lost") == "0"
                      and res.get("reordered") == "0"
                      and float(res.get("delivered_per_s", "0")) > 0
                      and res.get("undelivered", "0") == "0"
                      and res.get("bad_payloads", "0") == "0")
            report(ok, " ".join(args[:2]) +
                   f": delivered/s={res.get('delivered_per_s')}"
                   f" lost={res.get('lost')} reordered={res.get('reordered')}"
                   f" setup_s={res.get('setup_s')} exit={out.returncode}", out)
    finally:
        stop(srv)


def durable_tcpchat(tmp):
    help_text = subprocess.run([server, "--help"], capture_output=True,
                               text=True).stdout
    store = ["--store", os.path.join(tmp, "chat.db")]
    if "--store" not in help_text:
        print("note - tcpchat-server has no --store: durable run with the "
              "memory history")
        store = []
    srv, port = start_tcpchat("binary@127.0.0.1:0", *store)
    try:
        if port is None:
            print("FAIL - server did not report its port")
            sys.exit(1)
        durable_run("tcpchat", port, srv.pid)
    finally:
        stop(srv)


def durable_redis(tmp):
    exe = shutil.which("redis-server")
    if exe is None:
        print("skip - durable redis: no redis-server")
        return
    port = free_port()
    srv = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "yes",
                            "--appendfsync", "everysec", "--dir", tmp,
                            "--daemonize", "no", "--logfile", ""],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 10
        while not port_open(port) and time.monotonic() < end:
            if srv.poll() is not None:
                break
            time.sleep(0.02)
        durable_run("redis", port, srv.pid)
    finally:
        stop(srv)


def durable_nats(tmp):
    exe = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.access("/usr/sbin/nats-server", os.X_OK)
        else None)
    if exe is None:
        print("skip - durable nats: no nats-server")
        return
    srv = subprocess.Popen([exe, "-a", "127.0.0.1", "-p", "-1", "-js",
                            "-sd", tmp], stderr=subprocess.PIPE, text=True)
    try:
        m = wait_for_line(srv, r"Listening for client connections on "
                               r"\S+:(\d+)")
        if m is None:
            fail("nats-server did not report its port")
            return
        durable_run("nats", m.group(1), srv.pid)
    finally:
        stop(srv)


def make_cert(tmp):
    """A self-signed EC P-256 certificate for 127.0.0.1 in tmp; the
    paths of the certificate and key, or None without openssl."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    out = subprocess.run([exe, "req", "-x509", "-newkey", "ec",
                          "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                          "-keyout", key, "-out", cert, "-days", "1",
                          "-subj", "/CN=localhost",
                          "-addext", "subjectAltName=IP:127.0.0.1"],
                         capture_output=True, text=True, timeout=60)
    return (cert, key) if out.returncode == 0 else None


def tls_run(tmp):
    """A few hundred messages over TLS, the certificate verified."""
    bench_help = subprocess.run([bench, "--help"], capture_output=True,
                                text=True).stdout
    server_help = subprocess.run([server, "--help"], capture_output=True,
                                 text=True).stdout
    if "--tls-ca" not in bench_help or "has no TLS" in bench_help:
        print("skip - tls: tcpchat-bench built without TLS")
        return
    if "--tls-cert" not in server_help:
        print("skip - tls: tcpchat-server built without TLS")
        return
    files = make_cert(tmp)
    if files is None:
        print("skip - tls: cannot make a certificate (openssl)")
        return
    srv, port = start_tcpchat("tls+binary@127.0.0.1:0", "--tls-cert",
                              files[0], "--tls-key", files[1])
    try:
        if port is None:
            fail("tls: server did not report its port")
            return
        out = subprocess.run([bench, "--proto", "tcpchat", "--port",
                              port, "--server-pid", str(srv.pid),
                              "--tls", "--tls-ca", files[0], "--mode",
                              "rate", "--rate", "400", "--receivers", "3",
                              "--senders", "2", "--duration", "0.5",
                              "--warmup", "0.2", "--timeout", "10"],
                             capture_output=True, text=True, timeout=60)
        res = dict(result_of(out.stdout)[1])
        ok = (out.returncode == 0 and "over TLS" in out.stdout
              and float(res.get("delivered_per_s", "0")) > 0
              and res.get("lost") == "0" and res.get("closed") == "0"
              and res.get("bad_payloads") == "0")
        report(ok, f"tls: delivered/s={res.get('delivered_per_s')} "
                   f"lost={res.get('lost')} exit={out.returncode}", out)
    finally:
        stop(srv)


fanout_runs()
for run in (tls_run, durable_tcpchat, durable_redis, durable_nats):
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        run(tmp)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
