/* The client's acknowledgments and history against a real server: ACK
 * events for room and private texts, refused texts, refs made by the
 * library, a ref sent twice, bad refs; history requests (latest, after,
 * before, limits, the gap) and the end marker; the room position; a
 * resume while another client posts (no duplicate, no hole).  Against a
 * raw peer acting as a server: duplicates dropped, texts refused with
 * ECLOSED when the connection ends, and ENOTSUP without CAP_HISTORY. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clientutil.h"

#define EPOCH 4242

static void default_room(struct cu_rec *r, char *out)
{
	tcpchat_server_info s;
	memset(&s, 0, sizeof s);
	s.size = sizeof s;
	ck_assert_int_eq(tcpchat_client_server_info(r->cli, &s), 0);
	ck_assert_uint_ne(s.caps & TCPCHAT_CAP_HISTORY, 0);
	memcpy(out, s.default_room, sizeof s.default_room);
	ck_assert_int_gt((int)strlen(out), 1);
}

static int send_ref(struct cu_rec *r, const char *room, const char *target,
                    const char *text, const char *ref)
{
	return tcpchat_client_send_ref(r->cli, room, target, text, strlen(text),
	                               ref, NULL);
}

START_TEST(ack_room_text)
{
	struct cu_duo d;
	cu_duo_start(&d, EPOCH, 0, NULL);
	char lobby[TCPCHAT_ROOM_MAX + 1];
	default_room(&d.a, lobby);

	ck_assert_int_eq(send_ref(&d.a, NULL, NULL, "hello", "r-1"), 0);
	struct cu_ev ack = cu_wait_ack(&d.a, "r-1");
	ck_assert_int_eq(ack.error, 0);
	ck_assert_uint_eq(ack.mtype, TCPCHAT_MSG_ACK);
	ck_assert_str_eq(ack.room, lobby);
	ck_assert_uint_eq(ack.epoch, EPOCH);
	ck_assert_uint_ge(ack.seq, 1);
	ck_assert_uint_ne(ack.id, 0);
	struct cu_ev got = cu_wait_text(&d.b, "hello");
	ck_assert_uint_eq(got.id, ack.id);
	ck_assert_uint_eq(got.seq, ack.seq);
	ck_assert_str_eq(got.sender, "alice");
	/* the ACK is not also a MESSAGE, and our text is not echoed */
	struct cu_want m = {.type = TCPCHAT_CEV_MESSAGE,
	                    .mtype = TCPCHAT_MSG_ACK};
	ck_assert_int_eq(cu_count(&d.a, &m), 0);

	/* a room named explicitly, and a ref made by the library */
	cu_join(&d.a, "alice", "#dev");
	cu_join(&d.b, "bob", "#dev");
	char ref[TCPCHAT_REF_MAX + 1] = "";
	ck_assert_int_eq(tcpchat_client_send_ref(d.a.cli, "#dev", NULL,
	                                         "in dev", 6, NULL, ref),
	                 0);
	ck_assert_int_gt((int)strlen(ref), 17);
	ck_assert_int_eq(ref[16], '-');
	ack = cu_wait_ack(&d.a, ref);
	ck_assert_int_eq(ack.error, 0);
	ck_assert_str_eq(ack.room, "#dev");
	ck_assert_uint_eq(ack.seq, 1);
	ck_assert_uint_eq(cu_wait_text(&d.b, "in dev").seq, 1);
	/* a second made ref differs */
	char ref2[TCPCHAT_REF_MAX + 1] = "";
	ck_assert_int_eq(tcpchat_client_send_ref(d.a.cli, "#dev", NULL, "again",
	                                         5, NULL, ref2),
	                 0);
	ck_assert_str_ne(ref, ref2);
	ck_assert_uint_eq(cu_wait_ack(&d.a, ref2).seq, 2);

	cu_duo_stop(&d);
}
END_TEST

