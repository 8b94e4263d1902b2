/* Acknowledgments (tcpchat-protocol(7), "Acknowledgments"): a TEXT with
 * the client's reference is answered with an ACK to its sender alone; a
 * resend of the reference within the ACK window gets the same ACK and
 * is not posted again, for the same user name only, across reconnects;
 * bad references and refused texts are answered with an ERROR carrying
 * the reference. */
#include <check.h>
#include <string.h>
#include <time.h>

#include "roomutil.h"

#define EPOCH 42

static int veto_handler(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	(void)srv;
	(void)ud;
	if (ev->type == TCPCHAT_SEV_MESSAGE && ev->msg->body.len == 4 &&
	    memcmp(ev->msg->body.ptr, "veto", 4) == 0) {
		ev->refuse_reason = "not that";
		return 1;
	}
	return TCPCHAT_ACCEPT;
}

/* A binary server (and a JSON one when json_port is not NULL) with the
 * epoch of the tests, an ACK window and most ACKs (< 0: default), and a
 * handler that vetoes the text "veto". */
static tcpchat_server *server(int *port, int *json_port, long long window,
                              long long max)
{
	tcpchat_server *srv = ru_server_epoch(port, json_port, EPOCH);
	if (window >= 0)
		ru_server_option(srv, TCPCHAT_SOPT_ACK_WINDOW, window);
	if (max >= 0)
		ru_server_option(srv, TCPCHAT_SOPT_ACK_MAX, max);
	tcpchat_server_set_handler(srv, veto_handler, NULL);
	ru_server_go(srv);
	return srv;
}

/* The same, with ann (a) and ben (b) logged in. */
static tcpchat_server *pair(struct tu_peer *a, struct tu_peer *b,
                            long long window, long long max)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, window, max);
	ru_login_bin(a, port, "ann");
	ru_login_bin(b, port, "ben");
	return srv;
}

static void view(tcpchat_str *s, const char *v)
{
	s->ptr = v;
	s->len = v ? strlen(v) : 0;
}

/* Sends body to room or target (NULL: none) with the reference ref (of
 * ref_len bytes; NULL: none). */
static void send_ref_n(struct tu_peer *p, const char *room, const char *target,
                       const char *body, const char *ref, size_t ref_len)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_TEXT};
	view(&m.room, room);
	view(&m.target, target);
	view(&m.body, body);
	m.ref.ptr = ref;
	m.ref.len = ref ? ref_len : 0;
	ck_assert_int_eq(tu_peer_send_msg(p, &m), 0);
}

static void send_ref(struct tu_peer *p, const char *room, const char *target,
                     const char *body, const char *ref)
{
	send_ref_n(p, room, target, body, ref, ref ? strlen(ref) : 0);
}

/* The next ACK of p, which must carry ref and room (NULL: a private
 * text's, to target). */
static struct tu_msg want_ack(struct tu_peer *p, const char *ref,
                              const char *room, const char *target)
{
	struct tu_msg k;
	ru_want(p, TCPCHAT_MSG_ACK, NULL, NULL, &k);
	ck_assert_str_eq(k.ref, ref);
	ck_assert_uint_ne(k.id, 0);
	ck_assert_int_gt(k.timestamp, 0);
	if (room) {
		ck_assert_str_eq(k.room, room);
		ck_assert_str_eq(k.target, "");
		ck_assert_uint_ne(k.seq, 0);
		ck_assert_uint_eq(k.epoch, EPOCH);
	} else {
		ck_assert_str_eq(k.room, "");
		ck_assert_str_eq(k.target, target);
		ck_assert_uint_eq(k.seq, 0);
		ck_assert_uint_eq(k.epoch, 0);
	}
	return k;
}

static void same_ack(const struct tu_msg *a, const struct tu_msg *b)
{
	ck_assert_str_eq(a->ref, b->ref);
	ck_assert_str_eq(a->room, b->room);
	ck_assert_str_eq(a->target, b->target);
	ck_assert_uint_eq(a->id, b->id);
	ck_assert_uint_eq(a->seq, b->seq);
	ck_assert_uint_eq(a->epoch, b->epoch);
	ck_assert_int_eq(a->timestamp, b->timestamp);
}

/* The texts p receives up to the notice marker must be exactly the
 * bodies given (in order, none with a reference). */
