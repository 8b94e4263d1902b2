/* The Redis bus (bus_redis.c) against a real redis-server: two buses on
 * one loop driven by the test's thread; the epoch both agree on; posts
 * numbered once and seen by both followers in order; fetch; a fetch
 * right after a follow missing nothing; broadcasts and direct records;
 * names; the server killed and restarted; garbage published on the
 * channels; bad URLs and nobody listening. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "bus.h"
#include "engineutil.h"
#include "internal.h"
#include "loop.h"
#include "testutil.h"

#define NODE_A "a:0000000000000001"
#define NODE_B "b:0000000000000002"
#define MAXSEQ 2000
#define NPOST 500

static char err[4096];

/* What one bus told. */
struct ctx {
	struct bus *bus;
	int ups, downs;
	/* room events of every room, by seq (copies of the records) */
	char room[64];
	int room_events, room_dups, room_disorder;
	uint64_t room_last;
	char *rec[MAXSEQ + 1];
	size_t rec_len[MAXSEQ + 1];
	int other_room_events;
	/* notes */
	int notes;
	char note[64][64];
	/* answers */
	int posted, posted_err;
	uint64_t posted_seq[MAXSEQ + 1]; /* by token */
	int fetched, fetched_err;
	uint64_t fetched_last;
	size_t fetched_n;
	uint64_t fetched_seq[MAXSEQ + 1];
	char *fetched_rec[MAXSEQ + 1];
	int claimed, claimed_err;
	char holder[64];
	int warns;
};

static struct eu_engine eng;
static struct loop loop;
static struct ctx ca, cb;

static void on_wake(struct loop *l, void *data)
{
	TC_UNUSED(l);
	TC_UNUSED(data);
}

static void ev_up(void *data)
{
	((struct ctx *)data)->ups++;
}

static void ev_down(void *data, const char *why)
{
	struct ctx *c = data;
	ck_assert_ptr_nonnull(why);
	ck_assert(why[0] != '\0');
	c->downs++;
}

static void ev_room(void *data, const char *room, size_t rlen, uint64_t seq,
                    const uint8_t *rec, size_t len)
{
	struct ctx *c = data;
	if (rlen != strlen(c->room) || memcmp(room, c->room, rlen)) {
		c->other_room_events++;
		return;
	}
	if (seq <= c->room_last)
		c->room_disorder++;
	c->room_last = seq;
	if (seq > MAXSEQ)
		return;
	if (c->rec[seq]) {
		c->room_dups++;
		return;
	}
	c->rec[seq] = malloc(len + 1);
	memcpy(c->rec[seq], rec, len);
	c->rec[seq][len] = '\0';
	c->rec_len[seq] = len;
	c->room_events++;
}

static void ev_note(void *data, const uint8_t *rec, size_t len)
{
	struct ctx *c = data;
	if (c->notes < 64) {
		size_t n = TC_MIN(len, 63);
		memcpy(c->note[c->notes], rec, n);
		c->note[c->notes][n] = '\0';
	}
	c->notes++;
}

static void ev_posted(void *data, void *token, int e, uint64_t seq)
{
	struct ctx *c = data;
	uintptr_t i = (uintptr_t)token;
	c->posted++;
	if (e)
		c->posted_err++;
	else if (i <= MAXSEQ)
		c->posted_seq[i] = seq;
}

static void ev_fetched(void *data, void *token, int e,
                       const struct bus_rec *recs, size_t n, uint64_t last)
{
	struct ctx *c = data;
	TC_UNUSED(token);
	for (size_t i = 0; i < c->fetched_n && i <= MAXSEQ; i++) {
		free(c->fetched_rec[i]);
		c->fetched_rec[i] = NULL;
	}
	c->fetched++;
	c->fetched_n = 0;
	if (e) {
		c->fetched_err++;
		return;
	}
	c->fetched_last = last;
	c->fetched_n = TC_MIN(n, MAXSEQ);
	for (size_t i = 0; i < c->fetched_n; i++) {
		c->fetched_seq[i] = recs[i].seq;
		c->fetched_rec[i] = malloc(recs[i].len + 1);
		memcpy(c->fetched_rec[i], recs[i].data, recs[i].len);
		c->fetched_rec[i][recs[i].len] = '\0';
	}
}