START_TEST(ack_private_and_refused)
{
	struct cu_duo d;
	cu_duo_start(&d, EPOCH, 0, NULL);

	ck_assert_int_eq(send_ref(&d.a, NULL, "bob", "psst", "p-1"), 0);
	struct cu_ev ack = cu_wait_ack(&d.a, "p-1");
	ck_assert_int_eq(ack.error, 0);
	ck_assert_str_eq(ack.target, "bob");
	ck_assert_uint_eq(ack.seq, 0);
	struct cu_ev got = cu_wait_text(&d.b, "psst");
	ck_assert_uint_eq(got.id, ack.id);

	/* refused: not a member, nobody of that name */
	ck_assert_int_eq(send_ref(&d.a, "#elsewhere", NULL, "no", "n-1"), 0);
	ack = cu_wait_ack(&d.a, "n-1");
	ck_assert_int_eq(ack.error, TCPCHAT_ENOTMEMBER);
	ck_assert_uint_eq(ack.mtype, TCPCHAT_MSG_ERROR);
	ck_assert_str_eq(ack.room, "#elsewhere");
	ck_assert_int_eq(send_ref(&d.a, NULL, "nobody", "no", "n-2"), 0);
	ack = cu_wait_ack(&d.a, "n-2");
	ck_assert_int_eq(ack.error, TCPCHAT_ENOTFOUND);
	ck_assert_uint_eq(ack.mtype, TCPCHAT_MSG_ERROR);
	/* the refusals are not also MESSAGE events */
	struct cu_want err = {.type = TCPCHAT_CEV_MESSAGE,
	                      .mtype = TCPCHAT_MSG_ERROR};
	ck_assert_int_eq(cu_count(&d.a, &err), 0);
	/* a plain text without RECONNECT has no ref, and no ACK */
	ck_assert_int_eq(tcpchat_client_send(d.a.cli, "plain", 5), 0);
	cu_wait_text(&d.b, "plain");
	struct cu_want acks = {.type = TCPCHAT_CEV_ACK};
	ck_assert_int_eq(cu_count(&d.a, &acks), 3);

	cu_duo_stop(&d);
}
END_TEST

START_TEST(same_ref_twice)
{
	struct cu_duo d;
	cu_duo_start(&d, EPOCH, 0, NULL);
	ck_assert_int_eq(send_ref(&d.a, NULL, NULL, "once", "dup-1"), 0);
	ck_assert_int_eq(send_ref(&d.a, NULL, NULL, "once", "dup-1"), 0);
	struct cu_want w = {.type = TCPCHAT_CEV_ACK, .ref = "dup-1"};
	ck_assert(cu_wait(&d.a, &w, 2));
	struct cu_ev k1 = cu_get(&d.a, &w, 0), k2 = cu_get(&d.a, &w, 1);
	ck_assert_int_eq(k1.error, 0);
	ck_assert_int_eq(k2.error, 0);
	ck_assert_uint_eq(k1.id, k2.id);
	ck_assert_uint_eq(k1.seq, k2.seq);
	/* bob sees it once: a text sent after it arrives, "once" is alone */
	ck_assert_int_eq(send_ref(&d.a, NULL, NULL, "after", "dup-2"), 0);
	cu_wait_text(&d.b, "after");
	struct cu_want t = {.type = TCPCHAT_CEV_MESSAGE,
	                    .mtype = TCPCHAT_MSG_TEXT,
	                    .body = "once"};
	ck_assert_int_eq(cu_count(&d.b, &t), 1);
	ck_assert_uint_eq(cu_wait_ack(&d.a, "dup-2").seq, k1.seq + 1);
	cu_duo_stop(&d);
}
END_TEST

