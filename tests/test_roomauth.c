/* Integration tests of room operators over loopback: KICK (kick, ban,
 * unban) on the binary, line and JSON codecs, decided by the handler's
 * ROOM_KICK event (refused without a handler or by a handler that does
 * not know the event, deferred and answered from another thread), the
 * errors of a bad request, ban lists that keep a name out of a room,
 * and the ban API of the server. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roomutil.h"

/* ---- a handler that lets operators kick ---------------------------------- */

enum { MODE_OPS, MODE_IGNORANT, MODE_DEFER };

struct ops {
	pthread_mutex_t mu;
	int mode;
	int kicks;         /* ROOM_KICK events */
	int room_joins;    /* ROOM_JOIN events */
	uint64_t deferred; /* conn of the deferred ROOM_KICK */
	char kick_target[TCPCHAT_NAME_MAX + 1];
	char kick_room[TCPCHAT_ROOM_MAX + 1];
	uint32_t kick_flags;
	/* the ban list of #dev, read on the loop when a text says "bans" */
	int queried;
	long nbans, nbans_nope;
	char bans[8][TCPCHAT_NAME_MAX + 1];
	int bans_seen;
};

static int on_ban(tcpchat_str name, void *ud)
{
	struct ops *o = ud;
	if (o->bans_seen < 8)
		ru_copy_view(o->bans[o->bans_seen], sizeof o->bans[0], name);
	o->bans_seen++;
	return 0;
}

static int starts_with_op(tcpchat_str name)
{
	return name.len >= 2 && memcmp(name.ptr, "op", 2) == 0;
}

static int on_event(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	struct ops *o = ud;
	int verdict = TCPCHAT_ACCEPT;
	pthread_mutex_lock(&o->mu);
	if (ev->type == TCPCHAT_SEV_ROOM_JOIN)
		o->room_joins++;
	if (ev->type == TCPCHAT_SEV_MESSAGE && ev->msg->body.len == 4 &&
	    memcmp(ev->msg->body.ptr, "bans", 4) == 0) {
		o->bans_seen = 0;
		o->nbans = tcpchat_server_room_bans(srv, "#dev", on_ban, o);
		o->nbans_nope =
		        tcpchat_server_room_bans(srv, "#nope", on_ban, o);
		o->queried = 1;
	}
	if (ev->type == TCPCHAT_SEV_ROOM_KICK) {
		o->kicks++;
		ru_copy_view(o->kick_target, sizeof o->kick_target,
		             ev->msg->target);
		ru_copy_view(o->kick_room, sizeof o->kick_room, ev->room);
		o->kick_flags = ev->msg->flags;
		if (o->mode == MODE_DEFER) {
			o->deferred = ev->conn_id;
			verdict = TCPCHAT_DEFER;
		} else if (o->mode == MODE_OPS && starts_with_op(ev->name)) {
			ev->allow = 1;
		} else if (o->mode == MODE_OPS) {
			ev->refuse_reason = "ops only";
			verdict = TCPCHAT_REFUSE;
		} /* MODE_IGNORANT: returns 0, allow stays 0 */
	}
	pthread_mutex_unlock(&o->mu);
	return verdict;
}

static struct ops *ops_new(int mode)
{
	struct ops *o = calloc(1, sizeof *o);
	ck_assert_ptr_nonnull(o);
	pthread_mutex_init(&o->mu, NULL);
	o->mode = mode;
	return o;
}

static void ops_free(struct ops *o)
{
	pthread_mutex_destroy(&o->mu);
	free(o);
}

static int ops_get(struct ops *o, const int *field)
{
	pthread_mutex_lock(&o->mu);
	int v = *field;
	pthread_mutex_unlock(&o->mu);
	return v;
}

static int deferred_set(void *arg)
{
	struct ops *o = arg;
	pthread_mutex_lock(&o->mu);
	int set = o->deferred != 0;
	pthread_mutex_unlock(&o->mu);
	return set;
}

