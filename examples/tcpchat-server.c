/* tcpchat-server - a chat server built on libtcpchat.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <tcpchat/tcpchat.h>

#include "tcpchat-server-auth.h"
#include "tcpchat-server-tls.h"
#include "tcpchat-server-rules.h"

#define PROG "tcpchat-server"
#define MAX_LISTEN 16

/* Long options without a short form. */
enum {
	OPT_USER_ROOMS = 256,
	OPT_MAX_ROOMS,
	OPT_ANNOUNCE_MAX,
	OPT_ADDR_CONNS,
	OPT_ADDR_RATE,
	OPT_ADDR_BURST,
	OPT_ADDR_HANDSHAKES,
	OPT_BATCH_US,
	OPT_STORE,
	OPT_FSYNC,
	OPT_BUS,
	OPT_NODE,
	OPT_HISTORY,
	OPT_RETAIN,
	OPT_RETAIN_DAYS,
	OPT_ACK_WINDOW,
	OPT_USERS,
	OPT_ANONYMOUS,
	OPT_HASH_PASSWORD,
	OPT_RATE,
	OPT_RATE_BURST,
	OPT_RATE_BYTES,
	OPT_RATE_KICK,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CA,
	OPT_TLS_REQUIRE_CERT,
	OPT_RULES
};

/* With --users: the checker of logins (NULL without). */
static struct auth *auth;
/* With --rules: who may join, speak, set topics and kick (NULL without:
 * everything but kicks is allowed). */
static struct rules_live *rules;

