/* tcpchat-bench - load generator for a tcpchat server, Redis pub/sub and
 * NATS: throughput, send-to-receipt latency, loss and reordering, server
 * CPU per delivered message and memory per idle connection.
 * SPDX-License-Identifier: MIT
 *
 * One process, one epoll loop, no threads, and no libtcpchat: the bench
 * speaks each wire protocol itself so that it measures every server the
 * same way.  bench/README.md explains the options and the output.
 *
 * Payload (printable, so that Redis and NATS carry it unchanged):
 *
 *	off size
 *	0   1    'b'
 *	1   16   send time, CLOCK_MONOTONIC ns, lowercase hex
 *	17  6    sender index, hex
 *	23  10   sequence number of that sender, hex
 *	33  ...  padding up to --size bytes
 *
 * Accounting: a message belongs to the measured window when its send
 * time is inside it.  For every (receiver, sender) pair the bench keeps
 * the next expected sequence number (an arrival below it is "reordered")
 * and the count of in-window arrivals; after the run and a drain of at
 * most --drain seconds, lost = in-window sent - in-window received, per
 * pair, split into sequence gaps and messages after the last arrival.
 * Delivered/s and server CPU use the same window by receive time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define PROG "tcpchat-bench"

#define HDR_LEN 33         /* payload header, see above */
#define MIN_SIZE 40        /* smallest --size */
#define MAX_SIZE (1 << 20) /* largest --size */
#define READ_CHUNK (256 * 1024)
#define READ_ROUNDS 4        /* reads per readiness, for fairness */
#define MAX_LINE 8192        /* longest control line (NATS, RESP) */
#define MAX_CONNECTING 256   /* connections in connect/login at once */
#define OUT_LIMIT (4u << 20) /* a sender stops generating above this */
#define MAX_EVENTS 1024
#define MAX_PAIRS (16L * 1024 * 1024)
#define MAX_WARN 5 /* warnings of one kind printed */
#define NS 1000000000LL
#define MS 1000000LL
#define TIMER_TAG UINT64_MAX

#define HIST_SUBBITS 4
#define HIST_SUB (1u << HIST_SUBBITS)
#define HIST_BUCKETS (64u * HIST_SUB)

enum proto { P_TCPCHAT, P_REDIS, P_NATS };
enum mode { M_THROUGHPUT, M_RATE, M_IDLE };
enum role { R_RECV, R_SEND, R_IDLE };
enum cstate { C_NEW, C_CONNECTING, C_LOGIN, C_READY, C_DEAD };
enum phase { PH_SETUP, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_DONE };

/* tcpchat binary codec */
enum {
	TC_HELLO = 1,
	TC_WELCOME = 2,
	TC_TEXT = 3,
	TC_JOIN = 4,
	TC_LEAVE = 5,
	TC_ERROR = 6,
	TC_PING = 7,
	TC_PONG = 8
};
#define TC_HDR 24 /* version..code */
#define TC_FIELD 5
#define TC_TAG_SENDER 1
#define TC_TAG_BODY 2

static const char *const proto_names[] = {"tcpchat", "redis", "nats"};
static const char *const mode_names[] = {"throughput", "rate", "idle"};

struct conn {
	int fd;
	uint8_t role, state, epout, got_info;
	uint32_t idx; /* receiver, sender or idle index */
	char *in;     /* partial frame carried between reads */
	size_t inlen, incap;
	char *out; /* bytes not yet written */
	size_t outoff, outlen, outcap;
};

struct sample {
	int64_t t;
	double bench_cpu;
	uint64_t srv_ticks;
	int srv_ok;
};

static struct {
	/* options */
	int proto, mode;
	const char *host;
	int port;
	long receivers, senders, size, window, connections;
	double rate, duration, warmup, drain, timeout, settle;
	long server_pid;
	int64_t tick_ns; /* rate mode: shortest time between wake-ups */

	/* setup */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int ep, tfd;
	struct conn *conns;
	long nconns, next_open, connecting, nready;
	char *rbuf;
	size_t rbuf_cap, max_frame, max_partial;
	char *frame; /* one encoded message; payload header overwritten */
	size_t frame_len, payload_off;
	int64_t setup_ns;

	/* traffic */
	int phase;
	int64_t t0, t_start, t_end, drain_deadline, last_rx_ns;
	long probe, alive_recv, alive_send;
	uint64_t *next_seq, *sent_win, *win_first, *stall_base, *last_base;
	int64_t *last_progress;
	double *next_due, period_ns;
	uint64_t *expect; /* [receiver * senders + sender] */
	uint32_t *got;    /* in-window arrivals, same index */
	struct sample s0, s1;

	/* counters */
	uint64_t sent_total, sent_win_total, rx_win, rx_sendwin, rx_total;
	uint64_t reordered, bad_payload, other_rx, notices, server_errors;
	uint64_t closed, window_resets, rate_missed, pings, pub_replies;
	uint64_t pub_short, bytes_in, unknown_msgs;
	uint64_t batches_win; /* gen_msgs calls with in-window messages */
	unsigned warned_close, warned_error, warned_payload;

	/* latency histogram, ns */
	uint64_t hist[HIST_BUCKETS];
	uint64_t hist_n, hist_max;
} G;

/* ---- small helpers ------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage_error(const char *fmt, ...)
        __attribute__((format(printf, 1, 2))) __attribute__((noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	exit(2);
}

static void warn(unsigned *count, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void warn(unsigned *count, const char *fmt, ...)
{
	va_list ap;
	if (count && (*count)++ >= MAX_WARN)
		return;
	fprintf(stderr, PROG ": warning: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static void *xcalloc(size_t n, size_t each)
{
	void *p = calloc(n ? n : 1, each ? each : 1);
	if (!p)
		die("out of memory (%zu x %zu bytes)", n, each);
	return p;
}

static void put_u16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void put_u64(unsigned char *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const unsigned char *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

static const char hexdig[] = "0123456789abcdef";

static void put_hex(char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = hexdig[v & 15];
		v >>= 4;
	}
}

static int get_hex(const char *p, int n, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10u;
		else
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

/* Parses an unsigned decimal number of at most 18 digits. */
static int get_dec(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

/* ---- latency histogram ----------------------------------------------------
 * Values below 16 have a bucket each; above, every power of two [2^k,
 * 2^(k+1)) is split into 16 linear sub-buckets: relative error <= 1/16. */

static unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned k = 63u - (unsigned)__builtin_clzll(v);
	unsigned sub = (unsigned)(v >> (k - HIST_SUBBITS)) & (HIST_SUB - 1);
	return (k - HIST_SUBBITS + 1) * HIST_SUB + sub;
}

static void hist_bounds(unsigned i, uint64_t *lo, uint64_t *width)
{
	if (i < HIST_SUB) {
		*lo = i;
		*width = 1;
		return;
	}
	unsigned k = i / HIST_SUB + HIST_SUBBITS - 1;
	unsigned sub = i % HIST_SUB;
	*lo = (uint64_t)(HIST_SUB + sub) << (k - HIST_SUBBITS);
	*width = (uint64_t)1 << (k - HIST_SUBBITS);
}

static void hist_add(int64_t v)
{
	uint64_t u = v > 0 ? (uint64_t)v : 0;
	G.hist[hist_index(u)]++;
	G.hist_n++;
	if (u > G.hist_max)
		G.hist_max = u;
}

/* The value at quantile q (0..1], as the middle of its bucket, in ns. */
static double hist_quantile(double q)
{
	if (G.hist_n == 0)
		return -1;
	uint64_t want = (uint64_t)(q * (double)G.hist_n + 0.999999);
	if (want < 1)
		want = 1;
	if (want > G.hist_n)
		want = G.hist_n;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += G.hist[i];
		if (seen >= want) {
			uint64_t lo, w;
			hist_bounds(i, &lo, &w);
			double mid = (double)lo + (double)(w - 1) / 2.0;
			return mid > (double)G.hist_max ? (double)G.hist_max
			                                : mid;
		}
	}
	return (double)G.hist_max;
}

