/* tcpchat-bench --mode durable: posting with acknowledgments.
 * SPDX-License-Identifier: MIT
 *
 * --senders publishers (default 4) keep --window messages (default 64)
 * each in flight to one room, stream or subject, and count the
 * server's acknowledgments:
 *
 *	tcpchat  TEXT to room #r000 with a unique ref (tag 5); the server
 *	         answers ACK (type 13) with that ref, after the commit when
 *	         it has a durable store.  ERROR with the ref: refused.
 *	Redis    XADD chat:room * s NAME b BODY, pipelined; each reply (the
 *	         stream id) answers the oldest XADD in flight, an error reply
 *	         refuses it.
 *	NATS     PUB chat.room _INBOX.NONCE.SENDER.N, with JetStream: the
 *	         first connection creates the stream CHAT (file storage,
 *	         subjects chat.>) through $JS.API.STREAM.CREATE.CHAT; the
 *	         PubAck {"stream":"CHAT","seq":..} on the message's own
 *	         inbox answers it, {"error":..} refuses it.
 *
 * Message n of a publisher uses slot n % window: its send time and
 * whether it is answered.  A publisher sends while next - base < window,
 * base being its oldest unanswered message, so a slot is free again when
 * the window reaches it even if answers come out of order.  Latency is
 * send -> answer, for messages sent in the measured window; acked/s
 * counts the answers received in it (the span of the server CPU figure).
 */
#include "bench.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NONCE_LEN 8 /* hex digits that make refs unique to a run */
#define REF_LEN (NONCE_LEN + 6 + 10) /* nonce, publisher, number */
#define TC_CAP_HISTORY 0x4
#define JS_STREAM "CHAT"
#define JS_SUBJECT "chat.room"
#define REDIS_STREAM "chat:room"

struct pub {
	char *frame; /* one message, stamped before each send */
	size_t len, payload_off, num_off; /* num_off 0: no number field */
	uint64_t next, base, replies;     /* replies: Redis, in order */
	int64_t *sent_at;                 /* [window] */
	uint8_t *done;                    /* [window] */
};

static struct {
	char nonce[NONCE_LEN + 1];
	struct pub *pubs;
	int created; /* NATS: the stream exists */
	uint64_t acked, acked_win, errors, stray, sent_win;
	unsigned warned_error, warned_stray;
} D;

uint64_t durable_caps(void)
{
	return TC_CAPS_V2 | TC_CAP_HISTORY;
}

/* The NATS inbox of publisher s: "_INBOX.NONCE.SSSSSS." (with the dot). */
static int inbox(long s, char *buf, size_t n)
{
	return snprintf(buf, n, "_INBOX.%s.%06lx.", D.nonce, s);
}

void durable_login(struct conn *c)
{
	char box[64], line[160];
	static const char create[] =
	        "{\"name\":\"" JS_STREAM "\",\"subjects\":[\"chat.>\"],"
	        "\"storage\":\"file\",\"retention\":\"limits\","
	        "\"discard\":\"old\",\"num_replicas\":1}";
	if (G.proto != P_NATS)
		return;
	inbox((long)c->idx, box, sizeof box);
	snprintf(line, sizeof line, "SUB %s* 1\r\n", box);
	out_str(c, line);
	if (c->idx == 0) {
		snprintf(line, sizeof line,
		         "SUB _INBOX.%s.create 2\r\nPUB $JS.API.STREAM.CREATE."
		         "%s _INBOX.%s.create %zu\r\n",
		         D.nonce, JS_STREAM, D.nonce, sizeof create - 1);
		out_str(c, line);
		out_str(c, create);
		out_str(c, "\r\n");
	}
}

int durable_pong_ready(const struct conn *c)
{
	return c->idx != 0 || D.created;
}

/* Builds the frame of publisher s: the protocol's prefix, the payload
 * (G.size bytes) and its suffix, noting where the payload and the
 * message number go. */
