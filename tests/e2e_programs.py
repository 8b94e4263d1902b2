#!/usr/bin/env python3
"""End-to-end tests of tcpchat-server, tcpchat-client and the embedding
demos, run as real processes over loopback.

usage: e2e_programs.py SERVER CLIENT BOT HOST_LOOP THREAD_CLIENT
Every wait has a deadline; every process is killed at the end.
"""
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

SERVER, CLIENT, BOT, HOST_LOOP, THREAD_CLIENT = sys.argv[1:6]
DEADLINE = 10.0
procs = []
results = {"passed": 0, "failed": 0}


class Proc:
    """A child process whose stdout and stderr are read by threads."""

    def __init__(self, args, stdin=None):
        self.args = args
        self.p = subprocess.Popen(
            args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(self.p)
        self.out, self.err = queue.Queue(), queue.Queue()
        self.out_lines, self.err_lines = [], []
        for stream, q in ((self.p.stdout, self.out), (self.p.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, q), daemon=True).start()
        if stdin:
            self.p.stdin.write(stdin.encode())
            self.p.stdin.flush()

    @staticmethod
    def _pump(stream, q):
        for raw in iter(stream.readline, b""):
            q.put(raw.decode("utf-8", "replace").rstrip("\n"))
        q.put(None)

    def wait_line(self, pattern, which="err", timeout=DEADLINE):
        """Returns the first match of pattern in a new line, or None."""
        q = self.err if which == "err" else self.out
        keep = self.err_lines if which == "err" else self.out_lines
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                q.put(None)
                break
            keep.append(line)
            m = re.search(pattern, line)
            if m:
                return m
        return None

    def finish(self, timeout=DEADLINE):
        """Waits for exit; returns (code, stdout lines, stderr lines)."""
        try:
            code = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            code = "timeout"
        for q, keep in ((self.out, self.out_lines), (self.err, self.err_lines)):
            end = time.monotonic() + 2
            while time.monotonic() < end:
                try:
                    line = q.get(timeout=0.05)
                except queue.Empty:
                    continue
                if line is None:
                    break
                keep.append(line)
        return code, self.out_lines, self.err_lines


class LinePeer:
    """An nc-like socket on a line-codec listener."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.buf = b""

    def send(self, text):
        self.s.sendall(text.encode() + b"\n")

    def expect(self, pattern, timeout=DEADLINE):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.decode("utf-8", "replace")
                if re.search(pattern, line):
                    return line
            self.s.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            self.buf += data
        return None

    def close(self):
        self.s.close()


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        print(f"ok - {name}")
    else:
        results["failed"] += 1
        print(f"FAIL - {name} {detail}")


def start_server(*extra):
    srv = Proc([SERVER, "--listen", "binary@127.0.0.1:0",
                "--listen", "line@127.0.0.1:0", "--listen", "json@127.0.0.1:0",
                "--log-level", "debug", *extra])
    ports = []
    for _ in range(3):
        m = srv.wait_line(r"port (\d+)")
        ports.append(int(m.group(1)) if m else 0)
    return srv, ports[0], ports[1], ports[2]


def test_chat():
    srv, bport, lport, jport = start_server()
    check("server reports three ephemeral ports", bport > 0 and lport > 0 and jport > 0)
    addr = f"127.0.0.1:{bport}"

    alice = Proc([CLIENT, "--server", addr, "--name", "alice", "--listen-only",
                  "--count", "2", "--quiet"])
    check("server logs alice's join", srv.wait_line(r"alice joined") is not None)

    carol = LinePeer(lport)
    carol.send("carol")
    check("nc user gets the welcome line",
          carol.expect(r"^=== welcome carol$") is not None)
    carol.send("/who")
    who = carol.expect(r"^=== \d+ online")
    check("/who lists alice and carol", who == "=== 2 online: alice carol", who)

    bob = Proc([CLIENT, "--server", addr, "--name", "bob"],
               stdin="hi from bob\n")
    bob.p.stdin.close()
    code, out, err = bob.finish()
    check("piped client exits 0 after sending", code == 0, f"{code} {err}")
    check("nc user sees bob join", carol.expect(r"^--> bob joined$") is not None)
    check("nc user sees bob's line",
          carol.expect(r"^bob: hi from bob$") is not None)
    check("nc user sees bob leave (quit)",
          carol.expect(r"^<-- bob left \(quit\)$") is not None)

    carol.send("hello from carol")
    code, out, err = alice.finish()
    check("listen-only client exits 0 after --count 2", code == 0, f"{code} {err}")
    check("alice printed bob's and carol's messages in order",
          out == ["bob: hi from bob", "carol: hello from carol"], str(out))
    check("nc user sees alice leave",
          carol.expect(r"^<-- alice left \(quit\)$") is not None)

    # The client program speaks the line and JSON codecs too.
    for codec, port in (("line", lport), ("json", jport)):
        who = f"by{codec}"
        p = Proc([CLIENT, "--server", f"127.0.0.1:{port}", "--codec", codec,
                  "--name", who], stdin=f"sent over {codec}\n")
        p.p.stdin.close()
        code, out, err = p.finish()
        check(f"--codec {codec}: exits 0", code == 0, f"{code} {err}")
        check(f"--codec {codec}: the message arrives",
              carol.expect(rf"^{who}: sent over {codec}$") is not None)


    # A name already taken: clear message, exit 1.
    dup = Proc([CLIENT, "--server", addr, "--name", "carol", "--listen-only"])
    code, out, err = dup.finish()
    check("duplicate name: exit 1 with the reason",
          code == 1 and any("name already in use" in l for l in err), f"{code} {err}")

    # Port in use: exit 1 with a clear message.
    busy = Proc([SERVER, "--listen", f"127.0.0.1:{bport}"])
    code, out, err = busy.finish()
    check("port in use: exit 1", code == 1 and any("in use" in l for l in err),
          f"{code} {err}")

    # Demos against the running server.
    bot = Proc([BOT, addr, "bot"])
    check("bot joins", srv.wait_line(r"bot joined") is not None)
    carol.send("!ping")
    check("bot answers !ping", carol.expect(r"^bot: pong$") is not None)
    carol.send("!echo über")
    check("bot echoes UTF-8", carol.expect(r"^bot: über$") is not None)
    carol.send("!quit")
    code, out, err = bot.finish()
    check("bot leaves on !quit and exits 0", code == 0, f"{code} {err}")

    tc = Proc([THREAD_CLIENT, addr, "threaded", "3"])
    code, out, err = tc.finish()
    check("thread-client exits 0", code == 0, f"{code} {err}")
    got = [carol.expect(r"^threaded: message \d of 3$") for _ in range(3)]
    check("thread-client's 3 messages arrive in order",
          got == [f"threaded: message {i} of 3" for i in (1, 2, 3)], str(got))

    # SIGTERM: graceful shutdown, exit 0, the nc user is told.
    srv.p.send_signal(signal.SIGTERM)
    check("nc user is told about the shutdown",
          carol.expect(r"^-!- error 18: server shutting down$") is not None)
    code, out, err = srv.finish()
    check("server exits 0 on SIGTERM", code == 0, f"{code}")
    check("server logged the shutdown and a stats line",
          any("shutting down" in l for l in err) and any("msgs_in=" in l for l in err))
    carol.close()

    # Server gone: the client says so and exits 1.
    gone = Proc([CLIENT, "--server", addr, "--name", "late", "--listen-only"])
    code, out, err = gone.finish()
    check("no server: exit 1 with a message",
          code == 1 and any("refused" in l.lower() for l in err), f"{code} {err}")


def test_host_loop():
    host = Proc([HOST_LOOP], stdin="")
    m = host.wait_line(r"^port (\d+)$", which="out")
    check("host-loop prints its port", m is not None)
    if not m:
        return
    dave = LinePeer(int(m.group(1)))
    dave.send("dave")
    check("host-loop welcomes a user", dave.expect(r"^=== welcome dave$") is not None)
    host.p.stdin.write(b"notice from the host\n")
    host.p.stdin.flush()
    check("host-loop broadcasts stdin lines",
          dave.expect(r"^\*\*\* notice from the host$") is not None)
    host.p.stdin.close()
    check("host-loop shuts down at end of input",
          dave.expect(r"^-!- error 18: ") is not None)
    code, _, err = host.finish()
    check("host-loop exits 0", code == 0, f"{code} {err}")
    dave.close()


def test_bad_arguments():
    cases = [
        ([SERVER, "--max-clients", "lots"], "--max-clients"),
        ([SERVER, "--listen", "gopher@127.0.0.1:1"], "--listen"),
        ([SERVER, "--slow-policy", "panic"], "--slow-policy"),
        ([SERVER, "--bogus"], "unknown option"),
        ([SERVER, "extra"], "unexpected argument"),
        ([CLIENT], "--name is required"),
        ([CLIENT, "--name", "two words"], "invalid name"),
        ([CLIENT, "--name", "x", "--codec", "xml"], "unknown codec"),
        ([CLIENT, "--name", "x", "--count", "0"], "--count"),
        ([CLIENT, "--name", "x", "--server", "nowhere"], "nowhere"),
    ]
    for args, word in cases:
        code, out, err = Proc(args).finish()
        check(f"bad arguments {args[1:]}: exit 2 naming the problem",
              code == 2 and any(word in l for l in err), f"{code} {err}")
    for prog in (SERVER, CLIENT):
        code, out, _ = Proc([prog, "--help"]).finish()
        check(f"{os.path.basename(prog)} --help exits 0",
              code == 0 and any("Usage:" in l for l in out))
        code, out, _ = Proc([prog, "--version"]).finish()
        check(f"{os.path.basename(prog)} --version exits 0",
              code == 0 and bool(out) and re.search(r"\d+\.\d+\.\d+", out[0]))


def main():
    try:
        test_bad_arguments()
        test_chat()
        test_host_loop()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
