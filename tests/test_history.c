/* A room's history (tcpchat-protocol(7), "History"): HISTORY requests for
 * the latest texts, or those after or before a seq, with their limits;
 * the end marker and its gap flag when texts were pushed out by the
 * bounds of the history; errors; a foreign epoch; the history of a room
 * nobody is in; and resumes (JOIN and HELLO with AFTER) while texts keep
 * coming, which must join the history and the live texts without a hole
 * or a duplicate. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "roomutil.h"

#define EPOCH 42
#define ANSWER_MAX 1200

/* A binary server (and a JSON one when json_port is not NULL) with the
 * epoch of the tests and history bounds msgs and bytes (< 0: default). */
static tcpchat_server *server(int *port, int *json_port, long long msgs,
                              long long bytes)
{
	tcpchat_server *srv = ru_server_epoch(port, json_port, EPOCH);
	if (msgs >= 0)
		ru_server_option(srv, TCPCHAT_SOPT_HISTORY_MSGS, msgs);
	if (bytes >= 0)
		ru_server_option(srv, TCPCHAT_SOPT_HISTORY_BYTES, bytes);
	ru_server_go(srv);
	return srv;
}

/* Posts the texts "m<seq>" for seq from..to to room (the tests know the
 * numbers they get), then waits until the server has handled them. */
static void post(struct tu_peer *p, const char *room, uint64_t from,
                 uint64_t to)
{
	char body[32];
	for (uint64_t s = from; s <= to; s++) {
		snprintf(body, sizeof body, "m%llu", (unsigned long long)s);
		ru_send_room(p, room, body);
	}
	ru_still_here(p);
}

static void ask(struct tu_peer *p, const char *room, uint32_t flags,
                uint64_t seq, uint64_t epoch, uint32_t limit)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_HISTORY};
	m.room.ptr = room;
	m.room.len = room ? strlen(room) : 0;
	m.flags = flags;
	m.seq = seq;
	m.epoch = epoch;
	m.code = limit;
	ck_assert_int_eq(tu_peer_send_msg(p, &m), 0);
}

/* JOIN room resuming after seq of epoch (0: none). */
static void join_after(struct tu_peer *p, const char *room, uint64_t seq,
                       uint64_t epoch)
{
	tcpchat_msg j = {.type = TCPCHAT_MSG_JOIN, .flags = TCPCHAT_MSGF_AFTER};
	j.room.ptr = room;
	j.room.len = strlen(room);
	j.seq = seq;
	j.epoch = epoch;
	ck_assert_int_eq(tu_peer_send_msg(p, &j), 0);
}

/* A HISTORY answer: the seqs of its texts and its end marker. */
struct answer {
	int n;
	uint64_t seq[ANSWER_MAX];
	int others; /* messages other than history texts before the end */
	struct tu_msg text, end; /* the last text, the end marker */
};

static struct answer ans;

/* Receives a history of room up to its end marker: texts flagged
 * HISTORY, from the room, in seq order without holes, each the text
 * "m<seq>" that post() sent. */
static struct answer *collect(struct tu_peer *p, const char *room)
{
	struct tu_msg m;
	char body[32];
	memset(&ans, 0, sizeof ans);
	for (;;) {
		int rc = tu_peer_recv(p, &m, TU_TIMEOUT);
		ck_assert_msg(rc == 1, "history of %s: rc %d after %d texts",
		              room, rc, ans.n);
		if (m.type == TCPCHAT_MSG_HISTORY) {
			ck_assert_str_eq(m.room, room);
			ans.end = m;
			return &ans;
		}
		if (m.type != TCPCHAT_MSG_TEXT ||
		    !(m.flags & TCPCHAT_MSGF_HISTORY)) {
			ans.others++;
			continue;
		}
		ck_assert_str_eq(m.room, room);
		ck_assert_int_lt(ans.n, ANSWER_MAX);
		if (ans.n)
			ck_assert_uint_eq(m.seq, ans.seq[ans.n - 1] + 1);
		snprintf(body, sizeof body, "m%llu", (unsigned long long)m.seq);
		ck_assert_str_eq(m.body, body);
		ck_assert_uint_ne(m.id, 0);
		ck_assert_int_gt(m.timestamp, 0);
		ck_assert_str_eq(m.ref, "");
		ans.seq[ans.n++] = m.seq;
		ans.text = m;
	}
}