static void build_pub(long s, struct pub *p)
{
	char pre[256], suf[128], box[64], name[24], rn[ROOM_NAME_MAX];
	size_t plen = 0, slen = 0;
	p->num_off = 0;
	switch (G.proto) {
	case P_TCPCHAT: {
		/* fields in tag order: body (2), room (3), ref (5) */
		size_t rl = room_name(0, rn, sizeof rn);
		unsigned char *h = (unsigned char *)pre, *q;
		memset(h, 0, 4 + TC_HDR + TC_FIELD);
		put_u32(h, (uint32_t)(TC_HDR + TC_FIELD + (size_t)G.size +
		                      TC_FIELD + rl + TC_FIELD + REF_LEN));
		h[4] = 1;
		h[5] = TC_TEXT;
		h[28] = TC_TAG_BODY;
		put_u32(h + 29, (uint32_t)G.size);
		plen = 4 + TC_HDR + TC_FIELD;
		q = (unsigned char *)suf;
		q[0] = TC_TAG_ROOM;
		put_u32(q + 1, (uint32_t)rl);
		memcpy(q + TC_FIELD, rn, rl);
		q += TC_FIELD + rl;
		q[0] = TC_TAG_REF;
		put_u32(q + 1, REF_LEN);
		memcpy(q + TC_FIELD, D.nonce, NONCE_LEN);
		put_hex((char *)q + TC_FIELD + NONCE_LEN, (uint64_t)s, 6);
		slen = (size_t)(q - (unsigned char *)suf) + TC_FIELD + REF_LEN;
		p->num_off = slen - 10; /* from the start of suf, for now */
		break;
	}
	case P_REDIS:
		snprintf(name, sizeof name, "s%ld", s);
		plen = (size_t)snprintf(pre, sizeof pre,
		                        "*7\r\n$4\r\nXADD\r\n$%zu\r\n%s\r\n"
		                        "$1\r\n*\r\n$1\r\ns\r\n$%zu\r\n%s\r\n"
		                        "$1\r\nb\r\n$%ld\r\n",
		                        strlen(REDIS_STREAM), REDIS_STREAM,
		                        strlen(name), name, G.size);
		slen = (size_t)snprintf(suf, sizeof suf, "\r\n");
		break;
	default:
		inbox(s, box, sizeof box);
		plen = (size_t)snprintf(pre, sizeof pre,
		                        "PUB %s %s0000000000 %ld\r\n",
		                        JS_SUBJECT, box, G.size);
		p->num_off = plen - 10 - 2 -
		             (size_t)snprintf(NULL, 0, " %ld", G.size);
		slen = (size_t)snprintf(suf, sizeof suf, "\r\n");
		break;
	}
	p->len = plen + (size_t)G.size + slen;
	p->payload_off = plen;
	if (G.proto == P_TCPCHAT)
		p->num_off += plen + (size_t)G.size;
	p->frame = xmalloc(p->len);
	memcpy(p->frame, pre, plen);
	fill_payload(p->frame + plen);
	memcpy(p->frame + plen + (size_t)G.size, suf, slen);
}

void durable_setup(void)
{
	/* refs and inboxes of this run differ from those of earlier runs
	 * against the same server (which would take them for resends) */
	uint64_t seed = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32);
	put_hex(D.nonce, seed * 0x9e3779b97f4a7c15u >> 32, NONCE_LEN);
	D.nonce[NONCE_LEN] = '\0';
	D.pubs = xcalloc((size_t)G.senders, sizeof *D.pubs);
	for (long s = 0; s < G.senders; s++) {
		struct pub *p = &D.pubs[s];
		build_pub(s, p);
		if (p->len > G.frame_len)
			G.frame_len = p->len; /* for batch_cap */
		p->sent_at = xcalloc((size_t)G.window, sizeof *p->sent_at);
		p->done = xcalloc((size_t)G.window, 1);
	}
	D.created = G.proto != P_NATS;
}

