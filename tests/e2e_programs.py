#!/usr/bin/env python3
"""End-to-end tests of tcpchat-server, tcpchat-client and the embedding
demos, run as real processes over loopback.

usage: e2e_programs.py SERVER CLIENT BOT HOST_LOOP THREAD_CLIENT
Every wait has a deadline; every process is killed at the end.
"""
import os
import pty
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
        self.seen = []

    def send(self, text):
        self.s.sendall(text.encode() + b"\n")

    def expect(self, pattern, timeout=DEADLINE):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.decode("utf-8", "replace")
                self.seen.append(line)
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

    def lines_until(self, pattern, timeout=DEADLINE):
        """Returns the lines up to and including the first that matches
        pattern (None if none came in time)."""
        seen = []
        while True:
            line = self.expect(r"", timeout)
            if line is None:
                return None
            seen.append(line)
            if re.search(pattern, line):
                return seen

    def lines_seen(self):
        """Every line expect() has read so far."""
        return self.seen

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
        m = srv.wait_line(r"listening on \S+:(\d+) .*?(?:port (\d+))?$")
        ports.append(int(m.group(2) or m.group(1)) if m else 0)
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


def script(addr, name, lines, *extra):
    """Runs the client in script mode with lines on stdin; returns
    (exit code, stdout lines, stderr lines)."""
    p = Proc([CLIENT, "--server", addr, "--name", name, *extra], stdin=lines)
    p.p.stdin.close()
    return p.finish()


def watcher(srv_addr, name, *extra):
    """A listen-only client; returns it once the server has accepted it
    (and confirmed the joins of its --room options)."""
    w = Proc([CLIENT, "--server", srv_addr, "--name", name, "--listen-only",
              *extra])
    ok = w.wait_line(r"^=== connected to \S+ as ", which="out") is not None
    rooms = [extra[i + 1] for i, a in enumerate(extra) if a == "--room"]
    for room in rooms:
        ok = ok and w.wait_line(rf"^--> {name} joined {re.escape(room)}$",
                                which="out") is not None
    check(f"{name} is connected and in {rooms or 'the default room'}", ok)
    return w


def stop_watcher(w, name):
    w.p.send_signal(signal.SIGINT)
    code, out, err = w.finish()
    check(f"{name} exits 130 on SIGINT", code == 130, f"{code} {err}")
    return out


