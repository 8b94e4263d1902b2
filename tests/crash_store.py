#!/usr/bin/env python3
"""Crash test of the durable store: clients post to one room with
references and a window of texts in flight, the server is killed with
SIGKILL in the middle of the traffic and started again on the same
--store file; the clients reconnect (HELLO resuming the room after the
last seq they saw, with the epoch), send again every text not yet
acknowledged, with its reference, and go on until all are acknowledged.

Asserted, for every client:
  - every acknowledged text is delivered exactly once to every other
    member, in seq order: the seqs a client received, with the seqs of
    its own texts, are exactly 1..last, each once, increasing;
  - a reference acknowledged twice (before the crash and after the resend)
    has the same seq both times: nothing is posted twice;
  - the seqs go on after the restart (no number given twice), and the
    epoch is the same;
  - the file holds each text once, with the seq of its ACK;
  - nothing that was not acknowledged is in the file under another seq,
    and every text the clients received was acknowledged to its sender.

usage: crash_store.py SERVER [--clients N] [--texts N] [--kills N]
Every wait has a deadline; the server is stopped by its pid at the end.
"""
import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("server")
ap.add_argument("--clients", type=int, default=4)
ap.add_argument("--texts", type=int, default=400, help="per client")
ap.add_argument("--window", type=int, default=16)
ap.add_argument("--kills", type=int, default=2)
args = ap.parse_args()

DEADLINE = 60.0
ROOM = "#lobby"
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL -", msg, flush=True)


