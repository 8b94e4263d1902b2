/* The client's reconnect against a real server, through a proxy the test
 * cuts: the events (RECONNECTING, RECONNECTED, RESUMED), the texts posted
 * meanwhile delivered exactly once, unacknowledged texts sent again and
 * acknowledged once, texts queued while disconnected, the rooms and the
 * current room restored; giving up after RECONNECT_TRIES with the backoff
 * within its bounds; no reconnect after a kick or a stop; the queue
 * bound while disconnected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clientutil.h"

#define EPOCH 777

static void reconnect_on(struct cu_rec *r, long min, long max, long tries)
{
	tcpchat_client *c = r->cli;
	ck_assert_int_eq(
	        tcpchat_client_set_option(c, TCPCHAT_COPT_RECONNECT, 1), 0);
	ck_assert_int_eq(
	        tcpchat_client_set_option(c, TCPCHAT_COPT_RECONNECT_MIN, min),
	        0);
	ck_assert_int_eq(
	        tcpchat_client_set_option(c, TCPCHAT_COPT_RECONNECT_MAX, max),
	        0);
	ck_assert_int_eq(tcpchat_client_set_option(
	                         c, TCPCHAT_COPT_RECONNECT_TRIES, tries),
	                 0);
}

/* Makes a a recording client with reconnect on, connected as alice to
 * port. */
static void start_alice(struct cu_rec *a, int port, long min, long max,
                        long tries)
{
	cu_init(a, NULL);
	reconnect_on(a, min, max, tries);
	cu_start(a, port, "alice");
}

static int count_text(struct cu_rec *r, const char *body)
{
	struct cu_want w = {.type = TCPCHAT_CEV_MESSAGE,
	                    .mtype = TCPCHAT_MSG_TEXT,
	                    .body = body};
	return cu_count(r, &w);
}

static int ev_count(struct cu_rec *r, int type)
{
	struct cu_want w = {.type = type};
	return cu_count(r, &w);
}

/* Waits until bob sees alice leave the server. */
static void wait_gone(struct cu_rec *b, int n)
{
	struct cu_want w = {.type = TCPCHAT_CEV_MESSAGE,
	                    .mtype = TCPCHAT_MSG_LEAVE,
	                    .sender = "alice",
	                    .room = ""};
	ck_assert(cu_wait(b, &w, n));
}

