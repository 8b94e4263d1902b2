/* libtcpchat - event loop: watchers over epoll or poll(2), the wakeup and
 * the command queue.  Timers are in loop_timer.c. */
#define _GNU_SOURCE /* ppoll, epoll_pwait2 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "loop.h"

#if TCPCHAT_USE_EPOLL
#include <sys/epoll.h>
#endif
#if TCPCHAT_HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

#define POLL_BATCH 256 /* events taken per wait */

/* ---- wakeup and commands ------------------------------------------------ */

static int wake_open(struct loop *l)
{
#if TCPCHAT_HAVE_EVENTFD
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd >= 0) {
		l->wake_rfd = l->wake_wfd = fd;
		return 0;
	}
#endif
	int p[2];
	if (pipe(p) < 0)
		return TCPCHAT_ESYS;
	if (util__nonblock_cloexec(p[0]) < 0 ||
	    util__nonblock_cloexec(p[1]) < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		errno = e;
		return TCPCHAT_ESYS;
	}
	l->wake_rfd = p[0];
	l->wake_wfd = p[1];
	return 0;
}

static void wake_drain(struct loop *l)
{
	char buf[64];
	/* Drain first, then clear the flag.  Clearing first loses wakeups:
	 * a wake between the clear and the read writes, the read eats that
	 * write, the flag stays set and every later wake is skipped.  A
	 * wake that still sees the flag set posted its work before our
	 * exchange, so the owner (which looks for work after this) sees
	 * it. */
	while (read(l->wake_rfd, buf, sizeof buf) > 0)
		;
	atomic_exchange(&l->wake_pending, 0);
	if (l->on_wake)
		l->on_wake(l, l->wake_data);
}

void loop__wake(struct loop *l)
{
	if (atomic_exchange(&l->wake_pending, 1))
		return;
	int saved = errno;
#if TCPCHAT_HAVE_EVENTFD
	if (l->wake_rfd == l->wake_wfd) {
		uint64_t one = 1;
		ssize_t n = write(l->wake_wfd, &one, sizeof one);
		TC_UNUSED(n);
		errno = saved;
		return;
	}
#endif
	char c = 1;
	ssize_t n = write(l->wake_wfd, &c, 1); /* EAGAIN: already pending */
	TC_UNUSED(n);
	errno = saved;
}

void loop__post(struct loop *l, struct loop_cmd *c)
{
	c->next = NULL;
	pthread_mutex_lock(&l->mu);
	if (l->cmd_tail)
		l->cmd_tail->next = c;
	else
		l->cmd_head = c;
	l->cmd_tail = c;
	pthread_mutex_unlock(&l->mu);
	loop__wake(l);
}

struct loop_cmd *loop__take(struct loop *l)
{
	pthread_mutex_lock(&l->mu);
	struct loop_cmd *c = l->cmd_head;
	l->cmd_head = l->cmd_tail = NULL;
	pthread_mutex_unlock(&l->mu);
	return c;
}

int loop__fd(const struct loop *l)
{
	return l->epfd >= 0 ? l->epfd : TCPCHAT_ENOTSUP;
}

/* ---- poll backend ------------------------------------------------------ */

static short poll_mask(unsigned events)
{
	short m = 0;
	if (events & LOOP_READ)
		m |= POLLIN;
	if (events & LOOP_WRITE)
		m |= POLLOUT;
	return m;
}

static int fdslot_grow(struct loop *l, int fd)
{
	if (fd < l->nfdslot)
		return 0;
	int n = l->nfdslot ? l->nfdslot : 64;
	while (n <= fd)
		n *= 2;
	int *m = realloc(l->fdslot, (size_t)n * sizeof *m);
	if (!m)
		return TCPCHAT_ENOMEM;
	for (int i = l->nfdslot; i < n; i++)
		m[i] = -1;
	l->fdslot = m;
	l->nfdslot = n;
	return 0;
}

static int poll_add(struct loop *l, struct loop_watcher *w)
{
	if (w->fd < 0)
		return TCPCHAT_EINVAL;
	if (fdslot_grow(l, w->fd))
		return TCPCHAT_ENOMEM;
	if (l->fdslot[w->fd] >= 0) {
		errno = EEXIST;
		return TCPCHAT_ESYS;
	}
	if (l->nfds == l->cap) {
		int n = l->cap ? l->cap * 2 : 64;
		struct pollfd *p = realloc(l->pfds, (size_t)n * sizeof *p);
		if (!p)
			return TCPCHAT_ENOMEM;
		l->pfds = p;
		struct loop_watcher **q = realloc(l->pw, (size_t)n * sizeof *q);
		if (!q)
			return TCPCHAT_ENOMEM;
		l->pw = q;
		l->cap = n;
	}
	w->slot = l->nfds++;
	l->pfds[w->slot].fd = w->fd;
	l->pfds[w->slot].events = poll_mask(w->events);
	l->pfds[w->slot].revents = 0;
	l->pw[w->slot] = w;
	l->fdslot[w->fd] = w->slot;
	return 0;
}