static void ev_claimed(void *data, void *token, int e, const char *holder,
                       size_t hlen)
{
	struct ctx *c = data;
	TC_UNUSED(token);
	c->claimed++;
	c->claimed_err = e;
	c->holder[0] = '\0';
	if (holder) {
		size_t n = TC_MIN(hlen, 63);
		memcpy(c->holder, holder, n);
		c->holder[n] = '\0';
	}
}

static void ev_log(void *data, int level, const char *text)
{
	struct ctx *c = data;
	ck_assert_ptr_nonnull(text);
	if (level == TCPCHAT_LOG_WARN)
		c->warns++;
}

static struct bus *bus_open(struct ctx *c, const char *node, uint64_t epoch)
{
	struct bus_events ev = {
	        .data = c,
	        .up = ev_up,
	        .down = ev_down,
	        .room = ev_room,
	        .note = ev_note,
	        .posted = ev_posted,
	        .fetched = ev_fetched,
	        .claimed = ev_claimed,
	        .log = ev_log,
	};
	struct bus *b = NULL;
	int rc = bus_redis__new(&b, &loop, eng.url, node, epoch, 2000, &ev, err,
	                        sizeof err);
	ck_assert_msg(rc == 0, "bus_redis__new: %d %s", rc, err);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(b->ops->name, "redis");
	ck_assert_int_eq(b->up, 1);
	c->bus = b;
	return b;
}

/* One turn of the loop: what the server's runner does. */
static void step(void)
{
	loop__poll(&loop, 10);
	loop__run_timers(&loop);
	if (ca.bus)
		ca.bus->ops->reap(ca.bus);
	if (cb.bus)
		cb.bus->ops->reap(cb.bus);
}

/* Runs the loop until cond holds or the (generous) deadline passes. */
#define WAIT_FOR(cond)                                                         \
	do {                                                                   \
		int64_t end_ = tu_now_ms() + 4 * TU_TIMEOUT;                   \
		while (!(cond) && tu_now_ms() < end_)                          \
			step();                                                \
	} while (0)

/* Runs the loop for about ms. */
static void run_for(int ms)
{
	int64_t end = tu_now_ms() + ms;
	while (tu_now_ms() < end)
		step();
}

static void ctx_clear(struct ctx *c)
{
	for (int i = 0; i <= MAXSEQ; i++) {
		free(c->rec[i]);
		free(c->fetched_rec[i]);
	}
	memset(c, 0, sizeof *c);
}