/* Queues count messages of publisher s, stamped with now. */
static void send_msgs(long s, uint64_t count, int64_t now)
{
	struct conn *c = &G.conns[s];
	struct pub *p = &D.pubs[s];
	char *o = out_reserve(c, p->len * count);
	int in_window = now >= G.t_start && now < G.t_end;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t n = p->next++;
		char *pl = o + p->payload_off;
		memcpy(o, p->frame, p->len);
		stamp_payload(pl, now, s, n);
		if (p->num_off)
			put_hex(o + p->num_off, n, 10);
		p->sent_at[n % (uint64_t)G.window] = now;
		p->done[n % (uint64_t)G.window] = 0;
		o += p->len;
	}
	c->outlen += p->len * count;
	G.sent_total += count;
	if (in_window)
		D.sent_win += count;
}

void durable_refill(int64_t now)
{
	if (!sending())
		return;
	for (long s = 0; s < G.senders; s++) {
		struct conn *c = &G.conns[s];
		struct pub *p = &D.pubs[s];
		uint64_t inflight = p->next - p->base;
		if (c->state != C_READY || inflight >= (uint64_t)G.window ||
		    out_pending(c) >= OUT_LIMIT)
			continue;
		send_msgs(s, batch_cap((uint64_t)G.window - inflight), now);
		conn_flush(c);
	}
}

int durable_drain_done(void)
{
	for (long s = 0; s < G.senders; s++)
		if (G.conns[s].state == C_READY &&
		    D.pubs[s].base < D.pubs[s].next)
			return 0;
	return 1;
}

/* The answer to message n of publisher s: ok (acknowledged) or refused. */
static void answer(long s, uint64_t n, int ok, int64_t now)
{
	struct pub *p = &D.pubs[s];
	uint64_t slot = n % (uint64_t)G.window;
	if (n < p->base || n >= p->next || p->done[slot]) {
		D.stray++;
		warn(&D.warned_stray,
		     "an answer to message %" PRIu64 " of publisher %ld, "
		     "which is not in flight",
		     n, s);
		return;
	}
	p->done[slot] = 1;
	if (ok) {
		int64_t t = p->sent_at[slot];
		D.acked++;
		if (now >= G.t_start && now < G.t_end)
			D.acked_win++;
		if (t >= G.t_start && t < G.t_end)
			hist_add(&G.lat, now - t);
	} else {
		D.errors++;
	}
	while (p->base < p->next && p->done[p->base % (uint64_t)G.window])
		p->base++;
}

void durable_tc_ack(struct conn *c, const char *ref, size_t rlen, int ok,
                    int64_t now)
{
	uint64_t s, n;
	if (!ref || rlen != REF_LEN || memcmp(ref, D.nonce, NONCE_LEN) ||
	    get_hex(ref + NONCE_LEN, 6, &s) ||
	    get_hex(ref + NONCE_LEN + 6, 10, &n) || s != c->idx) {
		D.stray++;
		warn(&D.warned_stray, "an %s with a ref that is not ours: %.*s",
		     ok ? "ACK" : "ERROR", (int)(rlen < 64 ? rlen : 64),
		     ref ? ref : "");
		return;
	}
	answer((long)s, n, ok, now);
}

void durable_fifo_reply(struct conn *c, int ok, int64_t now)
{
	struct pub *p = &D.pubs[c->idx];
	if (p->replies >= p->next) {
		D.stray++;
		warn(&D.warned_stray, "a reply with no XADD in flight");
		return;
	}
	answer((long)c->idx, p->replies++, ok, now);
}

/* Does the JSON text at data[0..n) hold "key"? (The replies are small
 * objects of the server's; a key inside a string value would do too.) */
static int json_has(const char *data, size_t n, const char *key)
{
	size_t k = strlen(key);
	for (size_t i = 0; i + k + 2 <= n; i++)
		if (data[i] == '"' && !memcmp(data + i + 1, key, k) &&
		    data[i + 1 + k] == '"')
			return 1;
	return 0;
}

