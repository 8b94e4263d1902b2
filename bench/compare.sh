#!/usr/bin/env bash
# compare.sh - run tcpchat-bench against tcpchat-server, Redis and NATS on
# 127.0.0.1 and print one table of medians.  See bench/README.md.
#
#   bench/compare.sh [--quick] [--repeat N] [--servers "tcpchat redis nats"]
#                    [--duration S] [--warmup S] [--window N]
#                    [--idle-connections N] [--storm-connections N]
#                    [--rooms-rate M] [--only REGEX] [--build DIR]
#                    [--source DIR] [--no-build] [--server-bin F]
#                    [--bench-bin F] [--out DIR] [--no-install]
#   bench/compare.sh --fixed [--fraction F] [--cells "10x64 100x512 ..."]
#                    [--cal-duration S] [--rate D | --capacity-from FILE]
#                    [--tick US] [other options as above]
#   bench/compare.sh --durable [--publishers N] [--durable-window W]
#                    [--data-dir DIR] [other options as above]
#   bench/compare.sh --tls [--rate-limits] [--cells "100x64 ..."]
#                    [other options as above]
#   bench/compare.sh --cluster [--buses "redis nats"] [--quick]
#                    [--duration S] [other options as above]
#   Every mode: [--port-base P] (tcpchat P, Redis P+1, NATS P+2)
#
# Every run gets a fresh server process (so that its peak RSS belongs to
# that run), started on a loopback port and stopped by its pid.  Raw
# RESULT lines and server logs are kept in the --out directory.  --fixed
# measures server CPU per delivery at a fixed fraction of the slowest
# server's saturated rate (see bench/README.md).  --durable measures
# acknowledged posting with durable storage: tcpchat-server --store,
# Redis streams with an append-only file, NATS JetStream.  --tls runs the
# fan-out cells over TLS (tcpchat, Redis, NATS) beside plaintext tcpchat;
# --rate-limits runs them against tcpchat-server with and without its
# rate limits.  --cluster runs three tcpchat-servers joined by each bus
# beside one server alone (see bench/compare-cluster.sh).
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
storm_conns=""
rooms_rate=5000
only=""
build="$repo/build-bench"
source_dir=""
do_build=1
server_bin=""
bench_bin=""
out=""
install=1
# --fixed: environment variables give the defaults, options override them.
fixed=0
fraction=${FIXED_FRACTION:-0.5}
fixed_cells=${FIXED_CELLS:-}
fixed_receivers=${FIXED_RECEIVERS:-10 100 1000}
fixed_sizes=${FIXED_SIZES:-64 512}
cal_duration=${FIXED_CAL_DURATION:-2}
fixed_rate=${FIXED_RATE:-}
capacity_from=${FIXED_CAPACITY_FROM:-}
tick=${FIXED_TICK:-20}
port_tcpchat=17070
port_redis=16379
port_nats=14222
# --durable
durable=0
publishers=4
durable_window=64
data_root=${TMPDIR:-/tmp}
# --tls, --rate-limits: server variants side by side
tls=0
rate_limits=0
port_base=""
cells_opt="" # --cells as given (not FIXED_CELLS)
# --cluster
cluster=0
buses="redis nats"

