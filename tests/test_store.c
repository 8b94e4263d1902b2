/* Tests for the store, on every implementation: append and read ranges,
 * room states, trim, refused seqs, injected faults; the memory store's
 * bound and epochs.  The SQLite store's own tests (reopen, a killed writer,
 * bad files, locks) are in test_store_sqlite.c. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "storeutil.h"

START_TEST(test_append_read)
{
	struct su_env e;
	struct su_got g;
	struct store *s = su_open(_i, &e);
	struct store_msg m[3];
	long n;
	size_t k;

	/* An interleaved batch: two rooms. */
	ck_assert_int_eq(su_append(s, "#a", 1, 20, 7), 0);
	su_fill(&m[0], "#b", 1);
	su_fill(&m[1], "#a", 21);
	su_fill(&m[2], "#b", 2);
	m[2].body = (tcpchat_str){NULL, 0};
	m[2].sender = (tcpchat_str){"\0x\xff", 3};
	ck_assert_int_eq(store__append(s, m, 3, NULL, 0), 0);

	n = su_read(s, "#a", 0, 0, 0, 0, &g);
	ck_assert_int_eq(n, 21);
	for (k = 0; k < 21; k++) {
		char body[32];

		ck_assert_uint_eq(g.seq[k], k + 1);
		ck_assert_uint_eq(g.id[k], (k + 1) * 10 + 3);
		ck_assert_int_eq(g.ts[k], 1000 + (int64_t)k + 1);
		ck_assert_uint_eq(g.flags[k], (uint32_t)(k + 1) & 3);
		snprintf(body, sizeof body, "message %zu of #a", k + 1);
		ck_assert_str_eq(g.body[k], body);
		ck_assert_str_eq(g.sender[k], "alice");
		ck_assert_str_eq(g.room[k], "#a");
	}
	ck_assert_int_eq(su_read(s, "#b", 0, 0, 0, 0, &g), 2);
	ck_assert_str_eq(g.body[1], "");
	ck_assert_uint_eq(g.sender_len[1], 3);
	ck_assert_int_eq(memcmp(g.sender[1], "\0x\xff", 3), 0);

	/* Ranges. */
	ck_assert_int_eq(su_read(s, "#a", 5, 0, 0, 0, &g), 16);
	ck_assert_uint_eq(g.seq[0], 6);
	ck_assert_int_eq(su_read(s, "#a", 0, 10, 0, 0, &g), 9);
	ck_assert_uint_eq(g.seq[8], 9);
	ck_assert_int_eq(su_read(s, "#a", 5, 10, 0, 0, &g), 4);
	ck_assert_uint_eq(g.seq[0], 6);
	ck_assert_uint_eq(g.seq[3], 9);
	ck_assert_int_eq(su_read(s, "#a", 0, 0, 3, 0, &g), 3);
	ck_assert_uint_eq(g.seq[0], 1);
	ck_assert_uint_eq(g.seq[2], 3);
	/* Backward: the latest N, still oldest first. */
	ck_assert_int_eq(su_read(s, "#a", 0, 0, 3, 1, &g), 3);
	ck_assert_uint_eq(g.seq[0], 19);
	ck_assert_uint_eq(g.seq[1], 20);
	ck_assert_uint_eq(g.seq[2], 21);
	/* Before S. */
	ck_assert_int_eq(su_read(s, "#a", 0, 10, 3, 1, &g), 3);
	ck_assert_uint_eq(g.seq[0], 7);
	ck_assert_uint_eq(g.seq[2], 9);
	/* A backward limit larger than the range. */
	ck_assert_int_eq(su_read(s, "#a", 15, 18, 10, 1, &g), 2);
	ck_assert_uint_eq(g.seq[0], 16);
	ck_assert_uint_eq(g.seq[1], 17);
	ck_assert_int_eq(su_read(s, "#a", 0, 0, 0, 1, &g), 21);
	/* Empty ranges and rooms. */
	ck_assert_int_eq(su_read(s, "#a", 21, 0, 0, 0, &g), 0);
	ck_assert_int_eq(su_read(s, "#a", 5, 6, 0, 0, &g), 0);
	ck_assert_int_eq(su_read(s, "#a", 9, 3, 0, 1, &g), 0);
	ck_assert_int_eq(su_read(s, "#a", 0, 1, 0, 0, &g), 0);
	ck_assert_int_eq(su_read(s, "#nobody", 0, 0, 0, 0, &g), 0);
	ck_assert_int_eq(su_read(s, "#nobody", 0, 0, 5, 1, &g), 0);
	ck_assert_int_eq(su_read(s, "", 0, 0, 0, 0, &g), TCPCHAT_EINVAL);
	/* A callback that stops the read. */
	ck_assert_int_eq(su_read_stop(s, "#a", 4, &g), 77);
	ck_assert_uint_eq(g.n, 4);
	su_close(s, &e);
}
END_TEST

