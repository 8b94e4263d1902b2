/* The durable store seen from the clients (tcpchat_server_open_store,
 * server.h): a text is fanned out and acknowledged only once committed; a
 * batch the disk refuses reaches nobody, its senders get an ERROR with
 * their ref and its numbers are given again; a restart on the same SQLite
 * file keeps the numbers, history, topics, epoch and the ACKs of the
 * window; retention bounds the file; opening errors are clear.
 *
 * The stores under test sit in a "gate": a wrapper that serializes every
 * call (so that the test thread may change a fault while the server's
 * writer runs) and can hold an append until the test lets it go, so that
 * what happens while a commit is on its way is seen without any race. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "roomutil.h"
#include "server/server_int.h"
#include "store.h"
#include "storeutil.h"

/* ---- the gate ------------------------------------------------------------ */

struct gate {
	struct store base;
	struct store *inner;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int closed;  /* appends wait while set */
	int waiting; /* appends held now */
};

static struct gate *gate_of(struct store *s)
{
	return (struct gate *)s;
}

static uint64_t gate_epoch(struct store *s)
{
	struct gate *g = gate_of(s);
	pthread_mutex_lock(&g->mu);
	uint64_t e = store__epoch(g->inner);
	pthread_mutex_unlock(&g->mu);
	return e;
}

static int gate_append(struct store *s, const struct store_msg *m, size_t n,
                       const struct store_room *rooms, size_t nrooms)
{
	struct gate *g = gate_of(s);
	pthread_mutex_lock(&g->mu);
	g->waiting++;
	pthread_cond_broadcast(&g->cv);
	while (g->closed)
		pthread_cond_wait(&g->cv, &g->mu);
	g->waiting--;
	int rc = store__append(g->inner, m, n, rooms, nrooms);
	pthread_mutex_unlock(&g->mu);
	return rc;
}

static long gate_read(struct store *s, tcpchat_str room, uint64_t after,
                      uint64_t before, size_t limit, int backward,
                      store_msg_fn fn, void *ud)
{
	struct gate *g = gate_of(s);
	pthread_mutex_lock(&g->mu);
	long rc = store__read(g->inner, room, after, before, limit, backward,
	                      fn, ud);
	pthread_mutex_unlock(&g->mu);
	return rc;
}

static int gate_oldest(struct store *s, tcpchat_str room, uint64_t *seq)
{
	struct gate *g = gate_of(s);
	pthread_mutex_lock(&g->mu);
	int rc = store__oldest(g->inner, room, seq);
	pthread_mutex_unlock(&g->mu);
	return rc;
}

static int gate_trim(struct store *s, tcpchat_str room, uint64_t keep,
                     int64_t older_than_ms)
{
	struct gate *g = gate_of(s);
	pthread_mutex_lock(&g->mu);
	int rc = store__trim(g->inner, room, keep, older_than_ms);
	pthread_mutex_unlock(&g->mu);
	return rc;
}

static int gate_rooms(struct store *s, store_room_fn fn, void *ud)
{
	struct gate *g = gate_of(s);
	pthread_mutex_lock(&g->mu);
	int rc = store__rooms(g->inner, fn, ud);
	pthread_mutex_unlock(&g->mu);
	return rc;
}

static const char *gate_errmsg(struct store *s)
{
	struct gate *g = gate_of(s);
	pthread_mutex_lock(&g->mu);
	const char *e = store__errmsg(g->inner);
	pthread_mutex_unlock(&g->mu);
	return e;
}

