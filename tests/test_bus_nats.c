/* The NATS bus (bus_nats*.c) against a real nats-server -js: the epoch
 * shared by the cluster, room records numbered without gaps in one order
 * by two buses posting at once, history read back, odd room names,
 * broadcasts and direct records, name claims, the server killed and
 * restarted, hostile messages, bad URLs; bursts of posts that go in
 * batches (one room, 50 rooms, two buses at once), history read across
 * batches and hostile batches.  The test drives the loop
 * itself: loop__poll + loop__run_timers + reap, waiting on conditions
 * with deadlines. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bus.h"
#include "bus_nats_int.h"
#include "engineutil.h"
#include "internal.h"
#include "loop.h"
#include "testutil.h"

#define NODE_A "a:0000000000000001"
#define NODE_B "b:0000000000000002"
#define MAXEV 2048

static char err[4096];

/* What one bus told the test. */
struct node {
	struct bus *b;
	int ups, downs;
	/* room events */
	int nroom;
	uint64_t seq[MAXEV];
	char rec[MAXEV][24];
	char room[MAXEV][70];
	/* answers */
	int nposted, posted_err[MAXEV];
	uint64_t posted_seq[MAXEV];
	int nfetched, fetch_err;
	size_t fetch_n;
	uint64_t fetch_seq[16], fetch_last;
	char fetch_rec[16][24];
	int nclaimed, claim_err;
	char holder[BUS_NODE_MAX + 1];
	int nnotes;
	char notes[64][24];
	int warns;
	int destroy_on_post; /* destroy the bus from its posted() event */
};

static struct loop loop;

static void ev_up(void *data)
{
	((struct node *)data)->ups++;
}

static void ev_down(void *data, const char *why)
{
	struct node *n = data;
	ck_assert_ptr_nonnull(strstr(why, "NATS"));
	n->downs++;
}