static int log_level = TCPCHAT_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void vsay(const char *label, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));
static void vsay(const char *label, const char *fmt, va_list ap)
{
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s.%03ld %-5s ", stamp, ts.tv_nsec / 1000000, label);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

/* A line printed whatever the log level: start-up, shutdown, stats. */
static void say(const char *label, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void say(const char *label, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(label, fmt, ap);
	va_end(ap);
}

/* A line of a level (enum tcpchat_log_level), printed when --log-level
 * lets it through. */
void log_at(int level, const char *fmt, ...)
{
	if (level < TCPCHAT_LOG_ERROR || level > log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsay(level_names[level], fmt, ap);
	va_end(ap);
}

const char *peer_str(const struct sockaddr *sa, char *buf, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;
		inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
		port = ntohs(s->sin_port);
		snprintf(buf, n, "%s:%d", host, port);
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)sa;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
		port = ntohs(s->sin6_port);
		snprintf(buf, n, "[%s]:%d", host, port);
	} else {
		snprintf(buf, n, "?");
	}
	return buf;
}

/* Slow readers: per connection, the number of dropped messages at which
 * it is reported next (1, 10, 100, ...), so that one reader who stays
 * behind does not flood the log.  A DROP event carries the total so far,
 * which may jump past a power of ten.  Loop thread only. */
#define DROP_BUCKETS 256

struct drop_note {
	struct drop_note *next;
	uint64_t conn_id;
	uint64_t report_at;
};

static struct drop_note *drop_notes[DROP_BUCKETS];

static struct drop_note **drop_find(uint64_t conn_id)
{
	struct drop_note **p = &drop_notes[conn_id % DROP_BUCKETS];
	while (*p && (*p)->conn_id != conn_id)
		p = &(*p)->next;
	return p;
}

/* Returns 1 when a DROP event with this total is to be reported. */
static int drop_due(uint64_t conn_id, uint64_t dropped)
{
	struct drop_note **p = drop_find(conn_id);
	if (!*p) {
		struct drop_note *n = calloc(1, sizeof *n);
		if (!n)
			return 0;
		n->conn_id = conn_id;
		n->report_at = 1;
		*p = n;
	}
	struct drop_note *n = *p;
	if (dropped < n->report_at)
		return 0;
	while (n->report_at <= dropped && n->report_at != UINT64_MAX)
		n->report_at = n->report_at > UINT64_MAX / 10
		                       ? UINT64_MAX
		                       : n->report_at * 10;
	return 1;
}

static void drop_forget(uint64_t conn_id)
{
	struct drop_note **p = drop_find(conn_id);
	struct drop_note *n = *p;
	if (n) {
		*p = n->next;
		free(n);
	}
}

static void drop_forget_all(void)
{
	for (size_t i = 0; i < DROP_BUCKETS; i++)
		while (drop_notes[i])
			drop_forget(drop_notes[i]->conn_id);
}

/* The level of the line about a closed connection: warn for what an
 * operator should look at (a slow reader cut off, the server out of
 * memory), info for the rest (quits, timeouts, a refused or taken name,
 * a peer's protocol error). */
static int close_level(const tcpchat_server_event *ev)
{
	if (ev->reason == TCPCHAT_REASON_SLOW || ev->error == TCPCHAT_ENOMEM)
		return TCPCHAT_LOG_WARN;
	return TCPCHAT_LOG_INFO;
}

static void free_rules(void)
{
	rules_live_free(rules);
}

/* What the rules (none: all but kicks) say to a ROOM_JOIN, MESSAGE,
 * TOPIC or ROOM_KICK. */
static int rules_verdict(tcpchat_server_event *ev)
{
	return rules_live_verdict(rules, ev,
	                          auth && auth_registered(auth, ev->conn_id));
}

/* Accepted connections, room joins and parts are not printed here: the
 * library logs them at debug with more detail (LOG events). */
static int on_event(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	char peer[64];
	(void)srv;
	(void)ud;
	switch (ev->type) {
	case TCPCHAT_SEV_JOIN:
		if (auth) {
			int verdict = auth_on_join(auth, ev);
			if (verdict != TCPCHAT_ACCEPT)
				return verdict; /* the checker logs the rest */
		}
		log_at(TCPCHAT_LOG_INFO, "conn %llu: %.*s joined from %s (%s)",
		       (unsigned long long)ev->conn_id, (int)ev->name.len,
		       ev->name.ptr, peer_str(ev->peer, peer, sizeof peer),
		       ev->codec);
		break;
	case TCPCHAT_SEV_ROOM_JOIN:
	case TCPCHAT_SEV_MESSAGE:
	case TCPCHAT_SEV_ROOM_KICK:
		return rules_verdict(ev);
	case TCPCHAT_SEV_LEAVE:
		if (auth)
			auth_forget(auth, ev->conn_id);
		drop_forget(ev->conn_id);
		log_at(close_level(ev), "conn %llu: %.*s left (%s%s%s)",
		       (unsigned long long)ev->conn_id, (int)ev->name.len,
		       ev->name.ptr, tcpchat_reason_name(ev->reason),
		       ev->error ? ": " : "",
		       ev->error ? (ev->text ? ev->text : "") : "");
		break;
	case TCPCHAT_SEV_DISCONNECT:
		if (auth)
			auth_forget(auth, ev->conn_id);
		drop_forget(ev->conn_id);
		log_at(close_level(ev),
		       "conn %llu: %s closed before joining (%s: %s)",
		       (unsigned long long)ev->conn_id,
		       peer_str(ev->peer, peer, sizeof peer),
		       tcpchat_reason_name(ev->reason),
		       ev->text ? ev->text : tcpchat_strerror(ev->error));
		break;
	case TCPCHAT_SEV_DROP:
		if (log_level >= TCPCHAT_LOG_WARN &&
		    drop_due(ev->conn_id, ev->dropped))
			log_at(TCPCHAT_LOG_WARN,
			       "conn %llu: %.*s reads too slowly: %llu "
			       "message(s) dropped",
			       (unsigned long long)ev->conn_id,
			       (int)ev->name.len, ev->name.ptr,
			       (unsigned long long)ev->dropped);
		break;
	case TCPCHAT_SEV_TOPIC:
		if (rules_verdict(ev))
			return TCPCHAT_REFUSE;
		log_at(TCPCHAT_LOG_INFO,
		       "conn %llu: %.*s sets the topic of %.*s",
		       (unsigned long long)ev->conn_id, (int)ev->name.len,
		       ev->name.ptr, (int)ev->room.len, ev->room.ptr);
		break;
	case TCPCHAT_SEV_LOG:
		/* The library filters by TCPCHAT_SOPT_LOG_LEVEL already. */
		log_at(ev->level, "%s", ev->text);
		break;
	default:
		break;
	}
	return 0;
}

/* Statistics lines: counters since start, and rates over the interval
 * since the previous line, from two snapshots and a monotonic clock.
 * Main thread only. */
struct stats_clock {
	struct timespec start, last;
	tcpchat_server_stats prev;
};

static double seconds_between(const struct timespec *a,
                              const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void stats_snapshot(tcpchat_server *srv, tcpchat_server_stats *s)
{
	memset(s, 0, sizeof *s);
	s->size = sizeof *s;
	tcpchat_server_stats_get(srv, s);
}

static void stats_clock_start(struct stats_clock *sc, tcpchat_server *srv)
{
	clock_gettime(CLOCK_MONOTONIC, &sc->start);
	sc->last = sc->start;
	stats_snapshot(srv, &sc->prev);
}

/* "45s", "2m05s", "1h02m03s", "3d01h02m03s" */
static const char *uptime_str(double secs, char *buf, size_t n)
{
	unsigned long long t = secs > 0 ? (unsigned long long)secs : 0;
	unsigned long long d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60,
	                   s = t % 60;
	if (d)
		snprintf(buf, n, "%llud%02lluh%02llum%02llus", d, h, m, s);
	else if (h)
		snprintf(buf, n, "%lluh%02llum%02llus", h, m, s);
	else if (m)
		snprintf(buf, n, "%llum%02llus", m, s);
	else
		snprintf(buf, n, "%llus", s);
	return buf;
}

static unsigned long long delta(uint64_t now, uint64_t before)
{
	return now > before ? (unsigned long long)(now - before) : 0;
}

static double rate(uint64_t now, uint64_t before, double secs)
{
	return secs > 0 ? (double)delta(now, before) / secs : 0.0;
}

static void print_stats(tcpchat_server *srv, struct stats_clock *sc)
{
	tcpchat_server_stats s;
	struct timespec now;
	char up[48];
	stats_snapshot(srv, &s);
	clock_gettime(CLOCK_MONOTONIC, &now);
	double dt = seconds_between(&sc->last, &now);
	const tcpchat_server_stats *p = &sc->prev;
	say("stats",
	    "uptime=%s interval=%.3fs clients=%llu users=%llu accepted=%llu "
	    "msgs_in=%llu msgs_in_rate=%.1f/s msgs_out=%llu "
	    "msgs_out_rate=%.1f/s bytes_in=%llu bytes_in_rate=%.1f/s "
	    "bytes_out=%llu bytes_out_rate=%.1f/s dropped=%llu "
	    "dropped_new=%llu proto_errors=%llu refused=%llu rooms=%llu "
	    "private=%llu saved=%llu unsaved=%llu refused_addr=%llu "
	    "limited=%llu tls_failed=%llu",
	    uptime_str(seconds_between(&sc->start, &now), up, sizeof up), dt,
	    (unsigned long long)s.clients, (unsigned long long)s.users,
	    (unsigned long long)s.accepted, (unsigned long long)s.msgs_in,
	    rate(s.msgs_in, p->msgs_in, dt), (unsigned long long)s.msgs_out,
	    rate(s.msgs_out, p->msgs_out, dt), (unsigned long long)s.bytes_in,
	    rate(s.bytes_in, p->bytes_in, dt), (unsigned long long)s.bytes_out,
	    rate(s.bytes_out, p->bytes_out, dt), (unsigned long long)s.dropped,
	    delta(s.dropped, p->dropped), (unsigned long long)s.proto_errors,
	    (unsigned long long)s.refused, (unsigned long long)s.rooms,
	    (unsigned long long)s.private_msgs, (unsigned long long)s.saved,
	    (unsigned long long)s.unsaved, (unsigned long long)s.refused_addr,
	    (unsigned long long)s.limited, (unsigned long long)s.tls_failed);
	if (s.cluster_up || s.bus_losses || s.bus_sent)
		say("stats",
		    "cluster_up=%llu servers=%llu remote_users=%llu "
		    "bus_sent=%llu bus_sent_bytes=%llu bus_recv=%llu "
		    "bus_recv_bytes=%llu bus_losses=%llu bus_held=%llu "
		    "bus_refused=%llu bus_gaps=%llu bus_bad=%llu",
		    (unsigned long long)s.cluster_up,
		    (unsigned long long)s.cluster_servers,
		    (unsigned long long)s.cluster_users,
		    (unsigned long long)s.bus_sent,
		    (unsigned long long)s.bus_sent_bytes,
		    (unsigned long long)s.bus_recv,
		    (unsigned long long)s.bus_recv_bytes,
		    (unsigned long long)s.bus_losses,
		    (unsigned long long)s.bus_held,
		    (unsigned long long)s.bus_refused,
		    (unsigned long long)s.bus_gaps,
		    (unsigned long long)s.bus_bad);
	sc->prev = s;
	sc->last = now;
}

/* The host's name as a node name: what a node name cannot hold becomes
 * '-'. */
static const char *default_node(char *buf, size_t cap)
{
	if (gethostname(buf, cap) != 0 || !buf[0])
		snprintf(buf, cap, "node");
	buf[cap - 1] = '\0';
	if (strlen(buf) > 32)
		buf[32] = '\0';
	for (char *p = buf; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' &&
		    *p != '.')
			*p = '-';
	return buf;
}

static const char *const addr_opt_names[] = {"addr-conns", "addr-rate",
                                             "addr-burst", "addr-handshakes"};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: " PROG " [OPTION]...\n"
	        "Run a chat server. Every listener joins the same chat.\n"
	        "\n"
	        "  -l, --listen [CODEC@]HOST:PORT  listen on HOST:PORT with "
	        "CODEC\n"
	        "                        (binary, line or json; default "
	        "binary);\n"
	        "                        repeatable. HOST may be [v6addr]. "
	        "Without\n"
	        "                        any: binary@127.0.0.1:7070 and\n"
	        "                        line@127.0.0.1:7071\n"
	        "  -c, --max-clients N   connections at once (default 10000)\n"
	        "  -m, --max-message N   largest accepted frame in bytes\n"
	        "                        (default 65536)\n"
	        "  -i, --idle-timeout S  close connections silent for S "
	        "seconds (line\n"
	        "                        users: TCP keepalive instead); 0 "
	        "disables\n"
	        "                        (default 120)\n"
	        "  -p, --slow-policy P   when a reader falls behind: "
	        "drop-newest\n"
	        "                        (default), drop-oldest or disconnect\n"
	        "  -q, --queue N         messages queued per client (default "
	        "1024)\n"
	        "  -b, --queue-bytes N   bytes queued per client (default "
	        "1048576)\n"
	        "  -r, --default-room R  the room every user enters at login\n"
	        "                        (default #lobby)\n"
	        "  -R, --no-default-room users start in no room (protocol-1\n"
	        "                        clients are then refused)\n"
	        "      --user-rooms N    rooms one user may be in (default "
	        "64)\n"
	        "      --max-rooms N     rooms on the server (default 10000)\n"
	        "      --announce-max N  joins and parts of rooms with more\n"
	        "                        members are not announced (default\n"
	        "                        100; 0: never)\n"
	        "      --addr-conns N    connections open at once from one\n"
	        "                        address (IPv6: its /64; default 64;\n"
	        "                        0: no limit)\n"
	        "      --addr-rate N     new connections per second from one\n"
	        "                        address (default 20; 0: no limit)\n"
	        "      --addr-burst N    new connections one address may open\n"
	        "                        at once (default 40)\n"
	        "      --addr-handshakes N  connections from one address not\n"
	        "                        logged in yet (default 8; 0: no\n"
	        "                        limit)\n"
	        "      --batch-us N      under load, how long output may wait\n"
	        "                        for more input to share a write\n"
	        "                        (default 2000; 0: never)\n"
	        "      --bus URL         be one of the servers of a cluster,\n"
	        "                        through redis://HOST:PORT or\n"
	        "                        nats://HOST:PORT (nats-server -js)\n"
	        "      --node NAME       with --bus: this server's name\n"
	        "                        (default: the host name)\n"
	        "      --store FILE      keep rooms, texts and numbers in the\n"
	        "                        SQLite file FILE (created if "
	        "missing)\n"
	        "      --fsync           with --store: each commit waits for\n"
	        "                        the disk (survives a power loss)\n"
	        "      --history N       texts of each room kept in memory "
	        "for\n"
	        "                        history and resume (default 1000)\n"
	        "      --retain N        with --store: texts of each room "
	        "kept\n"
	        "                        on disk (default: all)\n"
	        "      --retain-days D   with --store: days a text is kept on\n"
	        "                        disk (default: forever)\n"
	        "      --ack-window S    seconds a text's reference is\n"
	        "                        remembered against resends (default\n"
	        "                        120; 0: never)\n"
	        "      --users FILE      logins: lines name:hash (yescrypt or\n"
	        "                        bcrypt); a listed name needs its\n"
	        "                        password; SIGHUP reads FILE again\n"
	        "      --anonymous yes|no  with --users: may names FILE does\n"
	        "                        not list join? (default yes)\n"
	        "      --hash-password   read a password on stdin, print its\n"
	        "                        hash for --users, and exit\n"
	        "      --rules FILE      who may join, speak, set topics and\n"
	        "                        kick, room by room (see "
	        "tcpchat-server(1));\n"
	        "                        SIGHUP reads FILE again; without it\n"
	        "                        nobody may kick\n"
	        "      --rate N          messages per second one user may\n"
	        "                        send (default 20; 0: no limit)\n"
	        "      --rate-burst N    messages sent at once before --rate\n"
	        "                        applies (default 40)\n"
	        "      --rate-bytes N    bytes per second one user may send,\n"
	        "                        in bursts of up to 4 s worth\n"
	        "                        (default 65536; 0: no limit)\n"
	        "      --rate-kick S     disconnect a user over the limits "
	        "for\n"
	        "                        S seconds (default 10; 0: never)\n"
	        "      --tls-cert FILE   PEM certificate chain of the tls+ "
	        "listeners\n"
	        "      --tls-key FILE    its PEM private key (default: in\n"
	        "                        --tls-cert); SIGHUP reads both again\n"
	        "      --tls-ca FILE     ask TLS clients for a certificate "
	        "signed\n"
	        "                        by these CAs\n"
	        "      --tls-require-cert  refuse TLS clients without one\n"
	        "  -s, --stats S         print statistics every S seconds "
	        "(also on\n"
	        "                        SIGUSR1); 0 disables (default 0)\n"
	        "  -L, --log-level L     error, warn, info (default) or debug\n"
	        "  -h, --help            show this help and exit\n"
	        "  -V, --version         show the version and exit\n"
	        "\n"
	        "Connect with: tcpchat-client --name NAME, or nc 127.0.0.1 "
	        "7071\n"
	        "Exit status: 0 after SIGINT/SIGTERM, 1 on a runtime error,\n"
	        "2 on bad arguments.\n");
}