START_TEST(reconnect_resumes)
{
	int port;
	tcpchat_server *srv = cu_server(EPOCH, 0, &port);
	struct cu_proxy px;
	cu_proxy_start(&px, port);
	struct cu_rec a, b;
	cu_init(&a, "#dev");
	cu_init(&b, NULL);
	reconnect_on(&a, 5, 50, 0);
	cu_start(&a, px.port, "alice");
	cu_start(&b, port, "bob");
	tcpchat_server_info si;
	memset(&si, 0, sizeof si);
	si.size = sizeof si;
	ck_assert_int_eq(tcpchat_client_server_info(a.cli, &si), 0);
	const char *lobby = si.default_room;
	cu_join(&a, "alice", "#side");
	cu_join(&a, "alice", "#dev"); /* current */
	cu_join(&b, "bob", "#dev");
	cu_join(&b, "bob", "#side");

	ck_assert_int_eq(tcpchat_client_send_room(b.cli, lobby, "a1", 2), 0);
	ck_assert_int_eq(tcpchat_client_send_room(b.cli, "#dev", "d1", 2), 0);
	cu_wait_text(&a, "a1");
	cu_wait_text(&a, "d1");

	/* texts whose ACKs never arrive: the server has them */
	atomic_store(&px.deaf, 1);
	ck_assert_int_eq(tcpchat_client_send_ref(a.cli, "#dev", NULL, "x1", 2,
	                                         "x-1", NULL),
	                 0);
	ck_assert_int_eq(tcpchat_client_send(a.cli, "x2", 2), 0); /* #dev */
	cu_wait_text(&b, "x1");
	struct cu_ev bx2 = cu_wait_text(&b, "x2");
	ck_assert_str_eq(bx2.room, "#dev");
	atomic_store(&px.refuse, 1);
	cu_proxy_cut(&px);
	struct cu_want rec = {.type = TCPCHAT_CEV_RECONNECTING};
	ck_assert(cu_wait(&a, &rec, 1));
	struct cu_ev r1 = cu_get(&a, &rec, 0);
	ck_assert_uint_eq(r1.attempt, 1);
	ck_assert_uint_le(r1.delay_ms, 5);
	ck_assert_int_eq(ev_count(&a, TCPCHAT_CEV_DISCONNECTED), 0);
	ck_assert_int_eq(tcpchat_client_is_connected(a.cli), 0);
	wait_gone(&b, 1);

	/* meanwhile: bob posts, alice queues */
	ck_assert_int_eq(tcpchat_client_send_room(b.cli, lobby, "a2", 2), 0);
	ck_assert_int_eq(tcpchat_client_send_room(b.cli, "#dev", "d2", 2), 0);
	ck_assert_int_eq(tcpchat_client_send_room(b.cli, "#side", "s2", 2), 0);
	ck_assert_int_eq(tcpchat_client_send_ref(b.cli, "#dev", NULL, "d3", 2,
	                                         "b-d3", NULL),
	                 0);
	cu_wait_ack(&b, "b-d3");
	ck_assert_int_eq(tcpchat_client_send(a.cli, "y1", 2), 0);
	ck_assert_int_eq(tcpchat_client_send_ref(a.cli, "#side", NULL, "y2", 2,
	                                         "y-2", NULL),
	                 0);
	/* a few failed attempts, then the way is open again */
	ck_assert(cu_wait(&a, &rec, 3));
	atomic_store(&px.deaf, 0);
	atomic_store(&px.refuse, 0);

	struct cu_want ok = {.type = TCPCHAT_CEV_RECONNECTED};
	ck_assert(cu_wait(&a, &ok, 1));
	ck_assert_uint_ge(cu_get(&a, &ok, 0).attempt, 3);
	struct cu_want res = {.type = TCPCHAT_CEV_RESUMED};
	ck_assert(cu_wait(&a, &res, 3));
	cu_wait_text(&a, "d3");
	cu_wait_text(&a, "s2");
	cu_wait_text(&a, "a2");
	struct cu_ev k1 = cu_wait_ack(&a, "x-1");
	cu_wait_text(&b, "y1");
	cu_wait_text(&b, "y2");
	struct cu_ev ky2 = cu_wait_ack(&a, "y-2");
	ck_assert_int_eq(ky2.error, 0);
	ck_assert_str_eq(ky2.room, "#side");
	/* another text after all that, to know nothing else is on its way */
	ck_assert_int_eq(tcpchat_client_send_ref(a.cli, "#dev", NULL, "last", 4,
	                                         "z", NULL),
	                 0);
	cu_wait_text(&b, "last");
	cu_wait_ack(&a, "z");

	/* exactly once, each */
	ck_assert_int_eq(count_text(&a, "a1"), 1);
	ck_assert_int_eq(count_text(&a, "d1"), 1);
	ck_assert_int_eq(count_text(&a, "a2"), 1);
	ck_assert_int_eq(count_text(&a, "d2"), 1);
	ck_assert_int_eq(count_text(&a, "s2"), 1);
	ck_assert_int_eq(count_text(&a, "d3"), 1);
	ck_assert_int_eq(count_text(&b, "x1"), 1);
	ck_assert_int_eq(count_text(&b, "x2"), 1);
	ck_assert_int_eq(count_text(&b, "y1"), 1);
	ck_assert_int_eq(count_text(&b, "y2"), 1);
	struct cu_want ack = {.type = TCPCHAT_CEV_ACK};
	ck_assert_int_eq(cu_count(&a, &ack), 5); /* x-1, x2, y1, y-2, z */
	struct cu_ev bx1 = cu_get(&b, &(struct cu_want){.body = "x1"}, 0);
	ck_assert_int_eq(k1.error, 0);
	ck_assert_uint_eq(k1.id, bx1.id);
	ck_assert_uint_eq(k1.seq, bx1.seq);
	/* the resumed texts came as history, each room's before its end */
	struct cu_ev d2 = cu_get(&a, &(struct cu_want){.body = "d2"}, 0);
	ck_assert_uint_ne(d2.flags & TCPCHAT_MSGF_HISTORY, 0);
	int rooms_resumed = 0;
	for (int i = 0; i < 3; i++) {
		struct cu_ev e = cu_get(&a, &res, i);
		ck_assert_uint_eq(e.mtype, TCPCHAT_MSG_HISTORY);
		ck_assert_uint_eq(e.flags & TCPCHAT_MSGF_GAP, 0);
		ck_assert_uint_eq(e.epoch, EPOCH);
		rooms_resumed += !strcmp(e.evroom, lobby) +
		                 !strcmp(e.evroom, "#dev") +
		                 !strcmp(e.evroom, "#side");
	}
	ck_assert_int_eq(rooms_resumed, 3);
	/* the rooms and the current room are back; the position is the
	 * last text */
	struct cu_pos pos = cu_watch(&a);
	ck_assert_str_eq(pos.current, "#dev");
	ck_assert_int_eq(pos.rc, 0);
	ck_assert_uint_eq(pos.epoch, EPOCH);
	ck_assert_uint_eq(pos.seq, cu_wait_ack(&a, "z").seq);
	ck_assert_int_eq(ev_count(&a, TCPCHAT_CEV_CONNECTED), 1);
	ck_assert_int_eq(ev_count(&a, TCPCHAT_CEV_GAVE_UP), 0);

	cu_stop(&a);
	cu_stop(&b);
	cu_fini(&a);
	cu_fini(&b);
	cu_proxy_stop(&px);
	tu_server_stop(srv);
}
END_TEST