/* A batch of 256 over three rooms, and batches of one. */
START_TEST(test_batches)
{
	struct su_env e;
	struct su_got g;
	struct store *s = su_open(_i, &e);
	static struct store_msg m[256];
	static const char *const rooms[] = {"#x", "#y", "#z"};
	uint64_t next[3] = {1, 1, 1};
	size_t k;

	for (k = 0; k < 256; k++) {
		size_t r = (k * 7 + k / 5) % 3;

		su_fill(&m[k], rooms[r], next[r]++);
	}
	ck_assert_int_eq(store__append(s, m, 256, NULL, 0), 0);
	for (k = 0; k < 3; k++) {
		long n = su_read(s, rooms[k], 0, 0, 0, 0, &g);
		long j;

		ck_assert_int_eq(n, (long)next[k] - 1);
		for (j = 0; j < n; j++)
			ck_assert_uint_eq(g.seq[j], (uint64_t)j + 1);
		ck_assert_uint_eq(su_last_seq(s, rooms[k]), next[k] - 1);
	}
	for (k = 0; k < 10; k++)
		ck_assert_int_eq(
		        su_append(s, "#x", next[0] + k, next[0] + k, 1), 0);
	ck_assert_uint_eq(su_last_seq(s, "#x"), next[0] + 9);
	/* An empty batch is a no-op. */
	ck_assert_int_eq(store__append(s, NULL, 0, NULL, 0), 0);
	su_close(s, &e);
}
END_TEST

START_TEST(test_room_states)
{
	struct su_env e;
	struct store *s = su_open(_i, &e);
	struct su_room r;
	struct store_room st[2] = {
	        {.room = {"#t", 2},
	         .last_seq = 0,
	         .topic = {"hello there", 11},
	         .topic_by = {"bob", 3},
	         .topic_ts = 123456789},
	        {.room = {"#quiet", 6}, .last_seq = 40},
	};

	ck_assert_int_eq(store__append(s, NULL, 0, st, 2), 0);
	ck_assert_int_eq(su_room(s, "#t", &r), 1);
	ck_assert_str_eq(r.topic, "hello there");
	ck_assert_str_eq(r.topic_by, "bob");
	ck_assert_int_eq(r.topic_ts, 123456789);
	ck_assert_uint_eq(r.last_seq, 0);
	ck_assert_int_eq(su_room(s, "#quiet", &r), 1);
	ck_assert_uint_eq(r.last_seq, 40);
	ck_assert_str_eq(r.topic, "");
	ck_assert_int_eq(su_room(s, "#none", &r), 0);

	/* Messages move last_seq; a state never moves it back. */
	ck_assert_int_eq(su_append(s, "#t", 1, 5, 5), 0);
	ck_assert_int_eq(su_room(s, "#t", &r), 1);
	ck_assert_uint_eq(r.last_seq, 5);
	ck_assert_str_eq(r.topic, "hello there");
	st[0].last_seq = 3;
	st[0].topic = (tcpchat_str){"new", 3};
	st[0].topic_by = (tcpchat_str){"carol", 5};
	st[0].topic_ts = 7;
	ck_assert_int_eq(store__append(s, NULL, 0, st, 1), 0);
	ck_assert_int_eq(su_room(s, "#t", &r), 1);
	ck_assert_uint_eq(r.last_seq, 5);
	ck_assert_str_eq(r.topic, "new");
	ck_assert_str_eq(r.topic_by, "carol");
	ck_assert_int_eq(r.topic_ts, 7);
	/* A state given with the messages, in the same batch. */
	st[0].last_seq = 9;
	st[0].topic = (tcpchat_str){NULL, 0};
	st[0].topic_by = (tcpchat_str){NULL, 0};
	{
		struct store_msg m[2];

		su_fill(&m[0], "#t", 6);
		su_fill(&m[1], "#t", 7);
		ck_assert_int_eq(store__append(s, m, 2, st, 1), 0);
	}
	ck_assert_int_eq(su_room(s, "#t", &r), 1);
	ck_assert_uint_eq(r.last_seq, 9);
	ck_assert_str_eq(r.topic, "");
	ck_assert_int_eq(su_count_rooms(s), 2);
	su_close(s, &e);
}
END_TEST