static void want_texts(tcpchat_server *srv, struct tu_peer *p,
                       const char *marker, const char *const *bodies, int n)
{
	ru_mark(srv, marker);
	int got = ru_upto(p, marker);
	int k = 0;
	for (int i = 0; i < got && i < RU_SEEN_MAX; i++) {
		if (ru_seen[i].type != TCPCHAT_MSG_TEXT ||
		    (!ru_seen[i].sender[0] && !ru_seen[i].room[0]))
			continue; /* a notice of the server: a marker */
		ck_assert_msg(k < n, "unexpected text '%s'", ru_seen[i].body);
		ck_assert_str_eq(ru_seen[i].body, bodies[k]);
		ck_assert_str_eq(ru_seen[i].ref, "");
		k++;
	}
	ck_assert_int_eq(k, n);
}
#define WANT_TEXTS(srv, p, marker, ...)                                        \
	want_texts((srv), (p), (marker), (const char *const[]){__VA_ARGS__},   \
	           (int)(sizeof((const char *const[]){__VA_ARGS__}) /          \
	                 sizeof(const char *)))

/* p must have received no ACK up to the marker. */
static void want_no_ack(tcpchat_server *srv, struct tu_peer *p,
                        const char *marker)
{
	ru_mark(srv, marker);
	int n = ru_upto(p, marker);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_ACK, NULL, NULL), 0);
}