static void copy(char *dst, size_t cap, const void *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void ev_room(void *data, const char *room, size_t rlen, uint64_t seq,
                    const uint8_t *rec, size_t len)
{
	struct node *n = data;
	ck_assert_int_lt(n->nroom, MAXEV);
	n->seq[n->nroom] = seq;
	copy(n->rec[n->nroom], sizeof n->rec[0], rec, len);
	copy(n->room[n->nroom], sizeof n->room[0], room, rlen);
	n->nroom++;
}

static void ev_note(void *data, const uint8_t *rec, size_t len)
{
	struct node *n = data;
	ck_assert_int_lt(n->nnotes, 64);
	copy(n->notes[n->nnotes++], sizeof n->notes[0], rec, len);
}

static void ev_posted(void *data, void *token, int e, uint64_t seq)
{
	struct node *n = data;
	TC_UNUSED(token);
	ck_assert_int_lt(n->nposted, MAXEV);
	n->posted_err[n->nposted] = e;
	n->posted_seq[n->nposted++] = seq;
	if (n->destroy_on_post) {
		n->b->ops->destroy(n->b);
		n->b = NULL;
	}
}

static void ev_fetched(void *data, void *token, int e,
                       const struct bus_rec *recs, size_t cnt, uint64_t last)
{
	struct node *n = data;
	TC_UNUSED(token);
	n->nfetched++;
	n->fetch_err = e;
	n->fetch_n = cnt;
	n->fetch_last = last;
	for (size_t i = 0; i < cnt && i < 16; i++) {
		n->fetch_seq[i] = recs[i].seq;
		copy(n->fetch_rec[i], sizeof n->fetch_rec[0], recs[i].data,
		     recs[i].len);
	}
}

static void ev_claimed(void *data, void *token, int e, const char *holder,
                       size_t hlen)
{
	struct node *n = data;
	TC_UNUSED(token);
	n->nclaimed++;
	n->claim_err = e;
	copy(n->holder, sizeof n->holder, holder ? holder : "", hlen);
}

static void ev_log(void *data, int level, const char *text)
{
	struct node *n = data;
	if (level == TCPCHAT_LOG_WARN)
		n->warns++;
	if (getenv("BUS_NATS_VERBOSE"))
		fprintf(stderr, "[%d] %s\n", level, text);
}

static void on_wake(struct loop *l, void *data)
{
	TC_UNUSED(l);
	TC_UNUSED(data);
}

static struct node *na, *nb;

/* One round of the loop: waits up to 20 ms, runs what is due. */
static void pump(void)
{
	loop__poll(&loop, 20);
	loop__run_timers(&loop);
	if (na && na->b)
		na->b->ops->reap(na->b);
	if (nb && nb->b)
		nb->b->ops->reap(nb->b);
}

/* Polls the loop until *v >= want or the deadline; 1 if it got there. */
static int until(const int *v, int want, int ms)
{
	int64_t end = tu_now_ms() + tu_ms(ms);
	while (*v < want && tu_now_ms() < end)
		pump();
	return *v >= want;
}

static struct node *open_bus(const char *url, const char *node, uint64_t epoch)
{
	struct node *n = calloc(1, sizeof *n);
	ck_assert_ptr_nonnull(n);
	struct bus_events ev = {.data = n,
	                        .up = ev_up,
	                        .down = ev_down,
	                        .room = ev_room,
	                        .note = ev_note,
	                        .posted = ev_posted,
	                        .fetched = ev_fetched,
	                        .claimed = ev_claimed,
	                        .log = ev_log};
	int rc = bus_nats__new(&n->b, &loop, url, node, epoch, tu_ms(5000), &ev,
	                       err, sizeof err);
	ck_assert_msg(rc == 0, "new: %d %s", rc, err);
	ck_assert_str_eq(n->b->ops->name, "nats");
	ck_assert_int_eq(n->b->up, 1);
	return n;
}

static void close_bus(struct node **n)
{
	if (*n) {
		if ((*n)->b)
			(*n)->b->ops->destroy((*n)->b);
		free(*n);
		*n = NULL;
	}
}

static struct eu_engine eng;

static void start(void)
{
	memset(&eng, 0, sizeof eng);
	ck_assert_int_eq(loop__init(&loop, on_wake, NULL), 0);
	ck_assert_msg(eu_nats_start(&eng, err, sizeof err) == 0, "%s", err);
	na = open_bus(eng.url, NODE_A, 111);
	nb = open_bus(eng.url, NODE_B, 222);
}

static void finish(void)
{
	close_bus(&na);
	close_bus(&nb);
	eu_engine_stop(&eng);
	loop__fini(&loop);
}

static int post(struct node *n, const char *room, uint64_t floor,
                const char *rec)
{
	return n->b->ops->post(n->b, room, strlen(room), floor, rec,
	                       strlen(rec), NULL);
}

/* A fetch answered: its records are what the bus had when it ran. */
static void fetch(struct node *n, const char *room, uint64_t after,
                  uint32_t max)
{
	int before = n->nfetched;
	ck_assert_int_eq(
	        n->b->ops->fetch(n->b, room, strlen(room), after, max, NULL),
	        0);
	ck_assert(until(&n->nfetched, before + 1, 10000));
	ck_assert_int_eq(n->fetch_err, 0);
}

/* Follows room on n; the fetch after it runs once the follow is set up. */
static void follow(struct node *n, const char *room)
{
	ck_assert_int_eq(n->b->ops->follow(n->b, room, strlen(room)), 0);
	fetch(n, room, 0, 1);
}

START_TEST(test_epoch)
{
	start();
	ck_assert_uint_eq(na->b->epoch, 111);
	ck_assert_uint_eq(nb->b->epoch, 111);
	/* Destroyed with requests queued and under way: no answer, no
	 * leak. */
	na->b->ops->follow(na->b, "#e", 2);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(post(na, "#e", 0, "x"), 0);
	ck_assert_int_eq(na->b->ops->fetch(na->b, "#e", 2, 0, 10, NULL), 0);
	ck_assert_int_eq(na->b->ops->claim(na->b, "n", 1, NULL, 0, NULL), 0);
	close_bus(&na);
	pump();
	/* Destroyed from inside its own event: no event after it. */
	nb->destroy_on_post = 1;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(post(nb, "#e", 0, "y"), 0);
	nb->b->ops->broadcast(nb->b, "z", 1);
	ck_assert(until(&nb->nposted, 1, 10000));
	ck_assert_ptr_null(nb->b);
	for (int i = 0; i < 10; i++)
		pump();
	ck_assert_int_eq(nb->nposted, 1);
	finish();
}
END_TEST

/* Checks that n saw seq 1..total of room in order exactly once, the
 * records of each poster in the order posted. */
static void check_order(struct node *n, int total, int per)
{
	int next_a = 0, next_b = 0;
	ck_assert_int_eq(n->nroom, total);
	for (int i = 0; i < total; i++) {
		char want[24];
		ck_assert_uint_eq(n->seq[i], (uint64_t)i + 1);
		ck_assert_str_eq(n->room[i], "#r");
		if (n->rec[i][0] == 'a')
			snprintf(want, sizeof want, "a-%d", next_a++);
		else
			snprintf(want, sizeof want, "b-%d", next_b++);
		ck_assert_str_eq(n->rec[i], want);
	}
	ck_assert_int_eq(next_a, per);
	ck_assert_int_eq(next_b, per);
}

START_TEST(test_posts)
{
	enum { PER = 300 };
	start();
	follow(na, "#r");
	follow(nb, "#r");
	for (int i = 0; i < PER; i++) {
		char rec[24];
		snprintf(rec, sizeof rec, "a-%d", i);
		ck_assert_int_eq(post(na, "#r", 0, rec), 0);
		snprintf(rec, sizeof rec, "b-%d", i);
		ck_assert_int_eq(post(nb, "#r", 0, rec), 0);
	}
	ck_assert(until(&na->nposted, PER, 60000));
	ck_assert(until(&nb->nposted, PER, 60000));
	ck_assert(until(&na->nroom, 2 * PER, 20000));
	ck_assert(until(&nb->nroom, 2 * PER, 20000));
	/* Every post got its own number. */
	static char seen[2 * PER + 1];
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < PER; i++) {
		ck_assert_int_eq(na->posted_err[i], 0);
		ck_assert_int_eq(nb->posted_err[i], 0);
		ck_assert_uint_le(na->posted_seq[i], 2 * PER);
		ck_assert_uint_le(nb->posted_seq[i], 2 * PER);
		ck_assert(!seen[na->posted_seq[i]]);
		seen[na->posted_seq[i]] = 1;
		ck_assert(!seen[nb->posted_seq[i]]);
		seen[nb->posted_seq[i]] = 1;
	}
	check_order(na, 2 * PER, PER);
	check_order(nb, 2 * PER, PER);

	/* History. */
	fetch(nb, "#r", 590, 5);
	ck_assert_uint_eq(nb->fetch_n, 5);
	ck_assert_uint_eq(nb->fetch_last, 600);
	for (int i = 0; i < 5; i++) {
		ck_assert_uint_eq(nb->fetch_seq[i], 596 + (uint64_t)i);
		ck_assert_str_eq(nb->fetch_rec[i], nb->rec[595 + i]);
	}
	fetch(nb, "#r", 600, 5);
	ck_assert_uint_eq(nb->fetch_n, 0);
	ck_assert_uint_eq(nb->fetch_last, 600);
	fetch(nb, "#unknown", 0, 5);
	ck_assert_uint_eq(nb->fetch_n, 0);
	ck_assert_uint_eq(nb->fetch_last, 0);

	/* The floor. */
	ck_assert_int_eq(post(na, "#r", 5000, "a-floor"), 0);
	ck_assert(until(&na->nposted, PER + 1, 10000));
	ck_assert_int_eq(na->posted_err[PER], 0);
	ck_assert_uint_eq(na->posted_seq[PER], 5001);
	ck_assert(until(&nb->nroom, 2 * PER + 1, 10000));
	ck_assert_uint_eq(nb->seq[2 * PER], 5001);
	ck_assert_str_eq(nb->rec[2 * PER], "a-floor");
	/* Messages (batches), not records: a message may carry many. */
	ck_assert_uint_ge(na->b->st.sent, 2);
	ck_assert_uint_le(na->b->st.sent, PER + 1);
	ck_assert_uint_gt(na->b->st.sent_bytes, PER * 4);
	ck_assert_uint_ge(nb->b->st.recv, 2);
	finish();
}
END_TEST

