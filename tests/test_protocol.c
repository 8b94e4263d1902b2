/* Tests of the growable protocol and of the seams under it: capabilities
 * and limits in the handshake, the closing flag of ERROR messages, types
 * a server does not know, refused room/target fields, deferred JOIN and
 * MESSAGE decisions answered from another thread, actions addressed by
 * connection id, options changed while running, stats structs of an
 * older size, the wire error code space. */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static const tcpchat_codec *bin(void)
{
	return tcpchat_codec_binary();
}

/* ---- a raw reader that keeps every field ----------------------------- */

/* Reads frames from a tu_peer's socket and decodes them with the binary
 * codec, keeping the fields that struct tu_msg does not carry. */
struct raw {
	int fd;
	char buf[1 << 17];
	size_t len;
	char frame[1 << 17]; /* the last frame, which m points into */
	char scratch[1 << 17];
	tcpchat_msg m;
	int closed;
};

static void raw_init(struct raw *r, int fd)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
}

/* 1: r->m holds the next message; 0: timeout; -1: closed. */
static int raw_recv(struct raw *r, int timeout_ms)
{
	int64_t until = tu_now_ms() + timeout_ms;
	for (;;) {
		if (r->len) {
			memcpy(r->frame, r->buf, r->len);
			tcpchat_decode_ctx dc = {.flags = TCPCHAT_FROM_SERVER,
			                         .max_frame = sizeof r->buf,
			                         .scratch = r->scratch,
			                         .scratch_len =
			                                 sizeof r->scratch};
			memset(&r->m, 0, sizeof r->m);
			long k = bin()->decode(NULL, r->frame, r->len, &r->m,
			                       &dc);
			if (k < 0)
				return -1;
			if (k > 0) {
				memmove(r->buf, r->buf + k, r->len - (size_t)k);
				r->len -= (size_t)k;
				return 1;
			}
		}
		int left = (int)(until - tu_now_ms());
		struct pollfd pf = {.fd = r->fd, .events = POLLIN};
		if (poll(&pf, 1, left > 0 ? left : 0) <= 0) {
			if (left <= 0)
				return 0;
			continue;
		}
		ssize_t n =
		        read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
		if (n <= 0) {
			r->closed = 1;
			return -1;
		}
		r->len += (size_t)n;
	}
}

/* Receives until a message of type arrives. */
static int raw_expect(struct raw *r, uint32_t type, int timeout_ms)
{
	int rc;
	while ((rc = raw_recv(r, timeout_ms)) == 1)
		if (r->m.type == type)
			return 1;
	return rc;
}

/* Connects and sends a HELLO with the given capabilities. */
static void raw_hello(struct tu_peer *p, struct raw *r, int port,
                      const char *name, uint64_t caps)
{
	ck_assert_int_eq(tu_peer_connect(p, port, bin(), 0), 0);
	raw_init(r, p->fd);
	tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
	h.code = 1; /* these are protocol-1 peers, with or without caps */
	h.sender.ptr = name;
	h.sender.len = strlen(name);
	h.caps = caps;
	ck_assert_int_eq(tu_peer_send_msg(p, &h), 0);
}

static int body_is(const tcpchat_msg *m, const char *s)
{
	return m->body.len == strlen(s) &&
	       memcmp(m->body.ptr, s, m->body.len) == 0;
}

/* ---- a server with a recording handler -------------------------------- */

struct rec {
	pthread_mutex_t mu;
	int defer_join, defer_msg; /* what the handler answers */
	uint64_t join_id, msg_id;  /* the last deferred connection */
	int joins, msgs, leaves, disconnects;
	uint64_t ids[8]; /* conn id of each name, by first letter - 'a' */
	char last_text[64];
};

