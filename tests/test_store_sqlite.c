/* Tests for the SQLite store's own promises: the build has it when Meson
 * says so; close and reopen keep everything and the epoch; a writer killed
 * with SIGKILL loses no returned batch and leaves no partial one; missing,
 * unreachable, read-only, foreign, newer, garbage and locked files are
 * clear errors. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storeutil.h"
#include "testutil.h"

#if TCPCHAT_HAVE_SQLITE
#include <sqlite3.h>
#endif

/* Meson passes TEST_EXPECT_SQLITE=1 when it found libsqlite3: then the
 * library must have the SQLite store, never a silent skip. */
START_TEST(test_build_has_sqlite)
{
	struct su_env e;
	struct store *s = NULL;
	char err[256];
	int rc;

	su_env_make(&e);
	rc = store__sqlite_open(&s, e.path, STORE_CREATE, err, sizeof err);
#if TEST_EXPECT_SQLITE
	ck_assert_msg(rc == 0, "built with SQLite, yet: %d %s", rc, err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(access(e.path, F_OK), 0);
#else
	ck_assert_int_eq(rc, TCPCHAT_ENOTSUP);
	ck_assert_str_eq(err, "built without SQLite");
	ck_assert_ptr_null(s);
#endif
	su_close(s, &e);
}
END_TEST

#if TCPCHAT_HAVE_SQLITE

static struct store *reopen(const char *path, int flags)
{
	struct store *s = NULL;
	char err[512];
	int rc = store__sqlite_open(&s, path, flags, err, sizeof err);

	ck_assert_msg(rc == 0, "reopen %s: %d %s", path, rc, err);
	return s;
}

START_TEST(test_reopen)
{
	struct su_env e;
	struct su_got g;
	struct su_room r;
	struct store *s = su_open(1, &e);
	struct store_room st = {.room = {"#k", 2},
	                        .last_seq = 25,
	                        .topic = {"kept", 4},
	                        .topic_by = {"dan", 3},
	                        .topic_ts = 42};
	uint64_t epoch = store__epoch(s), oldest;

	ck_assert_uint_ne(epoch, 0);
	ck_assert_int_eq(su_append(s, "#k", 1, 20, 8), 0);
	ck_assert_int_eq(store__append(s, NULL, 0, &st, 1), 0);
	ck_assert_int_eq(store__trim(s, su_str("#k"), 15, 0), 0);
	store__close(s);

	s = reopen(e.path, 0);
	ck_assert_uint_eq(store__epoch(s), epoch);
	ck_assert_int_eq(su_read(s, "#k", 0, 0, 0, 0, &g), 15);
	ck_assert_uint_eq(g.seq[0], 6);
	ck_assert_str_eq(g.body[14], "message 20 of #k");
	ck_assert_int_eq(store__oldest(s, su_str("#k"), &oldest), 0);
	ck_assert_uint_eq(oldest, 6);
	ck_assert_int_eq(su_room(s, "#k", &r), 1);
	ck_assert_uint_eq(r.last_seq, 25);
	ck_assert_str_eq(r.topic, "kept");
	ck_assert_str_eq(r.topic_by, "dan");
	ck_assert_int_eq(r.topic_ts, 42);
	/* Seqs already given stay refused; new ones go on. */
	ck_assert_int_eq(su_append(s, "#k", 20, 20, 1), TCPCHAT_EINVAL);
	ck_assert_int_eq(su_append(s, "#k", 26, 30, 5), 0);
	store__close(s);

	/* STORE_FSYNC on the same file: same epoch, same history. */
	s = reopen(e.path, STORE_FSYNC | STORE_CREATE);
	ck_assert_uint_eq(store__epoch(s), epoch);
	ck_assert_int_eq(su_read(s, "#k", 0, 0, 0, 0, &g), 20);
	ck_assert_uint_eq(su_last_seq(s, "#k"), 30);
	su_close(s, &e);

	/* Another file, another epoch. */
	s = su_open(1, &e);
	ck_assert_uint_ne(store__epoch(s), epoch);
	su_close(s, &e);
}
END_TEST

#define CRASH_BATCH 16

/* The child: appends batches of #crash from seq `from` on until killed,
 * and writes the last seq of each batch whose append returned 0. */
static void crash_writer(const char *path, uint64_t from, int fd)
{
	struct store *s = NULL;
	struct store_msg m[CRASH_BATCH];
	struct store_room st = {.room = {"#crash", 6}};
	char err[256];
	int b, k;

	if (store__sqlite_open(&s, path, STORE_CREATE, err, sizeof err))
		_exit(2);
	for (b = 0; b < 1000000; b++) {
		for (k = 0; k < CRASH_BATCH; k++)
			su_fill(&m[k], "#crash", from++);
		st.last_seq = from - 1;
		if (store__append(s, m, CRASH_BATCH, &st, 1))
			_exit(3);
		if (write(fd, &st.last_seq, sizeof st.last_seq) !=
		    (ssize_t)sizeof st.last_seq)
			_exit(4);
	}
	_exit(0);
}

struct seen {
	uint64_t next; /* the seq expected next */
	int bad;
};

static int check_seq(const struct store_msg *m, void *ud)
{
	struct seen *c = ud;

	if (m->seq != c->next || m->id != m->seq * 10 + 3)
		c->bad = 1;
	c->next = m->seq + 1;
	return 0;
}

/* Starts a writer, lets it commit at least `want` batches, kills it with
 * SIGKILL and returns the last seq it reported. */
static uint64_t kill_writer(const char *path, uint64_t from, int want)
{
	int fds[2], got = 0, status;
	uint64_t last = from - 1, v;
	int64_t deadline = tu_now_ms() + tu_ms(10000);
	pid_t pid;
	ssize_t n;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		crash_writer(path, from, fds[1]);
	}
	close(fds[1]);
	while (got < want && tu_now_ms() < deadline &&
	       (n = read(fds[0], &v, sizeof v)) == (ssize_t)sizeof v) {
		last = v;
		got++;
	}
	kill(pid, SIGKILL);
	while ((n = read(fds[0], &v, sizeof v)) == (ssize_t)sizeof v)
		last = v;
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	              "the writer ended by itself (status %d) after %d batches",
	              status, got);
	ck_assert_int_ge(got, want);
	return last;
}

