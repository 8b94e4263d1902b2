# shellcheck shell=bash disable=SC2154,SC2317
# compare-cluster.sh - the --cluster mode of compare.sh, sourced by it
# (not run alone): it uses the options, binaries, output directory and
# awk functions that compare.sh has set up.  See bench/README.md.
#
# For every bus of --buses (redis, nats) it starts the engine on a free
# loopback port and three tcpchat-server processes joined by it (--bus
# URL --node sN, stats every second, rate limits off), and runs three
# cells with the connections spread over the three servers: throughput
# (1 sender on s1, 64 B, window --window), rate (the same at 1000
# msg/s) and rooms (100 rooms of 10 members, every member sending,
# --rooms-rate msg/s in all: many rooms, each slow).  The same cells run
# against one tcpchat-server alone (no bus) with every connection on
# it: the baseline.  The bus traffic per chat message comes from the
# servers' cluster stats lines, before and after the throughput and the
# rooms runs.  Output: OUT/cluster.txt (the table),
# OUT/cluster.json (the raw numbers, for bench/capacity.py),
# OUT/cluster-results.txt (one line per run) and the logs.

cl_nodes=3
if [ "$quick" = 1 ]; then
	cl_receivers=30
else
	cl_receivers=300
fi
cl_pids=()   # every process this mode started, stopped by pid
cl_tmp=""    # the engine's files (JetStream), removed at the end
cl_ports=()  # the tcpchat ports of the current configuration
cl_srv=()    # their pids
cl_logs=()   # their logs (stderr: stats lines)
cl_bus_pid=""
cl_results="$out/cluster-results.txt"
: >"$cl_results"

# stop_pid PID: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "compare.sh: process $pid ignored SIGTERM for 10 s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# stop_cluster: the servers first (they leave the bus), then the engine.
stop_cluster() {
	local pid
	for pid in "${cl_srv[@]}"; do
		stop_pid "$pid"
	done
	if [ -n "$cl_bus_pid" ]; then
		stop_pid "$cl_bus_pid"
	fi
	cl_srv=()
	cl_ports=()
	cl_logs=()
	cl_bus_pid=""
	cl_pids=()
	if [ -n "$cl_tmp" ]; then
		rm -rf "$cl_tmp"
		cl_tmp=""
	fi
}

cluster_cleanup() {
	local pid
	for pid in "${cl_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	stop_cluster
}
trap cluster_cleanup EXIT

# free_port: a loopback port nobody listens on (the engine gets it; the
# servers listen on port 0 and say which port they got), below the
# kernel's ephemeral range, where the bench's own connections would take
# it from under the engine.
free_port() {
	local p lo base=20000 span=40000
	lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 0)
	if [ "$lo" -gt 12000 ]; then
		base=10000
		span=$((lo - 10000))
	fi
	for _ in $(seq 1 200); do
		p=$((base + RANDOM % span))
		if ! port_open "$p"; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

# start_engine BUS: starts redis-server or nats-server -js, sets
# cl_bus_pid and cl_url, waits until its port accepts connections.
start_engine() {
	local bus=$1 port log
	port=$(free_port)
	log="$out/cluster-$bus-engine.log"
	case "$bus" in
	redis)
		redis-server --port "$port" --bind 127.0.0.1 --save '' \
			--appendonly no --client-output-buffer-limit 'pubsub 0 0 0' \
			--maxclients 20000 --daemonize no --logfile '' >"$log" 2>&1 &
		cl_url="redis://127.0.0.1:$port"
		;;
	nats)
		cl_tmp=$(mktemp -d "$data_root/tcpchat-cluster.XXXXXX")
		nats-server -a 127.0.0.1 -p "$port" -c "$out/nats.conf" \
			-js -sd "$cl_tmp" >"$log" 2>&1 &
		cl_url="nats://127.0.0.1:$port"
		;;
	esac
	cl_bus_pid=$!
	cl_pids+=("$cl_bus_pid")
	for _ in $(seq 1 100); do
		if ! kill -0 "$cl_bus_pid" 2>/dev/null; then
			tail -n 20 "$log" >&2
			die "$bus engine exited at start (log: $log)"
		fi
		port_open "$port" && return 0
		sleep 0.1
	done
	die "$bus engine did not accept connections on port $port within 10 s"
}