static int on_event(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	struct rec *r = ud;
	(void)srv;
	int verdict = TCPCHAT_ACCEPT;
	pthread_mutex_lock(&r->mu);
	switch (ev->type) {
	case TCPCHAT_SEV_JOIN:
		r->joins++;
		if (ev->name.len && ev->name.ptr[0] >= 'a' &&
		    ev->name.ptr[0] < 'a' + 8)
			r->ids[ev->name.ptr[0] - 'a'] = ev->conn_id;
		if (r->defer_join) {
			r->join_id = ev->conn_id;
			verdict = TCPCHAT_DEFER;
		}
		break;
	case TCPCHAT_SEV_MESSAGE:
		r->msgs++;
		if (r->defer_msg && ev->msg->body.len >= 4 &&
		    memcmp(ev->msg->body.ptr, "hold", 4) == 0) {
			r->msg_id = ev->conn_id;
			verdict = TCPCHAT_DEFER;
		}
		break;
	case TCPCHAT_SEV_LEAVE:
		r->leaves++;
		break;
	case TCPCHAT_SEV_DISCONNECT:
		r->disconnects++;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&r->mu);
	return verdict;
}

static tcpchat_server *rec_server(struct rec *r, int *port)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
	tcpchat_server *srv;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	tcpchat_server_set_handler(srv, on_event, r);
	ck_assert_int_eq(tcpchat_server_listen(srv, "127.0.0.1:0", NULL), 0);
	*port = tcpchat_server_port(srv, 0);
	return srv;
}

static uint64_t rec_get(struct rec *r, uint64_t *field)
{
	pthread_mutex_lock(&r->mu);
	uint64_t v = *field;
	pthread_mutex_unlock(&r->mu);
	return v;
}

static int wait_id(struct rec *r, uint64_t *field)
{
	int64_t until = tu_now_ms() + TU_TIMEOUT;
	while (tu_now_ms() < until) {
		if (rec_get(r, field))
			return 1;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* An answer given from a thread of its own, as an application checking a
 * database would. */
struct answer {
	tcpchat_server *srv;
	uint64_t id;
	int accept;
	const char *reason;
	int rc;
};

static void *answer_main(void *arg)
{
	struct answer *a = arg;
	a->rc = a->accept ? tcpchat_server_accept(a->srv, a->id)
	                  : tcpchat_server_refuse(a->srv, a->id, a->reason);
	return NULL;
}

static void answer_from_thread(tcpchat_server *srv, uint64_t id, int accept,
                               const char *reason)
{
	struct answer a = {srv, id, accept, reason, -1};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, answer_main, &a), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(a.rc, 0);
}

/* ---- handshake: capabilities and limits ------------------------------- */

START_TEST(welcome_carries_caps_and_limits)
{
	struct rec r;
	int port;
	tcpchat_server *srv = rec_server(&r, &port);
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_MAX_FRAME, 5000),
	        0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer p, old;
	struct raw rp, ro;
	raw_hello(&p, &rp, port, "modern", TCPCHAT_CAP_BASE);
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_WELCOME, TU_TIMEOUT), 1);
	ck_assert(rp.m.caps & TCPCHAT_CAP_BASE);
	ck_assert_uint_eq(rp.m.max_frame, 5000);
	ck_assert_uint_eq(rp.m.queue_frames, 1024);
	ck_assert_uint_eq(rp.m.queue_bytes, 1 << 20);
	/* A protocol-1 peer gets a protocol-1 WELCOME: no new fields. */
	raw_hello(&old, &ro, port, "old", 0);
	ck_assert_int_eq(raw_expect(&ro, TCPCHAT_MSG_WELCOME, TU_TIMEOUT), 1);
	ck_assert_uint_eq(ro.m.caps, 0);
	ck_assert_uint_eq(ro.m.max_frame, 0);
	ck_assert_uint_eq(ro.m.flags, 0);
	tu_peer_close(&p);
	tu_peer_close(&old);
	tu_server_stop(srv);
}
END_TEST

struct cstate {
	pthread_mutex_t mu;
	int connected, disconnected, errors;
	int error, reason;
	uint32_t wire, last_flags, last_code;
};