START_TEST(test_trim)
{
	struct su_env e;
	struct su_got g;
	struct store *s = su_open(_i, &e);
	uint64_t oldest = 0;

	ck_assert_int_eq(su_append(s, "#r", 1, 20, 6), 0);
	ck_assert_int_eq(su_append(s, "#other", 1, 3, 3), 0);
	ck_assert_int_eq(store__oldest(s, su_str("#r"), &oldest), 0);
	ck_assert_uint_eq(oldest, 1);
	ck_assert_int_eq(store__oldest(s, su_str("#nowhere"), &oldest),
	                 TCPCHAT_ENOTFOUND);
	/* Count: the newest 15 stay. */
	ck_assert_int_eq(store__trim(s, su_str("#r"), 15, 0), 0);
	ck_assert_int_eq(store__oldest(s, su_str("#r"), &oldest), 0);
	ck_assert_uint_eq(oldest, 6);
	ck_assert_int_eq(su_read(s, "#r", 0, 0, 0, 0, &g), 15);
	ck_assert_uint_eq(g.seq[0], 6);
	ck_assert_int_eq(su_read(s, "#r", 0, 0, 3, 1, &g), 3);
	ck_assert_uint_eq(g.seq[0], 18);
	/* A keep above the count, or 0 and 0, drops nothing. */
	ck_assert_int_eq(store__trim(s, su_str("#r"), 100, 0), 0);
	ck_assert_int_eq(store__trim(s, su_str("#r"), 0, 0), 0);
	ck_assert_int_eq(su_read(s, "#r", 0, 0, 0, 0, &g), 15);
	/* Age: timestamps are 1000 + seq. */
	ck_assert_int_eq(store__trim(s, su_str("#r"), 0, 1010), 0);
	ck_assert_int_eq(store__oldest(s, su_str("#r"), &oldest), 0);
	ck_assert_uint_eq(oldest, 10);
	/* Both at once: the stricter wins. */
	ck_assert_int_eq(store__trim(s, su_str("#r"), 5, 1012), 0);
	ck_assert_int_eq(store__oldest(s, su_str("#r"), &oldest), 0);
	ck_assert_uint_eq(oldest, 16);
	ck_assert_int_eq(store__trim(s, su_str("#r"), 2, 1012), 0);
	ck_assert_int_eq(store__oldest(s, su_str("#r"), &oldest), 0);
	ck_assert_uint_eq(oldest, 19);
	/* Everything: the oldest is then last_seq + 1, last_seq stays. */
	ck_assert_int_eq(store__trim(s, su_str("#r"), 0, 1000000), 0);
	ck_assert_int_eq(store__oldest(s, su_str("#r"), &oldest), 0);
	ck_assert_uint_eq(oldest, 21);
	ck_assert_int_eq(su_read(s, "#r", 0, 0, 0, 0, &g), 0);
	ck_assert_uint_eq(su_last_seq(s, "#r"), 20);
	/* Seqs go on, never reused. */
	ck_assert_int_eq(su_append(s, "#r", 20, 20, 1), TCPCHAT_EINVAL);
	ck_assert_int_eq(su_append(s, "#r", 21, 22, 2), 0);
	ck_assert_int_eq(store__oldest(s, su_str("#r"), &oldest), 0);
	ck_assert_uint_eq(oldest, 21);
	/* The other room was not touched; unknown rooms trim fine. */
	ck_assert_int_eq(su_read(s, "#other", 0, 0, 0, 0, &g), 3);
	ck_assert_int_eq(store__trim(s, su_str("#nowhere"), 1, 1), 0);
	su_close(s, &e);
}
END_TEST