static struct answer *history(struct tu_peer *p, const char *room,
                              uint32_t flags, uint64_t seq, uint32_t limit)
{
	ask(p, room, flags, seq, 0, limit);
	return collect(p, room);
}

/* The same for the current room, named in the answer. */
static struct answer *history_here(struct tu_peer *p, const char *cur,
                                   uint32_t limit)
{
	ask(p, NULL, 0, 0, 0, limit);
	return collect(p, cur);
}

/* The answer has n texts first..last (0..0 when n is 0); its end marker
 * says so, with oldest, the room's last seq and gap. */
static void want(const struct answer *a, uint32_t n, uint64_t first,
                 uint64_t last, uint64_t oldest, uint64_t last_seq, int gap)
{
	ck_assert_int_eq(a->n, (int)n);
	ck_assert_uint_eq(a->end.code, n);
	ck_assert_uint_eq(a->end.first, first);
	ck_assert_uint_eq(a->end.last, last);
	if (n) {
		ck_assert_uint_eq(a->seq[0], first);
		ck_assert_uint_eq(a->seq[n - 1], last);
	}
	ck_assert_uint_eq(a->end.oldest, oldest);
	ck_assert_uint_eq(a->end.seq, last_seq);
	ck_assert_uint_eq(a->end.epoch, EPOCH);
	ck_assert_msg(!(a->end.flags & TCPCHAT_MSGF_GAP) == !gap, "gap flag %s",
	              gap ? "missing" : "unexpected");
}

START_TEST(latest_after_and_before)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, -1, -1);
	struct tu_peer a;
	ru_login_bin(&a, port, "ann");
	ru_join(&a, "ann", "#h");
	post(&a, "#h", 1, 20);
	/* the latest */
	struct answer *r = history(&a, "#h", 0, 0, 5);
	want(r, 5, 16, 20, 1, 20, 0);
	ck_assert_str_eq(r->text.sender, "ann");
	ck_assert_uint_eq(r->text.flags, TCPCHAT_MSGF_HISTORY);
	ck_assert_int_eq(r->others, 0);
	/* the room asked for is the current one when none is named */
	want(history_here(&a, "#h", 3), 3, 18, 20, 1, 20, 0);
	want(history(&a, "#h", 0, 0, 40), 20, 1, 20, 1, 20, 0);
	/* after a seq */
	want(history(&a, "#h", TCPCHAT_MSGF_AFTER, 7, 3), 3, 8, 10, 1, 20, 0);
	want(history(&a, "#h", TCPCHAT_MSGF_AFTER, 18, 10), 2, 19, 20, 1, 20,
	     0);
	want(history(&a, "#h", TCPCHAT_MSGF_AFTER, 0, 0), 20, 1, 20, 1, 20, 0);
	want(history(&a, "#h", TCPCHAT_MSGF_AFTER, 20, 0), 0, 0, 0, 1, 20, 0);
	want(history(&a, "#h", TCPCHAT_MSGF_AFTER, 99, 0), 0, 0, 0, 1, 20, 0);
	/* before a seq */
	want(history(&a, "#h", TCPCHAT_MSGF_BEFORE, 7, 3), 3, 4, 6, 1, 20, 0);
	want(history(&a, "#h", TCPCHAT_MSGF_BEFORE, 3, 10), 2, 1, 2, 1, 20, 0);
	want(history(&a, "#h", TCPCHAT_MSGF_BEFORE, 1, 10), 0, 0, 0, 1, 20, 0);
	want(history(&a, "#h", TCPCHAT_MSGF_BEFORE, 21, 2), 2, 19, 20, 1, 20,
	     0);
	/* the default room has its own, flagged so */
	post(&a, "#lobby", 1, 2);
	r = history(&a, "#lobby", 0, 0, 0);
	want(r, 2, 1, 2, 1, 2, 0);
	ck_assert_uint_eq(r->text.flags,
	                  TCPCHAT_MSGF_HISTORY | TCPCHAT_MSGF_DEFAULT_ROOM);
	RU_FINISH(srv, &a);
}
END_TEST

