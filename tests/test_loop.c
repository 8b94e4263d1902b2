/* Tests for the event loop (loop.c, loop_timer.c): watchers, the timer
 * heap, the wakeup and the command queue, and the host-driven fd.  They
 * run against whichever backend the build chose (TCPCHAT_USE_EPOLL). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "loop.h"

/* Every wait on a condition is bounded by this; generous, so that it
 * holds under valgrind on a busy machine. */
#define DEADLINE_MS 30000

static void nap_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX,
	                            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                            0, sv),
	                 0);
}

static void put_byte(int fd)
{
	char c = 'x';
	ck_assert_int_eq(write(fd, &c, 1), 1);
}

static void take_byte(int fd)
{
	char c;
	ck_assert_int_eq(read(fd, &c, 1), 1);
}

static int fd_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n = poll(&p, 1, 0);
	ck_assert_int_ge(n, 0);
	return n == 1 && (p.revents & POLLIN);
}

/* ---- watchers ------------------------------------------------------------ */

struct io_rec {
	int calls;
	unsigned last_events;
	struct loop_watcher *last_w;
	void *last_data;
	int seq; /* order of dispatch, from a shared counter */
	/* for the "unwatch another" test */
	struct loop *l;
	struct loop_watcher *victim;
};

static int dispatch_counter;

static void io_cb(struct loop_watcher *w, unsigned events)
{
	struct io_rec *r = w->data;
	r->calls++;
	r->last_events = events;
	r->last_w = w;
	r->last_data = w->data;
	r->seq = ++dispatch_counter;
	if (r->victim)
		loop__unwatch(r->l, r->victim);
}

START_TEST(test_watch_read)
{
	struct loop l;
	struct loop_watcher w;
	struct io_rec r = {0};
	int sv[2];

	pair(sv);
	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	ck_assert_int_eq(loop__watch(&l, &w, sv[0], LOOP_READ, io_cb, &r), 0);
	ck_assert_int_eq(w.fd, sv[0]);
	ck_assert_uint_eq(w.events, LOOP_READ);

	/* Nothing to read: nothing dispatched. */
	ck_assert_int_eq(loop__poll(&l, 0), 0);
	ck_assert_int_eq(r.calls, 0);

	put_byte(sv[1]);
	ck_assert_int_eq(loop__poll(&l, DEADLINE_MS), 1);
	ck_assert_int_eq(r.calls, 1);
	ck_assert(r.last_events & LOOP_READ);
	ck_assert(!(r.last_events & LOOP_WRITE)); /* not asked for */
	ck_assert(!(r.last_events & LOOP_ERROR));
	ck_assert_ptr_eq(r.last_w, &w);
	ck_assert_ptr_eq(r.last_data, &r);

	/* Level-triggered: still readable, dispatched again. */
	ck_assert_int_eq(loop__poll(&l, 0), 1);
	ck_assert_int_eq(r.calls, 2);

	take_byte(sv[0]);
	ck_assert_int_eq(loop__poll(&l, 0), 0);
	ck_assert_int_eq(r.calls, 2);

	/* Hang-up: readable (EOF) and flagged as an error/hang-up. */
	close(sv[1]);
	ck_assert_int_eq(loop__poll(&l, DEADLINE_MS), 1);
	ck_assert_int_eq(r.calls, 3);
	ck_assert(r.last_events & LOOP_READ);
	ck_assert(r.last_events & LOOP_ERROR);

	loop__unwatch(&l, &w);
	close(sv[0]);
	loop__fini(&l);
}
END_TEST

START_TEST(test_watch_set_write)
{
	struct loop l;
	struct loop_watcher w;
	struct io_rec r = {0};
	int sv[2];

	pair(sv);
	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	ck_assert_int_eq(loop__watch(&l, &w, sv[0], LOOP_READ, io_cb, &r), 0);

	/* The socket is writable, but only reading was asked for. */
	ck_assert_int_eq(loop__poll(&l, 0), 0);
	ck_assert_int_eq(r.calls, 0);

	ck_assert_int_eq(loop__set(&l, &w, LOOP_READ | LOOP_WRITE), 0);
	ck_assert_uint_eq(w.events, LOOP_READ | LOOP_WRITE);
	ck_assert_int_eq(loop__poll(&l, DEADLINE_MS), 1);
	ck_assert_int_eq(r.calls, 1);
	ck_assert(r.last_events & LOOP_WRITE);
	ck_assert(!(r.last_events & LOOP_READ));

	/* Unchanged interest: a no-op that succeeds. */
	ck_assert_int_eq(loop__set(&l, &w, LOOP_READ | LOOP_WRITE), 0);
	ck_assert_int_eq(loop__poll(&l, 0), 1);
	ck_assert_int_eq(r.calls, 2);

	/* Both ready at once. */
	put_byte(sv[1]);
	ck_assert_int_eq(loop__poll(&l, 0), 1);
	ck_assert_int_eq(r.calls, 3);
	ck_assert_uint_eq(r.last_events & (LOOP_READ | LOOP_WRITE),
	                  LOOP_READ | LOOP_WRITE);
	take_byte(sv[0]);

	/* Write interest removed: no more dispatch. */
	ck_assert_int_eq(loop__set(&l, &w, LOOP_READ), 0);
	ck_assert_uint_eq(w.events, LOOP_READ);
	ck_assert_int_eq(loop__poll(&l, 0), 0);
	ck_assert_int_eq(r.calls, 3);

	/* No interest at all: pending input is not dispatched. */
	ck_assert_int_eq(loop__set(&l, &w, 0), 0);
	put_byte(sv[1]);
	ck_assert_int_eq(loop__poll(&l, 0), 0);
	ck_assert_int_eq(r.calls, 3);
	ck_assert_int_eq(loop__set(&l, &w, LOOP_READ), 0);
	ck_assert_int_eq(loop__poll(&l, 0), 1);
	ck_assert_int_eq(r.calls, 4);

	/* set on an unwatched watcher is a harmless no-op. */
	loop__unwatch(&l, &w);
	ck_assert_int_eq(loop__set(&l, &w, LOOP_WRITE), 0);
	ck_assert_int_eq(w.fd, -1);
	ck_assert_int_eq(loop__poll(&l, 0), 0);
	ck_assert_int_eq(r.calls, 4);

	close(sv[0]);
	close(sv[1]);
	loop__fini(&l);
}
END_TEST