START_TEST(test_room_names)
{
	/* Dots and wildcards, UTF-8, and the longest name (64 bytes: the
	 * longest subject). */
	static char longest[BUS_NATS_ROOM_MAX + 1];
	const char *rooms[] = {"#a.b", "#x*>", "#\xc3\xbcn\xc3\xaf", longest};
	memset(longest, 'l', BUS_NATS_ROOM_MAX);
	longest[0] = '#';
	start();
	for (int i = 0; i < 4; i++)
		follow(nb, rooms[i]);
	for (int i = 0; i < 4; i++) {
		const char *rec = i == 3 ? "longest" : rooms[i];
		ck_assert_int_eq(post(na, rooms[i], 0, rec), 0);
		ck_assert(until(&na->nposted, i + 1, 10000));
		ck_assert_int_eq(na->posted_err[i], 0);
		ck_assert_uint_eq(na->posted_seq[i], 1);
		ck_assert(until(&nb->nroom, i + 1, 10000));
		ck_assert_str_eq(nb->room[i], rooms[i]);
		ck_assert_str_eq(nb->rec[i], rec);
		ck_assert_uint_eq(nb->seq[i], 1);
		fetch(na, rooms[i], 0, 10);
		ck_assert_uint_eq(na->fetch_n, 1);
		ck_assert_str_eq(na->fetch_rec[0], rec);
	}
	/* A wildcard room is not every room: #x*> got only its own. */
	ck_assert_int_eq(nb->nroom, 4);
	finish();
}
END_TEST

START_TEST(test_broadcast_send)
{
	start();
	ck_assert_int_eq(na->b->ops->broadcast(na->b, "hello", 5), 0);
	ck_assert(until(&na->nnotes, 1, 10000));
	ck_assert(until(&nb->nnotes, 1, 10000));
	ck_assert_str_eq(na->notes[0], "hello");
	ck_assert_str_eq(nb->notes[0], "hello");
	ck_assert_int_eq(
	        na->b->ops->send(na->b, NODE_B, strlen(NODE_B), "psst", 4), 0);
	ck_assert_int_eq(na->b->ops->broadcast(na->b, "after", 5), 0);
	ck_assert(until(&nb->nnotes, 3, 10000));
	/* Two subscriptions: their messages are not ordered between them. */
	ck_assert(!strcmp(nb->notes[1], "psst") ||
	          !strcmp(nb->notes[2], "psst"));
	ck_assert(!strcmp(nb->notes[1], "after") ||
	          !strcmp(nb->notes[2], "after"));
	/* a gets the broadcast, never the direct one. */
	ck_assert(until(&na->nnotes, 2, 10000));
	ck_assert_str_eq(na->notes[1], "after");
	ck_assert_int_eq(na->b->ops->broadcast(na->b, "last", 4), 0);
	ck_assert(until(&nb->nnotes, 4, 10000));
	ck_assert(until(&na->nnotes, 3, 10000));
	ck_assert_str_eq(na->notes[2], "last");
	ck_assert_int_eq(na->nnotes, 3);
	finish();
}
END_TEST

static void claim(struct node *n, const char *name, const char *stale)
{
	int before = n->nclaimed;
	ck_assert_int_eq(n->b->ops->claim(n->b, name, strlen(name), stale,
	                                  stale ? strlen(stale) : 0, NULL),
	                 0);
	ck_assert(until(&n->nclaimed, before + 1, 10000));
}

START_TEST(test_claim)
{
	start();
	claim(na, "alice", NULL);
	ck_assert_int_eq(na->claim_err, 0);
	claim(na, "alice", NULL); /* ours already */
	ck_assert_int_eq(na->claim_err, 0);
	claim(nb, "alice", NULL);
	ck_assert_int_eq(nb->claim_err, TCPCHAT_ENAMEINUSE);
	ck_assert_str_eq(nb->holder, NODE_A);
	claim(nb, "alice", "x:0000000000000009"); /* another stale one */
	ck_assert_int_eq(nb->claim_err, TCPCHAT_ENAMEINUSE);
	claim(nb, "alice", NODE_A);
	ck_assert_int_eq(nb->claim_err, 0);
	/* a's release runs before a's next claim: b's name stays b's. */
	na->b->ops->release(na->b, "alice", 5);
	claim(na, "alice", NULL);
	ck_assert_int_eq(na->claim_err, TCPCHAT_ENAMEINUSE);
	ck_assert_str_eq(na->holder, NODE_B);
	/* b's release frees it; a name deleted may be taken again. */
	nb->b->ops->release(nb->b, "alice", 5);
	claim(nb, "bob", NULL); /* runs after the release */
	ck_assert_int_eq(nb->claim_err, 0);
	claim(na, "alice", NULL);
	ck_assert_int_eq(na->claim_err, 0);
	finish();
}
END_TEST