static void setup(void)
{
	ck_assert_msg(eu_redis_start(&eng, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(loop__init(&loop, on_wake, NULL), 0);
	ctx_clear(&ca);
	ctx_clear(&cb);
	strcpy(ca.room, "#r");
	strcpy(cb.room, "#r");
	bus_open(&ca, NODE_A, 111);
	bus_open(&cb, NODE_B, 222);
}

static void teardown(void)
{
	ca.bus->ops->destroy(ca.bus);
	cb.bus->ops->destroy(cb.bus);
	ca.bus = cb.bus = NULL;
	ctx_clear(&ca);
	ctx_clear(&cb);
	loop__fini(&loop);
	eu_engine_stop(&eng);
}

/* A record with a NUL inside: the bus is binary-safe. */
static size_t make_rec(char *buf, char who, unsigned i)
{
	int n = snprintf(buf, 64, "%c%c%u", who, 0, i);
	return (size_t)n;
}

/* Follows room on both and waits until the follows are confirmed (a
 * fetch after a follow waits for that). */
static void follow_both(const char *room)
{
	ck_assert_int_eq(ca.bus->ops->follow(ca.bus, room, strlen(room)), 0);
	ck_assert_int_eq(cb.bus->ops->follow(cb.bus, room, strlen(room)), 0);
	int fa = ca.fetched, fb = cb.fetched;
	ck_assert_int_eq(
	        ca.bus->ops->fetch(ca.bus, room, strlen(room), 0, 1, NULL), 0);
	ck_assert_int_eq(
	        cb.bus->ops->fetch(cb.bus, room, strlen(room), 0, 1, NULL), 0);
	WAIT_FOR(ca.fetched > fa && cb.fetched > fb);
	ck_assert_int_eq(ca.fetched_err + cb.fetched_err, 0);
}

static void check_room(struct ctx *c, struct ctx *pa, struct ctx *pb, int n)
{
	ck_assert_int_eq(c->room_events, 2 * n);
	ck_assert_int_eq(c->room_dups, 0);
	ck_assert_int_eq(c->room_disorder, 0);
	for (int s = 1; s <= 2 * n; s++)
		ck_assert_msg(c->rec[s], "seq %d missing", s);
	/* every record is the one its poster was told it got */
	char buf[64];
	for (int i = 0; i < n; i++) {
		size_t len = make_rec(buf, 'a', (unsigned)i);
		uint64_t s = pa->posted_seq[i];
		ck_assert(s >= 1 && s <= (uint64_t)(2 * n));
		ck_assert_uint_eq(c->rec_len[s], len);
		ck_assert(!memcmp(c->rec[s], buf, len));
		len = make_rec(buf, 'b', (unsigned)i);
		s = pb->posted_seq[i];
		ck_assert(s >= 1 && s <= (uint64_t)(2 * n));
		ck_assert_uint_eq(c->rec_len[s], len);
		ck_assert(!memcmp(c->rec[s], buf, len));
	}
}

START_TEST(test_post_follow_fetch)
{
	setup();
	/* the second bus takes the first's epoch */
	ck_assert_uint_eq(ca.bus->epoch, 111);
	ck_assert_uint_eq(cb.bus->epoch, 111);
	follow_both("#r");
	ck_assert_int_eq(ca.bus->ops->follow(ca.bus, "#r", 2), 0); /* twice */
	char buf[64];
	for (unsigned i = 0; i < NPOST; i++) {
		size_t n = make_rec(buf, 'a', i);
		ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 0, buf, n,
		                                   (void *)(uintptr_t)i),
		                 0);
		n = make_rec(buf, 'b', i);
		ck_assert_int_eq(cb.bus->ops->post(cb.bus, "#r", 2, 0, buf, n,
		                                   (void *)(uintptr_t)i),
		                 0);
	}
	WAIT_FOR(ca.posted == NPOST && cb.posted == NPOST &&
	         ca.room_events == 2 * NPOST && cb.room_events == 2 * NPOST);
	ck_assert_int_eq(ca.posted_err + cb.posted_err, 0);
	ck_assert_int_eq(ca.posted, NPOST);
	check_room(&ca, &ca, &cb, NPOST);
	check_room(&cb, &ca, &cb, NPOST);
	ck_assert_uint_ge(ca.bus->st.sent, NPOST);
	ck_assert_uint_ge(ca.bus->st.recv, 2 * NPOST);
	ck_assert_uint_eq(ca.bus->st.bad, 0);

	/* fetch: the newest 5 after 990 */
	int f = ca.fetched;
	ck_assert_int_eq(ca.bus->ops->fetch(ca.bus, "#r", 2, 990, 5, NULL), 0);
	WAIT_FOR(ca.fetched > f);
	ck_assert_int_eq(ca.fetched_err, 0);
	ck_assert_uint_eq(ca.fetched_last, 2 * NPOST);
	ck_assert_uint_eq(ca.fetched_n, 5);
	for (size_t i = 0; i < 5; i++) {
		uint64_t s = 996 + i;
		ck_assert_uint_eq(ca.fetched_seq[i], s);
		ck_assert(!memcmp(ca.fetched_rec[i], ca.rec[s], ca.rec_len[s]));
	}
	/* after the last: none */
	f = ca.fetched;
	ck_assert_int_eq(ca.bus->ops->fetch(ca.bus, "#r", 2, 1000, 50, NULL),
	                 0);
	WAIT_FOR(ca.fetched > f);
	ck_assert_uint_eq(ca.fetched_n, 0);
	ck_assert_uint_eq(ca.fetched_last, 1000);
	/* a room never posted to */
	f = ca.fetched;
	ck_assert_int_eq(ca.bus->ops->fetch(ca.bus, "#nobody", 7, 0, 50, NULL),
	                 0);
	WAIT_FOR(ca.fetched > f);
	ck_assert_int_eq(ca.fetched_err, 0);
	ck_assert_uint_eq(ca.fetched_n, 0);
	ck_assert_uint_eq(ca.fetched_last, 0);

	/* the floor: above what this server knows */
	ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 5000, "x", 1,
	                                   (void *)(uintptr_t)MAXSEQ),
	                 0);
	WAIT_FOR(ca.posted == NPOST + 1);
	ck_assert_uint_eq(ca.posted_seq[MAXSEQ], 5001);
	WAIT_FOR(cb.room_last == 5001);
	ck_assert_uint_eq(cb.room_last, 5001);
	/* refused at once: bad room, empty or too large record */
	ck_assert_int_eq(ca.bus->ops->post(ca.bus, "r", 1, 0, "x", 1, NULL),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 0, "", 0, NULL),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 0, buf,
	                                   BUS_REC_MAX + 1, NULL),
	                 TCPCHAT_EMSGSIZE);
	teardown();
}
END_TEST

