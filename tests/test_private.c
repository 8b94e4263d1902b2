/* Integration tests of protocol 2 private messages over loopback: only
 * the target gets one, on any codec, with an ECHO copy to the sender;
 * absent and protocol-1 targets, a room and a target together, the
 * handler's veto and deferral, and a room shared by a binary, a line and
 * a JSON user exchanging room and private messages. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roomutil.h"

static void send_private(struct tu_peer *p, const char *target,
                         const char *text)
{
	ck_assert_int_eq(
	        tu_peer_send(p, TCPCHAT_MSG_TEXT, 0, NULL, target, text), 0);
}

/* The private message body from sender to target: not an echo. */
static void want_private(struct tu_peer *p, const char *sender,
                         const char *target, const char *body, struct tu_msg *m)
{
	ru_want(p, TCPCHAT_MSG_TEXT, sender, NULL, m);
	ck_assert_str_eq(m->target, target);
	ck_assert_str_eq(m->room, "");
	ck_assert_str_eq(m->body, body);
	ck_assert_uint_eq(m->flags & TCPCHAT_MSGF_ECHO, 0);
	ck_assert_uint_gt(m->id, 0);
	ck_assert_int_gt(m->timestamp, 1600000000000LL);
}

/* The ECHO of a private message the peer (sender) sent to target. */
static void want_echo(struct tu_peer *p, const char *sender, const char *target,
                      const char *body, struct tu_msg *m)
{
	ru_want(p, TCPCHAT_MSG_TEXT, sender, NULL, m);
	ck_assert_str_eq(m->target, target);
	ck_assert_str_eq(m->room, "");
	ck_assert_str_eq(m->body, body);
	ck_assert_uint_eq(m->flags & TCPCHAT_MSGF_ECHO, TCPCHAT_MSGF_ECHO);
	ck_assert_uint_gt(m->id, 0);
}

/* Counts the TEXT messages p receives up to the notice marker (the
 * notice itself not counted). */
static int texts_upto(struct tu_peer *p, const char *marker)
{
	struct tu_msg m;
	int n = 0;
	for (;;) {
		int rc = tu_peer_recv(p, &m, TU_TIMEOUT);
		ck_assert_msg(rc == 1, "no marker '%s' (rc %d)", marker, rc);
		if (m.type != TCPCHAT_MSG_TEXT)
			continue;
		if (m.sender[0] == '\0' && strcmp(m.body, marker) == 0)
			return n;
		n++;
	}
}

struct priv_cond {
	tcpchat_server *srv;
	uint64_t want;
};

static int privates_reached(void *arg)
{
	struct priv_cond *c = arg;
	return tu_stats(c->srv).private_msgs == c->want;
}

/* ---- binary ------------------------------------------------------------- */

START_TEST(private_reaches_only_its_target)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c;
	struct tu_msg m, e;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");
	send_private(&a, "bob", "psst");
	want_private(&b, "alice", "bob", "psst", &m);
	want_echo(&a, "alice", "bob", "psst", &e);
	ck_assert_uint_eq(e.id, m.id);
	/* and back */
	send_private(&b, "alice", "what?");
	want_private(&a, "bob", "alice", "what?", &m);
	ck_assert_uint_gt(m.id, e.id);
	want_echo(&b, "bob", "alice", "what?", &e);
	ck_assert_uint_eq(e.id, m.id);
	/* a private message goes to a user in no shared room too */
	ck_assert_int_eq(tu_peer_send(&c, TCPCHAT_MSG_LEAVE,
	                              TCPCHAT_REASON_PART, "#lobby", NULL,
	                              NULL),
	                 0);
	ru_want(&c, TCPCHAT_MSG_LEAVE, "carol", NULL, &m);
	send_private(&a, "carol", "lonely?");
	want_private(&c, "alice", "carol", "lonely?", &m);
	want_echo(&a, "alice", "carol", "lonely?", &e);
	struct priv_cond pc = {srv, 3};
	ck_assert(tu_wait_until(privates_reached, &pc, TU_TIMEOUT));
	ru_mark(srv, "end");
	ck_assert_int_eq(texts_upto(&a, "end"), 0);
	ck_assert_int_eq(texts_upto(&b, "end"), 0);
	ck_assert_int_eq(texts_upto(&c, "end"), 0);
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

