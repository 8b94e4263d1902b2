/* Integration tests of the server over loopback: handshake, notices,
 * fan-out order, names, garbage, limits, shutdown, mixed codecs. */
#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static const tcpchat_codec *bin(void)
{
	return tcpchat_codec_binary();
}

START_TEST(join_and_leave_notices)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&a, port, bin(), "alice"), 0);
	ck_assert_int_eq(tu_peer_join(&b, port, bin(), "bob"), 0);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "bob");
	ck_assert_uint_gt(m.id, 0);
	ck_assert_int_gt(m.timestamp, 1600000000000LL);

	/* bob says goodbye: reason quit */
	tcpchat_msg leave = {.type = TCPCHAT_MSG_LEAVE};
	ck_assert_int_eq(tu_peer_send_msg(&b, &leave), 0);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "bob");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_QUIT);
	ck_assert_int_eq(tu_peer_wait_closed(&b, TU_TIMEOUT), 1);
	tu_peer_close(&b);

	/* carol just drops the connection: reason closed */
	ck_assert_int_eq(tu_peer_join(&c, port, bin(), "carol"), 0);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT),
	                 1);
	tu_peer_close(&c);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "carol");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_CLOSED);

	/* the name is free again */
	ck_assert_int_eq(tu_peer_join(&b, port, bin(), "bob"), 0);
	tu_peer_close(&b);
	tu_peer_close(&a);
	tu_server_stop(srv);
}
END_TEST

START_TEST(broadcast_order_and_stamping)
{
	enum { N = 4, MSGS = 200 };
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p[N];
	struct tu_msg m;
	char name[16];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "user%d", i);
		ck_assert_int_eq(tu_peer_join(&p[i], port, bin(), name), 0);
	}
	/* user0 sends, with a forged sender that must be ignored */
	for (int k = 0; k < MSGS; k++) {
		char text[32];
		snprintf(text, sizeof text, "msg %d", k);
		tcpchat_msg t = {.type = TCPCHAT_MSG_TEXT};
		t.sender.ptr = "mallory";
		t.sender.len = 7;
		t.body.ptr = text;
		t.body.len = strlen(text);
		ck_assert_int_eq(tu_peer_send_msg(&p[0], &t), 0);
	}
	/* user1 sends a marker; it may overtake user0's burst, since only
	 * the order of one sender's messages is guaranteed. */
	ck_assert_int_eq(tu_peer_send_text(&p[1], "marker"), 0);
	for (int i = 1; i < N; i++) {
		uint64_t last_id = 0;
		int k = 0, markers = 0;
		while (k < MSGS || (i > 1 && markers == 0)) {
			ck_assert_int_eq(tu_peer_expect(&p[i], TCPCHAT_MSG_TEXT,
			                                &m, TU_TIMEOUT),
			                 1);
			ck_assert_uint_gt(m.id, last_id);
			last_id = m.id;
			if (strcmp(m.sender, "user1") == 0) {
				ck_assert_int_ne(i, 1); /* not to its sender */
				ck_assert_str_eq(m.body, "marker");
				markers++;
				continue;
			}
			char want[32];
			snprintf(want, sizeof want, "msg %d", k);
			ck_assert_str_eq(m.sender, "user0");
			ck_assert_str_eq(m.body, want);
			k++;
		}
		ck_assert_int_eq(markers, i > 1 ? 1 : 0);
	}
	/* The sender got none of its own messages: its next TEXT is the
	 * marker. */
	ck_assert_int_eq(
	        tu_peer_expect(&p[0], TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m.body, "marker");
	ck_assert_str_eq(m.sender, "user1");
	/* user1 must not get its own marker back: nothing more arrives. */
	ck_assert_int_eq(tu_peer_send_text(&p[2], "end"), 0);
	ck_assert_int_eq(
	        tu_peer_expect(&p[1], TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m.body, "end");
	for (int i = 0; i < N; i++)
		tu_peer_close(&p[i]);
	tu_server_stop(srv);
}
END_TEST

START_TEST(names_refused)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b;
	ck_assert_int_eq(tu_peer_join(&a, port, bin(), "alice"), 0);
	ck_assert_int_eq(tu_peer_join(&b, port, bin(), "alice"),
	                 TCPCHAT_ENAMEINUSE);
	ck_assert_int_eq(tu_peer_wait_closed(&b, TU_TIMEOUT), 1);
	tu_peer_close(&b);
	const char *bad[] = {"with space", "", "tab\tname",
	                     "a-name-that-is-far-too-long-for-the-server"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = tu_peer_join(&b, port, bin(), bad[i]);
		ck_assert_msg(rc == TCPCHAT_EBADNAME, "name '%s' gave %d",
		              bad[i], rc);
		tu_peer_close(&b);
	}
	/* wrong protocol version (a newer one, 99, is answered in 2) */
	ck_assert_int_eq(tu_peer_connect(&b, port, bin(), 0), 0);
	tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
	h.code = 0;
	h.sender.ptr = "zed";
	h.sender.len = 3;
	ck_assert_int_eq(tu_peer_send_msg(&b, &h), 0);
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_recv(&b, &m, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_ERROR);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_EVERSION);
	tu_peer_close(&b);
	/* a TEXT before HELLO */
	ck_assert_int_eq(tu_peer_connect(&b, port, bin(), 0), 0);
	ck_assert_int_eq(tu_peer_send_text(&b, "hi"), 0);
	ck_assert_int_eq(tu_peer_recv(&b, &m, TU_TIMEOUT), 1);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_EPROTO);
	ck_assert_int_eq(tu_peer_wait_closed(&b, TU_TIMEOUT), 1);
	tu_peer_close(&b);
	/* alice is still fine */
	ck_assert_int_eq(tu_peer_join(&b, port, bin(), "bob"), 0);
	ck_assert_int_eq(tu_peer_send_text(&b, "still here?"), 0);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "still here?");
	tu_peer_close(&a);
	tu_peer_close(&b);
	tu_server_stop(srv);
}
END_TEST