START_TEST(bad_arguments)
{
	int port;
	tcpchat_server *srv = cu_server(EPOCH, 0, &port);
	struct cu_rec a;
	cu_init(&a, NULL);
	cu_start(&a, port, "alice");
	char long_ref[TCPCHAT_REF_MAX + 2];
	memset(long_ref, 'x', sizeof long_ref - 1);
	long_ref[sizeof long_ref - 1] = '\0';
	ck_assert_int_eq(send_ref(&a, NULL, NULL, "t", ""), TCPCHAT_EINVAL);
	ck_assert_int_eq(send_ref(&a, NULL, NULL, "t", long_ref),
	                 TCPCHAT_EINVAL);
	long_ref[TCPCHAT_REF_MAX] = '\0'; /* 64 bytes: fine */
	ck_assert_int_eq(send_ref(&a, NULL, NULL, "t", long_ref), 0);
	ck_assert_int_eq(send_ref(&a, NULL, NULL, "t", "a\nb"), TCPCHAT_EINVAL);
	ck_assert_int_eq(send_ref(&a, NULL, NULL, "t", "a\tb"), TCPCHAT_EINVAL);
	ck_assert_int_eq(send_ref(&a, NULL, NULL, "t", "\xff"), TCPCHAT_EINVAL);
	ck_assert_int_eq(send_ref(&a, "#a", "bob", "t", "r"), TCPCHAT_EINVAL);
	ck_assert_int_eq(send_ref(&a, "nohash", NULL, "t", "r"),
	                 TCPCHAT_EBADROOM);
	ck_assert_int_eq(send_ref(&a, NULL, "b b", "t", "r"), TCPCHAT_EBADNAME);
	ck_assert_int_eq(send_ref(&a, NULL, NULL, "", "r"), TCPCHAT_EINVAL);
	ck_assert_int_eq(
	        tcpchat_client_send_ref(NULL, NULL, NULL, "t", 1, "r", NULL),
	        TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_history(a.cli, NULL, 7, 0, 0),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_history(a.cli, "bad", 0, 0, 0),
	                 TCPCHAT_EBADROOM);
	ck_assert_int_eq(tcpchat_client_room_resume(a.cli, NULL, 1, 0),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_room_position(a.cli, NULL, NULL, NULL),
	                 TCPCHAT_EINVAL);
	cu_wait_ack(&a, long_ref);
	cu_stop(&a);
	cu_fini(&a);
	tu_server_stop(srv);
}
END_TEST

/* Bob posts n texts "<prefix>1".."<prefix>n" to room and waits for their
 * ACKs. */
static void post_n(struct cu_rec *b, const char *room, const char *prefix,
                   int n)
{
	char body[32], ref[32];
	for (int i = 1; i <= n; i++) {
		snprintf(body, sizeof body, "%s%d", prefix, i);
		snprintf(ref, sizeof ref, "%s-ref-%d", prefix, i);
		ck_assert_int_eq(send_ref(b, room, NULL, body, ref), 0);
	}
	ck_assert_int_eq(cu_wait_ack(b, ref).error, 0);
}

/* Asks for history and returns the end marker, checking that the texts
 * before it (since event index from) are seq first..last, in order. */
static struct cu_ev history(struct cu_rec *r, const char *room, int how,
                            uint64_t seq, uint32_t limit)
{
	struct cu_want end = {.type = TCPCHAT_CEV_MESSAGE,
	                      .mtype = TCPCHAT_MSG_HISTORY};
	int before = cu_count(r, &end);
	size_t from;
	free(cu_copy(r, &from));
	ck_assert_int_eq(tcpchat_client_history(r->cli, room, how, seq, limit),
	                 0);
	ck_assert(cu_wait(r, &end, before + 1));
	struct cu_ev e = cu_get(r, &end, before);
	size_t at = (size_t)cu_index(r, &end, before), n;
	uint64_t next = e.first, texts = 0;
	struct cu_ev *v = cu_copy(r, &n);
	for (size_t i = from; i < at; i++) {
		const struct cu_ev *t = &v[i];
		if (t->type != TCPCHAT_CEV_MESSAGE ||
		    t->mtype != TCPCHAT_MSG_TEXT)
			continue;
		ck_assert_uint_ne(t->flags & TCPCHAT_MSGF_HISTORY, 0);
		ck_assert_uint_eq(t->seq, next);
		ck_assert_str_eq(t->sender, "bob");
		next++;
		texts++;
	}
	free(v);
	ck_assert_uint_eq(texts, e.code);
	if (texts)
		ck_assert_uint_eq(next - 1, e.last);
	return e;
}

