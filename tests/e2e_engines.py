#!/usr/bin/env python3
"""Self-test of engines.py: a real redis-server and nats-server -js
started, used through their raw protocols (Redis: SET and GET in RESP;
NATS: a SUB/PUB round trip and a JetStream stream created through
$JS.API.STREAM.CREATE with a reply inbox), killed, restarted on the same
port and directory, stopped.  A server that cannot start is a failure
with the reason, never a skip; a wrong program is refused with its
command line.

usage: e2e_engines.py
Every wait has a deadline; every process is stopped at the end."""
import json
import os
import socket
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engines  # noqa: E402

DEADLINE = 10.0
failed = 0
passed = 0


def check(ok, what, detail=""):
    global failed, passed
    if ok:
        print("ok - " + what)
        passed += 1
    else:
        print("FAIL - " + what + (f": {detail}" if detail else ""))
        failed += 1


def connect(engine):
    return socket.create_connection((engine.host, engine.port),
                                    timeout=DEADLINE)


def refused(engine):
    """True when nothing accepts on the engine's port."""
    try:
        connect(engine).close()
        return False
    except OSError:
        return True


class Conn:
    """A socket to an engine, read through a buffered file."""

    def __init__(self, engine):
        self.s = connect(engine)
        self.f = self.s.makefile("rb")

    def close(self):
        self.f.close()
        self.s.close()


def kill_restart(engine, name):
    """SIGKILL, then a restart on the same port as a new process."""
    port, pid = engine.port, engine.pid
    engine.kill()
    check(engine.pid is None and refused(engine),
          f"{name} killed: port closed")
    engine.restart()
    check(engine.port == port and engine.pid not in (None, pid),
          f"{name} restarted on port {engine.port}, pid {engine.pid}")


def stop(engine, name):
    status = engine.stop()
    check(status == engine.CLEAN_EXIT and refused(engine),
          f"{name} stopped by SIGTERM (status {status})")


# ---- Redis: RESP ---------------------------------------------------------

class Resp(Conn):
    """A raw RESP connection: commands out, one reply in."""

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.reply()

    def reply(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise OSError(f"short reply {line!r}")
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b"-", b":"):
            return kind + rest
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            if len(data) != n + 2 or data[-2:] != b"\r\n":
                raise OSError("bad bulk string")
            return data[:-2]
        raise OSError(f"unexpected reply {line!r}")


def redis_test(tmp):
    with engines.Redis(tmp) as r:
        check(r.url == f"redis://127.0.0.1:{r.port}", f"redis url {r.url}")
        c = Resp(r)
        check(c.call("SET", "k", "v\r\n1") == b"+OK", "redis SET")
        check(c.call("GET", "k") == b"v\r\n1", "redis GET")
        c.close()
        kill_restart(r, "redis")
        c = Resp(r)
        # No snapshot, no AOF: a new, empty dataset.
        check(c.call("GET", "k") is None, "redis restarted empty")
        check(c.call("PING") == b"+PONG", "redis PING after restart")
        c.close()
        stop(r, "redis")


# ---- NATS: the raw client protocol --------------------------------------

class NatsConn(Conn):
    """A raw NATS connection: INFO read, CONNECT sent, MSGs parsed."""

    def __init__(self, engine):
        super().__init__(engine)
        info = self.f.readline()
        if not info.startswith(b"INFO {"):
            raise OSError(f"no INFO: {info!r}")
        self.info = json.loads(info[5:])
        self.send('CONNECT {"verbose":false,"pedantic":false,'
                  '"protocol":1}\r\n')

    def send(self, text):
        self.s.sendall(text.encode() if isinstance(text, str) else text)

    def pub(self, subject, payload, reply=""):
        payload = payload.encode() if isinstance(payload, str) else payload
        head = f"PUB {subject} {reply} {len(payload)}\r\n".replace("  ", " ")
        self.send(head.encode() + payload + b"\r\n")

    def msg(self):
        """The next MSG as (subject, sid, payload); answers PINGs."""
        while True:
            line = self.f.readline()
            if not line.endswith(b"\r\n"):
                raise OSError(f"connection closed ({line!r})")
            words = line.split()
            if words[0] == b"PING":
                self.send("PONG\r\n")
            elif words[0] == b"MSG":
                n = int(words[-1])
                data = self.f.read(n + 2)
                if len(data) != n + 2:
                    raise OSError("short MSG payload")
                return words[1].decode(), words[2].decode(), data[:-2]
            elif words[0] == b"-ERR":
                raise OSError(line.decode().strip())
            # PONG, +OK, INFO updates: nothing to do.

    def request(self, subject, payload, inbox, sid):
        self.send(f"SUB {inbox} {sid}\r\n")
        self.pub(subject, payload, reply=inbox)
        subj, got_sid, data = self.msg()
        if subj != inbox or got_sid != str(sid):
            raise OSError(f"answer on {subj} sid {got_sid}")
        return json.loads(data)


def nats_test(tmp):
    with engines.Nats(tmp) as n:
        check(n.url == f"nats://127.0.0.1:{n.port}", f"nats url {n.url}")
        c = NatsConn(n)
        check(c.info.get("jetstream") is True, "nats INFO says jetstream")
        c.send("SUB chat.test 1\r\n")
        c.pub("chat.test", "hello\r\nworld")
        check(c.msg() == ("chat.test", "1", b"hello\r\nworld"),
              "nats SUB/PUB round trip")
        conf = {"name": "T", "subjects": ["t.>"], "storage": "file"}
        ans = c.request("$JS.API.STREAM.CREATE.T", json.dumps(conf),
                        "_INBOX.e2e.1", 2)
        check("error" not in ans and ans.get("config", {}).get("name") == "T",
              "jetstream stream created", ans)
        # A publish with a reply inbox gets JetStream's acknowledgment.
        ans = c.request("t.one", "kept", "_INBOX.e2e.ack", 4)
        check(ans == {"stream": "T", "seq": 1}, "jetstream publish acked",
              ans)
        ans = c.request("$JS.API.STREAM.INFO.T", "", "_INBOX.e2e.2", 3)
        check(ans.get("state", {}).get("messages") == 1,
              "jetstream stream holds the message", ans)
        c.close()
        kill_restart(n, "nats")
        c = NatsConn(n)
        # File storage in the same directory: the stream is still there.
        ans = c.request("$JS.API.STREAM.INFO.T", "", "_INBOX.e2e.3", 1)
        check(ans.get("config", {}).get("name") == "T",
              "jetstream stream survives kill and restart", ans)
        c.close()
        stop(n, "nats")


def refused_program(tmp):
    """A program that exits at once: EngineError naming the command."""
    for cls in (engines.Redis, engines.Nats):
        try:
            e = cls(tmp, exe="/bin/false")
            e.stop()
            check(False, f"{cls.__name__} with /bin/false started")
        except engines.EngineError as err:
            text = str(err)
            check("exited with status 1" in text and
                  "command: /bin/false -" in text,
                  f"{cls.__name__} with /bin/false refused", text)


for test in (redis_test, nats_test, refused_program):
    with tempfile.TemporaryDirectory(prefix="e2e-engines-") as tmp:
        try:
            test(tmp)
        except (engines.EngineError, OSError, ValueError) as err:
            check(False, test.__name__, f"{type(err).__name__}: {err}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