/* A refused batch leaves the store as it was. */
static void check_untouched(struct store *s)
{
	struct su_got g;
	struct su_room r;

	ck_assert_int_eq(su_read(s, "#d", 0, 0, 0, 0, &g), 10);
	ck_assert_uint_eq(g.seq[9], 10);
	ck_assert_int_eq(su_room(s, "#d", &r), 1);
	ck_assert_uint_eq(r.last_seq, 10);
	ck_assert_str_eq(r.topic, "");
	ck_assert_int_eq(su_room(s, "#new", &r), 0);
	ck_assert_int_eq(su_count_rooms(s), 1);
}

START_TEST(test_duplicate_seq)
{
	struct su_env e;
	struct store *s = su_open(_i, &e);
	struct store_msg m[4];
	struct store_room st = {.room = {"#d", 2},
	                        .last_seq = 99,
	                        .topic = {"t", 1},
	                        .topic_by = {"x", 1}};
	/* #d's seqs at 0, 2 and 3; a new room's first message at 1. */
	static const uint64_t bad[][3] = {
	        {11, 5, 13},  /* an old seq */
	        {11, 11, 13}, /* twice in the batch */
	        {13, 12, 15}, /* going back */
	        {11, 12, 10}, /* the last one stored, at the end */
	};
	size_t k;

	ck_assert_int_eq(su_append(s, "#d", 1, 10, 4), 0);
	for (k = 0; k < 4; k++) {
		su_fill(&m[0], "#d", bad[k][0]);
		su_fill(&m[1], "#new", 1);
		su_fill(&m[2], "#d", bad[k][1]);
		su_fill(&m[3], "#d", bad[k][2]);
		/* With and without a room state. */
		ck_assert_int_eq(store__append(s, m, 4, &st, 1),
		                 TCPCHAT_EINVAL);
		ck_assert_str_ne(store__errmsg(s), "");
		check_untouched(s);
		ck_assert_int_eq(store__append(s, m, 4, NULL, 0),
		                 TCPCHAT_EINVAL);
		check_untouched(s);
	}
	/* Seq 0, an empty room name. */
	su_fill(&m[0], "#d", 0);
	ck_assert_int_eq(store__append(s, m, 1, NULL, 0), TCPCHAT_EINVAL);
	su_fill(&m[0], "", 11);
	ck_assert_int_eq(store__append(s, m, 1, NULL, 0), TCPCHAT_EINVAL);
	su_fill(&m[0], "#d", (uint64_t)INT64_MAX + 1);
	ck_assert_int_eq(store__append(s, m, 1, NULL, 0), TCPCHAT_EINVAL);
	check_untouched(s);
	/* And the store still takes good batches. */
	ck_assert_int_eq(su_append(s, "#d", 11, 12, 2), 0);
	ck_assert_uint_eq(su_last_seq(s, "#d"), 12);
	su_close(s, &e);
}
END_TEST

START_TEST(test_faults)
{
	struct su_env e;
	struct su_got g;
	struct store *inner = su_open(_i, &e), *s;
	uint64_t epoch = store__epoch(inner), oldest;

	ck_assert_int_eq(store__faulty(&s, inner), 0);
	ck_assert_uint_eq(store__epoch(s), epoch);
	/* Append: the second call fails and writes nothing. */
	store__faulty_set(s, STORE_FAULT_APPEND, 1);
	ck_assert_int_eq(su_append(s, "#f", 1, 10, 10), 0);
	ck_assert_int_eq(su_append(s, "#f", 11, 20, 10), TCPCHAT_ESYS);
	ck_assert_str_eq(store__errmsg(s), "injected fault");
	ck_assert_int_eq(su_append(s, "#g", 1, 1, 1), TCPCHAT_ESYS);
	ck_assert_int_eq(su_read(s, "#f", 0, 0, 0, 0, &g), 10);
	ck_assert_int_eq(su_read(s, "#g", 0, 0, 0, 0, &g), 0);
	ck_assert_uint_eq(su_last_seq(s, "#f"), 10);
	store__faulty_set(s, STORE_FAULT_APPEND, -1);
	ck_assert_int_eq(su_append(s, "#f", 11, 20, 10), 0);
	ck_assert_str_ne(store__errmsg(s), "injected fault");
	/* Read: half delivered, then the error. */
	store__faulty_set(s, STORE_FAULT_READ, 0);
	ck_assert_int_eq(su_read(s, "#f", 0, 0, 0, 0, &g), TCPCHAT_ESYS);
	ck_assert_uint_eq(g.n, 10);
	ck_assert_uint_eq(g.seq[9], 10);
	store__faulty_set(s, STORE_FAULT_READ, -1);
	/* Trim: nothing dropped. */
	store__faulty_set(s, STORE_FAULT_TRIM, 0);
	ck_assert_int_eq(store__trim(s, su_str("#f"), 1, 0), TCPCHAT_ESYS);
	store__faulty_set(s, STORE_FAULT_TRIM, -1);
	ck_assert_int_eq(su_read(s, "#f", 0, 0, 0, 0, &g), 20);
	/* Oldest and rooms. */
	store__faulty_set(s, STORE_FAULT_OLDEST, 0);
	ck_assert_int_eq(store__oldest(s, su_str("#f"), &oldest), TCPCHAT_ESYS);
	store__faulty_set(s, STORE_FAULT_ROOMS, 0);
	ck_assert_int_eq(su_count_rooms(s), TCPCHAT_ESYS);
	store__faulty_set(s, STORE_FAULT_ROOMS, -1);
	ck_assert_int_eq(su_count_rooms(s), 1);
	store__close(s);
	su_close(NULL, &e);
}
END_TEST