START_TEST(default_limit_and_cap)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, 2000, -1);
	struct tu_peer a, b;
	ru_login_bin(&a, port, "ann");
	ru_join(&a, "ann", "#big");
	post(&a, "#big", 1, 1100);
	want(history(&a, "#big", 0, 0, 0), 50, 1051, 1100, 1, 1100, 0);
	want(history(&a, "#big", TCPCHAT_MSGF_AFTER, 0, 0), 50, 1, 50, 1, 1100,
	     0);
	want(history(&a, "#big", 0, 0, 1000), 1000, 101, 1100, 1, 1100, 0);
	want(history(&a, "#big", 0, 0, 5000), 1000, 101, 1100, 1, 1100, 0);
	want(history(&a, "#big", TCPCHAT_MSGF_AFTER, 50, UINT32_MAX), 1000, 51,
	     1050, 1, 1100, 0);
	/* a resume is not capped: it gets all that is kept */
	ru_login_bin(&b, port, "ben");
	join_after(&b, "#big", 0, 0);
	want(collect(&b, "#big"), 1100, 1, 1100, 1, 1100, 0);
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(gap_when_texts_are_gone)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, 5, -1);
	struct tu_peer a;
	ru_login_bin(&a, port, "ann");
	ru_join(&a, "ann", "#g");
	post(&a, "#g", 1, 12); /* 8..12 kept */
	uint32_t after = TCPCHAT_MSGF_AFTER, before = TCPCHAT_MSGF_BEFORE;
	want(history(&a, "#g", after, 3, 0), 5, 8, 12, 8, 12, 1);
	want(history(&a, "#g", after, 6, 0), 5, 8, 12, 8, 12, 1);
	want(history(&a, "#g", after, 7, 0), 5, 8, 12, 8, 12, 0);
	want(history(&a, "#g", after, 9, 2), 2, 10, 11, 8, 12, 0);
	want(history(&a, "#g", 0, 0, 10), 5, 8, 12, 8, 12, 1);
	want(history(&a, "#g", 0, 0, 0), 5, 8, 12, 8, 12, 1);
	want(history(&a, "#g", 0, 0, 5), 5, 8, 12, 8, 12, 0);
	want(history(&a, "#g", 0, 0, 3), 3, 10, 12, 8, 12, 0);
	want(history(&a, "#g", before, 6, 0), 0, 0, 0, 8, 12, 1);
	want(history(&a, "#g", before, 10, 5), 2, 8, 9, 8, 12, 1);
	want(history(&a, "#g", before, 10, 2), 2, 8, 9, 8, 12, 0);
	want(history(&a, "#g", before, 12, 3), 3, 9, 11, 8, 12, 0);
	RU_FINISH(srv, &a);
}
END_TEST

/* HISTORY_BYTES counts the sender and the body of each text kept. */
START_TEST(bytes_bound_the_history)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, -1, 50);
	struct tu_peer a;
	ru_login_bin(&a, port, "ann");
	ru_join(&a, "ann", "#b");
	post(&a, "#b", 1, 9); /* 3 + 2 bytes each */
	want(history(&a, "#b", 0, 0, 0), 9, 1, 9, 1, 9, 0);
	post(&a, "#b", 10, 14); /* 3 + 3 bytes: 1..5 go */
	want(history(&a, "#b", 0, 0, 0), 9, 6, 14, 6, 14, 1);
	/* a text larger than the bound is not kept, nor anything before it:
	 * what is kept stays contiguous */
	char big[64];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ru_send_room(&a, "#b", big);
	ru_still_here(&a);
	want(history(&a, "#b", 0, 0, 0), 0, 0, 0, 16, 15, 1);
	want(history(&a, "#b", TCPCHAT_MSGF_AFTER, 15, 0), 0, 0, 0, 16, 15, 0);
	post(&a, "#b", 16, 17);
	want(history(&a, "#b", TCPCHAT_MSGF_AFTER, 15, 0), 2, 16, 17, 16, 17,
	     0);
	RU_FINISH(srv, &a);
}
END_TEST

