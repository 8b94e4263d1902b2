#!/usr/bin/env python3
"""Smoke test of tcpchat-bench against tcpchat-server: about a second of
traffic per run with tiny parameters (broadcast, rooms, a room among
rooms), then every message must have arrived; and a small login storm.
usage: bench_smoke.py SERVER BENCH"""
import re
import subprocess
import sys
import time

server, bench = sys.argv[1:3]
srv = subprocess.Popen([server, "--listen", "binary@127.0.0.1:0", "--queue",
                        "65536", "--idle-timeout", "0", "-L", "warn"],
                       stderr=subprocess.PIPE, text=True)
failed = 0
try:
    port = None
    end = time.monotonic() + 10
    while port is None and time.monotonic() < end:
        line = srv.stderr.readline()
        m = re.search(r"listening on \S+:(\d+) \(", line)
        if m:
            port = m.group(1)
    if port is None:
        print("FAIL - server did not report its port")
        sys.exit(1)
    runs = [
        ["--mode", "throughput", "--receivers", "5", "--senders", "2",
         "--window", "32", "--duration", "1", "--warmup", "0.2"],
        ["--mode", "rate", "--rate", "500", "--receivers", "3",
         "--senders", "1", "--duration", "1", "--warmup", "0.2"],
        # protocol 2: 4 rooms of 3 members, each sending to its room
        ["--mode", "rooms", "--rooms", "4", "--members", "3", "--rate",
         "600", "--duration", "1", "--warmup", "0.2"],
        # receivers and senders in room 0 of 3, 2 idle members in the others
        ["--mode", "throughput", "--receivers", "4", "--senders", "2",
         "--rooms", "3", "--members", "2", "--window", "32",
         "--duration", "1", "--warmup", "0.2"],
        # clients that never read after WELCOME
        ["--mode", "storm", "--connections", "300", "--settle", "0.2"],
    ]
    for args in runs:
        out = subprocess.run([bench, "--proto", "tcpchat", "--port", port,
                              "--server-pid", str(srv.pid), *args],
                             capture_output=True, text=True, timeout=60)
        res = dict(kv.split("=", 1) for line in out.stdout.splitlines()
                   if line.startswith("RESULT ") for kv in line.split()[1:])
        if "storm" in args:
            ok = (out.returncode == 0 and res.get("connections") == "300"
                  and res.get("closed") == "0"
                  and res.get("rss_per_conn_bytes") is not None
                  and float(res.get("setup_s", "-1")) >= 0)
        else:
            ok = (out.returncode == 0 and res.get("lost") == "0"
                  and res.get("reordered") == "0"
                  and float(res.get("delivered_per_s", "0")) > 0
                  and res.get("undelivered", "0") == "0"
                  and res.get("bad_payloads", "0") == "0")
        print(("ok - " if ok else "FAIL - ") + " ".join(args[:2]) +
              f": delivered/s={res.get('delivered_per_s')} lost={res.get('lost')}"
              f" reordered={res.get('reordered')} setup_s={res.get('setup_s')}"
              f" exit={out.returncode}")
        if not ok:
            failed += 1
            print(out.stdout[-2000:], out.stderr[-2000:])
finally:
    srv.terminate()
    try:
        srv.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.kill()
print(f"{len(runs) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
