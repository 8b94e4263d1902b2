"""Shared helpers of the end-to-end tests of tcpchat-server's logins and
rules (e2e_auth.py, e2e_rules.py): the server on ports chosen by the
system, with its log lines kept to wait on, and an nc-like user of its
line listener."""
import re
import signal
import socket
import subprocess
import threading
import time

DEADLINE = 10.0


class Server:
    """tcpchat-server on a line and a binary listener (ports chosen by
    the system), its stderr kept; every process goes to procs."""

    def __init__(self, exe, procs, *args, log_level="debug"):
        self.p = subprocess.Popen(
            [exe, "-l", "line@127.0.0.1:0", "-l", "127.0.0.1:0",
             "--log-level", log_level, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, errors="replace")
        procs.append(self.p)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()
        self.line_port = int(self.wait(r"listening on 127\.0\.0\.1:(\d+) "
                                       r"\(line codec\)").group(1))
        self.bin_port = int(self.wait(r"listening on 127\.0\.0\.1:(\d+) "
                                      r"\(binary codec\)").group(1))

    def _pump(self):
        for line in self.p.stderr:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()

    def mark(self):
        """Where the lines logged from now on start, for wait()."""
        with self.cv:
            return len(self.lines)

    def wait(self, pattern, start=0, timeout=DEADLINE):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for line in self.lines[start:]:
                    m = re.search(pattern, line)
                    if m:
                        return m
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return "timeout"

    def output(self):
        with self.cv:
            return "\n".join(self.lines)


class LinePeer:
    """An nc-like socket on the line listener."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          timeout=DEADLINE)
        self.f = self.s.makefile("rb")
        self.greeting = self.line()

    def send(self, line):
        self.s.sendall(line.encode() + b"\r\n")

    def line(self):
        try:
            return self.f.readline().decode("utf-8", "replace").rstrip(
                "\r\n")
        except OSError:
            return ""

    def close(self):
        self.s.close()