usage() {
	sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'
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
	--storm-connections) need_arg "$@"; storm_conns=$2; shift ;;
	--rooms-rate) need_arg "$@"; rooms_rate=$2; shift ;;
	--only) need_arg "$@"; only=$2; shift ;;
	--build) need_arg "$@"; build=$2; shift ;;
	--source) need_arg "$@"; source_dir=$2; shift ;;
	--no-build) do_build=0 ;;
	--server-bin) need_arg "$@"; server_bin=$2; shift ;;
	--bench-bin) need_arg "$@"; bench_bin=$2; shift ;;
	--out) need_arg "$@"; out=$2; shift ;;
	--fixed) fixed=1 ;;
	--fraction) need_arg "$@"; fraction=$2; shift ;;
	--cells) need_arg "$@"; fixed_cells=$2; cells_opt=$2; shift ;;
	--cal-duration) need_arg "$@"; cal_duration=$2; shift ;;
	--rate) need_arg "$@"; fixed_rate=$2; shift ;;
	--capacity-from) need_arg "$@"; capacity_from=$2; shift ;;
	--tick) need_arg "$@"; tick=$2; shift ;;
	--no-install) install=0 ;;
	--durable) durable=1 ;;
	--publishers) need_arg "$@"; publishers=$2; shift ;;
	--durable-window) need_arg "$@"; durable_window=$2; shift ;;
	--data-dir) need_arg "$@"; data_root=$2; shift ;;
	--tls) tls=1 ;;
	--rate-limits) rate_limits=1 ;;
	--port-base) need_arg "$@"; port_base=$2; shift ;;
	--cluster) cluster=1 ;;
	--buses) need_arg "$@"; buses=$2; shift ;;
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
for v in "$repeat" "$window" "$idle_conns" "$storm_conns" "$rooms_rate" "$publishers" "$durable_window"; do
	[[ -z "$v" || "$v" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: '$v' is not a positive integer" >&2; exit 2; }
done
for v in "$duration" "$warmup"; do
	[[ -z "$v" || "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "compare.sh: '$v' is not a number of seconds" >&2; exit 2; }
done
if [ "$quick" = 1 ] && [ "$fixed" = 1 ]; then
	echo "compare.sh: --quick and --fixed do not go together (use --cells and --duration)" >&2
	exit 2
fi
if [ "$durable" = 1 ] && { [ "$quick" = 1 ] || [ "$fixed" = 1 ] || [ -n "$only" ]; }; then
	echo "compare.sh: --durable goes with neither --quick, --fixed nor --only (use --repeat and --duration)" >&2
	exit 2
fi
for s in $buses; do
	case "$s" in
	redis | nats) ;;
	*) echo "compare.sh: unknown bus '$s' (redis, nats)" >&2; exit 2 ;;
	esac
done
if [ "$cluster" = 1 ] && { [ "$fixed" = 1 ] || [ "$durable" = 1 ] || [ "$tls" = 1 ] || [ "$rate_limits" = 1 ] || [ -n "$only" ]; }; then
	echo "compare.sh: --cluster goes with neither --fixed, --durable, --tls, --rate-limits nor --only" >&2
	exit 2
fi
variants=0
if [ "$tls" = 1 ] || [ "$rate_limits" = 1 ]; then
	variants=1
	if [ "$fixed" = 1 ] || [ "$durable" = 1 ]; then
		echo "compare.sh: --tls and --rate-limits go with neither --fixed nor --durable" >&2
		exit 2
	fi
fi
if [ -n "$port_base" ]; then
	[[ "$port_base" =~ ^[1-9][0-9]*$ ]] && [ "$port_base" -ge 1024 ] && [ "$port_base" -le 65533 ] ||
		{ echo "compare.sh: --port-base '$port_base' is not a port in 1024..65533" >&2; exit 2; }
	port_tcpchat=$port_base
	port_redis=$((port_base + 1))
	port_nats=$((port_base + 2))
fi
if [ "$durable" = 1 ]; then
	[ -d "$data_root" ] && [ -w "$data_root" ] || { echo "compare.sh: --data-dir '$data_root' is not a writable directory" >&2; exit 2; }
fi
for v in "$server_bin" "$bench_bin"; do
	[ -z "$v" ] || [ -x "$v" ] || { echo "compare.sh: '$v' is not an executable file" >&2; exit 2; }
done

# The matrix.  Cell ids: thr_R_S_B (throughput: receivers, senders, payload
# bytes), rate_R_M (M msg/s in total, 64 B), idle_N (N connections),
# storm_N (N never-reading connections, servers with their defaults),
# rooms_K_M_R (K rooms of M members, R msg/s in total, 64 B), big_R_S_B
# (as thr_R_S_B, in room 0 of 100 rooms; the 99 others have 3 members).
cells=()
# check_rxb CELL: sets r and b of a cell RxB (receivers x payload
# bytes), or exits.
check_rxb() {
	[[ "$1" =~ ^([1-9][0-9]*)x([1-9][0-9]*)$ ]] ||
		{ echo "compare.sh: cell '$1' is not RECEIVERSxBYTES (e.g. 100x64)" >&2; exit 2; }
	r=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]}
	[ "$b" -ge 40 ] && [ "$b" -le 1048576 ] ||
		{ echo "compare.sh: cell '$1': payload must be 40..1048576 bytes" >&2; exit 2; }
	[ "$r" -le 100000 ] || { echo "compare.sh: cell '$1': too many receivers" >&2; exit 2; }
	if [ "$r" -gt "${idle_conns:-0}" ]; then
		idle_conns=$r # for the file descriptor check below
	fi
}
# The fan-out cells of the full matrix: throughput, then rate.
add_thr_cells() {
	local r s b
	for r in 10 100 1000; do
		for s in 1 4; do
			for b in 64 512; do
				cells+=("thr_${r}_${s}_${b}")
			done
		done
	done
}
add_rate_cells() {
	local r
	for r in 10 100 1000; do
		cells+=("rate_${r}_1000")
	done
}
if [ "$fixed" = 1 ]; then
	# Fixed-load cells: RxB (receivers x payload bytes), 1 sender.  For
	# each cell, cap_R_B is the saturated (calibration) run and fix_R_B
	# the run at the fixed offered load.
	: "${repeat:=${FIXED_REPEAT:-1}}" "${duration:=${FIXED_DURATION:-5}}"
	[[ "$fraction" =~ ^[0-9]*\.?[0-9]+$ ]] &&
		awk -v f="$fraction" 'BEGIN { exit !(f > 0 && f <= 1) }' ||
		{ echo "compare.sh: --fraction '$fraction' is not in (0, 1]" >&2; exit 2; }
	[[ "$cal_duration" =~ ^[0-9]+(\.[0-9]+)?$ ]] &&
		awk -v d="$cal_duration" 'BEGIN { exit !(d >= 0.5) }' ||
		{ echo "compare.sh: --cal-duration '$cal_duration' is not a number of seconds >= 0.5" >&2; exit 2; }
	[[ "$tick" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --tick '$tick' is not a positive integer (microseconds)" >&2; exit 2; }
	[[ -z "$fixed_rate" || "$fixed_rate" =~ ^[0-9]+(\.[0-9]+)?$ ]] &&
		awk -v r="${fixed_rate:-1}" 'BEGIN { exit !(r > 0) }' ||
		{ echo "compare.sh: --rate '$fixed_rate' is not a positive number of deliveries/s" >&2; exit 2; }
	if [ -n "$fixed_rate" ] && [ -n "$capacity_from" ]; then
		echo "compare.sh: --rate and --capacity-from do not go together" >&2
		exit 2
	fi
	if [ -n "$capacity_from" ]; then
		[ -r "$capacity_from" ] || { echo "compare.sh: cannot read '$capacity_from'" >&2; exit 2; }
		capacity_from=$(cd "$(dirname "$capacity_from")" && pwd)/$(basename "$capacity_from")
	fi
	if [ -z "$fixed_cells" ]; then
		for r in $fixed_receivers; do
			for b in $fixed_sizes; do
				fixed_cells="$fixed_cells ${r}x$b"
			done
		done
	fi
	idle_conns=0
	for c in $fixed_cells; do
		check_rxb "$c"
		cells+=("fix_${r}_$b")
	done
	[ ${#cells[@]} -gt 0 ] || { echo "compare.sh: no cells" >&2; exit 2; }
elif [ "$cluster" = 1 ]; then
	# --cluster: its own cells, see bench/compare-cluster.sh
	cells=(cluster)
elif [ "$durable" = 1 ]; then
	# dur_SERVER_CONFIG: acknowledged posting (tcpchat store, store with
	# fsync and memory, redis everysec and always, nats jetstream); fan_MODE_STORE: the
	# tcpchat fan-out (thr: throughput, 100 receivers; rate: 1000 msg/s
	# to 100 receivers) with the store on and off.
	: "${repeat:=3}" "${duration:=5}"
	cells=(dur_tcpchat_store dur_tcpchat_fsync dur_tcpchat_memory dur_redis_everysec
		dur_redis_always dur_nats_jetstream fan_thr_store fan_thr_memory
		fan_rate_store fan_rate_memory)
elif [ "$variants" = 1 ]; then
	# --tls, --rate-limits: the fan-out cells of the matrix (of --quick:
	# thr_100_1_64, thr_1000_1_64, rate_100_1000), or thr_R_1_B for
	# each --cells RxB.
	if [ "$quick" = 1 ]; then
		: "${repeat:=1}" "${duration:=3}"
	else
		: "${repeat:=3}" "${duration:=5}"
	fi
	if [ -n "$cells_opt" ]; then
		for c in $cells_opt; do
			check_rxb "$c"
			cells+=("thr_${r}_1_$b")
		done
	elif [ "$quick" = 1 ]; then
		cells=(thr_100_1_64 thr_1000_1_64 rate_100_1000)
	else
		add_thr_cells
		add_rate_cells
	fi
elif [ "$quick" = 1 ]; then
	: "${repeat:=1}" "${duration:=3}" "${idle_conns:=2000}" "${storm_conns:=10000}"
	cells=(thr_100_1_64 thr_1000_1_64 big_1000_1_64 rate_100_1000
		"rooms_100_10_$rooms_rate" "idle_$idle_conns" "storm_$storm_conns")
else
	: "${repeat:=3}" "${duration:=5}" "${idle_conns:=10000}"
	add_thr_cells
	for s in 1 4; do
		cells+=("big_1000_${s}_64")
	done
	add_rate_cells
	cells+=("rooms_100_10_$rooms_rate")
	: "${storm_conns:=10000}"
	cells+=("idle_$idle_conns" "storm_$storm_conns")
fi
if [ -n "$only" ]; then
	kept=()
	for c in "${cells[@]}"; do
		if [[ "$c" =~ $only ]]; then
			kept+=("$c")
		fi
	done
	[ ${#kept[@]} -gt 0 ] || { echo "compare.sh: --only '$only' matches none of: ${cells[*]}" >&2; exit 2; }
	cells=("${kept[@]}")
fi
# The columns of the table: the servers, or with --tls and --rate-limits
# their variants, plaintext tcpchat first (the baseline): tcpchat+tls,
# redis+tls, nats+tls (TLS on the server's port), tcpchat+limits
# (tcpchat-server with its rate limits on).
columns=$servers
if [ "$variants" = 1 ]; then
	columns=""
	for s in $servers; do
		if [ "$s" = tcpchat ]; then
			columns="$columns tcpchat"
			if [ "$tls" = 1 ]; then
				columns="$columns tcpchat+tls"
			fi
			if [ "$rate_limits" = 1 ]; then
				columns="$columns tcpchat+limits"
			fi
		elif [ "$tls" = 1 ]; then
			columns="$columns $s+tls"
		fi
	done
	columns=${columns# }
	[ -n "$columns" ] || { echo "compare.sh: --rate-limits needs tcpchat in --servers" >&2; exit 2; }
fi
if [ "$cluster" = 1 ]; then
	columns=$buses
fi
# The file descriptors the largest cell needs.
most_conns=${idle_conns:-0}
for c in "${cells[@]}"; do
	case "$c" in
	storm_*) n=${c#storm_} ;;
	big_*)
		IFS=_ read -r _ r s _ <<<"$c"
		n=$((r + s + 300))
		;;
	*) n=0 ;;
	esac
	if [ "$n" -gt "$most_conns" ]; then
		most_conns=$n
	fi
done

# ---- file descriptors ------------------------------------------------------
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((most_conns + 1100)) ]; then
	die "ulimit -n is $(ulimit -n); $most_conns connections need about $((most_conns + 1100)) (use --idle-connections / --storm-connections or raise the hard limit)"
fi

# ---- servers installed? ------------------------------------------------------
missing=()
for s in $columns; do
	case "${s%%+*}" in
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
# --build DIR may be the build directory of any tree: if it is configured
# already, ninja rebuilds it from its own source tree; if not, it is
# configured from --source (default: the tree that holds this script).
# --no-build uses the binaries in DIR as they are; --server-bin and
# --bench-bin name binaries directly (then DIR is not built for them).
build=$(mkdir -p "$build" && cd "$build" && pwd)
if [ -z "$server_bin" ] || [ -z "$bench_bin" ]; then
	if [ ! -f "$build/build.ninja" ]; then
		[ "$do_build" = 1 ] || die "$build is not a configured build directory (and --no-build given)"
		src=${source_dir:-$repo}
		[ -f "$src/meson.build" ] || die "$src has no meson.build (use --source)"
		echo "compare.sh: configuring $build from $src"
		engines=()
		if [ "$cluster" = 1 ]; then
			# the buses of tcpchat-server --bus
			engines=(-Dredis=enabled -Dnats=enabled)
		fi
		meson setup "$build" "$src" -Dbuildtype=release -Dwerror=false \
			-Dtests=disabled "${engines[@]}" >/dev/null
	elif [ -n "$source_dir" ]; then
		echo "compare.sh: $build is configured already; --source ignored" >&2
	fi
fi
if [ -z "$server_bin" ]; then
	if [ "$do_build" = 1 ]; then
		ninja -C "$build" examples/tcpchat-server >/dev/null ||
			die "building tcpchat-server failed (ninja -C $build examples/tcpchat-server)"
	fi
	server_bin="$build/examples/tcpchat-server"
fi
if [ -z "$bench_bin" ]; then
	if [ "$do_build" = 1 ]; then
		ninja -C "$build" bench/tcpchat-bench >/dev/null || die "building tcpchat-bench failed"
	fi
	bench_bin="$build/bench/tcpchat-bench"
fi
[ -x "$server_bin" ] && [ -x "$bench_bin" ] || die "missing $server_bin or $bench_bin"
bench_help=$("$bench_bin" --help 2>&1 || true)
# (Not "--help | grep -q": under pipefail, the SIGPIPE of a server that
# still writes after grep has quit would read as "no such option".)
server_help=$("$server_bin" --help 2>&1 || true)
if [ "$fixed" = 1 ] && [[ "$bench_help" != *--tick* ]]; then
	die "$bench_bin has no --tick option; --fixed needs the tcpchat-bench of this script's tree"
fi
echo "compare.sh: server $server_bin"
echo "compare.sh: bench  $bench_bin"

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
if [[ "$server_help" == *--log-level* ]]; then
	tcpchat_extra=(--log-level warn)
fi
# Every bench client comes from 127.0.0.1: no per-address limits.
tcpchat_unlimited=()
if [[ "$server_help" == *--addr-conns* ]]; then
	tcpchat_unlimited+=(--addr-conns 0 --addr-rate 0 --addr-handshakes 0)
fi
# A benchmark sends as fast as it can: no per-user rate limits (the other
# servers have none either).
if [[ "$server_help" == *--rate-bytes* ]]; then
	tcpchat_unlimited+=(--rate 0 --rate-bytes 0)
elif [ "$rate_limits" = 1 ]; then
	die "$server_bin has no rate limits (--rate-bytes); --rate-limits needs a newer tcpchat-server"
fi
# --rate-limits: the limits on (tcpchat+limits), every one above what the
# bench does, so that their checks cost what they cost and refuse
# nothing: per address (connections from 127.0.0.1 at once, new ones per
# second and their burst, unfinished logins) and per user (messages and
# frame bytes per second, and the message burst; the byte burst is 4 s
# of --rate-bytes).
tcpchat_limited=(--addr-conns 100000 --addr-rate 1000000 --addr-burst 1000000
	--addr-handshakes 100000 --rate 1000000 --rate-burst 1000000
	--rate-bytes 1000000000)
# --tls: a throwaway CA and server certificate (EC P-256, for IP:127.0.0.1
# and DNS:localhost) in OUT/tls; the bench verifies the servers with it.
tls_dir="$out/tls"
if [ "$tls" = 1 ]; then
	[[ "$server_help" == *--tls-cert* ]] ||
		die "$server_bin has no TLS (--tls-cert); build it with OpenSSL"
	[[ "$bench_help" == *--tls-ca* && "$bench_help" != *"has no TLS"* ]] ||
		die "$bench_bin has no TLS; build it with OpenSSL"
	command -v openssl >/dev/null || die "--tls needs the openssl command"
	mkdir -p "$tls_dir"
	(
		set -e
		cd "$tls_dir"
		ec=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256)
		openssl genpkey "${ec[@]}" -out ca.key
		openssl req -x509 -new -key ca.key -subj "/CN=tcpchat-bench CA" \
			-days 7 -addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem
		openssl genpkey "${ec[@]}" -out server.key
		openssl req -new -key server.key -subj /CN=localhost -out server.csr
		printf '%s\n' subjectAltName=IP:127.0.0.1,DNS:localhost \
			basicConstraints=CA:FALSE keyUsage=critical,digitalSignature \
			extendedKeyUsage=serverAuth >server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
			-CAcreateserial -days 7 -extfile server.ext -out server.pem
		openssl verify -CAfile ca.pem server.pem
	) >"$tls_dir/openssl.log" 2>&1 ||
		die "making the test certificates failed (see $tls_dir/openssl.log)"
fi

# awk functions of the tables: median(key) of the values in vals[key]
# ("-" when none), human(v) (1.23M, 45k), num(v, fmt) ("-" stays "-").
awk_lib='
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
	v += 0
	if (v >= 1e6)
		return sprintf("%.2fM", v / 1e6)
	if (v >= 1e4)
		return sprintf("%.0fk", v / 1e3)
	return sprintf("%.0f", v)
}
function num(v, fmt) {
	return v == "-" ? "-" : sprintf(fmt, v)
}'

# ---- server control ---------------------------------------------------------------------
server_pid=""
data_dir="" # the server's files in durable cells, a fresh temp dir per run

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
	drop_data
}

drop_data() {
	if [ -n "$data_dir" ]; then
		rm -rf "$data_dir"
		data_dir=""
	fi
}

cleanup() {
	stop_server
	drop_data
}
trap cleanup EXIT
trap 'echo "compare.sh: interrupted" >&2; exit 130' INT TERM

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_server NAME [CELL]: starts it on its port, sets server_pid, waits
# until the port accepts connections.  For a storm_N cell tcpchat-server
# runs with its defaults (only --log-level, and --max-clients when N is
# over the default 10000).
start_server() {
	local srv=$1 name=${1%%+*} cell=${2:-} port log i
	local tc_opts=(--queue 65536 --max-clients 20000 --idle-timeout 0)
	local tc_listen=binary tc_limits=("${tcpchat_unlimited[@]}")
	local redis_port=() nats_tls=()
	if [[ "$cell" == storm_* ]]; then
		tc_opts=()
		if [ "${cell#storm_}" -gt 10000 ]; then
			tc_opts=(--max-clients "${cell#storm_}")
		fi
	fi
	local redis_aof=(--appendonly no) nats_js=()
	port=$(server_port "$name")
	log="$out/$srv-server.log"
	if port_open "$port"; then
		die "port $port is already in use (another server running?)"
	fi
	# Durable cells: the server's files go to a fresh temp dir.
	case "$cell" in
	dur_* | fan_*)
		data_dir=$(mktemp -d "$data_root/tcpchat-bench.XXXXXX")
		;;
	esac
	case "$cell" in
	dur_tcpchat_store | fan_*_store) tc_opts+=(--store "$data_dir/chat.db") ;;
	dur_tcpchat_fsync) tc_opts+=(--store "$data_dir/chat.db" --fsync) ;;
	dur_redis_*)
		redis_aof=(--appendonly yes --appendfsync "${cell#dur_redis_}"
			--dir "$data_dir")
		;;
	dur_nats_jetstream) nats_js=(-js -sd "$data_dir") ;;
	esac
	redis_port=(--port "$port")
	case "$srv" in
	tcpchat+tls)
		tc_listen=tls+binary
		tc_opts+=(--tls-cert "$tls_dir/server.pem" --tls-key "$tls_dir/server.key")
		;;
	tcpchat+limits) tc_limits=("${tcpchat_limited[@]}") ;;
	redis+tls)
		redis_port=(--port 0 --tls-port "$port"
			--tls-cert-file "$tls_dir/server.pem"
			--tls-key-file "$tls_dir/server.key"
			--tls-ca-cert-file "$tls_dir/ca.pem" --tls-auth-clients no)
		;;
	nats+tls)
		nats_tls=(--tls --tlscert "$tls_dir/server.pem"
			--tlskey "$tls_dir/server.key")
		;;
	esac
	case "$name" in
	tcpchat)
		"$server_bin" --listen "$tc_listen@127.0.0.1:$port" "${tc_opts[@]}" \
			"${tcpchat_extra[@]}" "${tc_limits[@]}" >>"$log" 2>&1 &
		;;
	redis)
		redis-server "${redis_port[@]}" --bind 127.0.0.1 --save '' \
			"${redis_aof[@]}" --client-output-buffer-limit 'pubsub 0 0 0' \
			--maxclients 20000 --daemonize no --logfile '' \
			>>"$log" 2>&1 &
		;;
	nats)
		nats-server -a 127.0.0.1 -p "$port" -c "$out/nats.conf" \
			"${nats_js[@]}" "${nats_tls[@]}" >>"$log" 2>&1 &
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
	storm) echo "--mode storm --connections $2" ;;
	rooms) echo "--mode rooms --rooms $2 --members $3 --rate $4 --size 64 --duration $duration --warmup $warmup" ;;
	big) echo "--mode throughput --receivers $2 --senders $3 --size $4 --window $window --rooms 100 --members 3 --duration $duration --warmup $warmup" ;;
	dur) echo "--mode durable --senders $publishers --window $durable_window --size 64 --duration $duration --warmup $warmup" ;;
	fan)
		if [ "$2" = thr ]; then
			echo "--mode throughput --receivers 100 --senders 1 --size 64 --window $window --duration $duration --warmup $warmup"
		else
			echo "--mode rate --receivers 100 --senders 1 --size 64 --rate 1000 --duration $duration --warmup $warmup"
		fi
		;;
	esac
}

