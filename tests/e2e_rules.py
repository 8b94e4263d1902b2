#!/usr/bin/env python3
"""End-to-end tests of room authorization with tcpchat-server --rules: a
moderated room refuses a non-speaker's text (a non-fatal error) while its
operator speaks, a room only some may join, @registered with --users,
topics set by operators only, kicks and bans by an operator (on the line
codec and with tcpchat-client's /ban), no kicks without --rules, a bad
rules file at start (exit 1 naming file:line), and SIGHUP: a bad file
keeps the rules in force, a good one puts new rules in force, while
texts keep flowing.

usage: e2e_rules.py SERVER CLIENT [--no-crypt]
--no-crypt: the server was built without libcrypt (no --users: the
@registered part is skipped).
Every wait has a deadline; every process is killed at the end.
"""
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import e2eutil

SERVER, CLIENT = sys.argv[1:3]
CRYPT = sys.argv[3:] != ["--no-crypt"]
DEADLINE = 10.0

procs = []
results = {"passed": 0, "failed": 0}

RULES = """# the rules of the test
room #announce          # operators speak, everyone reads
speak boss
op boss
topic ops

room #staff
join boss @registered

room *
op boss
"""


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        print(f"ok - {name}")
    else:
        results["failed"] += 1
        print(f"FAIL - {name} {detail}")


def Server(*args):
    """tcpchat-server (e2eutil.Server) logging at info."""
    return e2eutil.Server(SERVER, procs, *args, log_level="info")