START_TEST(test_loss)
{
	start();
	follow(na, "#r");
	follow(nb, "#r");
	ck_assert_int_eq(post(na, "#r", 0, "before"), 0);
	ck_assert(until(&nb->nroom, 1, 10000));
	ck_assert_uint_eq(nb->seq[0], 1);
	/* A room with history that b follows but got nothing of yet. */
	ck_assert_int_eq(post(na, "#quiet", 0, "q1"), 0);
	ck_assert_int_eq(post(na, "#quiet", 0, "q2"), 0);
	ck_assert(until(&na->nposted, 3, 10000));
	follow(nb, "#quiet");
	ck_assert_int_eq(eu_engine_kill(&eng), 0);
	/* Not noticed yet: taken, and failed by the loss. */
	ck_assert_int_eq(post(na, "#r", 0, "pending"), 0);
	ck_assert(until(&na->downs, 1, 20000));
	ck_assert(until(&nb->downs, 1, 20000));
	ck_assert(until(&na->nposted, 4, 20000));
	ck_assert_int_eq(na->posted_err[3], TCPCHAT_EBUS);
	ck_assert_int_eq(na->b->up, 0);
	ck_assert_int_eq(post(na, "#r", 0, "refused"), TCPCHAT_EBUS);
	ck_assert_int_eq(na->b->ops->fetch(na->b, "#r", 2, 0, 1, NULL),
	                 TCPCHAT_EBUS);
	ck_assert_int_eq(na->b->ops->claim(na->b, "x", 1, NULL, 0, NULL),
	                 TCPCHAT_EBUS);
	ck_assert_int_eq(na->b->ops->broadcast(na->b, "x", 1), TCPCHAT_EBUS);
	ck_assert_uint_eq(na->b->st.losses, 1);
	/* Recorded while down, followed when back. */
	ck_assert_int_eq(nb->b->ops->follow(nb->b, "#during", 7), 0);
	ck_assert_msg(eu_engine_restart(&eng, err, sizeof err) == 0, "%s", err);
	ck_assert(until(&na->ups, 1, 30000));
	ck_assert(until(&nb->ups, 1, 30000));
	ck_assert_int_eq(na->b->up, 1);
	ck_assert_int_eq(post(na, "#r", 0, "after"), 0);
	ck_assert(until(&na->nposted, 5, 20000));
	ck_assert_int_eq(na->posted_err[4], 0);
	/* The post that was under way when the server died was answered
	 * EBUS, but its outcome is unknown (as for any timeout): nats.c may
	 * have handed it over before the loss.  If it is in the stream, b
	 * sees it before "after". */
	int at = 1;
	ck_assert(until(&nb->nroom, 2, 20000));
	if (!strcmp(nb->rec[1], "pending")) {
		ck_assert_uint_eq(nb->seq[1], 2);
		at = 2;
		ck_assert(until(&nb->nroom, 3, 20000));
	}
	ck_assert_str_eq(nb->rec[at], "after");
	ck_assert_uint_eq(nb->seq[at], (uint64_t)at + 1);
	ck_assert_int_eq(post(na, "#during", 0, "new room"), 0);
	ck_assert(until(&nb->nroom, at + 2, 20000));
	ck_assert_str_eq(nb->room[at + 1], "#during");
	ck_assert_str_eq(nb->rec[at + 1], "new room");
	/* Unfollowed: no more of #r. */
	nb->b->ops->unfollow(nb->b, "#r", 2);
	ck_assert_int_eq(post(na, "#r", 0, "unseen"), 0);
	ck_assert_int_eq(post(na, "#during", 0, "seen"), 0);
	ck_assert(until(&nb->nroom, at + 3, 20000));
	ck_assert_str_eq(nb->rec[at + 2], "seen");
	/* #quiet's history was not replayed to b after the reconnect. */
	ck_assert_int_eq(post(na, "#quiet", 0, "q-after"), 0);
	ck_assert(until(&nb->nroom, at + 4, 20000));
	ck_assert_str_eq(nb->room[at + 3], "#quiet");
	ck_assert_str_eq(nb->rec[at + 3], "q-after");
	ck_assert_uint_eq(nb->seq[at + 3], 3);
	ck_assert_int_eq(na->downs, 1);
	ck_assert_int_eq(nb->downs, 1);
	finish();
}
END_TEST

/* Publishes raw core NATS messages (no headers) as a hostile client. */
static void raw_pub(const char *subj, const char *payload)
{
	char buf[512], in[512];
	int fd = eu_connect(&eng, tu_ms(5000));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(eu_recv_until(fd, in, sizeof in, "\r\n", tu_ms(5000)),
	                 0);
	int n = snprintf(buf, sizeof buf,
	                 "CONNECT {\"verbose\":false}\r\nPUB %s %zu\r\n%s\r\n"
	                 "PING\r\n",
	                 subj, strlen(payload), payload);
	ck_assert_int_eq(eu_send(fd, buf, (size_t)n, tu_ms(5000)), 0);
	ck_assert_int_ge(eu_recv_until(fd, in, sizeof in, "PONG", tu_ms(5000)),
	                 0);
	close(fd);
}

