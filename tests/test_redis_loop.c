/* hiredis on the library's loop (redis_loop.c) against a real
 * redis-server: a subscription and commands on two contexts of one loop,
 * every callback on the loop's thread, nothing lost or reordered; a
 * context freed from a callback while the other one's event waits in the
 * same poll; the server going away. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>

#include "engineutil.h"
#include "internal.h"
#include "loop.h"
#include "redis_loop.h"
#include "testutil.h"

#define N 1000

static char err[4096];

struct run {
	struct loop loop;
	struct redis_loop_graves graves;
	pthread_t thread;
	int subscribed;
	int got, in_order, replies, wrong_thread;
	int disconnects;
};

static void on_wake(struct loop *l, void *data)
{
	TC_UNUSED(l);
	TC_UNUSED(data);
}

static void on_message(redisAsyncContext *ac, void *r, void *priv)
{
	struct run *run = priv;
	redisReply *reply = r;
	TC_UNUSED(ac);
	if (!pthread_equal(pthread_self(), run->thread))
		run->wrong_thread++;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
		return;
	const char *kind = reply->element[0]->str;
	if (!strcmp(kind, "subscribe")) {
		run->subscribed = 1;
		return;
	}
	if (strcmp(kind, "message"))
		return;
	if (atoi(reply->element[2]->str) == run->got)
		run->in_order++;
	run->got++;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct run *run = priv;
	TC_UNUSED(ac);
	if (r)
		run->replies++;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct run *run = ac->data;
	TC_UNUSED(status);
	run->disconnects++;
}

static redisAsyncContext *connect_to(struct run *run, const struct eu_engine *e)
{
	redisAsyncContext *ac = redisAsyncConnect(e->host, e->port);
	ck_assert_ptr_nonnull(ac);
	ck_assert_msg(!ac->err, "connect: %s", ac->errstr);
	ac->data = run;
	ck_assert_int_eq(redis_loop__attach(ac, &run->loop, &run->graves), 0);
	ck_assert_int_eq(redis_loop__attach(ac, &run->loop, &run->graves),
	                 TCPCHAT_EINVAL);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	return ac;
}

/* Polls until *flag reaches want or the deadline passes. */
static int poll_until(struct run *run, const int *flag, int want)
{
	int64_t end = tu_now_ms() + TU_TIMEOUT;
	while (*flag < want && tu_now_ms() < end) {
		loop__poll(&run->loop, 50);
		redis_loop__reap(&run->graves);
	}
	return *flag >= want;
}

static void run_init(struct run *run)
{
	memset(run, 0, sizeof *run);
	ck_assert_int_eq(loop__init(&run->loop, on_wake, NULL), 0);
	run->thread = pthread_self();
}

START_TEST(test_subscribe_publish)
{
	struct eu_engine e = {0};
	ck_assert_msg(eu_redis_start(&e, err, sizeof err) == 0, "%s", err);
	struct run run;
	run_init(&run);
	redisAsyncContext *sub = connect_to(&run, &e);
	redisAsyncContext *cmd = connect_to(&run, &e);
	redisAsyncCommand(sub, on_message, &run, "SUBSCRIBE tc:room:lobby");
	ck_assert(poll_until(&run, &run.subscribed, 1));
	for (int i = 0; i < N; i++)
		redisAsyncCommand(cmd, on_reply, &run,
		                  "PUBLISH tc:room:lobby %d", i);
	ck_assert_msg(poll_until(&run, &run.got, N), "got %d of %d", run.got,
	              N);
	ck_assert(poll_until(&run, &run.replies, N));
	ck_assert_int_eq(run.in_order, N);
	ck_assert_int_eq(run.wrong_thread, 0);
	/* Freed from the loop's thread between polls: the watchers wait in
	 * the graves until reaped. */
	redisAsyncFree(sub);
	redisAsyncFree(cmd);
	ck_assert_ptr_nonnull(run.graves.head);
	redis_loop__reap(&run.graves);
	ck_assert_ptr_null(run.graves.head);
	loop__fini(&run.loop);
	eu_engine_stop(&e);
}
END_TEST

static void free_other(redisAsyncContext *ac, void *r, void *priv)
{
	TC_UNUSED(ac);
	TC_UNUSED(r);
	redisAsyncContext **other = priv;
	if (*other) {
		redisAsyncFree(*other);
		*other = NULL;
	}
}

START_TEST(test_free_from_callback)
{
	struct eu_engine e = {0};
	ck_assert_msg(eu_redis_start(&e, err, sizeof err) == 0, "%s", err);
	struct run run;
	run_init(&run);
	redisAsyncContext *a = connect_to(&run, &e);
	redisAsyncContext *b = connect_to(&run, &e);
	/* Both answer in the same poll, most of the time: a's reply frees
	 * b, whose event may still be in the batch. */
	for (int round = 0; round < 20; round++) {
		redisAsyncCommand(b, on_reply, &run, "PING");
		redisAsyncCommand(a, free_other, &b, "PING");
		int want = run.replies + 1;
		int64_t end = tu_now_ms() + TU_TIMEOUT;
		while (b && tu_now_ms() < end) {
			loop__poll(&run.loop, 50);
			redis_loop__reap(&run.graves);
		}
		ck_assert_ptr_null(b);
		ck_assert_int_le(run.replies, want);
		b = connect_to(&run, &e);
	}
	redisAsyncFree(a);
	redisAsyncFree(b);
	redis_loop__reap(&run.graves);
	loop__fini(&run.loop);
	eu_engine_stop(&e);
}
END_TEST

START_TEST(test_server_gone)
{
	struct eu_engine e = {0};
	ck_assert_msg(eu_redis_start(&e, err, sizeof err) == 0, "%s", err);
	struct run run;
	run_init(&run);
	redisAsyncContext *sub = connect_to(&run, &e);
	redisAsyncCommand(sub, on_message, &run, "SUBSCRIBE tc:room:x");
	ck_assert(poll_until(&run, &run.subscribed, 1));
	eu_engine_kill(&e);
	/* hiredis frees the context itself after the disconnect callback */
	ck_assert(poll_until(&run, &run.disconnects, 1));
	redis_loop__reap(&run.graves);
	ck_assert_ptr_null(run.graves.head);
	loop__fini(&run.loop);
	eu_engine_stop(&e);
}
END_TEST

static Suite *redis_loop_suite(void)
{
	Suite *s = suite_create("redis_loop");
	TCase *tc = tcase_create("hiredis");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_subscribe_publish);
	tcase_add_test(tc, test_free_from_callback);
	tcase_add_test(tc, test_server_gone);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (eu_init(err, sizeof err) != 0) {
		fprintf(stderr, "redis_loop: %s\n", err);
		return EXIT_FAILURE;
	}
	return tu_run_suite(redis_loop_suite());
}
