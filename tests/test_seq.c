/* Sequence numbers of room texts (tcpchat-protocol(7), "Sequence
 * numbers"): one counter per room from 1, whoever posts, own texts
 * included; nothing for private texts; a join carries the room's last
 * number and the epoch, settable and drawn at random otherwise; a vetoed
 * text takes no number. */
#include <check.h>
#include <string.h>

#include "roomutil.h"

#define EPOCH 42

/* A binary server with the epoch of the tests. */
static tcpchat_server *server(int *port, tcpchat_server_handler h)
{
	const tcpchat_codec *bin = tcpchat_codec_binary();
	tcpchat_server *srv = tu_server_new_codecs(&bin, 1, port);
	ck_assert_ptr_nonnull(srv);
	ru_server_option(srv, TCPCHAT_SOPT_EPOCH, EPOCH);
	tcpchat_server_set_handler(srv, h, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	return srv;
}

/* Receives the next TEXT in room from sender: its body and seq must be
 * these, with the epoch of the tests. */
static void want_text(struct tu_peer *p, const char *sender, const char *room,
                      const char *body, uint64_t seq)
{
	struct tu_msg m;
	ru_want(p, TCPCHAT_MSG_TEXT, sender, room, &m);
	ck_assert_str_eq(m.body, body);
	ck_assert_uint_eq(m.seq, seq);
	ck_assert_uint_eq(m.epoch, 0); /* it came with the join */
}

START_TEST(each_room_counts_its_texts)
{
	int port;
	tcpchat_server *srv = server(&port, NULL);
	struct tu_peer a, b;
	ru_login_bin(&a, port, "ann");
	ru_login_bin(&b, port, "ben");
	ru_join(&a, "ann", "#x");
	ru_join(&b, "ben", "#x");
	ru_join(&a, "ann", "#y");
	ru_join(&b, "ben", "#y");
	ru_send_room(&a, "#x", "x1");
	ru_send_room(&a, "#x", "x2");
	ru_send_room(&a, "#y", "y1");
	ru_send_room(&a, "#x", "x3");
	want_text(&b, "ann", "#x", "x1", 1);
	want_text(&b, "ann", "#x", "x2", 2);
	want_text(&b, "ann", "#y", "y1", 1);
	want_text(&b, "ann", "#x", "x3", 3);
	/* the default room has its own counter */
	ru_send_room(&b, "#lobby", "l1");
	want_text(&a, "ben", "#lobby", "l1", 1);
	/* a text without a room goes to the current room, #y */
	ck_assert_int_eq(tu_peer_send_text(&a, "psst"), 0);
	want_text(&b, "ann", "#y", "psst", 2);
	/* a private text has none */
	tcpchat_msg pm = {.type = TCPCHAT_MSG_TEXT};
	pm.body.ptr = "private";
	pm.body.len = 7;
	pm.target.ptr = "ben";
	pm.target.len = 3;
	ck_assert_int_eq(tu_peer_send_msg(&a, &pm), 0);
	want_text(&b, "ann", "", "private", 0);
	/* the server application's text to a room takes the next number,
	 * and so does the text of a member who is not echoed */
	ck_assert_int_eq(tcpchat_server_broadcast_room(srv, "#x", "notice", 6),
	                 0);
	want_text(&b, "", "#x", "notice", 4);
	ru_send_room(&b, "#x", "from ben");
	want_text(&a, "ben", "#x", "from ben", 5);
	ru_send_room(&a, "#x", "from ann");
	want_text(&b, "ann", "#x", "from ann", 6);
	/* a join says where the member's view starts, with the epoch */
	struct tu_peer c;
	struct tu_msg m;
	ru_login_bin(&c, port, "cat");
	ru_send_join(&c, "#x");
	ru_want(&c, TCPCHAT_MSG_JOIN, "cat", "#x", &m);
	ck_assert_uint_eq(m.seq, 6);
	ck_assert_uint_eq(m.epoch, EPOCH);
	ru_want(&a, TCPCHAT_MSG_JOIN, "cat", "#x", &m);
	ck_assert_uint_eq(m.seq, 6);
	ck_assert_uint_eq(m.epoch, EPOCH);
	ru_send_room(&a, "#x", "welcome cat");
	want_text(&c, "ann", "#x", "welcome cat", 7);
	/* a room without texts: no seq, the epoch all the same */
	ru_send_join(&c, "#new");
	ru_want(&c, TCPCHAT_MSG_JOIN, "cat", "#new", &m);
	ck_assert_uint_eq(m.seq, 0);
	ck_assert_uint_eq(m.epoch, EPOCH);
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

static int veto_handler(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	(void)srv;
	(void)ud;
	if (ev->type == TCPCHAT_SEV_MESSAGE) {
		/* not numbered before it is accepted */
		ck_assert_uint_eq(ev->msg->seq, 0);
		if (ev->msg->body.len == 4 &&
		    !memcmp(ev->msg->body.ptr, "veto", 4))
			return 1;
	}
	return TCPCHAT_ACCEPT;
}

START_TEST(a_vetoed_text_takes_no_number)
{
	int port;
	tcpchat_server *srv = server(&port, veto_handler);
	struct tu_peer a, b;
	ru_login_bin(&a, port, "ann");
	ru_login_bin(&b, port, "ben");
	ru_send_room(&a, "#lobby", "one");
	want_text(&b, "ann", "#lobby", "one", 1);
	ru_send_room(&a, "#lobby", "veto");
	ru_want_error(&a, TCPCHAT_WIRE_REFUSED, NULL);
	ru_send_room(&a, "#lobby", "two");
	want_text(&b, "ann", "#lobby", "two", 2);
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(the_epoch_is_random_unless_set)
{
	tcpchat_server *s1, *s2;
	long long e1, e2, e;
	ck_assert_int_eq(tcpchat_server_new(&s1), 0);
	ck_assert_int_eq(tcpchat_server_new(&s2), 0);
	ck_assert_int_eq(tcpchat_server_get_option(s1, TCPCHAT_SOPT_EPOCH, &e1),
	                 0);
	ck_assert_int_eq(tcpchat_server_get_option(s2, TCPCHAT_SOPT_EPOCH, &e2),
	                 0);
	ck_assert_int_gt(e1, 0);
	ck_assert_int_gt(e2, 0);
	ck_assert_int_ne(e1, e2); /* 2^-63 */
	ck_assert_int_eq(tcpchat_server_set_option(s1, TCPCHAT_SOPT_EPOCH, 0),
	                 0);
	ck_assert_int_eq(tcpchat_server_get_option(s1, TCPCHAT_SOPT_EPOCH, &e),
	                 0);
	ck_assert_int_gt(e, 0);
	ck_assert_int_ne(e, e1);
	ck_assert_int_eq(tcpchat_server_set_option(s1, TCPCHAT_SOPT_EPOCH, -1),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_set_option(s1, TCPCHAT_SOPT_EPOCH, 5),
	                 0);
	ck_assert_int_eq(tcpchat_server_get_option(s1, TCPCHAT_SOPT_EPOCH, &e),
	                 0);
	ck_assert_int_eq(e, 5);
	tcpchat_server_destroy(s1);
	tcpchat_server_destroy(s2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("seq");
	TCase *t = tcase_create("seq");
	tcase_add_test(t, each_room_counts_its_texts);
	tcase_add_test(t, a_vetoed_text_takes_no_number);
	tcase_add_test(t, the_epoch_is_random_unless_set);
	suite_add_tcase(s, t);
	return tu_run_suite(s);
}
