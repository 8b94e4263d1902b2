/* Tests for the line codec's history lines: "/history" from a client,
 * texts from the history ("~ " and the live line) and the HISTORY end
 * line from a server, what the encoder refuses (ACK among it), hostile
 * lines, and the usage a server answers to a malformed "/history". */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <tcpchat/tcpchat.h>

#include "codec_line.h"
#include "codecutil.h"
#include "testutil.h"

#define T_TEXT TCPCHAT_MSG_TEXT
#define T_HIST TCPCHAT_MSG_HISTORY
#define T_UNK TCPCHAT_MSG_UNKNOWN
#define HIST TCPCHAT_MSGF_HISTORY
#define GAP TCPCHAT_MSGF_GAP
#define DEF TCPCHAT_MSGF_DEFAULT_ROOM
#define ECHO TCPCHAT_MSGF_ECHO

#define A31 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ROOM64 "#" A31 A31 "a"
#define ROOM65 "#" A31 A31 "aa"
#define U64MAX "18446744073709551615"

/* ---- client lines ----------------------------------------------------- */

struct line_in {
	const char *in;
	tcpchat_msg want; /* .type UNKNOWN: body is the whole line */
};

#define UNK(line)                                                              \
	{                                                                      \
		line "\n", MSG(.type = T_UNK, .body = S(line))                 \
	}

static const struct line_in client_lines[] = {
        {"/history\n", MSG(.type = T_HIST)},
        {"/history \t\r\n", MSG(.type = T_HIST)},
        {"/history 1\n", MSG(.type = T_HIST, .code = 1)},
        {"/history 20\n", MSG(.type = T_HIST, .code = 20)},
        {"/history 1000\n", MSG(.type = T_HIST, .code = 1000)},
        {"/history\t 7 \t\n", MSG(.type = T_HIST, .code = 7)},
        {"/history #dev\n", MSG(.type = T_HIST, .room = S("#dev"))},
        {"/history #dev 5\n",
         MSG(.type = T_HIST, .code = 5, .room = S("#dev"))},
        {"/history  #dev \t 999 \n",
         MSG(.type = T_HIST, .code = 999, .room = S("#dev"))},
        {"/history " ROOM64 " 1000\n",
         MSG(.type = T_HIST, .code = 1000, .room = S(ROOM64))},
        {"/history #\xc3\xa9t\xc3\xa9\n",
         MSG(.type = T_HIST, .room = S("#\xc3\xa9t\xc3\xa9"))},
        {"/history #5 5\n", MSG(.type = T_HIST, .code = 5, .room = S("#5"))},
        UNK("/history 0"),
        UNK("/history 00"),
        UNK("/history 05"),
        UNK("/history 1001"),
        UNK("/history 9999"),
        UNK("/history " U64MAX),
        UNK("/history 18446744073709551616"),
        UNK("/history 99999999999999999999999999999999999999"),
        UNK("/history -1"),
        UNK("/history +5"),
        UNK("/history 5x"),
        UNK("/history 1e3"),
        UNK("/history 0x10"),
        UNK("/history 5 #dev"),
        UNK("/history 5 6"),
        UNK("/history #dev 5 6"),
        UNK("/history #dev x"),
        UNK("/history #dev #ops"),
        UNK("/history dev"),
        UNK("/history x"),
        UNK("/history #"),
        UNK("/history #a,b"),
        UNK("/history #a,b 5"),
        UNK("/history " ROOM65),
        UNK("/history #x\xe2\x80\xae 5"),
        UNK("/history #\xff"),
        UNK("/history \xd9\xa5"), /* an Arabic-Indic digit five */
        UNK("/HISTORY"),
        UNK("/historyx"),
        UNK("/hist"),
        {"/history/#dev\n", MSG(.type = T_TEXT, .body = S("/history/#dev"))},
        {"//history 5\n", MSG(.type = T_TEXT, .body = S("/history 5"))},
        {"#dev /history\n",
         MSG(.type = T_TEXT, .room = S("#dev"), .body = S("/history"))},
        /* a "~ " line from a client is plain text */
        {"~ alice: hi\n", MSG(.type = T_TEXT, .body = S("~ alice: hi"))},
        {"=== history #dev: 0\n",
         MSG(.type = T_TEXT, .body = S("=== history #dev: 0"))},
};