static int on_cli(tcpchat_client *cli, const tcpchat_client_event *ev, void *ud)
{
	struct cstate *s = ud;
	(void)cli;
	pthread_mutex_lock(&s->mu);
	if (ev->type == TCPCHAT_CEV_CONNECTED)
		s->connected = 1;
	if (ev->type == TCPCHAT_CEV_DISCONNECTED) {
		s->disconnected = 1;
		s->error = ev->error;
		s->reason = ev->reason;
		s->wire = ev->wire_code;
	}
	if (ev->type == TCPCHAT_CEV_MESSAGE &&
	    ev->msg->type == TCPCHAT_MSG_ERROR) {
		s->errors++;
		s->last_flags = ev->msg->flags;
		s->last_code = ev->msg->code;
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static int cs_get(struct cstate *s, int *field)
{
	pthread_mutex_lock(&s->mu);
	int v = *field;
	pthread_mutex_unlock(&s->mu);
	return v;
}

static int cs_wait(struct cstate *s, int *field)
{
	int64_t until = tu_now_ms() + TU_TIMEOUT;
	while (tu_now_ms() < until) {
		if (cs_get(s, field))
			return 1;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static tcpchat_client *joined_client(struct cstate *s, int port,
                                     const char *name)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	tcpchat_client *cli;
	ck_assert_int_eq(tcpchat_client_new(&cli), 0);
	tcpchat_client_set_handler(cli, on_cli, s);
	char addr[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	ck_assert_int_eq(tcpchat_client_connect(cli, addr, name), 0);
	ck_assert_int_eq(tcpchat_client_start(cli), 0);
	ck_assert(cs_wait(s, &s->connected));
	return cli;
}

START_TEST(client_checks_the_servers_frame_limit)
{
	struct rec r;
	int port;
	tcpchat_server *srv = rec_server(&r, &port);
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_MAX_FRAME, 1000),
	        0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct cstate s;
	tcpchat_client *cli = joined_client(&s, port, "alice");
	tcpchat_server_info info = {.size = sizeof info};
	ck_assert_int_eq(tcpchat_client_server_info(cli, &info), 0);
	ck_assert_uint_eq(info.max_frame, 1000);
	ck_assert(info.caps & TCPCHAT_CAP_BASE);
	char text[1500];
	memset(text, 'x', sizeof text);
	/* the client's own incoming limit (1 MiB) is not the server's */
	ck_assert_int_eq(tcpchat_client_send(cli, text, sizeof text),
	                 TCPCHAT_EMSGSIZE);
	ck_assert_int_eq(tcpchat_client_send(cli, text, 900), 0);
	ck_assert_int_eq(tcpchat_client_is_connected(cli), 1);
	tcpchat_client_stop(cli);
	tcpchat_client_join(cli);
	tcpchat_client_destroy(cli);
	tu_server_stop(srv);
}
END_TEST

/* ---- ERROR: the closing flag ------------------------------------------- */

START_TEST(fatal_errors_carry_the_closing_flag)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p, old;
	struct raw rp, ro;
	tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
	h.code = TCPCHAT_PROTOCOL_VERSION;
	h.sender.ptr = "again";
	h.sender.len = 5;

	raw_hello(&p, &rp, port, "modern", TCPCHAT_CAP_BASE);
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_WELCOME, TU_TIMEOUT), 1);
	ck_assert_int_eq(tu_peer_send_msg(&p, &h), 0); /* a second HELLO */
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_ERROR, TU_TIMEOUT), 1);
	ck_assert_uint_eq(rp.m.code, TCPCHAT_WIRE_PROTO);
	ck_assert_uint_eq(rp.m.flags & TCPCHAT_MSGF_CLOSING,
	                  TCPCHAT_MSGF_CLOSING);
	ck_assert_int_eq(raw_recv(&rp, TU_TIMEOUT), -1);

	/* protocol 1: the same ERROR, with the frame of protocol 1 */
	raw_hello(&old, &ro, port, "old", 0);
	ck_assert_int_eq(raw_expect(&ro, TCPCHAT_MSG_WELCOME, TU_TIMEOUT), 1);
	ck_assert_int_eq(tu_peer_send_msg(&old, &h), 0);
	ck_assert_int_eq(raw_expect(&ro, TCPCHAT_MSG_ERROR, TU_TIMEOUT), 1);
	ck_assert_uint_eq(ro.m.code, TCPCHAT_WIRE_PROTO);
	ck_assert_uint_eq(ro.m.flags, 0);
	ck_assert_int_eq(raw_recv(&ro, TU_TIMEOUT), -1);
	tu_peer_close(&p);
	tu_peer_close(&old);
	tu_server_stop(srv);
}
END_TEST

