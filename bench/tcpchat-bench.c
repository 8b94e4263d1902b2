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
#include "bench.h"

const char *const proto_names[] = {"tcpchat", "redis", "nats"};
const char *const mode_names[] = {"throughput", "rate",  "idle",
                                  "storm",      "rooms", "durable"};

struct bench G;

/* ---- rooms and layout ------------------------------------------------------
 * Rooms mode ("mesh"): connection i is member i % members of room
 * i / members, and both receiver and sender number i.  Throughput and
 * rate modes with --rooms: the receivers and the senders are in room 0,
 * then come the idle members of rooms 1 .. rooms - 1. */

/* The name of room k: "#r007" (tcpchat) or "r007" (Redis channel, NATS
 * subject); all of the same length, so all frames are. */
size_t room_name(long k, char *buf, size_t n)
{
	int len = snprintf(buf, n, "%sr%0*ld", G.proto == P_TCPCHAT ? "#" : "",
	                   G.room_width, k);
	return len > 0 ? (size_t)len : 0;
}

/* The channel of a receiver in Redis and NATS without rooms. */
#define CHANNEL "bench"

static int is_rate(void)
{
	return G.mode == M_RATE || G.mode == M_ROOMS;
}

static int has_rooms(void)
{
	return G.rooms > 0 && G.mode != M_IDLE && G.mode != M_STORM;
}

static struct conn *sender_conn(long s)
{
	return &G.conns[G.mesh ? s : G.receivers + s];
}

/* Receiver r gets the messages of senders lo .. hi - 1 (in rooms mode,
 * except itself unless the server echoes). */
static void sender_range(long r, long *lo, long *hi)
{
	if (G.mesh) {
		*lo = r / G.members * G.members;
		*hi = *lo + G.members;
	} else {
		*lo = 0;
		*hi = G.senders;
	}
}

static int pair_expected(long r, long s)
{
	return !G.mesh || G.self_echo || r != s;
}

static size_t pair_index(long r, long s)
{
	if (G.mesh)
		return (size_t)r * (size_t)G.members + (size_t)(s % G.members);
	return (size_t)r * (size_t)G.senders + (size_t)s;
}

/* The summed CPU ticks of the --server-pid pids in *sum (and each in
 * each, when not NULL); -1 when there are none or one is unreadable. */
static int servers_ticks(uint64_t *sum, uint64_t *each)
{
	uint64_t t;
	*sum = 0;
	if (G.npids == 0)
		return -1;
	for (int i = 0; i < G.npids; i++) {
		if (proc_cpu_ticks(G.server_pids[i], &t) != 0)
			return -1;
		if (each)
			each[i] = t;
		*sum += t;
	}
	return 0;
}

void take_sample(struct sample *s)
{
	s->t = mono_ns();
	s->bench_cpu = self_cpu_s();
	s->srv_ok = servers_ticks(&s->srv_ticks, s->pid_ticks) == 0;
	s->bus_ok =
	        G.bus_pid > 0 && proc_cpu_ticks(G.bus_pid, &s->bus_ticks) == 0;
}

void servers_mem(long *rss_kb, long *hwm_kb)
{
	long rss, hwm;
	*rss_kb = *hwm_kb = 0;
	if (G.npids == 0)
		*rss_kb = *hwm_kb = -1;
	for (int i = 0; i < G.npids; i++) {
		proc_mem(G.server_pids[i], &rss, &hwm);
		if (rss < 0 || hwm < 0) {
			*rss_kb = *hwm_kb = -1;
			return;
		}
		*rss_kb += rss;
		*hwm_kb += hwm;
	}
}

const char *pids_note(char *buf, size_t n)
{
	size_t len = (size_t)snprintf(buf, n, "pid%s ", G.npids > 1 ? "s" : "");
	for (int i = 0; i < G.npids && len < n; i++)
		len += (size_t)snprintf(buf + len, n - len, "%s%ld",
		                        i ? "," : "", G.server_pids[i]);
	return buf;
}

/* The port index of c: receivers and idle connections are spread over
 * --ports (by their index), senders connect to the first port. */
static int conn_port(const struct conn *c)
{
	if (c->role != R_SEND && G.nports > 1)
		return (int)(c->idx % (uint32_t)G.nports);
	return 0;
}

/* ---- connections: output ------------------------------------------------- */

static void conn_lost(struct conn *c, const char *why);

/* Why the last recv or send on c failed. */
static const char *io_error(const struct conn *c)
{
	return c->ssl && errno == EPROTO ? tls_error() : strerror(errno);
}

const char *conn_name(const struct conn *c, char *buf, size_t n)
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
char *out_reserve(struct conn *c, size_t n)
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

void out_append(struct conn *c, const void *data, size_t n)
{
	memcpy(out_reserve(c, n), data, n);
	c->outlen += n;
}

void out_str(struct conn *c, const char *s)
{
	out_append(c, s, strlen(s));
}

size_t out_pending(const struct conn *c)
{
	return c->outlen - c->outoff;
}