START_TEST(private_to_oneself_arrives_once)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	send_private(&a, "alice", "note to self");
	want_echo(&a, "alice", "alice", "note to self", &m);
	ru_mark(srv, "end");
	ck_assert_int_eq(texts_upto(&a, "end"), 0);
	ck_assert_int_eq(texts_upto(&b, "end"), 0);
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(private_to_an_absent_user)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	send_private(&a, "ghost", "hello?");
	ru_want_error(&a, TCPCHAT_WIRE_NOTFOUND, &m);
	/* one who was here and left */
	ru_login_bin(&b, port, "bob");
	ru_want(&a, TCPCHAT_MSG_JOIN, "bob", NULL, &m);
	tu_peer_close(&b);
	ru_want(&a, TCPCHAT_MSG_LEAVE, "bob", NULL, &m);
	send_private(&a, "bob", "come back");
	ru_want_error(&a, TCPCHAT_WIRE_NOTFOUND, &m);
	/* the connection stays */
	ru_login_bin(&b, port, "bob");
	send_private(&a, "bob", "there you are");
	want_private(&b, "alice", "bob", "there you are", &m);
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(private_to_a_protocol_1_user_is_refused)
{
	struct tu_peer a, old, oj;
	struct tu_msg m;
	const tcpchat_codec *codecs[2] = {tcpchat_codec_binary(),
	                                  tcpchat_codec_json()};
	int ports[2];
	tcpchat_server *srv = tu_server_new_codecs(codecs, 2, ports);
	ck_assert_ptr_nonnull(srv);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	int port = ports[0];
	ru_login_bin(&a, port, "alice");
	ck_assert_int_eq(tu_peer_login(&old, port, tcpchat_codec_binary(),
	                               "old", 1, TCPCHAT_CAP_BASE, NULL),
	                 0);
	ck_assert_int_eq(tu_peer_login(&oj, ports[1], tcpchat_codec_json(),
	                               "oldjson", 1, 0, NULL),
	                 0);
	send_private(&a, "old", "can you see this?");
	ru_want_error(&a, TCPCHAT_WIRE_NOTSUP, &m);
	send_private(&a, "oldjson", "or you?");
	ru_want_error(&a, TCPCHAT_WIRE_NOTSUP, &m);
	/* still connected */
	ck_assert_int_eq(tu_peer_send_text(&a, "public"), 0);
	ru_want(&old, TCPCHAT_MSG_TEXT, "alice", NULL, &m);
	ck_assert_str_eq(m.body, "public");
	ru_want(&oj, TCPCHAT_MSG_TEXT, "alice", NULL, &m);
	ck_assert_str_eq(m.body, "public");
	ru_mark(srv, "end");
	ck_assert_int_eq(texts_upto(&old, "end"), 0);
	ck_assert_int_eq(texts_upto(&oj, "end"), 0);
	RU_FINISH(srv, &a, &old, &oj);
}
END_TEST

START_TEST(room_and_target_together_is_badmsg)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ck_assert_int_eq(tu_peer_send(&a, TCPCHAT_MSG_TEXT, 0, "#lobby", "bob",
	                              "which one?"),
	                 0);
	ru_want_error(&a, TCPCHAT_WIRE_BADMSG, &m);
	ck_assert_int_eq(tu_peer_send(&a, TCPCHAT_MSG_TEXT, 0, "#nowhere",
	                              "ghost", "either?"),
	                 0);
	ru_want_error(&a, TCPCHAT_WIRE_BADMSG, &m);
	ru_send_room(&a, "#lobby", "plain");
	ru_want(&b, TCPCHAT_MSG_TEXT, "alice", NULL, &m);
	ck_assert_str_eq(m.body, "plain");
	ru_mark(srv, "end");
	ck_assert_int_eq(texts_upto(&a, "end"), 0);
	ck_assert_int_eq(texts_upto(&b, "end"), 0);
	RU_FINISH(srv, &a, &b);
}
END_TEST

/* ---- the handler ------------------------------------------------------- */

struct rec {
	pthread_mutex_t mu;
	int msgs;
	char target[64], room[128], body[128];
	uint64_t held; /* conn of a deferred message */
};

static int on_event(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	struct rec *r = ud;
	int verdict = TCPCHAT_ACCEPT;
	(void)srv;
	if (ev->type != TCPCHAT_SEV_MESSAGE)
		return 0;
	pthread_mutex_lock(&r->mu);
	r->msgs++;
	ru_copy_view(r->target, sizeof r->target, ev->msg->target);
	ru_copy_view(r->room, sizeof r->room, ev->msg->room);
	ru_copy_view(r->body, sizeof r->body, ev->msg->body);
	if (strstr(r->body, "secret")) {
		ev->refuse_reason = "keep it public";
		verdict = TCPCHAT_REFUSE;
	} else if (strncmp(r->body, "hold", 4) == 0) {
		r->held = ev->conn_id;
		verdict = TCPCHAT_DEFER;
	}
	pthread_mutex_unlock(&r->mu);
	return verdict;
}