START_TEST(client_reports_a_kick_with_its_wire_code)
{
	struct rec r;
	int port;
	tcpchat_server *srv = rec_server(&r, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct cstate s;
	tcpchat_client *cli = joined_client(&s, port, "bob");
	ck_assert(wait_id(&r, &r.ids[1]));
	ck_assert_int_eq(tcpchat_server_kick_id(srv, r.ids[1], "bye"), 0);
	ck_assert(cs_wait(&s, &s.disconnected));
	pthread_mutex_lock(&s.mu);
	ck_assert_int_eq(s.error, TCPCHAT_EKICKED);
	ck_assert_int_eq(s.reason, TCPCHAT_REASON_KICKED);
	ck_assert_uint_eq(s.wire, TCPCHAT_WIRE_KICKED);
	ck_assert_uint_eq(s.last_code, TCPCHAT_WIRE_KICKED);
	ck_assert_uint_eq(s.last_flags & TCPCHAT_MSGF_CLOSING,
	                  TCPCHAT_MSGF_CLOSING);
	pthread_mutex_unlock(&s.mu);
	ck_assert_int_eq(tcpchat_client_join(cli), TCPCHAT_EKICKED);
	tcpchat_client_destroy(cli);
	tu_server_stop(srv);
}
END_TEST

/* ---- types and fields the server does not know --------------------------- */

START_TEST(unknown_type_is_not_fatal)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p, w;
	struct raw rp;
	ck_assert_int_eq(tu_peer_join(&w, port, bin(), "watcher"), 0);
	raw_hello(&p, &rp, port, "newer", TCPCHAT_CAP_BASE);
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_WELCOME, TU_TIMEOUT), 1);
	tcpchat_msg future = {.type = 77};
	future.body.ptr = "from the future";
	future.body.len = 15;
	ck_assert_int_eq(tu_peer_send_msg(&p, &future), 0);
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_ERROR, TU_TIMEOUT), 1);
	ck_assert_uint_eq(rp.m.code, TCPCHAT_WIRE_NOTYPE);
	ck_assert_uint_eq(rp.m.flags & TCPCHAT_MSGF_CLOSING, 0);
	/* still in: its next text reaches the others */
	ck_assert_int_eq(tu_peer_send_text(&p, "still here"), 0);
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_expect(&w, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "newer");
	ck_assert_str_eq(m.body, "still here");
	tu_peer_close(&p);
	tu_peer_close(&w);
	tu_server_stop(srv);
}
END_TEST

START_TEST(text_with_room_or_target_is_refused)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p, w;
	struct raw rp;
	ck_assert_int_eq(tu_peer_join(&w, port, bin(), "watcher"), 0);
	raw_hello(&p, &rp, port, "sender", TCPCHAT_CAP_BASE);
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_WELCOME, TU_TIMEOUT), 1);
	tcpchat_msg t = {.type = TCPCHAT_MSG_TEXT};
	t.body.ptr = "private";
	t.body.len = 7;
	t.target.ptr = "watcher";
	t.target.len = 7;
	ck_assert_int_eq(tu_peer_send_msg(&p, &t), 0);
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_ERROR, TU_TIMEOUT), 1);
	ck_assert_uint_eq(rp.m.code, TCPCHAT_WIRE_NOTSUP);
	memset(&t.target, 0, sizeof t.target);
	t.room.ptr = "#lobby";
	t.room.len = 6;
	ck_assert_int_eq(tu_peer_send_msg(&p, &t), 0);
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_ERROR, TU_TIMEOUT), 1);
	ck_assert_uint_eq(rp.m.code, TCPCHAT_WIRE_NOTSUP);
	/* neither was broadcast: the watcher's next text is the plain one */
	ck_assert_int_eq(tu_peer_send_text(&p, "public"), 0);
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_expect(&w, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "public");
	tu_peer_close(&p);
	tu_peer_close(&w);
	tu_server_stop(srv);
}
END_TEST