static int bans_queried(void *arg)
{
	struct ops *o = arg;
	pthread_mutex_lock(&o->mu);
	int q = o->queried;
	pthread_mutex_unlock(&o->mu);
	return q;
}

/* Sends a KICK from p. */
static void send_kick(struct tu_peer *p, const char *room, const char *target,
                      const char *reason, uint32_t flags)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_KICK};
	m.room.ptr = room;
	m.room.len = room ? strlen(room) : 0;
	m.target.ptr = target;
	m.target.len = target ? strlen(target) : 0;
	m.body.ptr = reason;
	m.body.len = reason ? strlen(reason) : 0;
	m.flags = flags;
	ck_assert_int_eq(tu_peer_send_msg(p, &m), 0);
}

/* The next ERROR of p: code, body, and the connection stays. */
static void want_error(struct tu_peer *p, uint32_t code, const char *body)
{
	struct tu_msg m;
	ru_want_error(p, code, &m);
	if (body)
		ck_assert_str_eq(m.body, body);
}

/* A started binary server with the handler of o (none when o is NULL),
 * and two users in #dev: a, called name, and b, called bob. */
static tcpchat_server *two_in_dev(struct ops *o, struct tu_peer *a,
                                  const char *name, struct tu_peer *b)
{
	int port;
	tcpchat_server *srv = ru_server_new(&port);
	if (o)
		tcpchat_server_set_handler(srv, on_event, o);
	ru_server_go(srv);
	ru_login_bin(a, port, name);
	ru_login_bin(b, port, "bob");
	ru_join(a, name, "#dev");
	ru_join(b, "bob", "#dev");
	return srv;
}

/* ---- kicks --------------------------------------------------------------- */

