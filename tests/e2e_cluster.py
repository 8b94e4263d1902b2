"""Three tcpchat-server processes as one chat through a real engine:
redis-server, or nats-server -js, started here on a free loopback port
with a temporary directory (engines.py), stopped by PID.

    e2e_cluster.py TCPCHAT_SERVER redis|nats

Users of the JSON codec on different servers check: a name is unique
across servers; a room has one order and one seq everywhere; WHO, a
room's members and the room list are cluster-wide; private messages and
topics cross servers; a user resumes on another server with no gap; a
server killed with SIGKILL: its users leave the others' presence in
time, with reason LOST, and the others keep chatting; the engine killed
and restarted under traffic: users on one server keep chatting, nothing
is lost, every acknowledged text arrives everywhere.  Nothing skips: an
engine that cannot start fails the test, saying why."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engines  # noqa: E402

DEADLINE = 20.0
LOST = 9  # TCPCHAT_REASON_LOST
E_NAMEINUSE, E_NOTFOUND, E_BUS = 8, 15, 30
AFTER = 0x10

failures = 0
passed = 0


def check(name, cond, detail=""):
    global failures, passed
    if cond:
        passed += 1
        print(f"ok - {name}")
    else:
        failures += 1
        print(f"not ok - {name}" + (f": {detail}" if detail else ""))
    sys.stdout.flush()
    return cond


class Server:
    """tcpchat-server on a JSON listener, in a cluster; stderr kept."""

    def __init__(self, exe, bus, node):
        self.node = node
        self.p = subprocess.Popen(
            [exe, "-l", "json@127.0.0.1:0", "--bus", bus, "--node", node,
             "--log-level", "info", "--rate", "0", "--rate-bytes", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, errors="replace")
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()
        m = self.wait(r"listening on 127\.0\.0\.1:(\d+)")
        if not m:
            raise RuntimeError(f"{node} did not start:\n{self.output()}")
        self.port = int(m.group(1))

    def _pump(self):
        for line in self.p.stderr:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()

    def mark(self):
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
                if left <= 0 or self.p.poll() is not None:
                    return None
                self.cv.wait(min(left, 0.5))

    def output(self):
        with self.cv:
            return "\n".join(self.lines[-40:])

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return "timeout"


class Peer:
    """A protocol-2 user of the JSON Lines codec, read by a thread of its
    own into a list that the test waits on."""

    def __init__(self, port, name, **hello):
        self.name = name
        self.s = socket.create_connection(("127.0.0.1", port),
                                          timeout=DEADLINE)
        self.f = self.s.makefile("rwb", buffering=0)
        self.msgs = []
        self.cv = threading.Condition()
        self.closed = False
        threading.Thread(target=self._pump, daemon=True).start()
        self.send(type="hello", sender=name, code=2, caps=7, **hello)
        self.welcome = self.want(lambda m: m["type"] in ("welcome",
                                                         "error"))

    def _pump(self):
        try:
            for line in self.f:
                try:
                    m = json.loads(line)
                except ValueError:
                    m = {"type": "garbage", "line": line}
                with self.cv:
                    self.msgs.append(m)
                    self.cv.notify_all()
        except OSError:
            pass
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def send(self, **msg):
        try:
            self.f.write(json.dumps(msg).encode() + b"\n")
        except OSError:
            pass

    def want(self, pred, timeout=DEADLINE, start=0):
        """The first message (from index start) for which pred holds."""
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for m in self.msgs[start:]:
                    if pred(m):
                        return m
                left = end - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self.cv.wait(left)

    def all(self, pred):
        with self.cv:
            return [m for m in self.msgs if pred(m)]

    def wait_count(self, pred, n, timeout=DEADLINE):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                got = [m for m in self.msgs if pred(m)]
                if len(got) >= n:
                    return got
                left = end - time.monotonic()
                if left <= 0 or self.closed:
                    return got
                self.cv.wait(left)

    def mark(self):
        with self.cv:
            return len(self.msgs)

    def join(self, room, **extra):
        self.send(type="join", room=room, **extra)
        return self.want(lambda m: m["type"] == "join" and
                         m.get("room") == room and
                         m.get("sender") == self.name)

    def close(self):
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.s.close()


def is_text(room=None, sender=None):
    return lambda m: (m["type"] == "text" and
                      (room is None or m.get("room") == room) and
                      (sender is None or m.get("sender") == sender))


def who(peer, room=None):
    """WHO's answer: (count, names)."""
    start = peer.mark()
    if room:
        peer.send(type="who", room=room)
    else:
        peer.send(type="who")
    m = peer.want(lambda m: m["type"] == "who", start=start)
    if not m:
        return None, []
    return m.get("code"), sorted(m.get("body", "").split())