static void gate_close(struct store *s)
{
	struct gate *g = gate_of(s);
	store__close(g->inner);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

static const struct store_ops gate_ops = {
        .epoch = gate_epoch,
        .append = gate_append,
        .read = gate_read,
        .oldest = gate_oldest,
        .trim = gate_trim,
        .rooms = gate_rooms,
        .errmsg = gate_errmsg,
        .close = gate_close,
};

/* A gate, open, around a faulty store around an empty memory store. */
static struct gate *gate_new(void)
{
	struct store *mem, *faulty;
	ck_assert_int_eq(store__mem_open(&mem, 0), 0);
	ck_assert_int_eq(store__faulty(&faulty, mem), 0);
	struct gate *g = calloc(1, sizeof *g);
	ck_assert_ptr_nonnull(g);
	g->base.ops = &gate_ops;
	g->inner = faulty;
	ck_assert_int_eq(pthread_mutex_init(&g->mu, NULL), 0);
	ck_assert_int_eq(pthread_cond_init(&g->cv, NULL), 0);
	return g;
}

static void gate_set(struct gate *g, int closed)
{
	pthread_mutex_lock(&g->mu);
	g->closed = closed;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* Waits until the writer holds a batch at the closed gate. */
static void gate_wait_held(struct gate *g)
{
	struct timespec ts;
	int64_t deadline = tu_now_ms() + TU_TIMEOUT;
	pthread_mutex_lock(&g->mu);
	while (g->waiting == 0) {
		ck_assert_msg(tu_now_ms() < deadline, "no batch at the gate");
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&g->cv, &g->mu, &ts);
	}
	pthread_mutex_unlock(&g->mu);
}

static void gate_fault(struct gate *g, int after)
{
	pthread_mutex_lock(&g->mu);
	store__faulty_set(g->inner, STORE_FAULT_APPEND, after);
	pthread_mutex_unlock(&g->mu);
}

/* ---- servers and peers --------------------------------------------------- */

/* A binary server on store s (owned by it from then on), started. */
static tcpchat_server *server_on(struct store *s, int *port)
{
	char err[256];
	tcpchat_server *srv = ru_server_new(port);
	int rc = srv__durable_open(srv, s, err, sizeof err);
	ck_assert_msg(rc == 0, "durable open: %d %s", rc, err);
	ru_server_go(srv);
	return srv;
}

/* A binary server on the SQLite file at path, with retain_msgs, started. */
static tcpchat_server *server_file(const char *path, long long retain_msgs,
                                   int *port)
{
	char err[512];
	tcpchat_server *srv = ru_server_new(port);
	ru_server_option(srv, TCPCHAT_SOPT_RETAIN_MSGS, retain_msgs);
	int rc = tcpchat_server_open_store(srv, path, TCPCHAT_STORE_CREATE, err,
	                                   sizeof err);
	ck_assert_msg(rc == 0, "open store %s: %d %s", path, rc, err);
	ru_server_go(srv);
	return srv;
}

static long long epoch_of(tcpchat_server *srv)
{
	long long e = 0;
	ck_assert_int_eq(tcpchat_server_get_option(srv, TCPCHAT_SOPT_EPOCH, &e),
	                 0);
	return e;
}

/* Sends a room TEXT carrying ref. */
static void send_ref(struct tu_peer *p, const char *room, const char *body,
                     const char *ref)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_TEXT};
	m.room.ptr = room;
	m.room.len = strlen(room);
	m.body.ptr = body;
	m.body.len = strlen(body);
	m.ref.ptr = ref;
	m.ref.len = strlen(ref);
	ck_assert_int_eq(tu_peer_send_msg(p, &m), 0);
}

/* The next ACK or ERROR of p (other messages skipped): it must be of type
 * and carry ref. */
static void want_answer(struct tu_peer *p, uint32_t type, const char *ref,
                        struct tu_msg *m)
{
	for (;;) {
		int rc = tu_peer_recv(p, m, TU_TIMEOUT);
		ck_assert_msg(rc == 1, "no answer to %s (rc %d)", ref, rc);
		if (m->type == TCPCHAT_MSG_ACK || m->type == TCPCHAT_MSG_ERROR)
			break;
	}
	ck_assert_msg(m->type == type, "%s '%s' for %s, expected a %s",
	              tcpchat_msg_type_name(m->type), m->body, m->ref,
	              tcpchat_msg_type_name(type));
	ck_assert_str_eq(m->ref, ref);
}

