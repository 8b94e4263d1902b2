/* libtcpchat - event loop backends (epoll, poll) and wakeup. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "loop.h"

#if TCPCHAT_USE_EPOLL
#include <sys/epoll.h>
#endif
#if TCPCHAT_HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

static int set_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

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
	if (set_flags(p[0]) < 0 || set_flags(p[1]) < 0) {
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
	 * exchange, so the caller (which looks for work after this) sees
	 * it. */
	while (read(l->wake_rfd, buf, sizeof buf) > 0)
		;
	atomic_exchange(&l->wake_pending, 0);
	l->woken = 1;
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

static int poll_add(struct loop *l, int fd, unsigned events, void *ptr)
{
	if (fd >= l->slots) {
		int n = l->slots ? l->slots : 64;
		while (n <= fd)
			n *= 2;
		int *s = realloc(l->slot_of_fd, (size_t)n * sizeof *s);
		if (!s)
			return TCPCHAT_ENOMEM;
		for (int i = l->slots; i < n; i++)
			s[i] = -1;
		l->slot_of_fd = s;
		l->slots = n;
	}
	if (l->slot_of_fd[fd] >= 0) {
		errno = EEXIST;
		return TCPCHAT_ESYS;
	}
	if (l->nfds == l->cap) {
		int n = l->cap ? l->cap * 2 : 64;
		struct pollfd *p = realloc(l->pfds, (size_t)n * sizeof *p);
		if (!p)
			return TCPCHAT_ENOMEM;
		l->pfds = p;
		void **q = realloc(l->ptrs, (size_t)n * sizeof *q);
		if (!q)
			return TCPCHAT_ENOMEM;
		l->ptrs = q;
		l->cap = n;
	}
	l->pfds[l->nfds].fd = fd;
	l->pfds[l->nfds].events = poll_mask(events);
	l->pfds[l->nfds].revents = 0;
	l->ptrs[l->nfds] = ptr;
	l->slot_of_fd[fd] = l->nfds++;
	return 0;
}

static int poll_mod(struct loop *l, int fd, unsigned events, void *ptr)
{
	if (fd < 0 || fd >= l->slots || l->slot_of_fd[fd] < 0) {
		errno = ENOENT;
		return TCPCHAT_ESYS;
	}
	int i = l->slot_of_fd[fd];
	l->pfds[i].events = poll_mask(events);
	l->ptrs[i] = ptr;
	return 0;
}

static void poll_del(struct loop *l, int fd)
{
	if (fd < 0 || fd >= l->slots || l->slot_of_fd[fd] < 0)
		return;
	int i = l->slot_of_fd[fd];
	int last = --l->nfds;
	if (i != last) {
		l->pfds[i] = l->pfds[last];
		l->ptrs[i] = l->ptrs[last];
		l->slot_of_fd[l->pfds[i].fd] = i;
	}
	l->slot_of_fd[fd] = -1;
}

static int poll_wait(struct loop *l, int timeout_ms, struct loop_event *ev,
                     int max)
{
	/* Slot 0 is the wakeup fd (added by loop__init). */
	int n = poll(l->pfds, (nfds_t)l->nfds, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : TCPCHAT_ESYS;
	int out = 0;
	for (int i = 0; i < l->nfds && n > 0 && out < max; i++) {
		short r = l->pfds[i].revents;
		if (!r)
			continue;
		n--;
		l->pfds[i].revents = 0;
		if (l->ptrs[i] == l) {
			wake_drain(l);
			continue;
		}
		unsigned e = 0;
		if (r & POLLIN)
			e |= LOOP_READ;
		if (r & POLLOUT)
			e |= LOOP_WRITE;
		if (r & (POLLERR | POLLHUP | POLLNVAL))
			e |= LOOP_ERROR;
		ev[out].ptr = l->ptrs[i];
		ev[out].events = e;
		out++;
	}
	return out;
}

/* ---- dispatch ------------------------------------------------------------ */

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
#endif

int loop__init(struct loop *l)
{
	memset(l, 0, sizeof *l);
	l->epfd = -1;
	l->wake_rfd = l->wake_wfd = -1;
	atomic_init(&l->wake_pending, 0);
	pthread_mutex_init(&l->mu, NULL);
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
	rc = loop__add(l, l->wake_rfd, LOOP_READ, l);
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
	free(l->ptrs);
	free(l->slot_of_fd);
	pthread_mutex_destroy(&l->mu);
	memset(l, 0, sizeof *l);
	l->epfd = l->wake_rfd = l->wake_wfd = -1;
}

int loop__add(struct loop *l, int fd, unsigned events, void *ptr)
{
#if TCPCHAT_USE_EPOLL
	if (l->epfd >= 0) {
		struct epoll_event e = {.events = ep_mask(events),
		                        .data.ptr = ptr};
		return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) ? TCPCHAT_ESYS
		                                                 : 0;
	}
#endif
	return poll_add(l, fd, events, ptr);
}

int loop__mod(struct loop *l, int fd, unsigned events, void *ptr)
{
#if TCPCHAT_USE_EPOLL
	if (l->epfd >= 0) {
		struct epoll_event e = {.events = ep_mask(events),
		                        .data.ptr = ptr};
		return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &e) ? TCPCHAT_ESYS
		                                                 : 0;
	}
#endif
	return poll_mod(l, fd, events, ptr);
}

void loop__del(struct loop *l, int fd)
{
#if TCPCHAT_USE_EPOLL
	if (l->epfd >= 0) {
		struct epoll_event e = {0};
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, &e);
		return;
	}
#endif
	poll_del(l, fd);
}

int loop__wait(struct loop *l, int timeout_ms, struct loop_event *ev, int max)
{
	l->woken = 0;
#if TCPCHAT_USE_EPOLL
	if (l->epfd >= 0) {
		struct epoll_event eev[256];
		if (max > (int)TC_ARRAY_LEN(eev))
			max = (int)TC_ARRAY_LEN(eev);
		int n = epoll_wait(l->epfd, eev, max, timeout_ms);
		if (n < 0)
			return errno == EINTR ? 0 : TCPCHAT_ESYS;
		int out = 0;
		for (int i = 0; i < n; i++) {
			if (eev[i].data.ptr == l) {
				wake_drain(l);
				continue;
			}
			unsigned e = 0;
			uint32_t r = eev[i].events;
			if (r & EPOLLIN)
				e |= LOOP_READ;
			if (r & EPOLLOUT)
				e |= LOOP_WRITE;
			if (r & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
				e |= LOOP_ERROR;
			ev[out].ptr = eev[i].data.ptr;
			ev[out].events = e;
			out++;
		}
		return out;
	}
#endif
	return poll_wait(l, timeout_ms, ev, max);
}
