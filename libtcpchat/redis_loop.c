/* libtcpchat - hiredis on the library's loop (see redis_loop.h). */
#include <stdlib.h>

#include "internal.h"
#include "redis_loop.h"

struct redis_watch {
	struct loop_watcher w;
	struct loop *loop;
	struct redis_loop_graves *graves;
	struct redis_watch *next_grave;
	redisAsyncContext *ac;
	unsigned want; /* LOOP_READ | LOOP_WRITE hiredis asked for */
};

static void on_io(struct loop_watcher *w, unsigned events)
{
	struct redis_watch *rw = w->data;
	redisAsyncContext *ac = rw->ac;
	if (!ac)
		return; /* freed by an earlier callback of this poll */
	/* A read callback may free the context (and rw with it): handle
	 * one direction per wake, reads first. */
	if (events & (LOOP_READ | LOOP_ERROR))
		redisAsyncHandleRead(ac);
	else if (events & LOOP_WRITE)
		redisAsyncHandleWrite(ac);
}

static void apply(struct redis_watch *rw)
{
	if (rw->want && rw->w.fd < 0) {
		if (loop__watch(rw->loop, &rw->w, rw->ac->c.fd, rw->want, on_io,
		                rw) != 0)
			rw->w.fd = -1; /* the connect timeout ends it */
	} else if (rw->want) {
		loop__set(rw->loop, &rw->w, rw->want);
	} else if (rw->w.fd >= 0) {
		loop__unwatch(rw->loop, &rw->w);
	}
}

static void add_read(void *p)
{
	struct redis_watch *rw = p;
	rw->want |= LOOP_READ;
	apply(rw);
}

static void del_read(void *p)
{
	struct redis_watch *rw = p;
	rw->want &= ~LOOP_READ;
	apply(rw);
}

static void add_write(void *p)
{
	struct redis_watch *rw = p;
	rw->want |= LOOP_WRITE;
	apply(rw);
}

static void del_write(void *p)
{
	struct redis_watch *rw = p;
	rw->want &= ~LOOP_WRITE;
	apply(rw);
}

static void cleanup(void *p)
{
	struct redis_watch *rw = p;
	if (rw->w.fd >= 0)
		loop__unwatch(rw->loop, &rw->w);
	rw->ac = NULL;
	rw->next_grave = rw->graves->head;
	rw->graves->head = rw;
}

void redis_loop__reap(struct redis_loop_graves *graves)
{
	struct redis_watch *rw = graves->head;
	graves->head = NULL;
	while (rw) {
		struct redis_watch *next = rw->next_grave;
		free(rw);
		rw = next;
	}
}

int redis_loop__attach(redisAsyncContext *ac, struct loop *loop,
                       struct redis_loop_graves *graves)
{
	if (ac->ev.data)
		return TCPCHAT_EINVAL;
	struct redis_watch *rw = calloc(1, sizeof *rw);
	if (!rw)
		return TCPCHAT_ENOMEM;
	rw->w.fd = -1;
	rw->loop = loop;
	rw->graves = graves;
	rw->ac = ac;
	ac->ev.addRead = add_read;
	ac->ev.delRead = del_read;
	ac->ev.addWrite = add_write;
	ac->ev.delWrite = del_write;
	ac->ev.cleanup = cleanup;
	ac->ev.data = rw;
	return 0;
}
