/* Integration tests of the server at its limits, over loopback: many
 * clients, garbage, oversized frames, slow consumers, timers, the client
 * limit, shutdown, mixed and custom codecs, IPv6, address errors and
 * running out of file descriptors. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static const tcpchat_codec *bin(void)
{
	return tcpchat_codec_binary();
}

/* ---- events seen by the server's handler --------------------------------- */

enum { REC_CAP = 2048 };

struct evrec {
	int type, reason, error, family;
	char name[TCPCHAT_NAME_MAX + 1];
	char codec[16];
};

/* Written by the loop thread, read by the test: guarded by mu. */
struct rec {
	pthread_mutex_t mu;
	struct evrec ev[REC_CAP];
	int n, lost;
	int drop_events;
	uint64_t drop_max;
	char drop_name[TCPCHAT_NAME_MAX + 1];
	int bad_events; /* events with fields that make no sense */
};

static void copy_name(char *dst, tcpchat_str s)
{
	size_t n = s.len < TCPCHAT_NAME_MAX ? s.len : TCPCHAT_NAME_MAX;
	if (n)
		memcpy(dst, s.ptr, n);
	dst[n] = '\0';
}

static int on_event(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	struct rec *r = ud;
	if (ev->type == TCPCHAT_SEV_LOG || ev->type == TCPCHAT_SEV_MESSAGE)
		return 0;
	pthread_mutex_lock(&r->mu);
	if (ev->conn_id == 0 || !ev->codec || !ev->peer)
		r->bad_events++;
	if (ev->type == TCPCHAT_SEV_DROP) {
		r->drop_events++;
		if (ev->dropped == 0)
			r->bad_events++;
		if (ev->dropped > r->drop_max)
			r->drop_max = ev->dropped;
		copy_name(r->drop_name, ev->name);
	} else if (r->n < REC_CAP) {
		struct evrec *e = &r->ev[r->n++];
		e->type = ev->type;
		e->reason = ev->reason;
		e->error = ev->error;
		e->family = ev->peer ? ev->peer->sa_family : -1;
		copy_name(e->name, ev->name);
		snprintf(e->codec, sizeof e->codec, "%s",
		         ev->codec ? ev->codec : "?");
	} else {
		r->lost++;
	}
	pthread_mutex_unlock(&r->mu);
	return 0;
}

static struct rec *rec_new(void)
{
	struct rec *r = calloc(1, sizeof *r);
	ck_assert_ptr_nonnull(r);
	pthread_mutex_init(&r->mu, NULL);
	return r;
}

static void rec_free(struct rec *r)
{
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* Events of a type (and reason >= 0, name != NULL) recorded so far. */
static int rec_count(struct rec *r, int type, int reason, const char *name)
{
	int k = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n; i++) {
		const struct evrec *e = &r->ev[i];
		if (e->type == type && (reason < 0 || e->reason == reason) &&
		    (!name || strcmp(e->name, name) == 0))
			k++;
	}
	pthread_mutex_unlock(&r->mu);
	return k;
}

/* Copies the last event of a type for name (any name if NULL). */
static int rec_last(struct rec *r, int type, const char *name,
                    struct evrec *out)
{
	int found = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n; i++) {
		const struct evrec *e = &r->ev[i];
		if (e->type == type && (!name || strcmp(e->name, name) == 0)) {
			*out = *e;
			found = 1;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return found;
}

struct rec_cond {
	struct rec *r;
	int type, reason, want;
	const char *name;
};

static int rec_reached(void *arg)
{
	struct rec_cond *c = arg;
	return rec_count(c->r, c->type, c->reason, c->name) >= c->want;
}

static int rec_wait(struct rec *r, int type, int reason, const char *name,
                    int want)
{
	struct rec_cond c = {r, type, reason, want, name};
	return tu_wait_until(rec_reached, &c, TU_TIMEOUT);
}

/* ---- servers ------------------------------------------------------------- */

static void srv_opt(tcpchat_server *srv, int opt, long long v)
{
	ck_assert_int_eq(tcpchat_server_set_option(srv, opt, v), 0);
}

/* A server with r (if any) as handler and the timers of
 * tu_server_timers(). */
static tcpchat_server *srv_new(struct rec *r)
{
	tcpchat_server *srv = NULL;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	ck_assert_ptr_nonnull(srv);
	ck_assert_int_eq(tu_server_timers(srv), 0);
	if (r)
		tcpchat_server_set_handler(srv, on_event, r);
	return srv;
}

/* Listens on 127.0.0.1 port 0 as the index-th listener; returns the port. */
static int srv_listen(tcpchat_server *srv, int index,
                      const tcpchat_codec *codec)
{
	ck_assert_int_eq(tcpchat_server_listen(srv, "127.0.0.1:0", codec), 0);
	int port = tcpchat_server_port(srv, index);
	ck_assert_int_gt(port, 0);
	return port;
}

struct stat_cond {
	tcpchat_server *srv;
	uint64_t clients, users; /* UINT64_MAX: any */
};

static int stats_reached(void *arg)
{
	struct stat_cond *c = arg;
	tcpchat_server_stats s = tu_stats(c->srv);
	return (c->clients == UINT64_MAX || s.clients == c->clients) &&
	       (c->users == UINT64_MAX || s.users == c->users);
}

static int wait_counts(tcpchat_server *srv, uint64_t clients, uint64_t users)
{
	struct stat_cond c = {srv, clients, users};
	return tu_wait_until(stats_reached, &c, TU_TIMEOUT);
}

/* ---- peers ---------------------------------------------------------------- */

/* Like tu_peer_connect, with SO_RCVBUF set before connecting (0: leave). */
static int peer_connect_rcvbuf(struct tu_peer *p, int port,
                               const tcpchat_codec *codec, int rcvbuf)
{
	memset(p, 0, sizeof *p);
	p->codec = codec ? codec : bin();
	p->scratch_len = 1 << 20;
	p->scratch = malloc(p->scratch_len);
	p->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (p->fd < 0 || !p->scratch)
		return TCPCHAT_ESYS;
	if (rcvbuf > 0)
		setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		           sizeof rcvbuf);
	int one = 1;
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return connect(p->fd, (struct sockaddr *)&a, sizeof a) == 0
	               ? 0
	               : TCPCHAT_ESYS;
}

/* One non-blocking read into p->in.  1: bytes read, 0: none yet, -1: the
 * connection is closed (p->closed set). */
static int peer_fill(struct tu_peer *p)
{
	if (p->closed)
		return -1;
	if (tcpchat_buf_reserve(&p->in, 32768))
		return -1;
	ssize_t r = recv(p->fd, p->in.data + p->in.len, 32768, MSG_DONTWAIT);
	if (r > 0) {
		p->in.len += (size_t)r;
		return 1;
	}
	if (r < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	p->closed = 1;
	return -1;
}

static int send_type(struct tu_peer *p, uint32_t type)
{
	tcpchat_msg m = {.type = type};
	return tu_peer_send_msg(p, &m);
}

/* tu_peer_expect that answers every PING with a PONG on the way. */
static int expect_ponging(struct tu_peer *p, uint32_t type, struct tu_msg *m,
                          int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	for (int guard = 0; guard < 100000; guard++) {
		int64_t left = deadline - tu_now_ms();
		int rc = tu_peer_recv(p, m, left > 0 ? (int)left : 0);
		if (rc != 1 || m->type == type)
			return rc;
		if (m->type == TCPCHAT_MSG_PING &&
		    send_type(p, TCPCHAT_MSG_PONG) != 0)
			return -1;
	}
	return 0;
}

/* Sends a formatted TEXT. */
static void send_textf(struct tu_peer *p, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void send_textf(struct tu_peer *p, const char *fmt, ...)
{
	char text[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	ck_assert_int_eq(tu_peer_send_text(p, text), 0);
}

/* Expects the next TEXT on p to come from sender with body. */
static void expect_text(struct tu_peer *p, const char *sender, const char *body)
{
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_expect(p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, sender);
	ck_assert_str_eq(m.body, body);
}

/* Expects an ERROR with the given (negative) code, then the close. */
static void expect_error_close(struct tu_peer *p, int err)
{
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_expect(p, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(-(int)m.code, err);
	ck_assert_int_eq(tu_peer_wait_closed(p, TU_TIMEOUT), 1);
}

/* ---- 1. many concurrent clients ------------------------------------------ */

/* The loops over every message below check with plain ifs and fail with
 * ck_abort_msg(): each passing ck_assert costs a write(2) to the Check
 * runner, and hundreds of thousands of them are most of the run time
 * under valgrind. */

/* What is wrong with a TEXT that client i received from the others in
 * many_clients (next: per sender, the number expected next), or NULL. */
static const char *many_bad(const struct tu_msg *m, int i, int n, int *next)
{
	int s = -1, k = -1;
	char name[16];
	if (sscanf(m->body, "u%d m%d", &s, &k) != 2 || s < 0 || s >= n)
		return "not one of the texts sent";
	if (s == i)
		return "its own text"; /* not to its sender */
	snprintf(name, sizeof name, "u%d", s);
	if (strcmp(m->sender, name) != 0)
		return "the wrong sender";
	if (k != next[s])
		return "out of order"; /* each sender's messages in order */
	next[s]++;
	return NULL;
}

START_TEST(many_clients)
{
	enum { N = 200, M = 5, WANT = (N - 1) * M };
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	srv_opt(srv, TCPCHAT_SOPT_QUEUE_FRAMES, 100000);
	srv_opt(srv, TCPCHAT_SOPT_QUEUE_BYTES, 64LL << 20);
	/* No PINGs: nobody answers them, and msgs_out is counted below. */
	srv_opt(srv, TCPCHAT_SOPT_IDLE_TIMEOUT, 0);
	/* Every join announced, whatever N is. */
	srv_opt(srv, TCPCHAT_SOPT_ANNOUNCE_MAX, N);
	/* All of them from 127.0.0.1, at once. */
	srv_opt(srv, TCPCHAT_SOPT_ADDR_CONNS, 0);
	srv_opt(srv, TCPCHAT_SOPT_ADDR_RATE, 0);
	int port = srv_listen(srv, 0, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);

	struct tu_peer *p = calloc(N, sizeof *p);
	int *got = calloc(N, sizeof *got);
	int *next = calloc((size_t)N * N, sizeof *next);
	struct pollfd *pf = calloc(N, sizeof *pf);
	ck_assert(p && got && next && pf);
	char name[16];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "u%d", i);
		ck_assert_int_eq(tu_peer_join(&p[i], port, bin(), name), 0);
	}
	ck_assert_int_eq(wait_counts(srv, N, N), 1);

	/* Everyone talks at once: round k, every client sends its k-th. */
	for (int k = 0; k < M; k++)
		for (int i = 0; i < N; i++)
			send_textf(&p[i], "u%d m%d", i, k);

	/* Read everybody with poll() so no connection stalls. */
	int done = 0;
	int64_t deadline = tu_now_ms() + tu_ms(30000);
	while (done < N) {
		ck_assert_msg(tu_now_ms() < deadline, "only %d of %d done",
		              done, N);
		for (int i = 0; i < N; i++) {
			pf[i].fd = got[i] < WANT ? p[i].fd : -1;
			pf[i].events = POLLIN;
			pf[i].revents = 0;
		}
		int n = poll(pf, N, 100);
		ck_assert_int_ge(n, 0);
		for (int i = 0; i < N && n > 0; i++) {
			if (!pf[i].revents)
				continue;
			n--;
			ck_assert_int_ge(peer_fill(&p[i]), 0);
			struct tu_msg m;
			int rc;
			while ((rc = tu_peer_take(&p[i], &m)) == 1) {
				if (m.type != TCPCHAT_MSG_TEXT)
					continue;
				const char *bad;
				bad = many_bad(&m, i, N, &next[i * N]);
				if (bad)
					ck_abort_msg(
					        "u%d got '%s' from '%s': %s", i,
					        m.body, m.sender, bad);
				if (++got[i] > WANT)
					ck_abort_msg("u%d got more than %d", i,
					             WANT);
				if (got[i] == WANT)
					done++;
			}
			ck_assert_int_eq(rc, 0);
		}
	}
	for (int i = 0; i < N; i++)
		for (int s = 0; s < N; s++)
			if (next[i * N + s] != (s == i ? 0 : M))
				ck_abort_msg("u%d got %d texts from u%d", i,
				             next[i * N + s], s);

	/* in: N HELLO + N*M TEXT.  out: N WELCOME, the JOIN notices
	 * (0 + 1 + ... + N-1) and every TEXT to N-1 others. */
	tcpchat_server_stats st = tu_stats(srv);
	ck_assert_uint_eq(st.msgs_in, N + N * M);
	ck_assert_uint_eq(st.msgs_out, N + N * (N - 1) / 2 + N * M * (N - 1));
	ck_assert_uint_eq(st.users, N);
	ck_assert_uint_eq(st.clients, N);
	ck_assert_uint_eq(st.accepted, N);
	ck_assert_uint_eq(st.dropped, 0);
	ck_assert_uint_eq(st.proto_errors, 0);
	ck_assert_uint_eq(st.refused, 0);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_JOIN, -1, NULL), N);

	for (int i = 0; i < N; i++)
		tu_peer_close(&p[i]);
	ck_assert_int_eq(wait_counts(srv, 0, 0), 1);
	/* (CLOSED, or ERROR when a close with unread LEAVE notices sent a
	 * reset) */
	ck_assert_int_eq(rec_wait(r, TCPCHAT_SEV_LEAVE, -1, NULL, N), 1);
	ck_assert_int_eq(
	        rec_count(r, TCPCHAT_SEV_LEAVE, TCPCHAT_REASON_CLOSED, NULL) +
	                rec_count(r, TCPCHAT_SEV_LEAVE, TCPCHAT_REASON_ERROR,
	                          NULL),
	        N);
	tu_server_stop(srv);
	ck_assert_int_eq(r->bad_events, 0);
	free(pf);
	free(next);
	free(got);
	free(p);
	rec_free(r);
}
END_TEST

