/* libtcpchat - run modes shared by server and client. */
#include <errno.h>

#include "internal.h"
#include "runner.h"

void runner__init(struct runner *r, const struct runner_ops *ops, void *obj)
{
	r->ops = ops;
	r->obj = obj;
	r->has_thread = 0;
	r->thread_rc = 0;
	r->running = 0;
	r->stepping = 0;
}

static int busy(const struct runner *r)
{
	/* has_thread first: it belongs to the caller of start(), while
	 * running is written by the library's thread. */
	return r->has_thread || r->running || r->stepping;
}

static int loop_until_done(struct runner *r)
{
	int rc;
	for (;;) {
		rc = r->ops->iterate(r->obj, r->ops->timeout_ms(r->obj));
		if (rc != 0)
			break;
	}
	return r->ops->end(r->obj, rc);
}

int runner__run(struct runner *r)
{
	if (util__in_callback(r->obj))
		return TCPCHAT_ERECURSIVE;
	if (busy(r))
		return TCPCHAT_ESTATE;
	int rc = r->ops->begin(r->obj);
	if (rc)
		return rc > 0 ? TCPCHAT_ESTATE : rc;
	r->running = 1;
	rc = loop_until_done(r);
	r->running = 0;
	return rc;
}

static void *thread_main(void *arg)
{
	struct runner *r = arg;
	int rc = r->ops->begin(r->obj);
	if (rc == 0)
		rc = loop_until_done(r);
	else if (rc > 0)
		rc = 0; /* nothing was left to run */
	r->running = 0;
	r->thread_rc = rc;
	return NULL;
}

int runner__start(struct runner *r)
{
	if (util__in_callback(r->obj))
		return TCPCHAT_ERECURSIVE;
	if (busy(r))
		return TCPCHAT_ESTATE;
	if (r->ops->prepare) {
		int rc = r->ops->prepare(r->obj);
		if (rc)
			return rc > 0 ? TCPCHAT_ESTATE : rc;
	}
	r->running = 1;
	int rc = pthread_create(&r->thread, NULL, thread_main, r);
	if (rc) {
		r->running = 0;
		errno = rc;
		return TCPCHAT_ESYS;
	}
	r->has_thread = 1;
	return 0;
}

int runner__join(struct runner *r)
{
	if (util__in_callback(r->obj))
		return TCPCHAT_ERECURSIVE;
	if (!r->has_thread)
		return TCPCHAT_ESTATE;
	pthread_join(r->thread, NULL);
	r->has_thread = 0;
	return r->thread_rc;
}

int runner__step(struct runner *r)
{
	if (util__in_callback(r->obj))
		return TCPCHAT_ERECURSIVE;
	if (r->has_thread || r->running)
		return TCPCHAT_ESTATE;
	if (!r->stepping) {
		int rc = r->ops->begin(r->obj);
		if (rc)
			return rc > 0 ? 1 : rc;
		r->stepping = 1;
	}
	int rc = r->ops->iterate(r->obj, 0);
	if (rc == 0)
		return 0;
	r->stepping = 0;
	int res = r->ops->end(r->obj, rc);
	return rc < 0 ? res : 1;
}

void runner__reap(struct runner *r)
{
	if (r->has_thread) {
		pthread_join(r->thread, NULL);
		r->has_thread = 0;
	}
}
