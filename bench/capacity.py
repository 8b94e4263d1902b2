#!/usr/bin/env python3
"""capacity.py - how many tcpchat-servers, and how much engine, a chat of N
users needs, from measured costs per message.  See bench/CAPACITY.md.

  python3 bench/capacity.py [--from OUT/cluster.json] [--bus redis|nats]
                            [--users 1000000] [--rooms 10000]
                            [--msg-rate 1] [--size 64] ...

Without --from, the built-in figures below are used (measured with
bench/compare.sh --cluster; the output says where each figure comes from).
"""

import argparse
import json
import math
import sys

# Measured with `bench/compare.sh --cluster` on a 2-core VM (3 servers,
# the engine and the bench on its two cores), the median of three runs:
# the throughput cell (1 sender, 300 receivers spread over 3 servers, 64
# B, 5 s) and the rooms cell (100 rooms of 10 members spread over the 3
# servers, every member sending, 5000 msg/s in all, 5 s).  See
# CAPACITY.md for the ranges.
BUILTIN = {
    "source": "built-in: bench/compare.sh --cluster, 2026-12-02, median "
              "of 3 runs, shared 2-core VM",
    "receivers": 300,
    "nodes": 3,
    "configs": {
        "one": {"server_ns_per_delivery": 44,
                "rooms": {"delivered_per_s": 45001, "sent_per_s": 5000,
                          "server_ns_per_delivery": 2356}},
        "redis": {"server_ns_per_delivery": 113, "bus_cpu_ns_per_msg": 7309,
                  "bus_sent_per_msg": 1.01, "bus_recv_per_msg": 3.02,
                  "bus_sent_bytes_per_msg": 139,
                  "bus_recv_bytes_per_msg": 418,
                  "rooms": {"delivered_per_s": 44996, "sent_per_s": 5000,
                            "server_ns_per_delivery": 9334,
                            "bus_cpu_ns_per_msg": 40400,
                            "bus_sent_per_msg": 1.21,
                            "bus_recv_per_msg": 3.40}},
        "nats": {"server_ns_per_delivery": 88, "bus_cpu_ns_per_msg": 6516,
                 "bus_sent_per_msg": 0.02, "bus_recv_per_msg": 0.05,
                 "bus_sent_bytes_per_msg": 143,
                 "bus_recv_bytes_per_msg": 430,
                 "rooms": {"delivered_per_s": 44991, "sent_per_s": 5000,
                           "server_ns_per_delivery": 24890,
                           "bus_cpu_ns_per_msg": 108009,
                           "bus_sent_per_msg": 1.06,
                           "bus_recv_per_msg": 1.99}},
    },
}
# tcpchat-server's own memory per idle connection: bench/compare.sh idle
# cells (tcpchat-bench --mode idle, rss growth / connections).
RSS_PER_CONN = 563


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Capacity plan for a tcpchat cluster from measured "
                    "per-message costs.")
    p.add_argument("--from", dest="src", metavar="FILE",
                   help="cluster.json of bench/compare.sh --cluster "
                        "(default: the built-in figures)")
    p.add_argument("--users", type=int, default=1000000)
    p.add_argument("--rooms", type=int, default=10000)
    p.add_argument("--msg-rate", type=float, default=1.0, metavar="R",
                   help="messages each user posts per minute (default 1)")
    p.add_argument("--size", type=int, default=64,
                   help="payload bytes (only scales the byte figures "
                        "against the measured 64 B)")
    p.add_argument("--headroom", type=float, default=0.5,
                   help="fraction of a core, and of the engine, to use at "
                        "most (default 0.5)")
    p.add_argument("--cores", type=int, default=1,
                   help="server processes per machine: one loop thread "
                        "each, one core each (default 1)")
    p.add_argument("--mem-gb", type=float, default=16.0,
                   help="RAM of a server machine, GB (default 16)")
    p.add_argument("--mem-use", type=float, default=0.75,
                   help="fraction of it for connections (default 0.75)")
    p.add_argument("--kernel-bytes", type=int, default=8192,
                   help="kernel memory per connection (default 8192: about "
                        "4 KiB of socket, TCP, file and epoll state plus 4 "
                        "KiB of socket buffers in use on average)")
    p.add_argument("--rss-per-conn", type=int, default=RSS_PER_CONN,
                   help="tcpchat-server memory per connection (default "
                        "%d, measured)" % RSS_PER_CONN)
    p.add_argument("--nats-cores", type=int, default=4,
                   help="cores of the NATS server (multi-threaded; "
                        "default 4)")
    p.add_argument("--max-per-server", type=int, default=100000,
                   metavar="N",
                   help="users one server process may hold at most "
                        "(default 100000: an operational cap, so that a "
                        "failed server sends no more than this many users "
                        "to reconnect elsewhere at once)")
    p.add_argument("--placement", choices=["random", "room"],
                   default="random",
                   help="random: users spread at random over the servers "
                        "(default); room: the members of a room on as few "
                        "servers as they fit on")
    p.add_argument("--bus", choices=["redis", "nats", "both"], default="both")
    p.add_argument("--cell", choices=["rooms", "thr"], default="rooms",
                   help="which measured costs to use: rooms (many rooms, "
                        "each slow: every message wakes its connections, "
                        "the shape of a big chat; default) or thr (one "
                        "busy room: messages batched, the cheapest case)")
    a = p.parse_args(argv)
    for name in ("users", "rooms", "size", "cores", "kernel_bytes",
                 "rss_per_conn", "nats_cores", "max_per_server"):
        if getattr(a, name) <= 0:
            p.error("--%s must be positive" % name.replace("_", "-"))
    if not 0 < a.headroom <= 1 or not 0 < a.mem_use <= 1:
        p.error("--headroom and --mem-use are fractions in (0, 1]")
    if a.msg_rate <= 0 or a.mem_gb <= 0:
        p.error("--msg-rate and --mem-gb must be positive")
    if a.rooms > a.users:
        p.error("more rooms than users")
    return a