/* The ACK of ref, for room with seq and epoch. */
static void want_ack(struct tu_peer *p, const char *ref, const char *room,
                     uint64_t seq, long long epoch, struct tu_msg *m)
{
	want_answer(p, TCPCHAT_MSG_ACK, ref, m);
	ck_assert_str_eq(m->room, room);
	ck_assert_uint_eq(m->seq, seq);
	ck_assert_uint_eq(m->epoch, (uint64_t)epoch);
	ck_assert_uint_ne(m->id, 0);
}

/* The next TEXT of p in room (others skipped): body with seq. */
static void want_text(struct tu_peer *p, const char *room, const char *body,
                      uint64_t seq)
{
	struct tu_msg m;
	ru_want(p, TCPCHAT_MSG_TEXT, NULL, room, &m);
	ck_assert_str_eq(m.body, body);
	ck_assert_uint_eq(m.seq, seq);
}

/* Joins room and returns the seq its JOIN carries (the room's last). */
static uint64_t join_seq(struct tu_peer *p, const char *name, const char *room)
{
	struct tu_msg m;
	ru_send_join(p, room);
	ru_want(p, TCPCHAT_MSG_JOIN, name, room, &m);
	return m.seq;
}

struct stat_want {
	tcpchat_server *srv;
	uint64_t saved, unsaved;
};

static int stats_are(void *arg)
{
	struct stat_want *w = arg;
	tcpchat_server_stats s = tu_stats(w->srv);
	return s.saved == w->saved && s.unsaved == w->unsaved;
}

static void wait_saved(tcpchat_server *srv, uint64_t saved, uint64_t unsaved)
{
	struct stat_want w = {srv, saved, unsaved};
	int ok = tu_wait_until(stats_are, &w, TU_TIMEOUT);
	tcpchat_server_stats s = tu_stats(srv);
	ck_assert_msg(ok, "saved %llu unsaved %llu, expected %llu %llu",
	              (unsigned long long)s.saved,
	              (unsigned long long)s.unsaved, (unsigned long long)saved,
	              (unsigned long long)unsaved);
}

/* ---- commits ------------------------------------------------------------- */

START_TEST(ack_and_fanout_wait_for_the_commit)
{
	int port;
	struct gate *g = gate_new();
	tcpchat_server *srv = server_on(&g->base, &port);
	long long epoch = epoch_of(srv);
	struct tu_peer a, b, c;
	struct tu_msg m, k;
	ru_login_bin(&a, port, "ann");
	ru_login_bin(&b, port, "ben");
	ru_login_bin(&c, port, "cat");
	ru_join(&a, "ann", "#x");
	ru_join(&b, "ben", "#x");

	gate_set(g, 1);
	send_ref(&a, "#x", "one", "r1");
	gate_wait_held(g);
	/* on its way to the disk: nobody has it, no ACK, no number shown */
	ru_mark(srv, "held");
	int n = ru_upto(&a, "held");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_ACK, NULL, NULL), 0);
	n = ru_upto(&b, "held");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, "#x"), 0);
	wait_saved(srv, 0, 0);
	ck_assert_uint_eq(join_seq(&c, "cat", "#x"), 0);
	/* a resend meanwhile is not posted again */
	send_ref(&a, "#x", "one", "r1");
	ru_still_here(&a);

	gate_set(g, 0);
	want_ack(&a, "r1", "#x", 1, epoch, &k);
	want_text(&b, "#x", "one", 1);
	want_text(&c, "#x", "one", 1);
	wait_saved(srv, 1, 0);
	send_ref(&a, "#x", "two", "r2");
	want_ack(&a, "r2", "#x", 2, epoch, &m);
	ck_assert_uint_gt(m.id, k.id);
	/* each copy once: the next text ben gets is "two" */
	want_text(&b, "#x", "two", 2);
	want_text(&c, "#x", "two", 2);
	wait_saved(srv, 2, 0);
	/* a resend after the commit: the first ACK again, nothing posted */
	send_ref(&a, "#x", "one", "r1");
	want_ack(&a, "r1", "#x", 1, epoch, &m);
	ck_assert_uint_eq(m.id, k.id);
	ck_assert_int_eq(m.timestamp, k.timestamp);
	ru_mark(srv, "after resend");
	n = ru_upto(&b, "after resend");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, "#x"), 0);
	wait_saved(srv, 2, 0);
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