/* nats.c dropping messages for a slow consumer (its error callback,
 * called here as nats.c calls it): a loss, so that the loop catches
 * the rooms up, then up again by itself; other errors are not. */
START_TEST(test_slow_consumer)
{
	start();
	follow(na, "#r");
	follow(nb, "#r");
	int ups = nb->ups;
	struct bus_nats *bn = (struct bus_nats *)nb->b;
	bus_nats__on_error(bn->nc, NULL, NATS_ERR, bn);
	ck_assert_int_eq(post(na, "#r", 0, "one"), 0);
	ck_assert(until(&nb->nroom, 1, 10000));
	ck_assert_int_eq(nb->downs, 0);
	bus_nats__on_error(bn->nc, NULL, NATS_SLOW_CONSUMER, bn);
	ck_assert(until(&nb->downs, 1, 10000));
	ck_assert(until(&nb->ups, ups + 1, 10000));
	ck_assert_int_eq(na->downs, 0);
	/* The subscription goes on. */
	ck_assert_int_eq(post(na, "#r", 0, "two"), 0);
	ck_assert(until(&nb->nroom, 2, 10000));
	ck_assert_str_eq(nb->rec[1], "two");
	ck_assert_uint_eq(nb->seq[1], 2);
	ck_assert_int_eq(nb->downs, 1);
	finish();
}
END_TEST

START_TEST(test_garbage)
{
	char subj[BUS_NATS_SUBJ_MAX];
	start();
	ck_assert_int_eq(bus_nats__room_subject(subj, sizeof subj,
	                                        BUS_NATS_LOG_PREFIX, "#r", 2),
	                 0);
	ck_assert_str_eq(subj, "tcpchat.log.2372");
	follow(na, "#r");
	raw_pub(subj, "garbage-first");
	ck_assert_int_eq(post(na, "#r", 0, "v1"), 0);
	ck_assert(until(&na->nposted, 1, 10000));
	ck_assert_int_eq(na->posted_err[0], 0);
	ck_assert_uint_eq(na->posted_seq[0], 1);
	raw_pub(subj, "garbage-middle");
	raw_pub("tcpchat.all", "not ours");
	ck_assert_int_eq(post(na, "#r", 0, "v2"), 0);
	ck_assert(until(&na->nposted, 2, 10000));
	ck_assert_int_eq(na->posted_err[1], 0);
	ck_assert_uint_eq(na->posted_seq[1], 2);
	raw_pub(subj, "garbage-last");
	/* From another bus that knows nothing of the room yet. */
	ck_assert_int_eq(post(nb, "#r", 0, "v3"), 0);
	ck_assert(until(&nb->nposted, 1, 10000));
	ck_assert_int_eq(nb->posted_err[0], 0);
	ck_assert_uint_eq(nb->posted_seq[0], 3);
	raw_pub(subj, "garbage-end");
	fetch(nb, "#r", 0, 10);
	ck_assert_uint_eq(nb->fetch_n, 3);
	ck_assert_uint_eq(nb->fetch_last, 3);
	ck_assert_str_eq(nb->fetch_rec[0], "v1");
	ck_assert_str_eq(nb->fetch_rec[1], "v2");
	ck_assert_str_eq(nb->fetch_rec[2], "v3");
	ck_assert(until(&na->nroom, 3, 10000));
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(na->seq[i], (uint64_t)i + 1);
	/* The four on the room and the one on tcpchat.all, counted. */
	int64_t end = tu_now_ms() + tu_ms(10000);
	while (bus_nats__garbage(na->b) < 5 && tu_now_ms() < end)
		pump();
	ck_assert_uint_eq(bus_nats__garbage(na->b), 5);
	ck_assert_int_ge(na->warns, 1);
	/* Valid ones still arrive. */
	ck_assert_int_eq(na->b->ops->broadcast(na->b, "fine", 4), 0);
	ck_assert(until(&na->nnotes, 1, 10000));
	ck_assert_str_eq(na->notes[0], "fine");
	finish();
}
END_TEST

/* ---- posts in rounds (one message per room carries many records) ---- */

/* Posts total records "p-I" from n, to "#rK" (K = I % rooms) when rooms
 * > 1, else to "#r", all queued at once; waits for every answer. */
static void burst(struct node *n, int total, int rooms)
{
	int before = n->nposted;
	for (int i = 0; i < total; i++) {
		char rec[24], room[16];
		snprintf(rec, sizeof rec, "p-%d", i);
		if (rooms > 1)
			snprintf(room, sizeof room, "#r%d", i % rooms);
		else
			snprintf(room, sizeof room, "#r");
		ck_assert_int_eq(post(n, room, 0, rec), 0);
	}
	ck_assert(until(&n->nposted, before + total, 120000));
}

