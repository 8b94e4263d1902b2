#!/usr/bin/env bash
# compare.sh - run tcpchat-bench against tcpchat-server, Redis and NATS on
# 127.0.0.1 and print one table of medians.  See bench/README.md.
#
#   bench/compare.sh [--quick] [--repeat N] [--servers "tcpchat redis nats"]
#                    [--duration S] [--warmup S] [--window N]
#                    [--idle-connections N] [--build DIR] [--out DIR]
#                    [--no-install]
#
# Every run gets a fresh server process (so that its peak RSS belongs to
# that run), started on a loopback port and stopped by its pid.  Raw
# RESULT lines and server logs are kept in the --out directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

quick=0
repeat=""
servers="tcpchat redis nats"
duration=""
warmup=1
window=256
idle_conns=""
build="$repo/build-bench"
out=""
install=1
port_tcpchat=17070
port_redis=16379
port_nats=14222

usage() {
	sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
	echo "compare.sh: $*" >&2
	exit 1
}

need_arg() {
	[ $# -ge 2 ] && [ -n "$2" ] || { echo "compare.sh: $1 needs a value" >&2; exit 2; }
}

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--repeat) need_arg "$@"; repeat=$2; shift ;;
	--servers) need_arg "$@"; servers=$2; shift ;;
	--duration) need_arg "$@"; duration=$2; shift ;;
	--warmup) need_arg "$@"; warmup=$2; shift ;;
	--window) need_arg "$@"; window=$2; shift ;;
	--idle-connections) need_arg "$@"; idle_conns=$2; shift ;;
	--build) need_arg "$@"; build=$2; shift ;;
	--out) need_arg "$@"; out=$2; shift ;;
	--no-install) install=0 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "compare.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
	esac
	shift
done

for s in $servers; do
	case "$s" in
	tcpchat | redis | nats) ;;
	*) echo "compare.sh: unknown server '$s' (tcpchat, redis, nats)" >&2; exit 2 ;;
	esac
done
for v in "$repeat" "$window" "$idle_conns"; do
	[[ -z "$v" || "$v" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: '$v' is not a positive integer" >&2; exit 2; }
done
for v in "$duration" "$warmup"; do
	[[ -z "$v" || "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "compare.sh: '$v' is not a number of seconds" >&2; exit 2; }
done

# The matrix.  Cell ids: thr_R_S_B (throughput: receivers, senders, payload
# bytes), rate_R_M (M msg/s in total, 64 B), idle_N (N connections).
cells=()
if [ "$quick" = 1 ]; then
	: "${repeat:=1}" "${duration:=3}" "${idle_conns:=2000}"
	cells=(thr_100_1_64 rate_100_1000 "idle_$idle_conns")
else
	: "${repeat:=3}" "${duration:=5}" "${idle_conns:=10000}"
	for r in 10 100 1000; do
		for s in 1 4; do
			for b in 64 512; do
				cells+=("thr_${r}_${s}_${b}")
			done
		done
	done
	for r in 10 100 1000; do
		cells+=("rate_${r}_1000")
	done
	cells+=("idle_$idle_conns")
fi

# ---- file descriptors ------------------------------------------------------
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((idle_conns + 1100)) ]; then
	die "ulimit -n is $(ulimit -n); $idle_conns idle connections need about $((idle_conns + 1100)) (use --idle-connections or raise the hard limit)"
fi

# ---- servers installed? ------------------------------------------------------
missing=()
for s in $servers; do
	case "$s" in
	redis) command -v redis-server >/dev/null || missing+=(redis-server) ;;
	nats) command -v nats-server >/dev/null || missing+=(nats-server) ;;
	esac
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$install" = 1 ] || die "missing ${missing[*]} (and --no-install given)"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	echo "compare.sh: installing ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	for p in "${missing[@]}"; do
		command -v "$p" >/dev/null || die "$p is still missing after apt-get install"
	done
fi

# ---- build -----------------------------------------------------------------------
if [ ! -f "$build/build.ninja" ]; then
	echo "compare.sh: configuring $build"
	meson setup "$build" "$repo" -Dbuildtype=release -Dwerror=false \
		-Dtests=disabled >/dev/null
fi
ninja -C "$build" examples/tcpchat-server >/dev/null ||
	die "building tcpchat-server failed (ninja -C $build examples/tcpchat-server)"
server_bin="$build/examples/tcpchat-server"
ninja -C "$build" bench/tcpchat-bench >/dev/null || die "building tcpchat-bench failed"
bench_bin="$build/bench/tcpchat-bench"
[ -x "$server_bin" ] && [ -x "$bench_bin" ] || die "missing $server_bin or $bench_bin"

# ---- output directory ---------------------------------------------------------------
if [ -z "$out" ]; then
	out="$build/compare-$(date +%Y%m%d-%H%M%S)"
fi
mkdir -p "$out"
results="$out/results.txt"
: >"$results"
cat >"$out/nats.conf" <<'EOF'
max_pending: 1GB
write_deadline: "60s"
max_connections: 20000
max_payload: 1MB
EOF
tcpchat_extra=()
if "$server_bin" --help 2>/dev/null | grep -q -- '--log-level'; then
	tcpchat_extra=(--log-level warn)
fi

# ---- server control ---------------------------------------------------------------------
server_pid=""

stop_server() {
	local pid=$server_pid i
	[ -n "$pid" ] || return 0
	server_pid=""
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "compare.sh: server $pid ignored SIGTERM for 10 s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	stop_server
}
trap cleanup EXIT
trap 'echo "compare.sh: interrupted" >&2; exit 130' INT TERM

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_server NAME: starts it on its port, sets server_pid, waits until
# the port accepts connections.
start_server() {
	local name=$1 port log i
	port=$(server_port "$name")
	log="$out/$name-server.log"
	if port_open "$port"; then
		die "port $port is already in use (another server running?)"
	fi
	case "$name" in
	tcpchat)
		"$server_bin" --listen "binary@127.0.0.1:$port" --queue 65536 \
			--max-clients 20000 --idle-timeout 0 "${tcpchat_extra[@]}" \
			>>"$log" 2>&1 &
		;;
	redis)
		redis-server --port "$port" --bind 127.0.0.1 --save '' \
			--appendonly no --client-output-buffer-limit 'pubsub 0 0 0' \
			--maxclients 20000 --daemonize no --logfile '' \
			>>"$log" 2>&1 &
		;;
	nats)
		nats-server -a 127.0.0.1 -p "$port" -c "$out/nats.conf" \
			>>"$log" 2>&1 &
		;;
	esac
	server_pid=$!
	for i in $(seq 1 100); do
		if ! kill -0 "$server_pid" 2>/dev/null; then
			tail -n 20 "$log" >&2
			server_pid=""
			die "$name server exited at start (log: $log)"
		fi
		port_open "$port" && return 0
		sleep 0.1
	done
	die "$name server did not accept connections on port $port within 10 s"
}