START_TEST(a_refused_batch_reaches_nobody)
{
	int port;
	struct gate *g = gate_new();
	tcpchat_server *srv = server_on(&g->base, &port);
	long long epoch = epoch_of(srv);
	uint32_t esys = tcpchat_error_to_wire(TCPCHAT_ESYS);
	struct tu_peer a, b, c;
	struct tu_msg m;
	ru_login_bin(&a, port, "ann");
	ru_login_bin(&b, port, "ben");
	ru_login_bin(&c, port, "cat");
	ru_join(&a, "ann", "#x");
	ru_join(&b, "ben", "#x");

	send_ref(&a, "#x", "one", "r1");
	want_ack(&a, "r1", "#x", 1, epoch, &m);
	want_text(&b, "#x", "one", 1);
	wait_saved(srv, 1, 0);

	/* the next append fails, and every one after it */
	gate_fault(g, 0);
	gate_set(g, 1);
	send_ref(&a, "#x", "two", "r2");
	gate_wait_held(g);
	/* these wait for the next batch */
	send_ref(&a, "#x", "three", "r3");
	send_ref(&b, "#x", "four", "r4");
	ru_still_here(&a);
	ru_still_here(&b);
	/* a member who joins now sees the last number on disk */
	ck_assert_uint_eq(join_seq(&c, "cat", "#x"), 1);
	gate_set(g, 0);

	want_answer(&a, TCPCHAT_MSG_ERROR, "r2", &m);
	ck_assert_uint_eq(m.code, esys);
	ck_assert_str_eq(m.room, "#x");
	want_answer(&a, TCPCHAT_MSG_ERROR, "r3", &m);
	ck_assert_uint_eq(m.code, esys);
	want_answer(&b, TCPCHAT_MSG_ERROR, "r4", &m);
	ck_assert_uint_eq(m.code, esys);
	ck_assert_str_eq(m.room, "#x");
	wait_saved(srv, 1, 3);

	/* the disk is back: the numbers of the refused texts are given again */
	gate_fault(g, -1);
	send_ref(&a, "#x", "five", "r5");
	want_ack(&a, "r5", "#x", 2, epoch, &m);
	/* the first text of #x ben and cat see after "one" */
	want_text(&b, "#x", "five", 2);
	want_text(&c, "#x", "five", 2);
	/* a refused ref may be sent again */
	send_ref(&b, "#x", "four", "r4");
	want_ack(&b, "r4", "#x", 3, epoch, &m);
	want_text(&a, "#x", "four", 3);
	want_text(&c, "#x", "four", 3);
	wait_saved(srv, 3, 3);
	/* the history holds no hole and nothing refused */
	ck_assert_int_eq(
	        tu_peer_send(&c, TCPCHAT_MSG_HISTORY, 0, "#x", NULL, NULL), 0);
	want_text(&c, "#x", "one", 1);
	want_text(&c, "#x", "five", 2);
	want_text(&c, "#x", "four", 3);
	ru_want(&c, TCPCHAT_MSG_HISTORY, NULL, "#x", &m);
	ck_assert_uint_eq(m.code, 3);
	ck_assert_uint_eq(m.first, 1);
	ck_assert_uint_eq(m.last, 3);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_GAP, 0);
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