/* ---- 2. garbage and oversized frames ------------------------------------- */

static uint32_t rng_state = 0x12345678u;

static uint32_t rng(void)
{
	uint32_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return rng_state = x;
}

/* A server with a binary, a line and a json listener; alice and bob join
 * over binary to watch. */
struct garbage_fx {
	struct rec *r;
	tcpchat_server *srv;
	int port_bin, port_line, port_json;
	struct tu_peer alice, bob;
};

static void garbage_setup(struct garbage_fx *f)
{
	f->r = rec_new();
	f->srv = srv_new(f->r);
	f->port_bin = srv_listen(f->srv, 0, NULL);
	f->port_line = srv_listen(f->srv, 1, tcpchat_codec_line());
	f->port_json = srv_listen(f->srv, 2, tcpchat_codec_json());
	ck_assert_int_eq(tcpchat_server_start(f->srv), 0);
	ck_assert_int_eq(tu_peer_join(&f->alice, f->port_bin, bin(), "alice"),
	                 0);
	ck_assert_int_eq(tu_peer_join(&f->bob, f->port_bin, bin(), "bob"), 0);
	struct tu_msg m;
	ck_assert_int_eq(
	        tu_peer_expect(&f->alice, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m.sender, "bob");
}

/* alice and bob still chat, and the culprit's LEAVE (if it joined) came
 * first. */
static void garbage_still_chatting(struct garbage_fx *f, const char *left,
                                   int round)
{
	struct tu_msg m;
	if (left) {
		ck_assert_int_eq(tu_peer_expect(&f->alice, TCPCHAT_MSG_LEAVE,
		                                &m, TU_TIMEOUT),
		                 1);
		ck_assert_str_eq(m.sender, left);
		ck_assert_uint_eq(m.code, TCPCHAT_REASON_ERROR);
	}
	char text[32];
	snprintf(text, sizeof text, "still here %d", round);
	ck_assert_int_eq(tu_peer_send_text(&f->bob, text), 0);
	expect_text(&f->alice, "bob", text);
	snprintf(text, sizeof text, "me too %d", round);
	ck_assert_int_eq(tu_peer_send_text(&f->alice, text), 0);
	expect_text(&f->bob, "alice", text);
}

static void garbage_teardown(struct garbage_fx *f)
{
	tu_peer_close(&f->alice);
	tu_peer_close(&f->bob);
	tu_server_stop(f->srv);
	ck_assert_int_eq(f->r->bad_events, 0);
	rec_free(f->r);
}

START_TEST(garbage_binary)
{
	struct garbage_fx f;
	garbage_setup(&f);
	struct tu_peer g;
	struct evrec e;
	unsigned char junk[4 + 200];

	/* A joined client sends a frame with a sane length but random
	 * contents: a version byte that is not 1. */
	ck_assert_int_eq(tu_peer_join(&g, f.port_bin, bin(), "gar1"), 0);
	ck_assert_int_eq(tu_peer_expect(&f.alice, TCPCHAT_MSG_JOIN,
	                                &(struct tu_msg){0}, TU_TIMEOUT),
	                 1);
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)rng();
	junk[0] = junk[1] = 0;
	junk[2] = 0;
	junk[3] = 200;
	junk[4] = 0xEE; /* version */
	ck_assert_int_eq(tu_peer_send_raw(&g, junk, sizeof junk), 0);
	expect_error_close(&g, TCPCHAT_EPROTO);
	tu_peer_close(&g);
	garbage_still_chatting(&f, "gar1", 1);
	ck_assert_int_eq(rec_last(f.r, TCPCHAT_SEV_LEAVE, "gar1", &e), 1);
	ck_assert_int_eq(e.reason, TCPCHAT_REASON_ERROR);
	ck_assert_int_eq(e.error, TCPCHAT_EPROTO);
	ck_assert_uint_eq(tu_stats(f.srv).proto_errors, 1);

	/* Random bytes (after a small length) before any HELLO. */
	ck_assert_int_eq(tu_peer_connect(&g, f.port_bin, bin(), 0), 0);
	junk[4] = 0x77;
	ck_assert_int_eq(tu_peer_send_raw(&g, junk, sizeof junk), 0);
	expect_error_close(&g, TCPCHAT_EPROTO);
	tu_peer_close(&g);
	garbage_still_chatting(&f, NULL, 2);
	ck_assert_int_eq(rec_wait(f.r, TCPCHAT_SEV_DISCONNECT,
	                          TCPCHAT_REASON_ERROR, NULL, 1),
	                 1);
	ck_assert_int_eq(rec_last(f.r, TCPCHAT_SEV_DISCONNECT, NULL, &e), 1);
	ck_assert_int_eq(e.error, TCPCHAT_EPROTO);
	ck_assert_uint_eq(tu_stats(f.srv).proto_errors, 2);

	/* A well-formed frame of a type a client may not send. */
	ck_assert_int_eq(tu_peer_join(&g, f.port_bin, bin(), "gar2"), 0);
	ck_assert_int_eq(send_type(&g, TCPCHAT_MSG_WELCOME), 0);
	expect_error_close(&g, TCPCHAT_EPROTO);
	tu_peer_close(&g);
	ck_assert_int_eq(tu_peer_expect(&f.alice, TCPCHAT_MSG_JOIN,
	                                &(struct tu_msg){0}, TU_TIMEOUT),
	                 1);
	garbage_still_chatting(&f, "gar2", 3);
	ck_assert_uint_eq(tu_stats(f.srv).proto_errors, 3);

	/* An HTTP client on the binary port: "GET " is a length of about
	 * 1.2 GB, refused as too large. */
	ck_assert_int_eq(tu_peer_connect(&g, f.port_bin, bin(), 0), 0);
	const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	ck_assert_int_eq(tu_peer_send_raw(&g, http, strlen(http)), 0);
	expect_error_close(&g, TCPCHAT_EMSGSIZE);
	tu_peer_close(&g);
	garbage_still_chatting(&f, NULL, 4);
	ck_assert_uint_eq(tu_stats(f.srv).proto_errors, 4);
	ck_assert_uint_eq(tu_stats(f.srv).users, 2);
	garbage_teardown(&f);
}
END_TEST