/* ---- deferred decisions --------------------------------------------------- */

START_TEST(deferred_join_accepted_from_another_thread)
{
	struct rec r;
	int port;
	tcpchat_server *srv = rec_server(&r, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer w, p, dup;
	struct raw rp;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&w, port, bin(), "watcher"), 0);
	pthread_mutex_lock(&r.mu);
	r.defer_join = 1;
	pthread_mutex_unlock(&r.mu);
	/* HELLO and a text right behind it, before any WELCOME */
	raw_hello(&p, &rp, port, "late", TCPCHAT_CAP_BASE);
	ck_assert_int_eq(tu_peer_send_text(&p, "first words"), 0);
	ck_assert(wait_id(&r, &r.join_id));
	/* while the decision is pending, the name is taken */
	ck_assert_int_eq(tu_peer_join(&dup, port, bin(), "late"),
	                 TCPCHAT_ENAMEINUSE);
	tu_peer_close(&dup);
	/* nothing reached the watcher yet, nor the joiner */
	ck_assert_int_eq(raw_recv(&rp, 50), 0);
	answer_from_thread(srv, r.join_id, 1, NULL);
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_WELCOME, TU_TIMEOUT), 1);
	ck_assert_int_eq(tu_peer_expect(&w, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "late");
	/* the text sent behind the HELLO comes after the JOIN */
	ck_assert_int_eq(tu_peer_recv(&w, &m, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_TEXT);
	ck_assert_str_eq(m.body, "first words");
	tu_peer_close(&p);
	tu_peer_close(&w);
	tu_server_stop(srv);
}
END_TEST

START_TEST(deferred_join_refused)
{
	struct rec r;
	int port;
	tcpchat_server *srv = rec_server(&r, &port);
	r.defer_join = 1;
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer p;
	struct raw rp;
	raw_hello(&p, &rp, port, "nobody", TCPCHAT_CAP_BASE);
	ck_assert(wait_id(&r, &r.join_id));
	answer_from_thread(srv, r.join_id, 0, "not on the list");
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_ERROR, TU_TIMEOUT), 1);
	ck_assert_uint_eq(rp.m.code, TCPCHAT_WIRE_REFUSED);
	ck_assert(body_is(&rp.m, "not on the list"));
	ck_assert_int_eq(raw_recv(&rp, TU_TIMEOUT), -1);
	/* a second answer for the same connection is ignored */
	ck_assert_int_eq(tcpchat_server_accept(srv, r.join_id), 0);
	tu_peer_close(&p);
	tu_server_stop(srv);
	pthread_mutex_lock(&r.mu);
	ck_assert_int_eq(r.disconnects, 1);
	ck_assert_int_eq(r.leaves, 0);
	pthread_mutex_unlock(&r.mu);
}
END_TEST

START_TEST(deferred_join_still_times_out)
{
	struct rec r;
	int port;
	tcpchat_server *srv = rec_server(&r, &port);
	r.defer_join = 1;
	ck_assert_int_eq(tcpchat_server_set_option(
	                         srv, TCPCHAT_SOPT_HANDSHAKE_TIMEOUT, 200),
	                 0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer p;
	struct raw rp;
	raw_hello(&p, &rp, port, "slowpoke", TCPCHAT_CAP_BASE);
	ck_assert(wait_id(&r, &r.join_id));
	/* nobody answers: the handshake deadline ends it */
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_ERROR, TU_TIMEOUT), 1);
	ck_assert_uint_eq(rp.m.code, TCPCHAT_WIRE_TIMEDOUT);
	ck_assert_int_eq(raw_recv(&rp, TU_TIMEOUT), -1);
	ck_assert_int_eq(tcpchat_server_accept(srv, r.join_id), 0); /* late */
	tu_peer_close(&p);
	tu_server_stop(srv);
}
END_TEST