def who_until(peer, want_names, room=None):
    end = time.monotonic() + DEADLINE
    got = None
    while time.monotonic() < end:
        got = who(peer, room)
        if got[1] == sorted(want_names):
            return got
        time.sleep(0.1)
    return got


def test_names_and_presence(kind, s):
    ann = Peer(s[0].port, "ann")
    check(f"{kind}: ann logs in on s1", ann.welcome and
          ann.welcome["type"] == "welcome", str(ann.welcome))
    dup = Peer(s[1].port, "ann")
    check(f"{kind}: a second ann on s2 is refused, name in use",
          dup.welcome and dup.welcome["type"] == "error" and
          dup.welcome.get("code") == E_NAMEINUSE, str(dup.welcome))
    dup.close()
    bob = Peer(s[1].port, "bob")
    cat = Peer(s[2].port, "cat")
    check(f"{kind}: bob on s2 and cat on s3 log in",
          bob.welcome and bob.welcome["type"] == "welcome" and
          cat.welcome and cat.welcome["type"] == "welcome")
    check(f"{kind}: one epoch on every server",
          len({p.welcome.get("epoch") for p in (ann, bob, cat)}) == 1,
          str([p.welcome.get("epoch") for p in (ann, bob, cat)]))
    n, names = who_until(cat, ["ann", "bob", "cat"])
    check(f"{kind}: WHO on s3 lists the users of all servers",
          names == ["ann", "bob", "cat"] and n == 3, f"{n} {names}")
    for p in (ann, bob, cat):
        check(f"{kind}: {p.name} joins #dev", p.join("#dev") is not None)
    n, names = who_until(ann, ["ann", "bob", "cat"], "#dev")
    check(f"{kind}: WHO #dev on s1 lists its members on all servers",
          names == ["ann", "bob", "cat"] and n == 3, f"{n} {names}")
    start = ann.mark()
    ann.send(type="rooms")
    ann.want(lambda m: m["type"] == "rooms" and "room" not in m,
             start=start)
    dev = [m for m in ann.msgs[start:] if m["type"] == "rooms" and
           m.get("room") == "#dev"]
    check(f"{kind}: the room list counts #dev's members everywhere",
          dev and dev[0].get("code") == 3, str(dev))
    return ann, bob, cat


def test_room_order(kind, ann, bob, cat, n=100):
    peers = (ann, bob, cat)
    starts = {p.name: p.mark() for p in peers}
    for i in range(n):
        for p in peers:
            p.send(type="text", room="#dev", body=f"{p.name} {i}",
                   ref=f"{p.name}-{i}")
    acks = {}
    for p in peers:
        got = p.wait_count(lambda m: m["type"] == "ack" and
                           m.get("ref", "").startswith(p.name + "-"), n)
        acks[p.name] = {m["ref"]: m["seq"] for m in got}
        check(f"{kind}: {p.name} gets an ACK with a seq for each of its "
              f"{n} texts", len(acks[p.name]) == n and
              all(v for v in acks[p.name].values()), str(len(got)))
    seq_of = {}
    for name, a in acks.items():
        for ref, seq in a.items():
            who_, i = ref.rsplit("-", 1)
            seq_of[f"{who_} {i}"] = seq
    seqs = sorted(seq_of.values())
    check(f"{kind}: the {3 * n} texts have {3 * n} consecutive seqs",
          len(set(seqs)) == 3 * n and seqs[-1] - seqs[0] == 3 * n - 1,
          f"{seqs[:3]}..{seqs[-3:]}")
    for p in peers:
        got = p.wait_count(is_text("#dev"), 2 * n)
        got = [m for m in got if m.get("sender") != p.name]
        bodies = [m["body"] for m in got]
        ok_seq = all(m.get("seq") == seq_of.get(m["body"]) for m in got)
        ordered = all(got[i]["seq"] < got[i + 1]["seq"]
                      for i in range(len(got) - 1))
        check(f"{kind}: {p.name} gets the {2 * n} texts of the others "
              f"once, in seq order, with the seq every member sees",
              len(got) == 2 * n and len(set(bodies)) == 2 * n and ok_seq
              and ordered, f"{len(got)} {ok_seq} {ordered}")
    del starts
    return max(seqs)