# start_node CONFIG N [URL]: tcpchat-server sN (with --bus URL when
# given) on a port of its choice; appends to cl_srv, cl_ports, cl_logs.
start_node() {
	local cfg=$1 n=$2 url=${3:-} log pid port
	local bus_opts=()
	if [ -n "$url" ]; then
		bus_opts=(--bus "$url" --node "s$n")
	fi
	log="$out/cluster-$cfg-s$n.log"
	"$server_bin" --listen "binary@127.0.0.1:0" "${bus_opts[@]}" --stats 1 \
		--queue 65536 --max-clients 20000 --idle-timeout 0 \
		"${tcpchat_extra[@]}" "${tcpchat_unlimited[@]}" >"$log" 2>&1 &
	pid=$!
	cl_pids+=("$pid")
	for _ in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$log" >&2
			die "tcpchat-server s$n ($cfg) exited at start (log: $log)"
		fi
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p;T;q' "$log")
		if [ -n "$port" ] && port_open "$port"; then
			cl_srv+=("$pid")
			cl_ports+=("$port")
			cl_logs+=("$log")
			return 0
		fi
		sleep 0.1
	done
	die "tcpchat-server s$n ($cfg) did not listen within 10 s (log: $log)"
}

# cluster_lines: the number of cluster stats lines in each log.
cluster_lines() {
	local log
	for log in "${cl_logs[@]}"; do
		grep -c ' cluster_up=' "$log" || true
	done
}

# wait_cluster: until every server's last stats line says the cluster is
# up and it hears of the other servers (30 s at most).
wait_cluster() {
	local log ok line
	for _ in $(seq 1 300); do
		ok=1
		for log in "${cl_logs[@]}"; do
			line=$(grep ' cluster_up=' "$log" | tail -n 1 || true)
			[[ "$line" == *" cluster_up=1 servers=$((cl_nodes - 1)) "* ]] || ok=0
		done
		[ "$ok" = 1 ] && return 0
		sleep 0.1
	done
	die "the cluster did not come up within 30 s (logs: ${cl_logs[*]})"
}

# bus_totals: waits for a fresh cluster stats line of every server (one
# printed after this call), then prints the sums of their bus counters:
# "bus_sent=N bus_sent_bytes=N bus_recv=N bus_recv_bytes=N bus_losses=N
# bus_gaps=N bus_bad=N".
bus_totals() {
	local before j ok n log
	read -r -a before <<<"$(cluster_lines | tr '\n' ' ')"
	for _ in $(seq 1 50); do
		ok=1
		j=0
		for n in $(cluster_lines); do
			[ "$n" -gt "${before[$j]}" ] || ok=0
			j=$((j + 1))
		done
		[ "$ok" = 1 ] && break
		sleep 0.1
	done
	[ "$ok" = 1 ] || echo "compare.sh: no fresh stats line in 5 s; using the last ones" >&2
	for log in "${cl_logs[@]}"; do
		grep ' cluster_up=' "$log" | tail -n 1
	done | awk '{
		for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] ~ /^bus_(sent|sent_bytes|recv|recv_bytes|losses|gaps|bad)$/)
				sum[kv[1]] += kv[2]
		}
	}
	END {
		printf "bus_sent=%.0f bus_sent_bytes=%.0f bus_recv=%.0f bus_recv_bytes=%.0f bus_losses=%.0f bus_gaps=%.0f bus_bad=%.0f\n",
			sum["bus_sent"], sum["bus_sent_bytes"], sum["bus_recv"],
			sum["bus_recv_bytes"], sum["bus_losses"], sum["bus_gaps"],
			sum["bus_bad"]
	}'
}

# bus_delta BEFORE AFTER: the difference of two bus_totals lines.
bus_delta() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		n = split(a, x, " "); split(b, y, " ")
		for (i = 1; i <= n; i++) {
			split(x[i], p, "="); split(y[i], q, "=")
			printf "%s%s=%.0f", (i > 1 ? " " : ""), p[1], q[2] - p[2]
		}
	}'
}

