#!/usr/bin/env python3
"""End-to-end tests of what tcpchat-server tells its operator: the
start-up lines, the statistics lines and their rates, the log levels, and
the messages and exit status of bad arguments; run as real processes over
loopback.

usage: e2e_server.py SERVER HOST_LOOP
Every wait has a deadline; every process is killed at the end.
"""
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

SERVER, HOST_LOOP = sys.argv[1:3]
DEADLINE = 10.0
PROG = "tcpchat-server"
TRY_HELP = f"Try '{PROG} --help' for more information."

# The library's per-connection debug lines (accepted, handshake, room
# join, close) are checked below as expected failures while this is
# False: a check that passes anyway fails the test, as a reminder to set
# it to True once the library writes those lines.
LIBRARY_DEBUG_LINES = True

# "2026-12-02 10:00:00.105 info  TEXT": local time, a level padded to
# five columns, one space, the text.
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) "
                  r"(error|warn |info |debug|stats) (.*)$")
STATS_KEYS = ["uptime", "interval", "clients", "users", "accepted",
              "msgs_in", "msgs_in_rate", "msgs_out", "msgs_out_rate",
              "bytes_in", "bytes_in_rate", "bytes_out", "bytes_out_rate",
              "dropped", "dropped_new", "proto_errors", "refused", "rooms",
              "private", "saved", "unsaved", "refused_addr", "limited",
              "tls_failed"]
UPTIME = re.compile(r"^(\d+d\d\dh\d\dm\d\ds|\d+h\d\dm\d\ds|\d+m\d\ds|\d+s)$")

procs = []
results = {"passed": 0, "failed": 0, "xfail": 0}


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        print(f"ok - {name}")
    else:
        results["failed"] += 1
        print(f"FAIL - {name} {detail}")


def check_lib_debug(name, cond, detail=""):
    """A check of a library debug line: see LIBRARY_DEBUG_LINES."""
    if LIBRARY_DEBUG_LINES:
        check(name, cond, detail)
    elif cond:
        results["failed"] += 1
        print(f"FAIL - {name}: passes; set LIBRARY_DEBUG_LINES = True")
    else:
        results["xfail"] += 1
        print(f"xfail - {name} (needs the library's debug lines)")


