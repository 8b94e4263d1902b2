#!/usr/bin/env python3
"""End-to-end tests of logins with tcpchat-server --users: hashes made by
--hash-password, the right password over the binary codec (tcpchat-client
with TCPCHAT_PASSWORD or --password-file) and the line codec ("NAME
PASSWORD"), the same answer for a wrong password and an unknown name,
anonymous users, a listed name without a password, hostile passwords,
SIGHUP reloading the file, failed logins backed off per address, a bad
users file, and no password ever in the server's output; the line
greeting that says how to log in; SIGHUP reloads under traffic (two
users exchange numbered texts while the file gains a user and changes
a password: nobody is dropped, every text arrives once and in order, the
new user logs in, the new password applies to new logins only).

usage: e2e_auth.py SERVER CLIENT [--no-crypt]
--no-crypt: the server was built without libcrypt; check that --users
and --hash-password say so and exit with status 2.
Every wait has a deadline; every process is killed at the end.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SERVER, CLIENT = sys.argv[1:3]
DEADLINE = 10.0
LOGIN_FAILED = "-!- error 11: login failed: wrong name or password"
SECRETS = ["secret", "hunter2", "wrong-pass", "s3cr\x01et", "carolpw",
           "bobs-new-pw", "davepw"]
GREETING = "=== tcpchat: log in with NAME PASSWORD"
GREETING_ANONYMOUS = ("=== tcpchat: log in with NAME PASSWORD, or type a "
                      "name (1-32 bytes, no spaces) to join without one")

procs = []
results = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        print(f"ok - {name}")
    else:
        results["failed"] += 1
        print(f"FAIL - {name} {detail}")


def hash_password(pw):
    r = subprocess.run([SERVER, "--hash-password"], input=pw + "\n",
                       capture_output=True, text=True, timeout=DEADLINE)
    return r.returncode, r.stdout.strip(), r.stderr


class Server:
    """tcpchat-server on ports chosen by the system, its stderr kept."""

    def __init__(self, *args):
        self.p = subprocess.Popen(
            [SERVER, "-l", "line@127.0.0.1:0", "-l", "127.0.0.1:0",
             "--log-level", "debug", *args],
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


def login(port, line):
    """The server's answer to a first line, and how long it took."""
    p = LinePeer(port)
    t = time.monotonic()
    p.send(line)
    answer = p.line()
    took = time.monotonic() - t
    p.close()
    return answer, took


def client(port, name, env=None, args=(), text="hello\n"):
    e = dict(os.environ)
    e.pop("TCPCHAT_PASSWORD", None)
    e.update(env or {})
    return subprocess.run(
        [CLIENT, "--server", f"127.0.0.1:{port}", "--name", name,
         "--no-reconnect", "--quiet", *args],
        input=text, capture_output=True, text=True, env=e,
        timeout=DEADLINE)