int durable_nats_msg(struct conn *c, const char *subj, size_t slen,
                     const char *data, size_t n, int64_t now)
{
	char box[64];
	size_t bl = (size_t)inbox((long)c->idx, box, sizeof box);
	uint64_t num;
	int ok = json_has(data, n, "seq") && !json_has(data, n, "error");
	if (c->idx == 0 && !D.created && slen == 7 + NONCE_LEN + 7 &&
	    !memcmp(subj + 7, D.nonce, NONCE_LEN) &&
	    !memcmp(subj + 7 + NONCE_LEN, ".create", 7)) {
		if (json_has(data, n, "error"))
			die("nats: creating the stream " JS_STREAM
			    " failed: %.*s",
			    (int)(n < 300 ? n : 300), data);
		D.created = 1;
		conn_ready(c);
		return 0;
	}
	if (slen != bl + 10 || memcmp(subj, box, bl) ||
	    get_hex(subj + bl, 10, &num))
		return -1;
	if (!ok)
		warn(&D.warned_error, "nats: a publish was refused: %.*s",
		     (int)(n < 200 ? n : 200), data);
	answer((long)c->idx, num, ok, now);
	return 0;
}

static const char *how(void)
{
	switch (G.proto) {
	case P_TCPCHAT:
		return "TEXT with a ref to #r000, answered by ACK";
	case P_REDIS:
		return "XADD " REDIS_STREAM ", answered by the stream id";
	default:
		return "PUB " JS_SUBJECT " to JetStream stream " JS_STREAM
		       ", answered by a PubAck";
	}
}