static int held_set(void *arg)
{
	struct rec *r = arg;
	pthread_mutex_lock(&r->mu);
	int set = r->held != 0;
	pthread_mutex_unlock(&r->mu);
	return set;
}

struct answer {
	tcpchat_server *srv;
	uint64_t id;
	int rc;
};

static void *accept_main(void *arg)
{
	struct answer *a = arg;
	a->rc = tcpchat_server_accept(a->srv, a->id);
	return NULL;
}

START_TEST(message_event_vetoes_or_holds_a_private_message)
{
	struct rec r;
	memset(&r, 0, sizeof r);
	pthread_mutex_init(&r.mu, NULL);
	int port;
	const tcpchat_codec *c = tcpchat_codec_binary();
	tcpchat_server *srv = tu_server_new_codecs(&c, 1, &port);
	ck_assert_ptr_nonnull(srv);
	tcpchat_server_set_handler(srv, on_event, &r);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer a, b;
	struct tu_msg m, e;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");

	/* the event shows where a message goes */
	send_private(&a, "bob", "hello bob");
	want_private(&b, "alice", "bob", "hello bob", &m);
	pthread_mutex_lock(&r.mu);
	ck_assert_str_eq(r.target, "bob");
	ck_assert_str_eq(r.room, "");
	pthread_mutex_unlock(&r.mu);
	ck_assert_int_eq(tu_peer_send_text(&a, "hello all"), 0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "alice", NULL, &m);
	ck_assert_str_eq(m.body, "hello all");
	pthread_mutex_lock(&r.mu);
	ck_assert_str_eq(r.target, "");
	ck_assert_str_eq(r.room, "#lobby");
	pthread_mutex_unlock(&r.mu);

	/* vetoed: an ERROR to the sender, nothing to anyone, no echo */
	send_private(&a, "bob", "the secret plan");
	ru_want_error(&a, TCPCHAT_WIRE_REFUSED, &m);
	ck_assert_str_eq(m.body, "keep it public");

	/* held, and accepted from another thread: delivered and echoed */
	send_private(&a, "bob", "hold on");
	ck_assert(tu_wait_until(held_set, &r, TU_TIMEOUT));
	pthread_mutex_lock(&r.mu);
	struct answer ans = {srv, r.held, -1};
	pthread_mutex_unlock(&r.mu);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, accept_main, &ans), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(ans.rc, 0);
	want_private(&b, "alice", "bob", "hold on", &m);
	want_echo(&a, "alice", "bob", "hold on", &e);
	ck_assert_uint_eq(e.id, m.id);

	/* held, and its target goes meanwhile: not found at the answer */
	pthread_mutex_lock(&r.mu);
	r.held = 0;
	pthread_mutex_unlock(&r.mu);
	send_private(&a, "bob", "hold it for bob");
	ck_assert(tu_wait_until(held_set, &r, TU_TIMEOUT));
	tu_peer_close(&b);
	ru_want(&a, TCPCHAT_MSG_LEAVE, "bob", NULL, &m);
	pthread_mutex_lock(&r.mu);
	ans.id = r.held;
	ans.rc = -1;
	pthread_mutex_unlock(&r.mu);
	ck_assert_int_eq(pthread_create(&t, NULL, accept_main, &ans), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(ans.rc, 0);
	ru_want_error(&a, TCPCHAT_WIRE_NOTFOUND, &m);
	ru_login_bin(&b, port, "bob");

	/* held in a room, and the sender is taken out of it meanwhile */
	ru_send_join(&a, "#r");
	ru_want(&a, TCPCHAT_MSG_JOIN, "alice", NULL, &m);
	ru_send_join(&b, "#r");
	ru_want(&a, TCPCHAT_MSG_JOIN, "bob", NULL, &m);
	pthread_mutex_lock(&r.mu);
	r.held = 0;
	pthread_mutex_unlock(&r.mu);
	ru_send_room(&a, "#r", "hold this for #r");
	ck_assert(tu_wait_until(held_set, &r, TU_TIMEOUT));
	ck_assert_int_eq(tcpchat_server_room_part(srv, "alice", "#r", NULL), 0);
	ru_want(&b, TCPCHAT_MSG_LEAVE, "alice", NULL, &m);
	ck_assert_str_eq(m.room, "#r");
	pthread_mutex_lock(&r.mu);
	ans.id = r.held;
	ans.rc = -1;
	pthread_mutex_unlock(&r.mu);
	ck_assert_int_eq(pthread_create(&t, NULL, accept_main, &ans), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(ans.rc, 0);
	ru_want_error(&a, TCPCHAT_WIRE_NOTMEMBER, &m);

	ru_mark(srv, "end");
	/* alice: only the echo above; bob: nothing of the vetoed one */
	ck_assert_int_eq(texts_upto(&a, "end"), 0);
	ck_assert_int_eq(texts_upto(&b, "end"), 0);
	RU_FINISH(srv, &a, &b);
	pthread_mutex_destroy(&r.mu);
}
END_TEST

/* ---- every codec --------------------------------------------------------- */

START_TEST(private_messages_across_codecs)
{
	struct tu_ports ports;
	tcpchat_server *srv = tu_server_start_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer b, j, l;
	struct tu_msg m;
	ru_login_bin(&b, ports.bin, "bina");
	ru_login_json(&j, ports.json, "jay");
	ru_login_line(&l, ports.line, "lina");

	/* JSON to binary, and back */
	ck_assert_int_eq(tu_peer_send_line(&j, "{\"type\":\"text\",\"target\":"
	                                       "\"bina\",\"body\":\"from "
	                                       "json\"}"),
	                 0);
	want_private(&b, "jay", "bina", "from json", &m);
	want_echo(&j, "jay", "bina", "from json", &m);
	send_private(&b, "jay", "from bin");
	want_private(&j, "bina", "jay", "from bin", &m);
	want_echo(&b, "bina", "jay", "from bin", &m);
	ru_mark(srv, "m1");
	ck_assert_int_eq(texts_upto(&b, "m1"), 0);
	ck_assert_int_eq(texts_upto(&j, "m1"), 0);

	/* binary and JSON to line */
	send_private(&b, "lina", "hi lina");
	want_echo(&b, "bina", "lina", "hi lina", &m);
	send_private(&j, "lina", "hi from jay");
	want_echo(&j, "jay", "lina", "hi from jay", &m);
	ck_assert_int_eq(tu_peer_send_line(&l, "/msg jay hi jay"), 0);
	want_private(&j, "lina", "jay", "hi jay", &m);
	ck_assert_int_eq(tu_peer_send_line(&l, "/msg bina hi  bina "), 0);
	want_private(&b, "lina", "bina", "hi  bina ", &m);
	ru_mark(srv, "m2");
	ck_assert_int_eq(texts_upto(&b, "m2"), 0);
	ck_assert_int_eq(texts_upto(&j, "m2"), 0);
	/* what the line user saw, in order */
	char got[256];
	for (;;) {
		ck_assert_int_eq(tu_peer_line(&l, got, sizeof got, TU_TIMEOUT),
		                 1);
		if (strcmp(got, "*** m1") == 0)
			break;
	}
	ru_next_line(&l, "*bina* hi lina");
	ru_next_line(&l, "*jay* hi from jay");
	ru_next_line(&l, "-> *jay* hi jay");
	ru_next_line(&l, "-> *bina* hi  bina ");
	ru_next_line(&l, "*** m2");
	/* to oneself: once, as the echo */
	ck_assert_int_eq(tu_peer_send_line(&l, "/msg lina memo"), 0);
	ru_next_line(&l, "-> *lina* memo");
	/* to nobody */
	ck_assert_int_eq(tu_peer_send_line(&l, "/msg ghost boo"), 0);
	ru_next_line_prefix(&l, "-!- error 15: ");
	ru_mark(srv, "m3");
	ck_assert_int_eq(ru_lines_upto(&l, "m3", ""), 0);
	RU_FINISH(srv, &b, &j, &l);
}
END_TEST

START_TEST(json_lines_of_protocol_2)
{
	const tcpchat_codec *codecs[2] = {tcpchat_codec_binary(),
	                                  tcpchat_codec_json()};
	int ports[2];
	tcpchat_server *srv = tu_server_new_codecs(codecs, 2, ports);
	ck_assert_ptr_nonnull(srv);
	ru_server_option(srv, TCPCHAT_SOPT_EPOCH, 123456789);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer b, j;
	struct tu_msg m;
	ru_login_json(&j, ports[1], "jay");
	ru_login_bin(&b, ports[0], "bina");
	ru_json_line(&j, "{\"type\":\"join\",\"id\":@ID,\"ts\":@TS,\"code\":2,"
	                 "\"sender\":\"bina\",\"room\":\"#lobby\",\"flags\":4,"
	                 "\"epoch\":123456789}");
	send_private(&b, "jay", "raw");
	ru_json_line(
	        &j, "{\"type\":\"text\",\"id\":@ID,\"ts\":@TS,"
	            "\"sender\":\"bina\",\"body\":\"raw\",\"target\":\"jay\"}");
	ck_assert_int_eq(tu_peer_send_line(&j, "{\"type\":\"text\",\"target\":"
	                                       "\"bina\",\"body\":\"back\"}"),
	                 0);
	ru_json_line(&j, "{\"type\":\"text\",\"id\":@ID,\"ts\":@TS,"
	                 "\"sender\":\"jay\",\"body\":\"back\",\"target\":"
	                 "\"bina\",\"flags\":2}");
	want_private(&b, "jay", "bina", "back", &m);
	ru_send_room(&b, "#lobby", "all");
	ru_json_line(&j, "{\"type\":\"text\",\"id\":@ID,\"ts\":@TS,"
	                 "\"sender\":\"bina\",\"body\":\"all\",\"room\":"
	                 "\"#lobby\",\"flags\":4,\"seq\":1}");
	ck_assert_int_eq(
	        tu_peer_send_line(&j, "{\"type\":\"join\",\"room\":\"#j\"}"),
	        0);
	ru_json_line(&j,
	             "{\"type\":\"join\",\"id\":@ID,\"ts\":@TS,\"code\":1,"
	             "\"sender\":\"jay\",\"room\":\"#j\",\"epoch\":123456789}");
	ck_assert_int_eq(tu_peer_send_line(&j, "{\"type\":\"topic\",\"room\":"
	                                       "\"#j\",\"body\":\"jj\"}"),
	                 0);
	ru_json_line(&j, "{\"type\":\"topic\",\"id\":@ID,\"ts\":@TS,"
	                 "\"sender\":\"jay\",\"body\":\"jj\",\"room\":\"#j\"}");
	RU_FINISH(srv, &b, &j);
}
END_TEST

START_TEST(mixed_codec_room)
{
	struct tu_ports ports;
	tcpchat_server *srv = tu_server_start_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer b, j, l;
	struct tu_msg m;
	char got[256];
	ru_login_bin(&b, ports.bin, "bina");
	ru_login_json(&j, ports.json, "jay");
	ru_login_line(&l, ports.line, "lina");
	/* the binary and the JSON user */
	ru_send_join(&b, "#mix");
	ru_want(&b, TCPCHAT_MSG_JOIN, "bina", NULL, &m);
	ck_assert_str_eq(m.room, "#mix");
	ck_assert_int_eq(
	        tu_peer_send_line(&j, "{\"type\":\"join\",\"room\":\"#mix\"}"),
	        0);
	ru_want(&j, TCPCHAT_MSG_JOIN, "jay", NULL, &m);
	ck_assert_str_eq(m.room, "#mix");
	ck_assert_uint_eq(m.code, 2);
	ru_want(&b, TCPCHAT_MSG_JOIN, "jay", NULL, &m);
	ck_assert_str_eq(m.room, "#mix");
	ru_send_room(&b, "#mix", "hello mix");
	ru_want(&j, TCPCHAT_MSG_TEXT, "bina", NULL, &m);
	ck_assert_str_eq(m.room, "#mix");
	ck_assert_str_eq(m.body, "hello mix");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM, 0);
	/* jay's current room is #mix: a plain text goes there */
	ck_assert_int_eq(
	        tu_peer_send_line(&j, "{\"type\":\"text\",\"body\":\"plain\"}"),
	        0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "jay", NULL, &m);
	ck_assert_str_eq(m.room, "#mix");
	ck_assert_str_eq(m.body, "plain");
	send_private(&b, "jay", "just you");
	ru_want(&j, TCPCHAT_MSG_TEXT, "bina", NULL, &m);
	ck_assert_str_eq(m.target, "jay");
	ck_assert_str_eq(m.room, "");
	ck_assert_str_eq(m.body, "just you");

	/* the line user: what it saw so far, then it joins */
	ck_assert_int_eq(tcpchat_server_broadcast(srv, "m1", 2), 0);
	ck_assert_int_eq(tu_peer_expect_line(&l, "*** m1", TU_TIMEOUT), 1);
	ck_assert_int_eq(tu_peer_send_line(&l, "/join #mix"), 0);
	ru_next_line(&l, "--> lina joined #mix");
	ru_want(&b, TCPCHAT_MSG_JOIN, "lina", NULL, &m);
	ck_assert_str_eq(m.room, "#mix");
	ck_assert_uint_eq(m.code, 3);
	ru_want(&j, TCPCHAT_MSG_JOIN, "lina", NULL, &m);
	ck_assert_str_eq(m.room, "#mix");
	ru_send_room(&b, "#mix", "welcome lina");
	ru_next_line(&l, "[#mix] bina: welcome lina");
	ru_send_room(&b, "#lobby", "lobby talk");
	ru_next_line(&l, "bina: lobby talk");
	ck_assert_int_eq(tu_peer_send_line(&l, "from the line"), 0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "lina", NULL, &m);
	ck_assert_str_eq(m.room, "#mix");
	ck_assert_str_eq(m.body, "from the line");
	ru_want(&j, TCPCHAT_MSG_TEXT, "lina", NULL, &m);
	ck_assert_str_eq(m.room, "#mix");
	ck_assert_int_eq(tu_peer_send_line(&l, "#lobby to the lobby"), 0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "lina", NULL, &m);
	ck_assert_str_eq(m.room, "#lobby");
	ck_assert_str_eq(m.body, "to the lobby");
	ck_assert_int_eq(tu_peer_send_line(&l, "/topic #mix mixing it"), 0);
	ru_next_line(&l, "=== topic #mix by lina: mixing it");
	ru_want(&j, TCPCHAT_MSG_TOPIC, "lina", NULL, &m);
	ck_assert_str_eq(m.room, "#mix");
	ck_assert_str_eq(m.body, "mixing it");
	ck_assert_int_eq(
	        tcpchat_server_broadcast_room(srv, "#mix", "a notice", 8), 0);
	ru_next_line(&l, "[#mix] *** a notice");
	/* private messages inside the room */
	ck_assert_int_eq(tu_peer_send_line(&l, "/msg bina psst"), 0);
	ru_next_line(&l, "-> *bina* psst");
	ru_want(&b, TCPCHAT_MSG_TEXT, "lina", NULL, &m);
	ck_assert_str_eq(m.target, "bina");
	ck_assert_str_eq(m.body, "psst");
	ck_assert_int_eq(tu_peer_send_line(&j, "{\"type\":\"text\",\"target\":"
	                                       "\"lina\",\"body\":\"psst "
	                                       "back\"}"),
	                 0);
	ru_next_line(&l, "*jay* psst back");
	/* parts */
	ck_assert_int_eq(
	        tu_peer_send_line(&j, "{\"type\":\"leave\",\"code\":8,\"room\":"
	                              "\"#mix\",\"body\":\"bye\"}"),
	        0);
	ru_next_line(&l, "<-- jay left #mix (part: bye)");
	ck_assert_int_eq(tu_peer_send_line(&l, "/part"), 0);
	ru_next_line(&l, "<-- lina left #mix (part)");
	ru_want(&b, TCPCHAT_MSG_LEAVE, "lina", NULL, &m);
	ck_assert_str_eq(m.room, "#mix");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);
	/* back in the lobby as the current room */
	ck_assert_int_eq(tu_peer_send_line(&l, "lobby again"), 0);
	ru_want(&j, TCPCHAT_MSG_TEXT, "lina", NULL, &m);
	ck_assert_str_eq(m.room, "#lobby");
	ck_assert_str_eq(m.body, "lobby again");
	(void)got;
	RU_FINISH(srv, &b, &j, &l);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("private");
	TCase *t = tcase_create("private");
	tcase_set_timeout(t, 30 * tu_slow());
	tcase_add_test(t, private_reaches_only_its_target);
	tcase_add_test(t, private_to_oneself_arrives_once);
	tcase_add_test(t, private_to_an_absent_user);
	tcase_add_test(t, private_to_a_protocol_1_user_is_refused);
	tcase_add_test(t, room_and_target_together_is_badmsg);
	tcase_add_test(t, message_event_vetoes_or_holds_a_private_message);
	suite_add_tcase(s, t);
	t = tcase_create("codecs");
	tcase_set_timeout(t, 30 * tu_slow());
	tcase_add_test(t, private_messages_across_codecs);
	tcase_add_test(t, json_lines_of_protocol_2);
	tcase_add_test(t, mixed_codec_room);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return tu_run_suite(suite());
}
