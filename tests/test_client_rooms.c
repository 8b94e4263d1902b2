/* The client's side of protocol 2 over loopback: the room calls, what
 * they put on the wire, argument checks, the client's view of its rooms
 * and current room, ENOTSUP against a protocol-1 server (a raw test peer
 * acting as a server; the HELLO announces CAP_HISTORY too), and against a
 * real server: join and part confirmations, room texts that reach only the members, private
 * messages with the echo, topics, the room list, calls from other
 * threads. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

/* ---- a client whose events are recorded ---------------------------------- */

struct rmsg {
	uint32_t type, code, flags;
	uint64_t id;
	char sender[64], room[80], target[64], body[512];
};

struct rec {
	pthread_mutex_t mu;
	struct rmsg *v; /* under mu */
	size_t n, cap;
	char rooms[1024];  /* rooms_joined after the last event, under mu */
	char current[80];  /* current_room after the last event, under mu */
	int logs_not_sent; /* ERROR logs "not sent", under mu */
	atomic_int connected, disconnected, events;
	tcpchat_client *cli;
};

static void copy_view(char *dst, size_t cap, tcpchat_str s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	if (n)
		memcpy(dst, s.ptr, n);
	dst[n] = '\0';
}

static int add_room(tcpchat_str room, void *ud)
{
	char *out = ud;
	size_t n = strlen(out);
	if (n + room.len + 2 > 1024)
		return 1;
	if (n)
		out[n++] = ' ';
	memcpy(out + n, room.ptr, room.len);
	out[n + room.len] = '\0';
	return 0;
}

static int rhandler(tcpchat_client *cli, const tcpchat_client_event *ev,
                    void *ud)
{
	struct rec *r = ud;
	pthread_mutex_lock(&r->mu);
	if (ev->type == TCPCHAT_CEV_MESSAGE) {
		if (r->n == r->cap) {
			r->cap = r->cap ? 2 * r->cap : 64;
			r->v = realloc(r->v, r->cap * sizeof *r->v);
			ck_assert_ptr_nonnull(r->v);
		}
		struct rmsg *m = &r->v[r->n++];
		memset(m, 0, sizeof *m);
		m->type = ev->msg->type;
		m->code = ev->msg->code;
		m->flags = ev->msg->flags;
		m->id = ev->msg->id;
		copy_view(m->sender, sizeof m->sender, ev->msg->sender);
		copy_view(m->room, sizeof m->room, ev->msg->room);
		copy_view(m->target, sizeof m->target, ev->msg->target);
		copy_view(m->body, sizeof m->body, ev->msg->body);
	}
	if (ev->type == TCPCHAT_CEV_LOG && ev->level == TCPCHAT_LOG_ERROR &&
	    strstr(ev->text, "not sent"))
		r->logs_not_sent++;
	/* the view, as the loop thread sees it after this event */
	char rooms[1024] = "";
	long n = tcpchat_client_rooms_joined(cli, add_room, rooms);
	ck_assert_int_ge(n, 0);
	memcpy(r->rooms, rooms, sizeof rooms);
	ck_assert_int_ge(
	        tcpchat_client_current_room(cli, r->current, sizeof r->current),
	        0);
	pthread_mutex_unlock(&r->mu);
	if (ev->type == TCPCHAT_CEV_CONNECTED)
		atomic_fetch_add(&r->connected, 1);
	if (ev->type == TCPCHAT_CEV_DISCONNECTED)
		atomic_fetch_add(&r->disconnected, 1);
	atomic_fetch_add(&r->events, 1);
	return 0;
}

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
	ck_assert_int_eq(tcpchat_client_new(&r->cli), 0);
	tcpchat_client_set_handler(r->cli, rhandler, r);
	ck_assert_int_eq(tcpchat_client_set_option(r->cli,
	                                           TCPCHAT_COPT_CONNECT_TIMEOUT,
	                                           TU_TIMEOUT),
	                 0);
}

static void rec_fini(struct rec *r)
{
	tcpchat_client_destroy(r->cli);
	free(r->v);
	pthread_mutex_destroy(&r->mu);
}

struct ge_arg {
	atomic_int *v;
	int min;
};

static int cond_ge(void *p)
{
	struct ge_arg *g = p;
	return atomic_load(g->v) >= g->min;
}

static int wait_ge(atomic_int *v, int min)
{
	struct ge_arg g = {v, min};
	return tu_wait_until(cond_ge, &g, TU_TIMEOUT);
}

/* Connects r's client as name to port and runs it in its own thread;
 * without_wait: do not wait for the WELCOME. */
static void rec_start(struct rec *r, int port, const char *name,
                      int without_wait)
{
	char addr[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	ck_assert_int_eq(tcpchat_client_connect(r->cli, addr, name), 0);
	ck_assert_int_eq(tcpchat_client_start(r->cli), 0);
	if (!without_wait)
		ck_assert(wait_ge(&r->connected, 1));
}

static void rec_stop(struct rec *r)
{
	tcpchat_client_stop(r->cli);
	ck_assert_int_eq(tcpchat_client_join(r->cli), 0);
}

/* A message to look for; NULL strings and 0 numbers match anything
 * ("" matches only an empty string). */
struct want {
	struct rec *r;
	uint32_t type, flags, code;
	const char *sender, *room, *target, *body;
	size_t from; /* first index to look at */
	long found;
};

static int str_ok(const char *want, const char *got)
{
	return !want || strcmp(want, got) == 0;
}

static int cond_found(void *p)
{
	struct want *w = p;
	pthread_mutex_lock(&w->r->mu);
	w->found = -1;
	for (size_t i = w->from; i < w->r->n; i++) {
		const struct rmsg *m = &w->r->v[i];
		if (m->type == w->type && (m->flags & w->flags) == w->flags &&
		    (!w->code || m->code == w->code) &&
		    str_ok(w->sender, m->sender) && str_ok(w->room, m->room) &&
		    str_ok(w->target, m->target) && str_ok(w->body, m->body)) {
			w->found = (long)i;
			break;
		}
	}
	pthread_mutex_unlock(&w->r->mu);
	return w->found >= 0;
}

/* Waits for a matching message; returns a copy of it (type 0 when none
 * came in time). */
static struct rmsg wait_msg(struct rec *r, uint32_t type, const char *sender,
                            const char *room, const char *target,
                            const char *body)
{
	struct want w = {r, type, 0, 0, sender, room, target, body, 0, -1};
	struct rmsg m;
	memset(&m, 0, sizeof m);
	if (tu_wait_until(cond_found, &w, TU_TIMEOUT)) {
		pthread_mutex_lock(&r->mu);
		m = r->v[w.found];
		pthread_mutex_unlock(&r->mu);
	}
	return m;
}

/* 1 when a matching message has arrived (no wait). */
static int has_msg(struct rec *r, uint32_t type, const char *sender,
                   const char *room, const char *target, const char *body)
{
	struct want w = {r, type, 0, 0, sender, room, target, body, 0, -1};
	return cond_found(&w);
}

static int count_msgs(struct rec *r, uint32_t type, const char *body)
{
	int n = 0;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].type == type && str_ok(body, r->v[i].body))
			n++;
	pthread_mutex_unlock(&r->mu);
	return n;
}