START_TEST(history_requests)
{
	struct cu_duo d;
	cu_duo_start(&d, EPOCH, 10, "#dev");
	cu_join(&d.a, "alice", "#dev");
	cu_join(&d.b, "bob", "#dev");
	post_n(&d.b, "#dev", "h", 8);
	cu_wait_text(&d.a, "h8");
	/* the position follows the live texts */
	struct cu_pos pos = cu_watch(&d.a);
	ck_assert_int_eq(pos.rc, 0);
	ck_assert_uint_eq(pos.epoch, EPOCH);
	ck_assert_uint_eq(pos.seq, 8);

	struct cu_ev e = history(&d.a, "#dev", TCPCHAT_HISTORY_LATEST, 0, 3);
	ck_assert_str_eq(e.room, "#dev");
	ck_assert_uint_eq(e.code, 3);
	ck_assert_uint_eq(e.first, 6);
	ck_assert_uint_eq(e.last, 8);
	ck_assert_uint_eq(e.seq, 8);
	ck_assert_uint_eq(e.epoch, EPOCH);
	ck_assert_uint_eq(e.oldest, 1);
	ck_assert_uint_eq(e.flags & TCPCHAT_MSGF_GAP, 0);

	e = history(&d.a, NULL, TCPCHAT_HISTORY_AFTER, 2, 4); /* current room */
	ck_assert_uint_eq(e.first, 3);
	ck_assert_uint_eq(e.last, 6);
	e = history(&d.a, "#dev", TCPCHAT_HISTORY_BEFORE, 5, 3);
	ck_assert_uint_eq(e.first, 2);
	ck_assert_uint_eq(e.last, 4);
	e = history(&d.a, "#dev", TCPCHAT_HISTORY_LATEST, 0, 0);
	ck_assert_uint_eq(e.code, 8);
	e = history(&d.a, "#dev", TCPCHAT_HISTORY_AFTER, 8, 5);
	ck_assert_uint_eq(e.code, 0);
	ck_assert_uint_eq(e.first, 0);
	ck_assert_uint_eq(e.last, 0);
	/* history is not taken for duplicates, and does not move the
	 * position */
	ck_assert_uint_eq(cu_watch(&d.a).seq, 8);

	/* 14 texts with 10 kept: 1..4 are gone */
	post_n(&d.b, "#dev", "g", 6);
	cu_wait_text(&d.a, "g6");
	e = history(&d.a, "#dev", TCPCHAT_HISTORY_AFTER, 1, 20);
	ck_assert_uint_ne(e.flags & TCPCHAT_MSGF_GAP, 0);
	ck_assert_uint_eq(e.oldest, 5);
	ck_assert_uint_eq(e.first, 5);
	ck_assert_uint_eq(e.last, 14);
	e = history(&d.a, "#dev", TCPCHAT_HISTORY_LATEST, 0, 2);
	ck_assert_uint_eq(e.first, 13);
	ck_assert_uint_eq(e.flags & TCPCHAT_MSGF_GAP, 0);
	/* latest that cannot be filled because older texts are gone */
	e = history(&d.a, "#dev", TCPCHAT_HISTORY_BEFORE, 7, 5);
	ck_assert_uint_ne(e.flags & TCPCHAT_MSGF_GAP, 0);
	ck_assert_uint_eq(e.first, 5);
	ck_assert_uint_eq(e.last, 6);

	/* not a member */
	ck_assert_int_eq(tcpchat_client_history(d.a.cli, "#other", 0, 0, 0), 0);
	struct cu_want nm = {.type = TCPCHAT_CEV_MESSAGE,
	                     .mtype = TCPCHAT_MSG_ERROR,
	                     .room = "#other"};
	ck_assert(cu_wait(&d.a, &nm, 1));
	ck_assert_uint_eq(cu_get(&d.a, &nm, 0).code, TCPCHAT_WIRE_NOTMEMBER);

	cu_duo_stop(&d);
}
END_TEST