START_TEST(test_client_lines)
{
	const struct line_in *l = &client_lines[_i];
	size_t len = strlen(l->in);
	struct cu_dec d;

	cu_dec_run(&d, tcpchat_codec_line(), l->in, len, 0, MAX_FRAME);
	ck_assert_msg(d.rc == (long)len, "\"%s\": got %ld", l->in, d.rc);
	ck_assert_ptr_null(d.ctx.error);
	cu_check_msg(l->in, &d.msg, &l->want);
	if (d.msg.room.len)
		ck_assert(d.msg.room.ptr >= d.copy &&
		          d.msg.room.ptr + d.msg.room.len <= d.copy + len);
	cu_dec_free(&d);
}
END_TEST

/* ---- every form, both directions, exact bytes ------------------------- */

static const struct cu_form forms[] = {
        /* ---- client to server: what is not carried is dropped ---- */
        {0, 0, MSG(.type = T_HIST), "/history\n", MSG(.type = T_HIST)},
        {0, 0, MSG(.type = T_HIST, .code = 20, .epoch = 3, .seq = 9),
         "/history 20\n", MSG(.type = T_HIST, .code = 20)},
        {0, 0, MSG(.type = T_HIST, .code = 1000, .room = S("#dev")),
         "/history #dev 1000\n",
         MSG(.type = T_HIST, .code = 1000, .room = S("#dev"))},
        {0, 0, MSG(.type = T_HIST, .room = S(ROOM64), .flags = DEF),
         "/history " ROOM64 "\n", MSG(.type = T_HIST, .room = S(ROOM64))},
        /* ---- server to client: texts from the history ---- */
        {SRV, SRV,
         MSG(.type = T_TEXT, .id = 4, .timestamp = 9, .seq = 7, .epoch = 2,
             .sender = S("alice"), .body = S("hi"), .room = S("#lobby"),
             .flags = HIST | DEF),
         "~ alice: hi\n",
         MSG(.type = T_TEXT, .sender = S("alice"), .body = S("hi"),
             .flags = HIST)},
        {SRV, SRV,
         MSG(.type = T_TEXT, .seq = 9, .sender = S("bob"), .body = S("x: y"),
             .room = S("#dev"), .flags = HIST),
         "~ [#dev] bob: x: y\n",
         MSG(.type = T_TEXT, .sender = S("bob"), .body = S("x: y"),
             .room = S("#dev"), .flags = HIST)},
        {SRV, SRV,
         MSG(.type = T_TEXT, .body = S("restart at 5"), .room = S("#dev"),
             .flags = HIST),
         "~ [#dev] *** restart at 5\n",
         MSG(.type = T_TEXT, .body = S("restart at 5"), .room = S("#dev"),
             .flags = HIST)},
        {SRV, SRV, MSG(.type = T_TEXT, .body = S("~ x"), .flags = HIST),
         "~ *** ~ x\n", MSG(.type = T_TEXT, .body = S("~ x"), .flags = HIST)},
        {SRV, SRV,
         MSG(.type = T_TEXT, .sender = S("bob"), .body = S("a\nb"),
             .flags = HIST),
         "~ bob: a?b\n",
         MSG(.type = T_TEXT, .sender = S("bob"), .body = S("a?b"),
             .flags = HIST)},
        {SRV, SRV,
         MSG(.type = T_TEXT, .sender = S("bob"), .target = S("alice"),
             .body = S("psst"), .flags = HIST),
         "~ *bob* psst\n",
         MSG(.type = T_TEXT, .sender = S("bob"), .target = S("*"),
             .body = S("psst"), .flags = HIST)},
        {SRV, SRV,
         MSG(.type = T_TEXT, .target = S("bob"), .body = S("psst"),
             .flags = HIST | ECHO),
         "~ -> *bob* psst\n",
         MSG(.type = T_TEXT, .target = S("bob"), .body = S("psst"),
             .flags = HIST | ECHO)},
        /* "~" and no space: a live line */
        {SRV, SRV, MSG(.type = T_TEXT, .sender = S("~alice"), .body = S("hi")),
         "~alice: hi\n",
         MSG(.type = T_TEXT, .sender = S("~alice"), .body = S("hi"))},
        /* a notice from the history is no greeting */
        {SRV | HSK, SRV,
         MSG(.type = T_TEXT, .body = S("tcpchat: x"), .flags = HIST),
         "~ *** tcpchat: x\n",
         MSG(.type = T_TEXT, .body = S("tcpchat: x"), .flags = HIST)},
        /* ---- server to client: the HISTORY end ---- */
        {SRV, SRV,
         MSG(.type = T_HIST, .code = 2, .room = S("#dev"), .first = 9,
             .last = 10, .oldest = 9, .seq = 12, .epoch = 5, .flags = GAP),
         "=== history #dev: 2 (9-10), before 9 gone\n",
         MSG(.type = T_HIST, .code = 2, .room = S("#dev"), .first = 9,
             .last = 10, .oldest = 9, .flags = GAP)},
        {SRV, SRV,
         MSG(.type = T_HIST, .code = 3, .room = S("#dev"), .first = 4,
             .last = 6, .oldest = 1, .seq = 6),
         "=== history #dev: 3 (4-6)\n",
         MSG(.type = T_HIST, .code = 3, .room = S("#dev"), .first = 4,
             .last = 6)},
        {SRV, SRV,
         MSG(.type = T_HIST, .room = S("#lobby"), .oldest = 8, .seq = 7,
             .flags = DEF),
         "=== history #lobby: 0\n", MSG(.type = T_HIST, .room = S("#lobby"))},
        {SRV, SRV,
         MSG(.type = T_HIST, .room = S("#dev"), .first = 1, .last = 2,
             .oldest = 40, .flags = GAP),
         "=== history #dev: 0, before 40 gone\n",
         MSG(.type = T_HIST, .room = S("#dev"), .oldest = 40, .flags = GAP)},
        {SRV, SRV,
         MSG(.type = T_HIST, .code = UINT32_MAX, .room = S(ROOM64),
             .first = UINT64_MAX, .last = UINT64_MAX, .oldest = UINT64_MAX,
             .flags = GAP | HIST),
         "=== history " ROOM64 ": 4294967295 (" U64MAX "-" U64MAX
         "), before " U64MAX " gone\n",
         MSG(.type = T_HIST, .code = UINT32_MAX, .room = S(ROOM64),
             .first = UINT64_MAX, .last = UINT64_MAX, .oldest = UINT64_MAX,
             .flags = GAP)},
        {SRV, SRV, MSG(.type = T_HIST, .code = 1, .room = S("#dev")),
         "=== history #dev: 1 (0-0)\n",
         MSG(.type = T_HIST, .code = 1, .room = S("#dev"))},
        {SRV, SRV, MSG(.type = T_HIST, .room = S("#dev"), .flags = GAP),
         "=== history #dev: 0, before 0 gone\n",
         MSG(.type = T_HIST, .room = S("#dev"), .flags = GAP)},
};