/* A follow and a fetch at once while the other bus posts: whatever the
 * room events miss, the fetch has. */
/* Forgets the room events seen, and follows room's events from now. */
static void room_reset(struct ctx *c, const char *room)
{
	for (int i = 0; i <= MAXSEQ; i++) {
		free(c->rec[i]);
		c->rec[i] = NULL;
	}
	snprintf(c->room, sizeof c->room, "%s", room);
	c->room_events = c->room_dups = c->room_disorder = 0;
	c->room_last = 0;
}

static int fetched_has(const struct ctx *c, uint64_t seq)
{
	for (size_t i = 0; i < c->fetched_n; i++)
		if (c->fetched_seq[i] == seq)
			return 1;
	return 0;
}

START_TEST(test_follow_fetch_race)
{
	setup();
	char buf[64];
	for (int round = 0; round < 4; round++) {
		char room[16];
		snprintf(room, sizeof room, "#race%d", round);
		size_t rlen = strlen(room);
		room_reset(&ca, room);
		int base = cb.posted;
		for (unsigned i = 0; i < 100; i++) {
			size_t n = make_rec(buf, 'b', i);
			ck_assert_int_eq(cb.bus->ops->post(cb.bus, room, rlen,
			                                   0, buf, n, NULL),
			                 0);
		}
		/* the follow lands at another point of the stream each
		 * round */
		WAIT_FOR(cb.posted >= base + round * 12);
		/* many follows just before: the SUBSCRIBE of room waits
		 * behind theirs while the fetch could go at once */
		for (int k = 0; k < 5000; k++) {
			char pad[16];
			snprintf(pad, sizeof pad, "#pad%d.%d", round, k);
			ck_assert_int_eq(
			        ca.bus->ops->follow(ca.bus, pad, strlen(pad)),
			        0);
		}
		int f = ca.fetched;
		ck_assert_int_eq(ca.bus->ops->follow(ca.bus, room, rlen), 0);
		ck_assert_int_eq(
		        ca.bus->ops->fetch(ca.bus, room, rlen, 0, MAXSEQ, NULL),
		        0);
		for (unsigned i = 100; i < 200; i++) {
			size_t n = make_rec(buf, 'b', i);
			ck_assert_int_eq(cb.bus->ops->post(cb.bus, room, rlen,
			                                   0, buf, n, NULL),
			                 0);
		}
		WAIT_FOR(cb.posted == base + 200 && ca.fetched > f &&
		         (ca.room_last == 200 || fetched_has(&ca, 200)));
		ck_assert_int_eq(cb.posted_err, 0);
		ck_assert_int_eq(ca.fetched_err, 0);
		ck_assert_int_eq(ca.room_disorder, 0);
		ck_assert_int_eq(ca.room_dups, 0);
		for (uint64_t s = 1; s <= 200; s++)
			ck_assert_msg(ca.rec[s] || fetched_has(&ca, s),
			              "round %d: seq %llu missed by both",
			              round, (unsigned long long)s);
		ca.bus->ops->unfollow(ca.bus, room, rlen);
	}
	/* unfollowed: no more events */
	int before = ca.other_room_events + ca.room_events;
	ck_assert_int_eq(
	        cb.bus->ops->post(cb.bus, "#race3", 6, 0, "z", 1, NULL), 0);
	ck_assert_int_eq(cb.bus->ops->broadcast(cb.bus, "mark", 4), 0);
	WAIT_FOR(ca.notes == 1);
	ck_assert_int_eq(ca.other_room_events + ca.room_events, before);
	teardown();
}
END_TEST