# cluster_run CONFIG CELL ARGS [EXTRA]: one bench run against the current
# servers; appends a line to cluster-results.txt; echoes the RESULT line.
cluster_run() {
	local cfg=$1 cell=$2 args=$3 extra=${4:-} logf limit rc line ports pids
	local bus_opt=()
	logf="$out/cluster-run-$cell-$cfg.txt"
	ports=$(IFS=,; echo "${cl_ports[*]}")
	pids=$(IFS=,; echo "${cl_srv[*]}")
	if [ -n "$cl_bus_pid" ]; then
		bus_opt=(--bus-pid "$cl_bus_pid")
	fi
	limit=$(awk -v d="$cl_duration" -v w="$warmup" 'BEGIN { printf "%d", d + w + 150 }')
	rc=0
	# shellcheck disable=SC2086
	timeout --kill-after=5 "$limit" "$bench_bin" --proto tcpchat \
		--ports "$ports" --server-pid "$pids" "${bus_opt[@]}" $args \
		>"$logf" 2>&1 || rc=$?
	line=$(grep '^RESULT ' "$logf" | tail -n 1 || true)
	if [ "$rc" != 0 ]; then
		echo "compare.sh: $cell $cfg FAILED (exit $rc, log $logf):" >&2
		grep -v '^RESULT ' "$logf" | tail -n 5 | sed 's/^/    /' >&2
	fi
	printf 'config=%s cell=%s rc=%s nodes=%s %s %s\n' "$cfg" "$cell" "$rc" \
		"${#cl_srv[@]}" "${line#RESULT }" "$extra" >>"$cl_results"
	echo "$line"
}

# cluster_cell CONFIG CELL ARGS FIELDS [nobus]: runs one cell; unless
# CONFIG is one or nobus is given, adds the bus counters of the run to
# its line of cluster-results.txt.  Prints the FIELDS (an ERE of RESULT
# keys) of the result.
cluster_cell() {
	local cfg=$1 cell=$2 args=$3 fields=$4 bus=${5:-bus} b0="" line
	[ "$cfg" = one ] && bus=nobus
	if [ "$bus" = bus ]; then
		b0=$(bus_totals)
	fi
	line=$(cluster_run "$cfg" "$cell" "$args")
	if [ "$bus" = bus ]; then
		b0=$(bus_delta "$b0" "$(bus_totals)")
		sed -i "\$s/\$/ $b0/" "$cl_results"
	fi
	echo "  $cfg $cell: $(echo "$line" | tr ' ' '\n' | grep -E "^($fields)=" | tr '\n' ' ')${b0:+ $b0}"
}

# cluster_config CONFIG: one (no bus) or a bus name; runs the three cells.
cluster_config() {
	local cfg=$1 n nodes=$cl_nodes
	local common="--receivers $cl_receivers --senders 1 --size 64 --duration $cl_duration --warmup $warmup --drain 5"
	if [ "$cfg" = one ]; then
		nodes=1
		start_node one 1
	else
		start_engine "$cfg"
		for n in $(seq 1 "$cl_nodes"); do
			start_node "$cfg" "$n" "$cl_url"
		done
		wait_cluster
	fi
	echo "compare.sh: $cfg: $nodes server(s) on ports ${cl_ports[*]} (pids ${cl_srv[*]})${cl_bus_pid:+, engine pid $cl_bus_pid at $cl_url}"
	cluster_cell "$cfg" thr "--mode throughput --window $window $common" \
		'delivered_per_s|lost|server_ns_per_msg|bus_cpu_ns_per_msg|bench_cpu_pct'
	cluster_cell "$cfg" rate "--mode rate --rate 1000 $common" \
		'p50_us|p99_us|lost|bench_cpu_pct' nobus
	cluster_cell "$cfg" rooms "--mode rooms --rooms 100 --members 10 --rate $rooms_rate --size 64 --duration $cl_duration --warmup $warmup --drain 5" \
		'delivered_per_s|lost|server_ns_per_msg|bus_cpu_ns_per_msg|p99_us'
	stop_cluster
}

cl_duration=${duration:-$([ "$quick" = 1 ] && echo 2 || echo 5)}
command -v redis-server >/dev/null || [[ " $buses " != *" redis "* ]] || die "redis-server is missing"
command -v nats-server >/dev/null || [[ " $buses " != *" nats "* ]] || die "nats-server is missing"
[[ "$server_help" == *--bus* ]] || die "$server_bin has no --bus (a tcpchat-server without clusters)"
[[ "$bench_help" == *--ports* ]] || die "$bench_bin has no --ports; --cluster needs the tcpchat-bench of this script's tree"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "compare.sh: cluster: one server, then $cl_nodes via each of: $buses; $cl_receivers receivers, 1 sender, 64 B, ${cl_duration} s per run; output in $out"
for cfg in one $buses; do
	cluster_config "$cfg"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table and the JSON ----------------------------------------------
