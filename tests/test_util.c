/* Tests for util.c: error strings, version, byte buffers, UTF-8, names. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tcpchat/tcpchat.h>

/* ---- error strings ---------------------------------------------------- */

START_TEST(test_strerror_all)
{
	int n = 1 - TCPCHAT_ERROR_MIN;
	const char **seen = calloc((size_t)n, sizeof(*seen));
	int i, k;

	ck_assert_ptr_nonnull(seen);
	for (i = 0; i < n; i++) {
		const char *s = tcpchat_strerror(-i);

		ck_assert_msg(s != NULL, "code %d has no string", -i);
		ck_assert_msg(s[0] != '\0', "code %d has an empty string", -i);
		ck_assert_msg(strcmp(s, "unknown error") != 0,
		              "code %d is unknown", -i);
		for (k = 0; k < i; k++)
			ck_assert_msg(strcmp(s, seen[k]) != 0,
			              "codes %d and %d share \"%s\"", -i, -k,
			              s);
		seen[i] = s;
	}
	free(seen);
}
END_TEST

START_TEST(test_strerror_unknown)
{
	static const int codes[] = {
	        1, 2, 100, INT32_MAX, TCPCHAT_ERROR_MIN - 1, -1000, INT32_MIN};
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		ck_assert_str_eq(tcpchat_strerror(codes[i]), "unknown error");
	ck_assert_str_eq(tcpchat_strerror(TCPCHAT_OK), "success");
}
END_TEST

/* ---- version ---------------------------------------------------------- */

START_TEST(test_version)
{
	int num = -1;

	ck_assert_str_eq(tcpchat_version(NULL), TCPCHAT_VERSION_STRING);
	ck_assert_str_eq(tcpchat_version(&num), TCPCHAT_VERSION_STRING);
	ck_assert_int_eq(num, TCPCHAT_VERSION_NUM);
	ck_assert_int_eq(TCPCHAT_VERSION_NUM,
	                 (TCPCHAT_VERSION_MAJOR << 16) |
	                         (TCPCHAT_VERSION_MINOR << 8) |
	                         TCPCHAT_VERSION_PATCH);
}
END_TEST

START_TEST(test_check_version)
{
	ck_assert(TCPCHAT_CHECK_VERSION(0, 0, 0));
	ck_assert(TCPCHAT_CHECK_VERSION(TCPCHAT_VERSION_MAJOR,
	                                TCPCHAT_VERSION_MINOR,
	                                TCPCHAT_VERSION_PATCH));
	ck_assert(!TCPCHAT_CHECK_VERSION(TCPCHAT_VERSION_MAJOR,
	                                 TCPCHAT_VERSION_MINOR,
	                                 TCPCHAT_VERSION_PATCH + 1));
	ck_assert(!TCPCHAT_CHECK_VERSION(TCPCHAT_VERSION_MAJOR,
	                                 TCPCHAT_VERSION_MINOR + 1, 0));
	ck_assert(!TCPCHAT_CHECK_VERSION(TCPCHAT_VERSION_MAJOR + 1, 0, 0));
	if (TCPCHAT_VERSION_MINOR > 0)
		ck_assert(TCPCHAT_CHECK_VERSION(TCPCHAT_VERSION_MAJOR,
		                                TCPCHAT_VERSION_MINOR - 1, 99));
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(tcpchat_reason_name(TCPCHAT_REASON_QUIT), "quit");
	ck_assert_str_eq(tcpchat_reason_name(TCPCHAT_REASON_SLOW), "slow");
	ck_assert_str_eq(tcpchat_reason_name(TCPCHAT_REASON_PART), "part");
	ck_assert_str_eq(tcpchat_reason_name(0), "unknown");
	ck_assert_str_eq(tcpchat_reason_name(TCPCHAT_REASON_LOST + 1),
	                 "unknown");
	ck_assert_str_eq(tcpchat_reason_name(UINT32_MAX), "unknown");
	/* an int field (an event's reason) converts; negative is unknown */
	int reason = -5;
	ck_assert_str_eq(tcpchat_reason_name(reason), "unknown");
	ck_assert_str_eq(tcpchat_msg_type_name(TCPCHAT_MSG_TEXT), "text");
	ck_assert_ptr_null(tcpchat_msg_type_name(0));
	ck_assert_ptr_null(tcpchat_msg_type_name(TCPCHAT_MSG_TYPE_MAX + 1));
	ck_assert_ptr_null(tcpchat_msg_type_name(TCPCHAT_MSG_UNKNOWN));
	ck_assert_ptr_null(tcpchat_msg_type_name(UINT32_MAX));
	for (int t = 1; t <= TCPCHAT_MSG_TYPE_MAX; t++)
		ck_assert_ptr_nonnull(tcpchat_msg_type_name(t));
}
END_TEST