START_TEST(test_broadcast_send)
{
	setup();
	/* the follows are confirmed after the channels of new() */
	follow_both("#r");
	ck_assert_int_eq(ca.bus->ops->broadcast(ca.bus, "hello", 5), 0);
	WAIT_FOR(ca.notes == 1 && cb.notes == 1);
	ck_assert_str_eq(ca.note[0], "hello");
	ck_assert_str_eq(cb.note[0], "hello");
	ck_assert_int_eq(
	        cb.bus->ops->send(cb.bus, NODE_A, strlen(NODE_A), "direct", 6),
	        0);
	WAIT_FOR(ca.notes == 2);
	ck_assert_str_eq(ca.note[1], "direct");
	/* after a later broadcast, b has still not seen the direct one */
	ck_assert_int_eq(cb.bus->ops->broadcast(cb.bus, "mark", 4), 0);
	WAIT_FOR(ca.notes == 3 && cb.notes == 2);
	ck_assert_int_eq(cb.notes, 2);
	ck_assert_str_eq(cb.note[1], "mark");
	ck_assert_str_eq(ca.note[2], "mark");
	ck_assert_int_eq(ca.bus->ops->broadcast(ca.bus, "", 0), TCPCHAT_EINVAL);
	teardown();
}
END_TEST

static void claim(struct ctx *c, const char *name, const char *stale)
{
	int n = c->claimed;
	ck_assert_int_eq(c->bus->ops->claim(c->bus, name, strlen(name), stale,
	                                    stale ? strlen(stale) : 0, NULL),
	                 0);
	WAIT_FOR(c->claimed > n);
	ck_assert_int_eq(c->claimed, n + 1);
}

START_TEST(test_claim_release)
{
	setup();
	claim(&ca, "alice", NULL);
	ck_assert_int_eq(ca.claimed_err, 0);
	claim(&ca, "alice", NULL); /* holding it already */
	ck_assert_int_eq(ca.claimed_err, 0);
	claim(&cb, "alice", NULL);
	ck_assert_int_eq(cb.claimed_err, TCPCHAT_ENAMEINUSE);
	ck_assert_str_eq(cb.holder, NODE_A);
	claim(&cb, "alice", "x:0000000000000009"); /* another stale one */
	ck_assert_int_eq(cb.claimed_err, TCPCHAT_ENAMEINUSE);
	claim(&cb, "alice", NODE_A);
	ck_assert_int_eq(cb.claimed_err, 0);
	/* a's release does not take b's name (a's claim after it on the
	 * same connection sees what it left) */
	ca.bus->ops->release(ca.bus, "alice", 5);
	claim(&ca, "alice", NULL);
	ck_assert_int_eq(ca.claimed_err, TCPCHAT_ENAMEINUSE);
	ck_assert_str_eq(ca.holder, NODE_B);
	/* b's does (a fetch after it on b's connection: done when answered) */
	cb.bus->ops->release(cb.bus, "alice", 5);
	int f = cb.fetched;
	ck_assert_int_eq(cb.bus->ops->fetch(cb.bus, "#r", 2, 0, 1, NULL), 0);
	WAIT_FOR(cb.fetched > f);
	claim(&ca, "alice", NULL);
	ck_assert_int_eq(ca.claimed_err, 0);
	teardown();
}
END_TEST

/* GET tcpchat:epoch over a connection of its own. */
static uint64_t epoch_there(void)
{
	redisContext *c = redisConnect(eng.host, eng.port);
	ck_assert(c && !c->err);
	redisReply *r = redisCommand(c, "GET tcpchat:epoch");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	uint64_t v = strtoull(r->str, NULL, 10);
	freeReplyObject(r);
	redisFree(c);
	return v;
}