def load(path):
    if not path:
        return BUILTIN
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("capacity.py: cannot read %s: %s" % (path, e))
    if not isinstance(data, dict) or "configs" not in data:
        sys.exit("capacity.py: %s is not a cluster.json" % path)
    data["source"] = "%s (%s, %s receivers, %s CPUs)" % (
        path, data.get("date", "?"), data.get("receivers", "?"),
        data.get("cpus", "?"))
    return data


class Missing(Exception):
    pass


def fig(cfg, key, name):
    v = cfg.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
        raise Missing("no %s for %s in the figures" % (key, name))
    return float(v)


def servers_per_room(s, members, placement, per_server):
    """Expected servers that follow a room of `members` users: spread at
    random over s servers, S(1-(1-1/S)^members); placed by room, the
    servers the members fill (per_server users each)."""
    if placement == "room":
        return min(float(s), max(1.0, math.ceil(members / per_server)))
    return s * (1 - (1 - 1 / s) ** members)


def human(v):
    if v >= 1e9:
        return "%.2fG" % (v / 1e9)
    if v >= 1e6:
        return "%.2fM" % (v / 1e6)
    if v >= 1e4:
        return "%.1fk" % (v / 1e3)
    if v >= 100:
        return "%.0f" % v
    return "%.2f" % v