START_TEST(nothing_kept)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, 0, -1);
	struct tu_peer a;
	ru_login_bin(&a, port, "ann");
	post(&a, "#lobby", 1, 3);
	want(history(&a, "#lobby", 0, 0, 0), 0, 0, 0, 4, 3, 1);
	want(history(&a, "#lobby", TCPCHAT_MSGF_AFTER, 0, 0), 0, 0, 0, 4, 3, 1);
	want(history(&a, "#lobby", TCPCHAT_MSGF_AFTER, 3, 0), 0, 0, 0, 4, 3, 0);
	want(history(&a, "#lobby", TCPCHAT_MSGF_BEFORE, 3, 0), 0, 0, 0, 4, 3,
	     1);
	RU_FINISH(srv, &a);
}
END_TEST

/* The ERROR answering a HISTORY request: code, and the room named. */
static void want_refused(struct tu_peer *p, const char *room, uint32_t flags,
                         uint32_t code)
{
	struct tu_msg e;
	ask(p, room, flags, 1, 0, 0);
	ru_want_error(p, code, &e);
	ck_assert_str_eq(e.room, room ? room : "");
}

START_TEST(requests_refused)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, -1, -1);
	struct tu_peer a, b;
	ru_login_bin(&a, port, "ann");
	ru_login_bin(&b, port, "ben");
	ru_join(&b, "ben", "#ben");
	post(&b, "#ben", 1, 2);
	want_refused(&a, "#ben", 0, TCPCHAT_WIRE_NOTMEMBER);
	want_refused(&a, "#ben", TCPCHAT_MSGF_AFTER, TCPCHAT_WIRE_NOTMEMBER);
	want_refused(&a, "#nowhere", 0, TCPCHAT_WIRE_NOTMEMBER);
	want_refused(&a, "lobby", 0, TCPCHAT_WIRE_BADROOM);
	want_refused(&a, "#a b", 0, TCPCHAT_WIRE_BADROOM);
	want_refused(&a, "#lobby", TCPCHAT_MSGF_AFTER | TCPCHAT_MSGF_BEFORE,
	             TCPCHAT_WIRE_PROTO);
	ru_part(&a, "ann", "#lobby", NULL);
	want_refused(&a, NULL, 0, TCPCHAT_WIRE_NOTMEMBER);
	/* none of it was served, and the connection goes on */
	ru_join(&a, "ann", "#ben");
	want(history(&a, "#ben", 0, 0, 0), 2, 1, 2, 1, 2, 0);
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(foreign_epoch)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, 5, -1);
	struct tu_peer a, b;
	ru_login_bin(&a, port, "ann");
	ru_join(&a, "ann", "#e");
	post(&a, "#e", 1, 10); /* 6..10 kept */
	/* this server's epoch: the seq means what it says */
	ask(&a, "#e", TCPCHAT_MSGF_AFTER, 8, EPOCH, 0);
	want(collect(&a, "#e"), 2, 9, 10, 6, 10, 0);
	/* another's: from the oldest kept, with a gap */
	ask(&a, "#e", TCPCHAT_MSGF_AFTER, 8, EPOCH + 1, 0);
	want(collect(&a, "#e"), 5, 6, 10, 6, 10, 1);
	ask(&a, "#e", 0, 0, EPOCH + 1, 2);
	want(collect(&a, "#e"), 2, 6, 7, 6, 10, 1);
	/* even when nothing is gone: the numbers the asker had are void */
	ru_join(&a, "ann", "#new");
	post(&a, "#new", 1, 2);
	ask(&a, "#new", TCPCHAT_MSGF_AFTER, 0, EPOCH + 1, 0);
	want(collect(&a, "#new"), 2, 1, 2, 1, 2, 1);
	ask(&a, "#new", TCPCHAT_MSGF_AFTER, 0, EPOCH, 0);
	want(collect(&a, "#new"), 2, 1, 2, 1, 2, 0);
	/* a resume too */
	ru_login_bin(&b, port, "ben");
	join_after(&b, "#e", 9, EPOCH + 1);
	want(collect(&b, "#e"), 5, 6, 10, 6, 10, 1);
	RU_FINISH(srv, &a, &b);
}
END_TEST

/* A room that had texts outlives its members: its numbers go on and its
 * history is there for who comes back. */