START_TEST(test_forms)
{
	cu_line_form(&forms[_i], _i);
}
END_TEST

/* ---- server lines that are none of the forms -------------------------- */

static const char *const bad_server_lines[] = {
        /* "~ " and no live TEXT line after it */
        "~\n",
        "~ \n",
        "~  alice: hi\n",
        "~ ~ alice: hi\n",
        "~ hello\n",
        "~ --> alice joined\n",
        "~ <-- alice left (quit)\n",
        "~ -!- error 26: x\n",
        "~ === welcome alice\n",
        "~ === history #dev: 0\n",
        "~ === 2 online\n",
        "~ /ping\n",
        "~ [#a b] x: y\n",
        "~ [#dev] hello\n",
        "~ *alice*\n",
        "\t~ alice: hi\n",
        /* malformed ends: a line the client cannot read, as any other
         * malformed "=== " line */
        "=== history\n",
        "=== history \n",
        "=== history #dev\n",
        "=== history #dev:\n",
        "=== history #dev: \n",
        "=== history #dev 2\n",
        "=== history #dev:2 (1-2)\n",
        "=== history dev: 0\n",
        "=== history #: 0\n",
        "=== history #a,b: 0\n",
        "=== history #a b: 0\n",
        "=== history " ROOM65 ": 0\n",
        "=== history #x\xe2\x80\xae: 0\n",
        "=== history  #dev: 0\n",
        "=== history #dev:  0\n",
        "=== history #dev: 0 \n",
        "=== history #dev: -1\n",
        "=== history #dev: x\n",
        "=== history #dev: 0 (1-2)\n",
        "=== history #dev: 2\n",
        "=== history #dev: 2 \n",
        "=== history #dev: 2 (1-2\n",
        "=== history #dev: 2 (1 2)\n",
        "=== history #dev: 2 (1-)\n",
        "=== history #dev: 2 (-2)\n",
        "=== history #dev: 2 ()\n",
        "=== history #dev: 2 (1-2) \n",
        "=== history #dev: 2 (1-2)x\n",
        "=== history #dev: 2 (1-2),before 9 gone\n",
        "=== history #dev: 2 (1-2), before gone\n",
        "=== history #dev: 2 (1-2), before 9\n",
        "=== history #dev: 2 (1-2), before 9 gone \n",
        "=== history #dev: 2 (1-2), before 9 gone, before 9 gone\n",
        "=== history #dev: 2 (1-2), before -9 gone\n",
        "=== history #dev: 4294967296 (1-2)\n",
        "=== history #dev: 99999999999999999999 (1-2)\n",
        "=== history #dev: 2 (18446744073709551616-2)\n",
        "=== history #dev: 2 (1-18446744073709551616)\n",
        "=== history #dev: 0, before 18446744073709551616 gone\n",
        "=== history #dev: 0, before 1" U64MAX " gone\n",
        "=== History #dev: 0\n",
        "=== histories #dev: 0\n",
        "/history\n",
        "/history #dev 5\n",
};