START_TEST(a_refused_load_is_a_clear_error)
{
	char err[256] = "";
	int port;
	struct gate *g = gate_new();
	store__faulty_set(g->inner, STORE_FAULT_ROOMS, 0);
	tcpchat_server *srv = ru_server_new(&port);
	ck_assert_int_eq(srv__durable_open(srv, &g->base, err, sizeof err),
	                 TCPCHAT_ESYS);
	ck_assert_msg(strstr(err, "cannot load the store") != NULL, "%s", err);
	/* the store is closed; the server goes on without one */
	ru_server_go(srv);
	struct tu_peer a;
	ru_login_bin(&a, port, "ann");
	send_ref(&a, "#lobby", "hi", "r1");
	struct tu_msg m;
	want_answer(&a, TCPCHAT_MSG_ACK, "r1", &m);
	ck_assert_uint_eq(m.seq, 1);
	RU_FINISH(srv, &a);
}
END_TEST

#if TCPCHAT_HAVE_SQLITE

/* ---- restart ------------------------------------------------------------- */

START_TEST(a_restart_keeps_the_rooms)
{
	struct su_env e;
	int port;
	struct tu_peer a, b;
	struct tu_msg m, acks[3];
	char body[32], ref[32];
	su_env_make(&e);

	tcpchat_server *srv = server_file(e.path, 0, &port);
	long long epoch = epoch_of(srv);
	ru_login_bin(&a, port, "ann");
	ru_join(&a, "ann", "#dev");
	ru_send_topic(&a, "#dev", "plans");
	ru_want(&a, TCPCHAT_MSG_TOPIC, "ann", "#dev", &m);
	for (int i = 0; i < 3; i++) {
		snprintf(body, sizeof body, "text %d", i + 1);
		snprintf(ref, sizeof ref, "ref-%d", i + 1);
		send_ref(&a, "#dev", body, ref);
		want_ack(&a, ref, "#dev", (uint64_t)i + 1, epoch, &acks[i]);
	}
	RU_FINISH(srv, &a);

	srv = server_file(e.path, 0, &port);
	ck_assert_int_eq(epoch_of(srv), epoch);
	ck_assert_int_eq(tcpchat_server_set_option(srv, TCPCHAT_SOPT_EPOCH, 7),
	                 TCPCHAT_ESTATE);
	ru_login_bin(&a, port, "ann");
	ru_login_bin(&b, port, "ben");
	ru_send_join(&b, "#dev");
	ru_want(&b, TCPCHAT_MSG_JOIN, "ben", "#dev", &m);
	ck_assert_uint_eq(m.seq, 3);
	ck_assert_uint_eq(m.epoch, (uint64_t)epoch);
	ru_want(&b, TCPCHAT_MSG_TOPIC, NULL, "#dev", &m);
	ck_assert_str_eq(m.body, "plans");
	ck_assert_str_eq(m.sender, "ann");
	/* the latest history, from the file */
	ck_assert_int_eq(
	        tu_peer_send(&b, TCPCHAT_MSG_HISTORY, 0, "#dev", NULL, NULL),
	        0);
	for (int i = 0; i < 3; i++) {
		snprintf(body, sizeof body, "text %d", i + 1);
		ru_want(&b, TCPCHAT_MSG_TEXT, "ann", "#dev", &m);
		ck_assert_str_eq(m.body, body);
		ck_assert_uint_eq(m.seq, (uint64_t)i + 1);
		ck_assert_uint_eq(m.id, acks[i].id);
		ck_assert_uint_ne(m.flags & TCPCHAT_MSGF_HISTORY, 0);
	}
	ru_want(&b, TCPCHAT_MSG_HISTORY, NULL, "#dev", &m);
	ck_assert_uint_eq(m.code, 3);
	ck_assert_uint_eq(m.first, 1);
	ck_assert_uint_eq(m.last, 3);
	ck_assert_uint_eq(m.seq, 3);
	ck_assert_uint_eq(m.epoch, (uint64_t)epoch);
	/* a resend of an old ref gets its first ACK, and is not posted */
	ru_join(&a, "ann", "#dev");
	send_ref(&a, "#dev", "text 2", "ref-2");
	want_ack(&a, "ref-2", "#dev", 2, epoch, &m);
	ck_assert_uint_eq(m.id, acks[1].id);
	ck_assert_int_eq(m.timestamp, acks[1].timestamp);
	/* the numbers go on */
	send_ref(&a, "#dev", "text 4", "ref-4");
	want_ack(&a, "ref-4", "#dev", 4, epoch, &m);
	ck_assert_uint_gt(m.id, acks[2].id);
	want_text(&b, "#dev", "text 4", 4);
	RU_FINISH(srv, &a, &b);
	su_env_rm(&e);
}
END_TEST

