#!/usr/bin/env python3
"""End-to-end tests of tcpchat-server --store: a file that cannot be used
(an unwritable directory, a directory, a corrupt file, a file another
running server holds) is refused with exit status 1 and one line on stderr
naming it; store options without --store are bad arguments (exit 2); a
store survives a restart (texts, numbers, epoch and ACKs, seen by JSON
Lines users).

usage: e2e_store.py SERVER
Every wait has a deadline; every process is killed at the end.
"""
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SERVER = sys.argv[1]
DEADLINE = 10.0
PROG = "tcpchat-server"
TRY_HELP = f"Try '{PROG} --help' for more information."

procs = []
results = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        print(f"ok - {name}")
    else:
        results["failed"] += 1
        print(f"FAIL - {name} {detail}")


class Server:
    """tcpchat-server with its stderr read, line by line, by a thread."""

    def __init__(self, *args):
        self.p = subprocess.Popen([SERVER, *args], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        procs.append(self.p)
        self.q = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for raw in iter(self.p.stderr.readline, b""):
            self.q.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.q.put(None)

    def wait(self, pattern):
        """The first match of pattern in a line to come, or None."""
        end = time.monotonic() + DEADLINE
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            m = re.search(pattern, line)
            if m:
                return m

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return None


def run(*args):
    return subprocess.run([SERVER, *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=DEADLINE)


def refused(name, path, *extra):
    """--store path must fail: exit 1, one line naming the file."""
    p = run("--store", path, "--listen", "127.0.0.1:0", *extra)
    lines = p.stderr.splitlines()
    check(f"{name}: exit 1, one line on stderr naming {path}",
          p.returncode == 1 and p.stdout == "" and len(lines) == 1 and
          lines[0].startswith(f"{PROG}: ") and path in lines[0],
          f"{p.returncode} {p.stderr!r}")
    return lines[0] if lines else ""


def test_refused(tmp):
    # an unwritable directory (root writes anywhere chmod allows: /proc)
    if os.geteuid() == 0:
        path = "/proc/tcpchat-e2e-store.db"
    else:
        ro = os.path.join(tmp, "ro")
        os.mkdir(ro, 0o555)
        path = os.path.join(ro, "store.db")
    refused("an unwritable directory", path)
    check("an unwritable directory: no file left",
          not os.path.exists(path))

    refused("a directory", tmp)

    bad = os.path.join(tmp, "corrupt.db")
    with open(bad, "wb") as f:
        f.write(b"this is not a database, " * 400)
    line = refused("a corrupt file", bad)
    check("a corrupt file: said so", "not a database" in line, line)
    with open(bad, "rb") as f:
        check("a corrupt file: left as it was",
              f.read() == b"this is not a database, " * 400)

    held = os.path.join(tmp, "held.db")
    first = Server("--store", held, "--listen", "127.0.0.1:0")
    ok = first.wait(r"listening on 127\.0\.0\.1:\d+") is not None
    check("a store: the first server runs", ok)
    line = refused("a file another server holds", held)
    check("a held file: said to be locked", "locked" in line, line)
    check("a held file: the first server goes on", first.p.poll() is None)
    check("a held file: the first server stops cleanly", first.stop() == 0)


def test_bad_arguments():
    for args, msg in [
            (["--fsync"], "--fsync, --retain and --retain-days need --store"),
            (["--retain", "5"],
             "--fsync, --retain and --retain-days need --store"),
            (["--store", ""], "invalid --store '' (a file name)")]:
        p = run(*args)
        check(f"bad arguments {args}: exit 2 and the exact message",
              p.returncode == 2 and p.stdout == "" and
              p.stderr.splitlines() == [f"{PROG}: {msg}", TRY_HELP],
              f"{p.returncode} {p.stderr!r}")


class JsonPeer:
    """A protocol-2 user of the JSON Lines codec."""

    def __init__(self, port, name):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          timeout=DEADLINE)
        self.f = self.s.makefile("rwb", buffering=0)
        self.send(type="hello", sender=name, code=2, caps=7)
        self.welcome = self.want("welcome")

    def send(self, **msg):
        self.f.write(json.dumps(msg).encode() + b"\n")

    def want(self, mtype, **fields):
        """The next message of mtype with these fields (others skipped)."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            line = self.f.readline()
            if not line:
                return None
            m = json.loads(line)
            if m.get("type") == mtype and all(
                    m.get(k) == v for k, v in fields.items()):
                return m
        return None

    def close(self):
        self.s.close()


def test_restart(tmp):
    path = os.path.join(tmp, "chat.db")
    srv = Server("--store", path, "--listen", "json@127.0.0.1:0")
    m = srv.wait(r"listening on 127\.0\.0\.1:(\d+)")
    check("restart: the first server runs", m is not None)
    if not m:
        return
    ann = JsonPeer(int(m.group(1)), "ann")
    ann.send(type="text", body="kept across restarts", ref="k1")
    ack = ann.want("ack", ref="k1")
    check("restart: the text is acknowledged", ack is not None and
          ack.get("seq") == 1 and ack.get("room") == "#lobby", str(ack))
    ann.close()
    check("restart: the first server stops cleanly", srv.stop() == 0)
    if not ack:
        return

    srv = Server("--store", path, "--listen", "json@127.0.0.1:0")
    m = srv.wait(r"listening on 127\.0\.0\.1:(\d+)")
    check("restart: the second server runs", m is not None)
    if not m:
        return
    ben = JsonPeer(int(m.group(1)), "ben")
    check("restart: the same epoch", ben.welcome is not None and
          ben.welcome.get("epoch") == ack["epoch"], str(ben.welcome))
    ben.send(type="history")
    text = ben.want("text", sender="ann")
    end = ben.want("history")
    check("restart: the text comes back from the file",
          text is not None and text.get("body") == "kept across restarts"
          and text.get("seq") == 1 and text.get("id") == ack["id"],
          str(text))
    check("restart: the history end counts it",
          end is not None and end.get("code") == 1 and end.get("seq") == 1,
          str(end))
    ann = JsonPeer(int(m.group(1)), "ann")
    ann.send(type="text", body="kept across restarts", ref="k1")
    again = ann.want("ack", ref="k1")
    check("restart: a resend gets the first ACK",
          again is not None and again.get("id") == ack["id"] and
          again.get("seq") == 1, str(again))
    ann.send(type="text", body="next", ref="k2")
    nxt = ann.want("ack", ref="k2")
    check("restart: the numbers go on",
          nxt is not None and nxt.get("seq") == 2, str(nxt))
    got = ben.want("text", sender="ann")
    check("restart: the resend was not posted",
          got is not None and got.get("body") == "next", str(got))
    ann.close()
    ben.close()
    check("restart: the second server stops cleanly", srv.stop() == 0)


def main():
    tmp = tempfile.mkdtemp(prefix="tcpchat-e2e-store-")
    try:
        for test in (test_bad_arguments, lambda: test_refused(tmp),
                     lambda: test_restart(tmp)):
            try:
                test()
            except Exception as e:  # a failure, and on to the next test
                check("a test runs to its end", False, repr(e))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        ro = os.path.join(tmp, "ro")
        if os.path.isdir(ro):
            os.chmod(ro, 0o755)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