struct view_arg {
	struct rec *r;
	const char *rooms, *current;
};

static int cond_view(void *p)
{
	struct view_arg *a = p;
	pthread_mutex_lock(&a->r->mu);
	int ok = strcmp(a->r->rooms, a->rooms) == 0 &&
	         strcmp(a->r->current, a->current) == 0;
	pthread_mutex_unlock(&a->r->mu);
	return ok;
}

/* Waits until the view recorded after an event is rooms (space-separated,
 * in entry order) with current as the current room. */
static void wait_view(struct rec *r, const char *rooms, const char *current)
{
	struct view_arg a = {r, rooms, current};
	if (!tu_wait_until(cond_view, &a, TU_TIMEOUT)) {
		pthread_mutex_lock(&r->mu);
		ck_abort_msg("view: rooms '%s' current '%s', wanted '%s' '%s'",
		             r->rooms, r->current, rooms, current);
		pthread_mutex_unlock(&r->mu);
	}
}

static tcpchat_server_info info_of(tcpchat_client *cli, int *rc)
{
	tcpchat_server_info s;
	memset(&s, 0, sizeof s);
	s.size = sizeof s;
	*rc = tcpchat_client_server_info(cli, &s);
	return s;
}

/* ---- a raw test peer acting as a server ------------------------------- */

struct fake {
	int lfd, fd, port;
	tcpchat_buf in;
	char scratch[1 << 16];
};

/* A decoded client message with owned strings. */
struct fmsg {
	uint32_t type, code;
	uint64_t caps;
	char sender[64], room[80], target[64], body[512];
};

static void fake_listen(struct fake *f)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(f->lfd, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(f->lfd, 4), 0);
	socklen_t len = sizeof a;
	ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
	f->port = ntohs(a.sin_port);
}