def test_prompt(addr, opsw):
    """Interactive mode on a pseudo-terminal: the prompt shows the current
    room, and a typed line goes to it."""
    master, slave = pty.openpty()
    p = subprocess.Popen([CLIENT, "--server", addr, "--name", "tty",
                          "--no-color"],
                         stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    procs.append(p)
    os.close(slave)
    seen = b""

    def expect(pattern):
        nonlocal seen
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            if re.search(pattern, seen):
                seen = b""
                return True
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        return False

    check("tty: the prompt shows the default room",
          expect(rb"#lobby > $"))
    os.write(master, b"/join #ops\r")
    check("tty: after /join the prompt shows the new room",
          expect(rb"(?s)--> tty joined #ops\r*\n.*#ops > $"))
    os.write(master, b"typed in ops\r")
    check("tty: a typed line goes to the current room",
          opsw.wait_line(r"^\[#ops\] tty: typed in ops$", which="out")
          is not None)
    check("tty: the sent line is shown with its room",
          expect(rb"\[#ops\] tty: typed in ops"))
    os.write(master, b"/part\r")
    check("tty: after /part the prompt is back in the default room",
          expect(rb"#lobby > $"))
    os.write(master, b"/quit\r")
    try:
        code = p.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        p.kill()
        code = "timeout"
    check("tty: /quit exits 0", code == 0, f"{code}")
    os.close(master)


def test_rooms():
    srv, bport, _, _ = start_server()
    addr = f"127.0.0.1:{bport}"
    carl = watcher(addr, "carl", "--room", "#dev")
    lobby = watcher(addr, "lobbyist")

    # Script mode: --room says where piped lines go, --to sends privately.
    code, out, err = script(addr, "sam", "hello dev\n", "--room", "#dev")
    check("--room: piped client exits 0", code == 0, f"{code} {err}")
    check("--room: the client shows its own join",
          "--> sam joined #dev" in out, str(out))
    check("--room: the line reaches the room, with its prefix",
          carl.wait_line(r"^\[#dev\] sam: hello dev$", which="out") is not None)
    code, out, err = script(addr, "pat", "private hi\n", "--to", "carl")
    check("--to: piped client exits 0", code == 0, f"{code} {err}")
    check("--to: the sender sees the echo", "-> *carl* private hi" in out,
          str(out))
    check("--to: the addressee gets it",
          carl.wait_line(r"^\*pat\* private hi$", which="out") is not None)
    code, out, err = script(addr, "mark", "lobby marker\n")
    check("plain piped line exits 0", code == 0, f"{code} {err}")
    check("a plain line goes to the default room, without a prefix",
          lobby.wait_line(r"^mark: lobby marker$", which="out") is not None)
    check("the room line and the private one never reach a non-member",
          not any("hello dev" in l or "private hi" in l
                  for l in lobby.out_lines), str(lobby.out_lines))

    # Commands typed on stdin.
    opsw = watcher(addr, "opsw", "--room", "#ops")
    cmds = ("/join\n"
            "/join #ops\n"
            "/topic #ops ship it\n"
            "#ops hello ops\n"
            "#lobby hello lobby\n"
            "/who #ops\n"
            "/rooms\n"
            "/msg opsw just you\n"
            "/msg nobody hello?\n"
            "/part #ops see you\n"
            "in the lobby again\n")
    code, out, err = script(addr, "cmd", cmds)
    check("commands: the client exits 0", code == 0, f"{code} {err}")
    check("commands: /join without a room is refused locally",
          "-!- usage: /join #room" in out, str(out))
    check("commands: /join confirmation", "--> cmd joined #ops" in out, str(out))
    check("commands: /topic is shown to the setter",
          "=== topic #ops by cmd: ship it" in out, str(out))
    check("commands: /who #ops lists the members in join order",
          "=== 2 in #ops: opsw cmd" in out, str(out))
    check("commands: /rooms lists the room with its topic and ends",
          "=== #ops 2: ship it" in out and "=== #lobby 4" in out
          and any(re.fullmatch(r"=== \d+ rooms", l) for l in out), str(out))
    check("commands: the echo of /msg", "-> *opsw* just you" in out, str(out))
    check("commands: /msg to nobody is an error line, the client stays",
          any(l.startswith("-!- ") and "usage" not in l for l in out)
          and "<-- cmd left #ops (part: see you)" in out, str(out))
    check("commands: the part is shown",
          "<-- cmd left #ops (part: see you)" in out, str(out))
    for pattern, what in (
            (r"^--> cmd joined #ops$", "the join"),
            (r"^=== topic #ops by cmd: ship it$", "the topic"),
            (r"^\[#ops\] cmd: hello ops$", "the room line"),
            (r"^cmd: hello lobby$", "the #lobby line, without a prefix"),
            (r"^\*cmd\* just you$", "the private message"),
            (r"^<-- cmd left #ops \(part: see you\)$", "the part"),
            (r"^cmd: in the lobby again$", "the plain line after the part")):
        check(f"commands: the room member sees {what}",
              opsw.wait_line(pattern, which="out") is not None)
    check("commands: the lobby sees no #ops line",
          lobby.wait_line(r"^cmd: in the lobby again$", which="out") is not None
          and not any("hello ops" in l for l in lobby.out_lines))

    test_prompt(addr, opsw)

    for w, name in ((carl, "carl"), (lobby, "lobbyist"), (opsw, "opsw")):
        stop_watcher(w, name)
    srv.p.send_signal(signal.SIGTERM)
    code, _, _ = srv.finish()
    check("rooms: server exits 0", code == 0, f"{code}")


def test_nc_rooms():
    """Two nc users and a client program chat in rooms and privately
    through the line codec of tcpchat-server, as a person would."""
    srv, bport, lport, _ = start_server()
    ann, ben = LinePeer(lport), LinePeer(lport)
    ann.send("ann")
    ben.send("ben")
    check("nc rooms: both are welcomed",
          ann.expect(r"^=== welcome ann$") is not None
          and ben.expect(r"^=== welcome ben$") is not None)
    ann.send("/join #dev")
    check("nc rooms: /join is confirmed",
          ann.expect(r"^--> ann joined #dev$") is not None)
    ben.send("/join #dev")
    check("nc rooms: a member sees the next join",
          ann.expect(r"^--> ben joined #dev$") is not None)
    ann.send("/topic #dev the build is green")
    check("nc rooms: the topic reaches the members",
          ben.expect(r"^=== topic #dev by ann: the build is green$")
          is not None)
    ann.send("now in dev")
    check("nc rooms: a plain line goes to the current room",
          ben.expect(r"^\[#dev\] ann: now in dev$") is not None)
    ann.send("#lobby back in the lobby")
    check("nc rooms: '#room text' goes to that room, unprefixed for #lobby",
          ben.expect(r"^ann: back in the lobby$") is not None)
    ben.send("/msg ann psst")
    check("nc rooms: /msg reaches its target only",
          ann.expect(r"^\*ben\* psst$") is not None)
    check("nc rooms: the sender sees its echo",
          ben.expect(r"^-> \*ann\* psst$") is not None)
    ben.send("/msg nobody hi")
    check("nc rooms: /msg to nobody is a non-fatal error",
          ben.expect(r"^-!- error 15: no user called nobody$") is not None)
    ben.send("/who #dev")
    check("nc rooms: /who #room in join order",
          ben.expect(r"^=== 2 in #dev: ann ben$") is not None)
    ben.send("/rooms")
    check("nc rooms: /rooms lists each room and ends",
          ben.expect(r"^=== #dev 2: the build is green$") is not None
          and ben.expect(r"^=== 2 rooms$") is not None)
    ben.send("/join #bad room")
    check("nc rooms: a bad room name is answered, the user stays",
          ben.expect(r"^-!- error") is not None)
    ben.send("/part #dev bye all")
    check("nc rooms: the part reaches the room with its reason",
          ann.expect(r"^<-- ben left #dev \(part: bye all\)$") is not None)
    ben.send("#dev still here?")
    check("nc rooms: a non-member cannot post to the room",
          ben.expect(r"^-!- error 26: ") is not None)
    ben.send("/quit")
    check("nc rooms: the quit reaches a user sharing two rooms",
          ann.expect(r"^<-- ben left \(quit\)$") is not None)
    # Anything more about ben would come before the answer to this.
    ann.send("/who")
    seen = ann.lines_until(r"^=== \d+ online")
    check("nc rooms: ... once", seen is not None
          and not any(l.startswith("<-- ben") for l in seen), str(seen))
    ann.close()
    ben.close()
    srv.p.send_signal(signal.SIGTERM)
    code, _, _ = srv.finish()
    check("nc rooms: server exits 0", code == 0, f"{code}")


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
        ([CLIENT, "--name", "x", "--room", "dev"], "invalid --room"),
        ([CLIENT, "--name", "x", "--room", "#a b"], "invalid --room"),
        ([CLIENT, "--name", "x", "--to", "two words"], "invalid --to"),
        ([CLIENT, "--name", "x", "--history", "abc"],
         "invalid --history 'abc' (a number of texts, 0..1000; the file of "
         "typed lines is --history-file)"),
        ([CLIENT, "--name", "x", "--history", "1001"], "invalid --history"),
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
    code, out, _ = Proc([CLIENT, "--help"]).finish()
    check("tcpchat-client --help lists --room, --to and the room commands",
          all(any(w in l for l in out)
              for w in ("--room", "--to", "/join", "/part", "/msg", "/rooms",
                        "/topic")), str(out))


def test_nc_people():
    """What a person on nc meets: a greeting, answers to bad commands, a
    limit said in words, and no timeout for only reading."""
    srv, bport, lport, _ = start_server("--max-message", "200",
                                        "--idle-timeout", "1")
    raw = socket.create_connection(("127.0.0.1", lport), timeout=DEADLINE)
    raw.settimeout(DEADLINE)
    first = b""
    while not first.endswith(b"\n"):
        chunk = raw.recv(4096)
        if not chunk:
            break
        first += chunk
    check("nc: a new connection is greeted before anything is typed",
          first == b"=== tcpchat: type your name (1-32 bytes, no spaces)\n",
          repr(first))
    raw.close()
    dee, eve = LinePeer(lport), LinePeer(lport)
    dee.send("dee")
    eve.send("eve")
    dee.expect(r"^=== welcome dee$")
    eve.expect(r"^=== welcome eve$")
    dee.send("/frobnicate now")
    got = dee.expect(r"^-!- ")
    check("nc: an unknown command is answered with a hint",
          got == "-!- error 24: unknown command /frobnicate: //text sends a "
                 "line starting with '/', /help lists the commands", got)
    dee.send("/join")
    got = dee.expect(r"^-!- ")
    check("nc: a command without its argument gets its usage",
          got == "-!- error 24: usage: /join #room", got)
    dee.send("/help")
    got = dee.lines_until(r"^\*\*\*   /help ")
    check("nc: /help lists the commands",
          got is not None and got[0].startswith("*** commands") and
          any(l.startswith("***   /msg NAME TEXT") for l in got), str(got))
    dee.send("//usr is full")
    check("nc: //text says a line that starts with '/'",
          eve.expect(r"^dee: /usr is full$") is not None)
    check("nc: no command text ever reached the others",
          not any("frobnicate" in l or "/help" in l or l == "dee: /join"
                  for l in eve.lines_seen()), str(eve.lines_seen()))

    # Silent for three idle timeouts: still there, still served.
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        eve.expect(r"^$", timeout=max(0.01, deadline - time.monotonic()))
    ss = subprocess.run(["ss", "-tno", "state", "established",
                         f"( sport = :{lport} )"],
                        capture_output=True, text=True).stdout
    check("nc: the server keeps line connections with TCP keepalive",
          "timer:(keepalive" in ss, ss)
    dee.send("still here?")
    check("nc: a reader silent for 3 idle timeouts is still served",
          eve.expect(r"^dee: still here\?$") is not None)

    # A line longer than the limit: the limit in words, for everyone.
    eve.send("x" * 300)
    got = eve.expect(r"^-!- ")
    check("nc: a line over the limit is refused, saying the limit",
          got == "-!- error 5: line too long, the limit is 200 bytes", got)
    got = dee.expect(r"^<-- eve left")
    check("nc: the others see why in words",
          got == "<-- eve left (error: line too long, the limit is 200 "
                 "bytes)", got)
    dee.close()
    eve.close()
    srv.p.send_signal(signal.SIGTERM)
    srv.finish()


def test_client_errors():
    """What tcpchat-client says when it cannot chat, word for word."""
    srv, bport, lport, jport = start_server()
    addr = f"127.0.0.1:{bport}"
    # A port nobody listens on: the one of a server that is gone.
    gone = socket.socket()
    gone.bind(("127.0.0.1", 0))
    dead = gone.getsockname()[1]
    gone.close()
    code, out, err = Proc([CLIENT, "--server", f"127.0.0.1:{dead}",
                           "--name", "x", "--listen-only"]).finish()
    check("refused: exit 1 and the exact message",
          code == 1 and err == [f"tcpchat-client: cannot connect to "
                                f"127.0.0.1:{dead}: Connection refused"],
          f"{code} {err}")

    # An HTTP server: the JSON client's HELLO line gets an error page.
    http = socket.socket()
    http.bind(("127.0.0.1", 0))
    http.listen(4)
    hport = http.getsockname()[1]

    def serve_http():
        c, _ = http.accept()
        c.recv(4096)
        c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        c.close()
    threading.Thread(target=serve_http, daemon=True).start()
    code, out, err = Proc([CLIENT, "--server", f"127.0.0.1:{hport}",
                           "--codec", "json", "--name", "x"]).finish()
    check("HTTP server: exit 1 at once, naming the codec and what it sent",
          code == 1 and err == [
              f"tcpchat-client: cannot connect to 127.0.0.1:{hport}: the "
              "server does not speak the json codec: it sent "
              "\"HTTP/1.1 400 Bad Request...\" (an HTTP server); --codec "
              "chooses binary, line or json"], f"{code} {err}")
    http.close()

    # A binary client at the line listener sees its greeting.
    code, out, err = Proc([CLIENT, "--server", f"127.0.0.1:{lport}",
                           "--name", "x", "--listen-only"]).finish()
    check("binary client at the line port: exit 1, told at once",
          code == 1 and len(err) == 1 and err[0].startswith(
              f"tcpchat-client: cannot connect to 127.0.0.1:{lport}: the "
              "server does not speak the binary codec: it sent \"=== ")
          and err[0].endswith("; --codec chooses binary, line or json"),
          f"{code} {err}")

    # No "(type /help)" without a terminal; blank lines are not sent.
    peer = LinePeer(lport)
    peer.send("blankwatch")
    peer.expect(r"^=== welcome blankwatch$")
    code, out, err = script(addr, "blanks", "   \n\t \nafter blanks\n")
    check("script mode: the connected line has no /help hint",
          code == 0 and out[:1] == [f"=== connected to {addr} as blanks"],
          f"{code} {out} {err}")
    seen = peer.lines_until(r"^blanks: after blanks$")
    check("script mode: lines of blanks are not sent",
          seen is not None and not any(l.startswith("blanks: ") and
                                       l != "blanks: after blanks"
                                       for l in seen), str(seen))
    w = Proc([CLIENT, "--server", addr, "--name", "quietly",
              "--listen-only"])
    check("listen-only: the connected line has no /help hint",
          w.wait_line(r"^=== connected", which="out") is not None and
          w.out_lines[-1] == f"=== connected to {addr} as quietly",
          str(w.out_lines))
    w.p.send_signal(signal.SIGTERM)
    code, _, _ = w.finish()
    check("listen-only: SIGTERM exits 143", code == 143, f"{code}")
    peer.close()
    srv.p.send_signal(signal.SIGTERM)
    srv.finish()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def store_server(port, store):
    """A server with a store on a fixed binary port; returns it once it
    listens."""
    srv = Proc([SERVER, "--listen", f"binary@127.0.0.1:{port}",
                "--store", store, "--log-level", "debug"])
    check("store server listens",
          srv.wait_line(r"listening on \S+:\d+") is not None)
    return srv


def test_history_reconnect():
    """--history N at login, /history, and a reconnect across a restart
    of the server (killed with SIGKILL) on the same port."""
    tmp = tempfile.mkdtemp(prefix="tcpchat-e2e-")
    store = os.path.join(tmp, "chat.db")
    port = free_port()
    addr = f"127.0.0.1:{port}"
    srv = store_server(port, store)
    code, _, err = script(addr, "poster", "one\ntwo\nthree\n")
    check("poster sends three texts", code == 0, f"{code} {err}")

    w = watcher(addr, "late", "--history", "2")
    stamp = r"\[\d\d:\d\d\] "
    check("--history 2: the second text, with its time",
          w.wait_line(rf"^{stamp}poster: two$", which="out") is not None,
          str(w.out_lines))
    check("--history 2: the third text",
          w.wait_line(rf"^{stamp}poster: three$", which="out") is not None,
          str(w.out_lines))
    check("--history 2: the end line",
          w.wait_line(r"^-!- #lobby: 2 texts \(2-3\)$", which="out")
          is not None, str(w.out_lines))
    check("--history 2: not the first text",
          not any("poster: one" in l for l in w.out_lines), str(w.out_lines))

    asker = Proc([CLIENT, "--server", addr, "--name", "asker"],
                 stdin="/history 1\n")
    check("/history 1: the latest text",
          asker.wait_line(rf"^{stamp}poster: three$", which="out")
          is not None, str(asker.out_lines))
    check("/history 1: the end line",
          asker.wait_line(r"^-!- #lobby: 1 texts \(3-3\)$", which="out")
          is not None, str(asker.out_lines))
    asker.p.stdin.close()
    code, out, err = asker.finish()
    check("/history: exits 0", code == 0, f"{code} {err}")

    srv.p.kill()
    srv.finish()
    check("server killed: the client says it reconnects",
          w.wait_line(r"^-!- connection lost \(.*\); reconnecting in "
                      r"\d+\.\d s \(attempt \d+\)$", which="out")
          is not None, str(w.out_lines))
    srv = store_server(port, store)
    check("server back: the client says it reconnected",
          w.wait_line(r"^-!- reconnected$", which="out") is not None,
          str(w.out_lines))
    code, _, err = script(addr, "poster", "after restart\n")
    check("poster sends after the restart", code == 0, f"{code} {err}")
    check("the reconnected client gets the text",
          w.wait_line(r"^poster: after restart$", which="out") is not None,
          str(w.out_lines))
    stop_watcher(w, "late")
    srv.p.send_signal(signal.SIGTERM)
    srv.finish()
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    try:
        test_bad_arguments()
        test_chat()
        test_rooms()
        test_nc_rooms()
        test_host_loop()
        test_client_errors()
        test_nc_people()
        test_history_reconnect()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