/* ---- the memory store -------------------------------------------------- */

START_TEST(test_mem_epoch)
{
	struct store *a, *b;

	ck_assert_int_eq(store__mem_open(&a, 0), 0);
	ck_assert_int_eq(store__mem_open(&b, 0), 0);
	ck_assert_uint_ne(store__epoch(a), 0);
	ck_assert_uint_ne(store__epoch(b), 0);
	ck_assert_uint_ne(store__epoch(a), store__epoch(b));
	ck_assert_uint_eq(store__epoch(a), store__epoch(a));
	store__close(a);
	store__close(b);
	ck_assert_int_eq(store__mem_open(NULL, 0), TCPCHAT_EINVAL);
	store__close(NULL);
}
END_TEST

START_TEST(test_mem_bound)
{
	struct su_got g;
	struct store *s;
	uint64_t oldest;

	ck_assert_int_eq(store__mem_open(&s, 5), 0);
	ck_assert_int_eq(su_append(s, "#m", 1, 3, 3), 0);
	ck_assert_int_eq(su_append(s, "#m", 4, 9, 2), 0);
	ck_assert_int_eq(store__oldest(s, su_str("#m"), &oldest), 0);
	ck_assert_uint_eq(oldest, 5);
	ck_assert_int_eq(su_read(s, "#m", 0, 0, 0, 0, &g), 5);
	ck_assert_uint_eq(g.seq[0], 5);
	ck_assert_uint_eq(g.seq[4], 9);
	/* One batch larger than the bound keeps its newest. */
	ck_assert_int_eq(su_append(s, "#m", 10, 30, 21), 0);
	ck_assert_int_eq(su_read(s, "#m", 0, 0, 0, 0, &g), 5);
	ck_assert_uint_eq(g.seq[0], 26);
	ck_assert_uint_eq(g.seq[4], 30);
	ck_assert_int_eq(su_read(s, "#m", 0, 28, 2, 1, &g), 2);
	ck_assert_uint_eq(g.seq[0], 26);
	ck_assert_uint_eq(su_last_seq(s, "#m"), 30);
	/* The bound is per room. */
	ck_assert_int_eq(su_append(s, "#n", 1, 4, 4), 0);
	ck_assert_int_eq(su_read(s, "#n", 0, 0, 0, 0, &g), 4);
	ck_assert_int_eq(su_read(s, "#m", 0, 0, 0, 0, &g), 5);
	store__close(s);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("both");
	TCase *mem = tcase_create("mem");
	int n = su_nimpl();

	tcase_add_loop_test(tc, test_append_read, 0, n);
	tcase_add_loop_test(tc, test_batches, 0, n);
	tcase_add_loop_test(tc, test_room_states, 0, n);
	tcase_add_loop_test(tc, test_trim, 0, n);
	tcase_add_loop_test(tc, test_duplicate_seq, 0, n);
	tcase_add_loop_test(tc, test_faults, 0, n);
	suite_add_tcase(s, tc);
	tcase_add_test(mem, test_mem_epoch);
	tcase_add_test(mem, test_mem_bound);
	suite_add_tcase(s, mem);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	printf("store implementations tested: %s\n", su_impl_names());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0;
}