/* ---- retention ----------------------------------------------------------- */

/* The seqs the file keeps for room, oldest first, into got. */
static long file_seqs(const char *path, const char *room, struct su_got *got)
{
	struct store *s = NULL;
	char err[512];
	int rc = store__sqlite_open(&s, path, 0, err, sizeof err);
	ck_assert_msg(rc == 0, "%d %s", rc, err);
	long n = su_read(s, room, 0, 0, 0, 0, got);
	ck_assert_uint_eq(su_last_seq(s, room), 10);
	store__close(s);
	return n;
}

START_TEST(retention_bounds_the_file)
{
	struct su_env e;
	int port;
	struct tu_peer a;
	struct tu_msg m;
	char ref[32];
	su_env_make(&e);
	tcpchat_server *srv = server_file(e.path, 3, &port);
	ru_login_bin(&a, port, "ann");
	ru_join(&a, "ann", "#a");
	ru_join(&a, "ann", "#b");
	for (int i = 1; i <= 10; i++) {
		snprintf(ref, sizeof ref, "a%d", i);
		send_ref(&a, "#a", ref, ref);
		want_answer(&a, TCPCHAT_MSG_ACK, ref, &m);
		snprintf(ref, sizeof ref, "b%d", i);
		send_ref(&a, "#b", ref, ref);
		want_answer(&a, TCPCHAT_MSG_ACK, ref, &m);
	}
	RU_FINISH(srv, &a);

	static struct su_got got;
	const char *rooms[] = {"#a", "#b"};
	for (int r = 0; r < 2; r++) {
		long n = file_seqs(e.path, rooms[r], &got);
		ck_assert_msg(n == 3, "%s keeps %ld texts", rooms[r], n);
		ck_assert_uint_eq(got.seq[0], 8);
		ck_assert_uint_eq(got.seq[2], 10);
	}
	su_env_rm(&e);
}
END_TEST

/* ---- opening ------------------------------------------------------------- */