struct poster {
	struct cu_rec *b;
	int n;
	atomic_int sent;
};

static void *post_thread(void *arg)
{
	struct poster *p = arg;
	char body[32];
	for (int i = 1; i <= p->n; i++) {
		snprintf(body, sizeof body, "s%d", i);
		while (tcpchat_client_send_room(p->b->cli, "#seam", body,
		                                strlen(body)) ==
		       TCPCHAT_EQUEUEFULL)
			sched_yield();
		atomic_store(&p->sent, i);
		if (i % 8 == 0)
			usleep(200); /* let the loop take them in turns */
	}
	return NULL;
}

static int cond_sent(void *arg)
{
	struct poster *p = arg;
	return atomic_load(&p->sent) >= p->n / 3;
}

START_TEST(resume_at_the_seam)
{
	struct cu_duo d;
	cu_duo_start(&d, EPOCH, 0, "#seam");
	cu_join(&d.b, "bob", "#seam");
	post_n(&d.b, "#seam", "pre", 5); /* seq 1..5 */

	struct poster p = {.b = &d.b, .n = 400};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, post_thread, &p), 0);
	ck_assert(tu_wait_until(cond_sent, &p, TU_TIMEOUT));
	/* resume from seq 3 while bob keeps posting */
	ck_assert_int_eq(tcpchat_client_room_resume(d.a.cli, "#seam", EPOCH, 3),
	                 0);
	pthread_join(th, NULL);
	cu_wait_text(&d.a, "s400");

	struct cu_want res = {.type = TCPCHAT_CEV_RESUMED};
	ck_assert(cu_wait(&d.a, &res, 1));
	struct cu_ev end = cu_get(&d.a, &res, 0);
	ck_assert_str_eq(end.evroom, "#seam");
	ck_assert_uint_eq(end.mtype, TCPCHAT_MSG_HISTORY);
	ck_assert_uint_eq(end.first, 4);
	ck_assert_uint_eq(end.flags & TCPCHAT_MSGF_GAP, 0);
	long at_end = cu_index(&d.a, &res, 0);
	/* every seq from 4 to 405 exactly once, in order: history up to
	 * the end marker, live after it */
	uint64_t next = 4;
	size_t n;
	struct cu_ev *v = cu_copy(&d.a, &n);
	for (size_t i = 0; i < n; i++) {
		const struct cu_ev *t = &v[i];
		if (t->type != TCPCHAT_CEV_MESSAGE ||
		    t->mtype != TCPCHAT_MSG_TEXT || strcmp(t->room, "#seam"))
			continue;
		ck_assert_uint_eq(t->seq, next);
		ck_assert_int_eq((t->flags & TCPCHAT_MSGF_HISTORY) != 0,
		                 (long)i < at_end);
		next++;
	}
	free(v);
	ck_assert_uint_eq(next, 406);
	struct cu_pos pos = cu_watch(&d.a);
	ck_assert_int_eq(pos.rc, 0);
	ck_assert_uint_eq(pos.seq, 405);
	ck_assert_str_eq(pos.current, "#seam");
	ck_assert_uint_eq(end.last, end.seq);

	/* already a member: just the history, then RESUMED again */
	ck_assert_int_eq(
	        tcpchat_client_room_resume(d.a.cli, "#seam", EPOCH, 400), 0);
	ck_assert(cu_wait(&d.a, &res, 2));
	end = cu_get(&d.a, &res, 1);
	ck_assert_uint_eq(end.first, 401);
	ck_assert_uint_eq(end.last, 405);
	/* an epoch of another server: all that is kept, with the gap */
	ck_assert_int_eq(tcpchat_client_room_resume(d.a.cli, "#seam", 1, 400),
	                 0);
	ck_assert(cu_wait(&d.a, &res, 3));
	end = cu_get(&d.a, &res, 2);
	ck_assert_uint_ne(end.flags & TCPCHAT_MSGF_GAP, 0);
	ck_assert_uint_eq(end.first, 1);
	struct cu_want join = {.type = TCPCHAT_CEV_MESSAGE,
	                       .mtype = TCPCHAT_MSG_JOIN,
	                       .sender = "alice",
	                       .room = "#seam"};
	ck_assert_int_eq(cu_count(&d.a, &join), 1);

	cu_duo_stop(&d);
}
END_TEST