static void fake_accept(struct fake *f)
{
	struct pollfd p = {.fd = f->lfd, .events = POLLIN};
	ck_assert_int_eq(poll(&p, 1, TU_TIMEOUT), 1);
	f->fd = accept(f->lfd, NULL, NULL);
	ck_assert_int_ge(f->fd, 0);
	int one = 1;
	setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void fake_close(struct fake *f)
{
	if (f->fd >= 0)
		close(f->fd);
	close(f->lfd);
	tcpchat_buf_free(&f->in);
}

/* Receives the next client message (binary codec).  1, 0 on timeout, -1
 * on close. */
static int fake_recv(struct fake *f, struct fmsg *out, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	for (;;) {
		if (f->in.len) {
			tcpchat_msg m;
			memset(&m, 0, sizeof m);
			tcpchat_decode_ctx ctx = {0};
			ctx.max_frame = 1 << 16;
			ctx.scratch = f->scratch;
			ctx.scratch_len = sizeof f->scratch;
			const tcpchat_codec *c = tcpchat_codec_binary();
			long k = c->decode(c->codec_data, f->in.data, f->in.len,
			                   &m, &ctx);
			if (k < 0)
				return -1;
			if (k > 0) {
				memset(out, 0, sizeof *out);
				out->type = m.type;
				out->code = m.code;
				out->caps = m.caps;
				copy_view(out->sender, sizeof out->sender,
				          m.sender);
				copy_view(out->room, sizeof out->room, m.room);
				copy_view(out->target, sizeof out->target,
				          m.target);
				copy_view(out->body, sizeof out->body, m.body);
				memmove(f->in.data, f->in.data + k,
				        f->in.len - (size_t)k);
				f->in.len -= (size_t)k;
				return 1;
			}
		}
		int64_t left = deadline - tu_now_ms();
		if (left < 0)
			return 0;
		struct pollfd p = {.fd = f->fd, .events = POLLIN};
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ck_assert_int_eq(tcpchat_buf_reserve(&f->in, 65536), 0);
		ssize_t r = recv(f->fd, f->in.data + f->in.len, 65536, 0);
		if (r <= 0)
			return -1;
		f->in.len += (size_t)r;
	}
}

/* Receives, skipping PINGs, and checks the type. */
static void fake_expect(struct fake *f, uint32_t type, struct fmsg *m)
{
	int rc;
	do
		rc = fake_recv(f, m, TU_TIMEOUT);
	while (rc == 1 && m->type == TCPCHAT_MSG_PING);
	ck_assert_int_eq(rc, 1);
	ck_assert_uint_eq(m->type, type);
}

static tcpchat_str sv(const char *s)
{
	tcpchat_str v = {s, s ? strlen(s) : 0};
	return v;
}

static void fake_send(struct fake *f, const tcpchat_msg *m)
{
	tcpchat_buf b = {0};
	const tcpchat_codec *c = tcpchat_codec_binary();
	ck_assert_int_eq(c->encode(c->codec_data, m, TCPCHAT_FROM_SERVER, &b),
	                 0);
	const char *p = b.data;
	size_t n = b.len;
	while (n) {
		ssize_t k = send(f->fd, p, n, MSG_NOSIGNAL);
		ck_assert_int_gt(k, 0);
		p += k;
		n -= (size_t)k;
	}
	tcpchat_buf_free(&b);
}

/* Accepts the client, reads its HELLO and answers WELCOME with protocol
 * version, default room room (NULL: none) and frame limit max_frame. */
static void fake_welcome(struct fake *f, uint32_t version, const char *room,
                         uint64_t max_frame, struct fmsg *hello)
{
	fake_accept(f);
	fake_expect(f, TCPCHAT_MSG_HELLO, hello);
	tcpchat_msg w = {.type = TCPCHAT_MSG_WELCOME};
	w.code = version;
	w.sender = sv(hello->sender);
	w.room = sv(room);
	w.caps = TCPCHAT_CAP_BASE | (version >= 2 ? TCPCHAT_CAP_ROOMS : 0);
	w.max_frame = max_frame;
	fake_send(f, &w);
}

/* The server's side of an event about a room: type (JOIN or LEAVE) of
 * sender in room, with code. */
static void fake_room_event(struct fake *f, uint32_t type, const char *sender,
                            const char *room, uint32_t code)
{
	tcpchat_msg m = {.type = type};
	m.sender = sv(sender);
	m.room = sv(room);
	m.code = code;
	fake_send(f, &m);
}

/* ---- 1. against a raw peer acting as a server ------------------------ */

START_TEST(hello_announces_protocol_2)
{
	struct fake f;
	fake_listen(&f);
	struct rec r;
	rec_init(&r);
	rec_start(&r, f.port, "alice", 1);
	struct fmsg h;
	fake_welcome(&f, 2, "#lobby", 0, &h);
	ck_assert_str_eq(h.sender, "alice");
	ck_assert_uint_eq(h.code, 2);
	ck_assert_uint_eq(h.caps, TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS |
	                                  TCPCHAT_CAP_HISTORY);
	ck_assert(wait_ge(&r.connected, 1));
	int rc;
	tcpchat_server_info s = info_of(r.cli, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(s.protocol, 2);
	ck_assert_str_eq(s.default_room, "#lobby");
	/* a caller built against the protocol-1 struct gets its fields */
	struct {
		size_t size;
		uint64_t caps, max_frame, queue_frames, queue_bytes;
		char guard[8];
	} old;
	memset(&old, 0x5a, sizeof old);
	old.size = offsetof(tcpchat_server_info, protocol);
	ck_assert_int_eq(
	        tcpchat_client_server_info(r.cli, (tcpchat_server_info *)&old),
	        0);
	ck_assert_uint_eq(old.caps, TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS);
	ck_assert_int_eq(old.guard[0], 0x5a);
	wait_view(&r, "#lobby", "#lobby");
	char cur[TCPCHAT_ROOM_MAX + 1];
	ck_assert_int_eq(tcpchat_client_current_room(r.cli, cur, sizeof cur),
	                 6);
	ck_assert_str_eq(cur, "#lobby");
	ck_assert_int_eq(tcpchat_client_current_room(r.cli, cur, 6),
	                 TCPCHAT_EMSGSIZE);
	ck_assert_str_eq(cur, "");
	rec_stop(&r);
	/* after the end: no rooms, and the WELCOME's information stays */
	wait_view(&r, "", "");
	ck_assert_int_eq(tcpchat_client_current_room(r.cli, cur, sizeof cur),
	                 0);
	s = info_of(r.cli, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(s.default_room, "#lobby");
	rec_fini(&r);
	fake_close(&f);
}
END_TEST

/* Every room call, as it goes on the wire, and the view kept from the
 * server's confirmations (joins asked for, forced joins, parts, forced
 * parts, other users' joins). */
START_TEST(calls_on_the_wire_and_view)
{
	struct fake f;
	fake_listen(&f);
	struct rec r;
	rec_init(&r);
	rec_start(&r, f.port, "alice", 1);
	struct fmsg h, m;
	fake_welcome(&f, 2, "#lobby", 0, &h);
	ck_assert(wait_ge(&r.connected, 1));
	wait_view(&r, "#lobby", "#lobby");

	ck_assert_int_eq(tcpchat_client_room_join(r.cli, "#dev"), 0);
	fake_expect(&f, TCPCHAT_MSG_JOIN, &m);
	ck_assert_str_eq(m.room, "#dev");
	/* not a member until the server says so */
	fake_room_event(&f, TCPCHAT_MSG_JOIN, "bob", "#lobby", 2);
	ck_assert_uint_eq(
	        wait_msg(&r, TCPCHAT_MSG_JOIN, "bob", NULL, NULL, NULL).type,
	        TCPCHAT_MSG_JOIN);
	wait_view(&r, "#lobby", "#lobby");
	fake_room_event(&f, TCPCHAT_MSG_JOIN, "alice", "#dev", 1);
	wait_view(&r, "#lobby #dev", "#dev");

	/* a join the server made for us: the current room stays */
	fake_room_event(&f, TCPCHAT_MSG_JOIN, "alice", "#ops", 3);
	wait_view(&r, "#lobby #dev #ops", "#dev");
	/* joining a room we are in again makes it current, once confirmed */
	ck_assert_int_eq(tcpchat_client_room_join(r.cli, "#ops"), 0);
	fake_expect(&f, TCPCHAT_MSG_JOIN, &m);
	ck_assert_str_eq(m.room, "#ops");
	fake_room_event(&f, TCPCHAT_MSG_JOIN, "alice", "#ops", 3);
	wait_view(&r, "#lobby #dev #ops", "#ops");

	ck_assert_int_eq(tcpchat_client_room_part(r.cli, NULL, NULL), 0);
	fake_expect(&f, TCPCHAT_MSG_LEAVE, &m);
	ck_assert_str_eq(m.room, "");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);
	ck_assert_str_eq(m.body, "");
	ck_assert_int_eq(tcpchat_client_room_part(r.cli, "#dev", "bye all"), 0);
	fake_expect(&f, TCPCHAT_MSG_LEAVE, &m);
	ck_assert_str_eq(m.room, "#dev");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);
	ck_assert_str_eq(m.body, "bye all");
	/* the confirmations: parting the current room falls back to the
	 * default room */
	fake_room_event(&f, TCPCHAT_MSG_LEAVE, "alice", "#ops",
	                TCPCHAT_REASON_PART);
	wait_view(&r, "#lobby #dev", "#lobby");
	fake_room_event(&f, TCPCHAT_MSG_LEAVE, "alice", "#dev",
	                TCPCHAT_REASON_PART);
	wait_view(&r, "#lobby", "#lobby");
	/* another user's part changes nothing; a forced part of the
	 * default room, which is current, leaves no current room */
	fake_room_event(&f, TCPCHAT_MSG_LEAVE, "bob", "#lobby",
	                TCPCHAT_REASON_PART);
	fake_room_event(&f, TCPCHAT_MSG_LEAVE, "alice", "#lobby",
	                TCPCHAT_REASON_KICKED);
	wait_view(&r, "", "");
	ck_assert(has_msg(&r, TCPCHAT_MSG_LEAVE, "bob", "#lobby", NULL, NULL));

	ck_assert_int_eq(tcpchat_client_send_room(r.cli, "#dev", "hi dev", 6),
	                 0);
	fake_expect(&f, TCPCHAT_MSG_TEXT, &m);
	ck_assert_str_eq(m.room, "#dev");
	ck_assert_str_eq(m.target, "");
	ck_assert_str_eq(m.body, "hi dev");
	ck_assert_int_eq(tcpchat_client_send_private(r.cli, "bob", "psst", 4),
	                 0);
	fake_expect(&f, TCPCHAT_MSG_TEXT, &m);
	ck_assert_str_eq(m.room, "");
	ck_assert_str_eq(m.target, "bob");
	ck_assert_str_eq(m.body, "psst");
	ck_assert_int_eq(tcpchat_client_send(r.cli, "plain", 5), 0);
	fake_expect(&f, TCPCHAT_MSG_TEXT, &m);
	ck_assert_str_eq(m.room, "");
	ck_assert_str_eq(m.target, "");
	ck_assert_int_eq(tcpchat_client_rooms(r.cli), 0);
	fake_expect(&f, TCPCHAT_MSG_ROOMS, &m);
	ck_assert_str_eq(m.room, "");
	ck_assert_int_eq(tcpchat_client_who_room(r.cli, "#dev"), 0);
	fake_expect(&f, TCPCHAT_MSG_WHO, &m);
	ck_assert_str_eq(m.room, "#dev");
	ck_assert_int_eq(tcpchat_client_who(r.cli), 0);
	fake_expect(&f, TCPCHAT_MSG_WHO, &m);
	ck_assert_str_eq(m.room, "");
	ck_assert_int_eq(tcpchat_client_set_topic(r.cli, "#dev", "ship it"), 0);
	fake_expect(&f, TCPCHAT_MSG_TOPIC, &m);
	ck_assert_str_eq(m.room, "#dev");
	ck_assert_str_eq(m.body, "ship it");
	ck_assert_int_eq(tcpchat_client_set_topic(r.cli, "#dev", NULL), 0);
	fake_expect(&f, TCPCHAT_MSG_TOPIC, &m);
	ck_assert_str_eq(m.body, "");

	/* a join request refused with an ERROR naming the room is
	 * forgotten: a later forced join there does not make it current */
	fake_room_event(&f, TCPCHAT_MSG_JOIN, "alice", "#lobby", 1);
	wait_view(&r, "#lobby", "");
	ck_assert_int_eq(tcpchat_client_room_join(r.cli, "#vip"), 0);
	fake_expect(&f, TCPCHAT_MSG_JOIN, &m);
	tcpchat_msg e = {.type = TCPCHAT_MSG_ERROR};
	e.code = TCPCHAT_WIRE_REFUSED;
	e.room = sv("#vip");
	e.body = sv("members only");
	fake_send(&f, &e);
	ck_assert_uint_eq(wait_msg(&r, TCPCHAT_MSG_ERROR, NULL, "#vip", NULL,
	                           "members only")
	                          .type,
	                  TCPCHAT_MSG_ERROR);
	fake_room_event(&f, TCPCHAT_MSG_JOIN, "alice", "#vip", 2);
	wait_view(&r, "#lobby #vip", "");

	rec_stop(&r);
	fake_expect(&f, TCPCHAT_MSG_LEAVE, &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_QUIT);
	rec_fini(&r);
	fake_close(&f);
}
END_TEST

/* A server that answers protocol 1: the room calls say ENOTSUP, the rest
 * works, and room calls queued before the WELCOME are not sent. */
START_TEST(protocol_1_server_enotsup)
{
	struct fake f;
	fake_listen(&f);
	struct rec r;
	rec_init(&r);
	rec_start(&r, f.port, "alice", 1);
	/* queued before the WELCOME */
	ck_assert_int_eq(tcpchat_client_room_join(r.cli, "#dev"), 0);
	ck_assert_int_eq(tcpchat_client_send_private(r.cli, "bob", "x", 1), 0);
	ck_assert_int_eq(tcpchat_client_send(r.cli, "first", 5), 0);
	struct fmsg h, m;
	fake_welcome(&f, 1, NULL, 0, &h);
	ck_assert(wait_ge(&r.connected, 1));
	fake_expect(&f, TCPCHAT_MSG_TEXT, &m);
	ck_assert_str_eq(m.body, "first");
	ck_assert_str_eq(m.target, "");
	pthread_mutex_lock(&r.mu);
	ck_assert_int_eq(r.logs_not_sent, 2);
	pthread_mutex_unlock(&r.mu);

	int rc;
	tcpchat_server_info s = info_of(r.cli, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(s.protocol, 1);
	ck_assert_str_eq(s.default_room, "");
	ck_assert_int_eq(tcpchat_client_room_join(r.cli, "#dev"),
	                 TCPCHAT_ENOTSUP);
	ck_assert_int_eq(tcpchat_client_room_part(r.cli, NULL, NULL),
	                 TCPCHAT_ENOTSUP);
	ck_assert_int_eq(tcpchat_client_room_part(r.cli, "#dev", "x"),
	                 TCPCHAT_ENOTSUP);
	ck_assert_int_eq(tcpchat_client_send_room(r.cli, "#dev", "hi", 2),
	                 TCPCHAT_ENOTSUP);
	ck_assert_int_eq(tcpchat_client_send_private(r.cli, "bob", "hi", 2),
	                 TCPCHAT_ENOTSUP);
	ck_assert_int_eq(tcpchat_client_rooms(r.cli), TCPCHAT_ENOTSUP);
	ck_assert_int_eq(tcpchat_client_who_room(r.cli, "#dev"),
	                 TCPCHAT_ENOTSUP);
	ck_assert_int_eq(tcpchat_client_set_topic(r.cli, "#dev", "t"),
	                 TCPCHAT_ENOTSUP);
	/* argument errors come first */
	ck_assert_int_eq(tcpchat_client_room_join(r.cli, "dev"),
	                 TCPCHAT_EBADROOM);
	/* protocol 1 still works */
	ck_assert_int_eq(tcpchat_client_who(r.cli), 0);
	fake_expect(&f, TCPCHAT_MSG_WHO, &m);
	ck_assert_int_eq(tcpchat_client_send(r.cli, "second", 6), 0);
	fake_expect(&f, TCPCHAT_MSG_TEXT, &m);
	ck_assert_str_eq(m.body, "second");
	/* a JOIN of a protocol-1 server (no room) changes no view */
	fake_room_event(&f, TCPCHAT_MSG_JOIN, "alice", NULL, 0);
	ck_assert_uint_eq(
	        wait_msg(&r, TCPCHAT_MSG_JOIN, "alice", "", NULL, NULL).type,
	        TCPCHAT_MSG_JOIN);
	wait_view(&r, "", "");
	rec_stop(&r);
	rec_fini(&r);
	fake_close(&f);
}
END_TEST

/* The server's frame limit from its WELCOME applies to room texts. */
START_TEST(frame_limit_from_welcome)
{
	struct fake f;
	fake_listen(&f);
	struct rec r;
	rec_init(&r);
	rec_start(&r, f.port, "alice", 1);
	struct fmsg h, m;
	fake_welcome(&f, 2, "#lobby", 256, &h);
	ck_assert(wait_ge(&r.connected, 1));
	char text[400];
	memset(text, 'x', sizeof text);
	ck_assert_int_eq(tcpchat_client_send_room(r.cli, "#lobby", text, 300),
	                 TCPCHAT_EMSGSIZE);
	ck_assert_int_eq(tcpchat_client_send_private(r.cli, "bob", text, 300),
	                 TCPCHAT_EMSGSIZE);
	ck_assert_int_eq(tcpchat_client_send_room(r.cli, "#lobby", text, 100),
	                 0);
	fake_expect(&f, TCPCHAT_MSG_TEXT, &m);
	ck_assert_uint_eq(strlen(m.body), 100);
	rec_stop(&r);
	rec_fini(&r);
	fake_close(&f);
}
END_TEST

/* ---- 2. argument checks -------------------------------------------------- */

START_TEST(argument_checks)
{
	tcpchat_client *cli;
	ck_assert_int_eq(tcpchat_client_new(&cli), 0);
	char long_room[TCPCHAT_ROOM_MAX + 2];
	long_room[0] = '#';
	memset(long_room + 1, 'r', sizeof long_room - 2);
	long_room[sizeof long_room - 1] = '\0'; /* 65 bytes */
	char max_room[TCPCHAT_ROOM_MAX + 1];
	memcpy(max_room, long_room, TCPCHAT_ROOM_MAX);
	max_room[TCPCHAT_ROOM_MAX] = '\0'; /* 64 bytes: fine */
	char topic[TCPCHAT_TOPIC_MAX + 2];
	memset(topic, 't', sizeof topic - 1);
	topic[sizeof topic - 1] = '\0'; /* 257 bytes */

	/* NULL and bad rooms */
	ck_assert_int_eq(tcpchat_client_room_join(NULL, "#a"), TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_room_join(cli, NULL), TCPCHAT_EINVAL);
	const char *bad_rooms[] = {"",     "dev", "#",        "#a b",
	                           "#a,b", "#\t", "#caf\xc3", long_room};
	for (size_t i = 0; i < sizeof bad_rooms / sizeof bad_rooms[0]; i++) {
		const char *b = bad_rooms[i];
		ck_assert_int_eq(tcpchat_client_room_join(cli, b),
		                 TCPCHAT_EBADROOM);
		ck_assert_int_eq(tcpchat_client_room_part(cli, b, NULL),
		                 TCPCHAT_EBADROOM);
		ck_assert_int_eq(tcpchat_client_send_room(cli, b, "hi", 2),
		                 TCPCHAT_EBADROOM);
		ck_assert_int_eq(tcpchat_client_who_room(cli, b),
		                 TCPCHAT_EBADROOM);
		ck_assert_int_eq(tcpchat_client_set_topic(cli, b, "t"),
		                 TCPCHAT_EBADROOM);
	}
	ck_assert_int_eq(tcpchat_client_send_room(cli, NULL, "hi", 2),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_who_room(cli, NULL), TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_set_topic(cli, NULL, "t"),
	                 TCPCHAT_EINVAL);

	/* texts */
	const char *bad_texts[] = {"", "a\nb", "bell\a", "\xff\xfe", "del\x7f"};
	for (size_t i = 0; i < sizeof bad_texts / sizeof bad_texts[0]; i++) {
		const char *t = bad_texts[i];
		ck_assert_int_eq(
		        tcpchat_client_send_room(cli, "#a", t, strlen(t)),
		        TCPCHAT_EINVAL);
		ck_assert_int_eq(
		        tcpchat_client_send_private(cli, "bob", t, strlen(t)),
		        TCPCHAT_EINVAL);
		if (*t) {
			ck_assert_int_eq(tcpchat_client_room_part(cli, NULL, t),
			                 TCPCHAT_EINVAL);
			ck_assert_int_eq(tcpchat_client_set_topic(cli, "#a", t),
			                 TCPCHAT_EINVAL);
		}
	}
	ck_assert_int_eq(tcpchat_client_send_room(cli, "#a", NULL, 2),
	                 TCPCHAT_EINVAL);

	/* names */
	ck_assert_int_eq(tcpchat_client_send_private(cli, NULL, "hi", 2),
	                 TCPCHAT_EINVAL);
	const char *bad_names[] = {"", "two words", "tab\there",
	                           "abcdefghijklmnopqrstuvwxyz0123456"};
	for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
		ck_assert_int_eq(
		        tcpchat_client_send_private(cli, bad_names[i], "hi", 2),
		        TCPCHAT_EBADNAME);

	/* sizes */
	ck_assert_int_eq(tcpchat_client_set_topic(cli, "#a", topic),
	                 TCPCHAT_EMSGSIZE);
	ck_assert_int_eq(
	        tcpchat_client_set_option(cli, TCPCHAT_COPT_MAX_FRAME, 64), 0);
	char text[100];
	memset(text, 'x', sizeof text);
	ck_assert_int_eq(tcpchat_client_send_room(cli, "#a", text, 100),
	                 TCPCHAT_EMSGSIZE);
	ck_assert_int_eq(tcpchat_client_send_private(cli, "bob", text, 100),
	                 TCPCHAT_EMSGSIZE);

	/* good arguments, no connection */
	topic[TCPCHAT_TOPIC_MAX] = '\0';
	ck_assert_int_eq(tcpchat_client_set_topic(cli, "#a", topic),
	                 TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_room_join(cli, max_room),
	                 TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_room_join(cli, "#caf\xc3\xa9"),
	                 TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_room_part(cli, NULL, NULL),
	                 TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_room_part(cli, NULL, ""),
	                 TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_send_room(cli, "#a", "tab\tok", 6),
	                 TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_send_private(cli, "bob", "hi", 2),
	                 TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_rooms(cli), TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_who_room(cli, "#a"), TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_set_topic(cli, "#a", ""),
	                 TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_rooms(NULL), TCPCHAT_EINVAL);

	/* the queries */
	char cur[8];
	ck_assert_int_eq(tcpchat_client_current_room(cli, cur, sizeof cur), 0);
	ck_assert_str_eq(cur, "");
	ck_assert_int_eq(tcpchat_client_current_room(cli, cur, 0),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_current_room(cli, NULL, 8),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_current_room(NULL, cur, 8),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_rooms_joined(cli, NULL, NULL), 0);
	ck_assert_int_eq(tcpchat_client_rooms_joined(NULL, NULL, NULL),
	                 TCPCHAT_EINVAL);
	tcpchat_server_info s;
	memset(&s, 0, sizeof s);
	s.size = sizeof s;
	ck_assert_int_eq(tcpchat_client_server_info(cli, &s), TCPCHAT_ECLOSED);
	tcpchat_client_destroy(cli);
}
END_TEST

/* ---- 3. against a real server ------------------------------------------- */

/* A server with the default room "#lobby", in its own thread. */
static tcpchat_server *server_start(int *port)
{
	tcpchat_server *srv = tu_server_start(NULL, port);
	ck_assert_ptr_nonnull(srv);
	return srv;
}

/* Starts a recorder per name, connected to port (all initialised first,
 * then started in order). */
static void recs_start(int port, struct rec *const *r, const char *const *names,
                       int n)
{
	for (int i = 0; i < n; i++)
		rec_init(r[i]);
	for (int i = 0; i < n; i++)
		rec_start(r[i], port, names[i], 0);
}

/* Stops the recorders, frees them, then stops srv. */
static void recs_finish(tcpchat_server *srv, struct rec *const *r, int n)
{
	for (int i = 0; i < n; i++)
		rec_stop(r[i]);
	for (int i = 0; i < n; i++)
		rec_fini(r[i]);
	tu_server_stop(srv);
}

START_TEST(join_part_confirmations)
{
	int port;
	tcpchat_server *srv = server_start(&port);
	struct rec a, b;
	rec_init(&a);
	rec_init(&b);
	rec_start(&a, port, "alice", 0);
	wait_view(&a, "#lobby", "#lobby");
	int rc;
	tcpchat_server_info s = info_of(a.cli, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(s.protocol, 2);
	ck_assert_uint_eq(s.caps & TCPCHAT_CAP_ROOMS, TCPCHAT_CAP_ROOMS);
	ck_assert_str_eq(s.default_room, "#lobby");

	ck_assert_int_eq(tcpchat_client_room_join(a.cli, "#dev"), 0);
	struct rmsg m =
	        wait_msg(&a, TCPCHAT_MSG_JOIN, "alice", "#dev", NULL, NULL);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_JOIN);
	ck_assert_uint_eq(m.code, 1);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM, 0);
	wait_view(&a, "#lobby #dev", "#dev");

	/* bob's join of #dev reaches alice, with the member count */
	rec_start(&b, port, "bob", 0);
	ck_assert_int_eq(tcpchat_client_room_join(b.cli, "#dev"), 0);
	m = wait_msg(&a, TCPCHAT_MSG_JOIN, "bob", "#dev", NULL, NULL);
	ck_assert_uint_eq(m.code, 2);
	wait_view(&b, "#lobby #dev", "#dev");
	wait_view(&a, "#lobby #dev", "#dev");

	/* a plain text goes to the current room: bob's is #dev */
	ck_assert_int_eq(tcpchat_client_send(b.cli, "to current", 10), 0);
	m = wait_msg(&a, TCPCHAT_MSG_TEXT, "bob", NULL, NULL, "to current");
	ck_assert_str_eq(m.room, "#dev");

	/* part of the current room, with a reason */
	ck_assert_int_eq(tcpchat_client_room_part(a.cli, NULL, "lunch"), 0);
	m = wait_msg(&a, TCPCHAT_MSG_LEAVE, "alice", "#dev", NULL, NULL);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);
	ck_assert_str_eq(m.body, "lunch");
	wait_view(&a, "#lobby", "#lobby");
	m = wait_msg(&b, TCPCHAT_MSG_LEAVE, "alice", "#dev", NULL, "lunch");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);

	/* forced join and part by the server application */
	ck_assert_int_eq(tcpchat_server_room_join(srv, "alice", "#ops"), 0);
	wait_view(&a, "#lobby #ops", "#lobby");
	ck_assert_int_eq(tcpchat_server_room_part(srv, "alice", "#ops", "out"),
	                 0);
	m = wait_msg(&a, TCPCHAT_MSG_LEAVE, "alice", "#ops", NULL, NULL);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_KICKED);
	wait_view(&a, "#lobby", "#lobby");

	/* parting the default room leaves no room; a plain text then gets
	 * a non-fatal NOTMEMBER */
	ck_assert_int_eq(tcpchat_client_room_part(a.cli, "#lobby", NULL), 0);
	wait_view(&a, "", "");
	ck_assert_int_eq(tcpchat_client_send(a.cli, "nowhere", 7), 0);
	m = wait_msg(&a, TCPCHAT_MSG_ERROR, NULL, NULL, NULL, NULL);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_NOTMEMBER);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_CLOSING, 0);
	ck_assert_int_eq(tcpchat_client_is_connected(a.cli), 1);
	/* parting a room we are not in */
	ck_assert_int_eq(tcpchat_client_room_part(a.cli, "#dev", NULL), 0);
	ck_assert(
	        wait_msg(&a, TCPCHAT_MSG_ERROR, NULL, NULL, NULL, NULL).type ==
	        TCPCHAT_MSG_ERROR);
	ck_assert_int_eq(count_msgs(&a, TCPCHAT_MSG_ERROR, NULL) >= 1, 1);
	ck_assert_int_eq(tcpchat_client_room_join(a.cli, "#lobby"), 0);
	wait_view(&a, "#lobby", "#lobby");

	recs_finish(srv, (struct rec *const[]){&a, &b}, 2);
}
END_TEST