START_TEST(garbage_line)
{
	struct garbage_fx f;
	garbage_setup(&f);
	const tcpchat_codec *line = tcpchat_codec_line();
	struct tu_peer g;
	struct tu_msg m;

	ck_assert_int_eq(tu_peer_join(&g, f.port_line, line, "lina"), 0);
	ck_assert_int_eq(
	        tu_peer_expect(&f.alice, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m.sender, "lina");

	/* A line with NUL bytes decodes as a TEXT, which the server refuses
	 * (EBADMSG: control characters) without closing the connection;
	 * nobody receives it.  Same for invalid UTF-8. */
	static const char nul_line[] = "hel\0lo\0\n";
	ck_assert_int_eq(tu_peer_send_raw(&g, nul_line, sizeof nul_line - 1),
	                 0);
	ck_assert_int_eq(tu_peer_expect(&g, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_EBADMSG);
	ck_assert_int_eq(tu_peer_send_raw(&g, "\xff\xfe\xc0\x80\n", 5), 0);
	ck_assert_int_eq(tu_peer_expect(&g, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_EBADMSG);
	ck_assert_int_eq(tu_peer_send_raw(&g, "fine\n", 5), 0);
	expect_text(&f.alice, "lina", "fine"); /* the first TEXT alice sees */
	expect_text(&f.bob, "lina", "fine");
	ck_assert_uint_eq(tu_stats(f.srv).proto_errors, 0);
	garbage_still_chatting(&f, NULL, 1);

	/* 100 KiB without a newline: larger than MAX_FRAME (64 KiB). */
	enum { BIG = 100 * 1024 };
	char *big = malloc(BIG);
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', BIG);
	(void)tu_peer_send_raw(&g, big, BIG); /* may fail once closed */
	free(big);
	expect_error_close(&g, TCPCHAT_EMSGSIZE);
	tu_peer_close(&g);
	garbage_still_chatting(&f, "lina", 2);
	ck_assert_uint_eq(tu_stats(f.srv).proto_errors, 1);

	/* Garbage as the name: refused as a bad name, and closed. */
	ck_assert_int_eq(tu_peer_connect(&g, f.port_line, line, 0), 0);
	ck_assert_int_eq(tu_peer_send_raw(&g, "\x01\x02 \x7f junk\n", 10), 0);
	expect_error_close(&g, TCPCHAT_EBADNAME);
	tu_peer_close(&g);
	garbage_still_chatting(&f, NULL, 3);
	ck_assert_uint_eq(tu_stats(f.srv).refused, 1);
	garbage_teardown(&f);
}
END_TEST

START_TEST(garbage_json)
{
	struct garbage_fx f;
	garbage_setup(&f);
	const tcpchat_codec *json = tcpchat_codec_json();
	struct tu_peer g;
	struct tu_msg m;

	ck_assert_int_eq(tu_peer_join(&g, f.port_json, json, "jay"), 0);
	ck_assert_int_eq(tu_peer_send_text(&g, "valid first"), 0);
	expect_text(&f.alice, "jay", "valid first");
	expect_text(&f.bob, "jay", "valid first");
	/* An object that never closes. */
	const char *bad = "{\"type\":\"text\",\"body\":\"unterminated\n";
	ck_assert_int_eq(tu_peer_send_raw(&g, bad, strlen(bad)), 0);
	expect_error_close(&g, TCPCHAT_EPROTO);
	tu_peer_close(&g);
	garbage_still_chatting(&f, "jay", 1);
	ck_assert_uint_eq(tu_stats(f.srv).proto_errors, 1);

	/* Not JSON at all, before the handshake. */
	ck_assert_int_eq(tu_peer_connect(&g, f.port_json, json, 0), 0);
	ck_assert_int_eq(tu_peer_send_raw(&g, "hello there\n", 12), 0);
	expect_error_close(&g, TCPCHAT_EPROTO);
	tu_peer_close(&g);
	/* An unknown type and a duplicate key, after joining. */
	ck_assert_int_eq(tu_peer_join(&g, f.port_json, json, "jay"), 0);
	const char *dup = "{\"type\":\"text\",\"body\":\"a\",\"body\":\"b\"}\n";
	ck_assert_int_eq(tu_peer_send_raw(&g, dup, strlen(dup)), 0);
	expect_error_close(&g, TCPCHAT_EPROTO);
	tu_peer_close(&g);
	ck_assert_int_eq(
	        tu_peer_expect(&f.alice, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT), 1);
	garbage_still_chatting(&f, "jay", 2);
	/* A type from a newer peer is not garbage: a non-fatal ERROR, and
	 * jay stays in the chat. */
	ck_assert_int_eq(tu_peer_join(&g, f.port_json, json, "jay"), 0);
	const char *unk = "{\"type\":\"shout\",\"body\":\"x\"}\n";
	ck_assert_int_eq(tu_peer_send_raw(&g, unk, strlen(unk)), 0);
	ck_assert_int_eq(tu_peer_expect(&g, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT),
	                 1);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_NOTYPE);
	ck_assert_int_eq(tu_peer_send_text(&g, "after the unknown type"), 0);
	expect_text(&f.alice, "jay", "after the unknown type");
	expect_text(&f.bob, "jay", "after the unknown type");
	tu_peer_close(&g);
	ck_assert_int_eq(
	        tu_peer_expect(&f.alice, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m.sender, "jay");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_CLOSED);
	garbage_still_chatting(&f, NULL, 3);
	ck_assert_uint_eq(tu_stats(f.srv).proto_errors, 3);
	garbage_teardown(&f);
}
END_TEST

START_TEST(oversized_binary_frame)
{
	struct garbage_fx f;
	garbage_setup(&f);
	struct tu_peer g;
	ck_assert_int_eq(tu_peer_join(&g, f.port_bin, bin(), "big"), 0);
	/* Only the length prefix of a 1 MiB frame: the server must refuse
	 * it at once, without waiting for the rest. */
	unsigned char pre[4] = {0x00, 0x10, 0x00, 0x00};
	int64_t t0 = tu_now_ms();
	ck_assert_int_eq(tu_peer_send_raw(&g, pre, sizeof pre), 0);
	expect_error_close(&g, TCPCHAT_EMSGSIZE);
	ck_assert_int_lt(tu_now_ms() - t0, TU_TIMEOUT);
	tu_peer_close(&g);
	garbage_still_chatting(&f, "big", 1);
	struct evrec e;
	ck_assert_int_eq(rec_last(f.r, TCPCHAT_SEV_LEAVE, "big", &e), 1);
	ck_assert_int_eq(e.error, TCPCHAT_EMSGSIZE);
	ck_assert_uint_eq(tu_stats(f.srv).proto_errors, 1);

	/* A frame of exactly the limit is fine; one byte more is not. */
	ck_assert_int_eq(tu_peer_join(&g, f.port_bin, bin(), "big"), 0);
	/* 4 + 24 header + 5 field header + body = 65536 */
	size_t body = 65536 - 4 - 24 - 5;
	char *text = malloc(body + 2);
	ck_assert_ptr_nonnull(text);
	memset(text, 'z', body);
	text[body] = '\0';
	ck_assert_int_eq(tu_peer_send_text(&g, text), 0);
	struct tu_msg *m = malloc(sizeof *m);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(
	        tu_peer_expect(&f.alice, TCPCHAT_MSG_TEXT, m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m->sender, "big");
	ck_assert_uint_eq(m->body_len, sizeof m->body - 1); /* truncated copy */
	text[body - 1] = '\0';
	strcat(text, "zz");
	ck_assert_int_eq(tu_peer_send_text(&g, text), 0);
	expect_error_close(&g, TCPCHAT_EMSGSIZE);
	tu_peer_close(&g);
	free(m);
	free(text);
	ck_assert_uint_eq(tu_stats(f.srv).proto_errors, 2);
	garbage_teardown(&f);
}
END_TEST

/* ---- 3. slow consumers --------------------------------------------------- */

enum { SLOW_N = 20000, SLOW_Q = 16, SLOW_WINDOW = 256, SLOW_LEN = 200 };
/* A burst message as the binary codec frames it for the slow peer:
 * prefix, header, "sender" and the body, each field with its header. */
enum { SLOW_FRAME = 4 + 24 + 5 + 6 + 5 + SLOW_LEN };

/* Third number of a sysctl such as tcp_wmem ("min default max"); 4 MiB
 * when it cannot be read. */
static long long sysctl_third(const char *path)
{
	long long a, b, c;
	FILE *f = fopen(path, "r");
	if (!f)
		return 4 << 20;
	int n = fscanf(f, "%lld %lld %lld", &a, &b, &c);
	fclose(f);
	return n == 3 ? c : 4 << 20;
}

static void slow_text(char *buf, int k)
{
	int n = snprintf(buf, SLOW_LEN + 1, "m%06d ", k);
	memset(buf + n, 'x', (size_t)(SLOW_LEN - n));
	buf[SLOW_LEN] = '\0';
}

/* Index of a burst message, or -1. */
/* The slow peers read with a tiny receive buffer.  Before one reads back
 * what it was sent, give it a large one: with a tiny window the kernel
 * falls back to zero-window probes, whose backoff can stall the transfer
 * for seconds. */
static void unstall(struct tu_peer *p)
{
	int big = 4 << 20;
	setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
}

static int slow_index(const struct tu_msg *m)
{
	int k = -1;
	if (m->type != TCPCHAT_MSG_TEXT || m->body_len != SLOW_LEN ||
	    sscanf(m->body, "m%d", &k) != 1)
		return -1;
	return k;
}

struct drop_cond {
	struct rec *r;
	uint64_t dropped;
};

static int drop_reached(void *arg)
{
	struct drop_cond *c = arg;
	pthread_mutex_lock(&c->r->mu);
	int ok = c->r->drop_max == c->dropped;
	pthread_mutex_unlock(&c->r->mu);
	return ok;
}

static void slow_case(int policy, int nslow)
{
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	srv_opt(srv, TCPCHAT_SOPT_QUEUE_FRAMES, SLOW_Q);
	srv_opt(srv, TCPCHAT_SOPT_SLOW_POLICY, policy);
	int port = srv_listen(srv, 0, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);

	struct tu_peer reader, sender, slow[3], late;
	struct tu_msg m;
	const char *slow_name[3] = {"slow", "slow2", "slow3"};
	ck_assert_int_le(nslow, 3);
	ck_assert_int_eq(tu_peer_join(&reader, port, bin(), "reader"), 0);
	ck_assert_int_eq(tu_peer_join(&sender, port, bin(), "sender"), 0);
	for (int i = 0; i < nslow; i++) {
		ck_assert_int_eq(
		        peer_connect_rcvbuf(&slow[i], port, bin(), 4096), 0);
		ck_assert_int_eq(tu_peer_hello(&slow[i], slow_name[i]), 0);
	}
	ck_assert_int_eq(wait_counts(srv, 2 + nslow, 2 + nslow), 1);

	/* The burst: at most SLOW_WINDOW messages between the sender and
	 * the reader, so the reader is never slow itself. */
	char text[SLOW_LEN + 1];
	int sent = 0, got = 0, slow_left = 0;
	int64_t deadline = tu_now_ms() + tu_ms(60000);
	while (got < SLOW_N) {
		ck_assert_msg(tu_now_ms() < deadline, "burst: sent %d got %d",
		              sent, got);
		/* (plain ifs per message: see many_clients) */
		while (sent < SLOW_N && sent - got < SLOW_WINDOW) {
			slow_text(text, sent++);
			if (tu_peer_send_text(&sender, text) != 0)
				ck_abort_msg("burst: sending %d failed",
				             sent - 1);
		}
		struct pollfd pfd = {.fd = reader.fd, .events = POLLIN};
		ck_assert_int_ge(poll(&pfd, 1, 100), 0);
		if (!pfd.revents)
			continue;
		ck_assert_int_ge(peer_fill(&reader), 0);
		int rc;
		while ((rc = tu_peer_take(&reader, &m)) == 1) {
			if (m.type == TCPCHAT_MSG_LEAVE) {
				ck_assert_uint_eq(m.code, TCPCHAT_REASON_SLOW);
				slow_left++;
				continue;
			}
			if (m.type != TCPCHAT_MSG_TEXT)
				continue;
			if (strcmp(m.sender, "sender") != 0 ||
			    slow_index(&m) != got)
				ck_abort_msg(
				        "burst: the reader got '%.8s' from "
				        "'%s' for text %d",
				        m.body, m.sender, got);
			got++;
		}
		ck_assert_int_eq(rc, 0);
	}
	/* The server still answers at once. */
	int sender_left = 0;
	ck_assert_int_eq(send_type(&sender, TCPCHAT_MSG_PING), 0);
	for (;;) {
		ck_assert_int_eq(tu_peer_recv(&sender, &m, TU_TIMEOUT), 1);
		if (m.type == TCPCHAT_MSG_PONG)
			break;
		if (m.type == TCPCHAT_MSG_LEAVE) {
			ck_assert_uint_eq(m.code, TCPCHAT_REASON_SLOW);
			sender_left++;
		}
	}
	tcpchat_server_stats st = tu_stats(srv);
	ck_assert_uint_eq(st.proto_errors, 0);

	if (policy == TCPCHAT_SLOW_DISCONNECT) {
		/* Every slow peer is closed with reason SLOW; everyone else
		 * saw it leave.  Exactly one message was dropped for each
		 * (the one that found its queue full). */
		for (int i = 0; i < nslow; i++) {
			unstall(&slow[i]);
			ck_assert_int_eq(
			        tu_peer_wait_closed(&slow[i], 4 * TU_TIMEOUT),
			        1);
			ck_assert_int_eq(rec_wait(r, TCPCHAT_SEV_LEAVE,
			                          TCPCHAT_REASON_SLOW,
			                          slow_name[i], 1),
			                 1);
			struct evrec e;
			ck_assert_int_eq(rec_last(r, TCPCHAT_SEV_LEAVE,
			                          slow_name[i], &e),
			                 1);
			ck_assert_int_eq(e.error, TCPCHAT_ESLOW);
		}
		ck_assert_int_eq(slow_left, nslow);
		while (sender_left < nslow) {
			ck_assert_int_eq(tu_peer_expect(&sender,
			                                TCPCHAT_MSG_LEAVE, &m,
			                                TU_TIMEOUT),
			                 1);
			ck_assert_uint_eq(m.code, TCPCHAT_REASON_SLOW);
			sender_left++;
		}
		ck_assert_int_eq(wait_counts(srv, 2, 2), 1);
		st = tu_stats(srv);
		ck_assert_uint_eq(st.dropped, (uint64_t)nslow);
		pthread_mutex_lock(&r->mu);
		ck_assert_int_eq(r->drop_events, 0); /* closed, not told */
		pthread_mutex_unlock(&r->mu);
		ck_assert_int_eq(tu_peer_join(&late, port, bin(), "late"), 0);
		ck_assert_int_eq(tu_peer_expect(&reader, TCPCHAT_MSG_JOIN, &m,
		                                TU_TIMEOUT),
		                 1);
		ck_assert_str_eq(m.sender, "late");
	} else {
		ck_assert_int_eq(nslow, 1);
		ck_assert_int_eq(slow_left, 0);
		/* A newcomer can join while the slow peer is stuck; its JOIN
		 * notice is the last thing addressed to the slow peer. */
		ck_assert_int_eq(tu_peer_join(&late, port, bin(), "late"), 0);
		ck_assert_int_eq(tu_peer_expect(&reader, TCPCHAT_MSG_JOIN, &m,
		                                TU_TIMEOUT),
		                 1);
		ck_assert_str_eq(m.sender, "late");
		st = tu_stats(srv);
		ck_assert_uint_gt(st.dropped, 0);
		/* The DROP event names the slow user and reaches the total. */
		struct drop_cond dc = {r, st.dropped};
		(void)tu_wait_until(drop_reached, &dc, TU_TIMEOUT);
		pthread_mutex_lock(&r->mu);
		ck_assert_int_gt(r->drop_events, 0);
		ck_assert_str_eq(r->drop_name, "slow");
		ck_assert_uint_eq(r->drop_max, st.dropped);
		pthread_mutex_unlock(&r->mu);

		/* Now the slow peer reads what it was kept.  Every message
		 * addressed to it (SLOW_N texts and the JOIN) was either
		 * delivered, in order, or counted as dropped. */
		const uint64_t addressed = SLOW_N + 1;
		int texts = 0, joins = 0, last = -1, first_gap = -1;
		unstall(&slow[0]);
		int64_t until = tu_now_ms() + 4 * TU_TIMEOUT;
		while ((uint64_t)(texts + joins) + st.dropped < addressed) {
			ck_assert_msg(
			        tu_now_ms() < until,
			        "slow got %d texts %d joins, dropped %llu",
			        texts, joins, (unsigned long long)st.dropped);
			struct pollfd pfd = {.fd = slow[0].fd,
			                     .events = POLLIN};
			ck_assert_int_ge(poll(&pfd, 1, 100), 0);
			if (!pfd.revents)
				continue;
			ck_assert_int_ge(peer_fill(&slow[0]), 0);
			int rc;
			while ((rc = tu_peer_take(&slow[0], &m)) == 1) {
				if (m.type == TCPCHAT_MSG_JOIN) {
					ck_assert_str_eq(m.sender, "late");
					joins++;
					continue;
				}
				int k = slow_index(&m);
				if (k <= last || joins != 0)
					ck_abort_msg(
					        "slow got type %u '%.8s' "
					        "after text %d and %d joins",
					        m.type, m.body, last, joins);
				if (first_gap < 0 && k != last + 1)
					first_gap = k;
				last = k;
				texts++;
			}
			ck_assert_int_eq(rc, 0);
		}
		ck_assert_uint_eq((uint64_t)(texts + joins) + st.dropped,
		                  addressed);
		/* The server's queue for it was bounded: it got no more than
		 * QUEUE_FRAMES frames beyond what the kernel buffers hold (the
		 * server's send buffer grows up to tcp_wmem[2]).  All of the
		 * burst, SLOW_N * SLOW_FRAME bytes, is more than that. */
		long long wmem_max =
		        sysctl_third("/proc/sys/net/ipv4/tcp_wmem");
		int rcvbuf = 0;
		socklen_t rl = sizeof rcvbuf;
		ck_assert_int_eq(getsockopt(slow[0].fd, SOL_SOCKET, SO_RCVBUF,
		                            &rcvbuf, &rl),
		                 0);
		long long bound = wmem_max + rcvbuf + SLOW_Q * SLOW_FRAME;
		ck_assert_msg((long long)texts * SLOW_FRAME <= bound,
		              "slow got %d frames, bound %lld bytes", texts,
		              bound);
		if (policy == TCPCHAT_SLOW_DROP_NEWEST) {
			/* What reached the slow peer is a prefix; all later
			 * messages (and the JOIN) were the new ones, dropped. */
			ck_assert_int_eq(first_gap, -1);
			ck_assert_int_eq(last, texts - 1);
			ck_assert_int_eq(joins, 0);
		} else {
			/* The newest were kept: the last texts and the JOIN. */
			ck_assert_int_eq(last, SLOW_N - 1);
			ck_assert_int_eq(joins, 1);
			ck_assert_int_gt(first_gap, 0);
		}
		ck_assert_int_eq(wait_counts(srv, 4, 4), 1);
	}
	tu_peer_close(&late);
	for (int i = 0; i < nslow; i++)
		tu_peer_close(&slow[i]);
	tu_peer_close(&sender);
	tu_peer_close(&reader);
	tu_server_stop(srv);
	ck_assert_int_eq(r->bad_events, 0);
	rec_free(r);
}

START_TEST(slow_drop_newest)
{
	slow_case(TCPCHAT_SLOW_DROP_NEWEST, 1);
}
END_TEST

START_TEST(slow_drop_oldest)
{
	slow_case(TCPCHAT_SLOW_DROP_OLDEST, 1);
}
END_TEST

START_TEST(slow_disconnect)
{
	slow_case(TCPCHAT_SLOW_DISCONNECT, 1);
}
END_TEST

START_TEST(slow_disconnect_many)
{
	/* Slow peers next to each other in the member list usually overflow
	 * on the same message: closing the first fans out a LEAVE that
	 * overflows the next one while the first fan-out walks the list. */
	slow_case(TCPCHAT_SLOW_DISCONNECT, 3);
}
END_TEST

/* ---- 4. timers ------------------------------------------------------------ */

/* The idle timeout of the timer tests.  The server PINGs after half of it
 * and a peer that is to stay has the other half to answer, so it is
 * scaled like the deadlines: long enough for any peer that is running. */
static int idle_ms(void)
{
	return tu_ms(1000);
}

START_TEST(idle_ping_then_timeout)
{
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	const int idle = idle_ms();
	srv_opt(srv, TCPCHAT_SOPT_IDLE_TIMEOUT, idle);
	int port = srv_listen(srv, 0, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer obs, vic;
	ck_assert_int_eq(tu_peer_join(&obs, port, bin(), "obs"), 0);
	int64_t t0 = tu_now_ms();
	ck_assert_int_eq(tu_peer_join(&vic, port, bin(), "vic"), 0);

	/* Watch both: obs answers PINGs, vic never does. */
	int64_t t_ping = -1, t_err = -1, t_closed = -1;
	int vic_err = 0, obs_pings = 0, left = 0, order_ok = 1;
	int64_t deadline = tu_now_ms() + idle + TU_TIMEOUT;
	while (t_closed < 0 || !left) {
		ck_assert_msg(tu_now_ms() < deadline,
		              "vic closed %d, its LEAVE seen %d", t_closed >= 0,
		              left);
		struct pollfd pf[2] = {
		        {.fd = obs.fd, .events = POLLIN},
		        {.fd = t_closed < 0 ? vic.fd : -1, .events = POLLIN}};
		ck_assert_int_ge(poll(pf, 2, 50), 0);
		struct tu_msg m;
		if (pf[0].revents) {
			ck_assert_int_ge(peer_fill(&obs), 0);
			while (tu_peer_take(&obs, &m) == 1) {
				if (m.type == TCPCHAT_MSG_PING) {
					obs_pings++;
					ck_assert_int_eq(
					        send_type(&obs,
					                  TCPCHAT_MSG_PONG),
					        0);
				} else if (m.type == TCPCHAT_MSG_LEAVE) {
					ck_assert_str_eq(m.sender, "vic");
					ck_assert_uint_eq(
					        m.code, TCPCHAT_REASON_TIMEOUT);
					left = 1;
				}
			}
		}
		if (pf[1].revents) {
			int fr = peer_fill(&vic);
			while (tu_peer_take(&vic, &m) == 1) {
				if (m.type == TCPCHAT_MSG_PING && t_ping < 0)
					t_ping = tu_now_ms() - t0;
				if (m.type == TCPCHAT_MSG_ERROR) {
					t_err = tu_now_ms() - t0;
					vic_err = -(int)m.code;
					order_ok = order_ok && t_ping >= 0;
				}
			}
			if (fr < 0)
				t_closed = tu_now_ms() - t0;
		}
	}
	ck_assert_int_ge(t_ping, idle / 2 - 10); /* half the idle timeout */
	ck_assert_int_eq(vic_err, TCPCHAT_ETIMEDOUT);
	ck_assert_int_eq(order_ok, 1);
	ck_assert_int_ge(t_err, idle - 10);
	/* and no later than any other awaited message once due */
	ck_assert_int_lt(t_err, idle + TU_TIMEOUT);
	ck_assert_int_ge(t_closed, t_err);
	ck_assert_int_ge(obs_pings, 1);
	struct evrec e;
	ck_assert_int_eq(rec_wait(r, TCPCHAT_SEV_LEAVE, TCPCHAT_REASON_TIMEOUT,
	                          "vic", 1),
	                 1);
	ck_assert_int_eq(rec_last(r, TCPCHAT_SEV_LEAVE, "vic", &e), 1);
	ck_assert_int_eq(e.error, TCPCHAT_ETIMEDOUT);
	ck_assert_uint_eq(tu_stats(srv).users, 1); /* obs is still here */
	tu_peer_close(&vic);
	tu_peer_close(&obs);
	tu_server_stop(srv);
	rec_free(r);
}
END_TEST

START_TEST(pong_keeps_alive)
{
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	const int idle = idle_ms();
	srv_opt(srv, TCPCHAT_SOPT_IDLE_TIMEOUT, idle);
	int port = srv_listen(srv, 0, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer p;
	ck_assert_int_eq(tu_peer_join(&p, port, bin(), "ponger"), 0);
	int pings = 0;
	const int64_t span = (int64_t)idle * 10 / 3; /* > 3 idle periods */
	int64_t t0 = tu_now_ms();
	while (tu_now_ms() - t0 < span) {
		struct tu_msg m;
		int64_t left = span - (tu_now_ms() - t0);
		int rc = tu_peer_recv(&p, &m, left > 0 ? (int)left : 0);
		ck_assert_int_ge(rc, 0); /* never closed */
		if (rc == 0)
			continue;
		ck_assert_uint_eq(m.type, TCPCHAT_MSG_PING);
		pings++;
		ck_assert_int_eq(send_type(&p, TCPCHAT_MSG_PONG), 0);
	}
	ck_assert_int_ge(pings, 3);
	ck_assert_uint_eq(tu_stats(srv).users, 1);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_LEAVE, -1, NULL), 0);
	/* Still a working connection. */
	ck_assert_int_eq(send_type(&p, TCPCHAT_MSG_PING), 0);
	ck_assert_int_eq(expect_ponging(&p, TCPCHAT_MSG_PONG,
	                                &(struct tu_msg){0}, TU_TIMEOUT),
	                 1);
	tu_peer_close(&p);
	tu_server_stop(srv);
	rec_free(r);
}
END_TEST

START_TEST(line_idle_no_ping)
{
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	const int idle = idle_ms();
	srv_opt(srv, TCPCHAT_SOPT_IDLE_TIMEOUT, idle);
	int port = srv_listen(srv, 0, tcpchat_codec_line());
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer p;
	ck_assert_int_eq(tu_peer_join(&p, port, tcpchat_codec_line(), "lina"),
	                 0);
	/* A person who only reads: no /ping, and no close, for twice the
	 * idle timeout (TCP keepalive watches the peer instead). */
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_recv(&p, &m, 2 * idle), 0);
	ck_assert_uint_eq(tu_stats(srv).users, 1);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_LEAVE, -1, NULL), 0);
	/* and the connection still works */
	ck_assert_int_eq(tu_peer_send(&p, TCPCHAT_MSG_WHO, 0, NULL, NULL, NULL),
	                 0);
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_WHO, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "lina");
	tu_peer_close(&p);
	tu_server_stop(srv);
	rec_free(r);
}
END_TEST