/* ---- buffers ---------------------------------------------------------- */

START_TEST(test_buf)
{
	tcpchat_buf b = {0};
	char big[1000];
	size_t i;

	ck_assert_int_eq(tcpchat_buf_append(&b, "abc", 3), 0);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_uint_ge(b.cap, 3);
	ck_assert_mem_eq(b.data, "abc", 3);

	ck_assert_int_eq(tcpchat_buf_append(&b, NULL, 0), 0);
	ck_assert_uint_eq(b.len, 3);

	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(tcpchat_buf_append(&b, big, sizeof(big)), 0);
	ck_assert_uint_eq(b.len, 3 + 10 * sizeof(big));
	ck_assert_mem_eq(b.data, "abc", 3);
	for (i = 0; i < 10; i++)
		ck_assert_mem_eq(b.data + 3 + i * sizeof(big), big,
		                 sizeof(big));

	tcpchat_buf_free(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, 0);
	tcpchat_buf_free(&b); /* twice is fine */
	tcpchat_buf_free(NULL);
}
END_TEST

START_TEST(test_buf_reserve)
{
	tcpchat_buf b = {0};
	char *p;

	ck_assert_int_eq(tcpchat_buf_reserve(&b, 0), 0);
	ck_assert_int_eq(tcpchat_buf_reserve(&b, 100), 0);
	ck_assert_uint_ge(b.cap, 100);
	ck_assert_uint_eq(b.len, 0);
	p = b.data;
	/* room already there: no reallocation */
	ck_assert_int_eq(tcpchat_buf_reserve(&b, 50), 0);
	ck_assert_ptr_eq(b.data, p);

	ck_assert_int_eq(tcpchat_buf_append(&b, "hello", 5), 0);
	ck_assert_int_eq(tcpchat_buf_reserve(&b, 5000), 0);
	ck_assert_uint_ge(b.cap - b.len, 5000);
	ck_assert_mem_eq(b.data, "hello", 5);

	/* impossible sizes fail and leave the buffer alone */
	p = b.data;
	ck_assert_int_eq(tcpchat_buf_reserve(&b, SIZE_MAX), TCPCHAT_ENOMEM);
	ck_assert_int_eq(tcpchat_buf_reserve(&b, SIZE_MAX - 2), TCPCHAT_ENOMEM);
	ck_assert_ptr_eq(b.data, p);
	ck_assert_uint_eq(b.len, 5);
	ck_assert_mem_eq(b.data, "hello", 5);

	ck_assert_int_eq(tcpchat_buf_reserve(NULL, 1), TCPCHAT_EINVAL);
	tcpchat_buf_free(&b);
}
END_TEST

/* ---- UTF-8 ------------------------------------------------------------ */

struct bytes {
	const char *s;
	size_t n;
	int ok;
	const char *what;
};

#define B(lit, ok, what)                                                       \
	{                                                                      \
		lit, sizeof(lit) - 1, ok, what                                 \
	}

static const struct bytes utf8_cases[] = {
        B("", 1, "empty"),
        B("hello", 1, "ASCII"),
        B("a\0b", 1, "NUL is valid UTF-8"),
        B("\x7f", 1, "DEL"),
        B("z\xc3\xb6"
          "e",
          1, "U+00F6"),
        B("\xc2\x80", 1, "U+0080, smallest 2-byte"),
        B("\xdf\xbf", 1, "U+07FF"),
        B("\xe0\xa0\x80", 1, "U+0800, smallest 3-byte"),
        B("\xe2\x82\xac", 1, "euro sign"),
        B("\xed\x9f\xbf", 1, "U+D7FF, below the surrogates"),
        B("\xee\x80\x80", 1, "U+E000, above the surrogates"),
        B("\xef\xbf\xbf", 1, "U+FFFF"),
        B("\xf0\x90\x80\x80", 1, "U+10000, smallest 4-byte"),
        B("\xf0\x9f\x98\x80", 1, "emoji"),
        B("\xf4\x8f\xbf\xbf", 1, "U+10FFFF"),
        B("\x80", 0, "lone continuation byte"),
        B("a\xbf", 0, "continuation after ASCII"),
        B("\xc0\x80", 0, "overlong NUL"),
        B("\xc1\xbf", 0, "overlong 2-byte"),
        B("\xe0\x80\x80", 0, "overlong 3-byte"),
        B("\xe0\x9f\xbf", 0, "overlong U+07FF"),
        B("\xf0\x80\x80\x80", 0, "overlong 4-byte"),
        B("\xf0\x8f\xbf\xbf", 0, "overlong U+FFFF"),
        B("\xed\xa0\x80", 0, "surrogate U+D800"),
        B("\xed\xbf\xbf", 0, "surrogate U+DFFF"),
        B("\xed\xa0\xbd\xed\xb8\x80", 0, "CESU-8 surrogate pair"),
        B("\xf4\x90\x80\x80", 0, "U+110000"),
        B("\xf5\x80\x80\x80", 0, "lead byte F5"),
        B("\xff", 0, "byte FF"),
        B("\xfe", 0, "byte FE"),
        B("\xc3", 0, "truncated 2-byte"),
        B("\xe2\x82", 0, "truncated 3-byte"),
        B("\xf0\x9f\x98", 0, "truncated 4-byte"),
        B("ab\xe2", 0, "truncated at the end"),
        B("\xc3\x28", 0, "bad continuation"),
        B("\xe2\x28\xa1", 0, "bad second byte of 3"),
        B("\xe2\x82\x28", 0, "bad third byte of 3"),
        B("\xf0\x9f\x28\x80", 0, "bad third byte of 4"),
};