START_TEST(an_empty_room_keeps_its_history)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, -1, -1);
	struct tu_peer a, b;
	struct tu_msg m;
	ru_login_bin(&a, port, "ann");
	ru_login_bin(&b, port, "ben");
	ru_join(&a, "ann", "#quiet");
	ru_join(&a, "ann", "#empty");
	ck_assert(ru_wait_stats(srv, 2, 3));
	ru_part(&a, "ann", "#empty", NULL);
	ck_assert(ru_wait_stats(srv, 2, 2)); /* no texts: gone */
	post(&a, "#quiet", 1, 3);
	ru_part(&a, "ann", "#quiet", NULL);
	ck_assert(ru_wait_stats(srv, 2, 2)); /* kept */
	ru_send_join(&b, "#quiet");
	ru_want(&b, TCPCHAT_MSG_JOIN, "ben", "#quiet", &m);
	ck_assert_uint_eq(m.seq, 3);
	ck_assert_uint_eq(m.epoch, EPOCH);
	struct answer *r = history(&b, "#quiet", 0, 0, 0);
	want(r, 3, 1, 3, 1, 3, 0);
	ck_assert_str_eq(r->text.sender, "ann");
	post(&b, "#quiet", 4, 4);
	join_after(&a, "#quiet", 3, 0);
	r = collect(&a, "#quiet");
	want(r, 1, 4, 4, 1, 4, 0);
	ck_assert_str_eq(r->text.sender, "ben");
	RU_FINISH(srv, &a, &b);
}
END_TEST

/* The end marker to a JSON Lines peer, with its keys. */
START_TEST(json_peer)
{
	int port, jport;
	tcpchat_server *srv = server(&port, &jport, 3, -1);
	struct tu_peer a, j;
	char line[1024];
	ru_login_bin(&a, port, "ann");
	ru_login_json(&j, jport, "jay");
	post(&a, "#lobby", 1, 4); /* 2..4 kept */
	ru_mark(srv, "posted");
	ck_assert_int_eq(ru_upto(&j, "posted"), 4);
	ask(&j, "#lobby", TCPCHAT_MSGF_AFTER, 2, 0, 0);
	for (int i = 3; i <= 4; i++) {
		ck_assert_int_eq(
		        tu_peer_line(&j, line, sizeof line, TU_TIMEOUT), 1);
		ck_assert_ptr_nonnull(strstr(line, "\"type\":\"text\""));
		ck_assert_int_eq(ru_json_num(line, "seq"), i);
	}
	ck_assert_int_eq(tu_peer_line(&j, line, sizeof line, TU_TIMEOUT), 1);
	ck_assert_ptr_nonnull(strstr(line, "\"type\":\"history\""));
	ck_assert_int_eq(ru_json_num(line, "first"), 3);
	ck_assert_int_eq(ru_json_num(line, "last"), 4);
	ck_assert_int_eq(ru_json_num(line, "oldest"), 2);
	ck_assert_int_eq(ru_json_num(line, "seq"), 4);
	ck_assert_int_eq(ru_json_num(line, "epoch"), EPOCH);
	ck_assert_int_eq(ru_json_num(line, "code"), 2);
	/* a gap too */
	ask(&j, "#lobby", 0, 0, 0, 0);
	want(collect(&j, "#lobby"), 3, 2, 4, 2, 4, 1);
	RU_FINISH(srv, &a, &j);
}
END_TEST

/* ---- resume ------------------------------------------------------------ */

#define POST_MAX 5000 /* texts of a poster, at most */
#define POST_TAIL 20  /* texts it posts once told to stop */

/* A member that posts "m<seq>" to a room from its own thread, as fast as
 * it can, from base + 1, until it is told to stop (or has posted
 * POST_MAX), and then POST_TAIL more: those are live for anyone who was
 * resumed before the stop. */
struct poster {
	struct tu_peer *p;
	const char *room;
	uint64_t base;
	atomic_int sent, stop;
	pthread_t thread;
};