START_TEST(room_text_reaches_members_only)
{
	int port;
	tcpchat_server *srv = server_start(&port);
	struct rec a, b, c;
	recs_start(port, (struct rec *const[]){&a, &b, &c},
	           (const char *const[]){"alice", "bob", "carol"}, 3);
	ck_assert_int_eq(tcpchat_client_room_join(a.cli, "#dev"), 0);
	ck_assert_int_eq(tcpchat_client_room_join(b.cli, "#dev"), 0);
	wait_view(&a, "#lobby #dev", "#dev");
	wait_view(&b, "#lobby #dev", "#dev");

	ck_assert_int_eq(tcpchat_client_send_room(a.cli, "#dev", "hi dev", 6),
	                 0);
	/* then a text to the default room, which everyone is in */
	ck_assert_int_eq(tcpchat_client_send_room(a.cli, "#lobby", "marker", 6),
	                 0);
	struct rmsg m =
	        wait_msg(&b, TCPCHAT_MSG_TEXT, "alice", "#dev", "", "hi dev");
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_TEXT);
	ck_assert_uint_gt(m.id, 0);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM, 0);
	m = wait_msg(&c, TCPCHAT_MSG_TEXT, "alice", "#lobby", NULL, "marker");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM,
	                  TCPCHAT_MSGF_DEFAULT_ROOM);
	/* carol got the later text, so never gets the room's */
	ck_assert(!has_msg(&c, TCPCHAT_MSG_TEXT, NULL, NULL, NULL, "hi dev"));
	/* the sender gets no copy: bob answers privately, and by then */
	wait_msg(&b, TCPCHAT_MSG_TEXT, "alice", "#lobby", NULL, "marker");
	ck_assert_int_eq(tcpchat_client_send_private(b.cli, "alice", "seen", 4),
	                 0);
	wait_msg(&a, TCPCHAT_MSG_TEXT, "bob", NULL, "alice", "seen");
	ck_assert_int_eq(count_msgs(&a, TCPCHAT_MSG_TEXT, "hi dev"), 0);
	ck_assert_int_eq(count_msgs(&a, TCPCHAT_MSG_TEXT, "marker"), 0);

	/* carol is not a member of #dev */
	ck_assert_int_eq(
	        tcpchat_client_send_room(c.cli, "#dev", "let me in", 9), 0);
	m = wait_msg(&c, TCPCHAT_MSG_ERROR, NULL, NULL, NULL, NULL);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_NOTMEMBER);
	ck_assert_int_eq(tcpchat_client_is_connected(c.cli), 1);
	ck_assert_int_eq(tcpchat_client_send_room(a.cli, "#lobby", "m2", 2), 0);
	wait_msg(&b, TCPCHAT_MSG_TEXT, "alice", "#lobby", NULL, "m2");
	ck_assert_int_eq(count_msgs(&b, TCPCHAT_MSG_TEXT, "let me in"), 0);

	recs_finish(srv, (struct rec *const[]){&a, &b, &c}, 3);
}
END_TEST