START_TEST(test_kill_writer)
{
	struct su_env e;
	struct store *s;
	uint64_t from = 1;
	int round;

	su_env_make(&e);
	for (round = 0; round < 3; round++) {
		uint64_t last = kill_writer(e.path, from, 20 + 10 * round);
		struct seen c = {1, 0};
		long n;

		s = reopen(e.path, 0);
		n = store__read(s, su_str("#crash"), 0, 0, 0, 0, check_seq, &c);
		ck_assert_int_eq(c.bad, 0);
		/* Every returned batch is there, whole; at most one more
		 * batch (committed, killed before it said so). */
		ck_assert_int_eq(n, (long)c.next - 1);
		ck_assert_uint_ge(c.next - 1, last);
		ck_assert_uint_le(c.next - 1, last + CRASH_BATCH);
		ck_assert_uint_eq((c.next - 1) % CRASH_BATCH, 0);
		ck_assert_uint_eq(su_last_seq(s, "#crash"), c.next - 1);
		printf("kill -9 round %d: %llu reported, %llu kept\n", round,
		       (unsigned long long)last,
		       (unsigned long long)(c.next - 1));
		store__close(s);
		from = c.next;
	}
	su_env_rm(&e);
}
END_TEST

/* Opens path, which must fail with code and an err that holds `want`. */
static void open_fails(const char *path, int flags, int code, const char *want)
{
	struct store *s = NULL;
	char err[512];
	int rc = store__sqlite_open(&s, path, flags, err, sizeof err);

	ck_assert_msg(rc == code, "%s: %d (%s), wanted %d", path, rc, err,
	              code);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(err, want) && strstr(err, path) &&
	                      strncmp(err, "cannot open ", 12) == 0,
	              "err \"%s\" lacks \"%s\"", err, want);
	printf("%s\n", err);
}

START_TEST(test_missing)
{
	struct su_env e;

	su_env_make(&e);
	open_fails(e.path, 0, TCPCHAT_ENOTFOUND, "no such file");
	ck_assert_int_ne(access(e.path, F_OK), 0);
	su_env_rm(&e);
}
END_TEST