START_TEST(test_burst)
{
	enum { N = 2000 };
	start();
	follow(na, "#r");
	follow(nb, "#r");
	burst(na, N, 1);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(na->posted_err[i], 0);
		ck_assert_uint_eq(na->posted_seq[i], (uint64_t)i + 1);
	}
	ck_assert(until(&na->nroom, N, 60000));
	ck_assert(until(&nb->nroom, N, 60000));
	for (int i = 0; i < N; i++) {
		char want[24];
		snprintf(want, sizeof want, "p-%d", i);
		ck_assert_uint_eq(na->seq[i], (uint64_t)i + 1);
		ck_assert_uint_eq(nb->seq[i], (uint64_t)i + 1);
		ck_assert_str_eq(na->rec[i], want);
		ck_assert_str_eq(nb->rec[i], want);
	}
	/* Batches: far fewer messages than records, each way. */
	ck_assert_uint_ge(na->b->st.sent, 1);
	ck_assert_uint_lt(na->b->st.sent, 1000);
	ck_assert_uint_lt(nb->b->st.recv, 1000);
	fetch(nb, "#r", N - 3, 16);
	ck_assert_uint_eq(nb->fetch_n, 3);
	ck_assert_uint_eq(nb->fetch_last, N);
	ck_assert_uint_eq(nb->fetch_seq[0], N - 2);
	ck_assert_str_eq(nb->fetch_rec[2], "p-1999");
	finish();
}
END_TEST

START_TEST(test_burst_rooms)
{
	enum { N = 2000, ROOMS = 50 };
	start();
	for (int k = 0; k < ROOMS; k++) {
		char room[16];
		snprintf(room, sizeof room, "#r%d", k);
		follow(na, room);
		follow(nb, room);
	}
	burst(na, N, ROOMS);
	/* Per room: seqs 1, 2, ... in the order of the posts. */
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(na->posted_err[i], 0);
		ck_assert_uint_eq(na->posted_seq[i], (uint64_t)(i / ROOMS) + 1);
	}
	ck_assert(until(&na->nroom, N, 60000));
	ck_assert(until(&nb->nroom, N, 60000));
	struct node *ns[2] = {na, nb};
	for (int x = 0; x < 2; x++) {
		int next[ROOMS] = {0};
		for (int i = 0; i < N; i++) {
			int k = atoi(ns[x]->room[i] + 2);
			char want[24];
			ck_assert_int_lt(k, ROOMS);
			ck_assert_uint_eq(ns[x]->seq[i], (uint64_t)next[k] + 1);
			snprintf(want, sizeof want, "p-%d",
			         k + ROOMS * next[k]);
			ck_assert_str_eq(ns[x]->rec[i], want);
			next[k]++;
		}
		for (int k = 0; k < ROOMS; k++)
			ck_assert_int_eq(next[k], N / ROOMS);
	}
	ck_assert_uint_lt(na->b->st.sent, N);
	finish();
}
END_TEST

START_TEST(test_burst_two)
{
	enum { PER = 900 };
	start();
	follow(na, "#r");
	follow(nb, "#r");
	for (int i = 0; i < PER; i++) {
		char rec[24];
		snprintf(rec, sizeof rec, "a-%d", i);
		ck_assert_int_eq(post(na, "#r", 0, rec), 0);
		snprintf(rec, sizeof rec, "b-%d", i);
		ck_assert_int_eq(post(nb, "#r", 0, rec), 0);
	}
	ck_assert(until(&na->nposted, PER, 120000));
	ck_assert(until(&nb->nposted, PER, 120000));
	static char seen[2 * PER + 1];
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < PER; i++) {
		struct node *ns[2] = {na, nb};
		for (int x = 0; x < 2; x++) {
			uint64_t s = ns[x]->posted_seq[i];
			ck_assert_int_eq(ns[x]->posted_err[i], 0);
			ck_assert_uint_ge(s, 1);
			ck_assert_uint_le(s, 2 * PER);
			ck_assert(!seen[s]);
			seen[s] = 1;
		}
	}
	ck_assert(until(&na->nroom, 2 * PER, 60000));
	ck_assert(until(&nb->nroom, 2 * PER, 60000));
	check_order(na, 2 * PER, PER);
	check_order(nb, 2 * PER, PER);
	for (int i = 0; i < 2 * PER; i++)
		ck_assert_str_eq(na->rec[i], nb->rec[i]);
	finish();
}
END_TEST

/* Fetches of every start against the records as delivered: the bursts
 * make batches of various sizes, so starts and ends fall in the middle
 * of batches and on their edges. */
START_TEST(test_fetch_batches)
{
	static const int sizes[] = {1, 7, 3, 12, 1, 5, 9};
	static const uint32_t maxes[] = {1, 2, 5, 16};
	int total = 0;
	start();
	follow(nb, "#r");
	for (size_t k = 0; k < TC_ARRAY_LEN(sizes); k++) {
		burst(na, sizes[k], 1);
		total += sizes[k];
	}
	ck_assert(until(&nb->nroom, total, 20000));
	/* At least one message carried more than one record. */
	ck_assert_uint_lt(na->b->st.sent, (uint64_t)total);
	for (int after = 0; after <= total; after++)
		for (size_t m = 0; m < TC_ARRAY_LEN(maxes); m++) {
			uint32_t max = maxes[m];
			int want = total - after < (int)max ? total - after
			                                    : (int)max;
			fetch(nb, "#r", (uint64_t)after, max);
			ck_assert_uint_eq(nb->fetch_last, (uint64_t)total);
			ck_assert_uint_eq(nb->fetch_n, (size_t)want);
			for (int i = 0; i < want; i++) {
				int s = total - want + i + 1;
				ck_assert_uint_eq(nb->fetch_seq[i],
				                  (uint64_t)s);
				ck_assert_str_eq(nb->fetch_rec[i],
				                 nb->rec[s - 1]);
			}
		}
	finish();
}
END_TEST

/* Publishes a core NATS message with headers hdrs ("K: V\r\n" lines)
 * and a binary payload, as a hostile client. */