START_TEST(deferred_message_accepted_and_refused)
{
	struct rec r;
	int port;
	tcpchat_server *srv = rec_server(&r, &port);
	r.defer_msg = 1;
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer w, p;
	struct raw rp;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&w, port, bin(), "watcher"), 0);
	raw_hello(&p, &rp, port, "poster", TCPCHAT_CAP_BASE);
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_WELCOME, TU_TIMEOUT), 1);
	ck_assert_int_eq(tu_peer_expect(&w, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT),
	                 1);
	uint64_t join_id = m.id;

	ck_assert_int_eq(tu_peer_send_text(&p, "hold this"), 0);
	ck_assert_int_eq(tu_peer_send_text(&p, "after it"), 0);
	ck_assert(wait_id(&r, &r.msg_id));
	/* the text behind the held one waits too: order is kept */
	ck_assert_int_eq(tu_peer_recv(&w, &m, 50), 0);
	answer_from_thread(srv, r.msg_id, 1, NULL);
	ck_assert_int_eq(tu_peer_expect(&w, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "hold this");
	ck_assert_str_eq(m.sender, "poster");
	ck_assert_uint_gt(m.id, join_id);
	uint64_t first = m.id;
	ck_assert_int_eq(tu_peer_expect(&w, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "after it");
	ck_assert_uint_gt(m.id, first);

	/* refused: the sender hears why and stays; nobody else sees it */
	pthread_mutex_lock(&r.mu);
	r.msg_id = 0;
	pthread_mutex_unlock(&r.mu);
	ck_assert_int_eq(tu_peer_send_text(&p, "hold that"), 0);
	ck_assert(wait_id(&r, &r.msg_id));
	answer_from_thread(srv, r.msg_id, 0, "moderated");
	ck_assert_int_eq(raw_expect(&rp, TCPCHAT_MSG_ERROR, TU_TIMEOUT), 1);
	ck_assert_uint_eq(rp.m.code, TCPCHAT_WIRE_REFUSED);
	ck_assert(body_is(&rp.m, "moderated"));
	ck_assert_uint_eq(rp.m.flags & TCPCHAT_MSGF_CLOSING, 0);
	ck_assert_int_eq(tu_peer_send_text(&p, "plain"), 0);
	ck_assert_int_eq(tu_peer_expect(&w, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "plain");
	tu_peer_close(&p);
	tu_peer_close(&w);
	tu_server_stop(srv);
}
END_TEST

/* ---- actions by connection id ----------------------------------------- */

START_TEST(send_to_id_reaches_only_that_connection)
{
	struct rec r;
	int port;
	tcpchat_server *srv = rec_server(&r, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer a, b;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&a, port, bin(), "alice"), 0);
	ck_assert_int_eq(tu_peer_join(&b, port, bin(), "bob"), 0);
	ck_assert(wait_id(&r, &r.ids[1]));
	ck_assert_int_eq(tcpchat_server_send_to_id(srv, r.ids[1], "psst", 4),
	                 0);
	ck_assert_int_eq(tu_peer_expect(&b, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "psst");
	ck_assert_str_eq(m.sender, "");
	/* alice's next message is the broadcast, not the private one */
	ck_assert_int_eq(tcpchat_server_broadcast(srv, "all", 3), 0);
	for (;;) {
		ck_assert_int_eq(tu_peer_recv(&a, &m, TU_TIMEOUT), 1);
		if (m.type == TCPCHAT_MSG_TEXT)
			break;
	}
	ck_assert_str_eq(m.body, "all");
	ck_assert_int_eq(tcpchat_server_send_to_id(srv, 0, "x", 1),
	                 TCPCHAT_EINVAL);
	tu_peer_close(&a);
	tu_peer_close(&b);
	tu_server_stop(srv);
}
END_TEST

START_TEST(kick_reason_is_checked_and_cut_on_a_character)
{
	struct rec r;
	int port;
	tcpchat_server *srv = rec_server(&r, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer c;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&c, port, bin(), "carol"), 0);
	ck_assert_int_eq(tcpchat_server_kick(srv, "carol", "bad \xff utf-8"),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_kick(srv, "carol", "tab\tok\nnot"),
	                 TCPCHAT_EINVAL);
	/* 255 ASCII bytes and a 2-byte character across the 256 cut */
	char reason[300];
	memset(reason, 'r', 255);
	memcpy(reason + 255, "\xc3\xa9tail", 6);
	reason[261] = '\0';
	ck_assert_int_eq(tcpchat_server_kick(srv, "carol", reason), 0);
	ck_assert_int_eq(tu_peer_expect(&c, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT),
	                 1);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_KICKED);
	ck_assert_uint_eq(m.body_len, 255);
	ck_assert(tcpchat_utf8_valid(m.body, m.body_len));
	tu_peer_close(&c);
	tu_server_stop(srv);
}
END_TEST