START_TEST(private_messages)
{
	int port;
	tcpchat_server *srv = server_start(&port);
	struct rec a, b, c;
	recs_start(port, (struct rec *const[]){&a, &b, &c},
	           (const char *const[]){"alice", "bob", "carol"}, 3);

	ck_assert_int_eq(tcpchat_client_send_private(a.cli, "bob", "psst", 4),
	                 0);
	struct rmsg got =
	        wait_msg(&b, TCPCHAT_MSG_TEXT, "alice", "", "bob", "psst");
	ck_assert_uint_eq(got.type, TCPCHAT_MSG_TEXT);
	ck_assert_uint_eq(got.flags & TCPCHAT_MSGF_ECHO, 0);
	struct rmsg echo =
	        wait_msg(&a, TCPCHAT_MSG_TEXT, "alice", "", "bob", "psst");
	ck_assert_uint_eq(echo.type, TCPCHAT_MSG_TEXT);
	ck_assert_uint_eq(echo.flags & TCPCHAT_MSGF_ECHO, TCPCHAT_MSGF_ECHO);
	ck_assert_uint_eq(echo.id, got.id);
	/* carol: a later text to everyone arrives, the private one never */
	ck_assert_int_eq(tcpchat_client_send(a.cli, "public", 6), 0);
	wait_msg(&c, TCPCHAT_MSG_TEXT, "alice", NULL, NULL, "public");
	ck_assert_int_eq(count_msgs(&c, TCPCHAT_MSG_TEXT, "psst"), 0);
	ck_assert_int_eq(count_msgs(&b, TCPCHAT_MSG_TEXT, "psst"), 1);

	/* to oneself: once, as the echo */
	ck_assert_int_eq(tcpchat_client_send_private(c.cli, "carol", "memo", 4),
	                 0);
	got = wait_msg(&c, TCPCHAT_MSG_TEXT, "carol", NULL, "carol", "memo");
	ck_assert_uint_eq(got.flags & TCPCHAT_MSGF_ECHO, TCPCHAT_MSGF_ECHO);
	ck_assert_int_eq(tcpchat_client_send_private(c.cli, "carol", "m2", 2),
	                 0);
	wait_msg(&c, TCPCHAT_MSG_TEXT, "carol", NULL, "carol", "m2");
	ck_assert_int_eq(count_msgs(&c, TCPCHAT_MSG_TEXT, "memo"), 1);

	/* to nobody: a non-fatal NOTFOUND */
	ck_assert_int_eq(
	        tcpchat_client_send_private(a.cli, "nobody", "hello?", 6), 0);
	got = wait_msg(&a, TCPCHAT_MSG_ERROR, NULL, NULL, NULL, NULL);
	ck_assert_uint_eq(got.code, TCPCHAT_WIRE_NOTFOUND);
	ck_assert_uint_eq(got.flags & TCPCHAT_MSGF_CLOSING, 0);
	ck_assert_int_eq(tcpchat_client_is_connected(a.cli), 1);

	recs_finish(srv, (struct rec *const[]){&a, &b, &c}, 3);
}
END_TEST