def plan(a, data, bus):
    cfgs = data["configs"]
    one = cfgs.get("one", {})
    cl = cfgs.get(bus)
    if cl is None:
        return None
    nodes = float(data.get("nodes", 3))
    # The bytes come from the throughput cell (the rooms cell's counters
    # include the logins of its 1000 members).
    sent_bpm = fig(cl, "bus_sent_bytes_per_msg", bus)
    recv_bpm = fig(cl, "bus_recv_bytes_per_msg", bus)
    if a.cell == "rooms":
        one, cl = one.get("rooms"), cl.get("rooms")
        if not isinstance(one, dict) or not isinstance(cl, dict):
            raise Missing("no rooms cell")
        # deliveries per chat message: the members but the sender
        recv = (fig(cl, "delivered_per_s", bus + " rooms")
                / max(1.0, fig(cl, "sent_per_s", bus + " rooms")))
    else:
        recv = float(data.get("receivers", 300))
    d_ns = fig(one, "server_ns_per_delivery", "one")
    c_ns = fig(cl, "server_ns_per_delivery", bus)
    b_chat = fig(cl, "bus_cpu_ns_per_msg", bus)
    sent_pm = fig(cl, "bus_sent_per_msg", bus)
    recv_pm = fig(cl, "bus_recv_per_msg", bus)
    scale = (a.size + 75.0) / (64 + 75.0)  # 75 B: the measured overhead
    # The unit of bus work is a copy of a chat message: the one its
    # server posts to the engine, and the one the engine sends to each
    # server that follows the room (in the benchmark, all of them).  The
    # Redis bus sends one bus message per copy; the NATS bus packs the
    # copies of a room into batches (one JetStream message per room per
    # round), so it sends far fewer bus messages, but the bytes and the
    # per-copy work remain.
    copies = 1.0 + nodes
    # Server CPU per chat message in the benchmark = R deliveries at d_ns
    # + the copies the servers sent and received; what is above the
    # one-server cost is the cost of a copy to a server.
    srv_copy_ns = max(0.0, (c_ns - d_ns) * recv / copies)
    # Engine CPU per copy (in or out).
    eng_ns = b_chat / copies
    per_copy = (sent_pm + recv_pm) / copies     # bus msgs per copy

    members = a.users / a.rooms
    msgs = a.users * a.msg_rate / 60.0          # chat messages/s
    deliveries = msgs * members
    mem_conn = a.rss_per_conn + a.kernel_bytes
    users_mem = a.mem_gb * 1e9 * a.mem_use / mem_conn / a.cores
    budget = a.headroom * 1e9                   # ns of CPU per core-second

    def cpu_per_server(s):
        if s == 1:                              # no cluster, no bus
            return deliveries * d_ns, 0.0
        e = servers_per_room(s, members, a.placement, a.users / s)
        bus_in = msgs * e / s                   # copies to a server
        bus_out = msgs / s                      # its posts to the engine
        return (deliveries / s * d_ns + (bus_in + bus_out) * srv_copy_ns), e

    # The fewest server processes that carry the load at the headroom,
    # and that hold the users in memory; the plan needs the larger.
    s_cpu = 1
    while cpu_per_server(s_cpu)[0] > budget and s_cpu < 10 ** 6:
        s_cpu += 1
    s_mem = max(1, math.ceil(a.users / min(users_mem, a.max_per_server)))
    # From s_mem up: with more servers the bus work of each may grow.
    s = max(s_cpu, s_mem)
    while cpu_per_server(s)[0] > budget and s < 10 ** 6:
        s += 1
    cpu, e = cpu_per_server(s)
    bus_in = msgs if s > 1 else 0.0                  # one post per message
    bus_out = msgs * e                               # one copy per follower
    eng_load = (bus_in + bus_out) * eng_ns           # ns per second
    eng_cores = 1 if bus == "redis" else a.nats_cores
    eng_max = eng_cores * 1e9 / eng_ns               # copies/s at 100%
    return {
        "bus": bus, "d_ns": d_ns, "c_ns": c_ns, "srv_copy_ns": srv_copy_ns,
        "per_copy": per_copy,
        "eng_ns": eng_ns, "b_chat": b_chat, "members": members,
        "msgs": msgs, "deliveries": deliveries, "mem_conn": mem_conn,
        "users_mem": users_mem, "servers": s,
        "machines": math.ceil(s / a.cores), "cpu": cpu / 1e9, "e": e,
        "s_cpu": s_cpu, "s_mem": s_mem, "users_per_server": a.users / s,
        "bus_in": bus_in, "bus_out": bus_out,
        "bytes_in": bus_in * sent_bpm * scale,
        "bytes_out": bus_out * recv_bpm / nodes * scale,
        "eng_util": eng_load / (eng_cores * 1e9), "eng_cores": eng_cores,
        "eng_max": eng_max, "recv": recv, "nodes": nodes,
        "shards": math.ceil(eng_load / (eng_cores * 1e9 * a.headroom)),
    }