START_TEST(test_watch_twice_eexist)
{
	struct loop l;
	struct loop_watcher w, w2;
	struct io_rec r = {0}, r2 = {0};
	int sv[2];

	pair(sv);
	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	ck_assert_int_eq(loop__watch(&l, &w, sv[0], LOOP_READ, io_cb, &r), 0);
	errno = 0;
	int rc = loop__watch(&l, &w2, sv[0], LOOP_READ, io_cb, &r2);
	int err = errno, w2fd = w2.fd;
	/* The first registration is intact. */
	put_byte(sv[1]);
	int n = loop__poll(&l, DEADLINE_MS);

	loop__unwatch(&l, &w2); /* not watched: safe */
	loop__unwatch(&l, &w);
	close(sv[0]);
	close(sv[1]);
	loop__fini(&l);
	ck_assert_msg(rc == TCPCHAT_ESYS && err == EEXIST,
	              "watching a watched fd again: rc %d, errno %d", rc, err);
	ck_assert_int_eq(w2fd, -1);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(r2.calls, 0);
}
END_TEST

START_TEST(test_unwatch)
{
	struct loop l;
	struct loop_watcher w;
	struct io_rec r = {0};
	int sv[2];

	pair(sv);
	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	ck_assert_int_eq(loop__watch(&l, &w, sv[0], LOOP_READ, io_cb, &r), 0);
	put_byte(sv[1]);
	ck_assert_int_eq(loop__poll(&l, DEADLINE_MS), 1);
	ck_assert_int_eq(r.calls, 1);

	loop__unwatch(&l, &w);
	ck_assert_int_eq(w.fd, -1);
	ck_assert_int_eq(loop__poll(&l, 0), 0);
	ck_assert_int_eq(r.calls, 1);
	loop__unwatch(&l, &w); /* twice: safe */

	/* The fd can be watched again, and is then dispatched again. */
	ck_assert_int_eq(loop__watch(&l, &w, sv[0], LOOP_READ, io_cb, &r), 0);
	ck_assert_int_eq(loop__poll(&l, DEADLINE_MS), 1);
	ck_assert_int_eq(r.calls, 2);
	loop__unwatch(&l, &w);

	close(sv[0]);
	close(sv[1]);
	loop__fini(&l);
}
END_TEST

/* Two watchers ready in the same wait; whichever runs first unwatches the
 * other, which must then not be dispatched. */
START_TEST(test_unwatch_other_in_callback)
{
	struct loop l;
	struct loop_watcher wa, wb;
	struct io_rec ra = {0}, rb = {0};
	int a[2], b[2];

	pair(a);
	pair(b);
	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	ra.l = rb.l = &l;
	ra.victim = &wb;
	rb.victim = &wa;
	ck_assert_int_eq(loop__watch(&l, &wa, a[0], LOOP_READ, io_cb, &ra), 0);
	ck_assert_int_eq(loop__watch(&l, &wb, b[0], LOOP_READ, io_cb, &rb), 0);
	put_byte(a[1]);
	put_byte(b[1]);
	/* Both are ready before the wait, so they come in one batch. */
	int n = loop__poll(&l, DEADLINE_MS);
	int both = ra.calls + rb.calls;
	int one_left = (wa.fd < 0) != (wb.fd < 0);

	/* The survivor keeps working; the victim stays silent. */
	struct io_rec *surv = ra.calls ? &ra : &rb;
	surv->victim = NULL;
	int n2 = loop__poll(&l, 0);
	int both2 = ra.calls + rb.calls, surv2 = surv->calls;

	loop__unwatch(&l, &wa);
	loop__unwatch(&l, &wb);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	loop__fini(&l);
	ck_assert_int_eq(both, 1);
	ck_assert(one_left);
	ck_assert_msg(n == 1,
	              "loop__poll returned %d with 1 watcher dispatched", n);
	ck_assert_int_eq(n2, 1);
	ck_assert_int_eq(both2, 2);
	ck_assert_int_eq(surv2, 2);
}
END_TEST

/* A callback that unwatches itself is fine, and others in the batch still
 * run. */
static void self_unwatch_cb(struct loop_watcher *w, unsigned events)
{
	struct io_rec *r = w->data;
	TC_UNUSED(events);
	r->calls++;
	loop__unwatch(r->l, w);
}

START_TEST(test_unwatch_self_in_callback)
{
	enum { N = 8 };
	struct loop l;
	struct loop_watcher w[N];
	struct io_rec r[N];
	int sv[N][2];

	memset(r, 0, sizeof r);
	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	for (int i = 0; i < N; i++) {
		pair(sv[i]);
		r[i].l = &l;
		ck_assert_int_eq(loop__watch(&l, &w[i], sv[i][0], LOOP_READ,
		                             self_unwatch_cb, &r[i]),
		                 0);
		put_byte(sv[i][1]);
	}
	ck_assert_int_eq(loop__poll(&l, DEADLINE_MS), N);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(r[i].calls, 1);
		ck_assert_int_eq(w[i].fd, -1);
	}
	ck_assert_int_eq(loop__poll(&l, 0), 0);
	for (int i = 0; i < N; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	loop__fini(&l);
}
END_TEST

/* Many watchers, half of them removed from the middle: each of the others
 * is dispatched once per wait with its own fd and data. */
struct many_rec {
	int calls;
	int fd;
	int bad;
};

static void many_cb(struct loop_watcher *w, unsigned events)
{
	struct many_rec *r = w->data;
	r->calls++;
	if (w->fd != r->fd || !(events & LOOP_READ))
		r->bad++;
}