START_TEST(ack_of_a_room_text)
{
	struct tu_peer a, b;
	struct tu_msg t;
	tcpchat_server *srv = pair(&a, &b, -1, -1);
	ru_join(&a, "ann", "#a");
	ru_join(&b, "ben", "#a");
	send_ref(&a, "#a", NULL, "hello", "r1");
	struct tu_msg k = want_ack(&a, "r1", "#a", NULL);
	ck_assert_uint_eq(k.seq, 1);
	ru_want(&b, TCPCHAT_MSG_TEXT, "ann", "#a", &t);
	ck_assert_str_eq(t.ref, "");
	ck_assert_uint_eq(t.id, k.id);
	ck_assert_uint_eq(t.seq, k.seq);
	ck_assert_int_eq(t.timestamp, k.timestamp);
	/* the current room when none is named; the default room flagged */
	send_ref(&a, NULL, NULL, "again", "r2");
	k = want_ack(&a, "r2", "#a", NULL);
	ck_assert_uint_eq(k.seq, 2);
	send_ref(&a, "#lobby", NULL, "lobby", "r3");
	k = want_ack(&a, "r3", "#lobby", NULL);
	ck_assert_uint_eq(k.seq, 1);
	/* a text without a reference has no ACK */
	ru_send_room(&a, "#a", "plain");
	ru_still_here(&a);
	WANT_TEXTS(srv, &b, "end", "again", "lobby", "plain");
	want_no_ack(srv, &a, "end2");
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(ack_of_a_private_text)
{
	struct tu_peer a, b;
	struct tu_msg t;
	tcpchat_server *srv = pair(&a, &b, -1, -1);
	send_ref(&a, NULL, "ben", "psst", "p1");
	struct tu_msg k = want_ack(&a, "p1", NULL, "ben");
	ru_want(&b, TCPCHAT_MSG_TEXT, "ann", "", &t);
	ck_assert_str_eq(t.body, "psst");
	ck_assert_str_eq(t.ref, "");
	ck_assert_uint_eq(t.id, k.id);
	/* resent: the same ACK, not delivered again */
	send_ref(&a, NULL, "ben", "psst", "p1");
	struct tu_msg k2 = want_ack(&a, "p1", NULL, "ben");
	same_ack(&k, &k2);
	want_texts(srv, &b, "end", NULL, 0);
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(a_resend_is_posted_once)
{
	struct tu_peer a, b;
	tcpchat_server *srv = pair(&a, &b, -1, -1);
	send_ref(&a, "#lobby", NULL, "once", "r1");
	struct tu_msg k = want_ack(&a, "r1", "#lobby", NULL);
	/* the same text, or another one: the reference decides */
	send_ref(&a, "#lobby", NULL, "once", "r1");
	struct tu_msg k2 = want_ack(&a, "r1", "#lobby", NULL);
	same_ack(&k, &k2);
	send_ref(&a, "#lobby", NULL, "other words", "r1");
	k2 = want_ack(&a, "r1", "#lobby", NULL);
	same_ack(&k, &k2);
	ru_send_room(&a, "#lobby", "marker");
	ru_still_here(&a);
	WANT_TEXTS(srv, &b, "end", "once", "marker");
	/* another user's r1 is its own */
	send_ref(&b, "#lobby", NULL, "mine", "r1");
	struct tu_msg kb = want_ack(&b, "r1", "#lobby", NULL);
	ck_assert_uint_eq(kb.seq, k.seq + 2);
	ck_assert_uint_gt(kb.id, k.id);
	WANT_TEXTS(srv, &a, "end2", "mine");
	RU_FINISH(srv, &a, &b);
}
END_TEST

/* Waits, on the wall clock the server stamps with, until ms have
 * passed. */
static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_until;

static int wall_passed(void *arg)
{
	(void)arg;
	return wall_ms() > wall_until;
}

static void wall_wait(int ms)
{
	wall_until = wall_ms() + ms;
	ck_assert(tu_wait_until(wall_passed, NULL, TU_TIMEOUT));
}

START_TEST(a_resend_after_the_window_is_posted_again)
{
	struct tu_peer a, b;
	tcpchat_server *srv = pair(&a, &b, 1, -1);
	send_ref(&a, "#lobby", NULL, "one", "r1");
	struct tu_msg k = want_ack(&a, "r1", "#lobby", NULL);
	wall_wait(3);
	send_ref(&a, "#lobby", NULL, "two", "r1");
	struct tu_msg k2 = want_ack(&a, "r1", "#lobby", NULL);
	ck_assert_uint_eq(k2.seq, k.seq + 1);
	ck_assert_uint_gt(k2.id, k.id);
	WANT_TEXTS(srv, &b, "end", "one", "two");
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(no_window_no_dedup)
{
	struct tu_peer a, b;
	tcpchat_server *srv = pair(&a, &b, 0, -1);
	send_ref(&a, "#lobby", NULL, "one", "r1");
	struct tu_msg k = want_ack(&a, "r1", "#lobby", NULL);
	send_ref(&a, "#lobby", NULL, "two", "r1");
	struct tu_msg k2 = want_ack(&a, "r1", "#lobby", NULL);
	ck_assert_uint_eq(k2.seq, k.seq + 1);
	WANT_TEXTS(srv, &b, "end", "one", "two");
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(the_oldest_beyond_ack_max_is_forgotten)
{
	struct tu_peer a, b;
	tcpchat_server *srv = pair(&a, &b, -1, 2);
	send_ref(&a, "#lobby", NULL, "t1", "r1");
	want_ack(&a, "r1", "#lobby", NULL);
	send_ref(&a, "#lobby", NULL, "t2", "r2");
	struct tu_msg k2 = want_ack(&a, "r2", "#lobby", NULL);
	send_ref(&a, "#lobby", NULL, "t3", "r3");
	struct tu_msg k3 = want_ack(&a, "r3", "#lobby", NULL);
	/* r2 and r3 are remembered */
	send_ref(&a, "#lobby", NULL, "t3", "r3");
	struct tu_msg again = want_ack(&a, "r3", "#lobby", NULL);
	same_ack(&k3, &again);
	send_ref(&a, "#lobby", NULL, "t2", "r2");
	again = want_ack(&a, "r2", "#lobby", NULL);
	same_ack(&k2, &again);
	/* r1 is not: posted again (and r2 forgotten for it) */
	send_ref(&a, "#lobby", NULL, "t1", "r1");
	again = want_ack(&a, "r1", "#lobby", NULL);
	ck_assert_uint_eq(again.seq, 4);
	send_ref(&a, "#lobby", NULL, "t2", "r2");
	again = want_ack(&a, "r2", "#lobby", NULL);
	ck_assert_uint_eq(again.seq, 5);
	WANT_TEXTS(srv, &b, "end", "t1", "t2", "t3", "t1", "t2");
	RU_FINISH(srv, &a, &b);
}
END_TEST

/* The ERROR answering a text with the reference ref (of ref_len bytes):
 * code, and the reference it carries (want_ref). */
static void want_ref_error(struct tu_peer *p, const char *ref, size_t ref_len,
                           uint32_t code, const char *want_ref)
{
	struct tu_msg e;
	send_ref_n(p, "#lobby", NULL, "refused", ref, ref_len);
	ru_want_error(p, code, &e);
	ck_assert_str_eq(e.ref, want_ref);
	ck_assert_str_eq(e.room, "#lobby");
}

START_TEST(bad_references)
{
	struct tu_peer a, b;
	tcpchat_server *srv = pair(&a, &b, -1, -1);
	char ref[66];
	memset(ref, 'r', 65);
	ref[65] = '\0';
	want_ref_error(&a, ref, 65, TCPCHAT_WIRE_BADMSG, "");
	want_ref_error(&a, "a\x01z", 3, TCPCHAT_WIRE_BADMSG, "");
	want_ref_error(&a, "a\nz", 3, TCPCHAT_WIRE_BADMSG, "");
	want_ref_error(&a, "a\x7fz", 3, TCPCHAT_WIRE_BADMSG, "");
	want_ref_error(&a, "\xff\xfe", 2, TCPCHAT_WIRE_BADMSG, "");
	want_ref_error(&a, "\xc3", 1, TCPCHAT_WIRE_BADMSG, "");
	want_ref_error(&a, "a\0z", 3, TCPCHAT_WIRE_BADMSG, "");
	/* a bad text with a good reference: the ERROR carries it */
	send_ref(&a, "#lobby", NULL, "  ", "good");
	struct tu_msg e;
	ru_want_error(&a, TCPCHAT_WIRE_BADMSG, &e);
	ck_assert_str_eq(e.ref, "good");
	/* 64 bytes, and UTF-8, are fine; empty is no reference */
	ref[64] = '\0';
	send_ref(&a, "#lobby", NULL, "sixty-four", ref);
	want_ack(&a, ref, "#lobby", NULL);
	send_ref(&a, "#lobby", NULL, "utf-8", "caf\xc3\xa9 \xe2\x9c\x93");
	want_ack(&a, "caf\xc3\xa9 \xe2\x9c\x93", "#lobby", NULL);
	send_ref(&a, "#lobby", NULL, "empty", "");
	ru_still_here(&a);
	WANT_TEXTS(srv, &b, "end", "sixty-four", "utf-8", "empty");
	want_no_ack(srv, &a, "end2");
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(a_refused_text_carries_its_reference)
{
	struct tu_peer a, b;
	struct tu_msg e;
	tcpchat_server *srv = pair(&a, &b, -1, -1);
	ru_join(&b, "ben", "#ben");
	send_ref(&a, "#ben", NULL, "let me in", "x1");
	ru_want_error(&a, TCPCHAT_WIRE_NOTMEMBER, &e);
	ck_assert_str_eq(e.ref, "x1");
	ck_assert_str_eq(e.room, "#ben");
	send_ref(&a, NULL, "nobody", "hello?", "x2");
	ru_want_error(&a, TCPCHAT_WIRE_NOTFOUND, &e);
	ck_assert_str_eq(e.ref, "x2");
	ck_assert_str_eq(e.target, "nobody");
	send_ref(&a, "#lobby", NULL, "veto", "x3");
	ru_want_error(&a, TCPCHAT_WIRE_REFUSED, &e);
	ck_assert_str_eq(e.ref, "x3");
	ck_assert_str_eq(e.room, "#lobby");
	ck_assert_str_eq(e.body, "not that");
	/* a refused reference is not remembered: sent again, it goes */
	send_ref(&a, "#lobby", NULL, "fine", "x3");
	want_ack(&a, "x3", "#lobby", NULL);
	send_ref(&a, "#lobby", NULL, "in", "x1");
	want_ack(&a, "x1", "#lobby", NULL);
	WANT_TEXTS(srv, &b, "end", "fine", "in");
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(dedup_across_a_reconnect)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, -1, -1);
	struct tu_peer a, b;
	ru_login_bin(&a, port, "ann");
	ru_login_bin(&b, port, "ben");
	send_ref(&a, "#lobby", NULL, "before", "r1");
	struct tu_msg k = want_ack(&a, "r1", "#lobby", NULL);
	send_ref(&a, NULL, "ben", "private", "p1");
	struct tu_msg kp = want_ack(&a, "p1", NULL, "ben");
	tu_peer_close(&a);
	ck_assert(ru_wait_stats(srv, 1, UINT64_MAX));
	ru_login_bin(&a, port, "ann");
	send_ref(&a, "#lobby", NULL, "before", "r1");
	struct tu_msg k2 = want_ack(&a, "r1", "#lobby", NULL);
	same_ack(&k, &k2);
	send_ref(&a, NULL, "ben", "private", "p1");
	k2 = want_ack(&a, "p1", NULL, "ben");
	same_ack(&kp, &k2);
	ru_send_room(&a, "#lobby", "after");
	ru_still_here(&a);
	WANT_TEXTS(srv, &b, "end", "before", "private", "after");
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(protocol_1_has_no_references)
{
	int port;
	tcpchat_server *srv = server(&port, NULL, -1, -1);
	struct tu_peer a, b;
	struct tu_msg e;
	ck_assert_int_eq(tu_peer_login(&a, port, tcpchat_codec_binary(), "old",
	                               1, 0, NULL),
	                 0);
	ru_login_bin(&b, port, "ben");
	send_ref(&a, NULL, NULL, "with a ref", "r1");
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_ERROR, &e, TU_TIMEOUT),
	                 1);
	ck_assert_uint_eq(e.code, TCPCHAT_WIRE_BADMSG);
	ck_assert_str_eq(e.ref, "");
	ck_assert_int_eq(tu_peer_send_text(&a, "without"), 0);
	ru_still_here(&a);
	WANT_TEXTS(srv, &b, "end", "without");
	/* no ACK either */
	ru_mark(srv, "end2");
	int n = ru_upto(&a, "end2");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_ACK, NULL, NULL), 0);
	RU_FINISH(srv, &a, &b);
}
END_TEST

/* An ACK to a JSON Lines peer: the key "ref". */
START_TEST(json_peer)
{
	int port, jport;
	tcpchat_server *srv = server(&port, &jport, -1, -1);
	struct tu_peer j, b;
	char line[1024];
	ru_login_bin(&b, port, "ben");
	ru_login_json(&j, jport, "jay");
	ck_assert_int_eq(tu_peer_send_line(&j, "{\"type\":\"text\",\"room\":"
	                                       "\"#lobby\",\"body\":\"hi\","
	                                       "\"ref\":\"j-1\"}"),
	                 0);
	ck_assert_int_eq(tu_peer_line(&j, line, sizeof line, TU_TIMEOUT), 1);
	ck_assert_ptr_nonnull(strstr(line, "\"type\":\"ack\""));
	ck_assert_ptr_nonnull(strstr(line, "\"ref\":\"j-1\""));
	ck_assert_ptr_nonnull(strstr(line, "\"room\":\"#lobby\""));
	ck_assert_int_eq(ru_json_num(line, "seq"), 1);
	ck_assert_int_eq(ru_json_num(line, "epoch"), EPOCH);
	struct tu_msg t;
	ru_want(&b, TCPCHAT_MSG_TEXT, "jay", "#lobby", &t);
	ck_assert_int_eq(ru_json_num(line, "id"), (long long)t.id);
	ck_assert_str_eq(t.ref, "");
	/* a bad reference is refused */
	ck_assert_int_eq(tu_peer_send_line(&j, "{\"type\":\"text\",\"body\":"
	                                       "\"hi\",\"ref\":\"a\\u0001\"}"),
	                 0);
	ck_assert_int_eq(tu_peer_line(&j, line, sizeof line, TU_TIMEOUT), 1);
	ck_assert_ptr_nonnull(strstr(line, "\"type\":\"error\""));
	ck_assert_int_eq(ru_json_num(line, "code"), TCPCHAT_WIRE_BADMSG);
	RU_FINISH(srv, &j, &b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("acks");
	TCase *t = tcase_create("acks");
	tcase_add_test(t, ack_of_a_room_text);
	tcase_add_test(t, ack_of_a_private_text);
	tcase_add_test(t, a_resend_is_posted_once);
	tcase_add_test(t, a_resend_after_the_window_is_posted_again);
	tcase_add_test(t, no_window_no_dedup);
	tcase_add_test(t, the_oldest_beyond_ack_max_is_forgotten);
	tcase_add_test(t, bad_references);
	tcase_add_test(t, a_refused_text_carries_its_reference);
	tcase_add_test(t, dedup_across_a_reconnect);
	tcase_add_test(t, protocol_1_has_no_references);
	tcase_add_test(t, json_peer);
	suite_add_tcase(s, t);
	return tu_run_suite(s);
}
