/* libtcpchat - a hiredis asynchronous context on the library's own loop:
 * its socket is a loop watcher, so commands and subscriptions to Redis
 * never block the loop and every callback runs on the loop thread.  Used
 * by the Redis bus.  Loop thread only.  Not installed. */
#ifndef TCPCHAT_REDIS_LOOP_H
#define TCPCHAT_REDIS_LOOP_H

#include <hiredis/async.h>

#include "loop.h"

/* Where the watchers of freed contexts wait until the loop is done with
 * them: a callback may free a context whose event is still in the batch
 * of the loop__poll() running it.  Zero it; reap after each poll. */
struct redis_loop_graves {
	void *head;
};

/* Attaches ac (just made by redisAsyncConnect, not yet attached) to
 * loop: hiredis then asks for read and write interest through its hooks
 * and the loop calls redisAsyncHandleRead/Write.  When hiredis frees ac
 * (redisAsyncFree, or after a disconnect) the watcher goes to graves.
 * Returns 0, TCPCHAT_EINVAL (ac attached already) or TCPCHAT_ENOMEM. */
int redis_loop__attach(redisAsyncContext *ac, struct loop *loop,
                       struct redis_loop_graves *graves);

/* Frees the watchers in graves.  Call it after loop__poll() returned
 * (never from a loop callback). */
void redis_loop__reap(struct redis_loop_graves *graves);

#endif