awk -v configs="one $buses" -v nodes="$cl_nodes" -v recv="$cl_receivers" \
	-v dur="$cl_duration" -v load0="$load0" -v load1="$load1" -v rrate="$rooms_rate" \
	-v ncpu="$(nproc)" -v json="$out/cluster.json" -v date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	-v host="$(uname -n)" "$awk_lib"'
	{
		delete f
		for (i = 1; i <= NF; i++) {
			k = index($i, "=")
			f[substr($i, 1, k - 1)] = substr($i, k + 1)
		}
		c = f["config"] "/" f["cell"]
		for (k in f)
			v[c, k] = f[k]
	}
	function g(c, k) { return ((c, k) in v) && v[c, k] != "" ? v[c, k] : "-" }
	function per(c, k,    s) {     # bus counter k per chat message (c: config/cell)
		s = g(c, "sent_total")
		if (g(c, k) == "-" || s == "-" || s == 0)
			return "-"
		return g(c, k) / s
	}
	function failed(c) {
		return g(c "/thr", "rc") != "0" || g(c "/rate", "rc") != "0" || g(c "/rooms", "rc") != "0"
	}
	function jnum(x) { return x == "-" ? "null" : x + 0 }
	END {
		n = split(configs, cfg, " ")
		head[1] = "one server"
		for (i = 2; i <= n; i++)
			head[i] = nodes " via " cfg[i]
		row[1] = "deliveries/s";         key[1] = "thr delivered_per_s"
		row[2] = "server ns/delivery";   key[2] = "thr server_ns_per_msg"
		row[3] = "bus ns/chat msg";      key[3] = "thr bus_cpu_ns_per_msg"
		row[4] = "p50 us (1000 msg/s)";  key[4] = "rate p50_us"
		row[5] = "p99 us (1000 msg/s)";  key[5] = "rate p99_us"
		row[6] = "bus msgs/chat msg sent"; key[6] = "per thr bus_sent"
		row[7] = "bus msgs/chat msg recv"; key[7] = "per thr bus_recv"
		row[8] = "bus bytes/chat msg sent"; key[8] = "per thr bus_sent_bytes"
		row[9] = "bus bytes/chat msg recv"; key[9] = "per thr bus_recv_bytes"
		row[10] = "rooms: deliveries/s"; key[10] = "rooms delivered_per_s"
		row[11] = "rooms: server ns/delivery"; key[11] = "rooms server_ns_per_msg"
		row[12] = "rooms: bus ns/chat msg"; key[12] = "rooms bus_cpu_ns_per_msg"
		row[13] = "rooms: p99 us";       key[13] = "rooms p99_us"
		row[14] = "rooms: bus msgs sent"; key[14] = "per rooms bus_sent"
		row[15] = "rooms: bus msgs recv"; key[15] = "per rooms bus_recv"
		row[16] = "lost (thr, rate, rooms)"; key[16] = "lost"
		row[17] = "bench cpu % (thr)";   key[17] = "thr bench_cpu_pct"
		nrows = 17
		printf "Cluster: %d receivers (spread over the servers), 1 sender on s1, 64 B, %s s per run\n\n", recv, dur
		printf "%-26s", ""
		for (i = 1; i <= n; i++)
			printf " %14s", head[i]
		printf "\n"
		for (r = 1; r <= nrows; r++) {
			printf "%-26s", row[r]
			for (i = 1; i <= n; i++) {
				c = cfg[i]
				split(key[r], kk, " ")
				if (kk[1] == "per") {
					x = per(c "/" kk[2], kk[3])
					s = x == "-" ? "-" : sprintf(kk[3] ~ /bytes/ ? "%.0f" : "%.2f", x)
				} else if (kk[1] == "lost") {
					s = g(c "/thr", "lost") ", " g(c "/rate", "lost") ", " g(c "/rooms", "lost")
				} else {
					x = g(c "/" kk[1], kk[2])
					s = kk[2] == "delivered_per_s" ? human(x) : num(x, "%.0f")
				}
				if (failed(c))
					s = s "!"
				printf " %14s", s
			}
			printf "\n"
		}
		print ""
		print "server ns/delivery: CPU of all the servers / deliveries.  bus ns/chat msg: CPU of the engine / messages posted."
		print "bus msgs and bytes per chat msg: sums of the servers'\'' bus counters over the run (its logins and presence"
		print "included) / messages posted.  rooms: 100 rooms of 10 members spread over the servers, every member sending,"
		printf "%s msg/s in all.  lost: sequence gaps + messages not arrived 5 s after the run.\n", rrate
		print "!: a run failed (see cluster-run-CELL-CONFIG.txt)."
		printf "load average (1/5/15 min) on %s CPUs: %s before the runs, %s after.\n", ncpu, load0, load1

		printf "{\n  \"source\": \"bench/compare.sh --cluster\",\n  \"date\": \"%s\",\n  \"host\": \"%s\",\n", date, host > json
		printf "  \"cpus\": %s,\n  \"receivers\": %d,\n  \"size\": 64,\n  \"duration_s\": %s,\n  \"nodes\": %d,\n  \"configs\": {\n", ncpu, recv, dur, nodes > json
		for (i = 1; i <= n; i++) {
			c = cfg[i]
			printf "    \"%s\": {\"servers\": %d, \"ok\": %s, ", c, (i == 1 ? 1 : nodes), (failed(c) ? "false" : "true") > json
			printf "\"delivered_per_s\": %s, \"sent_per_s\": %s, ", jnum(g(c "/thr", "delivered_per_s")), jnum(g(c "/thr", "sent_per_s")) > json
			printf "\"server_ns_per_delivery\": %s, \"server_cpu_s\": %s, ", jnum(g(c "/thr", "server_ns_per_msg")), jnum(g(c "/thr", "server_cpu_s")) > json
			printf "\"bus_cpu_ns_per_msg\": %s, \"bus_cpu_s\": %s, ", jnum(g(c "/thr", "bus_cpu_ns_per_msg")), jnum(g(c "/thr", "bus_cpu_s")) > json
			printf "\"p50_us\": %s, \"p99_us\": %s, ", jnum(g(c "/rate", "p50_us")), jnum(g(c "/rate", "p99_us")) > json
			printf "\"bus_sent_per_msg\": %s, \"bus_recv_per_msg\": %s, ", jnum(per(c "/thr", "bus_sent")), jnum(per(c "/thr", "bus_recv")) > json
			printf "\"bus_sent_bytes_per_msg\": %s, \"bus_recv_bytes_per_msg\": %s, ", jnum(per(c "/thr", "bus_sent_bytes")), jnum(per(c "/thr", "bus_recv_bytes")) > json
			printf "\"chat_msgs\": %s, \"lost_thr\": %s, \"lost_rate\": %s, ", jnum(g(c "/thr", "sent_total")), jnum(g(c "/thr", "lost")), jnum(g(c "/rate", "lost")) > json
			printf "\"bus_losses\": %s, \"server_rss_kb\": %s, ", jnum(g(c "/thr", "bus_losses")), jnum(g(c "/thr", "server_rss_kb")) > json
			printf "\"rooms\": {\"rooms\": 100, \"members\": 10, \"rate\": %s, ", rrate > json
			printf "\"delivered_per_s\": %s, \"sent_per_s\": %s, ", jnum(g(c "/rooms", "delivered_per_s")), jnum(g(c "/rooms", "sent_per_s")) > json
			printf "\"server_ns_per_delivery\": %s, \"bus_cpu_ns_per_msg\": %s, ", jnum(g(c "/rooms", "server_ns_per_msg")), jnum(g(c "/rooms", "bus_cpu_ns_per_msg")) > json
			printf "\"p99_us\": %s, \"bus_sent_per_msg\": %s, \"bus_recv_per_msg\": %s, ", jnum(g(c "/rooms", "p99_us")), jnum(per(c "/rooms", "bus_sent")), jnum(per(c "/rooms", "bus_recv")) > json
			printf "\"bus_sent_bytes_per_msg\": %s, \"bus_recv_bytes_per_msg\": %s, ", jnum(per(c "/rooms", "bus_sent_bytes")), jnum(per(c "/rooms", "bus_recv_bytes")) > json
			printf "\"chat_msgs\": %s, \"lost\": %s}}%s\n", jnum(g(c "/rooms", "sent_total")), jnum(g(c "/rooms", "lost")), (i < n ? "," : "") > json
		}
		printf "  }\n}\n" > json
	}' "$cl_results" | tee "$out/cluster.txt"

echo
echo "compare.sh: raw results in $cl_results and $out/cluster.json, logs in $out"
failures=$(grep -c -v ' rc=0 ' "$cl_results" || true)
if [ "$failures" -gt 0 ]; then
	echo "compare.sh: $failures run(s) failed" >&2
	exit 1
fi
exit 0
