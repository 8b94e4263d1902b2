/* Tests of engineutil.c: real redis-server and nats-server -js started,
 * used through their raw protocols (RESP; the NATS client protocol and
 * the JetStream API), killed, restarted on the same port, stopped.  An
 * engine that cannot start fails the test with the reason. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engineutil.h"
#include "testutil.h"

#define BUF 8192

static char err[4096];
static char buf[BUF];

#define START(fn, e) ck_assert_msg(fn(e, err, sizeof(err)) == 0, "%s", err)
#define RESTART(e)                                                             \
	ck_assert_msg(eu_engine_restart(e, err, sizeof(err)) == 0, "%s", err)

static int connect_ok(const struct eu_engine *e)
{
	int fd = eu_connect(e, TU_TIMEOUT);

	ck_assert_msg(fd >= 0, "cannot connect to %s", e->url);
	return fd;
}

static int refused(const struct eu_engine *e)
{
	int fd = eu_connect(e, TU_TIMEOUT);

	if (fd >= 0)
		close(fd);
	return fd < 0;
}

/* Sends req and reads until want arrives; buf holds what came. */
static void exchange(int fd, const char *req, const char *want)
{
	ck_assert_int_eq(eu_send(fd, req, strlen(req), TU_TIMEOUT), 0);
	ck_assert_msg(eu_recv_until(fd, buf, sizeof(buf), want, TU_TIMEOUT) > 0,
	              "no \"%s\" after \"%s\"; got \"%s\"", want, req, buf);
}

/* SIGKILL, then a restart on the same port as a new process. */
static void kill_restart(struct eu_engine *e)
{
	pid_t pid = e->pid;
	int port = e->port;

	ck_assert_int_eq(eu_engine_kill(e), 0);
	ck_assert_int_eq(e->exit_status, 128 + 9);
	ck_assert_int_eq(e->pid, 0);
	ck_assert(refused(e));
	ck_assert_int_eq(eu_engine_kill(e), -1);
	RESTART(e);
	ck_assert_int_eq(e->port, port);
	ck_assert_int_gt(e->pid, 0);
	ck_assert_int_ne(e->pid, pid);
}

/* ---- Redis -------------------------------------------------------------- */

START_TEST(test_redis_set_get)
{
	struct eu_engine e = {0};
	char dir[sizeof(e.dir)], url[64];
	struct stat st;
	int fd;

	START(eu_redis_start, &e);
	ck_assert_int_gt(e.pid, 0);
	ck_assert_str_eq(e.host, "127.0.0.1");
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", e.port);
	ck_assert_str_eq(e.url, url);
	fd = connect_ok(&e);
	exchange(fd, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\n\r\n\r\n",
	         "\r\n");
	ck_assert_str_eq(buf, "+OK\r\n");
	exchange(fd, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "v\r\n\r\n\r\n");
	ck_assert_str_eq(buf, "$5\r\nv\r\n\r\n\r\n");
	close(fd);
	snprintf(dir, sizeof(dir), "%s", e.dir);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(eu_engine_stop(&e), 0);
	ck_assert_int_eq(e.pid, 0);
	ck_assert(refused(&e));
	ck_assert_msg(stat(dir, &st) != 0, "%s left behind", dir);
	ck_assert_int_eq(eu_engine_stop(&e), -1);
}
END_TEST

START_TEST(test_redis_kill_restart)
{
	struct eu_engine e = {0};
	pid_t pid;
	int fd;

	START(eu_redis_start, &e);
	fd = connect_ok(&e);
	exchange(fd, "SET k v\r\n", "\r\n");
	ck_assert_str_eq(buf, "+OK\r\n");
	close(fd);
	kill_restart(&e);
	fd = connect_ok(&e);
	/* Neither snapshots nor an AOF: a new, empty dataset. */
	exchange(fd, "GET k\r\n", "\r\n");
	ck_assert_str_eq(buf, "$-1\r\n");
	close(fd);
	/* A restart of a running server stops it first. */
	pid = e.pid;
	RESTART(&e);
	ck_assert_int_eq(e.exit_status, 0);
	ck_assert_int_ne(e.pid, pid);
	ck_assert_int_eq(eu_engine_stop(&e), 0);
	ck_assert_int_ne(eu_engine_restart(&e, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "was stopped"));
}
END_TEST

/* ---- NATS --------------------------------------------------------------- */

/* A connection that has read INFO and sent CONNECT. */
static int nats_open(const struct eu_engine *e)
{
	static const char connect[] =
	        "CONNECT {\"verbose\":false,\"pedantic\":false,"
	        "\"protocol\":1}\r\n";
	int fd = connect_ok(e);

	ck_assert_msg(eu_recv_until(fd, buf, sizeof(buf), "\r\n", TU_TIMEOUT) >
	                      0,
	              "no INFO from %s", e->url);
	ck_assert_msg(strncmp(buf, "INFO {", 6) == 0, "%s", buf);
	ck_assert_int_eq(eu_send(fd, connect, strlen(connect), TU_TIMEOUT), 0);
	return fd;
}