static void poll_del(struct loop *l, struct loop_watcher *w)
{
	int i = w->slot;
	int last = --l->nfds;
	if (i != last) {
		l->pfds[i] = l->pfds[last];
		l->pw[i] = l->pw[last];
		l->pw[i]->slot = i;
		l->fdslot[l->pfds[i].fd] = i;
	}
	l->fdslot[w->fd] = -1;
	w->slot = -1;
}

#if !TCPCHAT_HAVE_PPOLL || TCPCHAT_USE_EPOLL
/* Milliseconds, rounded up so that a short wait still waits; -1: none. */
static int ts_ms(const struct timespec *ts)
{
	if (!ts)
		return -1;
	long long v =
	        (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
	return v > INT32_MAX ? INT32_MAX : (int)v;
}
#endif

static int poll_wait(struct loop *l, const struct timespec *ts)
{
#if TCPCHAT_HAVE_PPOLL
	int n = ppoll(l->pfds, (nfds_t)l->nfds, ts, NULL);
#else
	int n = poll(l->pfds, (nfds_t)l->nfds, ts_ms(ts));
#endif
	if (n < 0)
		return errno == EINTR ? 0 : TCPCHAT_ESYS;
	/* Collect first: callbacks add and remove slots.  The scan starts
	 * where the last one stopped, so that with more ready watchers than
	 * a batch holds, every one of them is served in turn. */
	struct loop_watcher *ready[POLL_BATCH];
	unsigned what[POLL_BATCH];
	int cnt = 0, woken = 0, nfds = l->nfds;
	int start = nfds ? l->scan_from % nfds : 0, k;
	for (k = 0; k < nfds && n > 0 && cnt < POLL_BATCH; k++) {
		int i = (start + k) % nfds;
		short r = l->pfds[i].revents;
		if (!r)
			continue;
		n--;
		l->pfds[i].revents = 0;
		if (l->pw[i] == &l->wake_w) {
			woken = 1;
			continue;
		}
		unsigned e = 0;
		if (r & POLLIN)
			e |= LOOP_READ;
		if (r & POLLOUT)
			e |= LOOP_WRITE;
		if (r & (POLLERR | POLLHUP | POLLNVAL))
			e |= LOOP_ERROR;
		ready[cnt] = l->pw[i];
		what[cnt++] = e;
	}
	l->scan_from = nfds ? (start + k) % nfds : 0;
	loop__update_now(l);
	if (woken)
		wake_drain(l);
	int out = 0;
	for (int i = 0; i < cnt; i++)
		if (ready[i]->fd >= 0) {
			ready[i]->cb(ready[i], what[i]);
			out++;
		}
	return out;
}

/* ---- epoll backend ------------------------------------------------------ */

#if TCPCHAT_USE_EPOLL
static uint32_t ep_mask(unsigned events)
{
	uint32_t m = 0;
	if (events & LOOP_READ)
		m |= EPOLLIN | EPOLLRDHUP;
	if (events & LOOP_WRITE)
		m |= EPOLLOUT;
	return m;
}

static int ep_ctl(struct loop *l, int op, struct loop_watcher *w)
{
	struct epoll_event e = {.events = ep_mask(w->events), .data.ptr = w};
	return epoll_ctl(l->epfd, op, w->fd, &e) ? TCPCHAT_ESYS : 0;
}

static int ep_wait(struct loop *l, const struct timespec *ts)
{
	struct epoll_event eev[POLL_BATCH];
#if TCPCHAT_HAVE_EPOLL_PWAIT2
	/* Kernels before 5.11 (and valgrind) do not have it: ENOSYS once,
	 * then milliseconds. */
	int n = -1;
	if (!l->no_pwait2) {
		n = epoll_pwait2(l->epfd, eev, POLL_BATCH, ts, NULL);
		if (n < 0 && errno == ENOSYS)
			l->no_pwait2 = 1;
	}
	if (l->no_pwait2)
		n = epoll_wait(l->epfd, eev, POLL_BATCH, ts_ms(ts));
#else
	int n = epoll_wait(l->epfd, eev, POLL_BATCH, ts_ms(ts));
#endif
	if (n < 0)
		return errno == EINTR ? 0 : TCPCHAT_ESYS;
	loop__update_now(l);
	int out = 0;
	for (int i = 0; i < n; i++)
		if (eev[i].data.ptr == &l->wake_w) {
			wake_drain(l);
			break;
		}
	for (int i = 0; i < n; i++) {
		struct loop_watcher *w = eev[i].data.ptr;
		if (w == &l->wake_w || w->fd < 0)
			continue; /* unwatched by an earlier callback */
		unsigned e = 0;
		uint32_t r = eev[i].events;
		if (r & EPOLLIN)
			e |= LOOP_READ;
		if (r & EPOLLOUT)
			e |= LOOP_WRITE;
		if (r & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
			e |= LOOP_ERROR;
		w->cb(w, e);
		out++;
	}
	return out;
}
#endif

/* ---- watchers ------------------------------------------------------------ */

int loop__watch(struct loop *l, struct loop_watcher *w, int fd, unsigned events,
                loop_io_fn cb, void *data)
{
	w->fd = fd;
	w->events = events;
	w->cb = cb;
	w->data = data;
	w->slot = -1;
	int rc;
#if TCPCHAT_USE_EPOLL
	if (l->epfd >= 0)
		rc = ep_ctl(l, EPOLL_CTL_ADD, w);
	else
#endif
		rc = poll_add(l, w);
	if (rc)
		w->fd = -1;
	return rc;
}

int loop__set(struct loop *l, struct loop_watcher *w, unsigned events)
{
	if (w->fd < 0 || w->events == events)
		return 0;
	unsigned old = w->events;
	w->events = events;
#if TCPCHAT_USE_EPOLL
	if (l->epfd >= 0) {
		int rc = ep_ctl(l, EPOLL_CTL_MOD, w);
		if (rc)
			w->events = old;
		return rc;
	}
#endif
	TC_UNUSED(old);
	l->pfds[w->slot].events = poll_mask(events);
	return 0;
}

void loop__unwatch(struct loop *l, struct loop_watcher *w)
{
	if (w->fd < 0)
		return;
#if TCPCHAT_USE_EPOLL
	if (l->epfd >= 0) {
		struct epoll_event e = {0};
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, &e);
	} else
#endif
		poll_del(l, w);
	w->fd = -1;
	w->events = 0;
}

static int poll_ts(struct loop *l, const struct timespec *ts)
{
#if TCPCHAT_USE_EPOLL
	if (l->epfd >= 0)
		return ep_wait(l, ts);
#endif
	return poll_wait(l, ts);
}

int loop__poll(struct loop *l, int timeout_ms)
{
	if (timeout_ms < 0)
		return poll_ts(l, NULL);
	struct timespec ts = {timeout_ms / 1000,
	                      (long)(timeout_ms % 1000) * 1000000};
	return poll_ts(l, &ts);
}

int loop__poll_us(struct loop *l, int64_t timeout_us)
{
	if (timeout_us < 0)
		timeout_us = 0;
	struct timespec ts = {(time_t)(timeout_us / 1000000),
	                      (long)(timeout_us % 1000000) * 1000};
	return poll_ts(l, &ts);
}

/* ---- setup ---------------------------------------------------------------- */

static void wake_cb(struct loop_watcher *w, unsigned events)
{
	TC_UNUSED(w);
	TC_UNUSED(events); /* handled by the backends before dispatch */
}

int loop__init(struct loop *l, loop_wake_fn on_wake, void *data)
{
	memset(l, 0, sizeof *l);
	l->epfd = -1;
	l->wake_rfd = l->wake_wfd = -1;
	l->wake_w.fd = -1;
	l->on_wake = on_wake;
	l->wake_data = data;
	atomic_init(&l->wake_pending, 0);
	pthread_mutex_init(&l->mu, NULL);
	loop__update_now(l);
	int rc = wake_open(l);
	if (rc) {
		pthread_mutex_destroy(&l->mu);
		return rc;
	}
#if TCPCHAT_USE_EPOLL
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		loop__fini(l);
		return TCPCHAT_ESYS;
	}
#endif
	rc = loop__watch(l, &l->wake_w, l->wake_rfd, LOOP_READ, wake_cb, l);
	if (rc) {
		loop__fini(l);
		return rc;
	}
	return 0;
}

void loop__fini(struct loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wake_rfd >= 0)
		close(l->wake_rfd);
	if (l->wake_wfd >= 0 && l->wake_wfd != l->wake_rfd)
		close(l->wake_wfd);
	free(l->pfds);
	free(l->pw);
	free(l->fdslot);
	free(l->heap);
	pthread_mutex_destroy(&l->mu);
	memset(l, 0, sizeof *l);
	l->epfd = l->wake_rfd = l->wake_wfd = -1;
}