START_TEST(open_errors_are_clear)
{
	struct su_env e;
	char err[512], path[600];
	int port;
	su_env_make(&e);
	tcpchat_server *srv = ru_server_new(&port);

	/* a directory that is not there */
	snprintf(path, sizeof path, "%s/missing/store.db", e.dir);
	int rc = tcpchat_server_open_store(srv, path, TCPCHAT_STORE_CREATE, err,
	                                   sizeof err);
	ck_assert_msg(rc == TCPCHAT_ESYS || rc == TCPCHAT_ENOTFOUND, "%d", rc);
	ck_assert_msg(strstr(err, path) != NULL, "%s", err);
	/* a file that is not there, without CREATE */
	rc = tcpchat_server_open_store(srv, e.path, 0, err, sizeof err);
	ck_assert_int_eq(rc, TCPCHAT_ENOTFOUND);
	ck_assert_msg(strstr(err, e.path) != NULL, "%s", err);
	/* not a database */
	snprintf(path, sizeof path, "%s/garbage.db", e.dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 512; i++)
		fputs("this is not a database ", f);
	ck_assert_int_eq(fclose(f), 0);
	rc = tcpchat_server_open_store(srv, path, TCPCHAT_STORE_CREATE, err,
	                               sizeof err);
	ck_assert_int_eq(rc, TCPCHAT_EPROTO);
	ck_assert_msg(strstr(err, path) != NULL, "%s", err);
	/* bad arguments */
	ck_assert_int_eq(tcpchat_server_open_store(srv, "", 0, err, sizeof err),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(
	        tcpchat_server_open_store(srv, e.path, 0x100, err, sizeof err),
	        TCPCHAT_EINVAL);
	/* after those failures the epoch may still be set */
	ck_assert_int_eq(tcpchat_server_set_option(srv, TCPCHAT_SOPT_EPOCH, 9),
	                 0);

	/* the good one, then a second one: refused */
	rc = tcpchat_server_open_store(srv, e.path, TCPCHAT_STORE_CREATE, err,
	                               sizeof err);
	ck_assert_msg(rc == 0, "%d %s", rc, err);
	ck_assert_int_ne(epoch_of(srv), 9);
	rc = tcpchat_server_open_store(srv, e.path, TCPCHAT_STORE_CREATE, err,
	                               sizeof err);
	ck_assert_int_eq(rc, TCPCHAT_ESTATE);
	ck_assert_str_ne(err, "");
	ck_assert_int_eq(tcpchat_server_set_option(srv, TCPCHAT_SOPT_EPOCH, 9),
	                 TCPCHAT_ESTATE);

	/* another server on the same file */
	int port2;
	tcpchat_server *srv2 = ru_server_new(&port2);
	rc = tcpchat_server_open_store(srv2, e.path, TCPCHAT_STORE_CREATE, err,
	                               sizeof err);
	ck_assert_int_eq(rc, TCPCHAT_ESTATE);
	ck_assert_msg(strstr(err, "locked") && strstr(err, e.path), "%s", err);
	tcpchat_server_destroy(srv2);

	/* once the first is gone the file is free */
	tcpchat_server_destroy(srv);
	srv = ru_server_new(&port);
	rc = tcpchat_server_open_store(srv, e.path, 0, err, sizeof err);
	ck_assert_msg(rc == 0, "%d %s", rc, err);
	tcpchat_server_destroy(srv);
	su_env_rm(&e);
}
END_TEST

START_TEST(open_after_start_is_refused)
{
	struct su_env e;
	char err[512];
	int port;
	su_env_make(&e);
	tcpchat_server *srv = ru_server_new(&port);
	/* host-driven: this thread is the loop thread */
	ck_assert_int_eq(tcpchat_server_step(srv), 0);
	ck_assert_int_eq(tcpchat_server_open_store(srv, e.path,
	                                           TCPCHAT_STORE_CREATE, err,
	                                           sizeof err),
	                 TCPCHAT_ESTATE);
	ck_assert_str_ne(err, "");
	ck_assert_int_ne(access(e.path, F_OK), 0);
	tcpchat_server_destroy(srv);
	su_env_rm(&e);
}
END_TEST

#else

START_TEST(open_without_sqlite)
{
	char err[256];
	int port;
	tcpchat_server *srv = ru_server_new(&port);
	ck_assert_int_eq(tcpchat_server_open_store(srv, "/tmp/x.db",
	                                           TCPCHAT_STORE_CREATE, err,
	                                           sizeof err),
	                 TCPCHAT_ENOTSUP);
	ck_assert_str_eq(err, "built without SQLite");
	tcpchat_server_destroy(srv);
}
END_TEST

#endif

int main(void)
{
	Suite *s = suite_create("durable");
	TCase *t = tcase_create("durable");
	tcase_add_test(t, ack_and_fanout_wait_for_the_commit);
	tcase_add_test(t, a_refused_batch_reaches_nobody);
	tcase_add_test(t, a_refused_load_is_a_clear_error);
#if TCPCHAT_HAVE_SQLITE
	tcase_add_test(t, a_restart_keeps_the_rooms);
	tcase_add_test(t, retention_bounds_the_file);
	tcase_add_test(t, open_errors_are_clear);
	tcase_add_test(t, open_after_start_is_refused);
#else
	tcase_add_test(t, open_without_sqlite);
#endif
	suite_add_tcase(s, t);
	return tu_run_suite(s);
}
