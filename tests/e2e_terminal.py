#!/usr/bin/env python3
"""tcpchat-client in a real terminal: tmux runs it in a pseudo-terminal
and its screen is read back with capture-pane, at 80 and at 40 columns.

usage: e2e_terminal.py SERVER CLIENT
Checks arrow keys and history, Tab completion, a long input line that
wraps while messages arrive, a terminal resize (SIGWINCH), a long message
split for the server's limit, and the exit status of Ctrl-C.  An nc-like
peer on the line codec chats with the client.  Every wait has a
deadline; the server, the peer and tmux are stopped at the end.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SERVER, CLIENT = sys.argv[1:3]
DEADLINE = 10.0
results = {"passed": 0, "failed": 0}
STAMP = re.compile(r"^\d\d:\d\d ")
WRAPPER = """
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
rc = subprocess.call(sys.argv[2:], preexec_fn=lambda: signal.signal(
    signal.SIGINT, signal.SIG_DFL))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(rc if rc >= 0 else 128 - rc))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
"""


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        print(f"ok - {name}")
    else:
        results["failed"] += 1
        print(f"FAIL - {name}\n{detail}")


def wait_for(pred, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(0.05)


class Server:
    def __init__(self, *extra):
        self.p = subprocess.Popen(
            [SERVER, "--listen", "binary@127.0.0.1:0", "--listen",
             "line@127.0.0.1:0", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.ports = []
        end = time.monotonic() + DEADLINE
        while len(self.ports) < 2 and time.monotonic() < end:
            line = self.p.stderr.readline()
            m = re.search(r"listening on \S+:(\d+) .*?(?:port (\d+))?$", line)
            if m:
                self.ports.append(int(m.group(2) or m.group(1)))
        self.binary, self.line = (self.ports + [0, 0])[:2]

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()


class Peer:
    """A person on nc: the line codec."""

    def __init__(self, port, name):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.buf = b""
        self.lines = []
        self.send(name)
        self.expect(rf"^=== welcome {re.escape(name)}$")

    def send(self, text):
        self.s.sendall(text.encode() + b"\n")

    def expect(self, pattern, timeout=DEADLINE):
        end = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace")
                self.lines.append(line)
                if re.search(pattern, line):
                    return line
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                return None
            if not data:
                return None
            self.buf += data

    def close(self):
        self.s.close()


class Term:
    """tcpchat-client in a tmux window of the given size."""

    n = 0

    def __init__(self, width, args, home):
        Term.n += 1
        self.sock = f"tcpchat-test-{os.getpid()}"
        self.name = f"t{Term.n}"
        self.status = os.path.join(home, f"status.{self.name}")
        if os.path.exists(self.status):
            os.unlink(self.status)
        # The pane runs a wrapper that writes the client's exit status to
        # a file; it ignores SIGINT itself and gives the client SIGINT's
        # default disposition.
        subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null",
                        "new-session", "-d", "-s", self.name,
                        "-x", str(width), "-y", "24",
                        "-e", f"HOME={home}", "-e", "LANG=C.UTF-8",
                        sys.executable, "-c", WRAPPER, self.status,
                        CLIENT, *args], check=True)
        self.width = width

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.sock, *args],
                              capture_output=True, text=True).stdout

    def keys(self, *keys, literal=False):
        self.tmux("send-keys", "-t", self.name, *(["-l"] if literal else []),
                  *keys)

    def type(self, text):
        self.keys(text, literal=True)

    def screen(self):
        """The visible rows, trailing blanks and empty rows dropped."""
        rows = [r.rstrip() for r in
                self.tmux("capture-pane", "-p", "-t", self.name).split("\n")]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def resize(self, width):
        self.tmux("resize-window", "-t", self.name, "-x", str(width))
        self.width = width

    def wait(self, pred, timeout=DEADLINE):
        return wait_for(lambda: pred(self.screen()), timeout)

    def wait_exit(self):
        """The client's exit status, once it has exited (None: it has
        not, by the deadline)."""
        def status():
            try:
                with open(self.status) as f:
                    return f.read().strip() or None
            except OSError:
                return None
        got = wait_for(status)
        return int(got) if got else None

    def kill(self):
        self.tmux("kill-session", "-t", self.name)


def input_rows(screen, prompt):
    """The input line: the rows from the last one that starts with the
    prompt, joined."""
    for i in range(len(screen) - 1, -1, -1):
        if screen[i].startswith(prompt):
            return "".join(screen[i:])[len(prompt):]
    return None


def wrapped(prompt, text, width):
    s = prompt + text
    return [s[i:i + width] for i in range(0, len(s), width)]


def session(width, srv, home, editor):
    tag = f"{width} columns"
    bob = Peer(srv.line, f"bob{width}")
    t = Term(width, ["--server", f"127.0.0.1:{srv.binary}", "--name",
                     f"al{width}", "--no-color"], home)
    me = f"al{width}"
    check(f"{tag}: the prompt shows the default room",
          t.wait(lambda s: s and s[-1] == "#lobby >"), t.screen())
    check(f"{tag}: the connected line says the server and how to get help",
          t.wait(lambda s: f"=== connected to 127.0.0.1:{srv.binary} as "
                 f"{me} (type /help)" in "".join(s)), t.screen())

    # Arrow keys move the cursor; nothing of their escape sequences is sent.
    t.type("hello wrld")
    t.keys("Left", "Left", "Left")
    t.type("o")
    t.keys("Home")
    t.type(">")
    t.keys("End")
    t.type("!")
    t.keys("Enter")
    got = bob.expect(rf"^{me}: ")
    check(f"{tag}: Left, Home and End edit the line; the peer gets it",
          got == f"{me}: >hello world!", got)
    check(f"{tag}: the sent line is shown once, the input is empty again",
          t.wait(lambda s: s[-1] == "#lobby >" and
                 sum(STAMP.sub("", r) == f"{me}: >hello world!"
                     for r in s) == 1), t.screen())

    # History: Up recalls the lines sent, Down goes back.
    t.type("second line")
    t.keys("Enter")
    bob.expect(rf"^{me}: second line$")
    t.keys("Up")
    check(f"{tag}: Up recalls the last line",
          t.wait(lambda s: s[-1] == "#lobby > second line"), t.screen())
    t.keys("Up")
    check(f"{tag}: Up again recalls the one before",
          t.wait(lambda s: s[-1] == "#lobby > >hello world!"), t.screen())
    t.keys("Down")
    check(f"{tag}: Down comes back",
          t.wait(lambda s: s[-1] == "#lobby > second line"), t.screen())
    t.keys("C-u")
    check(f"{tag}: Ctrl-U empties the line",
          t.wait(lambda s: s[-1] == "#lobby >"), t.screen())
    t.type("one two three")
    t.keys("C-w")
    check(f"{tag}: Ctrl-W deletes the word before the cursor",
          t.wait(lambda s: s[-1] == "#lobby > one two"), t.screen())
    t.keys("C-a")
    t.type("[")
    t.keys("C-e")
    t.type("]")
    check(f"{tag}: Ctrl-A and Ctrl-E go to the start and the end",
          t.wait(lambda s: s[-1] == "#lobby > [one two ]"), t.screen())
    t.keys("C-u")

    # Tab completes commands, rooms and names.
    t.type("/jo")
    t.keys("Tab")
    check(f"{tag}: Tab completes a command",
          t.wait(lambda s: s[-1] == "#lobby > /join"), t.screen())
    t.type("#lo")
    t.keys("Tab")
    check(f"{tag}: Tab completes a room",
          t.wait(lambda s: s[-1] == "#lobby > /join #lobby"), t.screen())
    t.keys("C-u")
    t.type("hi bo")
    t.keys("Tab")
    check(f"{tag}: Tab completes a user name",
          t.wait(lambda s: s[-1] == f"#lobby > hi bob{width}"), t.screen())
    t.keys("C-u")
    twin = Peer(srv.line, f"bob{width}x")
    t.wait(lambda s: any(f"--> bob{width}x joined" in r for r in s))
    t.type("bo")
    t.keys("Tab")
    check(f"{tag}: Tab with two candidates completes what they share",
          t.wait(lambda s: s[-1] == f"#lobby > bob{width}"), t.screen())
    t.keys("Tab")
    check(f"{tag}: Tab again lists them above the input",
          t.wait(lambda s: s[-1] == f"#lobby > bob{width}" and
                 f"bob{width} bob{width}x" in s), t.screen())
    t.keys("C-u")
    twin.close()

    # A long line wraps; messages that arrive meanwhile go above it, and
    # no stale copy of the line is left anywhere.
    text = "".join(f"{i:03d}-" for i in range(38))  # no repeated 20 bytes
    t.type(text)
    check(f"{tag}: a 152-character line wraps over the rows it needs",
          t.wait(lambda s: s[-len(wrapped('#lobby > ', text, width)):] ==
                 wrapped("#lobby > ", text, width)), t.screen())
    for i in range(3):
        bob.send(f"incoming {i} while typing")
    ok = t.wait(lambda s: sum(f"bob{width}: incoming" in r for r in s) == 3 and
                input_rows(s, "#lobby > ") == text)
    scr = t.screen()
    check(f"{tag}: messages print above the long line, which stays whole",
          ok and scr[-len(wrapped('#lobby > ', text, width)):] ==
          wrapped("#lobby > ", text, width), "\n".join(scr))
    check(f"{tag}: each message shows once, in order",
          [STAMP.sub("", r) for r in scr if "incoming" in r] ==
          [f"bob{width}: incoming {i} while typing" for i in range(3)],
          "\n".join(scr))
    check(f"{tag}: no stale copy of the line is left on the screen",
          sum(text[:20] in r for r in scr) == 1 and
          sum(r.startswith("#lobby >") for r in scr) == 1, "\n".join(scr))

    # The terminal changes size: the line is redrawn for the new width.
    other = 40 if width == 80 else 80
    t.resize(other)
    ok = t.wait(lambda s: s[-len(wrapped('#lobby > ', text, other)):] ==
                wrapped("#lobby > ", text, other))
    scr = t.screen()
    check(f"{tag}: after a resize to {other} columns the line is redrawn "
          "whole, once", ok and sum(r.startswith("#lobby >") for r in scr) == 1,
          "\n".join(scr))
    bob.send("after the resize")
    ok = t.wait(lambda s: any(f"bob{width}: after the resize" in r for r in s)
                and input_rows(s, "#lobby > ") == text)
    scr = t.screen()
    check(f"{tag}: a message after the resize still goes above the line",
          ok and sum(r.startswith("#lobby >") for r in scr) == 1,
          "\n".join(scr))
    t.resize(width)
    t.wait(lambda s: s[-len(wrapped('#lobby > ', text, width)):] ==
           wrapped("#lobby > ", text, width))
    t.keys("Enter")
    got = bob.expect(rf"^{me}: ")
    check(f"{tag}: the long line arrives whole", got == f"{me}: {text}", got)

    # Ctrl-C leaves as /quit does, with the exit status of SIGINT.
    t.keys("C-c")
    check(f"{tag}: Ctrl-C exits with status 130", t.wait_exit() == 130,
          "\n".join(t.screen()))
    got = bob.expect(rf"^<-- {me} left")
    check(f"{tag}: the others see a quit", got == f"<-- {me} left (quit)", got)
    t.kill()
    bob.close()


def history_across_runs(srv, home, editor):
    """libedit keeps the lines in the history file between runs."""
    t = Term(80, ["--server", f"127.0.0.1:{srv.binary}", "--name", "again",
                  "--no-color"], home)
    t.wait(lambda s: s and s[-1] == "#lobby >")
    path = os.path.join(home, ".local/share/tcpchat/history")
    if editor == "libedit":
        t.keys("Up")
        check("history: a new run recalls the last line of the one before",
              t.wait(lambda s: (input_rows(s, "#lobby > ") or "")
                     .startswith("000-001-002-")), t.screen())
        t.keys("C-u")
        mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else None
        check("history: the file is private (0600)", mode == 0o600, oct(mode or 0))
    else:
        check("history: the built-in editor keeps no file",
              not os.path.exists(path))
    t.keys("C-d")
    check("Ctrl-D on an empty line exits 0", t.wait_exit() == 0)
    t.kill()


def split_long(home):
    """A message longer than the server takes is sent in pieces, cut at
    blanks and character boundaries, and the user is told."""
    srv = Server("--max-message", "128")
    bob = Peer(srv.line, "splitbob")
    t = Term(80, ["--server", f"127.0.0.1:{srv.binary}", "--name", "split",
                  "--no-color"], home)
    t.wait(lambda s: s and s[-1] == "#lobby >")
    words = " ".join(f"wörd{i:03d}" for i in range(40))  # 359 bytes
    t.type(words)
    t.keys("Enter")
    pieces = []
    while len(" ".join(pieces)) < len(words):
        got = bob.expect(r"^split: ")
        if got is None:
            break
        pieces.append(got[len("split: "):])
    check("split: the pieces put together are the message",
          " ".join(pieces) == words, pieces)
    check("split: every piece is cut at a blank",
          len(pieces) > 1 and all(p.split(" ")[-1].startswith("wörd")
                                  for p in pieces), pieces)
    check("split: the user is told",
          t.wait(lambda s: any(STAMP.sub("", r) ==
                               f"=== sent in {len(pieces)} messages: the "
                               "server takes at most 128 bytes in one"
                               for r in s)), t.screen())
    t.keys("C-c")
    t.wait_exit()
    t.kill()
    bob.close()
    srv.stop()


def main():
    if not shutil.which("tmux"):
        print("FAIL - tmux is needed (apt-get install tmux)")
        return 1
    version = subprocess.run([CLIENT, "--version"], capture_output=True,
                             text=True).stdout
    editor = "libedit" if "libedit" in version else "built-in"
    print(f"# {version.strip()}")
    home = tempfile.mkdtemp(prefix="tcpchat-term-")
    srv = Server()
    try:
        check("server listens", srv.binary > 0 and srv.line > 0)
        for width in (80, 40):
            session(width, srv, home, editor)
        history_across_runs(srv, home, editor)
        split_long(home)
    finally:
        srv.stop()
        subprocess.run(["tmux", "-L", f"tcpchat-test-{os.getpid()}",
                        "kill-server"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