/* ---- /proc and rusage ----------------------------------------------------- */

static int proc_cpu_ticks(long pid, uint64_t *ticks)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* fields after "(comm)": 3 state ... 14 utime, 15 stime */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	unsigned long long ut = 0, st = 0;
	for (int field = 3; field <= 15; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -1;
		if (field == 14)
			ut = strtoull(p, NULL, 10);
		if (field == 15)
			st = strtoull(p, NULL, 10);
		while (*p && *p != ' ')
			p++;
	}
	*ticks = ut + st;
	return 0;
}

/* VmRSS and VmHWM in kB, -1 when unknown. */
static int proc_mem(long pid, long *rss_kb, long *hwm_kb)
{
	char path[64], line[256];
	*rss_kb = *hwm_kb = -1;
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "VmRSS:", 6))
			*rss_kb = strtol(line + 6, NULL, 10);
		else if (!strncmp(line, "VmHWM:", 6))
			*hwm_kb = strtol(line + 6, NULL, 10);
	}
	fclose(f);
	return *rss_kb >= 0 ? 0 : -1;
}

static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void take_sample(struct sample *s)
{
	s->t = mono_ns();
	s->bench_cpu = self_cpu_s();
	s->srv_ok = G.server_pid > 0 &&
	            proc_cpu_ticks(G.server_pid, &s->srv_ticks) == 0;
}

/* ---- connections: output ------------------------------------------------- */

static void conn_lost(struct conn *c, const char *why);

static const char *conn_name(const struct conn *c, char *buf, size_t n)
{
	static const char tag[] = {'r', 's', 'i'};
	snprintf(buf, n, "%c%" PRIu32, tag[c->role], c->idx);
	return buf;
}

static void set_out(struct conn *c, int on)
{
	if (c->epout == on || c->state == C_DEAD)
		return;
	struct epoll_event ev = {0};
	ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
	ev.data.u64 = (uint64_t)(c - G.conns);
	if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	c->epout = (uint8_t)on;
}

/* Makes room for n more bytes at c->out + c->outlen. */
static char *out_reserve(struct conn *c, size_t n)
{
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (c->outcap - c->outlen >= n)
		return c->out + c->outlen;
	if (c->outoff) {
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
		if (c->outcap - c->outlen >= n)
			return c->out + c->outlen;
	}
	size_t cap = c->outcap ? c->outcap : 256;
	while (cap - c->outlen < n)
		cap *= 2;
	char *p = realloc(c->out, cap);
	if (!p)
		die("out of memory (output buffer of %zu bytes)", cap);
	c->out = p;
	c->outcap = cap;
	return c->out + c->outlen;
}

static void out_append(struct conn *c, const void *data, size_t n)
{
	memcpy(out_reserve(c, n), data, n);
	c->outlen += n;
}

static void out_str(struct conn *c, const char *s)
{
	out_append(c, s, strlen(s));
}

static size_t out_pending(const struct conn *c)
{
	return c->outlen - c->outoff;
}

static void conn_flush(struct conn *c)
{
	while (c->state != C_DEAD && c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff,
		                 c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				set_out(c, 1);
				return;
			}
			conn_lost(c, strerror(errno));
			return;
		}
		c->outoff += (size_t)n;
	}
	if (c->state == C_DEAD)
		return;
	c->outoff = c->outlen = 0;
	set_out(c, 0);
}

/* ---- protocol: logging in ------------------------------------------------ */

static void tc_frame(struct conn *c, unsigned type, uint64_t id, uint32_t code,
                     const char *sender, size_t slen)
{
	size_t body = TC_HDR + (slen ? TC_FIELD + slen : 0);
	unsigned char *p = (unsigned char *)out_reserve(c, 4 + body);
	memset(p, 0, 4 + TC_HDR);
	put_u32(p, (uint32_t)body);
	p[4] = 1;
	p[5] = (unsigned char)type;
	put_u64(p + 8, id);
	put_u32(p + 24, code);
	if (slen) {
		p[28] = TC_TAG_SENDER;
		put_u32(p + 29, (uint32_t)slen);
		memcpy(p + 33, sender, slen);
	}
	c->outlen += 4 + body;
}

static void resp_subscribe(struct conn *c)
{
	out_str(c, "*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nbench\r\n");
}