def write_users(path, users):
    """Replaces the users file at once (as an editor that renames)."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        for name, h in users.items():
            f.write(f"{name}:{h}\n")
    os.replace(tmp, path)


class Talker:
    """A line user who sends numbered texts and records those of the
    other, and anything else the server says."""

    def __init__(self, port, name, password, other):
        self.name, self.other = name, other
        self.p = LinePeer(port)
        self.p.send(f"{name} {password}")
        self.welcome = self.p.line()
        self.got = []       # numbers of the other's texts, as they came
        self.odd = []       # errors, leaves of the other, the close
        self.p.s.settimeout(None)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        pat = re.compile(rf"^{self.other}: n=(\d+)$")
        while True:
            try:
                raw = self.p.f.readline()
            except OSError:
                raw = b""
            if not raw:
                self.odd.append("closed")
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            m = pat.match(line)
            if m:
                self.got.append(int(m.group(1)))
            elif line.startswith("-!-") or line.startswith(
                    f"<-- {self.other} left"):
                self.odd.append(line)

    def close(self):
        """Hangs up (the reader thread holds the socket: shut it down)."""
        self.p.s.shutdown(socket.SHUT_RDWR)
        self.reader.join(timeout=DEADLINE)
        self.p.close()

    def send_texts(self, count, pause):
        for n in range(count):
            self.p.send(f"n={n}")
            time.sleep(pause)


def reload_under_traffic(tmp, h_alice, h_bob):
    """SIGHUP several times while alice and bob exchange texts."""
    users = os.path.join(tmp, "users-traffic")
    table = {"alice": h_alice, "bob": h_bob}
    write_users(users, table)
    _, h_dave, _ = hash_password("davepw")
    _, h_bob2, _ = hash_password("bobs-new-pw")
    srv = Server("--users", users, "--anonymous", "no", "--rate", "0",
                 "--rate-bytes", "0")
    alice = Talker(srv.line_port, "alice", "secret", "bob")
    bob = Talker(srv.line_port, "bob", "hunter2", "alice")
    check("traffic: both log in",
          alice.welcome == "=== welcome alice"
          and bob.welcome == "=== welcome bob",
          f"{alice.welcome!r} {bob.welcome!r}")
    count, pause = 1000, 0.004
    senders = [threading.Thread(target=t.send_texts, args=(count, pause))
               for t in (alice, bob)]
    for t in senders:
        t.start()

    def reload(what, users_now, signals=1):
        mark = len(srv.lines)
        for _ in range(signals):  # pending ones may merge into one
            srv.p.send_signal(signal.SIGHUP)
        ok = srv.wait(rf"users file .* reloaded: {users_now} user",
                      mark) is not None
        check(f"traffic: SIGHUP {what} reloads", ok)

    time.sleep(0.2)
    reload("with nothing changed", 2)
    table["dave"] = h_dave
    write_users(users, table)
    reload("after adding dave", 3)
    answer, _ = login(srv.line_port, "dave davepw")
    check("traffic: the added user logs in", answer == "=== welcome dave",
          answer)
    table["bob"] = h_bob2
    write_users(users, table)
    reload("after changing bob's password", 3)
    # bob stays (checked below); the new password is for new logins,
    # tried once he has left
    reload("once more", 3)
    reload("three times at once", 3, signals=3)
    check("traffic: the reloads came while texts flowed",
          all(t.is_alive() for t in senders))
    for t in senders:
        t.join(timeout=DEADLINE * 3)
    end = time.monotonic() + DEADLINE
    while (len(alice.got) < count or len(bob.got) < count) and \
            time.monotonic() < end and not alice.odd and not bob.odd:
        time.sleep(0.01)
    want = list(range(count))
    for t in (alice, bob):
        check(f"traffic: {t.name} was not dropped nor told of an error",
              not t.odd, str(t.odd[:3]))
        check(f"traffic: {t.name} got each of {t.other}'s {count} texts "
              "once, in order", t.got == want,
              f"{len(t.got)} texts, first differences "
              f"{[(i, g) for i, g in enumerate(t.got) if g != i][:3]}")
    alice.close()
    bob.close()

    def login_when_gone(line):
        """The answer to a login of a name that may still be leaving."""
        end = time.monotonic() + DEADLINE
        while True:
            answer, _ = login(srv.line_port, line)
            if "name already in use" not in answer or \
                    time.monotonic() > end:
                return answer
            time.sleep(0.05)

    old = login_when_gone("bob hunter2")
    check("traffic: bob's old password no longer logs in",
          old == LOGIN_FAILED, old)
    new = login_when_gone("bob bobs-new-pw")
    check("traffic: bob's new password logs him in",
          new == "=== welcome bob", new)
    code = srv.stop()
    check("traffic: server exits cleanly", code == 0, str(code))
    out = srv.output()
    leaked = [s for s in SECRETS if s in out]
    check("traffic: no password in the server's output", not leaked,
          str(leaked))


def no_crypt():
    for args in (["--users", "/nonexistent"], ["--hash-password"]):
        r = subprocess.run([SERVER, *args], capture_output=True, text=True,
                           input="pw\n", timeout=DEADLINE)
        check(f"{args[0]} without libcrypt: exit 2",
              r.returncode == 2 and "built without libcrypt" in r.stderr,
              f"{r.returncode} {r.stderr}")


def main():
    tmp = tempfile.mkdtemp(prefix="tcpchat-auth-")
    users = os.path.join(tmp, "users")

    rc, h_alice, err = hash_password("secret")
    check("--hash-password prints a yescrypt hash",
          rc == 0 and h_alice.startswith("$y$"), f"{rc} {h_alice!r} {err}")
    rc, h_bob, _ = hash_password("hunter2")
    check("two hashes of passwords differ", h_bob != h_alice)
    rc, out, err = hash_password("")
    check("--hash-password without a password fails",
          rc == 1 and not out and "no password" in err, f"{rc} {err}")
    with open(users, "w") as f:
        f.write(f"# who may log in\n\nalice:{h_alice}\nbob:{h_bob}\n")

    # ---- --anonymous no ----
    srv = Server("--users", users, "--anonymous", "no")
    greeter = LinePeer(srv.line_port)
    check("--users: the line greeting says how to log in",
          greeter.greeting == GREETING, greeter.greeting)
    greeter.close()
    answer, _ = login(srv.line_port, "alice secret")
    check("line: right password joins", answer == "=== welcome alice",
          answer)
    wrong, t_wrong = login(srv.line_port, "alice wrong-pass")
    unknown, t_unknown = login(srv.line_port, "nobody secret")
    check("wrong password refused", wrong == LOGIN_FAILED, wrong)
    check("unknown name: the same answer", unknown == wrong, unknown)
    check("unknown name takes as long (crypt against a dummy hash)",
          t_unknown > t_wrong / 4, f"{t_unknown:.3f} vs {t_wrong:.3f}")
    nopw, _ = login(srv.line_port, "alice")
    check("listed name without a password refused", nopw == LOGIN_FAILED,
          nopw)
    hostile, _ = login(srv.line_port, "alice s3cr\x01et")
    check("control characters in a password refused clearly",
          "invalid credential" in hostile, hostile)
    long_pw, _ = login(srv.line_port, "alice " + "x" * 2000)
    check("a very long password refused clearly",
          "invalid credential" in long_pw, long_pw)

    r = client(srv.bin_port, "bob", env={"TCPCHAT_PASSWORD": "hunter2"})
    check("binary: tcpchat-client with TCPCHAT_PASSWORD joins",
          r.returncode == 0, f"{r.returncode} {r.stderr}")
    pwfile = os.path.join(tmp, "pw")
    with open(pwfile, "w") as f:
        f.write("hunter2\n")
    r = client(srv.bin_port, "bob", args=("--password-file", pwfile))
    check("binary: tcpchat-client --password-file joins",
          r.returncode == 0, f"{r.returncode} {r.stderr}")
    r = client(srv.bin_port, "bob", env={"TCPCHAT_PASSWORD": "wrong-pass"})
    check("binary: a wrong password fails the client",
          r.returncode == 1 and "login failed" in r.stderr,
          f"{r.returncode} {r.stderr}")

    # SIGHUP: carol is added, a connected user stays
    alice = LinePeer(srv.line_port)
    alice.send("alice secret")
    check("alice joins before the reload",
          alice.line() == "=== welcome alice")
    rc, h_carol, _ = hash_password("carolpw")
    with open(users, "a") as f:
        f.write(f"carol:{h_carol}\n")
    mark = len(srv.lines)
    srv.p.send_signal(signal.SIGHUP)
    check("SIGHUP reloads the users file",
          srv.wait(r"users file .* reloaded: 3 user", mark) is not None)
    carol = LinePeer(srv.line_port)
    carol.send("carol carolpw")
    check("a user added by the reload joins",
          carol.line() == "=== welcome carol")
    alice.send("still here")
    got = ""
    end = time.monotonic() + DEADLINE
    while "still here" not in got and time.monotonic() < end:
        got = carol.line()
        if not got:
            break
    check("the connected user was not dropped", "still here" in got, got)
    with open(users, "a") as f:
        f.write("broken line\n")
    mark = len(srv.lines)
    srv.p.send_signal(signal.SIGHUP)
    check("a bad reload is logged with file:line and keeps the table",
          srv.wait(r"error .*users file not reloaded: .*users:6: ",
                   mark) is not None)
    answer, _ = login(srv.line_port, "bob hunter2")
    check("the old table still works", answer == "=== welcome bob", answer)
    alice.close()
    carol.close()
    check("failed logins are logged with name and address",
          srv.wait(r"info .*failed login of 'nobody' from 127\.0\.0\.1:")
          is not None)
    code = srv.stop()
    out = srv.output()
    check("server exits cleanly", code == 0, str(code))
    leaked = [s for s in SECRETS if s in out]
    check("no password in the server's output", not leaked, str(leaked))

    with open(users, "w") as f:  # without the broken line
        f.write(f"alice:{h_alice}\nbob:{h_bob}\n")

    # ---- failed logins from one address are backed off ----
    srv = Server("--users", users, "--anonymous", "no")
    answers = [login(srv.line_port, "alice wrong-pass")[0]
               for _ in range(5)]
    check("five failures", answers == [LOGIN_FAILED] * 5, str(answers))
    answer, _ = login(srv.line_port, "alice secret")
    check("then even the right password waits",
          re.search(r"too many failed logins, retry in \d+ s", answer)
          is not None, answer)
    srv.stop()

    # ---- --anonymous yes (the default) ----
    srv = Server("--users", users)
    greeter = LinePeer(srv.line_port)
    check("--anonymous yes: the greeting says a name alone will do",
          greeter.greeting == GREETING_ANONYMOUS, greeter.greeting)
    greeter.close()
    answer, _ = login(srv.line_port, "dave")
    check("anonymous yes: an unlisted name joins", answer == "=== welcome dave",
          answer)
    answer, _ = login(srv.line_port, "alice")
    check("anonymous yes: a listed name still needs its password",
          answer == LOGIN_FAILED, answer)
    answer, _ = login(srv.line_port, "alice secret")
    check("anonymous yes: a listed name with its password joins",
          answer == "=== welcome alice", answer)
    srv.stop()

    # ---- a bad users file at start ----
    bad = os.path.join(tmp, "bad")
    with open(bad, "w") as f:
        f.write(f"alice:{h_alice}\nbob:plaintext\n")
    r = subprocess.run([SERVER, "--users", bad], capture_output=True,
                       text=True, timeout=DEADLINE)
    check("a bad users file: exit 1 naming file:line",
          r.returncode == 1 and f"{bad}:2:" in r.stderr,
          f"{r.returncode} {r.stderr}")
    r = subprocess.run([SERVER, "--anonymous", "perhaps"],
                       capture_output=True, text=True, timeout=DEADLINE)
    check("--anonymous perhaps: exit 2", r.returncode == 2, r.stderr)

    reload_under_traffic(tmp, h_alice, h_bob)


try:
    no_crypt() if sys.argv[3:] == ["--no-crypt"] else main()
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
print(f"{results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