START_TEST(test_many_watchers)
{
	enum { N = 150 };
	static struct loop_watcher w[N];
	static struct many_rec r[N];
	static int sv[N][2];
	struct loop l;
	uint32_t seed = 12345;

	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	for (int i = 0; i < N; i++) {
		pair(sv[i]);
		r[i] = (struct many_rec){0, sv[i][0], 0};
		ck_assert_int_eq(loop__watch(&l, &w[i], sv[i][0], LOOP_READ,
		                             many_cb, &r[i]),
		                 0);
	}
	/* Remove a pseudo-random half, in a scattered order. */
	int removed = 0;
	for (int k = 0; k < N; k++) {
		seed = seed * 1103515245u + 12345u;
		int i = (int)((seed >> 16) % N);
		if (w[i].fd >= 0 && removed < N / 2) {
			loop__unwatch(&l, &w[i]);
			removed++;
		}
	}
	for (int i = 0; i < N; i++)
		put_byte(sv[i][1]);
	for (int round = 1; round <= 3; round++) {
		ck_assert_int_eq(loop__poll(&l, DEADLINE_MS), N - removed);
		for (int i = 0; i < N; i++) {
			ck_assert_int_eq(r[i].bad, 0);
			ck_assert_int_eq(r[i].calls, w[i].fd >= 0 ? round : 0);
		}
	}
	for (int i = 0; i < N; i++) {
		loop__unwatch(&l, &w[i]);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	loop__fini(&l);
}
END_TEST

/* More watchers ready than one wait takes (POLL_BATCH is 256): none may
 * starve while the others stay ready. */
START_TEST(test_no_starvation_over_batch)
{
	enum { N = 600 };
	static struct loop_watcher w[N];
	static struct many_rec r[N];
	static int fds[N];
	struct loop l;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	put_byte(p[1]); /* every duplicate of p[0] stays readable */
	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	for (int i = 0; i < N; i++) {
		fds[i] = dup(p[0]);
		ck_assert_int_ge(fds[i], 0);
		r[i] = (struct many_rec){0, fds[i], 0};
		ck_assert_int_eq(loop__watch(&l, &w[i], fds[i], LOOP_READ,
		                             many_cb, &r[i]),
		                 0);
	}
	/* However a wait is batched, a few waits must reach everyone. */
	int total = 0;
	for (int round = 0; round < 8; round++) {
		int n = loop__poll(&l, DEADLINE_MS);
		ck_assert_int_gt(n, 0);
		total += n;
	}
	int starved = 0, bad = 0;
	for (int i = 0; i < N; i++) {
		bad += r[i].bad;
		if (r[i].calls == 0)
			starved++;
	}
	for (int i = 0; i < N; i++) {
		loop__unwatch(&l, &w[i]);
		close(fds[i]);
	}
	close(p[0]);
	close(p[1]);
	loop__fini(&l);
	ck_assert_int_ge(total, N);
	ck_assert_int_eq(bad, 0);
	ck_assert_msg(starved == 0,
	              "%d of %d always-ready watchers never dispatched in 8 "
	              "waits (%d dispatches)",
	              starved, N, total);
}
END_TEST

/* ---- timers -------------------------------------------------------------- */

struct tm_rec {
	int fired;
	int64_t fired_now; /* loop time at the (last) firing */
	int armed_in_cb;
	int64_t due_in_cb;
	struct loop *l;
	int order; /* position in the global firing order */
	/* actions from inside the callback */
	int stop_self;
	struct loop_timer *arm_other; /* armed for "now" */
	int rearm_self_now;
};

static int fire_counter;

static void tm_cb(struct loop_timer *t)
{
	struct tm_rec *r = t->data;
	r->fired++;
	r->fired_now = r->l->now;
	r->armed_in_cb = loop__timer_armed(t);
	r->due_in_cb = t->due;
	r->order = ++fire_counter;
	if (r->stop_self)
		loop__timer_stop(r->l, t);
	if (r->arm_other)
		ck_assert_int_eq(loop__timer_start(r->l, r->arm_other, 0, 0),
		                 0);
	if (r->rearm_self_now)
		ck_assert_int_eq(loop__timer_start(r->l, t, 0, 0), 0);
}

static void check_heap(const struct loop *l)
{
	uint32_t bad_idx = 0, bad_order = 0;
	for (uint32_t i = 0; i < l->nheap; i++) {
		bad_idx += l->heap[i]->idx != i + 1;
		bad_order += i && l->heap[(i - 1) / 2]->due > l->heap[i]->due;
	}
	ck_assert_uint_eq(bad_idx, 0);
	ck_assert_uint_eq(bad_order, 0);
}

START_TEST(test_timer_oneshot_realtime)
{
	struct loop l;
	struct loop_timer t;
	struct tm_rec r = {0};

	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	r.l = &l;
	loop__timer_init(&t, tm_cb, &r);
	ck_assert(!loop__timer_armed(&t));
	int64_t t0 = loop__update_now(&l);
	ck_assert_int_eq(l.now, t0);
	ck_assert_int_eq(loop__timer_start(&l, &t, 40, 0), 0);
	ck_assert(loop__timer_armed(&t));
	ck_assert_int_eq(t.due, t0 + 40);

	loop__run_timers(&l); /* now < due */
	ck_assert_int_eq(r.fired, 0);

	int waits = 0;
	while (!r.fired) {
		ck_assert_msg(util__now_ms() - t0 < DEADLINE_MS,
		              "timer never fired");
		int to = loop__timeout_ms(&l, DEADLINE_MS);
		ck_assert_int_ge(to, 0);
		ck_assert_int_le(to, 40);
		loop__poll(&l, to);
		loop__run_timers(&l);
		if (!r.fired)
			ck_assert_int_lt(l.now, t.due); /* not due: not run */
		waits++;
	}
	ck_assert_int_eq(r.fired, 1);
	ck_assert_int_ge(r.fired_now, t0 + 40);
	ck_assert_int_ge(util__now_ms() - t0, 40);
	ck_assert(!r.armed_in_cb); /* a one-shot is disarmed before its cb */
	ck_assert(!loop__timer_armed(&t));
	ck_assert_int_eq(loop__timeout_ms(&l, -1), -1);

	/* Once only. */
	l.now += 100000;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 1);
	ck_assert_int_ge(waits, 1);
	loop__fini(&l);
}
END_TEST

START_TEST(test_timer_oneshot_exact)
{
	struct loop l;
	struct loop_timer t;
	struct tm_rec r = {0};

	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	r.l = &l;
	loop__timer_init(&t, tm_cb, &r);
	l.now = 1000000;
	ck_assert_int_eq(loop__timer_start(&l, &t, 250, 0), 0);
	ck_assert_int_eq(t.due, 1000250);
	l.now = 1000249;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 0);
	ck_assert(loop__timer_armed(&t));
	l.now = 1000250;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 1);
	ck_assert_int_eq(r.fired_now, 1000250);
	l.now = 1000251;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 1);

	/* A negative delay means "now". */
	ck_assert_int_eq(loop__timer_start(&l, &t, -5, 0), 0);
	ck_assert_int_eq(t.due, l.now);
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 2);
	loop__fini(&l);
}
END_TEST