START_TEST(test_utf8_valid)
{
	const struct bytes *c = &utf8_cases[_i];
	/* exact-size copy so a sanitizer catches reads past the end */
	char *p = malloc(c->n ? c->n : 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, c->s, c->n);
	ck_assert_msg(tcpchat_utf8_valid(p, c->n) == c->ok, "%s: expected %d",
	              c->what, c->ok);
	free(p);
}
END_TEST

START_TEST(test_utf8_null)
{
	ck_assert_int_eq(tcpchat_utf8_valid(NULL, 0), 1);
	ck_assert_int_eq(tcpchat_utf8_valid(NULL, 3), 0);
}
END_TEST

/* ---- names ------------------------------------------------------------ */

static const struct bytes name_cases[] = {
        B("", 0, "empty"),
        B("alice", 1, "ASCII"),
        B("a", 1, "one byte"),
        B("zo\xc3\xab", 1, "zoe with diaeresis"),
        B("\xe6\x97\xa5\xe6\x9c\xac", 1, "CJK"),
        B("\xf0\x9f\x98\x80", 1, "emoji"),
        B("bob_the-2nd.[x]", 1, "punctuation"),
        B("abcdefghijklmnopqrstuvwxyz012345", 1, "32 bytes"),
        B("abcdefghijklmnopqrstuvwxyz0123456", 0, "33 bytes"),
        B("abcdefghijklmnopqrstuvwxyz0123\xc3\xab", 1, "32 bytes, multi-byte"),
        B("abcdefghijklmnopqrstuvwxyz01234\xc3\xab", 0, "33 bytes, multi-byte"),
        B("al ice", 0, "space"),
        B(" alice", 0, "leading space"),
        B("alice ", 0, "trailing space"),
        B("al\tice", 0, "tab"),
        B("al\nice", 0, "newline"),
        B("al\rice", 0, "carriage return"),
        B("a\x01", 0, "control"),
        B("a\0b", 0, "NUL"),
        B("a\x7f", 0, "DEL"),
        B("a\xc2\x85", 0, "U+0085 next line"),
        B("a\xc2\x80", 0, "U+0080"),
        B("a\xc2\x9f", 0, "U+009F"),
        B("a\xc2\xa0", 0, "U+00A0 no-break space"),
        B("a\xc2\xa1", 1, "U+00A1"),
        B("a\xff", 0, "invalid byte"),
        B("a\xc3", 0, "truncated"),
        B("a\xc0\xae", 0, "overlong"),
        B("a\xed\xa0\x80", 0, "surrogate"),
};

START_TEST(test_name_check)
{
	const struct bytes *c = &name_cases[_i];
	char *p = malloc(c->n ? c->n : 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, c->s, c->n);
	ck_assert_msg(tcpchat_name_check(p, c->n) ==
	                      (c->ok ? 0 : TCPCHAT_EBADNAME),
	              "%s: expected %s", c->what, c->ok ? "ok" : "EBADNAME");
	free(p);
}
END_TEST

START_TEST(test_name_null)
{
	ck_assert_int_eq(tcpchat_name_check(NULL, 0), TCPCHAT_EBADNAME);
	ck_assert_int_eq(tcpchat_name_check(NULL, 5), TCPCHAT_EBADNAME);
}
END_TEST

/* ---- room names ------------------------------------------------------- */

#define R63 "#abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0"