void conn_flush(struct conn *c)
{
	while (c->state != C_DEAD && c->outoff < c->outlen) {
		ssize_t n = c->ssl ? tls_send(c, c->out + c->outoff,
		                              c->outlen - c->outoff)
		                   : send(c->fd, c->out + c->outoff,
		                          c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				set_out(c, 1);
				return;
			}
			conn_lost(c, io_error(c));
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

/* Appends a tcpchat binary frame: the header, then the fields sender
 * (tag 1), room (tag 3) and caps (tag 16) when non-empty, in tag order. */
static void tc_frame(struct conn *c, unsigned type, uint64_t id, uint32_t code,
                     const char *sender, size_t slen, const char *room,
                     size_t rlen, uint64_t caps)
{
	size_t body = TC_HDR + (slen ? TC_FIELD + slen : 0) +
	              (rlen ? TC_FIELD + rlen : 0) + (caps ? TC_FIELD + 8 : 0);
	unsigned char *p = (unsigned char *)out_reserve(c, 4 + body);
	unsigned char *f = p + 4 + TC_HDR;
	memset(p, 0, 4 + TC_HDR);
	put_u32(p, (uint32_t)body);
	p[4] = 1;
	p[5] = (unsigned char)type;
	put_u64(p + 8, id);
	put_u32(p + 24, code);
	if (slen) {
		f[0] = TC_TAG_SENDER;
		put_u32(f + 1, (uint32_t)slen);
		memcpy(f + TC_FIELD, sender, slen);
		f += TC_FIELD + slen;
	}
	if (rlen) {
		f[0] = TC_TAG_ROOM;
		put_u32(f + 1, (uint32_t)rlen);
		memcpy(f + TC_FIELD, room, rlen);
		f += TC_FIELD + rlen;
	}
	if (caps) {
		f[0] = TC_TAG_CAPS;
		put_u32(f + 1, 8);
		put_u64(f + TC_FIELD, caps);
	}
	c->outlen += 4 + body;
}

/* A RESP command of up to 3 arguments. */
static void resp_cmd(struct conn *c, const char *a, const char *b,
                     const char *d)
{
	const char *args[3] = {a, b, d};
	char buf[128];
	int n = d ? 3 : b ? 2 : 1;
	int k = snprintf(buf, sizeof buf, "*%d\r\n", n);
	out_append(c, buf, (size_t)k);
	for (int i = 0; i < n; i++) {
		k = snprintf(buf, sizeof buf, "$%zu\r\n%s\r\n", strlen(args[i]),
		             args[i]);
		out_append(c, buf, (size_t)k);
	}
}

/* The room a connection joins, subscribes to or publishes to: 1 and its
 * name, or 0 for the default room / the channel "bench". */
static int conn_room(const struct conn *c, char *buf, size_t n)
{
	if (!has_rooms())
		return 0;
	room_name((long)c->room, buf, n);
	return 1;
}

/* Sends what logs the connection in (NATS: once INFO has arrived). */
static void send_login(struct conn *c)
{
	char name[32], room[ROOM_NAME_MAX], line[128];
	const char *chan = conn_room(c, room, sizeof room) ? room : CHANNEL;
	switch (G.proto) {
	case P_TCPCHAT:
		conn_name(c, name, sizeof name);
		c->hello_version = (uint8_t)G.tc_version;
		tc_frame(c, TC_HELLO, 0, (uint32_t)G.tc_version, name,
		         strlen(name), NULL, 0,
		         G.mode == M_DURABLE ? durable_caps()
		         : G.tc_version >= 2 ? TC_CAPS_V2
		                             : 0);
		break;
	case P_REDIS:
		if (c->role == R_SEND) {
			resp_cmd(c, "PING", NULL, NULL);
			break;
		}
		/* Rooms mode: a subscriber publishes too, which Redis
		 * allows only to RESP3 clients. */
		if (G.mesh)
			resp_cmd(c, "HELLO", "3", NULL);
		resp_cmd(c, "SUBSCRIBE", chan, NULL);
		break;
	case P_NATS:
		/* Rooms mode: no copy of one's own messages, as in
		 * tcpchat. */
		out_str(c, G.mesh ? "CONNECT {\"verbose\":false,\"pedantic\":"
		                    "false,\"echo\":false}\r\n"
		                  : "CONNECT {\"verbose\":false,\"pedantic\":"
		                    "false}\r\n");
		if (c->role != R_SEND) {
			snprintf(line, sizeof line, "SUB %s 1\r\n", chan);
			out_str(c, line);
		}
		if (G.mode == M_DURABLE)
			durable_login(c);
		out_str(c, "PING\r\n");
		break;
	}
	conn_flush(c);
}

static void open_more(void);
static void start_connect(struct conn *c);
static void conn_close(struct conn *c);
static void conn_handshake(struct conn *c);

void conn_ready(struct conn *c)
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
	if (G.mesh)
		G.alive_send++; /* every member sends */
	if (G.mode == M_STORM) {
		/* Never read again: only hear of a close by the server. */
		struct epoll_event ev = {0};
		ev.events = EPOLLRDHUP;
		ev.data.u64 = (uint64_t)(c - G.conns);
		if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
			die("epoll_ctl: %s", strerror(errno));
		c->epout = 0;
	}
	open_more();
}

/* Parsing goes on while the connection is logging in or logged in; in
 * storm mode it stops right after the login reply. */
static int parse_more(const struct conn *c)
{
	if (c->state == C_LOGIN)
		return 1;
	return c->state == C_READY && G.mode != M_STORM;
}

/* Opens the connection again (after a protocol version fallback). */
static void conn_retry(struct conn *c)
{
	conn_close(c);
	G.connecting--;
	c->got_info = 0;
	c->joining = 0;
	start_connect(c);
}

static void server_error(struct conn *c, uint32_t code, const char *text,
                         size_t len)
{
	char name[32];
	if ((int)len > 200)
		len = 200;
	/* A server of protocol 1 refuses a HELLO of version 2: speak 1,
	 * unless --tcpchat-version says otherwise or rooms are needed. */
	if (c->state == C_LOGIN && G.proto == P_TCPCHAT &&
	    code == TC_WIRE_VERSION && c->hello_version == 2 &&
	    !G.tc_version_fixed && !has_rooms()) {
		if (G.tc_version == 2)
			warn(NULL, "the server refused protocol 2; using "
			           "protocol 1");
		G.tc_version = 1;
		conn_retry(c);
		return;
	}
	if (c->state != C_READY)
		die("server refused %s: %.*s%s",
		    conn_name(c, name, sizeof name), (int)len, text,
		    G.proto == P_TCPCHAT && code == 8
		            ? " (another bench still connected?)"
		    : G.proto == P_TCPCHAT && code == TC_WIRE_VERSION
		            ? (has_rooms() ? " (rooms need protocol 2)"
		               : c->hello_version == 2
		                       ? " (try --tcpchat-version 1)"
		                       : " (try --tcpchat-version 2)")
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
	if (c->role == R_IDLE) {
		/* a member of another room than the one written to */
		G.bad_payload++;
		warn(&G.warned_payload,
		     "a message reached i%" PRIu32
		     ", a member of room %" PRIu32,
		     c->idx, c->room);
		return;
	}
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
	if (G.mesh && ((long)s / G.members != (long)c->idx / G.members ||
	               !pair_expected((long)c->idx, (long)s))) {
		G.bad_payload++;
		warn(&G.warned_payload,
		     "the message %" PRIu64 " of r%" PRIu64 " (room %" PRIu64
		     ") reached r%" PRIu32 " (room %ld)",
		     seq, s, s / (uint64_t)G.members, c->idx,
		     (long)c->idx / G.members);
		return;
	}
	size_t pair = pair_index((long)c->idx, (long)s);
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
		hist_add(&G.lat, now - (int64_t)ts);
	}
}

/* ---- protocol: tcpchat binary --------------------------------------------- */

static long tc_parse(struct conn *c, const char *buf, size_t len, int64_t now)
{
	size_t pos = 0;
	while (len - pos >= 4 && parse_more(c)) {
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
		const char *text = NULL, *sender = NULL, *room = NULL;
		const char *ref = NULL;
		size_t tlen = 0, slen = 0, rlen = 0, reflen = 0;
		size_t off = 4 + TC_HDR;
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
			} else if (tag == TC_TAG_SENDER) {
				sender = (const char *)p + off;
				slen = n;
			} else if (tag == TC_TAG_ROOM) {
				room = (const char *)p + off;
				rlen = n;
			} else if (tag == TC_TAG_REF) {
				ref = (const char *)p + off;
				reflen = n;
			}
			off += n;
		}
		switch (type) {
		case TC_WELCOME:
			if (c->state == C_LOGIN && has_rooms() && !c->joining) {
				/* Join the room; logged in once the server
				 * confirms. */
				char rn[ROOM_NAME_MAX];
				size_t rl =
				        room_name((long)c->room, rn, sizeof rn);
				tc_frame(c, TC_JOIN, 0, 0, NULL, 0, rn, rl, 0);
				c->joining = 1;
			} else {
				conn_ready(c);
			}
			break;
		case TC_TEXT:
			if (text)
				on_payload(c, text, tlen, now);
			break;
		case TC_JOIN:
			if (c->state == C_LOGIN && c->joining) {
				/* Our confirmation: the sender is ourselves and
				 * the room is ours. */
				char me[32], rn[ROOM_NAME_MAX];
				size_t ml = strlen(conn_name(c, me, sizeof me));
				size_t rl =
				        room_name((long)c->room, rn, sizeof rn);
				if (slen == ml && rlen == rl && sender &&
				    room && !memcmp(sender, me, ml) &&
				    !memcmp(room, rn, rl)) {
					c->joining = 0;
					conn_ready(c);
					break;
				}
			}
			G.notices++;
			break;
		case TC_LEAVE:
			G.notices++;
			break;
		case TC_ERROR:
			if (G.mode == M_DURABLE && ref && c->state == C_READY)
				durable_tc_ack(c, ref, reflen, 0, now);
			server_error(c, code, text ? text : "(no reason)",
			             text ? tlen : 11);
			break;
		case TC_ACK:
			if (G.mode == M_DURABLE && c->state == C_READY)
				durable_tc_ack(c, ref, reflen, 1, now);
			else
				G.unknown_msgs++;
			break;
		case TC_PING:
			G.pings++;
			tc_frame(c, TC_PONG, id, 0, NULL, 0, NULL, 0, 0);
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

/* Skips one RESP3 value of any type (the map that answers HELLO 3).
 * Returns bytes used, 0 if incomplete, -1 on a protocol error. */
static long resp_skip(const char *b, size_t len, int depth)
{
	struct resp_item it;
	if (len == 0)
		return 0;
	if (depth > 8)
		return -1;
	switch (b[0]) {
	case '*':
	case '>':
	case '~':
	case '%':
	case '|': {
		const char *nl = memchr(b, '\n', len < 32 ? len : 32);
		uint64_t n;
		if (!nl)
			return len >= 32 ? -1 : 0;
		size_t ll = (size_t)(nl - b), used = ll + 1;
		if (ll == 3 && b[1] == '-' && b[2] == '1')
			return (long)used; /* null array */
		if (ll < 2 || nl[-1] != '\r' || get_dec(b + 1, ll - 2, &n) ||
		    n > 1024)
			return -1;
		if (b[0] == '%' || b[0] == '|')
			n *= 2;
		for (uint64_t i = 0; i < n; i++) {
			long k = resp_skip(b + used, len - used, depth + 1);
			if (k <= 0)
				return k;
			used += (size_t)k;
		}
		/* an attribute comes before the value it describes */
		if (b[0] == '|') {
			long k = resp_skip(b + used, len - used, depth + 1);
			return k <= 0 ? k : (long)(used + (size_t)k);
		}
		return (long)used;
	}
	case '_':
	case ',':
	case '#':
	case '(': {
		const char *nl =
		        memchr(b, '\n', len < MAX_LINE ? len : MAX_LINE);
		if (!nl)
			return len >= MAX_LINE ? -1 : 0;
		return (long)(nl - b) + 1;
	}
	case '=':
	case '!': {
		/* verbatim string and blob error: like a bulk string */
		const char *nl = memchr(b, '\n', len < 32 ? len : 32);
		uint64_t v;
		if (!nl)
			return len >= 32 ? -1 : 0;
		size_t hl = (size_t)(nl - b) + 1;
		if (hl < 4 || get_dec(b + 1, hl - 3, &v) || v > G.max_frame)
			return -1;
		return len - hl < v + 2 ? 0 : (long)(hl + v + 2);
	}
	default:
		return resp_scalar(b, len, &it);
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
	while (pos < len && parse_more(c)) {
		const char *b = buf + pos;
		size_t avail = len - pos;
		struct resp_item items[RESP_MAX_ITEMS];
		size_t nitems = 0, used;
		if (b[0] == '%' || b[0] == '|' || b[0] == '~') {
			/* RESP3: the reply to HELLO 3 (a map) */
			long k = resp_skip(b, avail, 0);
			if (k < 0) {
				warn(NULL, "redis: malformed reply");
				return -1;
			}
			if (k == 0)
				break;
			pos += (size_t)k;
			continue;
		}
		if (b[0] == '*' || b[0] == '>') { /* '>': a RESP3 push */
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
			if (G.mode == M_DURABLE && c->state == C_READY &&
			    (items[0].type == '-' || items[0].type == '$')) {
				/* the answer to the oldest XADD in flight */
				durable_fifo_reply(c, items[0].type == '$',
				                   now);
			}
			if (items[0].type == '-') {
				server_error(c, 0, items[0].str, items[0].len);
			} else if (items[0].type == ':') {
				G.pub_replies++;
				if (items[0].num < G.pub_expect)
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
	while (pos < len && parse_more(c)) {
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
			if (G.mode != M_DURABLE)
				on_payload(c, s + line, (size_t)n, now);
			else if (durable_nats_msg(c, tok[1], tlen[1], s + line,
			                          (size_t)n, now) != 0)
				warn(NULL, "nats: a message on '%.*s'",
				     (int)(tlen[1] < 60 ? tlen[1] : 60),
				     tok[1]);
			pos += line + (size_t)n + 2;
			continue;
		}
		if (word_is(s, ll, "PING")) {
			G.pings++;
			out_str(c, "PONG\r\n");
		} else if (word_is(s, ll, "PONG")) {
			if (G.mode != M_DURABLE || durable_pong_ready(c))
				conn_ready(c);
		} else if (word_is(s, ll, "INFO")) {
			if (!c->got_info) {
				c->got_info = 1;
				if (G.tls) {
					/* NATS: INFO in clear, then TLS */
					c->state = C_HANDSHAKE;
					tls_start(c);
					conn_handshake(c);
					return (long)(pos + line);
				}
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
	if (c->ssl)
		tls_free(c);
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
	if (G.mesh)
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

/* Storm mode: reads exactly up to the end of the login reply (peeking
 * first, then taking only the bytes parsed), so that everything the
 * server sends after it stays unread. */
static void storm_read(struct conn *c)
{
	char name[32];
	size_t have = c->inlen;
	if (have)
		memcpy(G.rbuf, c->in, have);
	ssize_t n = recv(c->fd, G.rbuf + have, G.rbuf_cap - have, MSG_PEEK);
	if (n < 0) {
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			conn_lost(c, strerror(errno));
		return;
	}
	if (n == 0) {
		conn_lost(c, "closed by the server");
		return;
	}
	int64_t now = mono_ns();
	G.last_rx_ns = now;
	long used = parse_input(c, G.rbuf, have + (size_t)n, now);
	if (used < 0)
		die("protocol error from %s:%d on connection %s", G.host,
		    G.port, conn_name(c, name, sizeof name));
	if (c->state != C_LOGIN && c->state != C_READY)
		return;
	/* Logged in: take the bytes up to the end of the reply.  Else all
	 * of them (a partial frame is kept for the next read). */
	size_t take = c->state == C_READY ? (size_t)used - have : (size_t)n;
	if ((size_t)used < have)
		die("storm: a login reply ended in bytes already taken");
	for (size_t done = 0; done < take;) {
		ssize_t k = recv(c->fd, G.rbuf + have + done, take - done, 0);
		if (k <= 0 && !(k < 0 && errno == EINTR))
			die("storm: reading %zu peeked bytes: %s", take,
			    k < 0 ? strerror(errno) : "end of stream");
		if (k > 0)
			done += (size_t)k;
	}
	G.bytes_in += take;
	size_t left = c->state == C_READY ? 0 : have + take - (size_t)used;
	if (left > G.max_partial)
		die("protocol error on %s: %zu bytes without a complete frame",
		    conn_name(c, name, sizeof name), left);
	if (left > c->incap) {
		free(c->in);
		c->in = xmalloc(left);
		c->incap = left;
	}
	if (left)
		memmove(c->in, G.rbuf + used, left);
	c->inlen = left;
	if (out_pending(c))
		conn_flush(c);
}

static void conn_read(struct conn *c)
{
	char name[32];
	if (G.mode == M_STORM) {
		storm_read(c);
		return;
	}
	for (int round = 0; round < READ_ROUNDS && c->state != C_DEAD;
	     round++) {
		size_t have = c->inlen;
		if (have)
			memcpy(G.rbuf, c->in, have);
		size_t space = G.rbuf_cap - have;
		ssize_t n = c->ssl ? tls_recv(c, G.rbuf + have, space)
		                   : recv(c->fd, G.rbuf + have, space, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_lost(c, io_error(c));
			else if (c->tls_rwant)
				set_out(c, 1);
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
		if (c->state != C_LOGIN && c->state != C_READY)
			return; /* closed, or opened again */
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
			return; /* drained */
	}
	/* Records decrypted but not read yet wake no epoll_wait. */
	if (c->ssl && c->state != C_DEAD && !c->tls_later && tls_pending(c)) {
		c->tls_later = 1;
		G.later[G.nlater++] = c - G.conns;
	}
}

const char *tls_note(void)
{
	static char note[128];
	char desc[96];
	if (!G.tls)
		return "";
	for (long i = 0; i < G.nconns; i++)
		if (G.conns[i].ssl) {
			snprintf(note, sizeof note, " over TLS (%s)",
			         tls_describe(&G.conns[i], desc, sizeof desc));
			return note;
		}
	return " over TLS";
}

/* TLS: a step of the handshake; then the login, as in conn_connected. */
static void conn_handshake(struct conn *c)
{
	int want_write = 0;
	const char *why = NULL;
	int rc = tls_handshake(c, &want_write, &why);
	if (rc < 0)
		die("TLS handshake with %s:%d failed: %s", G.host, G.port, why);
	if (rc == 0) {
		set_out(c, want_write);
		return;
	}
	set_out(c, 0);
	c->state = C_LOGIN;
	send_login(c); /* NATS: INFO came before the handshake */
}

static void conn_connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err)
		die("cannot connect to %s:%d: %s", G.host,
		    G.ports[conn_port(c)], strerror(err));
	struct epoll_event ev = {0};
	ev.events = EPOLLIN;
	ev.data.u64 = (uint64_t)(c - G.conns);
	if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	c->epout = 0;
	c->state = C_LOGIN;
	if (G.proto == P_NATS) /* log in (NATS: TLS) once INFO is in */
		return;
	if (G.tls) {
		c->state = C_HANDSHAKE;
		tls_start(c);
		conn_handshake(c);
		return;
	}
	send_login(c);
}

static void start_connect(struct conn *c)
{
	int one = 1;
	int port = conn_port(c);
	int fd = socket(G.addr[port].ss_family,
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
	if (connect(fd, (struct sockaddr *)&G.addr[port], G.addrlen[port]) == 0)
		conn_connected(c);
	else if (errno != EINPROGRESS)
		die("cannot connect to %s:%d: %s", G.host, G.ports[port],
		    strerror(errno));
}

static void open_more(void)
{
	while (G.connecting < G.parallel && G.next_open < G.nconns)
		start_connect(&G.conns[G.next_open++]);
}

/* ---- generating messages -------------------------------------------------- */

void fill_payload(char *p)
{
	for (long i = 0; i < G.size; i++)
		p[i] = (char)('a' + i % 26);
}

void stamp_payload(char *p, int64_t now, long s, uint64_t seq)
{
	p[0] = 'b';
	put_hex(p + 1, (uint64_t)now, 16);
	put_hex(p + 17, (uint64_t)s, 6);
	put_hex(p + 23, seq, 10);
}

/* Encodes the message of room k (k < 0: no room) into out, with a
 * payload of 'a'..'z'; sets G.payload_off and returns the length. */
static size_t encode_frame(long k, char *out)
{
	char pre[128], suf[64] = "", rn[ROOM_NAME_MAX];
	size_t plen, slen = 0, rl = 0;
	const char *chan = CHANNEL;
	if (k >= 0) {
		rl = room_name(k, rn, sizeof rn);
		chan = rn;
	}
	switch (G.proto) {
	case P_TCPCHAT: {
		/* fields in tag order: body (2), then room (3) */
		unsigned char *p = (unsigned char *)pre;
		memset(p, 0, 4 + TC_HDR + TC_FIELD);
		put_u32(p, (uint32_t)(TC_HDR + TC_FIELD + (size_t)G.size +
		                      (rl ? TC_FIELD + rl : 0)));
		p[4] = 1;
		p[5] = TC_TEXT;
		put_u16(p + 6, 0);
		p[28] = TC_TAG_BODY;
		put_u32(p + 29, (uint32_t)G.size);
		plen = 4 + TC_HDR + TC_FIELD;
		if (rl) {
			unsigned char *q = (unsigned char *)suf;
			q[0] = TC_TAG_ROOM;
			put_u32(q + 1, (uint32_t)rl);
			memcpy(q + TC_FIELD, rn, rl);
			slen = TC_FIELD + rl;
		}
		break;
	}
	case P_REDIS:
		plen = (size_t)snprintf(pre, sizeof pre,
		                        "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n"
		                        "$%ld\r\n",
		                        strlen(chan), chan, G.size);
		strcpy(suf, "\r\n");
		slen = 2;
		break;
	default:
		plen = (size_t)snprintf(pre, sizeof pre, "PUB %s %ld\r\n", chan,
		                        G.size);
		strcpy(suf, "\r\n");
		slen = 2;
		break;
	}
	G.payload_off = plen;
	if (out) {
		memcpy(out, pre, plen);
		fill_payload(out + plen);
		memcpy(out + plen + (size_t)G.size, suf, slen);
	}
	return plen + (size_t)G.size + slen;
}

/* G.frame: one frame per room that gets traffic (all of one length). */
static void build_frame(void)
{
	long nframes = G.mesh ? G.rooms : 1;
	long first = has_rooms() ? 0 : -1;
	G.frame_len = encode_frame(first, NULL);
	G.frame = xmalloc(G.frame_len * (size_t)nframes);
	for (long k = 0; k < nframes; k++)
		if (encode_frame(first < 0 ? -1 : k,
		                 G.frame + G.frame_len * (size_t)k) !=
		    G.frame_len)
			die("internal error: frames of different lengths");
}

/* Queues count messages from sender s, stamped with now. */
static void gen_msgs(long s, uint64_t count, int64_t now)
{
	struct conn *c = sender_conn(s);
	const char *frame = G.frame + (G.mesh ? G.frame_len * c->room : 0);
	char *p = out_reserve(c, G.frame_len * count);
	for (uint64_t i = 0; i < count; i++) {
		char *pl = p + G.payload_off;
		memcpy(p, frame, G.frame_len);
		stamp_payload(pl, now, s, G.next_seq[s]++);
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
uint64_t batch_cap(uint64_t count)
{
	uint64_t most = OUT_LIMIT / G.frame_len;
	if (most < 1)
		most = 1;
	return count < most ? count : most;
}

int sending(void)
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
		struct conn *c = sender_conn(s);
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
		struct conn *c = sender_conn(s);
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

/* TLS: reads the connections that have decrypted input left. */
static void read_later(void)
{
	long n = G.nlater;
	for (long i = 0; i < n; i++) {
		struct conn *c = &G.conns[G.later[i]];
		c->tls_later = 0;
		if (c->state == C_LOGIN || c->state == C_READY)
			conn_read(c);
	}
	G.nlater -= n;
	memmove(G.later, G.later + n, (size_t)G.nlater * sizeof *G.later);
}

static void loop_once(int64_t deadline)
{
	static struct epoll_event evs[MAX_EVENTS];
	int64_t now = mono_ns();
	int timeout = 0;
	if (deadline > now && !G.nlater) {
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
		if (c->state == C_HANDSHAKE) {
			conn_handshake(c);
			continue;
		}
		if (G.mode == M_STORM && c->state == C_READY) {
			/* only EPOLLRDHUP, EPOLLHUP or EPOLLERR are asked */
			conn_lost(c, "closed by the server");
			continue;
		}
		if (e & EPOLLOUT)
			conn_flush(c);
		if (c->state != C_DEAD &&
		    ((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) || c->tls_rwant))
			conn_read(c);
	}
	if (G.nlater)
		read_later();
}

/* Opens every connection and waits until all are logged in. */
static void setup_connections(void)
{
	int64_t start = mono_ns();
	int64_t deadline = start + (int64_t)(G.timeout * NS);
	open_more();
	while (G.nready < G.nconns) {
		if (mono_ns() >= deadline) {
			long joining = 0;
			for (long i = 0; i < G.nconns; i++)
				joining += G.conns[i].joining;
			die("timed out after %.0f s: %ld of %ld connections "
			    "logged in to %s:%d%s",
			    G.timeout, G.nready, G.nconns, G.host, G.port,
			    joining ? " (some got no JOIN confirmation: does "
			              "the server know rooms, protocol 2?)"
			    : G.mode == M_DURABLE && G.proto == P_NATS
			            ? " (no answer to the stream creation: is "
			              "JetStream on, nats-server -js?)"
			            : "");
		}
		loop_once(deadline);
	}
	G.setup_ns = mono_ns() - start;
}

/* Every alive receiver has every in-window message? */
static int drain_done(void)
{
	for (long r = 0; r < G.receivers; r++) {
		long lo, hi;
		if (G.conns[r].state != C_READY)
			continue;
		sender_range(r, &lo, &hi);
		for (long s = lo; s < hi; s++)
			if (pair_expected(r, s) &&
			    G.got[pair_index(r, s)] < G.sent_win[s])
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
	if (is_rate())
		rate_tick(now);
	while (G.phase != PH_DONE) {
		int64_t deadline = G.phase == PH_WARMUP    ? G.t_start
		                   : G.phase == PH_MEASURE ? G.t_end
		                                           : next_check;
		if (G.mode == M_THROUGHPUT)
			refill(now);
		else if (G.mode == M_DURABLE)
			durable_refill(now);
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
			if ((G.mode == M_DURABLE ? durable_drain_done()
			                         : drain_done()) ||
			    now >= G.drain_deadline)
				G.phase = PH_DONE;
		}
	}
}

/* Storm mode: waits until the server used less than 5% of a core in
 * --settle seconds (without --server-pid: waits --settle seconds).  The
 * resolution is the clock tick of /proc/PID/stat. */
static void settle_cpu(void)
{
	int64_t start = mono_ns();
	int64_t deadline = start + (int64_t)(G.timeout * NS);
	int64_t quiet = (int64_t)(G.settle * NS), since = start;
	double hz = (double)sysconf(_SC_CLK_TCK);
	uint64_t t0 = 0, t;
	if (G.server_pid > 0 && servers_ticks(&t0, NULL) != 0)
		G.server_pid = 0;
	for (;;) {
		int64_t now = mono_ns();
		if (now - since >= quiet) {
			if (G.server_pid <= 0 || servers_ticks(&t, NULL) != 0)
				break;
			if ((double)(t - t0) / hz <= 0.05 * G.settle)
				break;
			t0 = t;
			since = now;
		}
		if (now >= deadline) {
			warn(NULL,
			     "the server kept busy for %.0f s after the last "
			     "login; measuring anyway",
			     G.timeout);
			break;
		}
		loop_once(since + quiet);
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

static void report_idle(long rss0, long rss1, long hwm)
{
	double per_conn = -1, login_cpu = -1;
	if (rss0 >= 0 && rss1 >= 0)
		per_conn = (double)(rss1 - rss0) * 1024.0 / (double)G.nconns;
	if (G.s0.srv_ok && G.s1.srv_ok)
		login_cpu = (double)(G.s1.srv_ticks - G.s0.srv_ticks) /
		            (double)sysconf(_SC_CLK_TCK);
	printf("== " PROG ": %s %s, %s:%d%s ==\n", proto_names[G.proto],
	       mode_names[G.mode], G.host, G.port, tls_note());
	printf("connections     %ld logged in in %.2f s (%s), at most %ld "
	       "at once\n",
	       G.nconns, (double)G.setup_ns / NS,
	       G.proto == P_TCPCHAT ? (G.tc_version >= 2 ? "HELLO v2/WELCOME"
	                                                 : "HELLO v1/WELCOME")
	       : G.proto == P_REDIS ? "SUBSCRIBE bench"
	                            : "CONNECT, SUB bench, PING/PONG",
	       G.parallel);
	if (G.mode == M_STORM)
		printf("storm           %.0f logins/s; no byte read after the "
		       "login reply (%.1f kB read in all)\n",
		       G.setup_ns > 0
		               ? (double)G.nconns * NS / (double)G.setup_ns
		               : 0.0,
		       (double)G.bytes_in / 1e3);
	if (G.proto == P_TCPCHAT && G.mode != M_STORM)
		printf("notices         %" PRIu64 " JOIN/LEAVE received "
		       "(%.1f MB)\n",
		       G.notices, (double)G.bytes_in / 1e6);
	if (G.server_pid > 0) {
		char pids[512];
		printf("server memory   %s: rss %ld kB before, %ld kB "
		       "after, peak (VmHWM) %ld kB\n",
		       pids_note(pids, sizeof pids), rss0, rss1, hwm);
		printf("per connection  %.0f bytes of server rss\n", per_conn);
		if (login_cpu >= 0)
			printf("server cpu      %.2f s while logging in = %.1f "
			       "us per login\n",
			       login_cpu, login_cpu * 1e6 / (double)G.nconns);
	} else {
		printf("server memory   not measured (no --server-pid)\n");
	}
	if (G.closed)
		printf("closed          %" PRIu64 " connections closed by the "
		       "server\n",
		       G.closed);

	struct kv kv = {.len = 0};
	kv_add(&kv, "proto", "%s", proto_names[G.proto]);
	kv_add(&kv, "mode", "%s", mode_names[G.mode]);
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
	kv_num(&kv, "server_cpu_s", login_cpu, 2);
	kv_add(&kv, "server_ns_per_msg", "-");
	kv_num(&kv, "server_rss_kb", (double)rss1, 0);
	kv_num(&kv, "server_hwm_kb", (double)hwm, 0);
	kv_add(&kv, "bench_cpu_pct", "-");
	kv_add(&kv, "connections", "%ld", G.nconns);
	kv_num(&kv, "rss_per_conn_bytes", per_conn, 0);
	kv_num(&kv, "setup_s", (double)G.setup_ns / NS, 2);
	kv_add(&kv, "closed", "%" PRIu64, G.closed);
	kv_num(&kv, "tc_version",
	       G.proto == P_TCPCHAT ? (double)G.tc_version : -1, 0);
	kv_add(&kv, "pids", "%d", G.npids);
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
	for (long r = 0; r < G.receivers; r++) {
		long lo, hi;
		sender_range(r, &lo, &hi);
		for (long s = lo; s < hi; s++) {
			if (!pair_expected(r, s))
				continue;
			size_t pair = pair_index(r, s);
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
	}
	lost = gaps + undelivered;
	double sent_ps = (double)G.sent_win_total / G.duration;
	double send_batch =
	        G.batches_win ? (double)G.sent_win_total / (double)G.batches_win
	                      : 0;
	double deliv_ps = win > 0 ? (double)G.rx_win / win : 0;
	double bench_cpu =
	        win > 0 ? (G.s1.bench_cpu - G.s0.bench_cpu) / win * 100.0 : -1;
	double p50 = hist_quantile(&G.lat, 0.50),
	       p99 = hist_quantile(&G.lat, 0.99);
	double p999 = hist_quantile(&G.lat, 0.999);
	double mx = G.lat.hist_n ? (double)G.lat.hist_max : -1;
	double srv_cpu = -1, ns_msg = -1, bus_cpu = -1, bus_ns = -1;
	double hz = (double)sysconf(_SC_CLK_TCK);
	long rss = -1, hwm = -1;
	char pids[512];
	if (G.server_pid > 0) {
		if (G.s0.srv_ok && G.s1.srv_ok)
			srv_cpu =
			        (double)(G.s1.srv_ticks - G.s0.srv_ticks) / hz;
		if (srv_cpu >= 0 && G.rx_win)
			ns_msg = srv_cpu * 1e9 / (double)G.rx_win;
		servers_mem(&rss, &hwm);
	}
	if (G.bus_pid > 0 && G.s0.bus_ok && G.s1.bus_ok) {
		bus_cpu = (double)(G.s1.bus_ticks - G.s0.bus_ticks) / hz;
		if (G.sent_win_total)
			bus_ns = bus_cpu * 1e9 / (double)G.sent_win_total;
	}

	printf("== " PROG ": %s %s, %s:%d%s ==\n", proto_names[G.proto],
	       mode_names[G.mode], G.host, G.port, tls_note());
	if (G.mesh)
		printf("connections     %ld rooms x %ld members, every member "
		       "sends to its room and receives it, logged in and "
		       "joined in %.2f s\n",
		       G.rooms, G.members, (double)G.setup_ns / NS);
	else
		printf("connections     %ld receivers + %ld senders, logged in "
		       "in %.2f s\n",
		       G.receivers, G.senders, (double)G.setup_ns / NS);
	if (has_rooms() && !G.mesh)
		printf("rooms           receivers and senders in room 0, %ld "
		       "more rooms with %ld idle members each\n",
		       G.rooms - 1, G.members);
	if (G.mesh && G.self_echo)
		printf("echo            %s gives a publisher its own messages: "
		       "%ld deliveries per message\n",
		       proto_names[G.proto], G.members);
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
	if (G.mesh)
		printf("lost            %" PRIu64 " of %" PRIu64
		       " expected (%ld rooms x %ld x %ld pairs); reordered "
		       "%" PRIu64 "%s\n",
		       lost, expected, G.rooms, G.members,
		       G.self_echo ? G.members : G.members - 1, G.reordered,
		       lost ? "  <-- LOSS" : "");
	else
		printf("lost            %" PRIu64 " of %" PRIu64
		       " expected (%ld x %ld pairs); reordered %" PRIu64 "%s\n",
		       lost, expected, G.receivers, G.senders, G.reordered,
		       lost ? "  <-- LOSS" : "");
	if (lost)
		printf("                %" PRIu64 " in sequence gaps, %" PRIu64
		       " not arrived by the end of the drain\n",
		       gaps, undelivered);
	if (dup)
		printf("duplicates      %" PRIu64 "\n", dup);
	if (G.lat.hist_n)
		printf("latency         p50 %.1f us, p99 %.1f us, p99.9 %.1f "
		       "us, max %.1f us (%" PRIu64 " samples)\n",
		       p50 / 1e3, p99 / 1e3, p999 / 1e3, mx / 1e3,
		       G.lat.hist_n);
	else
		printf("latency         no samples\n");
	if (G.server_pid > 0) {
		if (srv_cpu >= 0)
			printf("server cpu      %s: %.2f s in window "
			       "(%.0f%% of one core), %.0f ns per delivered "
			       "message\n",
			       pids_note(pids, sizeof pids), srv_cpu,
			       win > 0 ? srv_cpu / win * 100 : 0.0, ns_msg);
		else
			printf("server cpu      %s: unreadable\n",
			       pids_note(pids, sizeof pids));
		for (int i = 0; G.npids > 1 && srv_cpu >= 0 && i < G.npids;
		     i++) {
			double c = (double)(G.s1.pid_ticks[i] -
			                    G.s0.pid_ticks[i]) /
			           hz;
			printf("                pid %ld: %.2f s (%.0f%% of one "
			       "core)\n",
			       G.server_pids[i], c,
			       win > 0 ? c / win * 100 : 0.0);
		}
		printf("server memory   rss %ld kB, peak (VmHWM) %ld kB\n", rss,
		       hwm);
	}
	if (G.bus_pid > 0) {
		if (bus_cpu >= 0)
			printf("bus cpu         pid %ld: %.2f s in window "
			       "(%.0f%% of one core), %.0f ns per message "
			       "sent\n",
			       G.bus_pid, bus_cpu,
			       win > 0 ? bus_cpu / win * 100 : 0.0, bus_ns);
		else
			printf("bus cpu         pid %ld: unreadable\n",
			       G.bus_pid);
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
		       G.pub_short, G.pub_expect);
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
	kv_add(&kv, "samples", "%" PRIu64, G.lat.hist_n);
	kv_add(&kv, "gaps", "%" PRIu64, gaps);
	kv_add(&kv, "undelivered", "%" PRIu64, undelivered);
	kv_add(&kv, "window_resets", "%" PRIu64, G.window_resets);
	kv_add(&kv, "rate_missed", "%" PRIu64, G.rate_missed);
	kv_num(&kv, "send_batch", G.batches_win ? send_batch : -1, 2);
	kv_num(&kv, "rooms", has_rooms() ? (double)G.rooms : -1, 0);
	kv_num(&kv, "members", has_rooms() ? (double)G.members : -1, 0);
	kv_num(&kv, "tc_version",
	       G.proto == P_TCPCHAT ? (double)G.tc_version : -1, 0);
	kv_add(&kv, "bad_payloads", "%" PRIu64, G.bad_payload);
	kv_add(&kv, "pids", "%d", G.npids);
	kv_num(&kv, "bus_cpu_s", bus_cpu, 2);
	kv_num(&kv, "bus_cpu_ns_per_msg", bus_ns, 0);
	kv_add(&kv, "sent_total", "%" PRIu64, G.sent_total);
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
	if (has_rooms() && G.bad_payload) {
		fprintf(stderr,
		        PROG ": %" PRIu64 " message(s) reached a connection "
		             "outside the room they were sent to\n",
		        G.bad_payload);
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
	       "  --ports P1,P2,...  tcpchat: several servers of a cluster; "
	       "receiver (and\n"
	       "                     idle connection) i connects to P[i %% n], "
	       "senders to P1\n"
	       "  --mode M           throughput, rate, idle, storm, rooms or "
	       "durable\n"
	       "                     (default throughput)\n"
	       "  --receivers R      receiving connections (default 10)\n"
	       "  --senders S        sending connections (default 1; durable: "
	       "publishers, 4)\n"
	       "  --size B           payload bytes, %d..%d (default 64)\n"
	       "  --window N         throughput: messages in flight per "
	       "sender (default 256);\n"
	       "                     durable: unacknowledged messages per "
	       "publisher (64)\n"
	       "  --rate M           rate, rooms: messages/s over all senders "
	       "(default 1000)\n"
	       "  --tick US          rate: at most one send wake-up per US "
	       "microseconds\n"
	       "                     (default 20; rooms: 1000)\n"
	       "  --connections N    idle, storm: connections to open (default "
	       "1000, storm\n"
	       "                     10000)\n"
	       "  --rooms K          rooms: K rooms (default 100); throughput, "
	       "rate: the\n"
	       "                     receivers and senders are in room 0 of "
	       "K rooms\n"
	       "  --members M        rooms: members per room, all sending "
	       "(default 10);\n"
	       "                     throughput, rate: idle members of each "
	       "other room\n"
	       "                     (default 3)\n"
	       "  --parallel N       connections being opened at once "
	       "(default 256)\n"
	       "  --tcpchat-version V  HELLO version 1 or 2 (default: 2, "
	       "or 1 when the\n"
	       "                     server refuses 2; rooms need 2)\n"
	       "  --duration D       measured seconds (default 5)\n"
	       "  --warmup W         seconds before measuring (default 1)\n"
	       "  --drain S          at most S seconds to wait for in-flight "
	       "messages (default 2)\n"
	       "  --timeout S        connection setup limit (default 60)\n"
	       "  --settle S         idle, storm: quiet seconds before "
	       "measuring memory\n"
	       "                     (default 1)\n"
	       "  --server-pid PID   read the server's CPU and memory from "
	       "/proc; with\n"
	       "                     PID1,PID2,... their sum (and the CPU of "
	       "each)\n"
	       "  --bus-pid PID      read the CPU of a cluster's engine "
	       "(Redis, "
	       "NATS)\n"
	       "  --tls              every connection over TLS (NATS: after "
	       "INFO); not\n"
	       "                     with storm mode%s\n"
	       "  --tls-ca FILE      with --tls: verify the server's "
	       "certificate against\n"
	       "                     the CAs in FILE and --host (default: no "
	       "check)\n"
	       "  -h, --help         show this help\n"
	       "\n"
	       "Prints a readable block, then one 'RESULT key=value...' "
	       "line.\n"
	       "Exit status: 0 ok, 1 run failed (server unreachable, "
	       "stalled, closed\nconnections), 2 bad arguments.\n",
	       MIN_SIZE, MAX_SIZE, tls_built ? "" : " (this build has no TLS)");
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

/* A comma-separated list of 1..max numbers in 1..vmax into out; returns
 * how many. */
static int opt_list(const char *name, const char *arg, long *out, int max,
                    long vmax)
{
	int n = 0;
	const char *p = arg;
	for (;;) {
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (errno || end == p || (*end && *end != ',') || v < 1 ||
		    v > vmax || n == max)
			usage_error("invalid --%s '%s' (want 1 to %d numbers "
			            "in 1..%ld, separated by commas)",
			            name, arg, max, vmax);
		out[n++] = v;
		if (!*end)
			return n;
		p = end + 1;
	}
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
	        {"ports", required_argument, NULL, 'O'},
	        {"bus-pid", required_argument, NULL, 'B'},
	        {"rooms", required_argument, NULL, 'K'},
	        {"members", required_argument, NULL, 'M'},
	        {"parallel", required_argument, NULL, 'n'},
	        {"tcpchat-version", required_argument, NULL, 'v'},
	        {"tls", no_argument, NULL, 'L'},
	        {"tls-ca", required_argument, NULL, 'A'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c, port = -1, receivers_set = 0, senders_set = 0, window_set = 0;
	long ports[MAX_PORTS];
	G.proto = P_TCPCHAT;
	G.mode = M_THROUGHPUT;
	G.host = "127.0.0.1";
	G.receivers = 10;
	G.senders = 1;
	G.size = 64;
	G.window = 256;
	G.rate = 1000;
	G.tick_ns = 20000;
	G.connections = -1;
	G.rooms = -1;
	G.members = -1;
	G.parallel = 256;
	G.tc_version = 2;
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
			else if (!strcmp(optarg, "storm"))
				G.mode = M_STORM;
			else if (!strcmp(optarg, "rooms"))
				G.mode = M_ROOMS;
			else if (!strcmp(optarg, "durable"))
				G.mode = M_DURABLE;
			else
				usage_error(
				        "invalid --mode '%s' (throughput, "
				        "rate, idle, storm, rooms or durable)",
				        optarg);
			break;
		case 'r':
			G.receivers = opt_long("receivers", optarg, 1, 1000000);
			receivers_set = 1;
			break;
		case 's':
			G.senders = opt_long("senders", optarg, 1, 100000);
			senders_set = 1;
			break;
		case 'b':
			G.size = opt_long("size", optarg, MIN_SIZE, MAX_SIZE);
			break;
		case 'w':
			G.window = opt_long("window", optarg, 1, 1000000);
			window_set = 1;
			break;
		case 'R':
			G.rate = opt_double("rate", optarg, 0.001, 1e8);
			break;
		case 'T':
			G.tick_ns =
			        (int64_t)(opt_double("tick", optarg, 1, 1e6) *
			                  1e3);
			G.tick_set = 1;
			break;
		case 'K':
			G.rooms = opt_long("rooms", optarg, 1, 100000);
			break;
		case 'M':
			G.members = opt_long("members", optarg, 0, 100000);
			break;
		case 'n':
			G.parallel = opt_long("parallel", optarg, 1, 100000);
			break;
		case 'v':
			G.tc_version =
			        (int)opt_long("tcpchat-version", optarg, 1, 2);
			G.tc_version_fixed = 1;
			break;
		case 'L':
			G.tls = 1;
			break;
		case 'A':
			if (!*optarg)
				usage_error("empty --tls-ca");
			G.tls_ca = optarg;
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
			G.npids = opt_list("server-pid", optarg, G.server_pids,
			                   MAX_PIDS, INT_MAX);
			G.server_pid = G.server_pids[0];
			break;
		case 'O':
			G.nports = opt_list("ports", optarg, ports, MAX_PORTS,
			                    65535);
			break;
		case 'B':
			G.bus_pid = opt_long("bus-pid", optarg, 1, INT_MAX);
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
	if (G.nports && port > 0)
		usage_error("--port and --ports do not go together");
	if (G.nports && G.proto != P_TCPCHAT)
		usage_error("--ports is for --proto tcpchat");
	G.port = G.nports               ? (int)ports[0]
	         : port > 0             ? port
	         : G.proto == P_TCPCHAT ? 7070
	         : G.proto == P_REDIS   ? 6379
	                                : 4222;
	if (!G.nports)
		G.nports = 1;
	G.ports[0] = G.port;
	for (int i = 1; i < G.nports; i++)
		G.ports[i] = (int)ports[i];
	if (G.tls_ca && !G.tls)
		usage_error("--tls-ca goes with --tls");
	if (G.tls && !tls_built)
		usage_error("--tls: this " PROG " was built without TLS "
		            "(OpenSSL)");
	if (G.tls && G.mode == M_STORM)
		usage_error("--tls does not go with --mode storm (it reads "
		            "the login reply from the kernel's buffer)");
	int idle = G.mode == M_IDLE || G.mode == M_STORM;
	if (G.connections < 0)
		G.connections = G.mode == M_STORM ? 10000 : 1000;
	if (idle && (G.rooms >= 0 || G.members >= 0))
		usage_error("--rooms and --members are not for --mode %s",
		            mode_names[G.mode]);
	if (G.mode == M_DURABLE) {
		/* publishers only, all to room #r000 (tcpchat) */
		if (receivers_set || G.rooms >= 0 || G.members >= 0)
			usage_error(
			        "--receivers, --rooms and --members are not "
			        "for --mode durable");
		if (!senders_set)
			G.senders = 4;
		if (!window_set)
			G.window = 64;
		G.receivers = 0;
		G.rooms = 1;
		G.members = 0;
	} else if (G.mode == M_ROOMS) {
		if (G.rooms < 0)
			G.rooms = 100;
		if (G.members < 0)
			G.members = 10;
		if (G.members < 2)
			usage_error("--mode rooms needs at least 2 --members");
		if (G.rooms * G.members > 1000000)
			usage_error("--rooms x --members is over 1000000");
		G.mesh = 1;
		G.receivers = G.senders = G.rooms * G.members;
		if (!G.tick_set)
			G.tick_ns = 1000000;
	} else if (!idle) {
		if (G.rooms < 0)
			G.rooms = 0;
		if (G.members < 0)
			G.members = 3;
		if (G.rooms > 1 && G.members < 1)
			usage_error("--members must be at least 1 with more "
			            "than one room");
		if (G.rooms > 0)
			G.extra = (G.rooms - 1) * G.members;
		if (G.extra > 1000000)
			usage_error(
			        "(--rooms - 1) x --members is over 1000000");
	}
	if (!idle && has_rooms() && G.proto == P_TCPCHAT &&
	    G.tc_version_fixed && G.tc_version < 2)
		usage_error("rooms need --tcpchat-version 2");
	for (long k = G.rooms - 1; k > 0; k /= 10)
		G.room_width++;
	if (G.room_width < 3)
		G.room_width = 3;
	if (!idle && (G.mesh ? G.receivers * G.members
	                     : G.receivers * G.senders) > MAX_PAIRS)
		usage_error("%s is over %ld",
		            G.mesh ? "--rooms x --members x --members"
		                   : "--receivers x --senders",
		            MAX_PAIRS);
	G.self_echo = G.mesh && G.proto == P_REDIS;
	G.pub_expect = G.mesh ? G.members : G.receivers;
	for (int i = 0; i < G.npids; i++) {
		uint64_t t;
		if (proc_cpu_ticks(G.server_pids[i], &t) != 0)
			usage_error("--server-pid %ld: no such process",
			            G.server_pids[i]);
	}
	if (G.bus_pid > 0) {
		uint64_t t;
		if (proc_cpu_ticks(G.bus_pid, &t) != 0)
			usage_error("--bus-pid %ld: no such process",
			            G.bus_pid);
	}
}

/* The address of every port of --host. */
static void resolve(void)
{
	for (int i = 0; i < G.nports; i++) {
		char port[16];
		struct addrinfo hints, *res;
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		snprintf(port, sizeof port, "%d", G.ports[i]);
		int rc = getaddrinfo(G.host, port, &hints, &res);
		if (rc)
			die("cannot resolve %s: %s", G.host, gai_strerror(rc));
		memcpy(&G.addr[i], res->ai_addr, res->ai_addrlen);
		G.addrlen[i] = res->ai_addrlen;
		freeaddrinfo(res);
	}
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

	int idle = G.mode == M_IDLE || G.mode == M_STORM;
	G.nconns = idle     ? G.connections
	           : G.mesh ? G.receivers
	                    : G.receivers + G.senders + G.extra;
	raise_nofile(G.nconns + 32);
	G.conns = xcalloc((size_t)G.nconns, sizeof *G.conns);
	for (long i = 0; i < G.nconns; i++) {
		struct conn *c = &G.conns[i];
		c->fd = -1;
		c->state = C_NEW;
		if (idle) {
			c->role = R_IDLE;
			c->idx = (uint32_t)i;
		} else if (G.mesh) {
			c->role = R_RECV; /* and sender number i */
			c->idx = (uint32_t)i;
			c->room = (uint32_t)(i / G.members);
		} else if (i < G.receivers) {
			c->role = R_RECV;
			c->idx = (uint32_t)i;
		} else if (i < G.receivers + G.senders) {
			c->role = R_SEND;
			c->idx = (uint32_t)(i - G.receivers);
		} else {
			/* an idle member of room 1 + j / members */
			long j = i - G.receivers - G.senders;
			c->role = R_IDLE;
			c->idx = (uint32_t)j;
			c->room = (uint32_t)(1 + j / G.members);
		}
	}
	G.max_frame = (size_t)G.size + 4096;
	if (G.max_frame < 65536)
		G.max_frame = 65536;
	G.max_partial = G.max_frame + MAX_LINE + 64;
	G.rbuf_cap = G.max_partial + READ_CHUNK;
	G.rbuf = xmalloc(G.rbuf_cap);
	G.t_start = G.t_end = INT64_MAX;
	/* With --ports, the probe is a receiver of the last server: the
	 * window then spans the way between the servers (the bus). */
	G.probe = G.nports > 1 && G.receivers >= G.nports ? G.nports - 1 : 0;

	G.ep = epoll_create1(EPOLL_CLOEXEC);
	if (G.ep < 0)
		die("epoll_create1: %s", strerror(errno));
	if (G.tls) {
		tls_setup(G.tls_ca, G.host);
		G.later = xcalloc(2 * (size_t)G.nconns, sizeof *G.later);
	}

	if (idle) {
		long rss0 = -1, rss1 = -1, hwm = -1;
		if (G.server_pid > 0)
			servers_mem(&rss0, &hwm);
		take_sample(&G.s0);
		setup_connections();
		take_sample(&G.s1);
		if (G.mode == M_STORM)
			settle_cpu();
		else
			settle();
		if (G.server_pid > 0)
			servers_mem(&rss1, &hwm);
		report_idle(rss0, rss1, hwm);
		return G.closed ? 1 : 0;
	}

	size_t pairs =
	        (size_t)G.receivers * (size_t)(G.mesh ? G.members : G.senders);
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
	if (G.mode == M_DURABLE)
		durable_setup();
	else
		build_frame();

	if (is_rate()) {
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
	return G.mode == M_DURABLE ? durable_report() : report_traffic();
}