static void raw_hpub(const char *subj, const char *hdrs, const void *pl,
                     size_t plen)
{
	char buf[1024], in[512];
	char head[512];
	int hl = snprintf(head, sizeof head, "NATS/1.0\r\n%s\r\n", hdrs);
	int fd = eu_connect(&eng, tu_ms(5000));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(eu_recv_until(fd, in, sizeof in, "\r\n", tu_ms(5000)),
	                 0);
	int n = snprintf(buf, sizeof buf,
	                 "CONNECT {\"verbose\":false,\"headers\":true}\r\n"
	                 "HPUB %s %d %zu\r\n%s",
	                 subj, hl, (size_t)hl + plen, head);
	ck_assert_uint_lt((size_t)n + plen + 8, sizeof buf);
	memcpy(buf + n, pl, plen);
	n += (int)plen;
	n += snprintf(buf + n, sizeof buf - (size_t)n, "\r\nPING\r\n");
	ck_assert_int_eq(eu_send(fd, buf, (size_t)n, tu_ms(5000)), 0);
	ck_assert_int_ge(eu_recv_until(fd, in, sizeof in, "PONG", tu_ms(5000)),
	                 0);
	close(fd);
}

START_TEST(test_garbage_batches)
{
	char subj[BUS_NATS_SUBJ_MAX];
	/* 2 records where 3 are announced; a length past the end; count 0;
	 * a record of length 0; n over the limit. */
	static const uint8_t two[] = {0, 0, 0, 2, 'x', 'y', 0, 0, 0, 1, 'z'};
	static const uint8_t past[] = {0, 0, 0, 9, 'x', 'y'};
	static const uint8_t one[] = {0, 0, 0, 1, 'z'};
	static const uint8_t empty[] = {0, 0, 0, 0, 0, 0, 0, 1, 'z'};
	start();
	ck_assert_int_eq(bus_nats__room_subject(subj, sizeof subj,
	                                        BUS_NATS_LOG_PREFIX, "#r", 2),
	                 0);
	follow(na, "#r");
	ck_assert_int_eq(post(na, "#r", 0, "v1"), 0);
	ck_assert(until(&na->nposted, 1, 10000));
	raw_hpub(subj,
	         "Tcpchat-Seq: 2\r\nTcpchat-Prev: 0\r\nTcpchat-Count: 3\r\n",
	         two, sizeof two);
	ck_assert_int_eq(post(na, "#r", 0, "v2"), 0);
	ck_assert(until(&na->nposted, 2, 10000));
	raw_hpub(subj,
	         "Tcpchat-Seq: 3\r\nTcpchat-Prev: 0\r\nTcpchat-Count: 1\r\n",
	         past, sizeof past);
	raw_hpub(subj,
	         "Tcpchat-Seq: 3\r\nTcpchat-Prev: 0\r\nTcpchat-Count: 0\r\n",
	         one, sizeof one);
	ck_assert_int_eq(post(nb, "#r", 0, "v3"), 0);
	ck_assert(until(&nb->nposted, 1, 10000));
	raw_hpub(subj,
	         "Tcpchat-Seq: 4\r\nTcpchat-Prev: 0\r\nTcpchat-Count: 2\r\n",
	         empty, sizeof empty);
	raw_hpub(subj,
	         "Tcpchat-Seq: 4\r\nTcpchat-Prev: 0\r\nTcpchat-Count: 5000\r\n",
	         one, sizeof one);
	raw_hpub(subj,
	         "Tcpchat-Seq: 4611686018427387904\r\nTcpchat-Prev: 0\r\n"
	         "Tcpchat-Count: 2\r\n",
	         two, sizeof two);
	/* The garbage is skipped: the numbers go on from the records. */
	ck_assert_int_eq(na->posted_err[0], 0);
	ck_assert_int_eq(na->posted_err[1], 0);
	ck_assert_int_eq(nb->posted_err[0], 0);
	ck_assert_uint_eq(na->posted_seq[0], 1);
	ck_assert_uint_eq(na->posted_seq[1], 2);
	ck_assert_uint_eq(nb->posted_seq[0], 3);
	/* Valid records still go and come, in batches too. */
	burst(na, 20, 1);
	ck_assert(until(&na->nroom, 23, 10000));
	for (int i = 0; i < 23; i++)
		ck_assert_uint_eq(na->seq[i], (uint64_t)i + 1);
	ck_assert_str_eq(na->rec[2], "v3");
	ck_assert_str_eq(na->rec[22], "p-19");
	int64_t end = tu_now_ms() + tu_ms(10000);
	while (bus_nats__garbage(na->b) < 6 && tu_now_ms() < end)
		pump();
	ck_assert_uint_eq(bus_nats__garbage(na->b), 6);
	fetch(nb, "#r", 0, 16);
	ck_assert_uint_eq(nb->fetch_last, 23);
	ck_assert_uint_eq(nb->fetch_n, 16);
	ck_assert_uint_eq(nb->fetch_seq[0], 8);
	ck_assert_str_eq(nb->fetch_rec[15], "p-19");
	fetch(nb, "#r", 0, 3);
	ck_assert_uint_eq(nb->fetch_seq[0], 21);
	fetch(nb, "#r", 1, 2);
	ck_assert_uint_eq(nb->fetch_n, 2);
	ck_assert_uint_eq(nb->fetch_seq[0], 22);
	fetch(nb, "#r", 0, 23);
	ck_assert_uint_eq(nb->fetch_n, 23);
	ck_assert_str_eq(nb->fetch_rec[0], "v1");
	ck_assert_str_eq(nb->fetch_rec[1], "v2");
	ck_assert_str_eq(nb->fetch_rec[2], "v3");
	fetch(nb, "#r", 20, 16);
	ck_assert_uint_eq(nb->fetch_n, 3);
	finish();
}
END_TEST