START_TEST(test_bad_server_lines)
{
	cu_line_bad_server_line(bad_server_lines[_i]);
}
END_TEST

/* Before the WELCOME a client skips every "=== " line but the welcome,
 * history ends too; a text from the history is read (as a live one). */
START_TEST(test_handshake_lines)
{
	static const char end[] = "=== history #dev: 0\n";
	static const char text[] = "~ *** hi\n";
	static const char greet[] = "=== history: 2 texts\n";
	const tcpchat_codec *c = tcpchat_codec_line();
	struct cu_dec d;

	cu_dec_run(&d, c, end, sizeof(end) - 1, SRV | HSK, MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)(sizeof(end) - 1));
	ck_assert_uint_eq(d.msg.type, 0);
	cu_dec_free(&d);
	cu_dec_run(&d, c, text, sizeof(text) - 1, SRV | HSK, MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)(sizeof(text) - 1));
	ck_assert_uint_eq(d.msg.type, T_TEXT);
	ck_assert_uint_eq(d.msg.flags, HIST);
	cu_dec_free(&d);
	/* a first word that ends in ':' is a greeting, skipped always */
	cu_dec_run(&d, c, greet, sizeof(greet) - 1, SRV, MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)(sizeof(greet) - 1));
	ck_assert_uint_eq(d.msg.type, 0);
	cu_dec_free(&d);
}
END_TEST

/* ---- what the encoder refuses ----------------------------------------- */