/* ---- options and stats ----------------------------------------------------- */

START_TEST(options_changed_while_running)
{
	struct rec r;
	int port;
	tcpchat_server *srv = rec_server(&r, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&p, port, bin(), "idler"), 0);
	/* MAX_FRAME is read by thread-safe calls: the new value counts. */
	char text[3000];
	memset(text, 'y', sizeof text);
	ck_assert_int_eq(tcpchat_server_broadcast(srv, text, sizeof text), 0);
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	/* Options are loop-thread only: change them from a handler-free
	 * moment by stopping the thread, then run again. */
	tcpchat_server_stop(srv);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	tu_peer_close(&p);
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_MAX_FRAME, 2000),
	        0);
	ck_assert_int_eq(tcpchat_server_broadcast(srv, text, sizeof text),
	                 TCPCHAT_EMSGSIZE);
	ck_assert_int_eq(tcpchat_server_set_option(
	                         srv, TCPCHAT_SOPT_HANDSHAKE_TIMEOUT, 0),
	                 0); /* no ESTATE any more */

	/* In host-driven mode the loop thread is ours: IDLE_TIMEOUT
	 * lowered while a user is in applies to that user at once. */
	int done = 0;
	ck_assert_int_eq(tcpchat_server_step(srv), 0);
	ck_assert_int_eq(tu_peer_connect(&p, port, bin(), 0), 0);
	tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
	h.code = TCPCHAT_PROTOCOL_VERSION;
	h.sender.ptr = "idler";
	h.sender.len = 5;
	ck_assert_int_eq(tu_peer_send_msg(&p, &h), 0);
	int64_t until = tu_now_ms() + TU_TIMEOUT;
	int joins = 0;
	while (joins < 2 && tu_now_ms() < until) {
		struct pollfd pf = {.fd = tcpchat_server_fd(srv),
		                    .events = POLLIN};
		poll(&pf, 1, 10);
		tcpchat_server_step(srv);
		pthread_mutex_lock(&r.mu);
		joins = r.joins;
		pthread_mutex_unlock(&r.mu);
	}
	ck_assert_int_eq(joins, 2);
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_IDLE_TIMEOUT, 400),
	        0);
	until = tu_now_ms() + TU_TIMEOUT;
	int saw_ping = 0, closed = 0;
	struct raw rp;
	raw_init(&rp, p.fd);
	while (!closed && tu_now_ms() < until) {
		struct pollfd pf = {.fd = tcpchat_server_fd(srv),
		                    .events = POLLIN};
		int t = tcpchat_server_timeout_ms(srv);
		poll(&pf, 1, t < 0 || t > 20 ? 20 : t);
		ck_assert_int_ge(tcpchat_server_step(srv), 0);
		int k;
		while ((k = raw_recv(&rp, 0)) == 1)
			if (rp.m.type == TCPCHAT_MSG_PING)
				saw_ping = 1;
		if (k < 0)
			closed = 1;
	}
	ck_assert(saw_ping);
	ck_assert(closed);
	tu_peer_close(&p);
	tcpchat_server_stop(srv);
	while (!done && tu_now_ms() < until + TU_TIMEOUT) {
		int rc = tcpchat_server_step(srv);
		ck_assert_int_ge(rc, 0);
		done = rc == 1;
	}
	ck_assert(done);
	tcpchat_server_destroy(srv);
}
END_TEST