def main(argv):
    a = parse_args(argv)
    data = load(a.src)
    buses = ["redis", "nats"] if a.bus == "both" else [a.bus]
    plans = []
    for b in buses:
        try:
            p = plan(a, data, b)
        except Missing as e:
            print("capacity.py: %s: %s skipped" % (e, b), file=sys.stderr)
            continue
        if p:
            plans.append(p)
    if not plans:
        sys.exit("capacity.py: no figures for %s" % " or ".join(buses))
    p0 = plans[0]
    print("Capacity plan: %s users in %s rooms (%.0f per room), each posting "
          "%g msg/min, %d B" % (human(a.users), human(a.rooms), p0["members"],
                                a.msg_rate, a.size))
    print("figures from: %s, %s cell" % (data["source"], a.cell))
    print()
    print("load            %s chat msgs/s -> %s deliveries/s"
          % (human(p0["msgs"]), human(p0["deliveries"])))
    print("memory/user     %d B tcpchat-server (measured, idle) + %d B "
          "kernel (assumed) = %d B" % (a.rss_per_conn, a.kernel_bytes,
                                       p0["mem_conn"]))
    print("placement       %s; at most %s users per server process"
          % ("users spread at random" if a.placement == "random"
             else "by room", human(a.max_per_server)))
    print("users/server    %s by memory (%.0f GB x %.0f%% / %d processes "
          "per machine); CPU: at most %.0f%% of a core per process"
          % (human(p0["users_mem"]), a.mem_gb, a.mem_use * 100, a.cores,
             a.headroom * 100))
    print()
    w = 20
    rows = [
        ("server ns/delivery", lambda p: "%.0f" % p["d_ns"]),
        ("server ns/copy", lambda p: "%.0f" % p["srv_copy_ns"]),
        ("servers by CPU only", lambda p: "%d" % p["s_cpu"]),
        ("servers by mem/cap", lambda p: "%d" % p["s_mem"]),
        ("servers needed", lambda p: "%d" % p["servers"]),
        ("machines", lambda p: "%d" % p["machines"]),
        ("cpu per server", lambda p: "%.0f%%" % (p["cpu"] * 100)),
        ("servers per room", lambda p: "%.1f" % p["e"]),
        ("copies/s in", lambda p: human(p["bus_in"])),
        ("copies/s out", lambda p: human(p["bus_out"])),
        ("bus msgs/copy", lambda p: "%.2f" % p["per_copy"]),
        ("bus MB/s in", lambda p: "%.1f" % (p["bytes_in"] / 1e6)),
        ("bus MB/s out", lambda p: "%.1f" % (p["bytes_out"] / 1e6)),
        ("engine ns/copy", lambda p: "%.0f" % p["eng_ns"]),
        ("engine max copies/s", lambda p: human(p["eng_max"])),
        ("engine load", lambda p: "%.0f%% of %d core%s" % (
            p["eng_util"] * 100, p["eng_cores"],
            "" if p["eng_cores"] == 1 else "s")),
        ("engine shards", lambda p: "%d" % p["shards"]),
    ]
    print("%-*s" % (w, "") + "".join(" %16s" % ("via " + p["bus"])
                                      for p in plans))
    for name, f in rows:
        print("%-*s" % (w, name) + "".join(" %16s" % f(p) for p in plans))
    print()
    for p in plans:
        if p["eng_util"] <= a.headroom:
            verdict = "fits in one engine"
        elif p["eng_util"] <= 1:
            verdict = ("over the %.0f%% headroom: %d shards"
                       % (a.headroom * 100, p["shards"]))
        else:
            verdict = "SATURATED: %d shards at least" % p["shards"]
        what = ("one thread" if p["bus"] == "redis"
                else "multi-threaded, %d cores assumed" % p["eng_cores"])
        print("%s (%s): %s copies/s needed, %s at 100%% -> %s"
              % (p["bus"], what, human(p["bus_in"] + p["bus_out"]),
                 human(p["eng_max"]), verdict))
    print()
    print("servers by CPU only: the fewest that carry the load (1: one "
          "server alone, no bus); servers needed:")
    print("the fewest that also hold the users (memory, --max-per-server) "
          "and still carry the load.")
    print("a copy: a chat message posted to the engine, or sent by it to "
          "one server that follows the room;")
    print("redis sends one bus message per copy, nats batches the copies "
          "of a room (bus msgs/copy, as measured).")
    print("server ns/copy = (cluster ns/delivery - one-server "
          "ns/delivery) x deliveries per chat msg / (1 + servers);")
    print("engine ns/copy = engine CPU per chat msg / (1 + servers).")
    print("beyond one engine: Redis Cluster sharded pub/sub (SPUBLISH, "
          "Redis 7) by room; NATS servers in a")
    print("cluster or supercluster; rooms partitioned over independent "
          "clusters.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