START_TEST(handshake_timeout)
{
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	/* "prompt" must complete its handshake within it: scaled, as the
	 * idle timeout above. */
	const int hs = tu_ms(1000);
	srv_opt(srv, TCPCHAT_SOPT_HANDSHAKE_TIMEOUT, hs);
	int port = srv_listen(srv, 0, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer ok, mute;
	int64_t t0 = tu_now_ms();
	ck_assert_int_eq(tu_peer_connect(&mute, port, bin(), 0), 0);
	ck_assert_int_eq(tu_peer_join(&ok, port, bin(), "prompt"), 0);
	expect_error_close(&mute, TCPCHAT_ETIMEDOUT);
	ck_assert_int_ge(tu_now_ms() - t0, hs - 10);
	ck_assert_int_eq(rec_wait(r, TCPCHAT_SEV_DISCONNECT,
	                          TCPCHAT_REASON_TIMEOUT, NULL, 1),
	                 1);
	struct evrec e;
	ck_assert_int_eq(rec_last(r, TCPCHAT_SEV_DISCONNECT, NULL, &e), 1);
	ck_assert_int_eq(e.error, TCPCHAT_ETIMEDOUT);
	/* The peer that joined in time is unaffected, even later. */
	ck_assert_int_eq(wait_counts(srv, 1, 1), 1);
	ck_assert_int_eq(send_type(&ok, TCPCHAT_MSG_PING), 0);
	ck_assert_int_eq(tu_peer_expect(&ok, TCPCHAT_MSG_PONG,
	                                &(struct tu_msg){0}, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_LEAVE, -1, NULL), 0);
	tu_peer_close(&mute);
	tu_peer_close(&ok);
	tu_server_stop(srv);
	rec_free(r);
}
END_TEST

/* ---- 5. client limit ------------------------------------------------------ */

START_TEST(max_clients)
{
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	srv_opt(srv, TCPCHAT_SOPT_MAX_CLIENTS, 2);
	int port = srv_listen(srv, 0, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer a, b, c;
	ck_assert_int_eq(tu_peer_join(&a, port, bin(), "one"), 0);
	ck_assert_int_eq(tu_peer_join(&b, port, bin(), "two"), 0);
	ck_assert_int_eq(tu_peer_connect(&c, port, bin(), 0), 0);
	expect_error_close(&c, TCPCHAT_EFULL);
	tu_peer_close(&c);
	/* A full server also refuses a client that tries to join. */
	ck_assert_int_eq(tu_peer_join(&c, port, bin(), "three"), TCPCHAT_EFULL);
	tu_peer_close(&c);
	tcpchat_server_stats st = tu_stats(srv);
	ck_assert_uint_eq(st.refused, 2);
	ck_assert_uint_eq(st.clients, 2);
	ck_assert_uint_eq(st.accepted, 2);
	/* refused before the CONNECT event */
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_CONNECT, -1, NULL), 2);

	/* After one leaves, a new one is accepted. */
	tu_peer_close(&a);
	ck_assert_int_eq(wait_counts(srv, 1, 1), 1);
	ck_assert_int_eq(tu_peer_join(&c, port, bin(), "three"), 0);
	ck_assert_int_eq(tu_peer_send_text(&c, "made it"), 0);
	expect_text(&b, "three", "made it");
	ck_assert_uint_eq(tu_stats(srv).accepted, 3);
	tu_peer_close(&b);
	tu_peer_close(&c);
	tu_server_stop(srv);
	rec_free(r);
}
END_TEST