START_TEST(test_timer_repeat)
{
	struct loop l;
	struct loop_timer t;
	struct tm_rec r = {0};

	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	r.l = &l;
	loop__timer_init(&t, tm_cb, &r);
	l.now = 5000;
	ck_assert_int_eq(loop__timer_start(&l, &t, 10, 20), 0);
	ck_assert_int_eq(t.period, 20);
	l.now = 5009;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 0);
	l.now = 5010;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 1);
	/* Re-armed before its callback ran. */
	ck_assert(r.armed_in_cb);
	ck_assert_int_eq(r.due_in_cb, 5030);
	ck_assert(loop__timer_armed(&t));
	ck_assert_int_eq(t.due, 5030);

	l.now = 5029;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 1);
	l.now = 5030;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 2);
	ck_assert_int_eq(t.due, 5050);

	/* Far behind: fires once per round, re-armed from now (no burst). */
	l.now = 9000;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 3);
	ck_assert_int_eq(t.due, 9020);

	/* Stopped from inside its own callback: no more firing. */
	r.stop_self = 1;
	l.now = 9020;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 4);
	ck_assert(!loop__timer_armed(&t));
	ck_assert_uint_eq(l.nheap, 0);
	l.now = 20000;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 4);
	loop__fini(&l);
}
END_TEST

START_TEST(test_timer_stop_before_due)
{
	struct loop l;
	struct loop_timer t, never;
	struct tm_rec r = {0}, rn = {0};

	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	r.l = rn.l = &l;
	loop__timer_init(&t, tm_cb, &r);
	loop__timer_init(&never, tm_cb, &rn);
	loop__timer_stop(&l, &never); /* never armed: safe */
	l.now = 100;
	ck_assert_int_eq(loop__timer_start(&l, &t, 10, 0), 0);
	ck_assert_uint_eq(l.nheap, 1);
	loop__timer_stop(&l, &t);
	ck_assert(!loop__timer_armed(&t));
	ck_assert_uint_eq(l.nheap, 0);
	loop__timer_stop(&l, &t); /* twice: safe */
	ck_assert_int_eq(loop__timeout_ms(&l, -1), -1);
	l.now = 1000000;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 0);
	ck_assert_int_eq(rn.fired, 0);

	/* A stopped repeating timer too. */
	ck_assert_int_eq(loop__timer_start(&l, &t, 5, 5), 0);
	loop__timer_stop(&l, &t);
	l.now += 100;
	loop__run_timers(&l);
	ck_assert_int_eq(r.fired, 0);
	loop__fini(&l);
}
END_TEST

START_TEST(test_timer_rearm_reorders)
{
	struct loop l;
	struct loop_timer t[3];
	struct tm_rec r[3];

	memset(r, 0, sizeof r);
	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	l.now = 0;
	for (int i = 0; i < 3; i++) {
		r[i].l = &l;
		loop__timer_init(&t[i], tm_cb, &r[i]);
		ck_assert_int_eq(loop__timer_start(&l, &t[i], 100 * (i + 1), 0),
		                 0);
	}
	ck_assert_ptr_eq(l.heap[0], &t[0]);
	/* C earlier than everyone, A later than everyone. */
	ck_assert_int_eq(loop__timer_at(&l, &t[2], 50), 0);
	ck_assert_ptr_eq(l.heap[0], &t[2]);
	ck_assert_int_eq(loop__timer_at(&l, &t[0], 400), 0);
	ck_assert_uint_eq(l.nheap, 3); /* re-arming does not duplicate */
	check_heap(&l);
	/* start() replaces an earlier arming too. */
	ck_assert_int_eq(loop__timer_start(&l, &t[1], 200, 0), 0);
	ck_assert_uint_eq(l.nheap, 3);

	fire_counter = 0;
	l.now = 100; /* the old due of A: nothing, A moved */
	loop__run_timers(&l);
	ck_assert_int_eq(r[2].fired, 1);
	ck_assert_int_eq(r[0].fired, 0);
	ck_assert_int_eq(r[1].fired, 0);
	l.now = 1000;
	loop__run_timers(&l);
	ck_assert_int_eq(r[0].fired, 1);
	ck_assert_int_eq(r[1].fired, 1);
	ck_assert_int_eq(r[2].order, 1);
	ck_assert_int_eq(r[1].order, 2);
	ck_assert_int_eq(r[0].order, 3);
	ck_assert_uint_eq(l.nheap, 0);
	loop__fini(&l);
}
END_TEST

/* A small generator with a fixed seed, so failures reproduce. */
static uint64_t rng_state;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

struct htm {
	struct loop_timer t;
	int fired;
	int stopped;
};

static int64_t last_due;
static int64_t prev_round_now;
static int order_bad, early_bad, late_bad, total_fired;

/* The checks need the loop time; kept in a global for the callback. */
static struct loop *heap_loop;
static void heap_cb(struct loop_timer *t)
{
	struct htm *h = t->data;
	h->fired++;
	total_fired++;
	if (t->due < last_due)
		order_bad++;
	last_due = t->due;
	if (t->due > heap_loop->now)
		early_bad++; /* fired before it was due */
	if (t->due <= prev_round_now)
		late_bad++; /* should have fired in an earlier round */
}

static void run_heap_rounds(struct loop *l, int64_t until)
{
	prev_round_now = l->now - 1;
	while (l->now < until) {
		l->now += 1 + (int64_t)(rng() % 997);
		last_due = INT64_MIN;
		loop__run_timers(l);
		/* Everything due has run. */
		if (l->nheap)
			ck_assert_int_gt(l->heap[0]->due, l->now);
		prev_round_now = l->now;
	}
}