int durable_report(void)
{
	double win = (double)(G.s1.t - G.s0.t) / NS;
	double drain = (double)(mono_ns() - G.s1.t) / NS;
	double sent_ps = (double)D.sent_win / G.duration;
	double acked_ps = win > 0 ? (double)D.acked_win / win : 0;
	double bench_cpu =
	        win > 0 ? (G.s1.bench_cpu - G.s0.bench_cpu) / win * 100.0 : -1;
	double p50 = hist_quantile(&G.lat, 0.50);
	double p99 = hist_quantile(&G.lat, 0.99);
	double p999 = hist_quantile(&G.lat, 0.999);
	double mx = G.lat.hist_n ? (double)G.lat.hist_max : -1;
	double srv_cpu = -1, per_1k = -1;
	uint64_t unacked = 0;
	long rss = -1, hwm = -1;
	for (long s = 0; s < G.senders; s++)
		unacked += D.pubs[s].next - D.pubs[s].base;
	if (G.server_pid > 0) {
		if (G.s0.srv_ok && G.s1.srv_ok)
			srv_cpu = (double)(G.s1.srv_ticks - G.s0.srv_ticks) /
			          (double)sysconf(_SC_CLK_TCK);
		if (srv_cpu >= 0 && D.acked_win)
			per_1k = srv_cpu * 1000.0 / (double)D.acked_win;
		servers_mem(&rss, &hwm);
	}

	printf("== " PROG ": %s durable, %s:%d%s ==\n", proto_names[G.proto],
	       G.host, G.port, tls_note());
	printf("publishers      %ld, each with at most %ld messages in flight; "
	       "logged in in %.2f s\n",
	       G.senders, G.window, (double)G.setup_ns / NS);
	printf("load            payload %ld B; %s\n", G.size, how());
	printf("timing          warm-up %.1f s, measured %.2f s, drain "
	       "%.2f s\n",
	       G.warmup, win, drain);
	printf("sent            %" PRIu64 " in window = %.0f msg/s\n",
	       D.sent_win, sent_ps);
	printf("acked           %" PRIu64 " in window = %.0f msg/s; %" PRIu64
	       " refused, %" PRIu64 " unanswered at the end%s\n",
	       D.acked_win, acked_ps, D.errors, unacked,
	       unacked ? "  <-- UNANSWERED" : "");
	if (G.lat.hist_n)
		printf("ack latency     p50 %.1f us, p99 %.1f us, p99.9 %.1f "
		       "us, "
		       "max %.1f us (%" PRIu64 " samples)\n",
		       p50 / 1e3, p99 / 1e3, p999 / 1e3, mx / 1e3,
		       G.lat.hist_n);
	else
		printf("ack latency     no samples\n");
	if (srv_cpu >= 0)
		printf("server cpu      pid %ld: %.2f s in window (%.0f%% of "
		       "one "
		       "core), %.4f s per 1000 acked messages\n",
		       G.server_pid, srv_cpu,
		       win > 0 ? srv_cpu / win * 100 : 0.0, per_1k);
	if (G.server_pid > 0)
		printf("server memory   rss %ld kB, peak (VmHWM) %ld kB\n", rss,
		       hwm);
	printf("bench cpu       %.0f%% of one core%s\n", bench_cpu,
	       bench_cpu >= 90 ? "  <-- the bench may be the bottleneck" : "");
	printf("other           %" PRIu64 " texts of the other publishers "
	       "seen, %" PRIu64 " notices, %" PRIu64 " stray answers, %" PRIu64
	       " closed\n",
	       G.other_rx, G.notices, D.stray, G.closed);

	struct kv kv = {.len = 0};
	kv_add(&kv, "proto", "%s", proto_names[G.proto]);
	kv_add(&kv, "mode", "durable");
	kv_add(&kv, "senders", "%ld", G.senders);
	kv_add(&kv, "size", "%ld", G.size);
	kv_add(&kv, "window", "%ld", G.window);
	kv_add(&kv, "duration", "%.2f", win);
	kv_num(&kv, "sent_per_s", sent_ps, 0);
	kv_num(&kv, "acked_per_s", acked_ps, 0);
	kv_add(&kv, "acked", "%" PRIu64, D.acked);
	kv_add(&kv, "refused", "%" PRIu64, D.errors);
	kv_add(&kv, "unacked", "%" PRIu64, unacked);
	kv_num(&kv, "p50_us", p50 < 0 ? -1 : p50 / 1e3, 1);
	kv_num(&kv, "p99_us", p99 < 0 ? -1 : p99 / 1e3, 1);
	kv_num(&kv, "p999_us", p999 < 0 ? -1 : p999 / 1e3, 1);
	kv_num(&kv, "max_us", mx < 0 ? -1 : mx / 1e3, 1);
	kv_num(&kv, "server_cpu_s", srv_cpu, 2);
	kv_num(&kv, "server_cpu_s_per_1k", per_1k, 5);
	kv_num(&kv, "server_rss_kb", (double)rss, 0);
	kv_num(&kv, "server_hwm_kb", (double)hwm, 0);
	kv_num(&kv, "bench_cpu_pct", bench_cpu, 0);
	kv_add(&kv, "connections", "%ld", G.nconns);
	kv_add(&kv, "setup_s", "%.2f", (double)G.setup_ns / NS);
	kv_add(&kv, "closed", "%" PRIu64, G.closed);
	kv_add(&kv, "samples", "%" PRIu64, G.lat.hist_n);
	kv_add(&kv, "stray", "%" PRIu64, D.stray);
	printf("RESULT%s\n", kv.buf);

	if (D.acked_win == 0) {
		fprintf(stderr,
		        PROG
		        ": no acknowledgment arrived in the measured window "
		        "(%s)\n",
		        G.proto == P_TCPCHAT ? "does the server send ACKs?"
		                             : "server stalled?");
		return 1;
	}
	if (G.closed || D.errors) {
		fprintf(stderr,
		        PROG ": %" PRIu64 " connection(s) closed, %" PRIu64
		             " message(s) refused\n",
		        G.closed, D.errors);
		return 1;
	}
	return 0;
}