/* ---- 6. shutdown and destroy ---------------------------------------------- */

START_TEST(graceful_shutdown)
{
	enum { N = 5, MSGS = 40 };
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	const int shutdown_ms = 3 * TU_TIMEOUT;
	srv_opt(srv, TCPCHAT_SOPT_SHUTDOWN_TIMEOUT, shutdown_ms);
	int port = srv_listen(srv, 0, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer p[N], pending;
	char name[16];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "s%d", i);
		ck_assert_int_eq(tu_peer_join(&p[i], port, bin(), name), 0);
	}
	ck_assert_int_eq(tu_peer_connect(&pending, port, bin(), 0), 0);
	ck_assert_int_eq(wait_counts(srv, N + 1, N), 1);
	/* Messages in flight when the stop comes. */
	for (int k = 0; k < MSGS; k++)
		for (int i = 0; i < N; i++)
			send_textf(&p[i], "s%d %d", i, k);
	int64_t t_stop = tu_now_ms();
	ck_assert_int_eq(tcpchat_server_stop(srv), 0);

	for (int i = 0; i < N; i++) {
		int next[N] = {0};
		int errors = 0;
		struct tu_msg m;
		int rc;
		for (int guard = 0; guard < 10000; guard++) {
			rc = tu_peer_recv(&p[i], &m, TU_TIMEOUT);
			if (rc != 1)
				break;
			if (m.type == TCPCHAT_MSG_ERROR) {
				ck_assert_int_eq(-(int)m.code,
				                 TCPCHAT_ESHUTDOWN);
				errors++;
				continue;
			}
			/* the ERROR is the last message */
			ck_assert_int_eq(errors, 0);
			if (m.type != TCPCHAT_MSG_TEXT)
				continue;
			int s, k;
			ck_assert_int_eq(sscanf(m.body, "s%d %d", &s, &k), 2);
			ck_assert(s >= 0 && s < N && s != i);
			ck_assert_int_eq(k, next[s]++);
		}
		ck_assert_int_eq(rc, -1); /* EOF */
		ck_assert_int_eq(errors, 1);
	}
	expect_error_close(&pending, TCPCHAT_ESHUTDOWN);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	/* Every queue drained at once: no waiting for the timeout (had the
	 * stop waited for it, the join would have taken all of it). */
	ck_assert_int_lt(tu_now_ms() - t_stop, shutdown_ms);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_LEAVE, -1, NULL), N);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "s%d", i);
		struct evrec e;
		ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_LEAVE,
		                           TCPCHAT_REASON_SHUTDOWN, name),
		                 1);
		ck_assert_int_eq(rec_last(r, TCPCHAT_SEV_LEAVE, name, &e), 1);
		ck_assert_int_eq(e.error, TCPCHAT_ESHUTDOWN);
	}
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_DISCONNECT,
	                           TCPCHAT_REASON_SHUTDOWN, NULL),
	                 1);
	tcpchat_server_stats st = tu_stats(srv);
	ck_assert_uint_eq(st.clients, 0);
	ck_assert_uint_eq(st.users, 0);
	/* join again: no thread any more */
	ck_assert_int_eq(tcpchat_server_join(srv), TCPCHAT_ESTATE);
	for (int i = 0; i < N; i++)
		tu_peer_close(&p[i]);
	tu_peer_close(&pending);
	tcpchat_server_destroy(srv);
	rec_free(r);
}
END_TEST