START_TEST(topic_who_and_room_list)
{
	int port;
	tcpchat_server *srv = server_start(&port);
	struct rec a, b;
	recs_start(port, (struct rec *const[]){&a, &b},
	           (const char *const[]){"alice", "bob"}, 2);
	ck_assert_int_eq(tcpchat_client_room_join(a.cli, "#dev"), 0);
	wait_view(&a, "#lobby #dev", "#dev");
	ck_assert_int_eq(tcpchat_client_set_topic(a.cli, "#dev", "release"), 0);
	struct rmsg m =
	        wait_msg(&a, TCPCHAT_MSG_TOPIC, "alice", "#dev", NULL, NULL);
	ck_assert_str_eq(m.body, "release");

	/* a joiner gets the topic after its confirmation (tcpchat-protocol(7)
	 * has its sender as the user who set it; this server leaves it
	 * empty there, so the sender is not checked) */
	ck_assert_int_eq(tcpchat_client_room_join(b.cli, "#dev"), 0);
	wait_msg(&b, TCPCHAT_MSG_JOIN, "bob", "#dev", NULL, NULL);
	struct want w = {&b,   TCPCHAT_MSG_TOPIC, 0, 0, NULL, "#dev",
	                 NULL, "release",         0, -1};
	ck_assert(tu_wait_until(cond_found, &w, TU_TIMEOUT));
	/* right after the confirmation */
	ck_assert(w.found >= 1);
	pthread_mutex_lock(&b.mu);
	ck_assert_uint_eq(b.v[w.found - 1].type, TCPCHAT_MSG_JOIN);
	ck_assert_str_eq(b.v[w.found - 1].sender, "bob");
	pthread_mutex_unlock(&b.mu);
	wait_view(&b, "#lobby #dev", "#dev");

	ck_assert_int_eq(tcpchat_client_who_room(a.cli, "#dev"), 0);
	m = wait_msg(&a, TCPCHAT_MSG_WHO, NULL, "#dev", NULL, NULL);
	ck_assert_uint_eq(m.code, 2);
	ck_assert_str_eq(m.body, "alice bob");
	ck_assert_int_eq(tcpchat_client_who_room(a.cli, "#nowhere"), 0);
	m = wait_msg(&a, TCPCHAT_MSG_ERROR, NULL, NULL, NULL, NULL);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_NOTFOUND);

	ck_assert_int_eq(tcpchat_client_rooms(a.cli), 0);
	m = wait_msg(&a, TCPCHAT_MSG_ROOMS, NULL, "", NULL, NULL);
	ck_assert_uint_eq(m.code, 2);
	m = wait_msg(&a, TCPCHAT_MSG_ROOMS, NULL, "#lobby", NULL, NULL);
	ck_assert_uint_eq(m.code, 2);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM,
	                  TCPCHAT_MSGF_DEFAULT_ROOM);
	m = wait_msg(&a, TCPCHAT_MSG_ROOMS, NULL, "#dev", NULL, NULL);
	ck_assert_uint_eq(m.code, 2);
	ck_assert_str_eq(m.body, "release");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM, 0);

	/* clearing the topic, and a topic for a room one is not in */
	ck_assert_int_eq(tcpchat_client_set_topic(b.cli, "#dev", ""), 0);
	m = wait_msg(&a, TCPCHAT_MSG_TOPIC, "bob", "#dev", NULL, "");
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_TOPIC);
	ck_assert_int_eq(tcpchat_client_set_topic(b.cli, "#elsewhere", "x"), 0);
	m = wait_msg(&b, TCPCHAT_MSG_ERROR, NULL, NULL, NULL, NULL);
	ck_assert_uint_ne(m.code, 0);
	ck_assert_int_eq(tcpchat_client_is_connected(b.cli), 1);

	recs_finish(srv, (struct rec *const[]){&a, &b}, 2);
}
END_TEST