/* ---- a raw peer acting as a server ---------------------------------------- */

struct fake {
	int lfd;
	struct tu_peer p;
};

/* Listens, and starts a (with the recording handler) connecting to the
 * fake server. */
static void fake_start(struct fake *f, struct cu_rec *a, const char *watch)
{
	memset(f, 0, sizeof *f);
	int port;
	f->lfd = cu_listen(&port);
	cu_init(a, watch);
	char addr[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	ck_assert_int_eq(tcpchat_client_connect(a->cli, addr, "alice"), 0);
	ck_assert_int_eq(tcpchat_client_start(a->cli), 0);
}

/* Accepts the client, takes its HELLO and answers WELCOME (protocol 2,
 * room #lobby, caps). */
static void fake_welcome(struct fake *f, uint64_t caps)
{
	struct pollfd pl = {.fd = f->lfd, .events = POLLIN};
	ck_assert_int_eq(poll(&pl, 1, TU_TIMEOUT), 1);
	int fd = accept(f->lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	f->p.fd = fd;
	f->p.codec = tcpchat_codec_binary();
	struct tu_msg m;
	ck_assert_int_eq(
	        tu_peer_expect(&f->p, TCPCHAT_MSG_HELLO, &m, TU_TIMEOUT), 1);
	ck_assert_uint_ne(m.caps & TCPCHAT_CAP_HISTORY, 0);
	tcpchat_msg w = {.type = TCPCHAT_MSG_WELCOME};
	w.code = 2;
	w.sender.ptr = m.sender;
	w.sender.len = strlen(m.sender);
	w.room.ptr = "#lobby";
	w.room.len = 6;
	w.caps = caps;
	w.seq = 4;
	w.epoch = caps & TCPCHAT_CAP_HISTORY ? 9 : 0;
	ck_assert_int_eq(tu_peer_send_msg(&f->p, &w), 0);
}

static void fake_text(struct fake *f, uint64_t seq, const char *body)
{
	tcpchat_msg t = {.type = TCPCHAT_MSG_TEXT};
	t.sender.ptr = "bob";
	t.sender.len = 3;
	t.room.ptr = "#lobby";
	t.room.len = 6;
	t.body.ptr = body;
	t.body.len = strlen(body);
	t.seq = seq;
	t.epoch = 9;
	t.id = seq + 100;
	ck_assert_int_eq(tu_peer_send_msg(&f->p, &t), 0);
}

static void fake_close(struct fake *f)
{
	tu_peer_close(&f->p);
	close(f->lfd);
}

START_TEST(raw_duplicates_and_closed)
{
	struct fake f;
	struct cu_rec a;
	fake_start(&f, &a, "#lobby");
	fake_welcome(&f, TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS |
	                         TCPCHAT_CAP_HISTORY);
	fake_text(&f, 4, "old"); /* at the mark: a mark is no delivery */
	fake_text(&f, 5, "five");
	fake_text(&f, 5, "five again");
	fake_text(&f, 6, "six");
	cu_wait_text(&a, "six");
	struct cu_want t = {.type = TCPCHAT_CEV_MESSAGE,
	                    .mtype = TCPCHAT_MSG_TEXT};
	ck_assert_int_eq(cu_count(&a, &t), 3);
	ck_assert_int_eq(cu_count(&a, &(struct cu_want){.body = "five again"}),
	                 0);

	/* texts that get no answer are refused when the connection ends,
	 * before DISCONNECTED */
	ck_assert_int_eq(send_ref(&a, NULL, NULL, "lost 1", "l-1"), 0);
	ck_assert_int_eq(send_ref(&a, "#lobby", NULL, "lost 2", "l-2"), 0);
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_expect(&f.p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.ref, "l-1");
	ck_assert_int_eq(tu_peer_expect(&f.p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.ref, "l-2");
	fake_close(&f);
	ck_assert_int_eq(tcpchat_client_join(a.cli), TCPCHAT_ECLOSED);
	struct cu_ev k1 = cu_get(&a, &(struct cu_want){.ref = "l-1"}, 0);
	struct cu_ev k2 = cu_get(&a, &(struct cu_want){.ref = "l-2"}, 0);
	ck_assert_int_eq(k1.type, TCPCHAT_CEV_ACK);
	ck_assert_int_eq(k1.error, TCPCHAT_ECLOSED);
	ck_assert_uint_eq(k1.mtype, TCPCHAT_MSG_ERROR);
	ck_assert_str_eq(k2.room, "#lobby");
	long disc = cu_index(
	        &a, &(struct cu_want){.type = TCPCHAT_CEV_DISCONNECTED}, 0);
	ck_assert_int_gt(disc,
	                 cu_index(&a, &(struct cu_want){.ref = "l-2"}, 0));
	cu_fini(&a);
}
END_TEST

START_TEST(raw_without_history)
{
	struct fake f;
	struct cu_rec a;
	fake_start(&f, &a, NULL);
	/* queued before the WELCOME: refused once the server is known */
	ck_assert_int_eq(send_ref(&a, NULL, NULL, "early", "e-1"), 0);
	ck_assert_int_eq(tcpchat_client_history(a.cli, NULL, 0, 0, 0), 0);
	fake_welcome(&f, TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS);
	struct cu_ev k = cu_wait_ack(&a, "e-1");
	ck_assert_int_eq(k.error, TCPCHAT_ENOTSUP);
	ck_assert_int_eq(send_ref(&a, NULL, NULL, "late", "e-2"),
	                 TCPCHAT_ENOTSUP);
	ck_assert_int_eq(tcpchat_client_history(a.cli, NULL, 0, 0, 0),
	                 TCPCHAT_ENOTSUP);
	ck_assert_int_eq(tcpchat_client_room_resume(a.cli, "#x", 1, 1),
	                 TCPCHAT_ENOTSUP);
	/* plain texts still go, without a ref */
	ck_assert_int_eq(tcpchat_client_send(a.cli, "plain", 5), 0);
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_expect(&f.p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "plain");
	ck_assert_str_eq(m.ref, "");
	cu_stop(&a);
	fake_close(&f);
	cu_fini(&a);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("client_acks");
	TCase *tc = tcase_create("acks");
	tcase_add_test(tc, ack_room_text);
	tcase_add_test(tc, ack_private_and_refused);
	tcase_add_test(tc, same_ref_twice);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, raw_duplicates_and_closed);
	tcase_add_test(tc, raw_without_history);
	suite_add_tcase(s, tc);
	TCase *th = tcase_create("history");
	tcase_add_test(th, history_requests);
	tcase_add_test(th, resume_at_the_seam);
	suite_add_tcase(s, th);
	return s;
}

int main(void)
{
	return tu_run_suite(suite());
}