static const struct cu_bad_enc einval[] = {
        {0, MSG(.type = T_HIST, .code = 1001), "history 1001"},
        {0, MSG(.type = T_HIST, .code = UINT32_MAX), "history 2^32-1"},
        {0, MSG(.type = T_HIST, .flags = TCPCHAT_MSGF_AFTER, .seq = 4),
         "history after 4"},
        {0, MSG(.type = T_HIST, .flags = TCPCHAT_MSGF_AFTER),
         "history after 0"},
        {0,
         MSG(.type = T_HIST, .code = 5, .room = S("#dev"),
             .flags = TCPCHAT_MSGF_BEFORE, .seq = 40),
         "history before 40"},
        {0, MSG(.type = T_HIST, .room = S("dev")), "history dev"},
        {0, MSG(.type = T_HIST, .room = S("#a b")), "history #a b"},
        {0, MSG(.type = T_HIST, .room = S(ROOM65)), "history, room of 65"},
        {0, MSG(.type = T_HIST, .room = S("#a\n")), "history, room with LF"},
        {0, MSG(.type = T_HIST, .room = {NULL, 3}), "history, NULL room"},
        {0,
         MSG(.type = TCPCHAT_MSG_ACK, .ref = S("r1"), .room = S("#dev"),
             .seq = 3),
         "ack from a client"},
        {SRV,
         MSG(.type = TCPCHAT_MSG_ACK, .ref = S("r1"), .room = S("#dev"),
             .seq = 3, .epoch = 1, .id = 9),
         "ack from the server"},
        {SRV, MSG(.type = TCPCHAT_MSG_ACK), "empty ack from the server"},
        {SRV, MSG(.type = T_HIST, .code = 2, .first = 1, .last = 2),
         "s: history end without room"},
        {SRV, MSG(.type = T_HIST, .room = S("#a,b")),
         "s: history end, bad room"},
        {SRV,
         MSG(.type = T_TEXT, .sender = S("a"), .room = S("#dev"),
             .target = S("bob"), .body = S("hi"), .flags = HIST),
         "s: history text with room and target"},
        {SRV,
         MSG(.type = T_TEXT, .target = S("bob"), .body = S("hi"),
             .flags = HIST),
         "s: history private text without sender"},
        {SRV,
         MSG(.type = T_TEXT, .sender = S("a"), .room = S("#a b"),
             .body = S("hi"), .flags = HIST),
         "s: history text, bad room"},
};

START_TEST(test_einval)
{
	cu_line_einval(&einval[_i]);
}
END_TEST

/* A client's TEXT with a ref goes out without it: the line never asks for
 * an ACK. */
START_TEST(test_ref_not_sent)
{
	const tcpchat_msg m = MSG(.type = T_TEXT, .room = S("#dev"),
	                          .body = S("hi"), .ref = S("r-1"));
	const tcpchat_codec *c = tcpchat_codec_line();
	tcpchat_buf b = {0};

	ck_assert_int_eq(c->encode(NULL, &m, 0, &b), 0);
	ck_assert_uint_eq(b.len, 8);
	ck_assert_mem_eq(b.data, "#dev hi\n", 8);
	tcpchat_buf_free(&b);
}
END_TEST

/* ---- the answer to a malformed "/history" ----------------------------- */

START_TEST(test_usage)
{
	static const char *const bad[] = {"/history 0", "/history x",
	                                  "/history 1001", "/history 5 #dev",
	                                  "/history #dev 5 6"};
	char out[128];
	size_t i;

	for (i = 0; i < ARRAY_LEN(bad); i++) {
		ck_assert_int_eq(
		        line__answer(bad[i], strlen(bad[i]), out, sizeof(out)),
		        TCPCHAT_ENOTYPE);
		ck_assert_str_eq(out, "usage: /history [ROOM] [N]");
	}
	for (i = 0; line__help_line(i); i++)
		if (strstr(line__help_line(i), "/history [#room] [N]"))
			break;
	ck_assert_ptr_nonnull(line__help_line(i));
}
END_TEST

/* ---- a whole answer, as a client reads it ----------------------------- */