START_TEST(shutdown_timeout_stuck_peer)
{
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	const int shutdown_ms = tu_ms(300);
	srv_opt(srv, TCPCHAT_SOPT_SHUTDOWN_TIMEOUT, shutdown_ms);
	int port = srv_listen(srv, 0, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer stuck, flood;
	ck_assert_int_eq(peer_connect_rcvbuf(&stuck, port, bin(), 4096), 0);
	ck_assert_int_eq(tu_peer_hello(&stuck, "stuck"), 0);
	ck_assert_int_eq(tu_peer_join(&flood, port, bin(), "flood"), 0);
	/* Flood until the stuck peer's queue is full (messages dropped). */
	enum { BODY = 8000 };
	char *text = malloc(BODY + 1);
	ck_assert_ptr_nonnull(text);
	memset(text, 'y', BODY);
	text[BODY] = '\0';
	int k;
	for (k = 0; k < 4000; k++) {
		ck_assert_int_eq(tu_peer_send_text(&flood, text), 0);
		if (k % 50 == 49 && tu_stats(srv).dropped > 0)
			break;
	}
	free(text);
	ck_assert_int_lt(k, 4000);
	/* Let the server take all of the flood first: its shutdown deadline
	 * counts from the loop's time of the iteration that takes the stop,
	 * which, were it still busy reading, could be older than t0. */
	ck_assert_int_eq(send_type(&flood, TCPCHAT_MSG_PING), 0);
	ck_assert_int_eq(expect_ponging(&flood, TCPCHAT_MSG_PONG,
	                                &(struct tu_msg){0}, TU_TIMEOUT),
	                 1);
	/* The stuck queue never drains: the shutdown waits for its
	 * timeout, then closes it anyway. */
	int64_t t0 = tu_now_ms();
	ck_assert_int_eq(tcpchat_server_stop(srv), 0);
	expect_error_close(&flood, TCPCHAT_ESHUTDOWN);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	int64_t took = tu_now_ms() - t0;
	ck_assert_int_ge(took, shutdown_ms - 50);
	/* and then closes at once, as promptly as any awaited message */
	ck_assert_int_lt(took, shutdown_ms + TU_TIMEOUT);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_LEAVE,
	                           TCPCHAT_REASON_SHUTDOWN, "stuck"),
	                 1);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_LEAVE,
	                           TCPCHAT_REASON_SHUTDOWN, "flood"),
	                 1);
	ck_assert_int_eq(tu_peer_wait_closed(&stuck, 2 * TU_TIMEOUT), 1);
	tu_peer_close(&stuck);
	tu_peer_close(&flood);
	tcpchat_server_destroy(srv);
	rec_free(r);
}
END_TEST

START_TEST(destroy_while_connected)
{
	enum { N = 5 };
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	int port = srv_listen(srv, 0, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer p[N], pending;
	char name[16];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "d%d", i);
		ck_assert_int_eq(tu_peer_join(&p[i], port, bin(), name), 0);
	}
	ck_assert_int_eq(tu_peer_connect(&pending, port, bin(), 0), 0);
	ck_assert_int_eq(wait_counts(srv, N + 1, N), 1);
	for (int k = 0; k < 50; k++)
		for (int i = 0; i < N; i++)
			send_textf(&p[i], "d%d %d", i, k);
	/* No stop: destroy stops the thread and frees everything. */
	tcpchat_server_destroy(srv);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(tu_peer_wait_closed(&p[i], TU_TIMEOUT), 1);
		tu_peer_close(&p[i]);
	}
	ck_assert_int_eq(tu_peer_wait_closed(&pending, TU_TIMEOUT), 1);
	tu_peer_close(&pending);
	rec_free(r);
}
END_TEST

struct step_cond {
	tcpchat_server *srv;
	uint64_t users;
};

static int step_until_users(void *arg)
{
	struct step_cond *c = arg;
	ck_assert_int_eq(tcpchat_server_step(c->srv), 0);
	return tu_stats(c->srv).users == c->users;
}

START_TEST(destroy_host_driven_with_clients)
{
	/* Host-driven mode: destroy finds the connections still in its
	 * lists (joined, pending, with queued output) and frees them. */
	enum { N = 5 };
	tcpchat_server *srv = srv_new(NULL);
	int port = srv_listen(srv, 0, NULL);
	ck_assert_int_eq(tcpchat_server_step(srv), 0);
	struct tu_peer p[N], pending;
	char name[16];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "h%d", i);
		ck_assert_int_eq(tu_peer_connect(&p[i], port, bin(), 0), 0);
		tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
		h.code = TCPCHAT_PROTOCOL_VERSION;
		h.sender.ptr = name;
		h.sender.len = strlen(name);
		ck_assert_int_eq(tu_peer_send_msg(&p[i], &h), 0);
	}
	struct step_cond c = {srv, N};
	ck_assert_int_eq(tu_wait_until(step_until_users, &c, TU_TIMEOUT), 1);
	ck_assert_int_eq(tu_peer_connect(&pending, port, bin(), 0), 0);
	for (int i = 0; i < N; i++)
		send_textf(&p[i], "h%d %d", i, 0);
	for (int k = 0; k < 20; k++)
		ck_assert_int_eq(tcpchat_server_step(srv), 0);
	ck_assert_uint_eq(tu_stats(srv).users, N);
	tcpchat_server_destroy(srv);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(tu_peer_wait_closed(&p[i], TU_TIMEOUT), 1);
		tu_peer_close(&p[i]);
	}
	ck_assert_int_eq(tu_peer_wait_closed(&pending, TU_TIMEOUT), 1);
	tu_peer_close(&pending);
}
END_TEST

/* ---- 7. mixed codecs ------------------------------------------------------ */

/* A plain socket reading lines, as nc would. */
struct raw {
	int fd;
	char buf[4096];
	size_t len;
};

static void raw_connect(struct raw *r, int port)
{
	memset(r, 0, sizeof *r);
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(r->fd, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(r->fd, (struct sockaddr *)&a, sizeof a), 0);
}