START_TEST(test_loss)
{
	setup();
	follow_both("#r");
	/* posts pending when the server dies */
	for (unsigned i = 0; i < 20; i++)
		ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 0, "p", 1,
		                                   (void *)(uintptr_t)i),
		                 0);
	int f = ca.fetched;
	ck_assert_int_eq(ca.bus->ops->fetch(ca.bus, "#r", 2, 0, 10, NULL), 0);
	ck_assert_int_eq(eu_engine_kill(&eng), 0);
	WAIT_FOR(ca.downs == 1 && cb.downs == 1 && ca.posted == 20 &&
	         ca.fetched > f);
	ck_assert_int_eq(ca.downs, 1);
	ck_assert_int_eq(cb.downs, 1);
	ck_assert_int_eq(ca.posted, 20);
	ck_assert_int_eq(ca.posted_err, 20);
	ck_assert_int_eq(ca.fetched_err, 1);
	ck_assert_int_eq(ca.bus->up, 0);
	ck_assert_uint_eq(ca.bus->st.losses, 1);
	ck_assert_int_gt(ca.warns, 0);
	/* refused at once while down; follows still change the set */
	ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 0, "p", 1, NULL),
	                 TCPCHAT_EBUS);
	ck_assert_int_eq(ca.bus->ops->fetch(ca.bus, "#r", 2, 0, 1, NULL),
	                 TCPCHAT_EBUS);
	ck_assert_int_eq(ca.bus->ops->claim(ca.bus, "x", 1, NULL, 0, NULL),
	                 TCPCHAT_EBUS);
	ck_assert_int_eq(ca.bus->ops->broadcast(ca.bus, "n", 1), TCPCHAT_EBUS);
	ck_assert_int_eq(
	        ca.bus->ops->send(ca.bus, NODE_B, strlen(NODE_B), "n", 1),
	        TCPCHAT_EBUS);
	ck_assert_int_eq(cb.bus->ops->follow(cb.bus, "#later", 6), 0);
	/* a few failed reconnects: down is said once */
	run_for(tu_ms(1000));
	ck_assert_int_eq(ca.downs, 1);
	ck_assert_int_eq(ca.ups, 0);
	ck_assert_int_eq(ca.posted, 20);

	ck_assert_msg(eu_engine_restart(&eng, err, sizeof err) == 0, "%s", err);
	WAIT_FOR(ca.ups == 1 && cb.ups == 1);
	ck_assert_int_eq(ca.ups, 1);
	ck_assert_int_eq(cb.ups, 1);
	ck_assert_int_eq(ca.bus->up, 1);
	ck_assert_int_eq(ca.downs, 1);
	/* the restarted server was empty: the epoch is set again */
	ck_assert_uint_eq(epoch_there(), 111);
	ck_assert_uint_eq(ca.bus->epoch, 111);
	/* the follows are back */
	int before = cb.room_events;
	ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 0, "again", 5,
	                                   (void *)(uintptr_t)100),
	                 0);
	WAIT_FOR(cb.room_events > before && ca.posted == 21);
	ck_assert_int_eq(cb.room_events, before + 1);
	ck_assert_uint_eq(ca.posted_seq[100], 1);
	ck_assert_str_eq(cb.rec[1], "again");
	strcpy(cb.room, "#later");
	ck_assert_int_eq(
	        ca.bus->ops->post(ca.bus, "#later", 6, 0, "l", 1, NULL), 0);
	WAIT_FOR(cb.room_last == 1);
	ck_assert_uint_eq(cb.room_last, 1);
	teardown();
}
END_TEST

static void raw_publish(redisContext *c, const char *chan, const void *p,
                        size_t n)
{
	redisReply *r = redisCommand(c, "PUBLISH %s %b", chan, p, n);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	freeReplyObject(r);
}