START_TEST(test_timer_heap_many)
{
	enum { N = 10000 };
	struct htm *h = calloc(N, sizeof *h);
	struct loop l;

	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	heap_loop = &l;
	rng_state = 0x9E3779B97F4A7C15ull;
	order_bad = early_bad = late_bad = total_fired = 0;
	l.now = 1000;
	for (int i = 0; i < N; i++) {
		loop__timer_init(&h[i].t, heap_cb, &h[i]);
		ck_assert_int_eq(
		        loop__timer_start(&l, &h[i].t, 1 + rng() % 100000, 0),
		        0);
	}
	ck_assert_uint_eq(l.nheap, N);
	check_heap(&l);
	/* The next deadline is the smallest due. */
	int64_t min = INT64_MAX;
	for (int i = 0; i < N; i++)
		if (h[i].t.due < min)
			min = h[i].t.due;
	ck_assert_int_eq(l.heap[0]->due, min);

	run_heap_rounds(&l, 1000 + 100001);
	ck_assert_int_eq(total_fired, N);
	ck_assert_int_eq(order_bad, 0);
	ck_assert_int_eq(early_bad, 0);
	ck_assert_int_eq(late_bad, 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(h[i].fired, 1);
	ck_assert_uint_eq(l.nheap, 0);

	/* All due at once: one round, in due order. */
	total_fired = 0;
	for (int i = 0; i < N; i++) {
		h[i].fired = 0;
		ck_assert_int_eq(
		        loop__timer_start(&l, &h[i].t, 1 + rng() % 1000, 0), 0);
	}
	l.now += 5000;
	last_due = INT64_MIN;
	prev_round_now = INT64_MIN;
	loop__run_timers(&l);
	ck_assert_int_eq(total_fired, N);
	ck_assert_int_eq(order_bad, 0);
	ck_assert_int_eq(early_bad, 0);
	loop__fini(&l);
	free(h);
}
END_TEST

START_TEST(test_timer_heap_stop_rearm_random)
{
	enum { N = 10000 };
	struct htm *h = calloc(N, sizeof *h);
	struct loop l;

	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	heap_loop = &l;
	rng_state = 0xD1B54A32D192ED03ull;
	order_bad = early_bad = late_bad = total_fired = 0;
	l.now = 0;
	for (int i = 0; i < N; i++) {
		loop__timer_init(&h[i].t, heap_cb, &h[i]);
		ck_assert_int_eq(
		        loop__timer_start(&l, &h[i].t, 1 + rng() % 50000, 0),
		        0);
	}
	/* Stop a random half (from anywhere in the heap), re-arm a random
	 * quarter earlier or later. */
	int stopped = 0;
	for (int k = 0; k < N; k++) {
		int i = (int)(rng() % N);
		uint32_t what = rng() % 4;
		if (what < 2 && !h[i].stopped) {
			ck_assert(loop__timer_armed(&h[i].t));
			loop__timer_stop(&l, &h[i].t);
			ck_assert(!loop__timer_armed(&h[i].t));
			h[i].stopped = 1;
			stopped++;
		} else if (what == 2 && !h[i].stopped) {
			ck_assert_int_eq(
			        loop__timer_at(&l, &h[i].t, 1 + rng() % 50000),
			        0);
		}
		if (k % 1000 == 0)
			check_heap(&l);
	}
	check_heap(&l);
	ck_assert_uint_eq(l.nheap, (uint32_t)(N - stopped));
	ck_assert_int_gt(stopped, N / 4);

	run_heap_rounds(&l, 50001);
	ck_assert_int_eq(total_fired, N - stopped);
	ck_assert_int_eq(order_bad, 0);
	ck_assert_int_eq(early_bad, 0);
	ck_assert_int_eq(late_bad, 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(h[i].fired, h[i].stopped ? 0 : 1);
	ck_assert_uint_eq(l.nheap, 0);
	loop__fini(&l);
	free(h);
}
END_TEST

START_TEST(test_timeout_ms)
{
	struct loop l;
	struct loop_timer t, u;
	struct tm_rec r = {0};

	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	r.l = &l;
	loop__timer_init(&t, tm_cb, &r);
	loop__timer_init(&u, tm_cb, &r);
	ck_assert_int_eq(loop__timeout_ms(&l, -1), -1);
	ck_assert_int_eq(loop__timeout_ms(&l, 100), -1);
	ck_assert_int_eq(loop__timeout_ms(&l, 0), -1);

	loop__update_now(&l);
	ck_assert_int_eq(loop__timer_start(&l, &t, 5000, 0), 0);
	int to = loop__timeout_ms(&l, -1);
	ck_assert_int_gt(to, 0);
	ck_assert_int_le(to, 5000);
	ck_assert_int_eq(loop__timeout_ms(&l, 100), 100);
	ck_assert_int_eq(loop__timeout_ms(&l, 0), 0);

	/* The earliest timer counts. */
	ck_assert_int_eq(loop__timer_start(&l, &u, 1000, 0), 0);
	to = loop__timeout_ms(&l, -1);
	ck_assert_int_gt(to, 0);
	ck_assert_int_le(to, 1000);

	/* Overdue: 0. */
	ck_assert_int_eq(loop__timer_at(&l, &u, l.now - 10), 0);
	ck_assert_int_eq(loop__timeout_ms(&l, -1), 0);
	ck_assert_int_eq(loop__timeout_ms(&l, 50), 0);

	/* Very far: clamped to an int. */
	loop__timer_stop(&l, &u);
	ck_assert_int_eq(loop__timer_at(&l, &t, l.now + (INT64_C(1) << 40)), 0);
	ck_assert_int_eq(loop__timeout_ms(&l, -1), INT32_MAX);
	ck_assert_int_eq(loop__timeout_ms(&l, 7), 7);

	loop__timer_stop(&l, &t);
	ck_assert_int_eq(loop__timeout_ms(&l, -1), -1);
	loop__fini(&l);
}
END_TEST

/* A timer armed for "now" by a callback waits for the next round. */
START_TEST(test_run_timers_same_round_alone)
{
	struct loop l;
	struct loop_timer a, b;
	struct tm_rec ra = {0}, rb = {0};

	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	ra.l = rb.l = &l;
	loop__timer_init(&a, tm_cb, &ra);
	loop__timer_init(&b, tm_cb, &rb);
	l.now = 100;
	ra.arm_other = &b;
	ck_assert_int_eq(loop__timer_start(&l, &a, 0, 0), 0);
	loop__run_timers(&l);
	ck_assert_int_eq(ra.fired, 1);
	ck_assert(loop__timer_armed(&b));
	ck_assert_int_eq(b.due, 100);
	ck_assert_int_eq(rb.fired, 0); /* not in the same round */
	loop__run_timers(&l);
	ck_assert_int_eq(rb.fired, 1);
	loop__fini(&l);
}
END_TEST

/* The same, while other timers (due or not) are armed: the rule must not
 * depend on how many timers there are. */
START_TEST(test_run_timers_same_round_with_others)
{
	struct loop l;
	struct loop_timer a, b, far, self;
	struct tm_rec ra = {0}, rb = {0}, rf = {0}, rs = {0};

	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	ra.l = rb.l = rf.l = rs.l = &l;
	loop__timer_init(&a, tm_cb, &ra);
	loop__timer_init(&b, tm_cb, &rb);
	loop__timer_init(&far, tm_cb, &rf);
	loop__timer_init(&self, tm_cb, &rs);
	l.now = 100;
	ck_assert_int_eq(loop__timer_start(&l, &far, 100000, 0), 0);
	ra.arm_other = &b;
	ck_assert_int_eq(loop__timer_start(&l, &a, 0, 0), 0);
	loop__run_timers(&l);
	int a1 = ra.fired, b1 = rb.fired;
	loop__run_timers(&l);
	int b2 = rb.fired;

	/* A callback re-arming itself for now runs once per round. */
	rs.rearm_self_now = 1;
	ck_assert_int_eq(loop__timer_start(&l, &self, 0, 0), 0);
	loop__run_timers(&l);
	int s1 = rs.fired;
	loop__run_timers(&l);
	int s2 = rs.fired;
	loop__timer_stop(&l, &self);
	loop__timer_stop(&l, &far);
	loop__timer_stop(&l, &b);
	loop__fini(&l); /* before asserting: nothing leaks on failure */

	ck_assert_int_eq(a1, 1);
	ck_assert_msg(b1 == 0,
	              "a timer armed for now by a callback ran in the same "
	              "round (another timer was armed)");
	ck_assert_int_eq(b2, 1);
	ck_assert_msg(s1 == 1 && s2 == 2,
	              "a timer re-arming itself for now ran %d time(s) in "
	              "one round, %d in two",
	              s1, s2);
	ck_assert_int_eq(rf.fired, 0);
}
END_TEST

/* ---- wakeup -------------------------------------------------------------- */

struct wake_rec {
	atomic_int calls;
	void *data;
	int seq;
};

static void on_wake(struct loop *l, void *data)
{
	TC_UNUSED(l);
	struct wake_rec *w = data;
	atomic_fetch_add(&w->calls, 1);
	w->data = data;
	w->seq = ++dispatch_counter;
}

/* State of a thread from /proc: 'S' while blocked in a wait. */
static char thread_state(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return '?';
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

struct waker {
	struct loop *l;
	pid_t main_tid;
	int watchdog_fd;
	atomic_int done;
	atomic_int woke;
};

static void *waker_main(void *arg)
{
	struct waker *k = arg;
	/* Best effort: wake once the main thread is blocked in its wait
	 * (the result must be the same if it is not yet). */
	int64_t until = util__now_ms() + 2000;
	while (thread_state(k->main_tid) != 'S' && util__now_ms() < until)
		nap_ms(1);
	nap_ms(5);
	loop__wake(k->l);
	atomic_store(&k->woke, 1);
	/* Watchdog: if the wait did not return, end it another way so
	 * that the test fails instead of hanging. */
	until = util__now_ms() + DEADLINE_MS;
	while (!atomic_load(&k->done) && util__now_ms() < until)
		nap_ms(1);
	if (!atomic_load(&k->done)) {
		char c = 'w';
		ssize_t n = write(k->watchdog_fd, &c, 1);
		TC_UNUSED(n);
	}
	return NULL;
}

START_TEST(test_wake_from_thread)
{
	struct loop l;
	struct wake_rec wr = {0};
	struct loop_watcher wd;
	struct io_rec rd = {0};
	struct waker k;
	pthread_t th;
	int wdp[2];

	ck_assert_int_eq(pipe(wdp), 0);
	ck_assert_int_eq(loop__init(&l, on_wake, &wr), 0);
	ck_assert_int_eq(loop__watch(&l, &wd, wdp[0], LOOP_READ, io_cb, &rd),
	                 0);
	memset(&k, 0, sizeof k);
	k.l = &l;
	k.main_tid = (pid_t)syscall(SYS_gettid);
	k.watchdog_fd = wdp[1];
	ck_assert_int_eq(pthread_create(&th, NULL, waker_main, &k), 0);
	int n = loop__poll(&l, -1);
	atomic_store(&k.done, 1);
	pthread_join(th, NULL);
	ck_assert_msg(rd.calls == 0, "loop__wake did not end the wait");
	ck_assert_int_eq(n, 0); /* the wakeup is not a dispatched watcher */
	ck_assert_int_eq(atomic_load(&k.woke), 1);
	ck_assert_int_eq(atomic_load(&wr.calls), 1);
	ck_assert_ptr_eq(wr.data, &wr);

	/* Consumed: the next look finds nothing. */
	ck_assert_int_eq(loop__poll(&l, 0), 0);
	ck_assert_int_eq(atomic_load(&wr.calls), 1);
	ck_assert_int_eq(atomic_load(&l.wake_pending), 0);

	loop__unwatch(&l, &wd);
	close(wdp[0]);
	close(wdp[1]);
	loop__fini(&l);
}
END_TEST

/* The wake callback runs before the watchers of the same wait. */
START_TEST(test_wake_before_watchers)
{
	struct loop l;
	struct wake_rec wr = {0};
	struct loop_watcher w;
	struct io_rec r = {0};
	int sv[2];

	pair(sv);
	ck_assert_int_eq(loop__init(&l, on_wake, &wr), 0);
	ck_assert_int_eq(loop__watch(&l, &w, sv[0], LOOP_READ, io_cb, &r), 0);
	put_byte(sv[1]);
	loop__wake(&l);
	dispatch_counter = 0;
	ck_assert_int_eq(loop__poll(&l, DEADLINE_MS), 1);
	ck_assert_int_eq(atomic_load(&wr.calls), 1);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(wr.seq, 1);
	ck_assert_int_eq(r.seq, 2);
	/* Only the watcher the next time. */
	ck_assert_int_eq(loop__poll(&l, 0), 1);
	ck_assert_int_eq(atomic_load(&wr.calls), 1);
	ck_assert_int_eq(r.calls, 2);
	loop__unwatch(&l, &w);
	close(sv[0]);
	close(sv[1]);
	loop__fini(&l);
}
END_TEST

/* Many wakes before a wait: one write, one callback, and the next wake
 * still works. */
START_TEST(test_wake_coalesce)
{
	struct loop l;
	struct wake_rec wr = {0};

	ck_assert_int_eq(loop__init(&l, on_wake, &wr), 0);
	ck_assert_int_eq(atomic_load(&l.wake_pending), 0);
	for (int i = 0; i < 1000; i++)
		loop__wake(&l);
	ck_assert_int_eq(atomic_load(&l.wake_pending), 1);

	/* Exactly one write reached the descriptor.  (Read it, then put
	 * it back.) */
	if (l.wake_rfd == l.wake_wfd) {
		uint64_t v = 0;
		ck_assert_int_eq(read(l.wake_rfd, &v, sizeof v), sizeof v);
		ck_assert_uint_eq(v, 1);
		ck_assert_int_eq(write(l.wake_wfd, &v, sizeof v), sizeof v);
	} else {
		char buf[64];
		ck_assert_int_eq(read(l.wake_rfd, buf, sizeof buf), 1);
		ck_assert_int_eq(write(l.wake_wfd, buf, 1), 1);
	}

	ck_assert_int_eq(loop__poll(&l, DEADLINE_MS), 0);
	ck_assert_int_eq(atomic_load(&wr.calls), 1);
	ck_assert_int_eq(atomic_load(&l.wake_pending), 0);
	ck_assert_int_eq(loop__poll(&l, 0), 0);
	ck_assert_int_eq(atomic_load(&wr.calls), 1);

	/* Not stuck after coalescing. */
	loop__wake(&l);
	ck_assert_int_eq(loop__poll(&l, DEADLINE_MS), 0);
	ck_assert_int_eq(atomic_load(&wr.calls), 2);
	loop__fini(&l);
}
END_TEST

/* Ping-pong: the other thread wakes, waits for the loop to see it, and
 * again, many times.  A lost wakeup shows as a wait that times out. */
struct pingpong {
	struct loop *l;
	int rounds;
	atomic_int seq;   /* set by the thread before each wake */
	atomic_int ack;   /* set by the loop side */
	atomic_int quit;  /* the loop side gave up */
	atomic_int stuck; /* the thread timed out waiting for an ack */
};

static void *pingpong_main(void *arg)
{
	struct pingpong *p = arg;
	for (int i = 1; i <= p->rounds; i++) {
		atomic_store(&p->seq, i);
		loop__wake(p->l);
		int64_t until = util__now_ms() + DEADLINE_MS;
		while (atomic_load(&p->ack) < i && !atomic_load(&p->quit)) {
			if (util__now_ms() > until) {
				atomic_store(&p->stuck, 1);
				return NULL;
			}
			sched_yield();
		}
		if (atomic_load(&p->quit))
			return NULL;
	}
	return NULL;
}

START_TEST(test_wake_none_lost)
{
	struct loop l;
	struct wake_rec wr = {0};
	struct pingpong p;
	pthread_t th;

	ck_assert_int_eq(loop__init(&l, on_wake, &wr), 0);
	memset(&p, 0, sizeof p);
	p.l = &l;
	p.rounds = 3000;
	ck_assert_int_eq(pthread_create(&th, NULL, pingpong_main, &p), 0);
	int lost = 0;
	while (atomic_load(&p.ack) < p.rounds && !atomic_load(&p.stuck)) {
		int64_t t0 = util__now_ms();
		int before = atomic_load(&wr.calls);
		int n = loop__poll(&l, DEADLINE_MS);
		if (n < 0)
			break;
		int seq = atomic_load(&p.seq);
		if (atomic_load(&wr.calls) == before) {
			if (util__now_ms() - t0 >= DEADLINE_MS - 100) {
				lost = 1; /* waited it out with a wake due */
				break;
			}
			continue; /* interrupted: no wake seen */
		}
		if (seq > atomic_load(&p.ack))
			atomic_store(&p.ack, seq);
	}
	atomic_store(&p.quit, 1);
	pthread_join(th, NULL);
	ck_assert_msg(!lost, "a wakeup was lost (ack %d of %d)",
	              atomic_load(&p.ack), p.rounds);
	ck_assert_int_eq(atomic_load(&p.stuck), 0);
	ck_assert_int_eq(atomic_load(&p.ack), p.rounds);
	/* Coalesced at most to one call per round, at least one per round
	 * (each round waits for the loop to see it). */
	ck_assert_int_eq(atomic_load(&wr.calls), p.rounds);
	loop__fini(&l);
}
END_TEST

/* ---- commands ------------------------------------------------------------ */

struct tcmd {
	struct loop_cmd node; /* first member */
	int producer;
	int seq;
	int taken;
};

struct producer {
	struct loop *l;
	struct tcmd *cmds;
	int n;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	for (int i = 0; i < p->n; i++) {
		loop__post(p->l, &p->cmds[i].node);
		if (i % 64 == 0)
			sched_yield(); /* interleave with the other one */
	}
	return NULL;
}

START_TEST(test_post_take_order)
{
	enum { N = 20000, P = 2 };
	struct loop l;
	struct wake_rec wr = {0};
	struct producer pr[P];
	pthread_t th[P];
	struct tcmd *cmds = calloc((size_t)N * P, sizeof *cmds);

	ck_assert_ptr_nonnull(cmds);
	ck_assert_int_eq(loop__init(&l, on_wake, &wr), 0);
	ck_assert_ptr_null(loop__take(&l));
	for (int p = 0; p < P; p++) {
		for (int i = 0; i < N; i++) {
			cmds[p * N + i].producer = p;
			cmds[p * N + i].seq = i;
		}
		pr[p] = (struct producer){&l, cmds + p * N, N};
	}
	for (int p = 0; p < P; p++)
		ck_assert_int_eq(
		        pthread_create(&th[p], NULL, producer_main, &pr[p]), 0);

	int next[P] = {0}, taken = 0, bad_order = 0, dup = 0, lost = 0;
	int64_t deadline = util__now_ms() + 2 * DEADLINE_MS;
	while (taken < N * P && util__now_ms() < deadline) {
		int64_t t0 = util__now_ms();
		if (loop__poll(&l, DEADLINE_MS) < 0)
			break;
		int64_t waited = util__now_ms() - t0;
		struct loop_cmd *c = loop__take(&l);
		if (c && waited >= DEADLINE_MS - 100)
			lost = 1; /* commands were waiting, no wake came */
		while (c) {
			struct loop_cmd *nx = c->next;
			struct tcmd *k = (struct tcmd *)c;
			if (k->taken++)
				dup++;
			if (k->seq != next[k->producer])
				bad_order++;
			next[k->producer] = k->seq + 1;
			taken++;
			c = nx;
		}
	}
	for (int p = 0; p < P; p++)
		pthread_join(th[p], NULL);
	/* Whatever is left (only on failure) is taken so nothing dangles. */
	for (struct loop_cmd *c = loop__take(&l); c; c = c->next)
		taken++;
	ck_assert_int_eq(lost, 0);
	ck_assert_int_eq(dup, 0);
	ck_assert_int_eq(bad_order, 0);
	ck_assert_int_eq(taken, N * P);
	for (int i = 0; i < N * P; i++)
		ck_assert_int_eq(cmds[i].taken, 1);
	ck_assert_ptr_null(loop__take(&l));
	ck_assert_int_ge(atomic_load(&wr.calls), 1);
	loop__fini(&l);
	free(cmds);
}
END_TEST

START_TEST(test_post_take_single_thread)
{
	struct loop l;
	struct wake_rec wr = {0};
	struct tcmd c[3];

	memset(c, 0, sizeof c);
	ck_assert_int_eq(loop__init(&l, on_wake, &wr), 0);
	for (int i = 0; i < 3; i++) {
		c[i].seq = i;
		c[i].node.next = (struct loop_cmd *)&c[0]; /* garbage */
		loop__post(&l, &c[i].node);
	}
	/* A post wakes the loop. */
	ck_assert_int_eq(loop__poll(&l, DEADLINE_MS), 0);
	ck_assert_int_eq(atomic_load(&wr.calls), 1);
	struct loop_cmd *h = loop__take(&l);
	ck_assert_ptr_eq(h, &c[0].node);
	ck_assert_ptr_eq(h->next, &c[1].node);
	ck_assert_ptr_eq(h->next->next, &c[2].node);
	ck_assert_ptr_null(h->next->next->next);
	ck_assert_ptr_null(loop__take(&l));
	/* The queue is usable again after being emptied. */
	loop__post(&l, &c[1].node);
	h = loop__take(&l);
	ck_assert_ptr_eq(h, &c[1].node);
	ck_assert_ptr_null(h->next);
	loop__fini(&l);
}
END_TEST

/* ---- host-driven fd ------------------------------------------------------ */

START_TEST(test_loop_fd)
{
	struct loop l;
	struct loop_watcher w;
	struct io_rec r = {0};
	int sv[2];

	pair(sv);
	ck_assert_int_eq(loop__init(&l, NULL, NULL), 0);
	int fd = loop__fd(&l);
#if TCPCHAT_USE_EPOLL
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(loop__watch(&l, &w, sv[0], LOOP_READ, io_cb, &r), 0);
	ck_assert(!fd_readable(fd));
	put_byte(sv[1]);
	ck_assert(fd_readable(fd));
	ck_assert_int_eq(loop__poll(&l, 0), 1);
	take_byte(sv[0]);
	ck_assert(!fd_readable(fd));
	/* A wakeup makes it readable too, until the loop drains it. */
	loop__wake(&l);
	ck_assert(fd_readable(fd));
	ck_assert_int_eq(loop__poll(&l, 0), 0);
	ck_assert(!fd_readable(fd));
	loop__unwatch(&l, &w);
#else
	ck_assert_int_eq(fd, TCPCHAT_ENOTSUP);
	TC_UNUSED(w);
	TC_UNUSED(r);
	TC_UNUSED(fd_readable);
	TC_UNUSED(take_byte);
#endif
	close(sv[0]);
	close(sv[1]);
	loop__fini(&l);
	ck_assert_int_eq(l.epfd, -1);
	ck_assert_int_eq(l.wake_rfd, -1);
	ck_assert_int_eq(l.wake_wfd, -1);
}
END_TEST

static Suite *loop_suite(void)
{
	Suite *s = suite_create("loop");
	TCase *tc;

	tc = tcase_create("watch");
	tcase_add_test(tc, test_watch_read);
	tcase_add_test(tc, test_watch_set_write);
	tcase_add_test(tc, test_watch_twice_eexist);
	tcase_add_test(tc, test_unwatch);
	tcase_add_test(tc, test_unwatch_other_in_callback);
	tcase_add_test(tc, test_unwatch_self_in_callback);
	tcase_add_test(tc, test_many_watchers);
	tcase_add_test(tc, test_no_starvation_over_batch);
	suite_add_tcase(s, tc);

	tc = tcase_create("timer");
	tcase_add_test(tc, test_timer_oneshot_realtime);
	tcase_add_test(tc, test_timer_oneshot_exact);
	tcase_add_test(tc, test_timer_repeat);
	tcase_add_test(tc, test_timer_stop_before_due);
	tcase_add_test(tc, test_timer_rearm_reorders);
	tcase_add_test(tc, test_timer_heap_many);
	tcase_add_test(tc, test_timer_heap_stop_rearm_random);
	tcase_add_test(tc, test_timeout_ms);
	tcase_add_test(tc, test_run_timers_same_round_alone);
	tcase_add_test(tc, test_run_timers_same_round_with_others);
	suite_add_tcase(s, tc);

	tc = tcase_create("wake");
	tcase_add_test(tc, test_wake_from_thread);
	tcase_add_test(tc, test_wake_before_watchers);
	tcase_add_test(tc, test_wake_coalesce);
	tcase_add_test(tc, test_wake_none_lost);
	tcase_add_test(tc, test_post_take_order);
	tcase_add_test(tc, test_post_take_single_thread);
	tcase_add_test(tc, test_loop_fd);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(loop_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