static void *post_loop(void *arg)
{
	struct poster *ps = arg;
	char body[32];
	int tail = POST_TAIL;
	for (uint64_t i = 1; i <= POST_MAX + POST_TAIL && tail; i++) {
		if (atomic_load(&ps->stop) || i > POST_MAX)
			tail--;
		snprintf(body, sizeof body, "m%llu",
		         (unsigned long long)(ps->base + i));
		tcpchat_msg m = {.type = TCPCHAT_MSG_TEXT};
		m.room.ptr = ps->room;
		m.room.len = strlen(ps->room);
		m.body.ptr = body;
		m.body.len = strlen(body);
		if (tu_peer_send_msg(ps->p, &m) != 0)
			break;
		atomic_fetch_add(&ps->sent, 1);
	}
	return NULL;
}

static int some_sent(void *arg)
{
	struct poster *ps = arg;
	return atomic_load(&ps->sent) >= 20;
}

static void poster_start(struct poster *ps, struct tu_peer *p, const char *room,
                         uint64_t base)
{
	ps->p = p;
	ps->room = room;
	ps->base = base;
	atomic_init(&ps->sent, 0);
	atomic_init(&ps->stop, 0);
	ck_assert_int_eq(pthread_create(&ps->thread, NULL, post_loop, ps), 0);
	ck_assert(tu_wait_until(some_sent, ps, TU_TIMEOUT));
}

/* Stops the poster; returns the last seq it posted. */
static uint64_t poster_stop(struct poster *ps)
{
	atomic_store(&ps->stop, 1);
	pthread_join(ps->thread, NULL);
	int sent = atomic_load(&ps->sent);
	ck_assert_int_ge(sent, 20 + POST_TAIL);
	return ps->base + (uint64_t)sent;
}

/* A server for resumes: its history and the joiner's queue hold all a
 * poster sends. */
static tcpchat_server *resume_server(int *port)
{
	tcpchat_server *srv = ru_server_new(port);
	ru_server_option(srv, TCPCHAT_SOPT_EPOCH, EPOCH);
	ru_server_option(srv, TCPCHAT_SOPT_HISTORY_MSGS, 2 * POST_MAX);
	ru_server_option(srv, TCPCHAT_SOPT_QUEUE_FRAMES, 4 * POST_MAX);
	ru_server_option(srv, TCPCHAT_SOPT_QUEUE_BYTES, 64 << 20);
	ru_server_go(srv);
	return srv;
}

/* What a resuming peer p receives in room while ps posts there: *view (a
 * WELCOME or the peer's own JOIN) first, then the texts after `after`
 * flagged HISTORY, the end marker, and the live texts, each once, in
 * order, up to the last the poster sent once stopped (when p has seen
 * the end). */
static void want_seamless(struct tu_peer *p, const char *room,
                          uint32_t view_type, uint64_t after, struct poster *ps)
{
	struct tu_msg m, view = {0};
	char body[32];
	uint64_t next = after + 1, last = UINT64_MAX, live = 0;
	int ended = 0;
	while (next <= last) {
		int rc = tu_peer_recv(p, &m, TU_TIMEOUT);
		ck_assert_msg(rc == 1, "resume of %s: rc %d, waiting for %llu",
		              room, rc, (unsigned long long)next);
		if (!view.type) {
			ck_assert_uint_eq(m.type, view_type);
			ck_assert_str_eq(m.room, room);
			ck_assert_uint_eq(m.epoch, EPOCH);
			ck_assert_uint_ge(m.seq, after);
			view = m;
			continue;
		}
		if (m.type == TCPCHAT_MSG_HISTORY) {
			ck_assert(!ended);
			ck_assert_str_eq(m.room, room);
			ck_assert_uint_eq(m.first, after + 1);
			ck_assert_uint_eq(m.last, next - 1);
			ck_assert_uint_eq(m.seq, next - 1);
			ck_assert_uint_eq(m.seq, view.seq);
			ck_assert_uint_eq(m.code, next - 1 - after);
			ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_GAP, 0);
			ended = 1;
			last = poster_stop(ps);
			continue;
		}
		if (m.type != TCPCHAT_MSG_TEXT || strcmp(m.room, room) != 0)
			continue;
		ck_assert_msg(m.seq == next,
		              "seq %llu (flags %#x), expected %llu; resumed "
		              "at %llu",
		              (unsigned long long)m.seq, (unsigned)m.flags,
		              (unsigned long long)next,
		              (unsigned long long)view.seq);
		snprintf(body, sizeof body, "m%llu", (unsigned long long)next);
		ck_assert_str_eq(m.body, body);
		ck_assert_msg((!(m.flags & TCPCHAT_MSGF_HISTORY)) == ended,
		              "seq %llu %s the end of the history",
		              (unsigned long long)next,
		              ended ? "flagged HISTORY after" : "live before");
		live += ended;
		next++;
	}
	ck_assert_uint_ge(live, POST_TAIL);
}