START_TEST(kick_by_an_operator_on_every_codec)
{
	struct ops *o = ops_new(MODE_OPS);
	struct tu_ports ports;
	tcpchat_server *srv = tu_server_new_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	tcpchat_server_set_handler(srv, on_event, o);
	ru_server_go(srv);
	struct tu_peer op, bob, opl, opj;
	struct tu_msg m;
	ru_login_bin(&op, ports.bin, "opal");
	ru_login_bin(&bob, ports.bin, "bob");
	ru_login_line(&opl, ports.line, "oplin");
	ru_login_json(&opj, ports.json, "opjay");
	ru_join(&op, "opal", "#dev");
	ru_join(&bob, "bob", "#dev");
	ru_next_line(&opl, "--> opjay joined");
	ck_assert_int_eq(tu_peer_send_line(&opl, "/join #dev"), 0);
	ru_next_line(&opl, "--> oplin joined #dev");
	ru_join(&opj, "opjay", "#dev");

	/* binary: bob and every member see the LEAVE with the reason */
	send_kick(&op, "#dev", "bob", "be nice", 0);
	ru_want(&bob, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_KICKED);
	ck_assert_str_eq(m.body, "be nice");
	ru_want(&op, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_KICKED);
	ru_next_line(&opl, "--> opjay joined #dev");
	ru_next_line(&opl, "<-- bob left #dev (kicked: be nice)");
	ck_assert_int_eq(ops_get(o, &o->kicks), 1);
	/* bob is still connected, and may come back (no ban) */
	ru_still_here(&bob);
	ru_join(&bob, "bob", "#dev");
	ru_next_line(&opl, "--> bob joined #dev");

	/* line */
	ck_assert_int_eq(tu_peer_send_line(&opl, "/kick #dev bob off topic"),
	                 0);
	ru_next_line(&opl, "<-- bob left #dev (kicked: off topic)");
	ru_want(&bob, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ck_assert_str_eq(m.body, "off topic");
	ru_join(&bob, "bob", "#dev");
	ru_next_line(&opl, "--> bob joined #dev");

	/* JSON (its peer saw the two kicks before as a member) */
	send_kick(&opj, "#dev", "bob", NULL, 0);
	ru_want(&bob, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_KICKED);
	ck_assert_str_eq(m.body, "");
	for (int i = 0; i < 3; i++)
		ru_want(&opj, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_KICKED);
	ck_assert_str_eq(m.body, "");
	ru_next_line(&opl, "<-- bob left #dev (kicked)");
	ck_assert_int_eq(ops_get(o, &o->kicks), 3);

	/* a non-operator is refused with the handler's reason */
	ru_join(&bob, "bob", "#dev");
	ru_next_line(&opl, "--> bob joined #dev");
	send_kick(&bob, "#dev", "opal", "revenge", 0);
	want_error(&bob, TCPCHAT_WIRE_REFUSED, "ops only");
	ck_assert_int_eq(tu_peer_send_line(&opl, "/kick #dev"), 0);
	ru_next_line(&opl, "-!- error 24: usage: /kick #room NAME [reason]");
	RU_FINISH(srv, &op, &bob, &opl, &opj);
	ops_free(o);
}
END_TEST

START_TEST(kicks_are_refused_without_a_handler_that_allows_them)
{
	struct tu_peer a, b;
	tcpchat_server *srv = two_in_dev(NULL, &a, "alice", &b);
	send_kick(&a, "#dev", "bob", NULL, 0);
	want_error(&a, TCPCHAT_WIRE_REFUSED, "not an operator of #dev");
	send_kick(&a, "#dev", "bob", NULL, TCPCHAT_MSGF_BAN);
	want_error(&a, TCPCHAT_WIRE_REFUSED, "not an operator of #dev");
	ru_still_here(&b);
	RU_FINISH(srv, &a, &b);

	/* a handler that does not know the event returns 0: refused too */
	struct ops *o = ops_new(MODE_IGNORANT);
	srv = two_in_dev(o, &a, "opal", &b);
	send_kick(&a, "#dev", "bob", NULL, 0);
	want_error(&a, TCPCHAT_WIRE_REFUSED, "not an operator of #dev");
	ck_assert_int_eq(ops_get(o, &o->kicks), 1);
	ru_still_here(&b);
	RU_FINISH(srv, &a, &b);
	ops_free(o);
}
END_TEST

START_TEST(bad_kicks_get_clear_errors)
{
	struct ops *o = ops_new(MODE_OPS);
	int port;
	tcpchat_server *srv = ru_server_new(&port);
	tcpchat_server_set_handler(srv, on_event, o);
	ru_server_go(srv);
	struct tu_peer a, b;
	struct tu_msg m;
	ru_login_bin(&a, port, "opal");
	ru_login_bin(&b, port, "bob");
	ru_join(&b, "bob", "#dev");
	ru_join(&b, "bob", "#other");
	send_kick(&a, "#dev", "bob", NULL, 0);
	want_error(&a, TCPCHAT_WIRE_NOTMEMBER, "you are not in that room");
	send_kick(&a, "#nope", "bob", NULL, 0);
	want_error(&a, TCPCHAT_WIRE_NOTFOUND, "no such room");
	send_kick(&a, "bad room", "bob", NULL, 0);
	want_error(&a, TCPCHAT_WIRE_BADROOM, NULL);
	ru_join(&a, "opal", "#dev");
	send_kick(&a, "#dev", "carol", NULL, 0);
	want_error(&a, TCPCHAT_WIRE_NOTFOUND, "carol is not in #dev");
	send_kick(&a, "#dev", "carol", NULL, TCPCHAT_MSGF_UNBAN);
	want_error(&a, TCPCHAT_WIRE_NOTFOUND, "carol is not banned from #dev");
	send_kick(&a, "#dev", "bob", NULL,
	          TCPCHAT_MSGF_BAN | TCPCHAT_MSGF_UNBAN);
	want_error(&a, TCPCHAT_WIRE_BADMSG, NULL);
	send_kick(&a, "#dev", "b o b", NULL, 0);
	want_error(&a, TCPCHAT_WIRE_BADNAME, NULL);
	send_kick(&a, "#dev", "bob", "bell\a", 0);
	want_error(&a, TCPCHAT_WIRE_BADMSG, NULL);
	/* none of them reached the handler; bob is still in both rooms */
	ck_assert_int_eq(ops_get(o, &o->kicks), 0);
	ru_send_room(&b, "#dev", "still in");
	ru_want(&a, TCPCHAT_MSG_TEXT, "bob", "#dev", &m);
	/* a long reason is cut at 256 bytes */
	char reason[600];
	memset(reason, 'x', sizeof reason - 1);
	reason[sizeof reason - 1] = '\0';
	send_kick(&a, "#dev", "bob", reason, 0);
	ru_want(&b, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ck_assert_uint_eq(m.body_len, 256);
	RU_FINISH(srv, &a, &b);
	ops_free(o);
}
END_TEST

/* A decision from a thread of the application's own. */
struct answer {
	tcpchat_server *srv;
	uint64_t id;
	int accept;
	int rc;
};

static void *answer_main(void *arg)
{
	struct answer *a = arg;
	a->rc = a->accept ? tcpchat_server_accept(a->srv, a->id)
	                  : tcpchat_server_refuse(a->srv, a->id, "later");
	return NULL;
}

static void answer_from_thread(tcpchat_server *srv, uint64_t id, int accept)
{
	struct answer a = {srv, id, accept, -1};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, answer_main, &a), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(a.rc, 0);
}

START_TEST(deferred_kick_answered_from_another_thread)
{
	struct ops *o = ops_new(MODE_DEFER);
	struct tu_peer a, b;
	struct tu_msg m;
	tcpchat_server *srv = two_in_dev(o, &a, "alice", &b);
	/* deferred: what alice sends next waits for the answer */
	send_kick(&a, "#dev", "bob", "wait for it", TCPCHAT_MSGF_BAN);
	ru_send_room(&a, "#dev", "after the kick");
	ck_assert(tu_wait_until(deferred_set, o, TU_TIMEOUT));
	ck_assert_int_eq(tu_peer_recv(&b, &m, tu_ms(50)), 0);
	pthread_mutex_lock(&o->mu);
	ck_assert_str_eq(o->kick_target, "bob");
	ck_assert_str_eq(o->kick_room, "#dev");
	ck_assert_uint_eq(o->kick_flags, TCPCHAT_MSGF_BAN);
	uint64_t id = o->deferred;
	o->deferred = 0;
	pthread_mutex_unlock(&o->mu);
	answer_from_thread(srv, id, 1);
	ru_want(&b, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_KICKED);
	ck_assert_str_eq(m.body, "wait for it");
	ru_want(&a, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	/* banned now */
	ru_send_join(&b, "#dev");
	want_error(&b, TCPCHAT_WIRE_REFUSED, "banned from #dev");
	/* deferred and refused: an unban */
	send_kick(&a, "#dev", "bob", NULL, TCPCHAT_MSGF_UNBAN);
	ck_assert(tu_wait_until(deferred_set, o, TU_TIMEOUT));
	pthread_mutex_lock(&o->mu);
	id = o->deferred;
	pthread_mutex_unlock(&o->mu);
	answer_from_thread(srv, id, 0);
	want_error(&a, TCPCHAT_WIRE_REFUSED, "later");
	ru_send_join(&b, "#dev");
	want_error(&b, TCPCHAT_WIRE_REFUSED, "banned from #dev");
	RU_FINISH(srv, &a, &b);
	ops_free(o);
}
END_TEST

/* ---- bans ---------------------------------------------------------------- */

START_TEST(a_ban_keeps_the_name_out_until_unbanned)
{
	struct ops *o = ops_new(MODE_OPS);
	struct tu_ports ports;
	tcpchat_server *srv = tu_server_new_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	tcpchat_server_set_handler(srv, on_event, o);
	ru_server_go(srv);
	struct tu_peer op, bob, opl;
	struct tu_msg m;
	ru_login_bin(&op, ports.bin, "opal");
	ru_login_bin(&bob, ports.bin, "bob");
	ru_login_line(&opl, ports.line, "oplin");
	ru_join(&op, "opal", "#dev");
	ru_join(&bob, "bob", "#dev");
	send_kick(&op, "#dev", "bob", "spam", TCPCHAT_MSGF_BAN);
	ru_want(&bob, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ck_assert_str_eq(m.body, "spam");
	ru_want(&op, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	/* refused before the handler is asked */
	int joins = ops_get(o, &o->room_joins);
	ru_send_join(&bob, "#dev");
	want_error(&bob, TCPCHAT_WIRE_REFUSED, "banned from #dev");
	ck_assert_int_eq(ops_get(o, &o->room_joins), joins);
	/* a ban of a name not in the room: acknowledged with a KICK */
	send_kick(&op, "#dev", "carol", NULL, TCPCHAT_MSGF_BAN);
	ru_want(&op, TCPCHAT_MSG_KICK, "opal", "#dev", &m);
	ck_assert_str_eq(m.target, "carol");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_BAN, TCPCHAT_MSGF_BAN);
	/* the list, from the loop */
	ru_send_room(&op, "#dev", "bans");
	ck_assert(tu_wait_until(bans_queried, o, TU_TIMEOUT));
	pthread_mutex_lock(&o->mu);
	ck_assert_int_eq(o->nbans, 2);
	ck_assert_str_eq(o->bans[0], "bob");
	ck_assert_str_eq(o->bans[1], "carol");
	ck_assert_int_eq(o->nbans_nope, TCPCHAT_ENOTFOUND);
	pthread_mutex_unlock(&o->mu);
	/* unban on the line: acknowledged, and bob may come back */
	ck_assert_int_eq(tu_peer_send_line(&opl, "/join #dev"), 0);
	ru_next_line(&opl, "--> oplin joined #dev");
	ck_assert_int_eq(tu_peer_send_line(&opl, "/unban #dev bob"), 0);
	ru_next_line(&opl, "=== unbanned bob from #dev");
	ru_join(&bob, "bob", "#dev");
	ck_assert_int_eq(tu_peer_send_line(&opl, "/ban #dev dave flood"), 0);
	ru_next_line_prefix(&opl, "--> bob joined #dev");
	ru_next_line(&opl, "=== banned dave from #dev: flood");
	/* a room with bans stays when its members go */
	ru_part(&op, "opal", "#dev", NULL);
	ru_part(&bob, "bob", "#dev", NULL);
	ck_assert_int_eq(tu_peer_send_line(&opl, "/part #dev"), 0);
	ru_next_line(&opl, "<-- opal left #dev (part)");
	ru_next_line(&opl, "<-- bob left #dev (part)");
	ru_next_line(&opl, "<-- oplin left #dev (part)");
	ck_assert(ru_wait_stats(srv, 3, 2));
	ru_send_join(&op, "#dev");
	ru_want(&op, TCPCHAT_MSG_JOIN, "opal", "#dev", &m);
	RU_FINISH(srv, &op, &bob, &opl);
	ops_free(o);
}
END_TEST

START_TEST(ban_and_unban_from_the_api)
{
	struct ops *o = ops_new(MODE_OPS);
	struct tu_peer a, b;
	struct tu_msg m;
	tcpchat_server *srv = two_in_dev(o, &a, "alice", &b);
	ck_assert_int_eq(tcpchat_server_room_ban(srv, "#dev", "b o b", NULL),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_room_ban(srv, "dev", "bob", NULL),
	                 TCPCHAT_EBADROOM);
	ck_assert_int_eq(tcpchat_server_room_ban(srv, "#dev", NULL, NULL),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_room_ban(srv, "#dev", "bob", "\x01"),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_room_unban(srv, "#dev", ""),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_room_bans(NULL, "#dev", on_ban, o),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_room_ban(srv, "#dev", "bob", "spam"),
	                 0);
	ru_want(&b, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_KICKED);
	ck_assert_str_eq(m.body, "spam");
	ru_want(&a, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ru_send_join(&b, "#dev");
	want_error(&b, TCPCHAT_WIRE_REFUSED, "banned from #dev");
	/* a ban of a room that does not exist makes it (a notice after
	 * the command tells it has run) */
	ck_assert_int_eq(tcpchat_server_room_ban(srv, "#new", "bob", NULL), 0);
	ru_mark(srv, "ban");
	ru_upto(&b, "ban");
	ru_send_join(&b, "#new");
	want_error(&b, TCPCHAT_WIRE_REFUSED, "banned from #new");
	ck_assert_int_eq(tcpchat_server_room_unban(srv, "#dev", "bob"), 0);
	ck_assert_int_eq(tcpchat_server_room_unban(srv, "#new", "bob"), 0);
	ru_mark(srv, "unban");
	ru_upto(&b, "unban");
	ru_join(&b, "bob", "#dev");
	ru_join(&b, "bob", "#new");
	/* a forced join ignores the ban */
	ck_assert_int_eq(tcpchat_server_room_ban(srv, "#dev", "bob", NULL), 0);
	ru_want(&b, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ck_assert_int_eq(tcpchat_server_room_join(srv, "bob", "#dev"), 0);
	ru_want(&b, TCPCHAT_MSG_JOIN, "bob", "#dev", &m);
	ru_send_room(&b, "#dev", "bans");
	ck_assert(tu_wait_until(bans_queried, o, TU_TIMEOUT));
	pthread_mutex_lock(&o->mu);
	ck_assert_int_eq(o->nbans, 1);
	ck_assert_str_eq(o->bans[0], "bob");
	pthread_mutex_unlock(&o->mu);
	RU_FINISH(srv, &a, &b);
	ops_free(o);
}
END_TEST

START_TEST(client_kick_checks_its_arguments)
{
	tcpchat_client *cli;
	ck_assert_int_eq(tcpchat_client_new(&cli), 0);
	ck_assert_int_eq(tcpchat_client_kick(NULL, "#dev", "bob", NULL, 0),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_kick(cli, "#dev", NULL, NULL, 0),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(
	        tcpchat_client_kick(cli, "#dev", "bob", NULL,
	                            TCPCHAT_MSGF_BAN | TCPCHAT_MSGF_UNBAN),
	        TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_kick(cli, "#dev", "bob", NULL,
	                                     TCPCHAT_MSGF_ECHO),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_kick(cli, "dev", "bob", NULL, 0),
	                 TCPCHAT_EBADROOM);
	ck_assert_int_eq(tcpchat_client_kick(cli, "#dev", "b b", NULL, 0),
	                 TCPCHAT_EBADNAME);
	ck_assert_int_eq(tcpchat_client_kick(cli, "#dev", "bob", "\x02", 0),
	                 TCPCHAT_EINVAL);
	tcpchat_client_destroy(cli);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("roomauth");
	TCase *t = tcase_create("kicks");
	tcase_set_timeout(t, 30 * tu_slow());
	tcase_add_test(t, kick_by_an_operator_on_every_codec);
	tcase_add_test(t, kicks_are_refused_without_a_handler_that_allows_them);
	tcase_add_test(t, bad_kicks_get_clear_errors);
	tcase_add_test(t, deferred_kick_answered_from_another_thread);
	suite_add_tcase(s, t);
	t = tcase_create("bans");
	tcase_set_timeout(t, 30 * tu_slow());
	tcase_add_test(t, a_ban_keeps_the_name_out_until_unbanned);
	tcase_add_test(t, ban_and_unban_from_the_api);
	tcase_add_test(t, client_kick_checks_its_arguments);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return tu_run_suite(suite());
}
