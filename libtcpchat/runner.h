/* libtcpchat - the three run modes, shared by server and client: blocking
 * run, a library-owned thread (start/join), and host-driven steps; plus
 * the "not from inside a callback" guard.  Not installed.
 *
 * The owner supplies what one iteration of its loop is; the runner keeps
 * the state that says who drives the loop, so that two drivers never
 * race. */
#ifndef TCPCHAT_RUNNER_H
#define TCPCHAT_RUNNER_H

#include <pthread.h>

struct runner_ops {
	/* Before the first iteration, on the driving thread.  0: go on;
	 * 1: nothing to run (run() and start() then return TCPCHAT_ESTATE,
	 * step() returns 1); < 0: an error to return. */
	int (*begin)(void *obj);
	/* Called by start() on the caller's thread before the thread is
	 * created, so that setup errors reach the caller (may be NULL). */
	int (*prepare)(void *obj);
	/* One iteration, waiting up to timeout_ms.  0: go on; 1: finished;
	 * < 0: a fatal error. */
	int (*iterate)(void *obj, int timeout_ms);
	/* How long the next iteration may wait (-1: forever). */
	int (*timeout_ms)(void *obj);
	/* After the last iteration (rc as iterate returned it, 1 or < 0);
	 * returns what run(), join() or step() report. */
	int (*end)(void *obj, int rc);
};

struct runner {
	const struct runner_ops *ops;
	void *obj;
	pthread_t thread;
	int has_thread; /* written only by the thread that calls start/join */
	int thread_rc;
	int running;  /* run() or the library thread is inside the loop */
	int stepping; /* a host loop is driving it with step() */
};

void runner__init(struct runner *r, const struct runner_ops *ops, void *obj);
int runner__run(struct runner *r);
int runner__start(struct runner *r);
int runner__join(struct runner *r);
/* One non-blocking iteration: 0 while running, 1 once finished. */
int runner__step(struct runner *r);
/* For destroy: joins the library's thread if there is one.  The caller
 * has already asked the loop to end. */
void runner__reap(struct runner *r);

#endif