class Peer(e2eutil.LinePeer):
    """An nc-like user on the line listener, logged in."""

    def __init__(self, port, login):
        super().__init__(port)
        self.send(login)
        self.welcome = self.line()

    def until(self, want):
        """Reads lines until one equals want (or starts with it, when
        want ends with '*'); returns it, or None at the deadline."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            got = self.line()
            if got == "" and self.f.closed:
                return None
            if got == want or (want.endswith("*") and
                               got.startswith(want[:-1])):
                return got
            if got == "":
                return None
        return None

    def ask(self, line, want):
        self.send(line)
        return self.until(want)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def moderation(tmp):
    rules = os.path.join(tmp, "rules.conf")
    write(rules, RULES)
    args = ["--rules", rules]
    if CRYPT:
        r = subprocess.run([SERVER, "--hash-password"], input="secret\n",
                           capture_output=True, text=True, timeout=DEADLINE)
        users = os.path.join(tmp, "users")
        write(users, f"alice:{r.stdout.strip()}\n")
        args += ["--users", users]
    srv = Server(*args)
    boss = Peer(srv.line_port, "boss")
    eve = Peer(srv.line_port, "eve")
    check("users log in", boss.welcome == "=== welcome boss" and
          eve.welcome == "=== welcome eve", f"{boss.welcome} {eve.welcome}")

    # a moderated room
    boss.ask("/join #announce", "--> boss joined #announce")
    eve.ask("/join #announce", "--> eve joined #announce")
    got = eve.ask("#announce hello?", "-!- error 11: *")
    check("moderated: a non-speaker's text is refused",
          got == "-!- error 11: #announce is moderated: you may not speak "
          "there", got)
    got = eve.ask("/who #announce", "=== 2 in #announce*")
    check("moderated: the refusal is not fatal", got is not None, got)
    boss.send("#announce news")
    got = eve.until("[#announce] boss: news")
    check("moderated: the operator speaks", got is not None)
    eve.send("#lobby other words")  # #lobby: not moderated
    check("other rooms are not moderated",
          boss.until("eve: other words") is not None)

    # topics by operators only
    got = eve.ask("/topic #announce mine", "-!- error 11: *")
    check("topic ops: refused to others",
          got == "-!- error 11: only operators set the topic of #announce",
          got)
    got = boss.ask("/topic #announce read me",
                   "=== topic #announce by boss: read me")
    check("topic ops: the operator sets it", got is not None)

    # a room only some may join
    got = eve.ask("/join #staff", "-!- error 11: *")
    check("join restricted: refused",
          got == "-!- error 11: you may not join #staff", got)
    got = boss.ask("/join #staff", "--> boss joined #staff")
    check("join restricted: an operator joins", got is not None)
    if CRYPT:
        alice = Peer(srv.line_port, "alice secret")
        got = alice.ask("/join #staff", "--> alice joined #staff")
        check("@registered: a user logged in with a password joins",
              got is not None, alice.welcome)
        alice.close()

    # kicks and bans
    got = eve.ask("/kick #announce boss", "-!- error 11: *")
    check("kick: a non-operator is refused",
          got == "-!- error 11: not an operator of #announce", got)
    boss.send("/kick #announce eve be quiet")
    got = eve.until("<-- eve left #announce (kicked: be quiet)")
    check("kick: the target sees why", got is not None)
    eve.ask("/join #announce", "--> eve joined #announce")
    boss.send("/ban #announce eve enough")
    check("ban: the target is taken out",
          eve.until("<-- eve left #announce (kicked: enough)") is not None)
    got = eve.ask("/join #announce", "-!- error 11: *")
    check("ban: the name is kept out",
          got == "-!- error 11: banned from #announce", got)
    got = boss.ask("/unban #announce eve", "=== unbanned eve from #announce")
    check("unban: acknowledged", got is not None)
    got = eve.ask("/join #announce", "--> eve joined #announce")
    check("unban: the name joins again", got is not None)

    # tcpchat-client's /ban
    c = subprocess.Popen(
        [CLIENT, "--server", f"127.0.0.1:{srv.bin_port}", "--name", "boss2",
         "--no-reconnect", "--room", "#staff"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace")
    procs.append(c)
    out = queue.Queue()
    threading.Thread(target=lambda: [out.put(x) for x in c.stdout],
                     daemon=True).start()
    seen = []

    def client_sees(pattern):
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            try:
                x = out.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            seen.append(x)
            if re.search(pattern, x):
                return True
        return False

    # boss2 is no operator: refused, then made one by a new rules file
    client_sees(r"joined")
    c.stdin.write("/ban #lobby zed spam\n")
    c.stdin.flush()
    check("tcpchat-client /ban: a refusal is shown",
          client_sees(r"not an operator of #lobby"), "".join(seen))
    write(rules, RULES.replace("op boss\n", "op boss boss2\n"))
    start = srv.mark()
    srv.p.send_signal(signal.SIGHUP)
    srv.wait(r"rules read again", start)
    c.stdin.write("/ban #lobby zed spam\n")
    c.stdin.flush()
    check("tcpchat-client /ban: the result is shown",
          client_sees(r"banned zed from #lobby: spam"), "".join(seen))
    c.stdin.close()
    c.wait(timeout=DEADLINE)
    eve.close()
    boss.close()
    check("server exits cleanly", srv.stop() == 0)


def reloads(tmp):
    rules = os.path.join(tmp, "reload.conf")
    write(rules, RULES)
    srv = Server("--rules", rules, "--rate", "0")  # the talker is fast
    boss = Peer(srv.line_port, "boss")
    eve = Peer(srv.line_port, "eve")
    talker = Peer(srv.line_port, "talker")
    listener = Peer(srv.line_port, "listener")
    boss.ask("/join #announce", "--> boss joined #announce")
    eve.ask("/join #announce", "--> eve joined #announce")
    count = 1000
    stop = threading.Event()

    def talk():
        for i in range(count):
            talker.send(f"line {i}")
            time.sleep(0.002)
        stop.set()

    t = threading.Thread(target=talk, daemon=True)
    t.start()

    # a bad file: the old rules stay (eve still may not speak)
    write(rules, RULES + "jion *\n")
    start = srv.mark()
    srv.p.send_signal(signal.SIGHUP)
    m = srv.wait(r"warn .*reload\.conf:12: unknown keyword 'jion'; the "
                 r"rules in force stay", start)
    check("SIGHUP, bad file: logged at warn with file:line", m is not None)
    got = eve.ask("#announce still?", "-!- error 11: *")
    check("SIGHUP, bad file: the old rules stay in force",
          got is not None and "moderated" in got, got)
    # a good one: new rules (everyone speaks)
    write(rules, RULES.replace("speak boss\n", "speak *\n"))
    start = srv.mark()
    srv.p.send_signal(signal.SIGHUP)
    check("SIGHUP, good file: read again",
          srv.wait(r"rules read again from .*reload\.conf", start)
          is not None)
    eve.send("#announce free at last")
    check("SIGHUP, good file: the new rules apply",
          boss.until("[#announce] eve: free at last") is not None)
    t.join(timeout=DEADLINE)
    check("texts flow through the reloads",
          stop.is_set() and
          listener.until(f"talker: line {count - 1}") is not None)
    for p in (boss, eve, talker, listener):
        p.close()
    check("server exits cleanly", srv.stop() == 0)


def no_rules_and_bad_files(tmp):
    srv = Server()
    a = Peer(srv.line_port, "alice")
    b = Peer(srv.line_port, "bob")
    a.ask("/join #dev", "--> alice joined #dev")
    b.ask("/join #dev", "--> bob joined #dev")
    got = a.ask("/kick #dev bob", "-!- error 11: *")
    check("without --rules nobody may kick",
          got == "-!- error 11: not an operator of #dev", got)
    a.send("#dev fine")
    check("without --rules everyone speaks",
          b.until("[#dev] alice: fine") is not None)
    a.close()
    b.close()
    srv.stop()

    bad = os.path.join(tmp, "bad.conf")
    write(bad, "room #dev\nop alice\njion *\n")
    r = subprocess.run([SERVER, "--rules", bad], capture_output=True,
                       text=True, timeout=DEADLINE)
    check("a bad rules file: exit 1 naming file:line",
          r.returncode == 1 and
          f"{bad}:3: unknown keyword 'jion'" in r.stderr,
          f"{r.returncode} {r.stderr}")
    r = subprocess.run([SERVER, "--rules", os.path.join(tmp, "missing")],
                       capture_output=True, text=True, timeout=DEADLINE)
    check("a missing rules file: exit 1",
          r.returncode == 1 and "missing" in r.stderr, r.stderr)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        no_rules_and_bad_files(tmp)
        moderation(tmp)
        reloads(tmp)


try:
    main()
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
print(f"{results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