def test_private_and_topic(kind, ann, bob, cat):
    ann.send(type="text", target="cat", body="psst cat")
    m = cat.want(lambda m: m["type"] == "text" and
                 m.get("body") == "psst cat")
    check(f"{kind}: a private message from s1 reaches cat on s3",
          m is not None and m.get("sender") == "ann" and
          m.get("target") == "cat", str(m))
    echo = ann.want(lambda m: m["type"] == "text" and
                    m.get("body") == "psst cat")
    check(f"{kind}: ann gets the echo", echo is not None and
          (echo.get("flags", 0) & 2) != 0, str(echo))
    ann.send(type="text", target="nobody", body="hello?")
    e = ann.want(lambda m: m["type"] == "error" and
                 m.get("code") == E_NOTFOUND)
    check(f"{kind}: a private message to nobody gets NOTFOUND", e is not
          None, str(e))
    bob.send(type="topic", room="#dev", body="cluster talk")
    for p in (ann, cat):
        t = p.want(lambda m: m["type"] == "topic" and
                   m.get("body") == "cluster talk")
        check(f"{kind}: the topic set on s2 reaches {p.name}",
              t is not None and t.get("sender") == "bob", str(t))


def test_pipelined_join(kind, s, ann):
    """A join and a text in one write to a room the server does not
    follow yet: the text waits for the join, which waits for the room."""
    ann.join("#fresh")
    fay = Peer(s[1].port, "fay")
    fay.f.write((json.dumps({"type": "join", "room": "#fresh"}) + "\n" +
                 json.dumps({"type": "text", "room": "#fresh",
                             "body": "first words", "ref": "f1"}) +
                 "\n").encode())
    ack = fay.want(lambda m: m["type"] in ("ack", "error") and
                   m.get("ref") == "f1")
    check(f"{kind}: a text sent right behind its join is acknowledged",
          ack is not None and ack["type"] == "ack", str(ack))
    m = ann.want(lambda m: m["type"] == "text" and
                 m.get("body") == "first words")
    check(f"{kind}: ... and reaches the room on the other server",
          m is not None and m.get("sender") == "fay", str(m))
    fay.close()
    ann.send(type="leave", room="#fresh")


def test_resume(kind, s, ann):
    dan = Peer(s[0].port, "dan")
    dan.join("#dev")
    ann.send(type="text", room="#dev", body="before dan goes", ref="r0")
    m = dan.want(lambda m: m["type"] == "text" and
                 m.get("body") == "before dan goes")
    check(f"{kind}: dan on s1 reads #dev", m is not None, str(m))
    if not m:
        return
    last, epoch = m["seq"], None
    epoch = dan.welcome.get("epoch")
    dan.close()
    for i in range(20):
        ann.send(type="text", room="#dev", body=f"missed {i}",
                 ref=f"miss-{i}")
    ann.wait_count(lambda m: m["type"] == "ack" and
                   m.get("ref", "").startswith("miss-"), 20)
    dan = Peer(s[1].port, "dan")
    check(f"{kind}: dan logs in again, on s2",
          dan.welcome and dan.welcome["type"] == "welcome",
          str(dan.welcome))
    dan.send(type="join", room="#dev", seq=last, epoch=epoch, flags=AFTER)
    end = dan.want(lambda m: m["type"] == "history" and
                   m.get("room") == "#dev")
    got = [m for m in dan.all(is_text("#dev"))
           if m.get("body", "").startswith("missed ")]
    seqs = [m["seq"] for m in got]
    check(f"{kind}: dan resumes #dev on s2 with no gap: the 20 texts "
          f"after seq {last}, in order",
          end is not None and [m["body"] for m in got] ==
          [f"missed {i}" for i in range(20)] and
          seqs == list(range(last + 1, last + 21)), f"{seqs} {end}")
    dan.close()


def test_kill_server(kind, s, ann, bob, cat):
    t0 = time.monotonic()
    s[2].p.send_signal(signal.SIGKILL)
    s[2].p.wait()
    left = ann.want(lambda m: m["type"] == "leave" and
                    m.get("sender") == "cat" and "room" not in m)
    dt = time.monotonic() - t0
    # The bound is 4 s (3 s of silence, checked each second); the test
    # allows 2 s more for a busy machine (sanitizers, CI).
    check(f"{kind}: kill -9 of s3: ann on s1 sees cat leave with reason "
          f"LOST within the 4 s bound ({dt:.1f} s)",
          left is not None and left.get("code") == LOST and dt < 6.0,
          str(left))
    bl = bob.want(lambda m: m["type"] == "leave" and
                  m.get("sender") == "cat")
    check(f"{kind}: bob on s2 sees cat leave too", bl is not None)
    n, names = who_until(bob, ["ann", "bob"])
    check(f"{kind}: WHO no longer lists cat", names == ["ann", "bob"],
          str(names))
    ann.send(type="text", room="#dev", body="still here")
    m = bob.want(lambda m: m["type"] == "text" and
                 m.get("body") == "still here")
    check(f"{kind}: ann and bob keep chatting", m is not None)
    # cat may log in again at once: s3's claim of the name is taken over
    cat2 = Peer(s[1].port, "cat")
    check(f"{kind}: cat logs in again on s2 after s3 died",
          cat2.welcome and cat2.welcome["type"] == "welcome",
          str(cat2.welcome))
    cat2.close()