/* Records of the first format (one record, no Tcpchat-Count) are read
 * as batches of one; a floor leaves a gap that fetch steps over. */
START_TEST(test_old_format)
{
	char subj[BUS_NATS_SUBJ_MAX];
	start();
	ck_assert_int_eq(bus_nats__room_subject(subj, sizeof subj,
	                                        BUS_NATS_LOG_PREFIX, "#old", 4),
	                 0);
	follow(na, "#old");
	raw_hpub(subj, "Tcpchat-Seq: 1\r\nTcpchat-Prev: 0\r\n", "old-1", 5);
	ck_assert(until(&na->nroom, 1, 10000));
	ck_assert_uint_eq(na->seq[0], 1);
	ck_assert_str_eq(na->rec[0], "old-1");
	ck_assert_int_eq(post(nb, "#old", 0, "new-2"), 0);
	ck_assert(until(&nb->nposted, 1, 10000));
	ck_assert_int_eq(nb->posted_err[0], 0);
	ck_assert_uint_eq(nb->posted_seq[0], 2);
	ck_assert_int_eq(post(nb, "#old", 10, "new-11"), 0);
	ck_assert(until(&nb->nposted, 2, 10000));
	ck_assert_uint_eq(nb->posted_seq[1], 11);
	ck_assert(until(&na->nroom, 3, 10000));
	ck_assert_uint_eq(na->seq[2], 11);
	fetch(na, "#old", 0, 16);
	ck_assert_uint_eq(na->fetch_n, 3);
	ck_assert_uint_eq(na->fetch_last, 11);
	ck_assert_uint_eq(na->fetch_seq[0], 1);
	ck_assert_str_eq(na->fetch_rec[0], "old-1");
	ck_assert_uint_eq(na->fetch_seq[1], 2);
	ck_assert_uint_eq(na->fetch_seq[2], 11);
	fetch(na, "#old", 5, 16);
	ck_assert_uint_eq(na->fetch_n, 1);
	ck_assert_uint_eq(na->fetch_seq[0], 11);
	fetch(na, "#old", 1, 16);
	ck_assert_uint_eq(na->fetch_n, 2);
	ck_assert_str_eq(na->fetch_rec[0], "new-2");
	finish();
}
END_TEST

START_TEST(test_bad_url)
{
	struct bus *b = NULL;
	struct bus_events ev = {0};
	static const char *bad[] = {"redis://127.0.0.1:4222", "nats://",
	                            "nats://127.0.0.1",       "nats://:4222",
	                            "nats://h:99999",         "nats://h:1/x"};
	ck_assert_int_eq(loop__init(&loop, on_wake, NULL), 0);
	for (size_t i = 0; i < TC_ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		ck_assert_int_eq(bus_nats__new(&b, &loop, bad[i], NODE_A, 1,
		                               1000, &ev, err, sizeof err),
		                 TCPCHAT_EADDR);
		ck_assert_ptr_null(b);
		ck_assert_int_gt(strlen(err), 0);
	}
	/* A server without JetStream. */
	memset(&eng, 0, sizeof eng);
	ck_assert_msg(eu_nats_start(&eng, err, sizeof err) == 0, "%s", err);
	eng.jetstream = 0;
	ck_assert_msg(eu_engine_restart(&eng, err, sizeof err) == 0, "%s", err);
	err[0] = '\0';
	ck_assert_int_eq(bus_nats__new(&b, &loop, eng.url, NODE_A, 1, 2000, &ev,
	                               err, sizeof err),
	                 TCPCHAT_EBUS);
	ck_assert_ptr_null(b);
	ck_assert_msg(strstr(err, "no JetStream") != NULL, "%s", err);
	/* A port nobody listens on any more. */
	char url[64];
	snprintf(url, sizeof url, "%s", eng.url);
	eu_engine_stop(&eng);
	err[0] = '\0';
	ck_assert_int_eq(bus_nats__new(&b, &loop, url, NODE_A, 1, 1000, &ev,
	                               err, sizeof err),
	                 TCPCHAT_EBUS);
	ck_assert_ptr_null(b);
	ck_assert_msg(strstr(err, "NATS") != NULL, "%s", err);
	if (getenv("BUS_NATS_VERBOSE"))
		fprintf(stderr, "%s\n", err);
	loop__fini(&loop);
}
END_TEST

static Suite *bus_nats_suite(void)
{
	Suite *s = suite_create("bus_nats");
	TCase *tc = tcase_create("nats");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_epoch);
	tcase_add_test(tc, test_posts);
	tcase_add_test(tc, test_room_names);
	tcase_add_test(tc, test_broadcast_send);
	tcase_add_test(tc, test_claim);
	tcase_add_test(tc, test_loss);
	tcase_add_test(tc, test_slow_consumer);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_burst);
	tcase_add_test(tc, test_burst_rooms);
	tcase_add_test(tc, test_burst_two);
	tcase_add_test(tc, test_fetch_batches);
	tcase_add_test(tc, test_garbage_batches);
	tcase_add_test(tc, test_old_format);
	tcase_add_test(tc, test_bad_url);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (eu_init(err, sizeof err) != 0) {
		fprintf(stderr, "bus_nats: %s\n", err);
		return EXIT_FAILURE;
	}
	int rc = tu_run_suite(bus_nats_suite());
	nats_Close(); /* nats.c's global state, for valgrind */
	return rc;
}