START_TEST(test_hostile)
{
	setup();
	follow_both("#r");
	redisContext *c = redisConnect(eng.host, eng.port);
	ck_assert(c && !c->err);
	static const uint8_t zero8[8] = {0};
	raw_publish(c, "tcpchat:room:#r", "", 0);
	raw_publish(c, "tcpchat:room:#r", "abc", 3);
	raw_publish(c, "tcpchat:room:#r", "\0\0\0\0\0\0\0", 7);
	raw_publish(c, "tcpchat:room:#r", "\0\0\0\0\0\0\0\1", 8);
	raw_publish(c, "tcpchat:room:#r", zero8, 8);
	uint8_t seq0[9] = {0, 0, 0, 0, 0, 0, 0, 0, 'x'};
	raw_publish(c, "tcpchat:room:#r", seq0, 9);
	raw_publish(c, "tcpchat:all", "", 0);
	raw_publish(c, "tcpchat:ping:" NODE_A, "not a number", 12);
	raw_publish(c, "tcpchat:node:" NODE_A, "", 0);
	redisFree(c);
	ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 0, "fine", 4,
	                                   (void *)(uintptr_t)0),
	                 0);
	WAIT_FOR(ca.room_events == 1 && cb.room_events == 1);
	ck_assert_int_eq(ca.room_events, 1);
	ck_assert_str_eq(ca.rec[1], "fine");
	ck_assert_str_eq(cb.rec[1], "fine");
	ck_assert_int_eq(ca.notes, 0);
	ck_assert_uint_eq(ca.bus->st.bad, 9);
	ck_assert_uint_eq(cb.bus->st.bad, 7);
	/* warned once, not once per message */
	ck_assert_int_eq(ca.warns, 1);
	teardown();
}
END_TEST

START_TEST(test_bad_url)
{
	struct bus_events ev = {.data = &ca};
	struct bus *b = NULL;
	ck_assert_int_eq(loop__init(&loop, on_wake, NULL), 0);
	static const char *const bad[] = {"redis://",
	                                  "http://x",
	                                  "redis://127.0.0.1:99999",
	                                  "redis://host:port",
	                                  "redis://h:0",
	                                  "redis://[::1",
	                                  "redis://h:12x",
	                                  "redis://a b c:1"};
	for (size_t i = 0; i < TC_ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		int rc = bus_redis__new(&b, &loop, bad[i], NODE_A, 1, 1000, &ev,
		                        err, sizeof err);
		ck_assert_msg(rc == TCPCHAT_EADDR, "%s: %d", bad[i], rc);
		ck_assert_ptr_null(b);
		ck_assert_msg(err[0] != '\0', "%s: no words", bad[i]);
	}
	/* nobody listening: a port that was just free */
	ck_assert_msg(eu_redis_start(&eng, err, sizeof err) == 0, "%s", err);
	char url[64];
	snprintf(url, sizeof url, "%s", eng.url);
	eu_engine_stop(&eng);
	int64_t t0 = tu_now_ms();
	int rc = bus_redis__new(&b, &loop, url, NODE_A, 1, 2000, &ev, err,
	                        sizeof err);
	ck_assert_int_eq(rc, TCPCHAT_EBUS);
	ck_assert_ptr_null(b);
	ck_assert_msg(strstr(err, "cannot reach"), "%s", err);
	ck_assert_int_lt(tu_now_ms() - t0, tu_ms(2500));
	loop__fini(&loop);
}
END_TEST

/* A server that stops answering (SIGSTOP) is lost after the liveness
 * deadline, and found again when it answers; a bus destroyed while down
 * frees everything. */
START_TEST(test_silent)
{
	setup();
	follow_both("#r");
	ck_assert_int_eq(kill(eng.pid, SIGSTOP), 0);
	ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 0, "p", 1,
	                                   (void *)(uintptr_t)0),
	                 0);
	int64_t t0 = tu_now_ms();
	WAIT_FOR(ca.downs == 1 && cb.downs == 1);
	ck_assert_int_eq(ca.downs, 1);
	ck_assert_int_eq(cb.downs, 1);
	/* not before the deadline of 3 s (the last ping may be 1 s old) */
	ck_assert_int_ge(tu_now_ms() - t0, 1900);
	ck_assert_int_eq(ca.posted_err, 1);
	ck_assert_int_eq(kill(eng.pid, SIGCONT), 0);
	WAIT_FOR(ca.ups == 1 && cb.ups == 1);
	ck_assert_int_eq(ca.ups, 1);
	ck_assert_int_eq(cb.ups, 1);
	int before = cb.room_events;
	ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 0, "back", 4,
	                                   (void *)(uintptr_t)1),
	                 0);
	WAIT_FOR(cb.room_events > before);
	ck_assert_int_eq(cb.room_events, before + 1);
	/* down again, and destroyed so, with requests pending and a
	 * reconnect timer armed */
	ck_assert_int_eq(eu_engine_kill(&eng), 0);
	ck_assert_int_eq(ca.bus->ops->follow(ca.bus, "#more", 5), 0);
	WAIT_FOR(ca.downs == 2 && cb.downs == 2);
	ck_assert_int_eq(ca.downs, 2);
	run_for(300);
	teardown();
}
END_TEST