/* Reports a usage error; returns the exit status for it. */
static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	return 2;
}

/* Parses a whole decimal number within [min, max]. */
static int number(const char *s, long long min, long long max, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

struct listen_spec {
	const tcpchat_codec *codec;
	const char *addr;
	int tls; /* tls+CODEC@ */
};

/* The address a listener is bound to: its HOST as given with the port it
 * got (port 0 asks the system for a free one); ":PORT" is 0.0.0.0. */
static const char *bound_str(const char *addr, int port, char *buf, size_t n)
{
	const char *colon = strrchr(addr, ':');
	size_t hostlen = colon ? (size_t)(colon - addr) : strlen(addr);
	if (hostlen == 0)
		snprintf(buf, n, "0.0.0.0:%d", port);
	else
		snprintf(buf, n, "%.*s:%d", (int)hostlen, addr, port);
	return buf;
}

static int parse_listen(const char *arg, struct listen_spec *ls)
{
	const char *at = strchr(arg, '@');
	ls->codec = tcpchat_codec_binary();
	ls->addr = arg;
	ls->tls = 0;
	if (at && (!strncmp(arg, "tls+", 4) || !strncmp(arg, "tls@", 4))) {
		ls->tls = 1;
		arg += arg[3] == '+' ? 4 : 3;
		if (*arg == '@') {
			ls->addr = arg + 1;
			return *ls->addr ? 0 : -1;
		}
	}
	if (at) {
		char name[16];
		size_t n = (size_t)(at - arg);
		if (n == 0 || n >= sizeof name)
			return -1;
		memcpy(name, arg, n);
		name[n] = '\0';
		ls->codec = tcpchat_codec_find(name);
		ls->addr = at + 1;
		if (!ls->codec)
			return -1;
	}
	return *ls->addr ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"listen", required_argument, NULL, 'l'},
	        {"max-clients", required_argument, NULL, 'c'},
	        {"max-message", required_argument, NULL, 'm'},
	        {"idle-timeout", required_argument, NULL, 'i'},
	        {"slow-policy", required_argument, NULL, 'p'},
	        {"queue", required_argument, NULL, 'q'},
	        {"queue-bytes", required_argument, NULL, 'b'},
	        {"stats", required_argument, NULL, 's'},
	        {"default-room", required_argument, NULL, 'r'},
	        {"no-default-room", no_argument, NULL, 'R'},
	        {"user-rooms", required_argument, NULL, OPT_USER_ROOMS},
	        {"max-rooms", required_argument, NULL, OPT_MAX_ROOMS},
	        {"announce-max", required_argument, NULL, OPT_ANNOUNCE_MAX},
	        {"addr-conns", required_argument, NULL, OPT_ADDR_CONNS},
	        {"addr-rate", required_argument, NULL, OPT_ADDR_RATE},
	        {"addr-burst", required_argument, NULL, OPT_ADDR_BURST},
	        {"addr-handshakes", required_argument, NULL,
	         OPT_ADDR_HANDSHAKES},
	        {"batch-us", required_argument, NULL, OPT_BATCH_US},
	        {"store", required_argument, NULL, OPT_STORE},
	        {"bus", required_argument, NULL, OPT_BUS},
	        {"node", required_argument, NULL, OPT_NODE},
	        {"fsync", no_argument, NULL, OPT_FSYNC},
	        {"history", required_argument, NULL, OPT_HISTORY},
	        {"retain", required_argument, NULL, OPT_RETAIN},
	        {"retain-days", required_argument, NULL, OPT_RETAIN_DAYS},
	        {"ack-window", required_argument, NULL, OPT_ACK_WINDOW},
	        {"users", required_argument, NULL, OPT_USERS},
	        {"anonymous", required_argument, NULL, OPT_ANONYMOUS},
	        {"hash-password", no_argument, NULL, OPT_HASH_PASSWORD},
	        {"rate", required_argument, NULL, OPT_RATE},
	        {"rate-burst", required_argument, NULL, OPT_RATE_BURST},
	        {"rate-bytes", required_argument, NULL, OPT_RATE_BYTES},
	        {"rate-kick", required_argument, NULL, OPT_RATE_KICK},
	        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
	        {"tls-ca", required_argument, NULL, OPT_TLS_CA},
	        {"tls-require-cert", no_argument, NULL, OPT_TLS_REQUIRE_CERT},
	        {"rules", required_argument, NULL, OPT_RULES},
	        {"log-level", required_argument, NULL, 'L'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	struct listen_spec listens[MAX_LISTEN];
	int nlisten = 0;
	long long max_clients = -1, max_msg = -1, idle = -1, queue = -1;
	long long policy = -1, stats_every = 0, queue_bytes = -1;
	long long user_rooms = -1, max_rooms = -1, announce_max = -1;
	/* --addr-conns, --addr-rate, --addr-burst, --addr-handshakes */
	long long addr[4] = {-1, -1, -1, -1};
	long long batch_us = -1, history = -1, retain = -1, retain_days = -1;
	long long ack_window = -1, rate_msgs = -1, rate_burst = -1;
	long long rate_bytes = -1, rate_kick = -1;
	const char *default_room = "#lobby", *store = NULL, *users = NULL;
	const char *bus = NULL, *node = NULL;
	const char *rules_file = NULL;
	int anonymous = 1;
	int fsync_each = 0;
	struct tls_files tls = {0};
	int any_tls = 0;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":l:c:m:i:p:q:b:s:L:r:RhV", opts,
	                        NULL)) != -1) {
		switch (c) {
		case 'l':
			if (nlisten == MAX_LISTEN)
				return bad("too many listeners (at most %s)",
				           "16");
			if (parse_listen(optarg, &listens[nlisten]))
				return bad(
				        "invalid --listen '%s' (want "
				        "[tls+][binary|line|json@]HOST:PORT)",
				        optarg);
			any_tls |= listens[nlisten].tls;
			nlisten++;
			break;
		case 'c':
			if (number(optarg, 1, 1000000, &max_clients))
				return bad("invalid --max-clients '%s' "
				           "(1..1000000)",
				           optarg);
			break;
		case 'm':
			if (number(optarg, 64, 64 << 20, &max_msg))
				return bad("invalid --max-message '%s' "
				           "(64..67108864 bytes)",
				           optarg);
			break;
		case 'i':
			if (number(optarg, 0, 86400, &idle))
				return bad("invalid --idle-timeout '%s' "
				           "(0..86400 seconds)",
				           optarg);
			break;
		case 'p':
			if (!strcmp(optarg, "drop-newest"))
				policy = TCPCHAT_SLOW_DROP_NEWEST;
			else if (!strcmp(optarg, "drop-oldest"))
				policy = TCPCHAT_SLOW_DROP_OLDEST;
			else if (!strcmp(optarg, "disconnect"))
				policy = TCPCHAT_SLOW_DISCONNECT;
			else
				return bad("invalid --slow-policy '%s' "
				           "(drop-newest,"
				           " drop-oldest or disconnect)",
				           optarg);
			break;
		case 'q':
			if (number(optarg, 1, 1000000, &queue))
				return bad("invalid --queue '%s' (1..1000000)",
				           optarg);
			break;
		case 'b':
			if (number(optarg, 64, INT32_MAX, &queue_bytes))
				return bad("invalid --queue-bytes '%s' "
				           "(64..2147483647)",
				           optarg);
			break;
		case 's':
			if (number(optarg, 0, 86400, &stats_every))
				return bad("invalid --stats '%s' (0..86400 "
				           "seconds)",
				           optarg);
			break;
		case 'r':
			if (tcpchat_room_check(optarg, strlen(optarg)))
				return bad(
				        "invalid --default-room '%s' ('#' "
				        "and 1-63 bytes, no spaces, commas or "
				        "colons)",
				        optarg);
			default_room = optarg;
			break;
		case 'R':
			default_room = NULL;
			break;
		case OPT_USER_ROOMS:
			if (number(optarg, 1, 65535, &user_rooms))
				return bad("invalid --user-rooms '%s' "
				           "(1..65535)",
				           optarg);
			break;
		case OPT_MAX_ROOMS:
			if (number(optarg, 1, INT32_MAX, &max_rooms))
				return bad("invalid --max-rooms '%s' "
				           "(1..2147483647)",
				           optarg);
			break;
		case OPT_ANNOUNCE_MAX:
			if (number(optarg, 0, INT32_MAX, &announce_max))
				return bad("invalid --announce-max '%s' "
				           "(0..2147483647)",
				           optarg);
			break;
		case OPT_ADDR_CONNS:
		case OPT_ADDR_RATE:
		case OPT_ADDR_BURST:
		case OPT_ADDR_HANDSHAKES: {
			int k = c - OPT_ADDR_CONNS;
			long long lo = c == OPT_ADDR_BURST ? 1 : 0;
			if (number(optarg, lo, INT32_MAX, &addr[k]))
				return bad(
				        "invalid --%s '%s' (%lld..2147483647)",
				        addr_opt_names[k], optarg, lo);
			break;
		}
		case OPT_BATCH_US:
			if (number(optarg, 0, 1000000, &batch_us))
				return bad("invalid --batch-us '%s' "
				           "(0..1000000)",
				           optarg);
			break;
		case OPT_BUS:
			bus = optarg;
			break;
		case OPT_NODE:
			node = optarg;
			break;
		case OPT_STORE:
			if (!*optarg)
				return bad("invalid --store '' (a file name)");
			store = optarg;
			break;
		case OPT_FSYNC:
			fsync_each = 1;
			break;
		case OPT_HISTORY:
			if (number(optarg, 0, 1 << 20, &history))
				return bad(
				        "invalid --history '%s' (0..1048576)",
				        optarg);
			break;
		case OPT_RETAIN:
			if (number(optarg, 1, INT64_MAX, &retain))
				return bad("invalid --retain '%s' (1 or more)",
				           optarg);
			break;
		case OPT_RETAIN_DAYS:
			if (number(optarg, 1, 36500, &retain_days))
				return bad("invalid --retain-days '%s' "
				           "(1..36500)",
				           optarg);
			break;
		case OPT_ACK_WINDOW:
			if (number(optarg, 0, 86400, &ack_window))
				return bad("invalid --ack-window '%s' "
				           "(0..86400)",
				           optarg);
			break;
		case OPT_RATE:
			if (number(optarg, 0, 1000000, &rate_msgs))
				return bad("invalid --rate '%s' (0..1000000)",
				           optarg);
			break;
		case OPT_RATE_BURST:
			if (number(optarg, 1, 1000000, &rate_burst))
				return bad("invalid --rate-burst '%s' "
				           "(1..1000000)",
				           optarg);
			break;
		case OPT_RATE_BYTES:
			if (number(optarg, 0, INT32_MAX, &rate_bytes))
				return bad("invalid --rate-bytes '%s' "
				           "(0..2147483647)",
				           optarg);
			break;
		case OPT_RATE_KICK:
			if (number(optarg, 0, 86400, &rate_kick))
				return bad(
				        "invalid --rate-kick '%s' (0..86400)",
				        optarg);
			break;
		case 'L':
			if (!strcmp(optarg, "error"))
				log_level = TCPCHAT_LOG_ERROR;
			else if (!strcmp(optarg, "warn"))
				log_level = TCPCHAT_LOG_WARN;
			else if (!strcmp(optarg, "info"))
				log_level = TCPCHAT_LOG_INFO;
			else if (!strcmp(optarg, "debug"))
				log_level = TCPCHAT_LOG_DEBUG;
			else
				return bad(
				        "invalid --log-level '%s' (error, warn,"
				        " info or debug)",
				        optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_USERS:
			users = optarg;
			break;
		case OPT_ANONYMOUS:
			if (strcmp(optarg, "yes") && strcmp(optarg, "no"))
				return bad("invalid --anonymous '%s' (yes or "
				           "no)",
				           optarg);
			anonymous = strcmp(optarg, "yes") == 0;
			break;
		case OPT_HASH_PASSWORD:
			return auth_hash_password();
		case OPT_TLS_CERT:
		case OPT_TLS_KEY:
		case OPT_TLS_CA: {
			const char **f = c == OPT_TLS_CERT  ? &tls.cert
			                 : c == OPT_TLS_KEY ? &tls.key
			                                    : &tls.ca;
			if (!*optarg)
				return bad("option '%s' needs a file name",
				           argv[optind - 1]);
			*f = optarg;
			break;
		}
		case OPT_TLS_REQUIRE_CERT:
			tls.require_cert = 1;
			break;
		case OPT_RULES:
			rules_file = optarg;
			break;
		case 'V':
			printf(PROG " %s (protocol %d)\n",
			       tcpchat_version(NULL), TCPCHAT_PROTOCOL_VERSION);
			return 0;
		case ':':
			return bad("option '%s' needs a value",
			           argv[optind - 1]);
		default:
			return bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (node && !bus)
		return bad("--node needs --bus");
	if (bus && store)
		return bad("--bus and --store do not go together: in a "
		           "cluster the bus keeps the history");
	if (!store && (fsync_each || retain > 0 || retain_days > 0))
		return bad("--fsync, --retain and --retain-days need --store");
	const char *tls_bad = tls_check(&tls, any_tls);
	if (tls_bad)
		return bad("%s", tls_bad);
	if (users) {
		char err[512];
		if (!auth_available()) {
			fprintf(stderr, PROG ": --users: " AUTH_NO_CRYPT "\n");
			return 2;
		}
		auth = auth_new(users, anonymous, err, sizeof err);
		if (!auth) {
			fprintf(stderr, PROG ": %s\n", err);
			return 1;
		}
	}
	if (rules_file) {
		char err[512];
		rules = rules_live_new(rules_file, err, sizeof err);
		if (!rules) {
			fprintf(stderr, PROG ": %s\n", err);
			auth_free(auth);
			return 1;
		}
		atexit(free_rules);
	}
	if (nlisten == 0) {
		listens[0].codec = tcpchat_codec_binary();
		listens[0].addr = "127.0.0.1:7070";
		listens[1].codec = tcpchat_codec_line();
		listens[1].addr = "127.0.0.1:7071";
		nlisten = 2;
	}

	/* Signals are taken synchronously by the main thread; the server
	 * thread inherits the blocked mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	tcpchat_server *srv;
	int rc = tcpchat_server_new(&srv);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", tcpchat_strerror(rc));
		auth_free(auth);
		return 1;
	}
	tcpchat_server_set_handler(srv, on_event, NULL);
	tcpchat_server_set_option(srv, TCPCHAT_SOPT_LOG_LEVEL, log_level);
	/* The server is this whole process: give freed memory back. */
	tcpchat_server_set_option(srv, TCPCHAT_SOPT_TRIM_HEAP, 1);
	if (max_clients > 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_MAX_CLIENTS,
		                          max_clients);
	if (max_msg > 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_MAX_FRAME, max_msg);
	if (idle >= 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_IDLE_TIMEOUT,
		                          idle * 1000);
	if (queue > 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_QUEUE_FRAMES,
		                          queue);
	if (queue_bytes > 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_QUEUE_BYTES,
		                          queue_bytes);
	if (policy >= 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_SLOW_POLICY,
		                          policy);
	if (user_rooms > 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_USER_ROOMS,
		                          user_rooms);
	if (max_rooms > 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_MAX_ROOMS,
		                          max_rooms);
	if (announce_max >= 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_ANNOUNCE_MAX,
		                          announce_max);
	for (int k = 0; k < 4; k++)
		if (addr[k] >= 0)
			tcpchat_server_set_option(
			        srv, TCPCHAT_SOPT_ADDR_CONNS + k, addr[k]);
	if (batch_us >= 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_BATCH_US, batch_us);
	if (history >= 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_HISTORY_MSGS,
		                          history);
	if (retain > 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_RETAIN_MSGS,
		                          retain);
	if (retain_days > 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_RETAIN_AGE,
		                          retain_days * 86400000LL);
	if (ack_window >= 0)
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_ACK_WINDOW,
		                          ack_window * 1000);
	const struct {
		int opt;
		long long v;
	} rates[] = {
	        {TCPCHAT_SOPT_RATE_MSGS, rate_msgs},
	        {TCPCHAT_SOPT_RATE_BURST, rate_burst},
	        {TCPCHAT_SOPT_RATE_BYTES, rate_bytes},
	        {TCPCHAT_SOPT_RATE_KICK, rate_kick},
	};
	for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++)
		if (rates[i].v >= 0)
			tcpchat_server_set_option(srv, rates[i].opt,
			                          rates[i].v);
	if (rate_bytes > 0) /* bursts of four seconds' worth */
		tcpchat_server_set_option(srv, TCPCHAT_SOPT_RATE_BYTES_BURST,
		                          rate_bytes < 16 ? 64
		                          : rate_bytes > INT32_MAX / 4
		                                  ? INT32_MAX
		                                  : rate_bytes * 4);
	rc = tcpchat_server_set_default_room(srv, default_room);
	if (!rc && auth)
		rc = tcpchat_server_set_greeting(
		        srv,
		        anonymous ? AUTH_GREETING_ANONYMOUS : AUTH_GREETING);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", tcpchat_strerror(rc));
		auth_free(auth);
		tcpchat_server_destroy(srv);
		return 1;
	}
	if (store) {
		char err[512];
		rc = tcpchat_server_open_store(
		        srv, store,
		        TCPCHAT_STORE_CREATE |
		                (fsync_each ? TCPCHAT_STORE_FSYNC : 0),
		        err, sizeof err);
		if (rc) {
			fprintf(stderr, PROG ": %s\n",
			        err[0] ? err : tcpchat_strerror(rc));
			auth_free(auth);
			tcpchat_server_destroy(srv);
			return 1;
		}
		tcpchat_server_stats st = {.size = sizeof st};
		tcpchat_server_stats_get(srv, &st);
		say("info", "store %s: %llu rooms", store,
		    (unsigned long long)st.rooms);
	}

	if (bus) {
		char err[512], host[64];
		if (!node)
			node = default_node(host, sizeof host);
		rc = tcpchat_server_join_cluster(srv, bus, node, err,
		                                 sizeof err);
		if (rc) {
			fprintf(stderr, PROG ": %s\n",
			        err[0] ? err : tcpchat_strerror(rc));
			auth_free(auth);
			tcpchat_server_destroy(srv);
			return 1;
		}
		say("info", "cluster: node %s through %s", node, bus);
	}

	if (any_tls && tls_load(srv, &tls, 0) != 0) {
		auth_free(auth);
		tcpchat_server_destroy(srv);
		return 1;
	}
	for (int i = 0; i < nlisten; i++) {
		rc = listens[i].tls
		             ? tcpchat_server_listen_tls(srv, listens[i].addr,
		                                         listens[i].codec)
		             : tcpchat_server_listen(srv, listens[i].addr,
		                                     listens[i].codec);
		if (rc) {
			fprintf(stderr, PROG ": cannot listen on %s: %s\n",
			        listens[i].addr,
			        rc == TCPCHAT_ESYS ? strerror(errno)
			                           : tcpchat_strerror(rc));
			auth_free(auth);
			tcpchat_server_destroy(srv);
			return 1;
		}
		char bound[300];
		say("info", "listening on %s (%s%s codec)",
		    bound_str(listens[i].addr, tcpchat_server_port(srv, i),
		              bound, sizeof bound),
		    listens[i].tls ? "TLS, " : "", listens[i].codec->name);
	}
	rc = tcpchat_server_start(srv);
	if (!rc && auth && auth_start(auth, srv) != 0) {
		tcpchat_server_stop(srv);
		tcpchat_server_join(srv);
		rc = TCPCHAT_ESYS;
	}
	if (rc) {
		fprintf(stderr, PROG ": cannot start: %s\n",
		        tcpchat_strerror(rc));
		auth_free(auth);
		tcpchat_server_destroy(srv);
		return 1;
	}

	struct stats_clock clock;
	stats_clock_start(&clock, srv);
	/* Periodic lines keep their schedule whatever SIGUSR1 does. */
	struct timespec next = clock.start;
	next.tv_sec += stats_every;
	for (;;) {
		struct timespec wait = {3600, 0}, now;
		if (stats_every) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			double left = seconds_between(&now, &next);
			if (left < 0)
				left = 0;
			wait.tv_sec = (time_t)left;
			wait.tv_nsec =
			        (long)((left - (double)wait.tv_sec) * 1e9);
		}
		int sig = sigtimedwait(&sigs, NULL, &wait);
		if (sig == SIGHUP && (auth || rules || any_tls)) {
			char err[512];
			if (auth)
				auth_reload(auth);
			if (rules && rules_live_reload(rules, err, sizeof err))
				log_at(TCPCHAT_LOG_WARN,
				       "%s; the rules in force stay", err);
			else if (rules)
				log_at(TCPCHAT_LOG_INFO,
				       "rules read again from %s", rules_file);
			if (any_tls)
				tls_load(srv, &tls, 1);
			continue;
		}
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
			say("info", "%s: shutting down",
			    sig == SIGINT    ? "SIGINT"
			    : sig == SIGTERM ? "SIGTERM"
			                     : "SIGHUP");
			break;
		}
		if (sig == SIGUSR1) {
			print_stats(srv, &clock);
		} else if (sig < 0 && errno == EAGAIN && stats_every) {
			print_stats(srv, &clock);
			next.tv_sec += stats_every;
			if (seconds_between(&clock.last, &next) <= 0) {
				next = clock.last; /* fell behind: skip */
				next.tv_sec += stats_every;
			}
		}
	}
	tcpchat_server_stop(srv);
	rc = tcpchat_server_join(srv);
	print_stats(srv, &clock);
	auth_free(auth);
	tcpchat_server_destroy(srv);
	drop_forget_all();
	if (rc) {
		fprintf(stderr, PROG ": %s\n", tcpchat_strerror(rc));
		return 1;
	}
	return 0;
}