# ---- one run ------------------------------------------------------------------------------
# one_run CELL SERVER K DURATION ARGS: a fresh server, one bench run, one
# line in results.txt.  Uses and updates run, nruns and failures.
one_run() {
	local cell=$1 srv=$2 k=$3 dur=$4 args=$5 logf limit rc line summary
	local tls_opts=()
	if [[ "$srv" == *+tls ]]; then
		tls_opts=(--tls --tls-ca "$tls_dir/ca.pem")
	fi
	run=$((run + 1))
	start_server "$srv" "$cell"
	logf="$out/run-$cell-$srv-$k.txt"
	limit=$(awk -v d="$dur" -v w="$warmup" 'BEGIN { printf "%d", d + w + 150 }')
	rc=0
	# shellcheck disable=SC2086
	timeout --kill-after=5 "$limit" "$bench_bin" --proto "${srv%%+*}" \
		"${tls_opts[@]}" --port "$(server_port "${srv%%+*}")" \
		--server-pid "$server_pid" $args >"$logf" 2>&1 || rc=$?
	stop_server
	line=$(grep '^RESULT ' "$logf" | tail -n 1 || true)
	if [ "$rc" != 0 ]; then
		failures=$((failures + 1))
		echo "compare.sh: run $run/$nruns $cell $srv #$k FAILED (exit $rc, log $logf):" >&2
		grep -v '^RESULT ' "$logf" | tail -n 5 | sed 's/^/    /' >&2
	fi
	printf 'cell=%s server=%s run=%s rc=%s %s\n' "$cell" "$srv" "$k" "$rc" \
		"${line#RESULT }" >>"$results"
	summary=$(echo "$line" | tr ' ' '\n' | grep -E "^($summary_keys)=" | tr '\n' ' ' || true)
	echo "  [$run/$nruns] $cell $srv #$k rc=$rc $summary"
}