/* A request to subject with a reply inbox (subscribed as sid); buf holds
 * the answer, a JSON object. */
static void nats_request(int fd, const char *subject, const char *payload,
                         int sid)
{
	char req[1024], head[128];

	snprintf(req, sizeof(req),
	         "SUB _INBOX.t.%d %d\r\nPUB %s _INBOX.t.%d "
	         "%zu\r\n%s\r\n",
	         sid, sid, subject, sid, strlen(payload), payload);
	snprintf(head, sizeof(head), "MSG _INBOX.t.%d %d ", sid, sid);
	exchange(fd, req, "}\r\n");
	ck_assert_msg(strncmp(buf, head, strlen(head)) == 0, "%s", buf);
	ck_assert_msg(strstr(buf, "\"error\"") == NULL, "%s", buf);
}

START_TEST(test_nats_pub_sub)
{
	struct eu_engine e = {0};
	char url[64];
	int fd;

	START(eu_nats_start, &e);
	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", e.port);
	ck_assert_str_eq(e.url, url);
	fd = nats_open(&e);
	ck_assert_ptr_nonnull(strstr(buf, "\"jetstream\":true"));
	exchange(fd, "SUB chat.test 1\r\nPUB chat.test 11\r\nhello world\r\n",
	         "hello world\r\n");
	ck_assert_str_eq(buf, "MSG chat.test 1 11\r\nhello world\r\n");
	close(fd);
	/* nats-server exits 1 after a clean shutdown on SIGTERM. */
	ck_assert_int_eq(eu_engine_stop(&e), 1);
	ck_assert(refused(&e));
}
END_TEST

START_TEST(test_nats_jetstream_restart)
{
	struct eu_engine e = {0};
	int fd;

	START(eu_nats_start, &e);
	fd = nats_open(&e);
	nats_request(fd, "$JS.API.STREAM.CREATE.T",
	             "{\"name\":\"T\",\"subjects\":[\"t.>\"],"
	             "\"storage\":\"file\"}",
	             2);
	ck_assert_ptr_nonnull(strstr(buf, "stream_create_response"));
	ck_assert_ptr_nonnull(strstr(buf, "\"name\":\"T\""));
	/* A publish with a reply inbox gets JetStream's acknowledgment. */
	nats_request(fd, "t.one", "kept", 3);
	ck_assert_msg(strstr(buf, "\"stream\":\"T\"") != NULL &&
	                      strstr(buf, "\"seq\":1}") != NULL,
	              "%s", buf);
	close(fd);
	kill_restart(&e);
	fd = nats_open(&e);
	/* File storage in the same directory: the stream is still there. */
	nats_request(fd, "$JS.API.STREAM.INFO.T", "", 4);
	ck_assert_ptr_nonnull(strstr(buf, "stream_info_response"));
	ck_assert_ptr_nonnull(strstr(buf, "\"name\":\"T\""));
	close(fd);
	ck_assert_int_eq(eu_engine_stop(&e), 1);
}
END_TEST

/* ---- failures ----------------------------------------------------------- */

START_TEST(test_start_fails)
{
	struct eu_engine e = {0};

	snprintf(e.exe, sizeof(e.exe), "/bin/false");
	ck_assert_int_eq(eu_redis_start(&e, err, sizeof(err)), -1);
	ck_assert_int_eq(e.pid, 0);
	ck_assert_str_eq(e.dir, "");
	ck_assert_msg(strstr(err, "exited with status 1") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "command: /bin/false --port ") != NULL, "%s",
	              err);
	ck_assert_msg(strstr(err, "--save '' ") != NULL, "%s", err);

	memset(&e, 0, sizeof(e));
	snprintf(e.exe, sizeof(e.exe), "/nonexistent/nats-server");
	ck_assert_int_eq(eu_nats_start(&e, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "/nonexistent/nats-server") != NULL, "%s",
	              err);
	ck_assert_msg(strstr(err, "-js -sd ") != NULL, "%s", err);
}
END_TEST

static Suite *engines_suite(void)
{
	Suite *s = suite_create("engines");
	TCase *tc;

	tc = tcase_create("redis");
	tcase_add_test(tc, test_redis_set_get);
	tcase_add_test(tc, test_redis_kill_restart);
	suite_add_tcase(s, tc);

	tc = tcase_create("nats");
	tcase_add_test(tc, test_nats_pub_sub);
	tcase_add_test(tc, test_nats_jetstream_restart);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_add_test(tc, test_start_fails);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (eu_init(err, sizeof(err)) != 0) {
		fprintf(stderr, "engines: %s\n", err);
		return EXIT_FAILURE;
	}
	return tu_run_suite(engines_suite());
}
