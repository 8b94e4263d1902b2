/* libtcpchat - a tiny event loop: epoll or poll(2), plus a thread-safe
 * wakeup.  Not installed. */
#ifndef TCPCHAT_LOOP_H
#define TCPCHAT_LOOP_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#define LOOP_READ 0x1u
#define LOOP_WRITE 0x2u
#define LOOP_ERROR 0x4u /* error or hang-up; the owner should read */

struct loop_event {
	void *ptr;
	unsigned events;
};

/* A command posted to the loop from any thread: the first member of the
 * poster's own command struct. */
struct loop_cmd {
	struct loop_cmd *next;
};

struct loop {
	int epfd; /* epoll backend, else -1 */
	/* poll backend */
	struct pollfd *pfds;
	void **ptrs;
	int *slot_of_fd; /* fd -> index in pfds, or -1 */
	int nfds, cap, slots;
	/* wakeup: eventfd (rfd == wfd) or a pipe */
	int wake_rfd, wake_wfd;
	atomic_int wake_pending;
	int woken; /* set by loop__wait when the wakeup fired */
	/* posted commands, oldest first */
	pthread_mutex_t mu;
	struct loop_cmd *cmd_head, *cmd_tail;
};

int loop__init(struct loop *l);
void loop__fini(struct loop *l);
int loop__add(struct loop *l, int fd, unsigned events, void *ptr);
int loop__mod(struct loop *l, int fd, unsigned events, void *ptr);
void loop__del(struct loop *l, int fd);
/* Waits up to timeout_ms (-1: forever) and fills at most max events.
 * Returns the count (0 on timeout or when only woken), or TCPCHAT_ESYS.
 * l->woken tells whether loop__wake() was called. */
int loop__wait(struct loop *l, int timeout_ms, struct loop_event *ev, int max);
/* Thread-safe and async-signal-safe. */
void loop__wake(struct loop *l);
/* Appends a command and wakes the loop.  Thread-safe. */
void loop__post(struct loop *l, struct loop_cmd *c);
/* Takes every posted command, oldest first (NULL if none); the caller
 * owns them.  Commands still posted at loop__fini() must be taken and
 * freed by the owner first. */
struct loop_cmd *loop__take(struct loop *l);
/* The pollable fd for host-driven mode, or TCPCHAT_ENOTSUP. */
int loop__fd(const struct loop *l);

#endif