class Server:
    """tcpchat-server with its stderr read, line by line, by a thread."""

    def __init__(self, *args):
        self.p = subprocess.Popen([SERVER, *args], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        procs.append(self.p)
        self.q = queue.Queue()
        self.lines = []  # every line read so far, parsed or not
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for raw in iter(self.p.stderr.readline, b""):
            self.q.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.q.put(None)

    def wait(self, level, pattern, timeout=DEADLINE):
        """Returns the match of pattern against the text of the next new
        line of that level ("info", ...) that matches, or None."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                self.q.put(None)
                break
            self.lines.append(line)
            m = LINE.match(line)
            if m and m.group(2).strip() == level:
                t = re.search(pattern, m.group(3))
                if t:
                    return t
        return None

    def stop(self, sig=signal.SIGTERM):
        """Signals the server, waits for it; returns its exit status and
        reads the rest of its lines."""
        self.p.send_signal(sig)
        try:
            code = self.p.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            code = "timeout"
        self.drain()
        return code

    def drain(self, timeout=DEADLINE):
        """Reads the lines left, up to the end of the output."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                self.q.put(None)
                break
            self.lines.append(line)

    def texts(self, level):
        out = []
        for line in self.lines:
            m = LINE.match(line)
            if m and m.group(2).strip() == level:
                out.append(m.group(3))
        return out


class LinePeer:
    """An nc-like socket on a line-codec listener."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          timeout=DEADLINE)
        self.port = self.s.getsockname()[1]
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

    def closed(self, timeout=DEADLINE):
        """True once the server has closed the connection."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.s.settimeout(max(0.01, end - time.monotonic()))
            try:
                if not self.s.recv(65536):
                    return True
            except socket.timeout:
                break
            except ConnectionResetError:
                return True
        return False

    def join(self, name):
        self.send(name)
        return self.expect(rf"^=== welcome {re.escape(name)}$") is not None

    def close(self):
        self.s.close()


def start(*args, listeners=1):
    """Starts a server; returns it and the ports of its start-up lines."""
    srv = Server(*args)
    ports = []
    for _ in range(listeners):
        m = srv.wait("info", r"^listening on \S+:(\d+) \(")
        ports.append(int(m.group(1)) if m else 0)
    return srv, ports


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stats_of(text):
    """The KEY=VALUE words of a stats line, in order."""
    return [tuple(w.split("=", 1)) for w in text.split()]


def number(value):
    """12, 12.0/s, 1.000s -> float"""
    return float(value.rstrip("s").rstrip("/"))


def test_startup():
    srv, ports = start("--listen", "binary@127.0.0.1:0",
                       "--listen", "line@127.0.0.1:0",
                       "--listen", "json@:0", listeners=3)
    texts = srv.texts("info")
    bport, lport, jport = ports
    want = [f"listening on 127.0.0.1:{bport} (binary codec)",
            f"listening on 127.0.0.1:{lport} (line codec)",
            f"listening on 0.0.0.0:{jport} (json codec)"]
    check("start-up: one exact line per listener, ephemeral ports shown",
          texts[:3] == want and all(p > 0 for p in ports), str(texts))
    check("start-up: the port is said once per line",
          all(t.count(str(p)) == 1 for t, p in zip(texts, ports))
          and not any("port" in t for t in texts[:3]), str(texts))
    peer = LinePeer(lport)
    check("start-up: the line port printed is the real one",
          peer.join("probe"))
    peer.close()
    for port in (bport, jport):
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE):
            pass
    code = srv.stop()
    check("start-up: exits 0 on SIGTERM", code == 0, f"{code}")
    check("start-up: every line of the server has the documented form",
          len(srv.lines) > 3 and all(LINE.match(l) for l in srv.lines),
          str(srv.lines))

    # A fixed port is printed as given; a port in use is an exact error.
    for _ in range(3):
        port = free_port()
        srv, ports = start("--listen", f"line@127.0.0.1:{port}")
        if ports == [port]:
            break
        srv.stop()
    check("start-up: a fixed port, as given",
          srv.texts("info")[:1] == [f"listening on 127.0.0.1:{port} "
                                     "(line codec)"],
          str(srv.texts("info")))
    busy = subprocess.run([SERVER, "--listen", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=DEADLINE)
    check("port in use: exit 1 and an exact message",
          busy.returncode == 1 and busy.stderr.splitlines() == [
              f"{PROG}: cannot listen on 127.0.0.1:{port}: "
              "Address already in use"],
          f"{busy.returncode} {busy.stderr!r}")
    host = subprocess.run([HOST_LOOP, f"127.0.0.1:{port}"],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=DEADLINE)
    check("host-loop, port in use: exit 1 and an exact message",
          host.returncode == 1 and host.stderr.splitlines() == [
              f"host-loop: cannot listen on 127.0.0.1:{port}: "
              "Address already in use"],
          f"{host.returncode} {host.stderr!r}")
    srv.stop()


def check_stats_line(what, text):
    words = stats_of(text)
    keys = [k for k, _ in words]
    check(f"{what}: the keys in the documented order", keys == STATS_KEYS,
          text)
    if keys != STATS_KEYS:
        return None
    d = dict(words)
    ok = UPTIME.match(d["uptime"]) and re.fullmatch(r"\d+\.\d{3}s",
                                                     d["interval"])
    for k in STATS_KEYS[2:]:
        pat = r"\d+\.\d/s" if k.endswith("_rate") else r"\d+"
        ok = ok and re.fullmatch(pat, d[k])
    check(f"{what}: every value has its documented form", bool(ok), text)
    return d if ok else None


def test_stats_rates():
    srv, (port,) = start("--listen", "line@127.0.0.1:0", "--stats", "1")
    peer = LinePeer(port)
    check("stats: the user joins", peer.join("meter"))
    # The first line that counts the join: HELLO, then nothing more from us.
    m = srv.wait("stats", r"users=1 ")
    first = check_stats_line("stats --stats 1", m.string) if m else None
    check("stats: a line every second", first is not None)
    if not first:
        srv.stop()
        return
    n = 50
    lines = [f"message {i}" for i in range(n)]
    sent = sum(len(l) + 1 for l in lines)
    peer.s.sendall("".join(l + "\n" for l in lines).encode())
    base = first
    seen = []
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        m = srv.wait("stats", r"^uptime=", timeout=end - time.monotonic())
        d = check_stats_line("stats: a later line", m.string) if m else None
        if not d:
            break
        seen.append(d)
        if int(d["msgs_in"]) >= int(base["msgs_in"]) + n:
            break
    last = seen[-1] if seen else None
    check("stats: msgs_in grows by the messages sent",
          last is not None and
          int(last["msgs_in"]) == int(base["msgs_in"]) + n, str(last))
    check("stats: bytes_in grows by the bytes sent",
          last is not None and
          int(last["bytes_in"]) == int(base["bytes_in"]) + sent, str(last))
    prev = base
    good = bool(seen)
    for d in seen:
        dt = number(d["interval"])
        for k in ("msgs_in", "msgs_out", "bytes_in", "bytes_out"):
            want = (int(d[k]) - int(prev[k])) / dt
            have = number(d[k + "_rate"])
            if abs(have - want) > 0.05 + want * 0.002:
                good = False
                print(f"# {k}_rate {have} but {int(d[k]) - int(prev[k])} "
                      f"in {dt} s")
        good = good and 0.5 <= dt <= 3.0
        good = good and int(d["dropped_new"]) == \
            int(d["dropped"]) - int(prev["dropped"])
        prev = d
    check("stats: each rate is its counter's growth over the interval, "
          "intervals about 1 s", good, str(seen))
    check("stats: the load shows as a msgs_in rate above 0",
          any(number(d["msgs_in_rate"]) > 0 for d in seen), str(seen))
    peer.close()
    code = srv.stop()
    check("stats: exits 0", code == 0, f"{code}")
    texts = srv.texts("stats")
    check("stats: a last line at exit",
          bool(texts) and check_stats_line("stats at exit", texts[-1])
          is not None and srv.lines[-1].endswith(texts[-1]), str(texts[-1:]))


def test_sigusr1():
    srv, _ = start("--listen", "line@127.0.0.1:0")
    srv.p.send_signal(signal.SIGUSR1)
    m = srv.wait("stats", r"^uptime=")
    check("SIGUSR1: a stats line", m is not None)
    if m:
        check_stats_line("SIGUSR1", m.string)
    srv.p.send_signal(signal.SIGUSR1)
    check("SIGUSR1: another one", srv.wait("stats", r"^uptime=") is not None)
    code = srv.stop()
    check("SIGUSR1: the server exits 0 after", code == 0, f"{code}")


def session(level):
    """A line user's session (join, a room, a quit) and a name taken,
    against a server at --log-level level.  Returns the stopped server,
    the port of the user who was refused, the server's port and its exit
    status."""
    srv, (port,) = start("--listen", "line@127.0.0.1:0",
                         "--log-level", level)
    user = LinePeer(port)
    ok = user.join("dbg")
    user.send("/join #dev")
    ok = ok and user.expect(r"^--> dbg joined #dev$") is not None
    dup = LinePeer(port)
    dup.send("dbg")
    ok = ok and dup.expect(r"^-!- error 8: ") is not None
    dup_port = dup.port
    dup.close()
    user.send("/quit")
    # The server logs a close before it closes the socket.
    ok = ok and user.closed()
    check(f"--log-level {level}: the session runs", ok)
    user.close()
    code = srv.stop()
    return srv, dup_port, port, code


def test_levels():
    srv, dup_port, port, code = session("info")
    check("--log-level info: exits 0", code == 0, f"{code}")
    info = srv.texts("info")
    check("info: the join line",
          any(re.fullmatch(r"conn \d+: dbg joined from 127\.0\.0\.1:\d+ "
                           r"\(line\)", t) for t in info), str(info))
    check("info: the leave line",
          any(re.fullmatch(r"conn \d+: dbg left \(quit\)", t) for t in info),
          str(info))
    taken = (rf"conn \d+: 127\.0\.0\.1:{dup_port} closed before joining "
             r"\(error: name already in use\)")
    check("info: a taken name is logged at info, exactly",
          any(re.fullmatch(taken, t) for t in info), str(info))
    check("info: no warn line (a taken name is no warning)",
          not srv.texts("warn"), str(srv.texts("warn")))
    check("info: no debug line", not srv.texts("debug"),
          str(srv.texts("debug")))

    srv, dup_port, _, code = session("warn")
    check("--log-level warn: exits 0", code == 0, f"{code}")
    info = srv.texts("info")
    check("warn: only the start-up and the signal at info",
          len(info) == 2 and info[0].startswith("listening on ")
          and info[1] == "SIGTERM: shutting down", str(info))
    check("warn: nothing at warn or debug for a normal session",
          not srv.texts("warn") and not srv.texts("debug"),
          str(srv.lines))

    srv, dup_port, port, code = session("debug")
    check("--log-level debug: exits 0", code == 0, f"{code}")
    debug = srv.texts("debug")
    check("debug: the info lines are there too",
          any(re.fullmatch(r"conn \d+: dbg joined from 127\.0\.0\.1:\d+ "
                           r"\(line\)", t) for t in srv.texts("info")))
    check("debug: the taken name is still at info, not warn",
          not srv.texts("warn") and
          any(f"127.0.0.1:{dup_port} closed before joining" in t
              for t in srv.texts("info")), str(srv.lines))
    # The library's lines, by kind (their exact words may change).
    for name, pattern in (
            ("accepted, with peer and listener",
             rf"^conn \d+: accepted from 127\.0\.0\.1:\d+ on "
             rf"line@127\.0\.0\.1:{port}$"),
            ("the handshake's result",
             r"^conn \d+: dbg joined \(protocol \d+, line\)"),
            ("a room joined", r"^conn \d+ \(dbg\): joined #dev"),
            ("the close, with reason and duration",
             r"^conn \d+ \(dbg\): closed \(quit\) after \d+(\.\d+)? s")):
        check_lib_debug(f"debug: the library logs {name}",
                        any(re.search(pattern, t) for t in debug),
                        str(debug))


def flood(policy, level, pattern):
    """A user who never reads, with a small receive buffer, and another
    who sends him about 8 MB; then waits for a line of level that matches
    pattern.  Returns the stopped server."""
    srv, (port,) = start("--listen", "line@127.0.0.1:0", "--queue", "4",
                         "--slow-policy", policy, "--log-level", "warn",
                         "--stats", "1", "--rate", "0", "--rate-bytes", "0")
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(DEADLINE)
    slow.connect(("127.0.0.1", port))
    slow.sendall(b"slow\n")
    got = b""
    while b"=== welcome slow\n" not in got:
        data = slow.recv(4096)
        if not data:
            break
        got += data
    talker = LinePeer(port)
    ok = talker.join("talker")
    # Whatever the server does with it, it keeps reading the talker.
    line = ("x" * 1000 + "\n").encode()
    talker.s.sendall(line * 8000)
    talker.send("/who")
    ok = ok and talker.expect(r"^=== \d+ online") is not None
    check(f"--slow-policy {policy}: the talker is served throughout", ok)
    srv.wait(level, pattern)
    talker.close()
    slow.close()
    srv.stop()
    return srv


def test_slow_reader():
    srv = flood("drop-newest", "stats", r"dropped_new=[1-9]")
    warns = srv.texts("warn")
    counts = [int(m.group(1)) for m in (
        re.fullmatch(r"conn \d+: slow reads too slowly: (\d+) message\(s\) "
                     r"dropped", t) for t in warns) if m]
    # One line when the total first reaches 1, 10, 100, ...: one per
    # power of ten, even when the total jumps past some.
    decades = [len(str(c)) for c in counts]
    check("slow reader: reported at warn, once per power of ten reached",
          bool(counts) and decades == sorted(set(decades))
          and len(counts) == len(warns), str(warns))
    stats = [dict(stats_of(t)) for t in srv.texts("stats")]
    check("slow reader: the stats lines count the drops",
          any(int(d.get("dropped_new", 0)) > 0 for d in stats)
          and counts and int(stats[-1]["dropped"]) >= counts[-1],
          str(stats[-1:]))

    srv = flood("disconnect", "warn", r"^conn \d+: slow left ")
    warns = srv.texts("warn")
    check("slow reader: a disconnect for it is logged at warn",
          any(re.fullmatch(r"conn \d+: slow left \(slow: too slow to keep "
                           r"up\)", t) for t in warns), str(warns))


def test_bad_arguments():
    cases = [
        (["--max-clients", "lots"],
         "invalid --max-clients 'lots' (1..1000000)"),
        (["--listen", "gopher@127.0.0.1:1"],
         "invalid --listen 'gopher@127.0.0.1:1' "
         "(want [tls+][binary|line|json@]HOST:PORT)"),
        (["--slow-policy", "panic"],
         "invalid --slow-policy 'panic' "
         "(drop-newest, drop-oldest or disconnect)"),
        (["--stats", "-1"], "invalid --stats '-1' (0..86400 seconds)"),
        (["--stats"], "option '--stats' needs a value"),
        (["-s"], "option '-s' needs a value"),
        (["--log-level", "verbose"],
         "invalid --log-level 'verbose' (error, warn, info or debug)"),
        (["--default-room", "lobby"],
         "invalid --default-room 'lobby' ('#' and 1-63 bytes, no spaces, "
         "commas or colons)"),
        (["--idle-timeout", "86401"],
         "invalid --idle-timeout '86401' (0..86400 seconds)"),
        (["--queue-bytes", "63"],
         "invalid --queue-bytes '63' (64..2147483647)"),
        (["--batch-us", "1e3"], "invalid --batch-us '1e3' (0..1000000)"),
        (["--rate", "-1"], "invalid --rate '-1' (0..1000000)"),
        (["--rate-burst", "0"], "invalid --rate-burst '0' (1..1000000)"),
        (["--rate-kick", "x"], "invalid --rate-kick 'x' (0..86400)"),
        (["--bogus"], "unknown option '--bogus'"),
        (["-Z"], "unknown option '-Z'"),
        (["extra"], "unexpected argument 'extra'"),
    ]
    for args, msg in cases:
        p = subprocess.run([SERVER, *args], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=DEADLINE)
        check(f"bad arguments {args}: exit 2 and the exact message",
              p.returncode == 2 and p.stdout == "" and
              p.stderr.splitlines() == [f"{PROG}: {msg}", TRY_HELP],
              f"{p.returncode} {p.stderr!r}")


def main():
    try:
        for test in (test_bad_arguments, test_startup, test_stats_rates,
                     test_sigusr1, test_levels, test_slow_reader):
            try:
                test()
            except Exception as e:  # a failure, and on to the next test
                check(f"{test.__name__} runs to its end", False, repr(e))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    print(f"{results['passed']} passed, {results['failed']} failed, "
          f"{results['xfail']} expected failures")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
