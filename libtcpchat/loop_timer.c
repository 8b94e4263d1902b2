/* libtcpchat - loop timers: a binary min-heap of armed timers ordered by
 * due time, so the next deadline is O(1) and arming or disarming is
 * O(log n). */
#include <stdlib.h>

#include "internal.h"
#include "loop.h"

static int earlier(const struct loop_timer *a, const struct loop_timer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(struct loop *l, uint32_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->idx = i + 1;
}

static void sift_up(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!earlier(t, l->heap[parent]))
			break;
		place(l, i, l->heap[parent]);
		i = parent;
	}
	place(l, i, t);
}

static void sift_down(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && earlier(l->heap[c + 1], l->heap[c]))
			c++;
		if (!earlier(l->heap[c], t))
			break;
		place(l, i, l->heap[c]);
		i = c;
	}
	place(l, i, t);
}

void loop__timer_init(struct loop_timer *t, loop_timer_fn cb, void *data)
{
	t->due = 0;
	t->period = 0;
	t->seq = 0;
	t->idx = 0;
	t->cb = cb;
	t->data = data;
}

void loop__timer_stop(struct loop *l, struct loop_timer *t)
{
	if (!t->idx)
		return;
	uint32_t i = t->idx - 1;
	t->idx = 0;
	struct loop_timer *last = l->heap[--l->nheap];
	if (i == l->nheap)
		return;
	place(l, i, last);
	if (i > 0 && earlier(last, l->heap[(i - 1) / 2]))
		sift_up(l, i);
	else
		sift_down(l, i);
}

int loop__timer_at(struct loop *l, struct loop_timer *t, int64_t due)
{
	if (t->idx) {
		/* Re-armed: later in every order than before. */
		t->due = due;
		t->seq = ++l->timer_seq;
		sift_up(l, t->idx - 1);
		sift_down(l, t->idx - 1);
		return 0;
	}
	if (l->nheap == l->heap_cap) {
		uint32_t n = l->heap_cap ? l->heap_cap * 2 : 64;
		struct loop_timer **h = realloc(l->heap, (size_t)n * sizeof *h);
		if (!h)
			return TCPCHAT_ENOMEM;
		l->heap = h;
		l->heap_cap = n;
	}
	t->due = due;
	t->seq = ++l->timer_seq;
	place(l, l->nheap++, t);
	sift_up(l, l->nheap - 1);
	return 0;
}

int loop__timer_start(struct loop *l, struct loop_timer *t, int64_t delay_ms,
                      int64_t period_ms)
{
	t->period = period_ms > 0 ? period_ms : 0;
	return loop__timer_at(l, t, l->now + (delay_ms > 0 ? delay_ms : 0));
}

void loop__run_timers(struct loop *l)
{
	/* A timer armed during this round (its seq is newer than the
	 * round) waits for the next one, so a callback that re-arms itself
	 * for "now" cannot starve the loop. */
	int64_t now = l->now;
	uint64_t round = l->timer_seq;
	while (l->nheap && l->heap[0]->due <= now && l->heap[0]->seq <= round) {
		struct loop_timer *t = l->heap[0];
		if (t->period)
			loop__timer_at(l, t, now + t->period);
		else
			loop__timer_stop(l, t);
		t->cb(t);
	}
}

int loop__timeout_ms(struct loop *l, int cap_ms)
{
	if (!l->nheap)
		return -1;
	int64_t d = l->heap[0]->due - util__now_ms();
	if (d < 0)
		d = 0;
	if (cap_ms >= 0 && d > cap_ms)
		d = cap_ms;
	return d > INT32_MAX ? INT32_MAX : (int)d;
}

int64_t loop__update_now(struct loop *l)
{
	l->now = util__now_ms();
	return l->now;
}