static void raw_write(struct raw *r, const char *s)
{
	size_t n = strlen(s);
	ck_assert_int_eq(send(r->fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads one line with its "\n" into out.  Returns its length, 0 on EOF,
 * -1 on timeout. */
static int raw_line(struct raw *r, char *out, size_t cap, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		if (nl) {
			size_t n = (size_t)(nl - r->buf) + 1;
			ck_assert_uint_lt(n, cap);
			memcpy(out, r->buf, n);
			out[n] = '\0';
			memmove(r->buf, r->buf + n, r->len - n);
			r->len -= n;
			return (int)n;
		}
		ck_assert_uint_lt(r->len, sizeof r->buf);
		int64_t left = deadline - tu_now_ms();
		if (left < 0)
			return -1;
		struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		ssize_t n =
		        recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
		if (n <= 0)
			return 0;
		r->len += (size_t)n;
	}
}

START_TEST(mixed_codecs)
{
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	int pb = srv_listen(srv, 0, NULL);
	int pl = srv_listen(srv, 1, tcpchat_codec_line());
	int pj = srv_listen(srv, 2, tcpchat_codec_json());
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer alice, lenny, jason;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&alice, pb, bin(), "alice"), 0);
	ck_assert_int_eq(
	        tu_peer_join(&lenny, pl, tcpchat_codec_line(), "lenny"), 0);
	ck_assert_int_eq(
	        tu_peer_join(&jason, pj, tcpchat_codec_json(), "jason"), 0);
	/* JOIN notices */
	ck_assert_int_eq(tu_peer_recv(&alice, &m, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_JOIN);
	ck_assert_str_eq(m.sender, "lenny");
	ck_assert_int_eq(tu_peer_recv(&alice, &m, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_JOIN);
	ck_assert_str_eq(m.sender, "jason");
	ck_assert_int_eq(tu_peer_recv(&lenny, &m, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_JOIN);
	ck_assert_str_eq(m.sender, "jason");
	/* Everyone talks; everyone else hears it with the right sender. */
	ck_assert_int_eq(tu_peer_send_text(&alice, "hi from binary"), 0);
	ck_assert_int_eq(tu_peer_send_text(&lenny, "hi from line"), 0);
	ck_assert_int_eq(tu_peer_send_text(&jason, "hi \"from\" json \xc3\xa9"),
	                 0);
	/* (cross-connection order is not defined: check per receiver) */
	struct {
		struct tu_peer *p;
		const char *a, *ab, *b, *bb;
	} want[] = {
	        {&alice, "lenny", "hi from line", "jason",
	         "hi \"from\" json \xc3\xa9"},
	        {&lenny, "alice", "hi from binary", "jason",
	         "hi \"from\" json \xc3\xa9"},
	        {&jason, "alice", "hi from binary", "lenny", "hi from line"},
	};
	for (size_t i = 0; i < 3; i++) {
		int seen_a = 0, seen_b = 0;
		for (int k = 0; k < 2; k++) {
			ck_assert_int_eq(tu_peer_expect(want[i].p,
			                                TCPCHAT_MSG_TEXT, &m,
			                                TU_TIMEOUT),
			                 1);
			if (want[i].p != &lenny) /* no ids in lines */
				ck_assert_uint_gt(m.id, 0);
			if (strcmp(m.sender, want[i].a) == 0) {
				ck_assert_str_eq(m.body, want[i].ab);
				seen_a++;
			} else {
				ck_assert_str_eq(m.sender, want[i].b);
				ck_assert_str_eq(m.body, want[i].bb);
				seen_b++;
			}
		}
		ck_assert_int_eq(seen_a, 1);
		ck_assert_int_eq(seen_b, 1);
	}
	/* jason says goodbye */
	ck_assert_int_eq(send_type(&jason, TCPCHAT_MSG_LEAVE), 0);
	ck_assert_int_eq(tu_peer_wait_closed(&jason, TU_TIMEOUT), 1);
	tu_peer_close(&jason);
	ck_assert_int_eq(
	        tu_peer_expect(&alice, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m.sender, "jason");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_QUIT);
	ck_assert_int_eq(
	        tu_peer_expect(&lenny, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m.sender, "jason");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_QUIT);

	/* An nc-style session on the line port. */
	struct raw carol;
	char line[512];
	raw_connect(&carol, pl);
	ck_assert_int_gt(raw_line(&carol, line, sizeof line, TU_TIMEOUT), 0);
	ck_assert_str_eq(line, TU_LINE_GREETING "\n"); /* before a word */
	raw_write(&carol, "carol\n");
	ck_assert_int_gt(raw_line(&carol, line, sizeof line, TU_TIMEOUT), 0);
	ck_assert_str_eq(line, "=== welcome carol\n");
	ck_assert_int_eq(
	        tu_peer_expect(&alice, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m.sender, "carol");
	raw_write(&carol, "hello all\n");
	expect_text(&alice, "carol", "hello all");
	expect_text(&lenny, "carol", "hello all");
	ck_assert_int_eq(tu_peer_send_text(&alice, "hi"), 0);
	ck_assert_int_gt(raw_line(&carol, line, sizeof line, TU_TIMEOUT), 0);
	ck_assert_str_eq(line, "alice: hi\n");
	expect_text(&lenny, "alice", "hi");
	ck_assert_int_eq(tu_peer_send_text(&lenny, "/slash and a\ttab"), 0);
	ck_assert_int_gt(raw_line(&carol, line, sizeof line, TU_TIMEOUT), 0);
	ck_assert_str_eq(line, "lenny: /slash and a\ttab\n");
	expect_text(&alice, "lenny", "/slash and a\ttab");
	raw_write(&carol, "/quit\n");
	ck_assert_int_eq(raw_line(&carol, line, sizeof line, TU_TIMEOUT), 0);
	close(carol.fd);
	ck_assert_int_eq(
	        tu_peer_expect(&alice, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m.sender, "carol");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_QUIT);

	/* Codec names reach the handler. */
	struct evrec e;
	ck_assert_int_eq(rec_last(r, TCPCHAT_SEV_JOIN, "jason", &e), 1);
	ck_assert_str_eq(e.codec, "json");
	ck_assert_int_eq(rec_last(r, TCPCHAT_SEV_JOIN, "carol", &e), 1);
	ck_assert_str_eq(e.codec, "line");
	ck_assert_int_eq(rec_last(r, TCPCHAT_SEV_JOIN, "alice", &e), 1);
	ck_assert_str_eq(e.codec, "binary");
	tu_peer_close(&alice);
	tu_peer_close(&lenny);
	tu_server_stop(srv);
	rec_free(r);
}
END_TEST

/* ---- 8. a codec of the application's own ---------------------------------- */

/* "tiny": u8 type, u8 sender length, u16 big-endian body length, sender,
 * body.  HELLO and WELCOME imply protocol version 1; no other field is
 * carried. */
static int tiny_encode(void *data, const tcpchat_msg *m, unsigned flags,
                       tcpchat_buf *out)
{
	if (!m || !out || m->type < 1 || m->type > TCPCHAT_MSG_TYPE_MAX)
		return TCPCHAT_EINVAL;
	if (m->sender.len > 255 || m->body.len > 65535 ||
	    (m->sender.len && !m->sender.ptr) || (m->body.len && !m->body.ptr))
		return TCPCHAT_EINVAL;
	unsigned char h[4] = {
	        (unsigned char)m->type, (unsigned char)m->sender.len,
	        (unsigned char)(m->body.len >> 8), (unsigned char)m->body.len};
	if (tcpchat_buf_reserve(out, sizeof h + m->sender.len + m->body.len))
		return TCPCHAT_ENOMEM;
	tcpchat_buf_append(out, h, sizeof h);
	tcpchat_buf_append(out, m->sender.ptr, m->sender.len);
	tcpchat_buf_append(out, m->body.ptr, m->body.len);
	return 0;
}

static long tiny_decode(void *data, const char *buf, size_t len,
                        tcpchat_msg *out, tcpchat_decode_ctx *ctx)
{
	const unsigned char *p = (const unsigned char *)buf;
	if (len < 4)
		return 0;
	size_t slen = p[1], blen = ((size_t)p[2] << 8) | p[3];
	size_t total = 4 + slen + blen;
	if (total > ctx->max_frame) {
		ctx->error = "tiny frame larger than the limit";
		return TCPCHAT_EMSGSIZE;
	}
	if (p[0] < 1 || p[0] > TCPCHAT_MSG_TYPE_MAX) {
		ctx->error = "tiny frame of an unknown type";
		return TCPCHAT_EPROTO;
	}
	if (len < total)
		return 0;
	out->type = p[0];
	if (out->type == TCPCHAT_MSG_HELLO || out->type == TCPCHAT_MSG_WELCOME)
		out->code = TCPCHAT_PROTOCOL_VERSION;
	out->sender.ptr = buf + 4;
	out->sender.len = slen;
	out->body.ptr = buf + 4 + slen;
	out->body.len = blen;
	return (long)total;
}

static const tcpchat_codec tiny_codec = {
        .abi = TCPCHAT_CODEC_ABI,
        .name = "tiny",
        .flags = 0,
        .encode = tiny_encode,
        .decode = tiny_decode,
        .codec_data = NULL,
};

START_TEST(tiny_codec_unit)
{
	/* Every prefix of a frame, in a buffer of exactly that size (ASan
	 * catches a read past len). */
	tcpchat_msg t = {.type = TCPCHAT_MSG_TEXT};
	t.sender.ptr = "bob";
	t.sender.len = 3;
	t.body.ptr = "hello tiny";
	t.body.len = 10;
	tcpchat_buf b = {0};
	ck_assert_int_eq(tiny_encode(NULL, &t, TCPCHAT_FROM_SERVER, &b), 0);
	ck_assert_uint_eq(b.len, 4 + 3 + 10);
	char scratch[64];
	for (size_t n = 0; n <= b.len; n++) {
		char *copy = malloc(n ? n : 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, b.data, n);
		tcpchat_msg m = {0};
		tcpchat_decode_ctx ctx = {.flags = TCPCHAT_FROM_SERVER,
		                          .max_frame = 1024,
		                          .scratch = scratch,
		                          .scratch_len = sizeof scratch};
		long k = tiny_decode(NULL, copy, n, &m, &ctx);
		if (n < b.len) {
			ck_assert_int_eq(k, 0);
		} else {
			ck_assert_int_eq(k, (long)b.len);
			ck_assert_uint_eq(m.type, TCPCHAT_MSG_TEXT);
			ck_assert_uint_eq(m.body.len, 10);
			ck_assert_int_eq(memcmp(m.body.ptr, "hello tiny", 10),
			                 0);
		}
		/* too large for a small max_frame: known from the header */
		tcpchat_decode_ctx small = ctx;
		small.max_frame = 8;
		memset(&m, 0, sizeof m);
		k = tiny_decode(NULL, copy, n, &m, &small);
		ck_assert_int_eq(k, n < 4 ? 0 : TCPCHAT_EMSGSIZE);
		if (n >= 4)
			ck_assert_ptr_nonnull(small.error);
		free(copy);
	}
	/* out unchanged when a message cannot be expressed */
	size_t before = b.len;
	t.sender.len = 300;
	ck_assert_int_eq(tiny_encode(NULL, &t, 0, &b), TCPCHAT_EINVAL);
	ck_assert_uint_eq(b.len, before);
	tcpchat_buf_free(&b);

	/* A codec with another ABI, or without functions, is refused. */
	tcpchat_server *srv = srv_new(NULL);
	tcpchat_codec bad = tiny_codec;
	bad.abi = TCPCHAT_CODEC_ABI + 1;
	ck_assert_int_eq(tcpchat_server_listen(srv, "127.0.0.1:0", &bad),
	                 TCPCHAT_EINVAL);
	bad.abi = 0;
	ck_assert_int_eq(tcpchat_server_listen(srv, "127.0.0.1:0", &bad),
	                 TCPCHAT_EINVAL);
	bad = tiny_codec;
	bad.decode = NULL;
	ck_assert_int_eq(tcpchat_server_listen(srv, "127.0.0.1:0", &bad),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_port(srv, 0), TCPCHAT_EINVAL);
	tcpchat_server_destroy(srv);
}
END_TEST

START_TEST(tiny_codec_chat)
{
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	srv_opt(srv, TCPCHAT_SOPT_MAX_FRAME, 1024);
	int pt = srv_listen(srv, 0, &tiny_codec);
	int pb = srv_listen(srv, 1, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer t, b;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&t, pt, &tiny_codec, "tina"), 0);
	ck_assert_int_eq(tu_peer_join(&b, pb, bin(), "bert"), 0);
	ck_assert_int_eq(tu_peer_expect(&t, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "bert");
	for (int k = 0; k < 20; k++) {
		send_textf(&t, "tiny says %d", k);
		send_textf(&b, "binary says %d", k);
	}
	char want[64];
	for (int k = 0; k < 20; k++) {
		snprintf(want, sizeof want, "tiny says %d", k);
		expect_text(&b, "tina", want);
		snprintf(want, sizeof want, "binary says %d", k);
		expect_text(&t, "bert", want);
	}
	struct evrec e;
	ck_assert_int_eq(rec_last(r, TCPCHAT_SEV_JOIN, "tina", &e), 1);
	ck_assert_str_eq(e.codec, "tiny");
	/* A tiny frame over MAX_FRAME is refused from its header. */
	unsigned char hdr[4] = {TCPCHAT_MSG_TEXT, 0, 0x10, 0x00}; /* 4 KiB */
	ck_assert_int_eq(tu_peer_send_raw(&t, hdr, sizeof hdr), 0);
	ck_assert_int_eq(tu_peer_wait_closed(&t, TU_TIMEOUT), 1);
	tu_peer_close(&t);
	ck_assert_int_eq(tu_peer_expect(&b, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "tina");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_ERROR);
	ck_assert_int_eq(rec_last(r, TCPCHAT_SEV_LEAVE, "tina", &e), 1);
	ck_assert_int_eq(e.error, TCPCHAT_EMSGSIZE);
	ck_assert_uint_eq(tu_stats(srv).proto_errors, 1);
	tu_peer_close(&b);
	tu_server_stop(srv);
	rec_free(r);
}
END_TEST

/* ---- 9. IPv6 ---------------------------------------------------------------- */

static int have_ipv6_loopback(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in6 a = {0};
	a.sin6_family = AF_INET6;
	a.sin6_addr = in6addr_loopback;
	int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

START_TEST(ipv6_loopback)
{
	struct rec *r = rec_new();
	tcpchat_server *srv = srv_new(r);
	int rc = tcpchat_server_listen(srv, "[::1]:0", NULL);
	if (!have_ipv6_loopback()) {
		/* No IPv6 here: the listen must fail, not pretend. */
		ck_assert(rc == TCPCHAT_ESYS || rc == TCPCHAT_EADDR);
		tcpchat_server_destroy(srv);
		rec_free(r);
		return;
	}
	ck_assert_int_eq(rc, 0);
	int port = tcpchat_server_port(srv, 0);
	ck_assert_int_gt(port, 0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer a, b;
	ck_assert_int_eq(tu_peer_connect(&a, port, bin(), 1), 0);
	ck_assert_int_eq(tu_peer_hello(&a, "six"), 0);
	ck_assert_int_eq(tu_peer_connect(&b, port, bin(), 1), 0);
	ck_assert_int_eq(tu_peer_hello(&b, "seven"), 0);
	ck_assert_int_eq(tu_peer_send_text(&a, "over ::1"), 0);
	expect_text(&b, "six", "over ::1");
	ck_assert_int_eq(tu_peer_send_text(&b, "back"), 0);
	expect_text(&a, "seven", "back");
	struct evrec e;
	ck_assert_int_eq(rec_last(r, TCPCHAT_SEV_JOIN, "six", &e), 1);
	ck_assert_int_eq(e.family, AF_INET6);
	/* The v6 listener does not take IPv4 connections. */
	struct tu_peer c;
	ck_assert_int_ne(tu_peer_connect(&c, port, bin(), 0), 0);
	tu_peer_close(&c);
	tu_peer_close(&a);
	tu_peer_close(&b);
	tu_server_stop(srv);
	rec_free(r);
}
END_TEST

/* ---- 10. address errors ---------------------------------------------------- */

START_TEST(address_errors)
{
	tcpchat_server *srv = srv_new(NULL);
	const char *bad[] = {"nonsense", "1.2.3.4:99999", "[::1",
	                     "",         "127.0.0.1:",    "127.0.0.1:-1",
	                     "::1:80",   "[::1]80",       "127.0.0.1:12a"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = tcpchat_server_listen(srv, bad[i], NULL);
		ck_assert_msg(rc == TCPCHAT_EADDR, "'%s' gave %d", bad[i], rc);
	}
	ck_assert_int_eq(tcpchat_server_listen(srv, NULL, NULL),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_port(srv, 0), TCPCHAT_EINVAL);

	int port = srv_listen(srv, 0, NULL);
	tcpchat_server *other = srv_new(NULL);
	char addr[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	errno = 0;
	ck_assert_int_eq(tcpchat_server_listen(other, addr, NULL),
	                 TCPCHAT_ESYS);
	ck_assert_int_eq(errno, EADDRINUSE);
	ck_assert_int_eq(tcpchat_server_port(other, 0), TCPCHAT_EINVAL);
	tcpchat_server_destroy(other);
	tcpchat_server_destroy(srv);
}
END_TEST

/* ---- 11. out of file descriptors ------------------------------------------ */

static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

/* The child: a server whose process can open only 4 more descriptors. */
static void emfile_child(int ctl_fd, int rep_fd)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: read() returns */

	tcpchat_server *srv = NULL;
	if (tcpchat_server_new(&srv) ||
	    tcpchat_server_listen(srv, "127.0.0.1:0", NULL))
		_exit(2);
	int port = tcpchat_server_port(srv, 0);

	/* Allow exactly 4 new descriptors: the limit is one above the
	 * fourth-lowest free descriptor number. */
	int lim = 0, free_found = 0;
	for (; lim < 1 << 16 && free_found < 4; lim++)
		if (fcntl(lim, F_GETFD) < 0 && errno == EBADF)
			free_found++;
	struct rlimit old, rl;
	if (getrlimit(RLIMIT_NOFILE, &old))
		_exit(3);
	rl = old;
	rl.rlim_cur = (rlim_t)lim;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		_exit(4);
	if (tcpchat_server_start(srv))
		_exit(5);
	if (write(rep_fd, &port, sizeof port) != (ssize_t)sizeof port)
		_exit(6);
	char c;
	while (!got_term && read(ctl_fd, &c, 1) > 0)
		;
	tcpchat_server_stop(srv);
	int rc = tcpchat_server_join(srv);
	setrlimit(RLIMIT_NOFILE, &old);
	tcpchat_server_destroy(srv);
	close(ctl_fd);
	close(rep_fd);
	exit(rc == 0 ? 0 : 7);
}

/* utime + stime of a process, in clock ticks. */
static long long proc_cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	ck_assert_ptr_nonnull(p);
	long long ut = -1, st = -1;
	/* after ")": state(3) ppid ... utime(14) stime(15) */
	int field = 2;
	for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
		field++;
		if (field == 14)
			ut = atoll(tok);
		if (field == 15) {
			st = atoll(tok);
			break;
		}
	}
	ck_assert(ut >= 0 && st >= 0);
	return ut + st;
}

struct child_wait {
	pid_t pid, got;
	int status;
};

/* Reaps the child if it exited (got: its pid, or -1 on an error). */
static int child_exited(void *arg)
{
	struct child_wait *c = arg;
	c->got = waitpid(c->pid, &c->status, WNOHANG);
	return c->got != 0;
}

START_TEST(emfile_survival)
{
	enum { EXTRA = 20 };
	int ctl[2], rep[2];
	ck_assert_int_eq(pipe(ctl), 0);
	ck_assert_int_eq(pipe(rep), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(ctl[1]);
		close(rep[0]);
		emfile_child(ctl[0], rep[1]);
	}
	close(ctl[0]);
	close(rep[1]);
	int port = 0;
	struct pollfd pfd = {.fd = rep[0], .events = POLLIN};
	ck_assert_int_eq(poll(&pfd, 1, TU_TIMEOUT), 1);
	ck_assert_int_eq(read(rep[0], &port, sizeof port),
	                 (ssize_t)sizeof port);
	ck_assert_int_gt(port, 0);

	struct tu_peer a, b, extra[EXTRA];
	ck_assert_int_eq(tu_peer_join(&a, port, bin(), "anna"), 0);
	ck_assert_int_eq(tu_peer_join(&b, port, bin(), "ben"), 0);
	for (int i = 0; i < EXTRA; i++)
		ck_assert_int_eq(tu_peer_connect(&extra[i], port, bin(), 0), 0);

	/* Watch the extra connections (the server closes those it cannot
	 * keep) and the child's CPU time: for a window of 500 ms (scaled, so
	 * that the work of taking the extras stays a small part of it), and
	 * until all the server cannot keep are closed. */
	long hz = sysconf(_SC_CLK_TCK);
	ck_assert_int_gt(hz, 0);
	long long cpu0 = proc_cpu_ticks(pid);
	const int window = tu_ms(500);
	int64_t t0 = tu_now_ms();
	int64_t until = t0 + window + TU_TIMEOUT;
	int closed = 0;
	struct pollfd pf[EXTRA];
	for (int i = 0; i < EXTRA; i++)
		pf[i] = (struct pollfd){.fd = extra[i].fd, .events = POLLIN};
	for (;;) {
		int64_t now = tu_now_ms();
		if ((now - t0 >= window && closed >= EXTRA - 2) || now >= until)
			break;
		int64_t left = now - t0 < window ? t0 + window - now : 100;
		int n = poll(pf, EXTRA, (int)left);
		ck_assert_int_ge(n, 0);
		for (int i = 0; i < EXTRA && n > 0; i++) {
			if (!pf[i].revents)
				continue;
			n--;
			struct tu_msg m;
			int rc;
			while ((rc = peer_fill(&extra[i])) > 0)
				while (tu_peer_take(&extra[i], &m) == 1)
					;
			if (rc < 0) {
				closed++;
				pf[i].fd = -1;
			}
		}
	}
	long long cpu1 = proc_cpu_ticks(pid);
	int64_t wall = tu_now_ms() - t0;
	long long cpu_ms = (cpu1 - cpu0) * 1000 / hz;
	ck_assert_msg(cpu_ms * 2 < wall, "child used %lld ms CPU in %lld ms",
	              cpu_ms, (long long)wall);
	/* At most 2 descriptors were left for the extras. */
	ck_assert_int_ge(closed, EXTRA - 2);

	/* The joined peers still chat. */
	ck_assert_int_eq(tu_peer_send_text(&a, "still alive?"), 0);
	expect_text(&b, "anna", "still alive?");
	ck_assert_int_eq(tu_peer_send_text(&b, "yes"), 0);
	expect_text(&a, "ben", "yes");

	for (int i = 0; i < EXTRA; i++)
		tu_peer_close(&extra[i]);
	tu_peer_close(&a);
	tu_peer_close(&b);
	close(ctl[1]); /* the child stops and exits */
	struct child_wait cw = {pid, 0, 0};
	(void)tu_wait_until(child_exited, &cw, 2 * TU_TIMEOUT);
	pid_t w = cw.got;
	int status = cw.status;
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ck_abort_msg("the child did not exit");
	}
	close(rep[0]);
	ck_assert_int_eq(w, pid);
	ck_assert(WIFEXITED(status));
	/* (Under valgrind, 1 is its error exit code: errors or leaks in the
	 * child, which include what an earlier failed test leaked, as the
	 * fork inherits it without CK_FORK.) */
	ck_assert_msg(WEXITSTATUS(status) == 0, "the child exited with %d",
	              WEXITSTATUS(status));
}
END_TEST

/* ---- suite ------------------------------------------------------------------ */

static Suite *suite(void)
{
	Suite *s = suite_create("limits");
	TCase *tc;

	tc = tcase_create("scale");
	tcase_set_timeout(tc, 60 * tu_slow());
	tcase_add_test(tc, many_clients);
	suite_add_tcase(s, tc);

	tc = tcase_create("garbage");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, garbage_binary);
	tcase_add_test(tc, garbage_line);
	tcase_add_test(tc, garbage_json);
	tcase_add_test(tc, oversized_binary_frame);
	suite_add_tcase(s, tc);

	tc = tcase_create("slow");
	tcase_set_timeout(tc, 60 * tu_slow());
	tcase_add_test(tc, slow_drop_newest);
	tcase_add_test(tc, slow_drop_oldest);
	tcase_add_test(tc, slow_disconnect);
	tcase_add_test(tc, slow_disconnect_many);
	suite_add_tcase(s, tc);

	tc = tcase_create("timers");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, idle_ping_then_timeout);
	tcase_add_test(tc, pong_keeps_alive);
	tcase_add_test(tc, line_idle_no_ping);
	tcase_add_test(tc, handshake_timeout);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, max_clients);
	tcase_add_test(tc, graceful_shutdown);
	tcase_add_test(tc, shutdown_timeout_stuck_peer);
	tcase_add_test(tc, destroy_while_connected);
	tcase_add_test(tc, destroy_host_driven_with_clients);
	suite_add_tcase(s, tc);

	tc = tcase_create("codecs");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, mixed_codecs);
	tcase_add_test(tc, tiny_codec_unit);
	tcase_add_test(tc, tiny_codec_chat);
	suite_add_tcase(s, tc);

	tc = tcase_create("net");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, ipv6_loopback);
	tcase_add_test(tc, address_errors);
	tcase_add_test(tc, emfile_survival);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY, default normal */
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