/* Sends what logs the connection in (NATS: once INFO has arrived). */
static void send_login(struct conn *c)
{
	char name[32];
	switch (G.proto) {
	case P_TCPCHAT:
		conn_name(c, name, sizeof name);
		tc_frame(c, TC_HELLO, 0, 1, name, strlen(name));
		break;
	case P_REDIS:
		if (c->role == R_SEND)
			out_str(c, "*1\r\n$4\r\nPING\r\n");
		else
			resp_subscribe(c);
		break;
	case P_NATS:
		out_str(c,
		        "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
		if (c->role != R_SEND)
			out_str(c, "SUB bench 1\r\n");
		out_str(c, "PING\r\n");
		break;
	}
	conn_flush(c);
}

static void open_more(void);

static void conn_ready(struct conn *c)
{
	if (c->state != C_LOGIN)
		return;
	c->state = C_READY;
	G.connecting--;
	G.nready++;
	if (c->role == R_RECV)
		G.alive_recv++;
	else if (c->role == R_SEND)
		G.alive_send++;
	open_more();
}

static void server_error(struct conn *c, uint32_t code, const char *text,
                         size_t len)
{
	char name[32];
	if ((int)len > 200)
		len = 200;
	if (c->state != C_READY)
		die("server refused %s: %.*s%s",
		    conn_name(c, name, sizeof name), (int)len, text,
		    G.proto == P_TCPCHAT && code == 8
		            ? " (another bench still connected?)"
		            : "");
	G.server_errors++;
	warn(&G.warned_error, "server error on %s: %.*s",
	     conn_name(c, name, sizeof name), (int)len, text);
}

/* ---- payloads ------------------------------------------------------------- */

static void on_payload(struct conn *c, const char *p, size_t n, int64_t now)
{
	uint64_t ts, s, seq;
	if (c->state != C_READY)
		return;
	G.rx_total++;
	if (c->role != R_RECV) {
		G.other_rx++; /* tcpchat: a sender sees the other senders */
		return;
	}
	if (n != (size_t)G.size || p[0] != 'b' || get_hex(p + 1, 16, &ts) ||
	    get_hex(p + 17, 6, &s) || get_hex(p + 23, 10, &seq) ||
	    s >= (uint64_t)G.senders) {
		G.bad_payload++;
		warn(&G.warned_payload, "unexpected payload of %zu bytes: %.*s",
		     n, (int)(n < 40 ? n : 40), p);
		return;
	}
	size_t pair = (size_t)c->idx * (size_t)G.senders + (size_t)s;
	int in_window = (int64_t)ts >= G.t_start && (int64_t)ts < G.t_end;
	if (now >= G.t_start && now < G.t_end)
		G.rx_win++;
	if (seq < G.expect[pair]) {
		if (in_window)
			G.reordered++;
	} else {
		G.expect[pair] = seq + 1;
	}
	if (in_window) {
		G.got[pair]++;
		G.rx_sendwin++;
		hist_add(now - (int64_t)ts);
	}
}

/* ---- protocol: tcpchat binary --------------------------------------------- */

static long tc_parse(struct conn *c, const char *buf, size_t len, int64_t now)
{
	size_t pos = 0;
	while (len - pos >= 4 && c->state != C_DEAD) {
		const unsigned char *p = (const unsigned char *)buf + pos;
		uint32_t body = get_u32(p);
		if (body < TC_HDR || body > G.max_frame) {
			warn(NULL, "tcpchat: bad frame length %" PRIu32, body);
			return -1;
		}
		size_t end = 4 + (size_t)body;
		if (len - pos < end)
			break;
		if (p[4] != 1 || p[5] < 1) {
			warn(NULL, "tcpchat: bad frame version %u or type %u",
			     p[4], p[5]);
			return -1;
		}
		unsigned type = p[5];
		uint64_t id = get_u64(p + 8);
		uint32_t code = get_u32(p + 24);
		const char *text = NULL;
		size_t tlen = 0, off = 4 + TC_HDR;
		while (off < end) {
			if (end - off < TC_FIELD) {
				warn(NULL, "tcpchat: truncated field");
				return -1;
			}
			uint32_t n = get_u32(p + off + 1);
			unsigned tag = p[off];
			off += TC_FIELD;
			if (n > end - off) {
				warn(NULL, "tcpchat: field overruns its frame");
				return -1;
			}
			if (tag == TC_TAG_BODY) {
				text = (const char *)p + off;
				tlen = n;
			}
			off += n;
		}
		switch (type) {
		case TC_WELCOME:
			conn_ready(c);
			break;
		case TC_TEXT:
			if (text)
				on_payload(c, text, tlen, now);
			break;
		case TC_JOIN:
		case TC_LEAVE:
			G.notices++;
			break;
		case TC_ERROR:
			server_error(c, code, text ? text : "(no reason)",
			             text ? tlen : 11);
			break;
		case TC_PING:
			G.pings++;
			tc_frame(c, TC_PONG, id, 0, NULL, 0);
			break;
		case TC_PONG:
			break;
		case TC_HELLO:
			warn(NULL, "tcpchat: HELLO from the server");
			return -1;
		default:
			G.unknown_msgs++; /* a newer message type: skip it */
			break;
		}
		pos += end;
	}
	return (long)pos;
}

/* ---- protocol: Redis RESP ------------------------------------------------- */

struct resp_item {
	char type; /* '+', '-', ':', '$' */
	const char *str;
	size_t len;
	long long num;
};

#define RESP_MAX_ITEMS 8

/* One scalar at b[0..len).  Returns bytes used, 0 if incomplete, -1 on a
 * protocol error. */
static long resp_scalar(const char *b, size_t len, struct resp_item *it)
{
	const char *nl = memchr(b, '\n', len < MAX_LINE ? len : MAX_LINE);
	if (!nl)
		return len >= MAX_LINE ? -1 : 0;
	if (nl == b || nl[-1] != '\r')
		return -1;
	size_t ll = (size_t)(nl - b) - 1, used = ll + 2;
	uint64_t v;
	it->type = b[0];
	it->str = b + 1;
	it->len = ll - 1;
	it->num = 0;
	switch (b[0]) {
	case '+':
	case '-':
		return (long)used;
	case ':':
		if (ll >= 2 && b[1] == '-')
			return get_dec(b + 2, ll - 2, &v) ? -1 : (long)used;
		if (get_dec(b + 1, ll - 1, &v))
			return -1;
		it->num = (long long)v;
		return (long)used;
	case '$':
		if (ll == 3 && b[1] == '-' && b[2] == '1') {
			it->len = 0; /* null bulk string */
			return (long)used;
		}
		if (get_dec(b + 1, ll - 1, &v) || v > G.max_frame)
			return -1;
		if (len - used < v + 2)
			return 0;
		if (b[used + v] != '\r' || b[used + v + 1] != '\n')
			return -1;
		it->str = b + used;
		it->len = (size_t)v;
		return (long)(used + v + 2);
	default:
		return -1;
	}
}

static int resp_is(const struct resp_item *it, const char *word)
{
	size_t n = strlen(word);
	return it->len == n && strncasecmp(it->str, word, n) == 0;
}

static long resp_parse(struct conn *c, const char *buf, size_t len, int64_t now)
{
	size_t pos = 0;
	while (pos < len && c->state != C_DEAD) {
		const char *b = buf + pos;
		size_t avail = len - pos;
		struct resp_item items[RESP_MAX_ITEMS];
		size_t nitems = 0, used;
		if (b[0] == '*') {
			const char *nl =
			        memchr(b, '\n', avail < 32 ? avail : 32);
			uint64_t cnt;
			if (!nl)
				return avail >= 32 ? -1 : (long)pos;
			size_t ll = (size_t)(nl - b);
			if (ll < 2 || nl[-1] != '\r' ||
			    get_dec(b + 1, ll - 2, &cnt) ||
			    cnt > RESP_MAX_ITEMS) {
				warn(NULL, "redis: unexpected array header");
				return -1;
			}
			used = ll + 1;
			int incomplete = 0;
			for (nitems = 0; nitems < cnt; nitems++) {
				long k = resp_scalar(b + used, avail - used,
				                     &items[nitems]);
				if (k < 0) {
					warn(NULL, "redis: malformed reply");
					return -1;
				}
				if (k == 0) {
					incomplete = 1;
					break;
				}
				used += (size_t)k;
			}
			if (incomplete)
				break;
		} else {
			long k = resp_scalar(b, avail, &items[0]);
			if (k < 0) {
				warn(NULL, "redis: malformed reply");
				return -1;
			}
			if (k == 0)
				break;
			used = (size_t)k;
			nitems = 1;
			if (items[0].type == '-') {
				server_error(c, 0, items[0].str, items[0].len);
			} else if (items[0].type == ':') {
				G.pub_replies++;
				if (items[0].num < G.receivers)
					G.pub_short++;
			} else if (items[0].type == '+' &&
			           resp_is(&items[0], "PONG")) {
				conn_ready(c);
			}
			pos += used;
			continue;
		}
		if (nitems == 3 && items[0].type == '$' &&
		    resp_is(&items[0], "message") && items[2].type == '$') {
			on_payload(c, items[2].str, items[2].len, now);
		} else if (nitems == 3 && items[0].type == '$' &&
		           resp_is(&items[0], "subscribe")) {
			conn_ready(c);
		}
		pos += used;
	}
	return (long)pos;
}

/* ---- protocol: NATS ----------------------------------------------------- */

static int word_is(const char *s, size_t n, const char *word)
{
	size_t k = strlen(word);
	return n >= k && strncasecmp(s, word, k) == 0 &&
	       (n == k || s[k] == ' ' || s[k] == '\t');
}

static long nats_parse(struct conn *c, const char *buf, size_t len, int64_t now)
{
	size_t pos = 0;
	while (pos < len && c->state != C_DEAD) {
		const char *s = buf + pos;
		size_t avail = len - pos;
		const char *nl =
		        memchr(s, '\n', avail < MAX_LINE ? avail : MAX_LINE);
		if (!nl) {
			if (avail >= MAX_LINE) {
				warn(NULL, "nats: control line too long");
				return -1;
			}
			break;
		}
		size_t ll = (size_t)(nl - s);
		if (ll == 0 || s[ll - 1] != '\r') {
			warn(NULL, "nats: line without CR LF");
			return -1;
		}
		size_t line = ll + 1; /* with CR LF */
		ll--;
		if (word_is(s, ll, "MSG")) {
			/* MSG <subject> <sid> [reply-to] <#bytes> */
			const char *tok[5];
			size_t tlen[5], ntok = 0, i = 0;
			while (i < ll && ntok < 5) {
				while (i < ll && (s[i] == ' ' || s[i] == '\t'))
					i++;
				if (i == ll)
					break;
				tok[ntok] = s + i;
				while (i < ll && s[i] != ' ' && s[i] != '\t')
					i++;
				tlen[ntok] = (size_t)(s + i - tok[ntok]);
				ntok++;
			}
			uint64_t n;
			if (ntok < 4 ||
			    get_dec(tok[ntok - 1], tlen[ntok - 1], &n) ||
			    n > G.max_frame) {
				warn(NULL, "nats: bad MSG line");
				return -1;
			}
			if (avail - line < n + 2)
				break;
			if (s[line + n] != '\r' || s[line + n + 1] != '\n') {
				warn(NULL,
				     "nats: payload not followed by CR LF");
				return -1;
			}
			on_payload(c, s + line, (size_t)n, now);
			pos += line + (size_t)n + 2;
			continue;
		}
		if (word_is(s, ll, "PING")) {
			G.pings++;
			out_str(c, "PONG\r\n");
		} else if (word_is(s, ll, "PONG")) {
			conn_ready(c);
		} else if (word_is(s, ll, "INFO")) {
			if (!c->got_info) {
				c->got_info = 1;
				send_login(c);
			}
		} else if (word_is(s, ll, "+OK")) {
			/* verbose is off; harmless */
		} else if (word_is(s, ll, "-ERR")) {
			server_error(c, 0, s, ll);
		} else {
			warn(NULL, "nats: unexpected line '%.*s'",
			     (int)(ll < 60 ? ll : 60), s);
			return -1;
		}
		pos += line;
	}
	return (long)pos;
}

/* ---- connections: input, connect, close --------------------------------- */

static void conn_close(struct conn *c)
{
	if (c->state == C_DEAD)
		return;
	if (c->fd >= 0) {
		epoll_ctl(G.ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = C_DEAD;
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->inlen = c->incap = c->outlen = c->outoff = c->outcap = 0;
}

static void pick_probe(void)
{
	for (long r = 0; r < G.receivers; r++)
		if (G.conns[r].state == C_READY) {
			G.probe = r;
			return;
		}
	G.probe = -1;
}

static void conn_lost(struct conn *c, const char *why)
{
	char name[32];
	if (c->state == C_DEAD)
		return;
	if (c->state != C_READY)
		die("connection %s to %s:%d closed during login: %s",
		    conn_name(c, name, sizeof name), G.host, G.port, why);
	warn(&G.warned_close, "connection %s lost: %s",
	     conn_name(c, name, sizeof name), why);
	G.closed++;
	G.nready--;
	if (c->role == R_RECV)
		G.alive_recv--;
	else if (c->role == R_SEND)
		G.alive_send--;
	conn_close(c);
	if (G.nready == 0)
		die("the server at %s:%d closed all connections (is it still "
		    "running?)",
		    G.host, G.port);
	if (c->role == R_RECV && (long)c->idx == G.probe)
		pick_probe();
}

static long parse_input(struct conn *c, const char *buf, size_t len,
                        int64_t now)
{
	switch (G.proto) {
	case P_TCPCHAT:
		return tc_parse(c, buf, len, now);
	case P_REDIS:
		return resp_parse(c, buf, len, now);
	default:
		return nats_parse(c, buf, len, now);
	}
}

static void conn_read(struct conn *c)
{
	char name[32];
	for (int round = 0; round < READ_ROUNDS && c->state != C_DEAD;
	     round++) {
		size_t have = c->inlen;
		if (have)
			memcpy(G.rbuf, c->in, have);
		size_t space = G.rbuf_cap - have;
		ssize_t n = recv(c->fd, G.rbuf + have, space, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_lost(c, strerror(errno));
			return;
		}
		if (n == 0) {
			conn_lost(c, "closed by the server");
			return;
		}
		int64_t now = mono_ns();
		G.last_rx_ns = now;
		G.bytes_in += (uint64_t)n;
		have += (size_t)n;
		long used = parse_input(c, G.rbuf, have, now);
		if (used < 0)
			die("protocol error from %s:%d on connection %s",
			    G.host, G.port, conn_name(c, name, sizeof name));
		if (c->state == C_DEAD)
			return;
		size_t left = have - (size_t)used;
		if (left > G.max_partial)
			die("protocol error on %s: %zu bytes without a "
			    "complete frame",
			    conn_name(c, name, sizeof name), left);
		if (left > c->incap) {
			size_t cap = c->incap ? c->incap : 512;
			while (cap < left)
				cap *= 2;
			free(c->in);
			c->in = xmalloc(cap);
			c->incap = cap;
		}
		if (left)
			memcpy(c->in, G.rbuf + used, left);
		c->inlen = left;
		if (out_pending(c))
			conn_flush(c);
		if ((size_t)n < space)
			break; /* drained */
	}
}

static void conn_connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err)
		die("cannot connect to %s:%d: %s", G.host, G.port,
		    strerror(err));
	struct epoll_event ev = {0};
	ev.events = EPOLLIN;
	ev.data.u64 = (uint64_t)(c - G.conns);
	if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	c->epout = 0;
	c->state = C_LOGIN;
	if (G.proto != P_NATS) /* NATS: log in once INFO is in */
		send_login(c);
}

static void start_connect(struct conn *c)
{
	int one = 1;
	int fd = socket(G.addr.ss_family,
	                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s%s", strerror(errno),
		    errno == EMFILE ? " (raise ulimit -n)" : "");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->fd = fd;
	c->state = C_CONNECTING;
	G.connecting++;
	struct epoll_event ev = {0};
	ev.events = EPOLLOUT;
	ev.data.u64 = (uint64_t)(c - G.conns);
	if (epoll_ctl(G.ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	c->epout = 1;
	if (connect(fd, (struct sockaddr *)&G.addr, G.addrlen) == 0)
		conn_connected(c);
	else if (errno != EINPROGRESS)
		die("cannot connect to %s:%d: %s", G.host, G.port,
		    strerror(errno));
}

static void open_more(void)
{
	while (G.connecting < MAX_CONNECTING && G.next_open < G.nconns)
		start_connect(&G.conns[G.next_open++]);
}

/* ---- generating messages -------------------------------------------------- */

static void build_frame(void)
{
	char pre[64], suf[4] = "";
	size_t plen;
	switch (G.proto) {
	case P_TCPCHAT: {
		unsigned char *p = (unsigned char *)pre;
		memset(p, 0, 4 + TC_HDR + TC_FIELD);
		put_u32(p, (uint32_t)(TC_HDR + TC_FIELD + (size_t)G.size));
		p[4] = 1;
		p[5] = TC_TEXT;
		put_u16(p + 6, 0);
		p[28] = TC_TAG_BODY;
		put_u32(p + 29, (uint32_t)G.size);
		plen = 4 + TC_HDR + TC_FIELD;
		break;
	}
	case P_REDIS:
		plen = (size_t)snprintf(pre, sizeof pre,
		                        "*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n"
		                        "$%ld\r\n",
		                        G.size);
		strcpy(suf, "\r\n");
		break;
	default:
		plen = (size_t)snprintf(pre, sizeof pre, "PUB bench %ld\r\n",
		                        G.size);
		strcpy(suf, "\r\n");
		break;
	}
	G.payload_off = plen;
	G.frame_len = plen + (size_t)G.size + strlen(suf);
	G.frame = xmalloc(G.frame_len);
	memcpy(G.frame, pre, plen);
	for (long i = 0; i < G.size; i++)
		G.frame[plen + (size_t)i] = (char)('a' + i % 26);
	memcpy(G.frame + plen + (size_t)G.size, suf, strlen(suf));
}

/* Queues count messages from sender s, stamped with now. */
static void gen_msgs(long s, uint64_t count, int64_t now)
{
	struct conn *c = &G.conns[G.receivers + s];
	char *p = out_reserve(c, G.frame_len * count);
	for (uint64_t i = 0; i < count; i++) {
		char *pl = p + G.payload_off;
		memcpy(p, G.frame, G.frame_len);
		pl[0] = 'b';
		put_hex(pl + 1, (uint64_t)now, 16);
		put_hex(pl + 17, (uint64_t)s, 6);
		put_hex(pl + 23, G.next_seq[s]++, 10);
		p += G.frame_len;
	}
	c->outlen += G.frame_len * count;
	G.sent_total += count;
	if (now >= G.t_start && now < G.t_end) {
		if (G.sent_win[s] == 0)
			G.win_first[s] = G.next_seq[s] - count;
		G.sent_win[s] += count;
		G.sent_win_total += count;
		G.batches_win++;
	}
}

/* At most OUT_LIMIT bytes (and at least one message) per batch. */
static uint64_t batch_cap(uint64_t count)
{
	uint64_t most = OUT_LIMIT / G.frame_len;
	if (most < 1)
		most = 1;
	return count < most ? count : most;
}

static int sending(void)
{
	return G.phase == PH_WARMUP || G.phase == PH_MEASURE;
}

/* Throughput mode: top every sender up to --window messages in flight,
 * where in flight = sent but not yet seen by the probe receiver. */
static void refill(int64_t now)
{
	if (!sending() || G.probe < 0)
		return;
	for (long s = 0; s < G.senders; s++) {
		struct conn *c = &G.conns[G.receivers + s];
		if (c->state != C_READY)
			continue;
		uint64_t base = G.expect[(size_t)G.probe * (size_t)G.senders +
		                         (size_t)s];
		if (base != G.last_base[s]) {
			G.last_base[s] = base;
			G.last_progress[s] = now;
		}
		if (G.stall_base[s] > base)
			base = G.stall_base[s];
		uint64_t inflight = G.next_seq[s] - base;
		if (inflight >= (uint64_t)G.window) {
			/* The probe has seen nothing of ours for a second:
			 * its copies were lost.  Start a new window. */
			if (now - G.last_progress[s] > NS) {
				G.stall_base[s] = G.next_seq[s];
				G.last_progress[s] = now;
				G.window_resets++;
			}
			continue;
		}
		if (out_pending(c) >= OUT_LIMIT)
			continue;
		gen_msgs(s, batch_cap((uint64_t)G.window - inflight), now);
		conn_flush(c);
	}
}

static void arm_timer(int64_t at)
{
	struct itimerspec its = {{0, 0}, {0, 0}};
	if (at <= 0)
		at = 1;
	its.it_value.tv_sec = at / NS;
	its.it_value.tv_nsec = at % NS;
	if (timerfd_settime(G.tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
		die("timerfd_settime: %s", strerror(errno));
}

/* Rate mode: every sender sends at rate / senders, on its own schedule. */
static void rate_tick(int64_t now)
{
	double next = 0;
	int any = 0;
	if (!sending())
		return;
	for (long s = 0; s < G.senders; s++) {
		struct conn *c = &G.conns[G.receivers + s];
		if (c->state != C_READY)
			continue;
		double due = G.next_due[s];
		if ((double)now >= due) {
			/* More than 100 ms behind (the bench or the socket
			 * could not keep up): skip, and say so. */
			if ((double)now - due > 100.0 * MS) {
				double skip = ((double)now - due) / G.period_ns;
				G.rate_missed += (uint64_t)skip;
				due += (double)(uint64_t)skip * G.period_ns;
			}
			uint64_t count =
			        (uint64_t)(((double)now - due) / G.period_ns) +
			        1;
			count = batch_cap(count);
			if (out_pending(c) < OUT_LIMIT) {
				gen_msgs(s, count, now);
				conn_flush(c);
				due += (double)count * G.period_ns;
			}
			G.next_due[s] = due;
		}
		if (!any || G.next_due[s] < next)
			next = G.next_due[s];
		any = 1;
	}
	if (any) {
		int64_t at = (int64_t)next;
		if (at < now + G.tick_ns)
			at = now + G.tick_ns; /* at most one wake-up per tick */
		arm_timer(at);
	}
}

/* ---- the loop ------------------------------------------------------------- */

static void loop_once(int64_t deadline)
{
	static struct epoll_event evs[MAX_EVENTS];
	int64_t now = mono_ns();
	int timeout = 0;
	if (deadline > now) {
		int64_t ms = (deadline - now + MS - 1) / MS;
		timeout = ms > 100 ? 100 : (int)ms;
	}
	int n = epoll_wait(G.ep, evs, MAX_EVENTS, timeout);
	if (n < 0) {
		if (errno == EINTR)
			return;
		die("epoll_wait: %s", strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == TIMER_TAG) {
			uint64_t ticks;
			if (read(G.tfd, &ticks, sizeof ticks) < 0 &&
			    errno != EAGAIN)
				die("timerfd read: %s", strerror(errno));
			rate_tick(mono_ns());
			continue;
		}
		struct conn *c = &G.conns[evs[i].data.u64];
		uint32_t e = evs[i].events;
		if (c->state == C_DEAD)
			continue;
		if (c->state == C_CONNECTING) {
			if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
				conn_connected(c);
			continue;
		}
		if (e & EPOLLOUT)
			conn_flush(c);
		if (c->state != C_DEAD && (e & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			conn_read(c);
	}
}

/* Opens every connection and waits until all are logged in. */
static void setup_connections(void)
{
	int64_t start = mono_ns();
	int64_t deadline = start + (int64_t)(G.timeout * NS);
	open_more();
	while (G.nready < G.nconns) {
		if (mono_ns() >= deadline)
			die("timed out after %.0f s: %ld of %ld connections "
			    "logged in to %s:%d",
			    G.timeout, G.nready, G.nconns, G.host, G.port);
		loop_once(deadline);
	}
	G.setup_ns = mono_ns() - start;
}

/* Every alive receiver has every in-window message? */
static int drain_done(void)
{
	for (long r = 0; r < G.receivers; r++) {
		if (G.conns[r].state != C_READY)
			continue;
		const uint32_t *got = G.got + (size_t)r * (size_t)G.senders;
		for (long s = 0; s < G.senders; s++)
			if (got[s] < G.sent_win[s])
				return 0;
	}
	return 1;
}

static void run_traffic(void)
{
	int64_t now = mono_ns(), next_check = 0;
	G.t0 = now;
	G.t_start = now + (int64_t)(G.warmup * NS);
	G.t_end = G.t_start + (int64_t)(G.duration * NS);
	G.phase = PH_WARMUP;
	for (long s = 0; s < G.senders; s++) {
		G.last_progress[s] = now;
		/* spread the senders over one period */
		G.next_due[s] = (double)now +
		                G.period_ns * (double)s / (double)G.senders;
	}
	if (G.mode == M_RATE)
		rate_tick(now);
	while (G.phase != PH_DONE) {
		int64_t deadline = G.phase == PH_WARMUP    ? G.t_start
		                   : G.phase == PH_MEASURE ? G.t_end
		                                           : next_check;
		if (G.mode == M_THROUGHPUT)
			refill(now);
		loop_once(deadline);
		now = mono_ns();
		if (G.phase == PH_WARMUP && now >= G.t_start) {
			take_sample(&G.s0);
			G.phase = PH_MEASURE;
		}
		if (G.phase == PH_MEASURE && now >= G.t_end) {
			take_sample(&G.s1);
			G.phase = PH_DRAIN;
			G.drain_deadline = now + (int64_t)(G.drain * NS);
		}
		if (G.phase == PH_DRAIN && now >= next_check) {
			next_check = now + 10 * MS;
			if (drain_done() || now >= G.drain_deadline)
				G.phase = PH_DONE;
		}
	}
}

/* Idle mode: waits until nothing arrived for --settle seconds. */
static void settle(void)
{
	int64_t start = mono_ns();
	int64_t deadline = start + (int64_t)(G.timeout * NS);
	int64_t quiet = (int64_t)(G.settle * NS);
	if (G.last_rx_ns < start)
		G.last_rx_ns = start;
	for (;;) {
		int64_t now = mono_ns();
		if (now - G.last_rx_ns >= quiet)
			break;
		if (now >= deadline) {
			warn(NULL,
			     "the server kept sending for %.0f s after "
			     "the last login; measuring anyway",
			     G.timeout);
			break;
		}
		loop_once(G.last_rx_ns + quiet);
	}
}

/* ---- output ----------------------------------------------------------------- */

struct kv {
	char buf[4096];
	size_t len;
};

static void kv_add(struct kv *kv, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void kv_add(struct kv *kv, const char *key, const char *fmt, ...)
{
	va_list ap;
	if (kv->len >= sizeof kv->buf)
		return;
	int n = snprintf(kv->buf + kv->len, sizeof kv->buf - kv->len,
	                 " %s=", key);
	if (n > 0)
		kv->len += (size_t)n;
	if (kv->len >= sizeof kv->buf)
		return;
	va_start(ap, fmt);
	n = vsnprintf(kv->buf + kv->len, sizeof kv->buf - kv->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		kv->len += (size_t)n;
}

/* A number, or "-" when v < 0 (unknown or not applicable). */
static void kv_num(struct kv *kv, const char *key, double v, int decimals)
{
	if (v < 0)
		kv_add(kv, key, "-");
	else
		kv_add(kv, key, "%.*f", decimals, v);
}

static void report_idle(long rss0, long rss1, long hwm)
{
	double per_conn = -1;
	if (rss0 >= 0 && rss1 >= 0)
		per_conn = (double)(rss1 - rss0) * 1024.0 / (double)G.nconns;
	printf("== " PROG ": %s idle, %s:%d ==\n", proto_names[G.proto], G.host,
	       G.port);
	printf("connections     %ld logged in in %.2f s (%s)\n", G.nconns,
	       (double)G.setup_ns / NS,
	       G.proto == P_TCPCHAT ? "HELLO/WELCOME"
	       : G.proto == P_REDIS ? "SUBSCRIBE bench"
	                            : "CONNECT, SUB bench, PING/PONG");
	if (G.proto == P_TCPCHAT)
		printf("notices         %" PRIu64 " JOIN/LEAVE received "
		       "(%.1f MB)\n",
		       G.notices, (double)G.bytes_in / 1e6);
	if (G.server_pid > 0) {
		printf("server memory   pid %ld: rss %ld kB before, %ld kB "
		       "after, peak (VmHWM) %ld kB\n",
		       G.server_pid, rss0, rss1, hwm);
		printf("per connection  %.0f bytes of server rss\n", per_conn);
	} else {
		printf("server memory   not measured (no --server-pid)\n");
	}
	if (G.closed)
		printf("closed          %" PRIu64 " connections closed by the "
		       "server\n",
		       G.closed);

	struct kv kv = {.len = 0};
	kv_add(&kv, "proto", "%s", proto_names[G.proto]);
	kv_add(&kv, "mode", "idle");
	kv_add(&kv, "receivers", "-");
	kv_add(&kv, "senders", "-");
	kv_add(&kv, "size", "-");
	kv_add(&kv, "window", "-");
	kv_add(&kv, "rate", "-");
	kv_add(&kv, "duration", "-");
	kv_add(&kv, "sent_per_s", "-");
	kv_add(&kv, "delivered_per_s", "-");
	kv_add(&kv, "lost", "-");
	kv_add(&kv, "reordered", "-");
	kv_add(&kv, "p50_us", "-");
	kv_add(&kv, "p99_us", "-");
	kv_add(&kv, "p999_us", "-");
	kv_add(&kv, "max_us", "-");
	kv_add(&kv, "server_cpu_s", "-");
	kv_add(&kv, "server_ns_per_msg", "-");
	kv_num(&kv, "server_rss_kb", (double)rss1, 0);
	kv_num(&kv, "server_hwm_kb", (double)hwm, 0);
	kv_add(&kv, "bench_cpu_pct", "-");
	kv_add(&kv, "connections", "%ld", G.nconns);
	kv_num(&kv, "rss_per_conn_bytes", per_conn, 0);
	kv_num(&kv, "setup_s", (double)G.setup_ns / NS, 2);
	kv_add(&kv, "closed", "%" PRIu64, G.closed);
	printf("RESULT%s\n", kv.buf);
}

static int report_traffic(void)
{
	double win = (double)(G.s1.t - G.s0.t) / NS;
	double drain = (double)(mono_ns() - G.s1.t) / NS;
	/* Per pair: in-window messages above the last one that arrived are
	 * "undelivered" (still queued, or dropped at the end); the missing
	 * ones below it are gaps.  lost = gaps + undelivered. */
	uint64_t lost = 0, gaps = 0, undelivered = 0, dup = 0, expected = 0;
	for (long r = 0; r < G.receivers; r++)
		for (long s = 0; s < G.senders; s++) {
			size_t pair = (size_t)r * (size_t)G.senders + (size_t)s;
			uint64_t want = G.sent_win[s], got = G.got[pair];
			uint64_t first = G.win_first[s], reached = 0;
			if (want && G.expect[pair] > first)
				reached = G.expect[pair] - first;
			if (reached > want)
				reached = want;
			expected += want;
			undelivered += want - reached;
			if (got < reached)
				gaps += reached - got;
			else
				dup += got - reached;
		}
	lost = gaps + undelivered;
	double sent_ps = (double)G.sent_win_total / G.duration;
	double send_batch =
	        G.batches_win ? (double)G.sent_win_total / (double)G.batches_win
	                      : 0;
	double deliv_ps = win > 0 ? (double)G.rx_win / win : 0;
	double bench_cpu =
	        win > 0 ? (G.s1.bench_cpu - G.s0.bench_cpu) / win * 100.0 : -1;
	double p50 = hist_quantile(0.50), p99 = hist_quantile(0.99);
	double p999 = hist_quantile(0.999);
	double mx = G.hist_n ? (double)G.hist_max : -1;
	double srv_cpu = -1, ns_msg = -1;
	long rss = -1, hwm = -1;
	if (G.server_pid > 0) {
		if (G.s0.srv_ok && G.s1.srv_ok)
			srv_cpu = (double)(G.s1.srv_ticks - G.s0.srv_ticks) /
			          (double)sysconf(_SC_CLK_TCK);
		if (srv_cpu >= 0 && G.rx_win)
			ns_msg = srv_cpu * 1e9 / (double)G.rx_win;
		proc_mem(G.server_pid, &rss, &hwm);
	}

	printf("== " PROG ": %s %s, %s:%d ==\n", proto_names[G.proto],
	       mode_names[G.mode], G.host, G.port);
	printf("connections     %ld receivers + %ld senders, logged in in "
	       "%.2f s\n",
	       G.receivers, G.senders, (double)G.setup_ns / NS);
	if (G.mode == M_THROUGHPUT)
		printf("load            payload %ld B; window %ld messages in "
		       "flight per sender (until seen by receiver %ld)\n",
		       G.size, G.window, G.probe);
	else
		printf("load            payload %ld B; fixed rate %.0f msg/s "
		       "in total (%.1f per sender), on an absolute schedule "
		       "with wake-ups at most every %.0f us\n",
		       G.size, G.rate, G.rate / (double)G.senders,
		       (double)G.tick_ns / 1e3);
	printf("timing          warm-up %.1f s, measured %.2f s, drain "
	       "%.2f s\n",
	       G.warmup, win, drain);
	printf("sent            %" PRIu64 " in window = %.0f msg/s, %.1f "
	       "messages per write batch\n",
	       G.sent_win_total, sent_ps, send_batch);
	printf("delivered       %" PRIu64 " in window = %.0f msg/s (sum over "
	       "%ld receivers)\n",
	       G.rx_win, deliv_ps, G.receivers);
	printf("lost            %" PRIu64 " of %" PRIu64 " expected (%ld x %ld "
	       "pairs); reordered %" PRIu64 "%s\n",
	       lost, expected, G.receivers, G.senders, G.reordered,
	       lost ? "  <-- LOSS" : "");
	if (lost)
		printf("                %" PRIu64 " in sequence gaps, %" PRIu64
		       " not arrived by the end of the drain\n",
		       gaps, undelivered);
	if (dup)
		printf("duplicates      %" PRIu64 "\n", dup);
	if (G.hist_n)
		printf("latency         p50 %.1f us, p99 %.1f us, p99.9 %.1f "
		       "us, max %.1f us (%" PRIu64 " samples)\n",
		       p50 / 1e3, p99 / 1e3, p999 / 1e3, mx / 1e3, G.hist_n);
	else
		printf("latency         no samples\n");
	if (G.server_pid > 0) {
		if (srv_cpu >= 0)
			printf("server cpu      pid %ld: %.2f s in window "
			       "(%.0f%% of one core), %.0f ns per delivered "
			       "message\n",
			       G.server_pid, srv_cpu,
			       win > 0 ? srv_cpu / win * 100 : 0.0, ns_msg);
		else
			printf("server cpu      pid %ld: unreadable\n",
			       G.server_pid);
		printf("server memory   rss %ld kB, peak (VmHWM) %ld kB\n", rss,
		       hwm);
	}
	printf("bench cpu       %.0f%% of one core%s\n", bench_cpu,
	       bench_cpu >= 90 ? "  <-- the bench may be the bottleneck" : "");
	printf("other           %" PRIu64 " notices, %" PRIu64
	       " server errors, %" PRIu64 " closed, %" PRIu64
	       " bad payloads, %" PRIu64 " seen by senders",
	       G.notices, G.server_errors, G.closed, G.bad_payload, G.other_rx);
	if (G.mode == M_THROUGHPUT)
		printf(", %" PRIu64 " window resets", G.window_resets);
	else
		printf(", %" PRIu64 " sends skipped (behind schedule)",
		       G.rate_missed);
	if (G.unknown_msgs)
		printf(", %" PRIu64 " messages of unknown types",
		       G.unknown_msgs);
	if (G.proto == P_REDIS && G.pub_short)
		printf(", %" PRIu64 " PUBLISH reached < %ld subscribers",
		       G.pub_short, G.receivers);
	printf("\n");

	struct kv kv = {.len = 0};
	kv_add(&kv, "proto", "%s", proto_names[G.proto]);
	kv_add(&kv, "mode", "%s", mode_names[G.mode]);
	kv_add(&kv, "receivers", "%ld", G.receivers);
	kv_add(&kv, "senders", "%ld", G.senders);
	kv_add(&kv, "size", "%ld", G.size);
	if (G.mode == M_THROUGHPUT) {
		kv_add(&kv, "window", "%ld", G.window);
		kv_add(&kv, "rate", "-");
	} else {
		kv_add(&kv, "window", "-");
		kv_add(&kv, "rate", "%.0f", G.rate);
	}
	kv_add(&kv, "duration", "%.2f", win);
	kv_num(&kv, "sent_per_s", sent_ps, 0);
	kv_num(&kv, "delivered_per_s", deliv_ps, 0);
	kv_add(&kv, "lost", "%" PRIu64, lost);
	kv_add(&kv, "reordered", "%" PRIu64, G.reordered);
	kv_num(&kv, "p50_us", p50 < 0 ? -1 : p50 / 1e3, 1);
	kv_num(&kv, "p99_us", p99 < 0 ? -1 : p99 / 1e3, 1);
	kv_num(&kv, "p999_us", p999 < 0 ? -1 : p999 / 1e3, 1);
	kv_num(&kv, "max_us", mx < 0 ? -1 : mx / 1e3, 1);
	kv_num(&kv, "server_cpu_s", srv_cpu, 2);
	kv_num(&kv, "server_ns_per_msg", ns_msg, 0);
	kv_num(&kv, "server_rss_kb", (double)rss, 0);
	kv_num(&kv, "server_hwm_kb", (double)hwm, 0);
	kv_num(&kv, "bench_cpu_pct", bench_cpu, 0);
	kv_add(&kv, "connections", "%ld", G.nconns);
	kv_add(&kv, "rss_per_conn_bytes", "-");
	kv_add(&kv, "setup_s", "%.2f", (double)G.setup_ns / NS);
	kv_add(&kv, "closed", "%" PRIu64, G.closed);
	kv_add(&kv, "samples", "%" PRIu64, G.hist_n);
	kv_add(&kv, "gaps", "%" PRIu64, gaps);
	kv_add(&kv, "undelivered", "%" PRIu64, undelivered);
	kv_add(&kv, "window_resets", "%" PRIu64, G.window_resets);
	kv_add(&kv, "rate_missed", "%" PRIu64, G.rate_missed);
	kv_num(&kv, "send_batch", G.batches_win ? send_batch : -1, 2);
	printf("RESULT%s\n", kv.buf);

	if (G.rx_win == 0) {
		fprintf(stderr,
		        PROG ": no message was delivered in the measured "
		             "window (server stalled?)\n");
		return 1;
	}
	if (G.closed) {
		fprintf(stderr,
		        PROG ": %" PRIu64 " connection(s) closed by "
		             "the server during the run\n",
		        G.closed);
		return 1;
	}
	return 0;
}

/* ---- options -------------------------------------------------------------- */

static void usage(void)
{
	printf("Usage: " PROG " [OPTION]...\n"
	       "Measure a chat / pub-sub server on one host: delivered "
	       "messages/s,\nlatency, loss, server CPU and memory.\n"
	       "\n"
	       "  --proto P          tcpchat (binary codec), redis or nats "
	       "(default tcpchat)\n"
	       "  --host H           server address (default 127.0.0.1)\n"
	       "  --port N           default 7070 / 6379 / 4222 by protocol\n"
	       "  --mode M           throughput, rate or idle (default "
	       "throughput)\n"
	       "  --receivers R      receiving connections (default 10)\n"
	       "  --senders S        sending connections (default 1)\n"
	       "  --size B           payload bytes, %d..%d (default 64)\n"
	       "  --window N         throughput: messages in flight per "
	       "sender (default 256)\n"
	       "  --rate M           rate: messages/s over all senders "
	       "(default 1000)\n"
	       "  --tick US          rate: at most one send wake-up per US "
	       "microseconds\n"
	       "                     (default 20)\n"
	       "  --connections N    idle: connections to open (default "
	       "1000)\n"
	       "  --duration D       measured seconds (default 5)\n"
	       "  --warmup W         seconds before measuring (default 1)\n"
	       "  --drain S          at most S seconds to wait for in-flight "
	       "messages (default 2)\n"
	       "  --timeout S        connection setup limit (default 60)\n"
	       "  --settle S         idle: quiet seconds before measuring "
	       "memory (default 1)\n"
	       "  --server-pid PID   read the server's CPU and memory from "
	       "/proc\n"
	       "  -h, --help         show this help\n"
	       "\n"
	       "Prints a readable block, then one 'RESULT key=value...' "
	       "line.\n"
	       "Exit status: 0 ok, 1 run failed (server unreachable, "
	       "stalled, closed\nconnections), 2 bad arguments.\n",
	       MIN_SIZE, MAX_SIZE);
}

static long opt_long(const char *name, const char *arg, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max)
		usage_error("invalid --%s '%s' (want %ld..%ld)", name, arg, min,
		            max);
	return v;
}

static double opt_double(const char *name, const char *arg, double min,
                         double max)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= min && v <= max))
		usage_error("invalid --%s '%s' (want %g..%g)", name, arg, min,
		            max);
	return v;
}

static void parse_options(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"proto", required_argument, NULL, 'P'},
	        {"host", required_argument, NULL, 'H'},
	        {"port", required_argument, NULL, 'p'},
	        {"mode", required_argument, NULL, 'm'},
	        {"receivers", required_argument, NULL, 'r'},
	        {"senders", required_argument, NULL, 's'},
	        {"size", required_argument, NULL, 'b'},
	        {"window", required_argument, NULL, 'w'},
	        {"rate", required_argument, NULL, 'R'},
	        {"tick", required_argument, NULL, 'T'},
	        {"connections", required_argument, NULL, 'c'},
	        {"duration", required_argument, NULL, 'd'},
	        {"warmup", required_argument, NULL, 'W'},
	        {"drain", required_argument, NULL, 'D'},
	        {"timeout", required_argument, NULL, 't'},
	        {"settle", required_argument, NULL, 'S'},
	        {"server-pid", required_argument, NULL, 'i'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c, port = -1;
	G.proto = P_TCPCHAT;
	G.mode = M_THROUGHPUT;
	G.host = "127.0.0.1";
	G.receivers = 10;
	G.senders = 1;
	G.size = 64;
	G.window = 256;
	G.rate = 1000;
	G.tick_ns = 20000;
	G.connections = 1000;
	G.duration = 5;
	G.warmup = 1;
	G.drain = 2;
	G.timeout = 60;
	G.settle = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			if (!strcmp(optarg, "tcpchat"))
				G.proto = P_TCPCHAT;
			else if (!strcmp(optarg, "redis"))
				G.proto = P_REDIS;
			else if (!strcmp(optarg, "nats"))
				G.proto = P_NATS;
			else
				usage_error("invalid --proto '%s' (tcpchat, "
				            "redis or nats)",
				            optarg);
			break;
		case 'H':
			if (!*optarg)
				usage_error("empty --host");
			G.host = optarg;
			break;
		case 'p':
			port = (int)opt_long("port", optarg, 1, 65535);
			break;
		case 'm':
			if (!strcmp(optarg, "throughput"))
				G.mode = M_THROUGHPUT;
			else if (!strcmp(optarg, "rate"))
				G.mode = M_RATE;
			else if (!strcmp(optarg, "idle"))
				G.mode = M_IDLE;
			else
				usage_error("invalid --mode '%s' (throughput, "
				            "rate or idle)",
				            optarg);
			break;
		case 'r':
			G.receivers = opt_long("receivers", optarg, 1, 1000000);
			break;
		case 's':
			G.senders = opt_long("senders", optarg, 1, 100000);
			break;
		case 'b':
			G.size = opt_long("size", optarg, MIN_SIZE, MAX_SIZE);
			break;
		case 'w':
			G.window = opt_long("window", optarg, 1, 1000000);
			break;
		case 'R':
			G.rate = opt_double("rate", optarg, 0.001, 1e8);
			break;
		case 'T':
			G.tick_ns =
			        (int64_t)(opt_double("tick", optarg, 1, 1e6) *
			                  1e3);
			break;
		case 'c':
			G.connections =
			        opt_long("connections", optarg, 1, 1000000);
			break;
		case 'd':
			G.duration = opt_double("duration", optarg, 0.1, 86400);
			break;
		case 'W':
			G.warmup = opt_double("warmup", optarg, 0, 86400);
			break;
		case 'D':
			G.drain = opt_double("drain", optarg, 0, 3600);
			break;
		case 't':
			G.timeout = opt_double("timeout", optarg, 0.1, 86400);
			break;
		case 'S':
			G.settle = opt_double("settle", optarg, 0, 3600);
			break;
		case 'i':
			G.server_pid =
			        opt_long("server-pid", optarg, 1, INT_MAX);
			break;
		case 'h':
			usage();
			exit(0);
		case ':':
			usage_error("option '%s' needs a value",
			            argv[optind - 1]);
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	G.port = port > 0               ? port
	         : G.proto == P_TCPCHAT ? 7070
	         : G.proto == P_REDIS   ? 6379
	                                : 4222;
	if (G.mode != M_IDLE && G.receivers * G.senders > MAX_PAIRS)
		usage_error("--receivers x --senders is over %ld", MAX_PAIRS);
	if (G.server_pid > 0) {
		uint64_t t;
		if (proc_cpu_ticks(G.server_pid, &t) != 0)
			usage_error("--server-pid %ld: no such process",
			            G.server_pid);
	}
}

static void resolve(void)
{
	char port[16];
	struct addrinfo hints, *res;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof port, "%d", G.port);
	int rc = getaddrinfo(G.host, port, &hints, &res);
	if (rc)
		die("cannot resolve %s: %s", G.host, gai_strerror(rc));
	memcpy(&G.addr, res->ai_addr, res->ai_addrlen);
	G.addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

static void raise_nofile(long need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need) {
		rlim_t want = (rlim_t)need;
		if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
			want = rl.rlim_max;
		rl.rlim_cur = want;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need)
		die("%ld connections need %ld file descriptors, but the limit "
		    "is %llu (hard limit %llu)",
		    G.nconns, need, (unsigned long long)rl.rlim_cur,
		    (unsigned long long)rl.rlim_max);
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	resolve();

	G.nconns = G.mode == M_IDLE ? G.connections : G.receivers + G.senders;
	raise_nofile(G.nconns + 32);
	G.conns = xcalloc((size_t)G.nconns, sizeof *G.conns);
	for (long i = 0; i < G.nconns; i++) {
		struct conn *c = &G.conns[i];
		c->fd = -1;
		c->state = C_NEW;
		if (G.mode == M_IDLE) {
			c->role = R_IDLE;
			c->idx = (uint32_t)i;
		} else if (i < G.receivers) {
			c->role = R_RECV;
			c->idx = (uint32_t)i;
		} else {
			c->role = R_SEND;
			c->idx = (uint32_t)(i - G.receivers);
		}
	}
	G.max_frame = (size_t)G.size + 4096;
	if (G.max_frame < 65536)
		G.max_frame = 65536;
	G.max_partial = G.max_frame + MAX_LINE + 64;
	G.rbuf_cap = G.max_partial + READ_CHUNK;
	G.rbuf = xmalloc(G.rbuf_cap);
	G.t_start = G.t_end = INT64_MAX;
	G.probe = 0;

	G.ep = epoll_create1(EPOLL_CLOEXEC);
	if (G.ep < 0)
		die("epoll_create1: %s", strerror(errno));

	if (G.mode == M_IDLE) {
		long rss0 = -1, rss1 = -1, hwm = -1;
		if (G.server_pid > 0)
			proc_mem(G.server_pid, &rss0, &hwm);
		setup_connections();
		settle();
		if (G.server_pid > 0)
			proc_mem(G.server_pid, &rss1, &hwm);
		report_idle(rss0, rss1, hwm);
		return G.closed ? 1 : 0;
	}

	size_t pairs = (size_t)G.receivers * (size_t)G.senders;
	size_t ns = (size_t)G.senders;
	G.expect = xcalloc(pairs, sizeof *G.expect);
	G.got = xcalloc(pairs, sizeof *G.got);
	G.next_seq = xcalloc(ns, sizeof *G.next_seq);
	G.sent_win = xcalloc(ns, sizeof *G.sent_win);
	G.win_first = xcalloc(ns, sizeof *G.win_first);
	G.stall_base = xcalloc(ns, sizeof *G.stall_base);
	G.last_base = xcalloc(ns, sizeof *G.last_base);
	G.last_progress = xcalloc(ns, sizeof *G.last_progress);
	G.next_due = xcalloc(ns, sizeof *G.next_due);
	G.period_ns = 1e9 * (double)G.senders / G.rate;
	build_frame();

	if (G.mode == M_RATE) {
		G.tfd = timerfd_create(CLOCK_MONOTONIC,
		                       TFD_NONBLOCK | TFD_CLOEXEC);
		if (G.tfd < 0)
			die("timerfd_create: %s", strerror(errno));
		struct epoll_event ev = {0};
		ev.events = EPOLLIN;
		ev.data.u64 = TIMER_TAG;
		if (epoll_ctl(G.ep, EPOLL_CTL_ADD, G.tfd, &ev) != 0)
			die("epoll_ctl: %s", strerror(errno));
	}

	setup_connections();
	run_traffic();
	return report_traffic();
}