/* Redis loses its scripts (SCRIPT FLUSH) or a room's counter (DEL) but
 * keeps the history: posts still work and numbers go on above the
 * history. */
START_TEST(test_scripts_counter_lost)
{
	setup();
	follow_both("#r");
	for (unsigned i = 0; i < 10; i++)
		ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 0, "p", 1,
		                                   (void *)(uintptr_t)i),
		                 0);
	WAIT_FOR(ca.posted == 10);
	ck_assert_int_eq(ca.posted_err, 0);
	redisContext *c = redisConnect(eng.host, eng.port);
	ck_assert(c && !c->err);
	redisReply *r = redisCommand(c, "SCRIPT FLUSH");
	ck_assert(r && r->type == REDIS_REPLY_STATUS);
	freeReplyObject(r);
	r = redisCommand(c, "DEL tcpchat:seq:#r");
	ck_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
	freeReplyObject(r);
	redisFree(c);
	ck_assert_int_eq(ca.bus->ops->post(ca.bus, "#r", 2, 0, "q", 1,
	                                   (void *)(uintptr_t)10),
	                 0);
	ck_assert_int_eq(cb.bus->ops->claim(cb.bus, "bob", 3, NULL, 0, NULL),
	                 0);
	int f = cb.fetched;
	ck_assert_int_eq(cb.bus->ops->fetch(cb.bus, "#r", 2, 8, 10, NULL), 0);
	WAIT_FOR(ca.posted == 11 && cb.claimed == 1 && cb.fetched > f);
	ck_assert_int_eq(ca.posted_err, 0);
	ck_assert_uint_eq(ca.posted_seq[10], 11);
	ck_assert_int_eq(cb.claimed_err, 0);
	ck_assert_int_eq(cb.fetched_err, 0);
	ck_assert_uint_ge(cb.fetched_n, 2);
	ck_assert_uint_eq(cb.fetched_seq[0], 9);
	WAIT_FOR(cb.room_last == 11);
	ck_assert_uint_eq(cb.room_last, 11);
	ck_assert_int_eq(cb.room_disorder, 0);
	teardown();
}
END_TEST

/* Something else than a number in tcpchat:epoch. */
START_TEST(test_bad_epoch)
{
	ck_assert_msg(eu_redis_start(&eng, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(loop__init(&loop, on_wake, NULL), 0);
	redisContext *c = redisConnect(eng.host, eng.port);
	ck_assert(c && !c->err);
	redisReply *r = redisCommand(c, "SET tcpchat:epoch banana");
	ck_assert_ptr_nonnull(r);
	freeReplyObject(r);
	redisFree(c);
	struct bus_events ev = {.data = &ca};
	struct bus *b = NULL;
	int rc = bus_redis__new(&b, &loop, eng.url, NODE_A, 5, 2000, &ev, err,
	                        sizeof err);
	ck_assert_int_eq(rc, TCPCHAT_EBUS);
	ck_assert_ptr_null(b);
	ck_assert_str_eq(err, "tcpchat:epoch holds no epoch");
	loop__fini(&loop);
	eu_engine_stop(&eng);
}
END_TEST

static Suite *bus_redis_suite(void)
{
	Suite *s = suite_create("bus_redis");
	TCase *tc = tcase_create("redis");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_post_follow_fetch);
	tcase_add_test(tc, test_follow_fetch_race);
	tcase_add_test(tc, test_broadcast_send);
	tcase_add_test(tc, test_claim_release);
	tcase_add_test(tc, test_loss);
	tcase_add_test(tc, test_hostile);
	tcase_add_test(tc, test_silent);
	tcase_add_test(tc, test_scripts_counter_lost);
	tcase_add_test(tc, test_bad_epoch);
	tcase_add_test(tc, test_bad_url);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (eu_init(err, sizeof err) != 0) {
		fprintf(stderr, "bus_redis: %s\n", err);
		return EXIT_FAILURE;
	}
	return tu_run_suite(bus_redis_suite());
}