START_TEST(test_answer_stream)
{
	static const char in[] = "=== welcome alice\r\n"
	                         "--> alice joined\n"
	                         "~ bob: one\n"
	                         "~ *** two\n"
	                         "=== history #lobby: 2 (4-5), before 4 gone\n"
	                         "bob: live\n"
	                         "~ [#dev] carol: old\n"
	                         "=== history #dev: 1 (7-7)\n"
	                         "=== history #ops: 0\n";
	static const struct {
		uint32_t type, code, flags;
		const char *room;
		uint64_t first, last, oldest;
	} want[] = {
	        {TCPCHAT_MSG_WELCOME, 2, 0, "", 0, 0, 0},
	        {TCPCHAT_MSG_JOIN, 0, 0, "", 0, 0, 0},
	        {T_TEXT, 0, HIST, "", 0, 0, 0},
	        {T_TEXT, 0, HIST, "", 0, 0, 0},
	        {T_HIST, 2, GAP, "#lobby", 4, 5, 4},
	        {T_TEXT, 0, 0, "", 0, 0, 0},
	        {T_TEXT, 0, HIST, "#dev", 0, 0, 0},
	        {T_HIST, 1, 0, "#dev", 7, 7, 0},
	        {T_HIST, 0, 0, "#ops", 0, 0, 0},
	};
	const tcpchat_codec *c = tcpchat_codec_line();
	size_t off = 0, len = sizeof(in) - 1, i;

	for (i = 0; i < ARRAY_LEN(want); i++) {
		struct cu_dec d;

		cu_dec_run(&d, c, in + off, len - off, SRV, MAX_FRAME);
		ck_assert_msg(d.rc > 0, "#%zu: %ld", i, d.rc);
		ck_assert_uint_eq(d.msg.type, want[i].type);
		ck_assert_uint_eq(d.msg.code, want[i].code);
		ck_assert_uint_eq(d.msg.flags, want[i].flags);
		ck_assert_uint_eq(d.msg.room.len, strlen(want[i].room));
		ck_assert_uint_eq(d.msg.first, want[i].first);
		ck_assert_uint_eq(d.msg.last, want[i].last);
		ck_assert_uint_eq(d.msg.oldest, want[i].oldest);
		off += (size_t)d.rc;
		cu_dec_free(&d);
	}
	ck_assert_uint_eq(off, len);
}
END_TEST

/* ---- the size limit ---------------------------------------------------- */

/* A history line of exactly the limit is read; one byte more is refused
 * as any other line is. */
START_TEST(test_overlong)
{
	static const char *const pre[] = {"~ [#dev] a: ", "~ *** "};
	const tcpchat_codec *c = tcpchat_codec_line();
	enum { LIMIT = 64 };
	size_t i;

	for (i = 0; i < ARRAY_LEN(pre); i++) {
		size_t k = strlen(pre[i]);
		char buf[LIMIT + 8];
		struct cu_dec d;

		memcpy(buf, pre[i], k);
		memset(buf + k, 'a', LIMIT - 1 - k);
		buf[LIMIT - 1] = '\n';
		cu_dec_run(&d, c, buf, LIMIT, SRV, LIMIT);
		ck_assert_int_eq(d.rc, LIMIT);
		ck_assert_uint_eq(d.msg.flags & HIST, HIST);
		cu_dec_free(&d);
		memset(buf + k, 'a', LIMIT - k);
		buf[LIMIT] = '\n';
		cu_dec_run(&d, c, buf, LIMIT + 1, SRV, LIMIT);
		ck_assert_int_eq(d.rc, TCPCHAT_EMSGSIZE);
		cu_dec_free(&d);
	}
}
END_TEST

/* ---- suite ------------------------------------------------------------ */

static Suite *codec_history_suite(void)
{
	Suite *s = suite_create("codec_history");
	TCase *tc = tcase_create("line");

	tcase_add_loop_test(tc, test_client_lines, 0,
	                    (int)ARRAY_LEN(client_lines));
	tcase_add_loop_test(tc, test_forms, 0, (int)ARRAY_LEN(forms));
	tcase_add_loop_test(tc, test_bad_server_lines, 0,
	                    (int)ARRAY_LEN(bad_server_lines));
	tcase_add_test(tc, test_handshake_lines);
	tcase_add_loop_test(tc, test_einval, 0, (int)ARRAY_LEN(einval));
	tcase_add_test(tc, test_ref_not_sent);
	tcase_add_test(tc, test_usage);
	tcase_add_test(tc, test_answer_stream);
	tcase_add_test(tc, test_overlong);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run_suite(codec_history_suite());
}