START_TEST(join_after_while_texts_come)
{
	int port;
	tcpchat_server *srv = resume_server(&port);
	struct tu_peer a, b;
	ru_login_bin(&a, port, "ann");
	ru_login_bin(&b, port, "ben");
	ru_join(&a, "ann", "#r");
	post(&a, "#r", 1, 10);
	struct poster ps;
	poster_start(&ps, &a, "#r", 10);
	join_after(&b, "#r", 4, EPOCH);
	want_seamless(&b, "#r", TCPCHAT_MSG_JOIN, 4, &ps);
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(hello_after_while_texts_come)
{
	int port;
	tcpchat_server *srv = resume_server(&port);
	struct tu_peer a, b;
	ru_login_bin(&a, port, "ann");
	post(&a, "#lobby", 1, 10);
	ck_assert_int_eq(tu_peer_connect(&b, port, tcpchat_codec_binary(), 0),
	                 0);
	struct poster ps;
	poster_start(&ps, &a, "#lobby", 10);
	tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO, .code = 2};
	h.caps = TU_CAPS2 | TCPCHAT_CAP_HISTORY;
	h.sender.ptr = "ben";
	h.sender.len = 3;
	h.flags = TCPCHAT_MSGF_AFTER;
	h.seq = 4;
	h.epoch = EPOCH;
	ck_assert_int_eq(tu_peer_send_msg(&b, &h), 0);
	want_seamless(&b, "#lobby", TCPCHAT_MSG_WELCOME, 4, &ps);
	RU_FINISH(srv, &a, &b);
}
END_TEST

/* JOIN AFTER of a room one is in: a HISTORY AFTER, nobody told of a
 * join. */
START_TEST(join_after_when_in)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, -1, -1);
	struct tu_peer a, b;
	struct tu_msg m;
	ru_login_bin(&a, port, "ann");
	ru_login_bin(&b, port, "ben");
	ru_join(&a, "ann", "#in");
	ru_join(&b, "ben", "#in");
	ru_want(&a, TCPCHAT_MSG_JOIN, "ben", "#in", &m);
	post(&a, "#in", 1, 6);
	ru_want(&b, TCPCHAT_MSG_TEXT, "ann", "#in", &m);
	ck_assert_uint_eq(m.seq, 1);
	join_after(&b, "#in", 2, 0);
	struct answer *r = collect(&b, "#in");
	want(r, 4, 3, 6, 1, 6, 0);
	/* the live texts 2..6 came before; no JOIN */
	ck_assert_int_eq(r->others, 5);
	ru_mark(srv, "done");
	ck_assert_int_eq(ru_upto(&b, "done"), 0);
	ck_assert_int_eq(ru_upto(&a, "done"), 0);
	RU_FINISH(srv, &a, &b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("history");
	TCase *t = tcase_create("history");
	tcase_add_test(t, latest_after_and_before);
	tcase_add_test(t, default_limit_and_cap);
	tcase_add_test(t, gap_when_texts_are_gone);
	tcase_add_test(t, bytes_bound_the_history);
	tcase_add_test(t, nothing_kept);
	tcase_add_test(t, requests_refused);
	tcase_add_test(t, foreign_epoch);
	tcase_add_test(t, an_empty_room_keeps_its_history);
	tcase_add_test(t, json_peer);
	suite_add_tcase(s, t);
	TCase *r = tcase_create("resume");
	tcase_add_test(r, join_after_while_texts_come);
	tcase_add_test(r, hello_after_while_texts_come);
	tcase_add_test(r, join_after_when_in);
	suite_add_tcase(s, r);
	return tu_run_suite(s);
}