def test_bus_outage(kind, eng, s, ann, bob):
    eve = Peer(s[0].port, "eve")
    eve.join("#dev")
    marks = [x.mark() for x in s[:2]]
    eng.kill()
    lost = [x.wait(r"cluster: lost the bus", m) for x, m in zip(s, marks)]
    check(f"{kind}: both servers log that the bus is lost",
          all(lost), "\n".join(x.output() for x in s[:2]))
    n = 30
    for i in range(n):
        ann.send(type="text", room="#dev", body=f"ann out {i}",
                 ref=f"out-{i}")
        bob.send(type="text", room="#dev", body=f"bob out {i}",
                 ref=f"bout-{i}")
    got = eve.wait_count(lambda m: m["type"] == "text" and
                         m.get("body", "").startswith("ann out "), n)
    check(f"{kind}: while the bus is down, eve on s1 still gets ann's "
          f"{n} texts", len(got) == n, str(len(got)))
    late = Peer(s[0].port, "late")
    check(f"{kind}: a new login while the bus is down is refused with "
          f"EBUS", late.welcome and late.welcome["type"] == "error" and
          late.welcome.get("code") == E_BUS, str(late.welcome))
    late.close()
    eng.restart()
    back = [x.wait(r"cluster: the bus is back", m, timeout=30)
            for x, m in zip(s, marks)]
    check(f"{kind}: both servers reconnect by themselves",
          all(back), "\n".join(x.output() for x in s[:2]))
    acks = ann.wait_count(lambda m: m["type"] == "ack" and
                          m.get("ref", "").startswith("out-"), n, 30)
    check(f"{kind}: each text ann sent while the bus was down is "
          f"acknowledged after it is back", len(acks) == n and
          all(m.get("seq") for m in acks), str(len(acks)))
    for p, other in ((bob, "ann"), (ann, "bob"), (eve, "bob")):
        got = p.wait_count(lambda m, o=other: m["type"] == "text" and
                           m.get("body", "").startswith(f"{o} out "),
                           n, 30)
        bodies = [m["body"] for m in got]
        check(f"{kind}: {p.name} gets all {n} texts {other} sent while "
              f"the bus was down, in order",
              bodies[:n] == [f"{other} out {i}" for i in range(n)],
              f"{len(bodies)} {bodies[:3]}")
    ann.send(type="text", room="#dev", body="after the storm")
    m = bob.want(lambda m: m["type"] == "text" and
                 m.get("body") == "after the storm")
    check(f"{kind}: chat goes on through the bus", m is not None)
    eve.close()


def run(kind, exe, tmp):
    if kind == "redis":
        eng = engines.Redis(tmp)
    else:
        eng = engines.Nats(tmp)
    servers = []
    try:
        for i in range(3):
            servers.append(Server(exe, eng.url, f"s{i + 1}"))
        ann, bob, cat = test_names_and_presence(kind, servers)
        test_room_order(kind, ann, bob, cat)
        test_private_and_topic(kind, ann, bob, cat)
        test_pipelined_join(kind, servers, ann)
        test_resume(kind, servers, ann)
        test_kill_server(kind, servers, ann, bob, cat)
        test_bus_outage(kind, eng, servers, ann, bob)
        for p in (ann, bob):
            p.close()
        for x in servers[:2]:
            rc = x.stop()
            check(f"{kind}: {x.node} stops cleanly", rc == 0,
                  f"{rc}\n{x.output()}")
    except Exception as e:  # a failure to run is a failure, never a skip
        check(f"{kind}: the test ran", False, repr(e))
        for x in servers:
            print(f"# {x.node}:\n{x.output()}")
    finally:
        for x in servers:
            if x.p.poll() is None:
                x.p.kill()
                x.p.wait()
        eng.stop()


def main():
    exe, kinds = sys.argv[1], sys.argv[2:] or ["redis", "nats"]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            run(kind, exe, tmp)
    print(f"{passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