/* A server without a default room, whose joins and parts are announced
 * only in rooms of at most one member: the confirmations still come. */
START_TEST(no_default_room_quiet_rooms)
{
	tcpchat_server *srv;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	ck_assert_int_eq(tu_server_timers(srv), 0);
	ck_assert_int_eq(tcpchat_server_set_default_room(srv, NULL), 0);
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_ANNOUNCE_MAX, 1),
	        0);
	ck_assert_int_eq(tcpchat_server_listen(srv, "127.0.0.1:0", NULL), 0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	int port = tcpchat_server_port(srv, 0);
	struct rec a, b;
	rec_init(&a);
	rec_init(&b);
	rec_start(&a, port, "alice", 0);
	int rc;
	tcpchat_server_info s = info_of(a.cli, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(s.protocol, 2);
	ck_assert_str_eq(s.default_room, "");
	wait_view(&a, "", "");
	ck_assert_int_eq(tcpchat_client_send(a.cli, "anyone?", 7), 0);
	struct rmsg m = wait_msg(&a, TCPCHAT_MSG_ERROR, NULL, NULL, NULL, NULL);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_NOTMEMBER);

	ck_assert_int_eq(tcpchat_client_room_join(a.cli, "#big"), 0);
	wait_view(&a, "#big", "#big");
	rec_start(&b, port, "bob", 0);
	ck_assert_int_eq(tcpchat_client_room_join(b.cli, "#big"), 0);
	wait_view(&b, "#big", "#big");
	ck_assert_int_eq(tcpchat_client_send(b.cli, "after join", 10), 0);
	m = wait_msg(&a, TCPCHAT_MSG_TEXT, "bob", "#big", NULL, "after join");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM, 0);
	ck_assert(!has_msg(&a, TCPCHAT_MSG_JOIN, "bob", NULL, NULL, NULL));
	ck_assert_int_eq(tcpchat_client_room_part(b.cli, NULL, NULL), 0);
	wait_view(&b, "", "");
	ck_assert(has_msg(&b, TCPCHAT_MSG_LEAVE, "bob", "#big", NULL, NULL));

	recs_finish(srv, (struct rec *const[]){&a, &b}, 2);
}
END_TEST