server_port() {
	case "$1" in
	tcpchat) echo "$port_tcpchat" ;;
	redis) echo "$port_redis" ;;
	nats) echo "$port_nats" ;;
	esac
}

# bench_args CELL: the tcpchat-bench options of a cell.
bench_args() {
	local IFS=_
	set -- $1
	case "$1" in
	thr) echo "--mode throughput --receivers $2 --senders $3 --size $4 --window $window --duration $duration --warmup $warmup" ;;
	rate) echo "--mode rate --receivers $2 --senders 1 --size 64 --rate $3 --duration $duration --warmup $warmup" ;;
	idle) echo "--mode idle --connections $2" ;;
	esac
}

# ---- the runs ---------------------------------------------------------------------------------
nruns=$((${#cells[@]} * $(echo $servers | wc -w) * repeat))
echo "compare.sh: ${#cells[@]} cells x servers ($servers) x $repeat repeat(s) = $nruns runs; output in $out"
failures=0
run=0
for cell in "${cells[@]}"; do
	for srv in $servers; do
		for k in $(seq 1 "$repeat"); do
			run=$((run + 1))
			args=$(bench_args "$cell")
			start_server "$srv"
			logf="$out/run-$cell-$srv-$k.txt"
			limit=$(awk -v d="$duration" -v w="$warmup" 'BEGIN { printf "%d", d + w + 150 }')
			rc=0
			# shellcheck disable=SC2086
			timeout --kill-after=5 "$limit" "$bench_bin" --proto "$srv" \
				--port "$(server_port "$srv")" --server-pid "$server_pid" \
				$args >"$logf" 2>&1 || rc=$?
			stop_server
			line=$(grep '^RESULT ' "$logf" | tail -n 1 || true)
			if [ "$rc" != 0 ]; then
				failures=$((failures + 1))
				echo "compare.sh: run $run/$nruns $cell $srv #$k FAILED (exit $rc, log $logf):" >&2
				grep -v '^RESULT ' "$logf" | tail -n 5 | sed 's/^/    /' >&2
			fi
			printf 'cell=%s server=%s run=%s rc=%s %s\n' "$cell" "$srv" "$k" "$rc" \
				"${line#RESULT }" >>"$results"
			summary=$(echo "$line" | tr ' ' '\n' | grep -E '^(delivered_per_s|lost|p99_us|server_ns_per_msg|rss_per_conn_bytes|bench_cpu_pct)=' | tr '\n' ' ' || true)
			echo "  [$run/$nruns] $cell $srv #$k rc=$rc $summary"
		done
	done
done

# ---- the table -------------------------------------------------------------------------
echo
awk -v servers="$servers" -v cells="${cells[*]}" -v repeat="$repeat" \
	-v duration="$duration" -v warmup="$warmup" -v window="$window" '
function median(key,    n, i, j, t, a, parts) {
	n = split(vals[key], parts, " ")
	j = 0
	for (i = 1; i <= n; i++)
		if (parts[i] != "" && parts[i] != "-")
			a[++j] = parts[i] + 0
	if (j == 0)
		return "-"
	for (i = 2; i <= j; i++) {            # insertion sort, j is small
		t = a[i]
		for (n = i - 1; n >= 1 && a[n] > t; n--)
			a[n + 1] = a[n]
		a[n + 1] = t
	}
	if (j % 2)
		return a[(j + 1) / 2]
	return (a[j / 2] + a[j / 2 + 1]) / 2
}
function human(v) {
	if (v == "-")
		return "-"
	if (v >= 1e6)
		return sprintf("%.2fM", v / 1e6)
	if (v >= 1e4)
		return sprintf("%.0fk", v / 1e3)
	return sprintf("%.0f", v)
}
function label(c,    p) {
	split(c, p, "_")
	if (p[1] == "thr")
		return sprintf("thr  r=%-4s s=%s %4sB", p[2], p[3], p[4])
	if (p[1] == "rate")
		return sprintf("rate r=%-4s %s/s 64B", p[2], p[3])
	return sprintf("idle %s conns", p[2])
}
{
	cell = ""; srv = ""
	for (i = 1; i <= NF; i++) {
		eq = index($i, "=")
		if (!eq)
			continue
		k = substr($i, 1, eq - 1); v = substr($i, eq + 1)
		if (k == "cell") cell = v
		else if (k == "server") srv = v
		f[k] = v
	}
	id = cell SUBSEP srv
	runs[id]++
	if (f["rc"] != 0)
		failed[id]++
	split("delivered_per_s server_ns_per_msg p99_us lost bench_cpu_pct rss_per_conn_bytes setup_s server_hwm_kb", keys, " ")
	for (i in keys) {
		k = keys[i]
		if (k in f)
			vals[id SUBSEP k] = vals[id SUBSEP k] " " f[k]
	}
	if (("lost" in f) && f["lost"] != "-")
		lostsum[id] += f["lost"]
	delete f
}
END {
	ns = split(servers, S, " ")
	nc = split(cells, C, " ")
	printf "== median of %d run(s) per cell; %s s measured after %s s warm-up; throughput window %s ==\n", repeat, duration, warmup, window
	printf "%-24s", ""
	for (i = 1; i <= ns; i++)
		printf " | %-30s", S[i]
	printf "\n%-24s", "cell"
	for (i = 1; i <= ns; i++)
		printf " | %8s %7s %8s %5s", "deliv/s", "ns/msg", "p99 us", "lost"
	printf "\n"
	for (c = 1; c <= nc; c++) {
		if (C[c] ~ /^idle_/)
			continue
		printf "%-24s", label(C[c])
		for (i = 1; i <= ns; i++) {
			id = C[c] SUBSEP S[i]
			d = human(median(id SUBSEP "delivered_per_s"))
			cpu = median(id SUBSEP "bench_cpu_pct")
			if (cpu != "-" && cpu >= 90)
				d = d "*"
			if (failed[id])
				d = d "!"
			nsm = median(id SUBSEP "server_ns_per_msg")
			p = median(id SUBSEP "p99_us")
			printf " | %8s %7s %8s %5s", d, nsm == "-" ? "-" : sprintf("%.0f", nsm), p == "-" ? "-" : sprintf("%.0f", p), (id in lostsum) ? lostsum[id] : "-"
		}
		printf "\n"
	}
	for (c = 1; c <= nc; c++) {
		if (C[c] !~ /^idle_/)
			continue
		printf "%-24s", label(C[c])
		for (i = 1; i <= ns; i++) {
			id = C[c] SUBSEP S[i]
			b = median(id SUBSEP "rss_per_conn_bytes")
			t = median(id SUBSEP "setup_s")
			s = (b == "-" ? "-" : sprintf("%.0f B/conn", b)) (t == "-" ? "" : sprintf(", %.1f s", t))
			if (failed[id])
				s = s " !"
			printf " | %-30s", s
		}
		printf "\n"
	}
	print ""
	print "deliv/s: messages delivered per second, summed over receivers (median)."
	print "ns/msg: server CPU time per delivered message.  p99 us: 99th percentile"
	print "send-to-receipt latency.  lost: messages lost, summed over all runs."
	print "idle: server RSS growth per logged-in idle connection, and login time."
	print "*: the bench itself used >= 90% of a core (it may be the bottleneck)."
	print "!: at least one run failed; see the run logs."
}' "$results" | tee "$out/table.txt"

echo
echo "compare.sh: raw results in $results, logs in $out"
if [ "$failures" -gt 0 ]; then
	echo "compare.sh: $failures run(s) failed" >&2
	exit 1
fi