/* Receives every message up to the next TEXT, which must be body from
 * sender, and fails if a WHO answer comes on the way. */
static void expect_text_no_who(struct tu_peer *p, const char *sender,
                               const char *body)
{
	struct tu_msg m;
	do {
		ck_assert_int_eq(tu_peer_recv(p, &m, TU_TIMEOUT), 1);
		ck_assert_msg(m.type != TCPCHAT_MSG_WHO,
		              "a user who did not ask got the WHO answer '%s'",
		              m.body);
	} while (m.type != TCPCHAT_MSG_TEXT);
	ck_assert_str_eq(m.sender, sender);
	ck_assert_str_eq(m.body, body);
}

START_TEST(who_lists_users)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	tcpchat_msg who = {.type = TCPCHAT_MSG_WHO};
	ck_assert_int_eq(tu_peer_join(&a, port, bin(), "alice"), 0);
	ck_assert_int_eq(tu_peer_join(&b, port, bin(), "bob"), 0);
	ck_assert_int_eq(tu_peer_join(&c, port, bin(), "zoë"), 0);
	ck_assert_int_eq(tu_peer_send_msg(&b, &who), 0);
	ck_assert_int_eq(tu_peer_expect(&b, TCPCHAT_MSG_WHO, &m, TU_TIMEOUT),
	                 1);
	ck_assert_uint_eq(m.code, 3);
	ck_assert_str_eq(m.body, "alice bob zoë");
	/* Only the asker gets the answer.  bob's marker, sent after the
	 * answer, reaches the others after anything the server queued for
	 * them while answering: up to it, they must see no WHO at all. */
	ck_assert_int_eq(tu_peer_send_text(&b, "marker"), 0);
	expect_text_no_who(&a, "bob", "marker");
	expect_text_no_who(&c, "bob", "marker");
	tu_peer_close(&c);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(tu_peer_send_msg(&a, &who), 0);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_WHO, &m, TU_TIMEOUT),
	                 1);
	ck_assert_uint_eq(m.code, 2);
	ck_assert_str_eq(m.body, "alice bob");
	tu_peer_close(&a);
	tu_peer_close(&b);
	tu_server_stop(srv);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("server");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, join_and_leave_notices);
	tcase_add_test(tc, broadcast_order_and_stamping);
	tcase_add_test(tc, names_refused);
	tcase_add_test(tc, who_lists_users);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