START_TEST(test_under_a_file)
{
	struct su_env e;
	char path[400];
	int fd;

	su_env_make(&e);
	fd = open(e.path, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(path, sizeof path, "%s/sub.db", e.path);
	open_fails(path, STORE_CREATE, TCPCHAT_ESYS,
	           "unable to open database file");
	su_env_rm(&e);
}
END_TEST

START_TEST(test_read_only)
{
	struct su_env e;
	struct store *s = su_open(1, &e);

	store__close(s);
	ck_assert_int_eq(chmod(e.path, 0444), 0);
	if (geteuid() == 0)
		printf("read-only file: skipped, permissions do not apply "
		       "to root\n");
	else
		open_fails(e.path, 0, TCPCHAT_ESYS, "not writable");
	su_env_rm(&e);
}
END_TEST

START_TEST(test_garbage)
{
	struct su_env e;
	char junk[4096];
	size_t i;
	int fd;

	su_env_make(&e);
	for (i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 37 + 11);
	fd = open(e.path, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	open_fails(e.path, STORE_CREATE, TCPCHAT_EPROTO,
	           "file is not a database");
	su_env_rm(&e);
}
END_TEST

static void sql(const char *path, const char *text)
{
	sqlite3 *db;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, text, NULL, NULL, NULL) == SQLITE_OK,
	              "%s: %s", text, sqlite3_errmsg(db));
	sqlite3_close(db);
}

START_TEST(test_foreign_and_newer)
{
	struct su_env e;
	struct store *s;

	su_env_make(&e);
	sql(e.path, "CREATE TABLE accounts(name TEXT, balance INTEGER)");
	open_fails(e.path, STORE_CREATE, TCPCHAT_EPROTO, "not a tcpchat store");
	su_env_rm(&e);

	s = su_open(1, &e);
	store__close(s);
	sql(e.path, "PRAGMA journal_mode=DELETE;"
	            "UPDATE meta SET value = 99 WHERE key = 'schema'");
	open_fails(e.path, 0, TCPCHAT_EVERSION,
	           "schema version 99 is newer than this library's (2)");
	sql(e.path, "UPDATE meta SET value = 1 WHERE key = 'schema';"
	            "DELETE FROM meta WHERE key = 'epoch'");
	open_fails(e.path, 0, TCPCHAT_EPROTO, "damaged");
	su_env_rm(&e);
}
END_TEST

START_TEST(test_locked)
{
	struct su_env e;
	struct store *s = su_open(1, &e), *t;
	int fds[2], status;
	char c = 0;
	pid_t pid;

	ck_assert_int_eq(su_append(s, "#l", 1, 3, 3), 0);
	/* The same process... */
	open_fails(e.path, 0, TCPCHAT_ESTATE, "locked");
	/* ...and another one. */
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct store *u = NULL;
		char err[256];
		int rc = store__sqlite_open(&u, e.path, 0, err, sizeof err);

		c = rc == TCPCHAT_ESTATE && strstr(err, "locked") ? 'L' : 'x';
		if (write(fds[1], &c, 1) != 1)
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(c, 'L');
	/* Still fine for its holder; free once closed. */
	ck_assert_int_eq(su_append(s, "#l", 4, 4, 1), 0);
	store__close(s);
	t = reopen(e.path, 0);
	ck_assert_uint_eq(su_last_seq(t, "#l"), 4);
	su_close(t, &e);
}
END_TEST

START_TEST(test_bad_args)
{
	struct store *s = NULL;
	char err[64];

	ck_assert_int_eq(
	        store__sqlite_open(&s, "", STORE_CREATE, err, sizeof err),
	        TCPCHAT_EINVAL);
	ck_assert_int_eq(store__sqlite_open(NULL, "/tmp/x.db", 0, NULL, 0),
	                 TCPCHAT_EINVAL);
	ck_assert_ptr_null(s);
}
END_TEST
#endif

static Suite *store_sqlite_suite(void)
{
	Suite *s = suite_create("store_sqlite");
	TCase *tc = tcase_create("sqlite");

	tcase_add_test(tc, test_build_has_sqlite);
#if TCPCHAT_HAVE_SQLITE
	tcase_add_test(tc, test_reopen);
	tcase_add_test(tc, test_kill_writer);
	tcase_add_test(tc, test_missing);
	tcase_add_test(tc, test_under_a_file);
	tcase_add_test(tc, test_read_only);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_foreign_and_newer);
	tcase_add_test(tc, test_locked);
	tcase_add_test(tc, test_bad_args);
#endif
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_sqlite_suite());
	int failed;

	printf("SQLite store: %s\n",
	       TCPCHAT_HAVE_SQLITE ? "built in" : "not built");
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0;
}
