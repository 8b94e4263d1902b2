/* libtcpchat - the event loop: watchers (fd + callback), timers (a
 * min-heap: next deadline O(1), start/stop O(log n)), a thread-safe wakeup
 * and a command queue.  Backends: epoll, or poll(2).  Not installed.
 *
 * Everything here is loop-thread only, except loop__wake() and
 * loop__post(), which any thread (and, for wake, a signal handler) may
 * call.  Host-driven use: loop__fd() is one pollable descriptor and
 * loop__timeout_ms() the time to the next timer. */
#ifndef TCPCHAT_LOOP_H
#define TCPCHAT_LOOP_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define LOOP_READ 0x1u
#define LOOP_WRITE 0x2u
#define LOOP_ERROR 0x4u /* error or hang-up; the owner should read */

struct loop;
struct loop_watcher;
struct loop_timer;

/* Called with the events that are ready (LOOP_READ|WRITE|ERROR). */
typedef void (*loop_io_fn)(struct loop_watcher *w, unsigned events);
typedef void (*loop_timer_fn)(struct loop_timer *t);
/* Called once per wait that the wakeup interrupted, before the ready
 * watchers of that wait are dispatched. */
typedef void (*loop_wake_fn)(struct loop *l, void *data);

/* A file descriptor watched for readiness.  The struct belongs to its
 * owner and must stay valid until loop__unwatch() and, when that is
 * called from a callback, until the loop__poll() running it returns. */
struct loop_watcher {
	int fd;          /* -1 when not watched */
	unsigned events; /* interest registered */
	loop_io_fn cb;
	void *data;
	int slot; /* poll backend: index in the pollfd array */
};

/* A one-shot or repeating timer.  Zero it (or loop__timer_init) first. */
struct loop_timer {
	int64_t due;    /* loop time in ms */
	int64_t period; /* 0: one-shot */
	uint64_t seq;   /* when it was armed: ties and rounds go by it */
	uint32_t idx;   /* position in the heap + 1; 0 when not armed */
	loop_timer_fn cb;
	void *data;
};

/* A command posted from any thread: the first member of the poster's own
 * command struct. */
struct loop_cmd {
	struct loop_cmd *next;
};

struct loop {
	int epfd;      /* epoll backend, else -1 */
	int no_pwait2; /* epoll_pwait2 is not there: ENOSYS */
	/* poll backend */
	struct pollfd *pfds;
	struct loop_watcher **pw; /* watcher of each pfds slot */
	int nfds, cap;
	int *fdslot; /* fd -> slot, or -1 */
	int nfdslot;
	int scan_from; /* where the next scan starts, so all get served */
	/* timers */
	struct loop_timer **heap;
	uint32_t nheap, heap_cap;
	uint64_t timer_seq;
	int64_t now; /* monotonic ms, refreshed by loop__poll() */
	/* wakeup: eventfd (rfd == wfd) or a pipe */
	int wake_rfd, wake_wfd;
	atomic_int wake_pending;
	struct loop_watcher wake_w;
	loop_wake_fn on_wake;
	void *wake_data;
	/* posted commands, oldest first */
	pthread_mutex_t mu;
	struct loop_cmd *cmd_head, *cmd_tail;
};

int loop__init(struct loop *l, loop_wake_fn on_wake, void *data);
/* Closes the loop's own descriptors.  Watchers and armed timers are the
 * owners' to release; commands still posted must be taken first. */
void loop__fini(struct loop *l);

/* Starts watching fd for events.  Returns 0, TCPCHAT_ENOMEM or
 * TCPCHAT_ESYS (errno; EEXIST if fd is watched already). */
int loop__watch(struct loop *l, struct loop_watcher *w, int fd, unsigned events,
                loop_io_fn cb, void *data);
/* Changes the interest; a no-op when it is unchanged. */
int loop__set(struct loop *l, struct loop_watcher *w, unsigned events);
/* Stops watching (before the fd is closed).  Safe on an unwatched one. */
void loop__unwatch(struct loop *l, struct loop_watcher *w);

void loop__timer_init(struct loop_timer *t, loop_timer_fn cb, void *data);
/* Arms t to fire after delay_ms (then every period_ms if > 0), replacing
 * an earlier arming.  Returns 0 or TCPCHAT_ENOMEM. */
int loop__timer_start(struct loop *l, struct loop_timer *t, int64_t delay_ms,
                      int64_t period_ms);
/* Arms t for an absolute loop time. */
int loop__timer_at(struct loop *l, struct loop_timer *t, int64_t due);
/* Disarms t; safe when it is not armed. */
void loop__timer_stop(struct loop *l, struct loop_timer *t);
static inline int loop__timer_armed(const struct loop_timer *t)
{
	return t->idx != 0;
}

/* Waits up to timeout_ms (-1: forever; 0: just look) and dispatches:
 * first the wake callback if woken, then each ready watcher.  Timers are
 * not run here (see loop__run_timers).  Returns the number of watchers
 * dispatched, or TCPCHAT_ESYS. */
int loop__poll(struct loop *l, int timeout_ms);
/* As loop__poll, waiting at most timeout_us microseconds. */
int loop__poll_us(struct loop *l, int64_t timeout_us);
/* Runs every timer that is due at the current loop time, earliest first.
 * A repeating timer is re-armed before its callback runs.  A timer armed
 * during the round (by a callback) waits for the next round, so a
 * callback that re-arms itself cannot starve the loop. */
void loop__run_timers(struct loop *l);
/* Milliseconds from now to the next timer (0 if one is due), capped at
 * cap_ms when cap_ms >= 0, or -1 when no timer is armed. */
int loop__timeout_ms(struct loop *l, int cap_ms);
/* Refreshes and returns the loop time. */
int64_t loop__update_now(struct loop *l);

/* Thread-safe and async-signal-safe. */
void loop__wake(struct loop *l);
/* Appends a command and wakes the loop.  Thread-safe. */
void loop__post(struct loop *l, struct loop_cmd *c);
/* Takes every posted command, oldest first (NULL if none); the caller
 * owns them. */
struct loop_cmd *loop__take(struct loop *l);
/* The pollable fd for host-driven mode, or TCPCHAT_ENOTSUP. */
int loop__fd(const struct loop *l);

#endif