# ---- fixed-load mode ------------------------------------------------------------------------
# For every cell RxB: (1) unless --rate or --capacity-from, a saturated
# throughput run of every server (cell cap_R_B), which gives its capacity
# in published messages/s = delivered/s / R; (2) one common offered rate
# for all servers: --fraction x the smallest capacity (or --rate / R);
# (3) a rate-mode run of every server at that rate (cell fix_R_B), paced
# by the bench on an absolute schedule.  Then three tables.
if [ "$fixed" = 1 ]; then
	offers="$out/offers.txt"
	: >"$offers"
	calibrate=1
	if [ -n "$fixed_rate" ] || [ -n "$capacity_from" ]; then
		calibrate=0
	fi
	nserv=$(echo "$servers" | wc -w)
	nruns=$((${#cells[@]} * nserv * repeat * (1 + calibrate)))
	est=$(awk -v n="$nruns" -v c="$calibrate" -v cd="$cal_duration" -v d="$duration" \
		-v w="$warmup" -v runs="$((${#cells[@]} * nserv * repeat))" \
		'BEGIN { printf "%.0f", (runs * (d + w + 1.5) + c * runs * (cd + w + 1.5)) / 60 + 0.5 }')
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	# CPU already in use by other processes: /proc/stat over one second.
	stat0=$(head -n 1 /proc/stat)
	sleep 1
	stat1=$(head -n 1 /proc/stat)
	busy0=$(printf '%s\n%s\n' "$stat0" "$stat1" | awk '
		{ t = 0; for (i = 2; i <= 9 && i <= NF; i++) t += $i; idle = $5 + $6 }
		NR == 1 { t0 = t; i0 = idle }
		NR == 2 { printf "%.0f", (t > t0 ? 100 * (1 - (idle - i0) / (t - t0)) : 0) }')
	echo "compare.sh: fixed load: ${#cells[@]} cells x servers ($servers) x $repeat repeat(s) = $nruns runs (about $est min); output in $out"
	if [ -n "$fixed_rate" ]; then
		echo "compare.sh: offered load: $fixed_rate deliveries/s in every cell (--rate)"
	elif [ -n "$capacity_from" ]; then
		echo "compare.sh: offered load: $fraction x the slowest capacity in $capacity_from"
	else
		echo "compare.sh: offered load: $fraction x the slowest server's saturated rate (calibrated: throughput, window $window, $cal_duration s)"
	fi
	echo "compare.sh: before the runs: $busy0% of the CPUs busy, load average $load0"
	if [ "$busy0" -gt 10 ]; then
		echo "compare.sh: warning: something else is using $busy0% of the CPUs; results will be noisy" >&2
	fi
	summary_keys='sent_per_s|delivered_per_s|lost|server_cpu_s|server_ns_per_msg|bench_cpu_pct|rate_missed'
	failures=0
	run=0
	for cell in "${cells[@]}"; do
		IFS=_ read -r _ r b <<<"$cell"
		cap="cap_${r}_$b"
		if [ -n "$capacity_from" ]; then
			# Saturated results of an earlier run: cap_R_B cells of a
			# --fixed run, or thr_R_1_B cells of the full matrix.
			grep -E "^cell=(cap_${r}_${b}|thr_${r}_1_${b}) " "$capacity_from" |
				sed -E "s/^cell=[^ ]+ /cell=$cap /; s/\$/ src=file/" >>"$results" || true
		elif [ "$calibrate" = 1 ]; then
			for srv in $servers; do
				for k in $(seq 1 "$repeat"); do
					one_run "$cap" "$srv" "$k" "$cal_duration" \
						"--mode throughput --receivers $r --senders 1 --size $b --window $window --duration $cal_duration --warmup $warmup"
				done
			done
		fi
		# The offered rate of this cell, in published messages/s.
		offer=$(awk -v cell="$cap" -v servers="$servers" -v r="$r" \
			-v frac="$fraction" -v fixed="$fixed_rate" '
		function median(s,    n, i, j, t, a, p) {
			n = split(vals[s], p, " ")
			for (i = 1; i <= n; i++)
				a[i] = p[i] + 0
			for (i = 2; i <= n; i++) {
				t = a[i]
				for (j = i - 1; j >= 1 && a[j] > t; j--)
					a[j + 1] = a[j]
				a[j + 1] = t
			}
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		$1 == "cell=" cell {
			delete f
			for (i = 1; i <= NF; i++) {
				eq = index($i, "=")
				if (eq)
					f[substr($i, 1, eq - 1)] = substr($i, eq + 1)
			}
			if (f["rc"] == 0 && f["delivered_per_s"] != "" && f["delivered_per_s"] != "-")
				vals[f["server"]] = vals[f["server"]] " " f["delivered_per_s"]
		}
		END {
			if (fixed != "") {
				printf "rate=%.3f source=rate\n", fixed / r
				exit
			}
			ns = split(servers, S, " ")
			min = -1
			caps = ""
			for (i = 1; i <= ns; i++) {
				if (!(S[i] in vals)) {
					caps = caps " cap_" S[i] "=-"
					continue
				}
				c = median(S[i]) / r
				caps = caps sprintf(" cap_%s=%.1f", S[i], c)
				if (min < 0 || c < min) {
					min = c
					slow = S[i]
				}
			}
			if (min <= 0)
				printf "rate=- source=none%s\n", caps
			else
				printf "rate=%.3f source=%s slowest=%s%s\n", frac * min, "capacity", slow, caps
		}' "$results")
		rate=${offer%% *}
		rate=${rate#rate=}
		echo "cell=fix_${r}_$b receivers=$r size=$b fraction=$fraction $offer" >>"$offers"
		if [ "$rate" = - ]; then
			echo "compare.sh: cell ${r}x$b: no capacity measured (all calibration runs failed); skipped" >&2
			failures=$((failures + 1))
			continue
		fi
		echo "  cell ${r}x$b: offered $rate msg/s published = $(awk -v x="$rate" -v r="$r" 'BEGIN { printf "%.0f", x * r }') deliveries/s ($offer)"
		for srv in $servers; do
			for k in $(seq 1 "$repeat"); do
				one_run "$cell" "$srv" "$k" "$duration" \
					"--mode rate --receivers $r --senders 1 --size $b --rate $rate --tick $tick --duration $duration --warmup $warmup"
			done
		done
	done
	load1=$(cut -d' ' -f1-3 /proc/loadavg)

	echo
	awk -v servers="$servers" -v cells="${cells[*]}" -v repeat="$repeat" \
		-v duration="$duration" -v warmup="$warmup" -v window="$window" \
		-v frac="$fraction" -v fixed="$fixed_rate" -v capfile="$capacity_from" \
		-v cald="$cal_duration" -v tick="$tick" -v load0="$load0" -v load1="$load1" \
		-v busy0="$busy0" -v ncpu="$(nproc)" \
		-v offers="$offers" "$awk_lib"'
	function ratio(a, b) {
		return (a == "-" || b == "-" || b <= 0) ? "-" : sprintf("%.2f", a / b)
	}
	function label(c,    p) {
		split(c, p, "_")
		return sprintf("r=%-5s %5sB", p[2], p[3])
	}
	FILENAME == offers {
		for (i = 1; i <= NF; i++) {
			eq = index($i, "=")
			if (eq)
				o[substr($1, 6), substr($i, 1, eq - 1)] = substr($i, eq + 1)
		}
		next
	}
	{
		delete f
		for (i = 1; i <= NF; i++) {
			eq = index($i, "=")
			if (eq)
				f[substr($i, 1, eq - 1)] = substr($i, eq + 1)
		}
		id = f["cell"] SUBSEP f["server"]
		if (f["rc"] != 0)
			failed[id]++
		if (f["server_cpu_s"] != "" && f["server_cpu_s"] != "-" && f["duration"] + 0 > 0)
			f["cpu_pct"] = f["server_cpu_s"] / f["duration"] * 100
		if (f["rate"] != "" && f["rate"] != "-" && f["sent_per_s"] != "-" && f["rate"] + 0 > 0)
			f["sent_frac"] = f["sent_per_s"] / f["rate"]
		split("delivered_per_s server_ns_per_msg p99_us bench_cpu_pct cpu_pct sent_frac rate_missed", keys, " ")
		for (i in keys) {
			k = keys[i]
			if (k in f)
				vals[id SUBSEP k] = vals[id SUBSEP k] " " f[k]
		}
		if (("lost" in f) && f["lost"] != "-")
			lostsum[id] += f["lost"]
	}
	END {
		ns = split(servers, S, " ")
		nc = split(cells, C, " ")
		tc = 0
		for (i = 1; i <= ns; i++)
			if (S[i] == "tcpchat")
				tc = 1

		# 1. saturated capacity (calibration)
		if (fixed == "") {
			if (capfile != "")
				printf "== saturated: from %s (throughput mode, 1 sender) ==\n", capfile
			else
				printf "== saturated (calibration): throughput mode, window %s, 1 sender; median of %d run(s) of %s s after %s s warm-up ==\n", window, repeat, cald, warmup
			printf "%-14s", ""
			for (i = 1; i <= ns; i++)
				printf " | %-33s", S[i]
			printf "\n%-14s", "cell"
			for (i = 1; i <= ns; i++)
				printf " | %8s %9s %7s %6s", "deliv/s", "publish/s", "ns/dlv", "bench%"
			printf "\n"
			for (c = 1; c <= nc; c++) {
				cap = C[c]
				sub(/^fix_/, "cap_", cap)
				split(C[c], p, "_")
				printf "%-14s", label(C[c])
				for (i = 1; i <= ns; i++) {
					id = cap SUBSEP S[i]
					d = median(id SUBSEP "delivered_per_s")
					cpu = median(id SUBSEP "bench_cpu_pct")
					mark = (cpu != "-" && cpu >= 90 ? "*" : "") (failed[id] ? "!" : "")
					if (S[i] == o[C[c], "slowest"])
						mark = mark "<"
					printf " | %8s %9s %7s %6s", human(d) mark, d == "-" ? "-" : human(d / p[2]), num(median(id SUBSEP "server_ns_per_msg"), "%.0f"), num(cpu, "%.0f")
				}
				printf "\n"
			}
			print "<: the slowest server of the cell; the offered load below is a fraction of its publish/s."
			print ""
		}

		# 2. fixed load
		if (fixed != "")
			printf "== fixed load: %s deliveries/s in every cell; rate mode, 1 sender, tick %s us; median of %d run(s) of %s s after %s s warm-up ==\n", fixed, tick, repeat, duration, warmup
		else
			printf "== fixed load: %s x the slowest saturated rate, same offered rate for every server; rate mode, 1 sender, tick %s us; median of %d run(s) of %s s after %s s warm-up ==\n", frac, tick, repeat, duration, warmup
		printf "%-14s | %-17s", "", "offered"
		for (i = 1; i <= ns; i++)
			printf " | %-38s", S[i]
		printf "\n%-14s | %8s %8s", "cell", "pub/s", "dlv/s"
		for (i = 1; i <= ns; i++)
			printf " | %8s %5s %7s %8s %5s", "deliv/s", "cpu%", "ns/dlv", "p99 us", "lost"
		printf "\n"
		for (c = 1; c <= nc; c++) {
			split(C[c], p, "_")
			rate = o[C[c], "rate"]
			printf "%-14s | %8s %8s", label(C[c]), rate == "-" ? "-" : human(rate), rate == "-" ? "-" : human(rate * p[2])
			for (i = 1; i <= ns; i++) {
				id = C[c] SUBSEP S[i]
				d = median(id SUBSEP "delivered_per_s")
				sf = median(id SUBSEP "sent_frac")
				miss = median(id SUBSEP "rate_missed")
				cpu = median(id SUBSEP "bench_cpu_pct")
				mark = ""
				if ((sf != "-" && sf < 0.97) || (miss != "-" && miss > 0) || (d != "-" && rate != "-" && d < 0.95 * rate * p[2]))
					mark = mark "~"
				if (cpu != "-" && cpu >= 90)
					mark = mark "*"
				if (failed[id])
					mark = mark "!"
				printf " | %8s %5s %7s %8s %5s", human(d) mark, num(median(id SUBSEP "cpu_pct"), "%.0f"), num(median(id SUBSEP "server_ns_per_msg"), "%.0f"), num(median(id SUBSEP "p99_us"), "%.0f"), (id in lostsum) ? lostsum[id] : "-"
			}
			printf "\n"
		}
		print ""

		# 3. ratios
		if (tc && ns > 1) {
			print "== server CPU per delivery, tcpchat / other (below 1: tcpchat uses less CPU per delivery) =="
			printf "%-14s", "cell"
			for (i = 1; i <= ns; i++)
				if (S[i] != "tcpchat")
					printf " | %-23s", "tcpchat/" S[i]
			printf "\n%-14s", ""
			for (i = 1; i <= ns; i++)
				if (S[i] != "tcpchat")
					printf " | %11s %11s", "saturated", "fixed load"
			printf "\n"
			for (c = 1; c <= nc; c++) {
				cap = C[c]
				sub(/^fix_/, "cap_", cap)
				printf "%-14s", label(C[c])
				for (i = 1; i <= ns; i++) {
					if (S[i] == "tcpchat")
						continue
					printf " | %11s %11s", ratio(median(cap SUBSEP "tcpchat" SUBSEP "server_ns_per_msg"), median(cap SUBSEP S[i] SUBSEP "server_ns_per_msg")), ratio(median(C[c] SUBSEP "tcpchat" SUBSEP "server_ns_per_msg"), median(C[c] SUBSEP S[i] SUBSEP "server_ns_per_msg"))
				}
				printf "\n"
			}
			print ""
		}
		print "pub/s: offered messages/s, published by 1 sender on an absolute schedule; dlv/s: pub/s x receivers."
		print "deliv/s: messages delivered per second, summed over receivers (median).  cpu%: server CPU"
		print "time in the window, % of one core.  ns/dlv: server CPU ns per delivered message (utime +"
		print "stime from /proc/PID/stat, all threads).  p99 us: send-to-receipt latency.  lost: summed."
		print "~: the offered load was not reached (sent < 97% of the rate, sends skipped, or deliveries"
		print "   < 95% of the offered dlv/s).  *: the bench used >= 90% of a core.  !: a run failed."
		printf "before the runs %s%% of the %s CPUs were busy; load average (1/5/15 min) %s before, %s after.\n", busy0, ncpu, load0, load1
	}' "$offers" "$results" | tee "$out/table.txt"

	echo
	echo "compare.sh: raw results in $results, offered rates in $offers, logs in $out"
	if [ "$failures" -gt 0 ]; then
		echo "compare.sh: $failures run(s) failed" >&2
		exit 1
	fi
	exit 0
fi

# ---- cluster mode ------------------------------------------------------------
if [ "$cluster" = 1 ]; then
	# shellcheck source=bench/compare-cluster.sh
	. "$here/compare-cluster.sh"
	exit 1 # (compare-cluster.sh exits)
fi

# ---- durable mode ----------------------------------------------------------------------------
# Every dur_SERVER_CONFIG cell of a server in --servers, then the tcpchat
# fan-out cells with the store on and off (when tcpchat is in --servers);
# a fresh server and temp dir per run.  Two tables.
if [ "$durable" = 1 ]; then
	has_store=0
	if [[ "$server_help" == *--store* ]]; then
		has_store=1
	fi
	runs_todo=()
	for cell in "${cells[@]}"; do
		case "$cell" in
		dur_*) srv=${cell#dur_}; srv=${srv%%_*} ;;
		*) srv=tcpchat ;;
		esac
		[[ " $servers " == *" $srv "* ]] || continue
		if [[ "$cell" == *_store || "$cell" == *_fsync ]] && [ "$has_store" = 0 ]; then
			echo "compare.sh: $server_bin has no --store option; $cell skipped" >&2
			continue
		fi
		runs_todo+=("$cell:$srv")
	done
	[ ${#runs_todo[@]} -gt 0 ] || die "nothing to run for --servers '$servers'"
	nruns=$((${#runs_todo[@]} * repeat))
	echo "compare.sh: durable: ${#runs_todo[@]} cells x $repeat repeat(s) = $nruns runs; data in $data_root ($(stat -f -c %T "$data_root")); output in $out"
	summary_keys='acked_per_s|delivered_per_s|p50_us|p99_us|server_cpu_s_per_1k|server_ns_per_msg|unacked|lost'
	failures=0
	run=0
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	for todo in "${runs_todo[@]}"; do
		for k in $(seq 1 "$repeat"); do
			one_run "${todo%%:*}" "${todo#*:}" "$k" "$duration" "$(bench_args "${todo%%:*}")"
		done
	done
	load1=$(cut -d' ' -f1-3 /proc/loadavg)

	echo
	awk -v repeat="$repeat" -v duration="$duration" -v warmup="$warmup" \
		-v window="$window" -v pubs="$publishers" -v dwin="$durable_window" \
		-v fs="$(stat -f -c %T "$data_root")" -v load0="$load0" \
		-v load1="$load1" -v ncpu="$(nproc)" "$awk_lib"'
	function cellv(c, key, fmt) {
		if (!(c in ran))
			return "n/a"
		return num(median(c SUBSEP key), fmt) (failed[c] ? "!" : "")
	}
	{
		delete f
		for (i = 1; i <= NF; i++) {
			eq = index($i, "=")
			if (eq)
				f[substr($i, 1, eq - 1)] = substr($i, eq + 1)
		}
		c = f["cell"]
		ran[c] = 1
		if (f["rc"] != 0)
			failed[c]++
		split("acked_per_s p50_us p99_us server_cpu_s_per_1k delivered_per_s server_ns_per_msg bench_cpu_pct", keys, " ")
		for (i in keys)
			if (keys[i] in f)
				vals[c SUBSEP keys[i]] = vals[c SUBSEP keys[i]] " " f[keys[i]]
		if (("unacked" in f) && f["unacked"] != "-")
			unacked[c] += f["unacked"]
		if (("lost" in f) && f["lost"] != "-")
			lost[c] += f["lost"]
	}
	END {
		n = split("dur_tcpchat_store dur_tcpchat_fsync dur_tcpchat_memory dur_redis_everysec dur_redis_always dur_nats_jetstream", D, " ")
		split("tcpchat|tcpchat|tcpchat|redis|redis|nats", E, "|")
		split("--store (SQLite)|--store --fsync|memory history, no store|AOF, appendfsync everysec|AOF, appendfsync always|JetStream, file storage", K, "|")
		printf "== durable posting: %s publishers x %s messages in flight, 64 B, one room/stream/subject; median of %d run(s) of %s s after %s s warm-up; data on %s ==\n", pubs, dwin, repeat, duration, warmup, fs
		printf "%-8s %-28s | %9s %10s %10s %12s %8s\n", "engine", "config", "msgs/s", "ACK p50 us", "ACK p99 us", "CPU s/1000", "unacked"
		for (i = 1; i <= n; i++) {
			c = D[i]
			if (!(c in ran))
				continue
			a = median(c SUBSEP "acked_per_s")
			cpu = median(c SUBSEP "bench_cpu_pct")
			printf "%-8s %-28s | %9s %10s %10s %12s %8s\n", E[i], K[i], human(a) (cpu != "-" && cpu >= 90 ? "*" : "") (failed[c] ? "!" : ""), num(median(c SUBSEP "p50_us"), "%.0f"), num(median(c SUBSEP "p99_us"), "%.0f"), num(median(c SUBSEP "server_cpu_s_per_1k"), "%.4f"), unacked[c] + 0
		}
		print "msgs/s: acknowledged messages per second over all publishers.  ACK p50/p99: send -> ACK"
		print "latency.  CPU s/1000: server CPU seconds per 1000 acknowledged messages.  unacked: left"
		print "without an answer at the end, summed over the runs."
		if (("fan_thr_memory" in ran) || ("fan_thr_store" in ran) || ("fan_rate_memory" in ran) || ("fan_rate_store" in ran)) {
			printf "\n== tcpchat fan-out with the store off and on: 1 sender, 100 receivers, 64 B ==\n"
			printf "%-28s | %-30s | %-22s\n", "", "throughput, window " window, "rate 1000 msg/s"
			printf "%-28s | %9s %9s %10s | %9s %12s\n", "config", "deliv/s", "ns/dlv", "lost", "ns/dlv", "p99 us"
			split("memory|store", S, "|")
			split("memory history, no store|--store (SQLite)", L, "|")
			for (i = 1; i <= 2; i++) {
				t = "fan_thr_" S[i]
				r = "fan_rate_" S[i]
				printf "%-28s | %9s %9s %10s | %9s %12s\n", L[i], (t in ran) ? human(median(t SUBSEP "delivered_per_s")) (failed[t] ? "!" : "") : "n/a", cellv(t, "server_ns_per_msg", "%.0f"), (t in lost) ? lost[t] : "-", cellv(r, "server_ns_per_msg", "%.0f"), cellv(r, "p99_us", "%.0f")
			}
			print "ns/dlv: server CPU ns per delivered message (delivery = one copy to one receiver)."
		}
		print "*: the bench used >= 90% of a core.  !: a run failed (see run-CELL-SERVER-N.txt).  n/a: not run."
		printf "load average (1/5/15 min) on %s CPUs: %s before the runs, %s after.\n", ncpu, load0, load1
	}' "$results" | tee "$out/table.txt"

	echo
	echo "compare.sh: raw results in $results, logs in $out"
	if [ "$failures" -gt 0 ]; then
		echo "compare.sh: $failures run(s) failed" >&2
		exit 1
	fi
	exit 0
fi

# ---- the runs ---------------------------------------------------------------------------------
nruns=$((${#cells[@]} * $(echo $columns | wc -w) * repeat))
echo "compare.sh: ${#cells[@]} cells x servers ($columns) x $repeat repeat(s) = $nruns runs; output in $out"
summary_keys='delivered_per_s|lost|p99_us|server_ns_per_msg|rss_per_conn_bytes|bench_cpu_pct'
failures=0
run=0
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for cell in "${cells[@]}"; do
	for srv in $columns; do
		for k in $(seq 1 "$repeat"); do
			one_run "$cell" "$srv" "$k" "$duration" "$(bench_args "$cell")"
		done
	done
done

load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table -------------------------------------------------------------------------
# --tls, --rate-limits: ratios of each variant to plaintext tcpchat.
pairs=""
if [[ " $columns " == *" tcpchat "* ]]; then
	for v in tcpchat+tls tcpchat+limits; do
		if [[ " $columns " == *" $v "* ]]; then
			pairs="$pairs tcpchat:$v"
		fi
	done
fi
echo
awk -v servers="$columns" -v cells="${cells[*]}" -v repeat="$repeat" \
	-v duration="$duration" -v warmup="$warmup" -v window="$window" \
	-v pairs="$pairs" -v variants="$variants" -v load0="$load0" \
	-v load1="$load1" -v ncpu="$(nproc)" "$awk_lib"'
function label(c,    p) {
	split(c, p, "_")
	if (p[1] == "thr")
		return sprintf("thr  r=%-4s s=%s %4sB", p[2], p[3], p[4])
	if (p[1] == "rate")
		return sprintf("rate r=%-4s %s/s 64B", p[2], p[3])
	if (p[1] == "big")
		return sprintf("big  r=%-4s s=%s %4sB", p[2], p[3], p[4])
	if (p[1] == "rooms")
		return sprintf("rooms %sx%s %s/s 64B", p[2], p[3], p[4])
	if (p[1] == "storm")
		return sprintf("storm %s conns", p[2])
	return sprintf("idle %s conns", p[2])
}
function memcell(c) {
	return c ~ /^(idle|storm)_/
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
	for (c = 1; c <= nc; c++)
		incells[C[c]] = 1
	printf "== median of %d run(s) per cell; %s s measured after %s s warm-up; throughput window %s ==\n", repeat, duration, warmup, window
	printf "%-24s", ""
	for (i = 1; i <= ns; i++)
		printf " | %-30s", S[i]
	printf "\n%-24s", "cell"
	for (i = 1; i <= ns; i++)
		printf " | %8s %7s %8s %5s", "deliv/s", "ns/msg", "p99 us", "lost"
	printf "\n"
	for (c = 1; c <= nc; c++) {
		if (memcell(C[c]))
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
		if (!memcell(C[c]))
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
	# A big room among 100 rooms against the broadcast of the same shape.
	nb = 0
	for (c = 1; c <= nc; c++) {
		if (C[c] !~ /^big_/)
			continue
		t = C[c]
		sub(/^big_/, "thr_", t)
		if (!(t in incells))
			continue
		if (nb++ == 0) {
			printf "\n== big room / broadcast: server ns/msg of big_R_S_B divided by thr_R_S_B (1.00: same cost per delivery) ==\n"
			printf "%-24s", "cell"
			for (i = 1; i <= ns; i++)
				printf " | %-30s", S[i]
			printf "\n"
		}
		printf "%-24s", label(C[c])
		for (i = 1; i <= ns; i++) {
			a = median(C[c] SUBSEP S[i] SUBSEP "server_ns_per_msg")
			b = median(t SUBSEP S[i] SUBSEP "server_ns_per_msg")
			r = (a == "-" || b == "-" || b <= 0) ? "-" : sprintf("%.2f (%.0f / %.0f)", a / b, a, b)
			printf " | %-30s", r
		}
		printf "\n"
	}
	# Each variant against plaintext tcpchat, cell by cell.
	np = split(pairs, P, " ")
	for (q = 1; q <= np; q++) {
		split(P[q], pv, ":")
		printf "\n== %s / %s: ratios of the medians (deliv/s, server ns/msg, p99 latency) ==\n", pv[2], pv[1]
		printf "%-24s | %8s %8s %8s | %s\n", "cell", "deliv/s", "ns/msg", "p99", "ns/msg (" pv[2] " / " pv[1] ")"
		for (c = 1; c <= nc; c++) {
			if (memcell(C[c]))
				continue
			split("delivered_per_s server_ns_per_msg p99_us", K, " ")
			line = ""
			for (k = 1; k <= 3; k++) {
				a = median(C[c] SUBSEP pv[2] SUBSEP K[k])
				b = median(C[c] SUBSEP pv[1] SUBSEP K[k])
				line = line sprintf(" %8s", (a == "-" || b == "-" || b <= 0) ? "-" : sprintf("%.2f", a / b))
				if (k == 2)
					both = (a == "-" || b == "-") ? "-" : sprintf("%.0f / %.0f", a, b)
			}
			printf "%-24s |%s | %s\n", label(C[c]), line, both
		}
	}
	print ""
	print "deliv/s: messages delivered per second, summed over receivers (median)."
	print "ns/msg: server CPU time per delivered message.  p99 us: 99th percentile"
	print "send-to-receipt latency.  lost: messages lost, summed over all runs."
	if (!variants) {
		print "big: as thr, with receivers and senders in one room of 100 (99 rooms of"
		print "3 idle members).  rooms KxM R/s: K rooms of M members, each member sends"
		print "to its room, R msg/s in all (Redis also delivers to the publisher)."
		print "idle: server RSS growth per logged-in idle connection, and login time."
		print "storm: the same for connections that never read after the login reply,"
		print "logged in as fast as possible; tcpchat-server runs with its defaults but no per-address limits."
	}
	print "*: the bench itself used >= 90% of a core (it may be the bottleneck)."
	print "!: at least one run failed; see the run logs."
	if (variants) {
		if (index(servers, "+tls")) {
			print "+tls: the server with TLS (1.3, EC P-256 certificate) on its port; the bench"
			print "verifies it and decrypts every delivery, so it saturates sooner: compare ns/msg."
		}
		if (index(servers, "+limits")) {
			print "tcpchat+limits: tcpchat-server with its per-address and per-user rate limits"
			print "on, all above what the bench sends (--rate 1000000 --rate-burst 1000000"
			print "--rate-bytes 1000000000, --addr-conns 100000 ...): the cost of the checks."
		}
		print "Ratios: variant / plaintext tcpchat, medians; for ns/msg and p99, above 1 is dearer."
		printf "load average (1/5/15 min) on %s CPUs: %s before the runs, %s after.\n", ncpu, load0, load1
	}
}' "$results" | tee "$out/table.txt"

echo
echo "compare.sh: raw results in $results, logs in $out"
if [ "$failures" -gt 0 ]; then
	echo "compare.sh: $failures run(s) failed" >&2
	exit 1
fi