/* ---- 4. calls from other threads ---------------------------------------- */

enum { T_THREADS = 4, T_MSGS = 50 };

struct targ {
	tcpchat_client *cli;
	int k, rc;
};

static void *room_thread(void *p)
{
	struct targ *t = p;
	char room[16], text[32];
	snprintf(room, sizeof room, "#t%d", t->k);
	t->rc = tcpchat_client_room_join(t->cli, room);
	for (int i = 0; i < T_MSGS && t->rc == 0; i++) {
		snprintf(text, sizeof text, "t%d m%d", t->k, i);
		t->rc = tcpchat_client_send_room(t->cli, room, text,
		                                 strlen(text));
		if (t->rc == 0 && i % 10 == 0)
			t->rc = tcpchat_client_who_room(t->cli, room);
		if (t->rc == 0 && i % 25 == 0)
			t->rc = tcpchat_client_rooms(t->cli);
		char cur[TCPCHAT_ROOM_MAX + 1];
		if (t->rc == 0 &&
		    tcpchat_client_current_room(t->cli, cur, sizeof cur) < 0)
			t->rc = -99;
	}
	if (t->rc == 0)
		t->rc = tcpchat_client_send_private(t->cli, "obs", "done", 4);
	return NULL;
}

/* alice's view: #lobby then the T_THREADS rooms in any order; the
 * current room one of them. */
static int cond_all_rooms(void *p)
{
	struct rec *r = p;
	pthread_mutex_lock(&r->mu);
	int ok = strncmp(r->rooms, "#lobby ", 7) == 0 &&
	         strlen(r->rooms) == 7 + 4 * T_THREADS - 1 &&
	         strncmp(r->current, "#t", 2) == 0;
	for (int k = 0; ok && k < T_THREADS; k++) {
		char room[16];
		snprintf(room, sizeof room, "#t%d", k);
		ok = strstr(r->rooms, room) != NULL;
	}
	pthread_mutex_unlock(&r->mu);
	return ok;
}

START_TEST(calls_from_other_threads)
{
	int port;
	tcpchat_server *srv = server_start(&port);
	struct rec a, o;
	rec_init(&a);
	rec_init(&o);
	rec_start(&o, port, "obs", 0);
	for (int k = 0; k < T_THREADS; k++) {
		char room[16];
		snprintf(room, sizeof room, "#t%d", k);
		ck_assert_int_eq(tcpchat_client_room_join(o.cli, room), 0);
	}
	wait_view(&o, "#lobby #t0 #t1 #t2 #t3", "#t3");
	rec_start(&a, port, "alice", 0);

	pthread_t th[T_THREADS];
	struct targ args[T_THREADS];
	for (int k = 0; k < T_THREADS; k++) {
		args[k].cli = a.cli;
		args[k].k = k;
		args[k].rc = -100;
		ck_assert_int_eq(
		        pthread_create(&th[k], NULL, room_thread, &args[k]), 0);
	}
	for (int k = 0; k < T_THREADS; k++) {
		pthread_join(th[k], NULL);
		ck_assert_int_eq(args[k].rc, 0);
	}
	/* each thread's "done" follows its texts */
	struct want w = {&o,    TCPCHAT_MSG_TEXT, 0, 0, "alice", NULL,
	                 "obs", "done",           0, -1};
	for (int k = 0; k < T_THREADS; k++) {
		ck_assert(tu_wait_until(cond_found, &w, TU_TIMEOUT));
		w.from = (size_t)w.found + 1;
	}
	int next[T_THREADS] = {0};
	pthread_mutex_lock(&o.mu);
	for (size_t i = 0; i < o.n; i++) {
		const struct rmsg *m = &o.v[i];
		int k, n;
		if (m->type != TCPCHAT_MSG_TEXT || strcmp(m->sender, "alice") ||
		    sscanf(m->body, "t%d m%d", &k, &n) != 2)
			continue;
		ck_assert(k >= 0 && k < T_THREADS);
		char room[16];
		snprintf(room, sizeof room, "#t%d", k);
		ck_assert_str_eq(m->room, room);
		ck_assert_int_eq(n, next[k]);
		next[k]++;
	}
	pthread_mutex_unlock(&o.mu);
	for (int k = 0; k < T_THREADS; k++)
		ck_assert_int_eq(next[k], T_MSGS);
	/* alice is in every room; which is current depends on the order
	 * in which the threads' joins were confirmed */
	ck_assert(tu_wait_until(cond_all_rooms, &a, TU_TIMEOUT));
	ck_assert_int_ge(count_msgs(&a, TCPCHAT_MSG_WHO, "obs alice"), 1);
	ck_assert_int_ge(count_msgs(&a, TCPCHAT_MSG_ROOMS, NULL), 1);

	recs_finish(srv, (struct rec *const[]){&a, &o}, 2);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("client_rooms");
	TCase *tc = tcase_create("raw_server");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, hello_announces_protocol_2);
	tcase_add_test(tc, calls_on_the_wire_and_view);
	tcase_add_test(tc, protocol_1_server_enotsup);
	tcase_add_test(tc, frame_limit_from_welcome);
	tcase_add_test(tc, argument_checks);
	suite_add_tcase(s, tc);

	tc = tcase_create("server");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, join_part_confirmations);
	tcase_add_test(tc, room_text_reaches_members_only);
	tcase_add_test(tc, private_messages);
	tcase_add_test(tc, topic_who_and_room_list);
	tcase_add_test(tc, no_default_room_quiet_rooms);
	tcase_add_test(tc, calls_from_other_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run_suite(suite());
}