/* A server on 127.0.0.1:port (0: any) keeping its rooms in the SQLite
 * file at path; its port in *port. */
static tcpchat_server *store_server(const char *path, int *port)
{
	tcpchat_server *srv;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	ck_assert_int_eq(tu_server_timers(srv), 0);
	char addr[32], err[256];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", *port);
	ck_assert_int_eq(tcpchat_server_listen(srv, addr, NULL), 0);
	*port = tcpchat_server_port(srv, 0);
	ck_assert_int_eq(tcpchat_server_open_store(srv, path,
	                                           TCPCHAT_STORE_CREATE, err,
	                                           sizeof err),
	                 0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	return srv;
}

/* The server restarts on the same port and the same store: the client
 * reconnects, gets what was posted before the restart and after its
 * loss exactly once, and its unacknowledged text is not posted twice. */
START_TEST(server_restart_with_store)
{
#if TEST_EXPECT_SQLITE
	char path[] = "/tmp/tcpchat-reconnect-XXXXXX";
	int tmp = mkstemp(path);
	ck_assert_int_ge(tmp, 0);
	close(tmp);
	unlink(path);
	int port = 0;
	tcpchat_server *srv = store_server(path, &port);
	struct cu_rec a, b;
	start_alice(&a, port, 5, 50, 0);
	cu_init(&b, NULL);
	cu_start(&b, port, "bob");
	ck_assert_int_eq(tcpchat_client_send(b.cli, "before", 6), 0);
	cu_wait_text(&a, "before");
	ck_assert_int_eq(tcpchat_client_send(a.cli, "mine", 4), 0);
	cu_wait_text(&b, "mine");
	ck_assert_int_eq(tcpchat_client_send(b.cli, "lost?", 5), 0);
	cu_stop(&b);
	tu_server_stop(srv);
	srv = store_server(path, &port);
	cu_start(&b, port, "bob");
	ck_assert_int_eq(tcpchat_client_send(b.cli, "after", 5), 0);
	struct cu_want res = {.type = TCPCHAT_CEV_RESUMED};
	ck_assert(cu_wait(&a, &res, 1));
	cu_wait_text(&a, "after");
	ck_assert_uint_eq(cu_get(&a, &res, 0).flags & TCPCHAT_MSGF_GAP, 0);
	ck_assert_int_eq(count_text(&a, "before"), 1);
	ck_assert_int_eq(count_text(&a, "lost?"), 1);
	ck_assert_int_eq(count_text(&a, "after"), 1);
	struct cu_want ack = {.type = TCPCHAT_CEV_ACK};
	ck_assert(cu_wait(&a, &ack, 1));
	ck_assert_int_eq(cu_get(&a, &ack, 0).error, 0);
	cu_stop(&a);
	cu_stop(&b);
	cu_fini(&a);
	cu_fini(&b);
	tu_server_stop(srv);
	unlink(path);
#endif
}
END_TEST

START_TEST(gives_up)
{
	int port;
	tcpchat_server *srv = cu_server(EPOCH, 0, &port);
	struct cu_rec a;
	start_alice(&a, port, 4, 10, 5);
	tu_server_stop(srv); /* nothing listens on the port any more */
	struct cu_want rec = {.type = TCPCHAT_CEV_RECONNECTING};
	ck_assert(cu_wait(&a, &rec, 1));
	ck_assert_int_eq(cu_get(&a, &rec, 0).error, TCPCHAT_ESHUTDOWN);
	ck_assert_int_eq(tcpchat_client_send(a.cli, "waiting", 7), 0);
	ck_assert_int_eq(tcpchat_client_join(a.cli), TCPCHAT_ESYS);
	ck_assert_int_eq(cu_count(&a, &rec), 5);
	for (int i = 0; i < 5; i++) {
		struct cu_ev e = cu_get(&a, &rec, i);
		uint32_t cap = 4u << i;
		ck_assert_uint_eq(e.attempt, (uint32_t)i + 1);
		ck_assert_uint_le(e.delay_ms, cap < 10 ? cap : 10);
		if (i)
			ck_assert_int_eq(e.error, TCPCHAT_ESYS);
	}
	long gave =
	        cu_index(&a, &(struct cu_want){.type = TCPCHAT_CEV_GAVE_UP}, 0);
	long ack = cu_index(&a, &(struct cu_want){.type = TCPCHAT_CEV_ACK}, 0);
	long disc = cu_index(
	        &a, &(struct cu_want){.type = TCPCHAT_CEV_DISCONNECTED}, 0);
	ck_assert_int_ge(gave, 0);
	ck_assert_int_gt(ack, gave);
	ck_assert_int_gt(disc, ack);
	struct cu_ev k =
	        cu_get(&a, &(struct cu_want){.type = TCPCHAT_CEV_ACK}, 0);
	ck_assert_int_eq(k.error, TCPCHAT_ECLOSED);
	ck_assert_int_eq(
	        cu_get(&a, &(struct cu_want){.type = TCPCHAT_CEV_GAVE_UP}, 0)
	                .attempt,
	        5);
	ck_assert_int_eq(ev_count(&a, TCPCHAT_CEV_DISCONNECTED), 1);
	ck_assert_int_eq(tcpchat_client_send(a.cli, "after", 5),
	                 TCPCHAT_ECLOSED);
	cu_fini(&a);
}
END_TEST

START_TEST(not_after_kick)
{
	int port;
	tcpchat_server *srv = cu_server(EPOCH, 0, &port);
	struct cu_rec a;
	start_alice(&a, port, 1, 5, 0);
	ck_assert_int_eq(tcpchat_server_kick(srv, "alice", "out"), 0);
	ck_assert_int_eq(tcpchat_client_join(a.cli), TCPCHAT_EKICKED);
	ck_assert_int_eq(ev_count(&a, TCPCHAT_CEV_RECONNECTING), 0);
	ck_assert_int_eq(ev_count(&a, TCPCHAT_CEV_GAVE_UP), 0);
	cu_fini(&a);
	tu_server_stop(srv);
}
END_TEST

START_TEST(stop_while_waiting)
{
	int port;
	tcpchat_server *srv = cu_server(EPOCH, 0, &port);
	struct cu_proxy px;
	cu_proxy_start(&px, port);
	struct cu_rec a;
	cu_init(&a, NULL);
	reconnect_on(&a, 60000, 60000, 0);
	ck_assert_int_eq(
	        tcpchat_client_set_option(a.cli, TCPCHAT_COPT_QUEUE_FRAMES, 4),
	        0);
	cu_start(&a, px.port, "alice");
	atomic_store(&px.refuse, 1);
	cu_proxy_cut(&px);
	struct cu_want rec = {.type = TCPCHAT_CEV_RECONNECTING};
	ck_assert(cu_wait(&a, &rec, 1));
	/* the queue is bounded while disconnected */
	int queued = 0, rc;
	while ((rc = tcpchat_client_send(a.cli, "q", 1)) == 0)
		queued++;
	ck_assert_int_eq(rc, TCPCHAT_EQUEUEFULL);
	ck_assert_int_eq(queued, 4);
	tcpchat_client_stop(a.cli);
	ck_assert_int_eq(tcpchat_client_join(a.cli), 0);
	struct cu_want ack = {.type = TCPCHAT_CEV_ACK};
	ck_assert_int_eq(cu_count(&a, &ack), 4);
	ck_assert_int_eq(cu_get(&a, &ack, 3).error, TCPCHAT_ECLOSED);
	ck_assert_int_eq(ev_count(&a, TCPCHAT_CEV_GAVE_UP), 0);
	ck_assert_int_eq(ev_count(&a, TCPCHAT_CEV_DISCONNECTED), 1);
	cu_fini(&a);
	cu_proxy_stop(&px);
	tu_server_stop(srv);
}
END_TEST

START_TEST(options)
{
	tcpchat_client *c;
	ck_assert_int_eq(tcpchat_client_new(&c), 0);
	long long v;
	ck_assert_int_eq(
	        tcpchat_client_get_option(c, TCPCHAT_COPT_RECONNECT, &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(
	        tcpchat_client_get_option(c, TCPCHAT_COPT_RECONNECT_MIN, &v),
	        0);
	ck_assert_int_eq(v, 250);
	ck_assert_int_eq(
	        tcpchat_client_get_option(c, TCPCHAT_COPT_RECONNECT_MAX, &v),
	        0);
	ck_assert_int_eq(v, 30000);
	ck_assert_int_eq(
	        tcpchat_client_get_option(c, TCPCHAT_COPT_RECONNECT_TRIES, &v),
	        0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(
	        tcpchat_client_set_option(c, TCPCHAT_COPT_RECONNECT, 2),
	        TCPCHAT_EINVAL);
	ck_assert_int_eq(
	        tcpchat_client_set_option(c, TCPCHAT_COPT_RECONNECT_MIN, 0),
	        TCPCHAT_EINVAL);
	ck_assert_int_eq(
	        tcpchat_client_set_option(c, TCPCHAT_COPT_RECONNECT_TRIES, -1),
	        TCPCHAT_EINVAL);
	tcpchat_client_destroy(c);
}
END_TEST

START_TEST(first_connect_not_retried)
{
	int port;
	tcpchat_server *srv = cu_server(EPOCH, 0, &port);
	tu_server_stop(srv);
	struct cu_rec a;
	cu_init(&a, NULL);
	reconnect_on(&a, 1, 5, 0);
	char addr[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	int rc = tcpchat_client_connect(a.cli, addr, "alice");
	if (rc == 0)
		ck_assert_int_eq(tcpchat_client_run(a.cli), TCPCHAT_ESYS);
	else
		ck_assert_int_eq(rc, TCPCHAT_ESYS);
	ck_assert_int_eq(ev_count(&a, TCPCHAT_CEV_RECONNECTING), 0);
	cu_fini(&a);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("client_reconnect");
	TCase *tc = tcase_create("reconnect");
	tcase_add_test(tc, reconnect_resumes);
	tcase_add_test(tc, server_restart_with_store);
	tcase_add_test(tc, gives_up);
	tcase_add_test(tc, not_after_kick);
	tcase_add_test(tc, stop_while_waiting);
	tcase_add_test(tc, options);
	tcase_add_test(tc, first_connect_not_retried);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run_suite(suite());
}