class Server:
    def __init__(self, path, port):
        self.p = subprocess.Popen(
            [args.server, "-l", f"json@127.0.0.1:{port}", "--store", path,
             "--rate", "0", "--rate-bytes", "0", "-L", "warn"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:  # until it accepts
            if self.p.poll() is not None:
                sys.exit("server exited at start: " +
                         self.p.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        sys.exit("server did not start")

    def kill(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(DEADLINE)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.kill()
        err = self.p.stderr.read().decode()
        if self.p.returncode != 0:
            fail(f"server exit {self.p.returncode}: {err}")


class Client:
    def __init__(self, k, port):
        self.k, self.port = k, port
        self.name = f"c{k}"
        self.texts = [f"{self.name}-{i}" for i in range(args.texts)]
        self.next = 0            # next text not sent yet
        self.unacked = {}        # ref -> body, sent, not acknowledged
        self.acked = {}          # ref -> seq
        self.delivered = []      # seqs of others' texts received
        self.bodies = {}         # seq -> body received
        self.last = 0            # last seq seen (received or own ACK)
        self.epoch = 0
        self.sock = None
        self.buf = b""
        self.welcomed = False

    def connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), 2)
        self.sock.setblocking(False)
        self.buf = b""
        self.welcomed = False
        hello = {"type": "hello", "code": 2, "sender": self.name, "caps": 7}
        if self.epoch:
            hello.update(flags=0x10, seq=self.last_received(),
                         epoch=self.epoch)
        self.send(hello)

    def last_received(self):
        return self.delivered[-1] if self.delivered else 0

    def send(self, m):
        data = (json.dumps(m) + "\n").encode()
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def post_more(self):
        if not self.welcomed:
            return
        while len(self.unacked) < args.window and self.next < len(self.texts):
            ref = f"r{self.k}-{self.next}"
            body = self.texts[self.next]
            self.next += 1
            self.unacked[ref] = body
            self.send({"type": "text", "body": body, "ref": ref})

    def resend(self):
        for ref, body in sorted(self.unacked.items(),
                                key=lambda kv: int(kv[0].split("-")[1])):
            self.send({"type": "text", "body": body, "ref": ref})

    def on_msg(self, m):
        t = m.get("type")
        if t == "welcome":
            if self.epoch and m.get("epoch") != self.epoch:
                fail(f"{self.name}: epoch changed {self.epoch} -> "
                     f"{m.get('epoch')}")
            self.epoch = m.get("epoch", 0)
            self.welcomed = True
            self.resend()
        elif t == "ack":
            ref, seq = m["ref"], m.get("seq", 0)
            if ref in self.acked and self.acked[ref] != seq:
                fail(f"{self.name}: {ref} acknowledged as {self.acked[ref]}"
                     f" and as {seq}: posted twice")
            self.acked[ref] = seq
            self.unacked.pop(ref, None)
            self.last = max(self.last, seq)
        elif t == "text" and m.get("room") == ROOM:
            seq = m.get("seq", 0)
            if m.get("sender") == self.name:
                return  # its own, from a resumed history
            if self.delivered and seq <= self.delivered[-1]:
                fail(f"{self.name}: seq {seq} after {self.delivered[-1]}"
                     " (duplicate or out of order)")
            self.delivered.append(seq)
            self.bodies[seq] = m.get("body")
        elif t == "error":
            fail(f"{self.name}: error {m}")

    def pump(self):
        """Reads what is there; False when the connection is gone."""
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            return False
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.on_msg(json.loads(line))
        return True

    def done(self):
        return self.next == len(self.texts) and not self.unacked


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    tmp = tempfile.mkdtemp(prefix="tcpchat-crash-")
    path = os.path.join(tmp, "chat.db")
    port = free_port()
    srv = Server(path, port)
    clients = [Client(k, port) for k in range(args.clients)]
    for c in clients:
        c.connect()
    total = args.clients * args.texts
    kill_at = sorted(random.sample(range(total // 5, total * 4 // 5),
                                   args.kills))
    kills = 0
    end = time.monotonic() + DEADLINE * 2
    while time.monotonic() < end:
        for c in clients:
            c.post_more()
        acked = sum(len(c.acked) for c in clients)
        if kills < len(kill_at) and acked >= kill_at[kills]:
            srv.kill()
            kills += 1
            print(f"killed the server after {acked} ACKs", flush=True)
            srv = Server(path, port)
            for c in clients:
                c.sock.close()
                c.connect()
            continue
        if all(c.done() for c in clients):
            break
        r, _, _ = select.select([c.sock for c in clients], [], [], 0.5)
        for c in clients:
            if c.sock in r and not c.pump():
                fail(f"{c.name}: connection lost without a kill")
                c.connect()
    else:
        fail("deadline: not every text was acknowledged")
    last = max(max(c.acked.values(), default=0) for c in clients)
    # every member gets every text of the others, up to the last seq
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if all(len(c.delivered) + len(c.acked) >= last for c in clients):
            break
        r, _, _ = select.select([c.sock for c in clients], [], [], 0.5)
        for c in clients:
            if c.sock in r:
                c.pump()
    srv.stop()

    by_seq = {}
    for c in clients:
        for ref, seq in c.acked.items():
            by_seq.setdefault(seq, []).append((c.name, ref))
    dup = {s: v for s, v in by_seq.items() if len(v) > 1}
    if dup:
        fail(f"seqs given to two texts: {list(dup.items())[:5]}")
    if sorted(by_seq) != list(range(1, last + 1)):
        missing = sorted(set(range(1, last + 1)) - set(by_seq))
        fail(f"the ACKed seqs are not 1..{last}: missing {missing[:10]}")
    for c in clients:
        own = set(c.acked.values())
        got = c.delivered
        if len(set(got)) != len(got):
            fail(f"{c.name}: a text delivered twice")
        if sorted(set(got) | own) != list(range(1, last + 1)):
            missing = sorted(set(range(1, last + 1)) - set(got) - own)
            fail(f"{c.name}: not delivered: {missing[:10]}")
        for seq, body in c.bodies.items():
            name, ref = by_seq.get(seq, [(None, None)])[0]
            want = None
            if name:
                want = f"{name}-{ref.split('-')[1]}"
            if body != want:
                fail(f"{c.name}: seq {seq} is {body!r}, ACKed as {want!r}")
                break
    db = sqlite3.connect(path)
    rows = db.execute("SELECT seq, sender, body, ref FROM msgs WHERE room = ?"
                      " ORDER BY seq", (ROOM,)).fetchall()
    db.close()
    refs = {}
    for seq, sender, body, ref in rows:
        ref = bytes(ref).decode() if ref is not None else None
        if ref in refs:
            fail(f"the file holds {ref} twice (seqs {refs[ref]}, {seq})")
        refs[ref] = seq
    for c in clients:
        for ref, seq in c.acked.items():
            if refs.get(ref) != seq:
                fail(f"{ref} ACKed as seq {seq}, in the file as "
                     f"{refs.get(ref)}")
    if len(rows) != last:
        fail(f"the file holds {len(rows)} texts, {last} were ACKed")
    shutil.rmtree(tmp)
    print(f"{args.clients} clients, {total} texts, {kills} kills, last seq "
          f"{last}: {'FAILED' if failures else 'ok'}", flush=True)
    sys.exit(1 if failures else 0)


main()