static const struct bytes room_cases[] = {
        B("", 0, "empty"),
        B("#", 0, "only the hash"),
        B("lobby", 0, "no hash"),
        B("#lobby", 1, "ASCII"),
        B("#a", 1, "one byte"),
        B("##x", 1, "hash in the name"),
        B("#dev-2.0_[x]", 1, "punctuation"),
        B("#caf\xc3\xa9", 1, "U+00E9"),
        B("#\xe6\x97\xa5\xe6\x9c\xac", 1, "CJK"),
        B("#\xf0\x9f\x98\x80", 1, "emoji"),
        B(R63, 1, "64 bytes"),
        B(R63 "1", 0, "65 bytes"),
        B("#abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXY\xc3"
          "\xa9",
          1, "64 bytes, multi-byte"),
        B("#abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\xc3"
          "\xa9",
          0, "65 bytes, multi-byte"),
        B("#a b", 0, "space"),
        B("# a", 0, "leading space"),
        B("#a,b", 0, "comma"),
        B("#a:b", 0, "colon"),
        B("#a:", 0, "trailing colon"),
        B("#a\tb", 0, "tab"),
        B("#a\nb", 0, "newline"),
        B("#a\0b", 0, "NUL"),
        B("#a\x01", 0, "control"),
        B("#a\x7f", 0, "DEL"),
        B("#a\xc2\x85", 0, "U+0085 next line"),
        B("#a\xc2\xa0", 0, "U+00A0 no-break space"),
        B("#a\xc2\xa1", 1, "U+00A1"),
        B("#a\xe1\x9a\x80", 0, "U+1680 ogham space"),
        B("#a\xe2\x80\x80", 0, "U+2000 en quad"),
        B("#a\xe2\x80\x8b", 0, "U+200B zero width space"),
        B("#a\xe2\x80\x8f", 0, "U+200F right-to-left mark"),
        B("#a\xe2\x80\x90", 1, "U+2010 hyphen"),
        B("#a\xe2\x80\xa8", 0, "U+2028 line separator"),
        B("#a\xe2\x80\xae", 0, "U+202E right-to-left override"),
        B("#a\xe2\x80\xaf", 0, "U+202F narrow no-break space"),
        B("#a\xe2\x81\x9f", 0, "U+205F math space"),
        B("#a\xe2\x81\xa6", 0, "U+2066 isolate"),
        B("#a\xe2\x81\xb0", 1, "U+2070 superscript zero"),
        B("#a\xe3\x80\x80", 0, "U+3000 ideographic space"),
        B("#a\xef\xbb\xbf", 0, "U+FEFF byte order mark"),
        B("#a\xff", 0, "invalid byte"),
        B("#a\xc3", 0, "truncated"),
        B("#a\xc0\xae", 0, "overlong"),
        B("#a\xed\xa0\x80", 0, "surrogate"),
        B("#a\xf4\x90\x80\x80", 0, "above U+10FFFF"),
};

START_TEST(test_room_check)
{
	const struct bytes *c = &room_cases[_i];
	char *p = malloc(c->n ? c->n : 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, c->s, c->n);
	ck_assert_msg(tcpchat_room_check(p, c->n) ==
	                      (c->ok ? 0 : TCPCHAT_EBADROOM),
	              "%s: expected %s", c->what, c->ok ? "ok" : "EBADROOM");
	free(p);
}
END_TEST

START_TEST(test_room_null)
{
	ck_assert_int_eq(tcpchat_room_check(NULL, 0), TCPCHAT_EBADROOM);
	ck_assert_int_eq(tcpchat_room_check(NULL, 5), TCPCHAT_EBADROOM);
}
END_TEST

static Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc;

	tc = tcase_create("strerror");
	tcase_add_test(tc, test_strerror_all);
	tcase_add_test(tc, test_strerror_unknown);
	suite_add_tcase(s, tc);

	tc = tcase_create("version");
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_check_version);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("buf");
	tcase_add_test(tc, test_buf);
	tcase_add_test(tc, test_buf_reserve);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_loop_test(tc, test_utf8_valid, 0,
	                    (int)(sizeof(utf8_cases) / sizeof(utf8_cases[0])));
	tcase_add_test(tc, test_utf8_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("name");
	tcase_add_loop_test(tc, test_name_check, 0,
	                    (int)(sizeof(name_cases) / sizeof(name_cases[0])));
	tcase_add_test(tc, test_name_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("room");
	tcase_add_loop_test(tc, test_room_check, 0,
	                    (int)(sizeof(room_cases) / sizeof(room_cases[0])));
	tcase_add_test(tc, test_room_null);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(util_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0;
}