START_TEST(stats_of_an_older_smaller_size)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	ck_assert_int_eq(tu_peer_join(&p, port, bin(), "counted"), 0);
	tcpchat_server_stats full = tu_stats(srv);
	ck_assert_uint_ge(full.accepted, 1);
	/* a caller that knows only size, clients and users */
	union {
		tcpchat_server_stats s;
		unsigned char bytes[sizeof(tcpchat_server_stats)];
	} u;
	memset(&u, 0xAB, sizeof u);
	u.s.size = offsetof(tcpchat_server_stats, accepted);
	ck_assert_int_eq(tcpchat_server_stats_get(srv, &u.s), 0);
	ck_assert_uint_eq(u.s.size, offsetof(tcpchat_server_stats, accepted));
	ck_assert_uint_eq(u.s.clients, 1);
	ck_assert_uint_eq(u.s.users, 1);
	for (size_t i = offsetof(tcpchat_server_stats, accepted);
	     i < sizeof u.bytes; i++)
		ck_assert_uint_eq(u.bytes[i], 0xAB);
	u.s.size = 1;
	ck_assert_int_eq(tcpchat_server_stats_get(srv, &u.s), TCPCHAT_EINVAL);
	tu_peer_close(&p);
	tu_server_stop(srv);
}
END_TEST

/* ---- the wire error code space ---------------------------------------- */

START_TEST(wire_codes_map_both_ways)
{
	for (int e = TCPCHAT_ERROR_MIN; e < 0; e++) {
		ck_assert_str_ne(tcpchat_strerror(e), "unknown error");
		uint32_t w = tcpchat_error_to_wire(e);
		ck_assert_uint_gt(w, 0);
		int back = tcpchat_error_from_wire(w);
		/* codes with no wire counterpart report as protocol errors */
		ck_assert(back == e ||
		          (w == TCPCHAT_WIRE_PROTO && back == TCPCHAT_EPROTO));
	}
	ck_assert_int_eq(tcpchat_error_from_wire(TCPCHAT_WIRE_KICKED),
	                 TCPCHAT_EKICKED);
	ck_assert_int_eq(tcpchat_error_from_wire(999), TCPCHAT_EREMOTE);
	ck_assert_int_eq(tcpchat_error_from_wire(0), TCPCHAT_EREMOTE);
	ck_assert_uint_eq(tcpchat_error_to_wire(TCPCHAT_ENOTYPE),
	                  TCPCHAT_WIRE_NOTYPE);
}
END_TEST

static Suite *protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *t = tcase_create("handshake");
	tcase_add_test(t, welcome_carries_caps_and_limits);
	tcase_add_test(t, client_checks_the_servers_frame_limit);
	suite_add_tcase(s, t);
	t = tcase_create("errors");
	tcase_add_test(t, fatal_errors_carry_the_closing_flag);
	tcase_add_test(t, client_reports_a_kick_with_its_wire_code);
	tcase_add_test(t, wire_codes_map_both_ways);
	suite_add_tcase(s, t);
	t = tcase_create("growth");
	tcase_add_test(t, unknown_type_is_not_fatal);
	tcase_add_test(t, text_with_room_or_target_is_refused);
	suite_add_tcase(s, t);
	t = tcase_create("deferred");
	tcase_add_test(t, deferred_join_accepted_from_another_thread);
	tcase_add_test(t, deferred_join_refused);
	tcase_add_test(t, deferred_join_still_times_out);
	tcase_add_test(t, deferred_message_accepted_and_refused);
	suite_add_tcase(s, t);
	t = tcase_create("actions");
	tcase_add_test(t, send_to_id_reaches_only_that_connection);
	tcase_add_test(t, kick_reason_is_checked_and_cut_on_a_character);
	tcase_add_test(t, options_changed_while_running);
	tcase_add_test(t, stats_of_an_older_smaller_size);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(protocol_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
