/* Tests for the codecs and wire protocol 2: rooms, private messages,
 * topics and the room list, in the binary, line and json codecs.  The
 * protocol-1 cases are in test_codec.c. */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tcpchat/tcpchat.h>

#include "codecutil.h"
#include "testutil.h"

#define ECHO TCPCHAT_MSGF_ECHO
#define DEF TCPCHAT_MSGF_DEFAULT_ROOM
#define PART TCPCHAT_REASON_PART
#define T_TEXT TCPCHAT_MSG_TEXT
#define T_UNK TCPCHAT_MSG_UNKNOWN

/* Room names of 64 bytes (the longest) and 65 bytes. */
#define A31 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ROOM64 "#" A31 A31 "a"
#define ROOM65 "#" A31 A31 "aa"
/* A name of 33 bytes (one too many). */
#define NAME33 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* ---- helpers ---------------------------------------------------------- */

/* A decoded string lies inside the decoded frame (the codecs do not copy
 * what needs no unescaping). */
static void check_in(const struct cu_dec *d, tcpchat_str s, size_t len)
{
	if (s.len == 0)
		return;
	ck_assert(s.ptr >= d->copy && s.ptr + s.len <= d->copy + len);
}

/* ---- line: client lines ----------------------------------------------- */

struct line_in {
	unsigned flags;
	const char *in;
	tcpchat_msg want; /* .type UNKNOWN: body is the whole line */
};

#define UNK(line)                                                              \
	{                                                                      \
		0, line "\n", MSG(.type = T_UNK, .body = S(line))              \
	}
#define PLAIN(line)                                                            \
	{                                                                      \
		0, line "\n", MSG(.type = T_TEXT, .body = S(line))             \
	}

static const struct line_in client_lines[] = {
        /* /join ROOM */
        {0, "/join #dev\n", MSG(.type = TCPCHAT_MSG_JOIN, .room = S("#dev"))},
        {0, "/join  \t#dev \t\r\n",
         MSG(.type = TCPCHAT_MSG_JOIN, .room = S("#dev"))},
        {0, "/join\t#dev\n", MSG(.type = TCPCHAT_MSG_JOIN, .room = S("#dev"))},
        {0, "/join " ROOM64 "\n",
         MSG(.type = TCPCHAT_MSG_JOIN, .room = S(ROOM64))},
        {0, "/join #\xc3\xa9t\xc3\xa9\n",
         MSG(.type = TCPCHAT_MSG_JOIN, .room = S("#\xc3\xa9t\xc3\xa9"))},
        {0, "/join ##\n", MSG(.type = TCPCHAT_MSG_JOIN, .room = S("##"))},
        {0, "/join #Dev\n", MSG(.type = TCPCHAT_MSG_JOIN, .room = S("#Dev"))},
        UNK("/join"),
        UNK("/join "),
        UNK("/join x"),
        UNK("/join dev"),
        UNK("/join #"),
        UNK("/join #a b"),
        UNK("/join #a,b"),
        UNK("/join #dev #ops"),
        UNK("/join " ROOM65),
        UNK("/join #a\x01"),
        UNK("/join #a\x7f"),
        UNK("/join #a\xc2\x85"),
        UNK("/join #x\xc2\xa0"),
        UNK("/join #x\xe2\x80\x8b"),
        UNK("/join #x\xe2\x80\xae"),
        UNK("/join #x\xe3\x80\x80"),
        UNK("/join #x\xef\xbb\xbf"),
        UNK("/join #\xff"),
        UNK("/join #\xc3"),
        UNK("/join #\xc0\xa3"),
        UNK("/join #\xed\xa0\x80"),
        UNK("/JOIN #dev"),
        UNK("/joinx #dev"),
        PLAIN("/join/#dev"),
        {0, "//join #dev\n", MSG(.type = T_TEXT, .body = S("/join #dev"))},

        /* /part */
        {0, "/part\n", MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART)},
        {0, "/part \t\n", MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART)},
        {0, "/part #dev\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#dev"))},
        {0, "/part #dev bye now\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#dev"),
             .body = S("bye now"))},
        {0, "/part #dev  x \n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#dev"),
             .body = S(" x "))},
        {0, "/part #dev \n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#dev"))},
        {0, "/part tired of it\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART,
             .body = S("tired of it"))},
        {0, "/part  \ttired\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .body = S("tired"))},
        UNK("/part #"),
        UNK("/part #a,b"),
        UNK("/part #bad,room because"),
        UNK("/part " ROOM65 " x"),
        UNK("/part #x\xe2\x80\xae x"),

        /* /msg NAME TEXT */
        {0, "/msg bob hi there\n",
         MSG(.type = T_TEXT, .target = S("bob"), .body = S("hi there"))},
        {0, "/msg  bob  hi\n",
         MSG(.type = T_TEXT, .target = S("bob"), .body = S(" hi"))},
        {0, "/msg bob\thi\n",
         MSG(.type = T_TEXT, .target = S("bob"), .body = S("hi"))},
        {0, "/msg zo\xc3\xab /quit\n",
         MSG(.type = T_TEXT, .target = S("zo\xc3\xab"), .body = S("/quit"))},
        UNK("/msg"),
        UNK("/msg "),
        UNK("/msg bob"),
        UNK("/msg bob "),
        UNK("/msg " NAME33 " hi"),
        UNK("/msg b\x01o hi"),
        UNK("/msg b\xc2\xa0o hi"),
        UNK("/msg b\xffo hi"),

        /* /rooms, /who, /topic */
        {0, "/rooms\n", MSG(.type = TCPCHAT_MSG_ROOMS)},
        {0, "/rooms \n", MSG(.type = TCPCHAT_MSG_ROOMS)},
        UNK("/rooms #dev"),
        UNK("/rooms please"),
        {0, "/who\n", MSG(.type = TCPCHAT_MSG_WHO)},
        {0, "/who #dev\n", MSG(.type = TCPCHAT_MSG_WHO, .room = S("#dev"))},
        {0, "/who  #dev \n", MSG(.type = TCPCHAT_MSG_WHO, .room = S("#dev"))},
        UNK("/who x"),
        UNK("/who is here?"),
        UNK("/who #"),
        UNK("/who #a b"),
        UNK("/who #a,b"),
        {0, "/topic #dev Rust only\n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("Rust only"))},
        {0, "/topic #dev\n", MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"))},
        {0, "/topic #dev \n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"))},
        {0, "/topic  #dev  x\n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"), .body = S(" x"))},
        UNK("/topic"),
        UNK("/topic "),
        UNK("/topic x"),
        UNK("/topic dev x"),
        UNK("/topic #a,b x"),
        UNK("/topic #"),

        /* /kick, /ban ROOM NAME[ REASON], /unban ROOM NAME */
        {0, "/kick #dev bob\n",
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"))},
        {0, "/kick  #dev \tbob  spam and more\n",
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"),
             .body = S(" spam and more"))},
        {0, "/ban #dev bob spam\n",
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"),
             .body = S("spam"), .flags = TCPCHAT_MSGF_BAN)},
        {0, "/unban #dev bob \n",
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"),
             .flags = TCPCHAT_MSGF_UNBAN)},
        UNK("/kick"),
        UNK("/kick #dev"),
        UNK("/kick dev bob"),
        UNK("/kick #a,b bob"),
        UNK("/kick #dev " NAME33),
        UNK("/ban bob"),
        UNK("/unban #dev bob why"),
        UNK("/unban"),

        /* ROOM TEXT */
        {0, "#dev hello world\n",
         MSG(.type = T_TEXT, .room = S("#dev"), .body = S("hello world"))},
        {0, "#dev\thi\n",
         MSG(.type = T_TEXT, .room = S("#dev"), .body = S("hi"))},
        {0, "#dev  hi\r\n",
         MSG(.type = T_TEXT, .room = S("#dev"), .body = S(" hi"))},
        {0, "#dev /quit\n",
         MSG(.type = T_TEXT, .room = S("#dev"), .body = S("/quit"))},
        {0, "##x y\n", MSG(.type = T_TEXT, .room = S("##x"), .body = S("y"))},
        {0, ROOM64 " x\n",
         MSG(.type = T_TEXT, .room = S(ROOM64), .body = S("x"))},
        PLAIN("#a: b"), /* no colon in a room name */
        /* a first word that is no room name: chat text, as in protocol 1 */
        PLAIN("#"),
        PLAIN("# hi"),
        PLAIN("#dev"),
        PLAIN("#dev "),
        PLAIN("#a,b hi"),
        PLAIN(ROOM65 " hi"),
        PLAIN("#a\x01 hi"),
        PLAIN("#x\xc2\xa0 hi"),
        PLAIN("#x\xe2\x80\x8b hi"),
        PLAIN("#x\xe2\x80\xae hi"),
        PLAIN("#\xff hi"),
        PLAIN("#\xe2\x82 hi"),
        PLAIN("dev #dev hi"),
        PLAIN(" #dev hi"),

        /* protocol 1, unchanged */
        {0, "/quit\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_QUIT)},
        PLAIN("/quit now"),
        PLAIN("/ping #dev"),
        UNK("/nick bob"),
        {HSK, "  alice \r\n",
         MSG(.type = TCPCHAT_MSG_HELLO, .code = 2, .sender = S("alice"))},
        {HSK, "/join #dev\n",
         MSG(.type = TCPCHAT_MSG_HELLO, .code = 2, .sender = S("/join"),
             .body = S("#dev"))},
        {HSK, "#dev hi\n",
         MSG(.type = TCPCHAT_MSG_HELLO, .code = 2, .sender = S("#dev"),
             .body = S("hi"))},
};

START_TEST(test_line_client_lines)
{
	const struct line_in *l = &client_lines[_i];
	size_t len = strlen(l->in);
	struct cu_dec d;

	cu_dec_run(&d, tcpchat_codec_line(), l->in, len, l->flags, MAX_FRAME);
	ck_assert_msg(d.rc == (long)len, "\"%s\": got %ld", l->in, d.rc);
	ck_assert_ptr_null(d.ctx.error);
	cu_check_msg(l->in, &d.msg, &l->want);
	check_in(&d, d.msg.room, len);
	check_in(&d, d.msg.target, len);
	check_in(&d, d.msg.body, len);
	cu_dec_free(&d);
}
END_TEST

/* ---- line: every form, both directions, exact bytes ------------------- */

static const struct cu_form forms[] = {
        /* ---- server to client ---- */
        {SRV, SRV,
         MSG(.type = T_TEXT, .id = 4, .timestamp = 9, .sender = S("alice"),
             .body = S("hi"), .room = S("#lobby"), .flags = DEF),
         "alice: hi\n",
         MSG(.type = T_TEXT, .sender = S("alice"), .body = S("hi"))},
        {SRV, SRV, MSG(.type = T_TEXT, .sender = S("alice"), .body = S("hi")),
         "alice: hi\n",
         MSG(.type = T_TEXT, .sender = S("alice"), .body = S("hi"))},
        {SRV, SRV,
         MSG(.type = T_TEXT, .id = 5, .sender = S("alice"), .body = S("hi"),
             .room = S("#dev")),
         "[#dev] alice: hi\n",
         MSG(.type = T_TEXT, .sender = S("alice"), .body = S("hi"),
             .room = S("#dev"))},
        {SRV, SRV, MSG(.type = T_TEXT, .body = S("restart at 5")),
         "*** restart at 5\n", MSG(.type = T_TEXT, .body = S("restart at 5"))},
        {SRV, SRV, MSG(.type = T_TEXT, .body = S("x"), .room = S("#dev")),
         "[#dev] *** x\n",
         MSG(.type = T_TEXT, .body = S("x"), .room = S("#dev"))},
        {SRV, SRV,
         MSG(.type = T_TEXT, .body = S("x"), .room = S("#lobby"), .flags = DEF),
         "*** x\n", MSG(.type = T_TEXT, .body = S("x"))},
        {SRV, SRV,
         MSG(.type = T_TEXT, .id = 7, .sender = S("alice"), .target = S("bob"),
             .body = S("psst")),
         "*alice* psst\n",
         MSG(.type = T_TEXT, .sender = S("alice"), .target = S("*"),
             .body = S("psst"))},
        {SRV, SRV,
         MSG(.type = T_TEXT, .id = 7, .sender = S("bob"), .target = S("alice"),
             .body = S("psst"), .flags = ECHO),
         "-> *alice* psst\n",
         MSG(.type = T_TEXT, .target = S("alice"), .body = S("psst"),
             .flags = ECHO)},
        {SRV, SRV,
         MSG(.type = T_TEXT, .sender = S("bob"), .target = S("bob"),
             .body = S("note to self"), .flags = ECHO),
         "-> *bob* note to self\n",
         MSG(.type = T_TEXT, .target = S("bob"), .body = S("note to self"),
             .flags = ECHO)},
        {SRV, SRV,
         MSG(.type = T_TEXT, .sender = S("alice"), .target = S("bob")),
         "*alice* \n",
         MSG(.type = T_TEXT, .sender = S("alice"), .target = S("*"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_JOIN, .code = 3, .sender = S("alice"),
             .room = S("#lobby"), .flags = DEF),
         "--> alice joined\n",
         MSG(.type = TCPCHAT_MSG_JOIN, .sender = S("alice"))},
        {SRV, SRV, MSG(.type = TCPCHAT_MSG_JOIN, .sender = S("alice")),
         "--> alice joined\n",
         MSG(.type = TCPCHAT_MSG_JOIN, .sender = S("alice"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_JOIN, .code = 2, .sender = S("alice"),
             .room = S("#dev")),
         "--> alice joined #dev\n",
         MSG(.type = TCPCHAT_MSG_JOIN, .sender = S("alice"),
             .room = S("#dev"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_JOIN, .sender = S("joined"),
             .room = S("#joined")),
         "--> joined joined #joined\n",
         MSG(.type = TCPCHAT_MSG_JOIN, .sender = S("joined"),
             .room = S("#joined"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_QUIT,
             .sender = S("alice"), .body = S("bye")),
         "<-- alice left (quit: bye)\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_QUIT,
             .sender = S("alice"), .body = S("bye"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_TIMEOUT,
             .sender = S("alice")),
         "<-- alice left (timeout)\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_TIMEOUT,
             .sender = S("alice"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .sender = S("alice"),
             .body = S("bye"), .room = S("#lobby"), .flags = DEF),
         "<-- alice left (part: bye)\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .sender = S("alice"),
             .body = S("bye"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .sender = S("alice"),
             .body = S("later"), .room = S("#dev")),
         "<-- alice left #dev (part: later)\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .sender = S("alice"),
             .body = S("later"), .room = S("#dev"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_KICKED,
             .sender = S("alice"), .room = S("#dev")),
         "<-- alice left #dev (kicked)\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_KICKED,
             .sender = S("alice"), .room = S("#dev"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .sender = S("bob"),
             .body = S("x left (y)"), .room = S("#dev")),
         "<-- bob left #dev (part: x left (y))\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .sender = S("bob"),
             .body = S("x left (y)"), .room = S("#dev"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_WELCOME, .code = 2, .sender = S("alice"),
             .room = S("#lobby"), .caps = TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS),
         "=== welcome alice\n",
         MSG(.type = TCPCHAT_MSG_WELCOME, .code = 2, .sender = S("alice"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_ERROR, .code = TCPCHAT_WIRE_NOTMEMBER,
             .body = S("not in #dev")),
         "-!- error 26: not in #dev\n",
         MSG(.type = TCPCHAT_MSG_ERROR, .code = TCPCHAT_WIRE_NOTMEMBER,
             .body = S("not in #dev"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_WHO, .code = 3, .body = S("alice bob carol")),
         "=== 3 online: alice bob carol\n",
         MSG(.type = TCPCHAT_MSG_WHO, .code = 3, .body = S("alice bob carol"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_WHO, .code = 2, .body = S("alice bob"),
             .room = S("#dev")),
         "=== 2 in #dev: alice bob\n",
         MSG(.type = TCPCHAT_MSG_WHO, .code = 2, .body = S("alice bob"),
             .room = S("#dev"))},
        {SRV, SRV, MSG(.type = TCPCHAT_MSG_WHO, .room = S("#dev")),
         "=== 0 in #dev\n", MSG(.type = TCPCHAT_MSG_WHO, .room = S("#dev"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_TOPIC, .timestamp = 5, .room = S("#dev"),
             .body = S("Rust only")),
         "=== topic #dev: Rust only\n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("Rust only"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("Rust only"), .sender = S("alice")),
         "=== topic #dev by alice: Rust only\n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("Rust only"), .sender = S("alice"))},
        {SRV, SRV, MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev")),
         "=== topic #dev cleared\n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .sender = S("alice")),
         "=== topic #dev cleared by alice\n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .sender = S("alice"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("cleared")),
         "=== topic #dev: cleared\n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("cleared"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("by bob: x")),
         "=== topic #dev: by bob: x\n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("by bob: x"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"), .body = S("t"),
             .sender = S("a:")),
         "=== topic #dev by a:: t\n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"), .body = S("t"),
             .sender = S("a:"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_ROOMS, .code = 3, .room = S("#dev"),
             .body = S("Rust only")),
         "=== #dev 3: Rust only\n",
         MSG(.type = TCPCHAT_MSG_ROOMS, .code = 3, .room = S("#dev"),
             .body = S("Rust only"))},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_ROOMS, .code = 10, .room = S("#lobby"),
             .flags = DEF),
         "=== #lobby 10\n",
         MSG(.type = TCPCHAT_MSG_ROOMS, .code = 10, .room = S("#lobby"))},
        {SRV, SRV, MSG(.type = TCPCHAT_MSG_ROOMS, .code = 2), "=== 2 rooms\n",
         MSG(.type = TCPCHAT_MSG_ROOMS, .code = 2)},
        {SRV, SRV, MSG(.type = TCPCHAT_MSG_ROOMS), "=== 0 rooms\n",
         MSG(.type = TCPCHAT_MSG_ROOMS)},
        {SRV, SRV,
         MSG(.type = T_TEXT, .sender = S("x"), .body = S("y"),
             .room = S("#a]")),
         "[#a]] x: y\n",
         MSG(.type = T_TEXT, .sender = S("x"), .body = S("y"),
             .room = S("#a]"))},
        {SRV, SRV,
         MSG(.type = T_TEXT, .sender = S("zo\xc3\xab"), .body = S("y"),
             .room = S("#\xc3\xa9t\xc3\xa9")),
         "[#\xc3\xa9t\xc3\xa9] zo\xc3\xab: y\n",
         MSG(.type = T_TEXT, .sender = S("zo\xc3\xab"), .body = S("y"),
             .room = S("#\xc3\xa9t\xc3\xa9"))},
        /* line breaks cannot get through */
        {SRV, SRV,
         MSG(.type = T_TEXT, .sender = S("bob"), .target = S("al\nice"),
             .body = S("a\r\n--> x joined"), .flags = ECHO),
         "-> *al?ice* a??"
         "--> x joined\n",
         MSG(.type = T_TEXT, .target = S("al?ice"),
             .body = S("a??"
                       "--> x joined"),
             .flags = ECHO)},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("a\n=== topic #ops: x")),
         "=== topic #dev: a?=== topic #ops: x\n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("a?=== topic #ops: x"))},

        /* ---- client to server ---- */
        {0, HSK,
         MSG(.type = TCPCHAT_MSG_HELLO, .code = 2, .sender = S("alice"),
             .caps = TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS),
         "alice\n",
         MSG(.type = TCPCHAT_MSG_HELLO, .code = 2, .sender = S("alice"))},
        {0, 0, MSG(.type = TCPCHAT_MSG_JOIN, .room = S("#dev")), "/join #dev\n",
         MSG(.type = TCPCHAT_MSG_JOIN, .room = S("#dev"))},
        {0, 0,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#dev"),
             .body = S("bye now")),
         "/part #dev bye now\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#dev"),
             .body = S("bye now"))},
        {0, 0,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#dev"),
             .body = S("#ops next")),
         "/part #dev #ops next\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#dev"),
             .body = S("#ops next"))},
        {0, 0,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_QUIT,
             .room = S("#dev")),
         "/part #dev\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#dev"))},
        {0, 0, MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART), "/part\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART)},
        {0, 0, MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .body = S("tired")),
         "/part tired\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .body = S("tired"))},
        {0, 0,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_QUIT,
             .body = S("x")),
         "/quit\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_QUIT)},
        {0, 0, MSG(.type = T_TEXT, .target = S("bob"), .body = S("hi there")),
         "/msg bob hi there\n",
         MSG(.type = T_TEXT, .target = S("bob"), .body = S("hi there"))},
        {0, 0, MSG(.type = T_TEXT, .target = S("bob"), .body = S(" x")),
         "/msg bob  x\n",
         MSG(.type = T_TEXT, .target = S("bob"), .body = S(" x"))},
        {0, 0, MSG(.type = T_TEXT, .room = S("#dev"), .body = S("hello")),
         "#dev hello\n",
         MSG(.type = T_TEXT, .room = S("#dev"), .body = S("hello"))},
        {0, 0, MSG(.type = T_TEXT, .room = S("#dev"), .body = S(" x")),
         "#dev  x\n", MSG(.type = T_TEXT, .room = S("#dev"), .body = S(" x"))},
        {0, 0, MSG(.type = T_TEXT, .room = S("#dev"), .body = S("/quit")),
         "#dev /quit\n",
         MSG(.type = T_TEXT, .room = S("#dev"), .body = S("/quit"))},
        {0, 0, MSG(.type = T_TEXT, .room = S("#dev"), .body = S("#ops hi")),
         "#dev #ops hi\n",
         MSG(.type = T_TEXT, .room = S("#dev"), .body = S("#ops hi"))},
        {0, 0, MSG(.type = T_TEXT, .body = S("#dev")), "#dev\n",
         MSG(.type = T_TEXT, .body = S("#dev"))},
        {0, 0, MSG(.type = T_TEXT, .body = S("#a,b hi")), "#a,b hi\n",
         MSG(.type = T_TEXT, .body = S("#a,b hi"))},
        {0, 0, MSG(.type = T_TEXT, .body = S("# hi")), "# hi\n",
         MSG(.type = T_TEXT, .body = S("# hi"))},
        {0, 0, MSG(.type = T_TEXT, .body = S("/join #x")), "//join #x\n",
         MSG(.type = T_TEXT, .body = S("/join #x"))},
        {0, 0, MSG(.type = T_TEXT, .body = S("/msg bob")), "//msg bob\n",
         MSG(.type = T_TEXT, .body = S("/msg bob"))},
        {0, 0,
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("new one")),
         "/topic #dev new one\n",
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"),
             .body = S("new one"))},
        {0, 0, MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev")),
         "/topic #dev\n", MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev"))},
        {0, 0, MSG(.type = TCPCHAT_MSG_ROOMS, .code = 4), "/rooms\n",
         MSG(.type = TCPCHAT_MSG_ROOMS)},
        {0, 0,
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"),
             .body = S("be\tnice")),
         "/kick #dev bob be\tnice\n",
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"),
             .body = S("be\tnice"))},
        {0, 0,
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"),
             .flags = TCPCHAT_MSGF_UNBAN),
         "/unban #dev bob\n",
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"),
             .flags = TCPCHAT_MSGF_UNBAN)},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_KICK, .id = 7, .sender = S("alice"),
             .room = S("#dev"), .target = S("bob"), .body = S("spam: yes"),
             .flags = TCPCHAT_MSGF_BAN),
         "=== banned bob from #dev: spam: yes\n",
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"),
             .body = S("spam: yes"), .flags = TCPCHAT_MSGF_BAN)},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#lobby"), .target = S("bob"),
             .flags = TCPCHAT_MSGF_UNBAN | DEF),
         "=== unbanned bob from #lobby\n",
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#lobby"), .target = S("bob"),
             .flags = TCPCHAT_MSGF_UNBAN)},
        {SRV, SRV,
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob")),
         "=== kicked bob from #dev\n",
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"))},
        {0, 0, MSG(.type = TCPCHAT_MSG_WHO, .room = S("#dev")), "/who #dev\n",
         MSG(.type = TCPCHAT_MSG_WHO, .room = S("#dev"))},
        {0, 0, MSG(.type = TCPCHAT_MSG_WHO), "/who\n",
         MSG(.type = TCPCHAT_MSG_WHO)},
        {0, 0,
         MSG(.type = T_TEXT, .room = S("#dev"), .body = S("a\nb"),
             .flags = ECHO | DEF, .id = 3),
         "#dev a?b\n",
         MSG(.type = T_TEXT, .room = S("#dev"), .body = S("a?b"))},
};

START_TEST(test_line_forms)
{
	cu_line_form(&forms[_i], _i);
}
END_TEST

/* ---- line: server lines that are none of the forms -------------------- */

static const char *const bad_server_lines[] = {
        "[#a b] x: y\n",
        "[] x: y\n",
        "[#] x: y\n",
        "[dev] x: y\n",
        "[#a,b] x: y\n",
        "[#dev] hello\n",
        "[#dev]\n",
        "[#dev] \n",
        "[#dev] *alice* hi\n",
        "[" ROOM65 "] x: y\n",
        "[#x\xe2\x80\xae] x: y\n",
        "*alice*\n",
        "** hi\n",
        "*alice hi\n",
        "-> ** hi\n",
        "-> *bob*\n",
        "-> bob hi\n",
        "->*bob* hi\n",
        "--> alice joined #a,b\n",
        "--> alice joined dev\n",
        "--> alice joined #\n",
        "--> alice joins #dev\n",
        "--> alice #dev\n",
        "<-- alice left #a,b (part)\n",
        "<-- alice left #dev part\n",
        "<-- alice left #dev\n",
        "<-- alice left #dev (part\n",
        "<-- alice left dev (part)\n",
        "=== 2 in dev\n",
        "=== 2 in #dev a b\n",
        "=== 2 in \n",
        "=== 2 in #a,b: x\n",
        "=== x in #dev\n",
        "=== topic\n",
        "=== topic #dev\n",
        "=== topic #dev x\n",
        "=== topic dev: x\n",
        "=== topic #a,b: x\n",
        "=== topic #dev by : x\n",
        "=== topic #dev by alice x\n",
        "=== topic #dev by alice:\n",
        "=== topic #dev cleared by \n",
        "=== topic #dev cleared x\n",
        "=== topic  #dev: x\n",
        "=== topic #a\x01: x\n",
        "=== #dev\n",
        "=== #dev x\n",
        "=== #dev 3:x\n",
        "=== #dev 3 x\n",
        "=== #a b 3\n",
        "=== # 3\n",
        "=== #dev 4294967296\n",
        "=== 2 rooms: x\n",
        "=== 2 rooms \n",
        "=== rooms\n",
        "=== 4294967296 rooms\n",
        "/join #dev\n",
        "/msg bob hi\n",
        "#dev hi\n",
        "=== kicked bob\n",
        "=== kicked bob from dev\n",
        "=== banned b o b from #dev\n",
        "=== banned bob from #dev:\n",
        "=== banned bob from #dev: \n",
        "=== unbanned bob from #dev: why\n",
};

START_TEST(test_line_bad_server_lines)
{
	cu_line_bad_server_line(bad_server_lines[_i]);
}
END_TEST

/* ---- line: what the encoder refuses ----------------------------------- */

static const struct cu_bad_enc line_einval[] = {
        /* client */
        {0,
         MSG(.type = T_TEXT, .room = S("#dev"), .target = S("bob"),
             .body = S("hi")),
         "text with room and target"},
        {0, MSG(.type = T_TEXT, .target = S("b ob"), .body = S("hi")),
         "target with a space"},
        {0, MSG(.type = T_TEXT, .target = S(NAME33), .body = S("hi")),
         "target too long"},
        {0, MSG(.type = T_TEXT, .target = S("b\nob"), .body = S("hi")),
         "target with a line break"},
        {0, MSG(.type = T_TEXT, .target = S("bob")), "private, empty body"},
        {0, MSG(.type = T_TEXT, .room = S("#dev")), "room text, empty body"},
        {0, MSG(.type = T_TEXT, .room = S("#a b"), .body = S("x")),
         "room with a space"},
        {0, MSG(.type = T_TEXT, .room = S("#"), .body = S("x")), "room #"},
        {0, MSG(.type = T_TEXT, .room = S("dev"), .body = S("x")),
         "room without #"},
        {0, MSG(.type = T_TEXT, .room = S("#a,b"), .body = S("x")),
         "room with a comma"},
        {0, MSG(.type = T_TEXT, .room = S(ROOM65), .body = S("x")),
         "room of 65 bytes"},
        {0, MSG(.type = T_TEXT, .room = S("#a\x01"), .body = S("x")),
         "room with a control byte"},
        {0, MSG(.type = T_TEXT, .room = S("#x\xc2\xa0"), .body = S("x")),
         "room with U+00A0"},
        {0, MSG(.type = T_TEXT, .room = S("#x\xe2\x80\x8b"), .body = S("x")),
         "room with U+200B"},
        {0, MSG(.type = T_TEXT, .room = S("#x\xe2\x80\xae"), .body = S("x")),
         "room with U+202E"},
        {0, MSG(.type = T_TEXT, .room = S("#\xff"), .body = S("x")),
         "room not UTF-8"},
        {0, MSG(.type = T_TEXT, .body = S("#dev hi")),
         "plain text that reads as a room text"},
        {0, MSG(.type = T_TEXT, .body = S("#dev\thi")),
         "plain text that reads as a room text (tab)"},
        {0, MSG(.type = T_TEXT, .body = S("#a\x01 b")),
         "plain text that reads as a room text once cleaned"},
        {0, MSG(.type = TCPCHAT_MSG_JOIN), "join without room"},
        {0, MSG(.type = TCPCHAT_MSG_JOIN, .room = S("#a b")), "join #a b"},
        {0, MSG(.type = TCPCHAT_MSG_JOIN, .room = S("#")), "join #"},
        {0, MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#a,b")),
         "part #a,b"},
        {0, MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .body = S("#dev")),
         "part, reason starts with #"},
        {0, MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .body = S(" x")),
         "part, reason starts with a space"},
        {0, MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .body = S("\tx")),
         "part, reason starts with a tab"},
        {0, MSG(.type = TCPCHAT_MSG_WHO, .room = S("x")), "who x"},
        {0, MSG(.type = TCPCHAT_MSG_TOPIC, .body = S("x")),
         "topic without room"},
        {0, MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#a b"), .body = S("x")),
         "topic #a b"},
        {0, MSG(.type = TCPCHAT_MSG_TYPE_MAX + 1), "type 12"},
        {0, MSG(.type = TCPCHAT_MSG_UNKNOWN, .body = S("/join")),
         "MSG_UNKNOWN"},
        {0, MSG(.type = T_TEXT, .room = {NULL, 3}, .body = S("x")),
         "NULL room"},
        {0, MSG(.type = T_TEXT, .target = {NULL, 3}, .body = S("x")),
         "NULL target"},
        /* server */
        {SRV,
         MSG(.type = T_TEXT, .sender = S("a"), .room = S("#dev"),
             .target = S("bob"), .body = S("hi")),
         "s: text with room and target"},
        {SRV, MSG(.type = T_TEXT, .target = S("bob"), .body = S("hi")),
         "s: private text without sender"},
        {SRV,
         MSG(.type = T_TEXT, .sender = S("a"), .room = S("#a b"),
             .body = S("hi")),
         "s: text, room with a space"},
        {SRV,
         MSG(.type = T_TEXT, .sender = S("a"), .room = S("#a b"),
             .body = S("hi"), .flags = DEF),
         "s: text, bad default room"},
        {SRV, MSG(.type = TCPCHAT_MSG_JOIN, .sender = S("a"), .room = S("#")),
         "s: join #"},
        {SRV,
         MSG(.type = TCPCHAT_MSG_LEAVE, .sender = S("a"), .room = S("#a,b")),
         "s: leave #a,b"},
        {SRV, MSG(.type = TCPCHAT_MSG_WHO, .room = S("dev")), "s: who dev"},
        {SRV, MSG(.type = TCPCHAT_MSG_TOPIC, .body = S("x")),
         "s: topic without room"},
        {SRV,
         MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#x\xe2\x80\xae"),
             .body = S("x")),
         "s: topic, room with U+202E"},
        {SRV, MSG(.type = TCPCHAT_MSG_ROOMS, .room = S(ROOM65)),
         "s: rooms entry of 65 bytes"},
        {SRV, MSG(.type = TCPCHAT_MSG_HELLO), "s: hello"},
        {0, MSG(.type = TCPCHAT_MSG_KICK, .target = S("bob")),
         "c: kick without room"},
        {SRV, MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev")),
         "s: kick without target"},
        {0,
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("b b")),
         "c: kick of a bad name"},
        {0,
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"),
             .flags = TCPCHAT_MSGF_BAN | TCPCHAT_MSGF_UNBAN),
         "c: ban and unban"},
        {SRV,
         MSG(.type = TCPCHAT_MSG_KICK, .room = S("#dev"), .target = S("bob"),
             .body = S("x"), .flags = TCPCHAT_MSGF_UNBAN),
         "s: unban with a reason"},
        {SRV, MSG(.type = TCPCHAT_MSG_TYPE_MAX + 1), "s: type 12"},
};

START_TEST(test_line_einval)
{
	cu_line_einval(&line_einval[_i]);
}
END_TEST

/* ---- line: the size limit --------------------------------------------- */

START_TEST(test_line_overlong)
{
	static const char *const pre[] = {
	        "/join #",      "/msg bob ",        "#dev ",
	        "/topic #dev ", "=== topic #dev: ", "[#dev] a: "};
	const tcpchat_codec *c = tcpchat_codec_line();
	enum { LIMIT = 64 };
	size_t i;

	for (i = 0; i < ARRAY_LEN(pre); i++) {
		unsigned flags = pre[i][0] == '=' || pre[i][0] == '[' ? SRV : 0;
		size_t k = strlen(pre[i]);
		char buf[LIMIT + 8];
		struct cu_dec d;

		/* a line of exactly the limit, "\n" included, is read */
		memcpy(buf, pre[i], k);
		memset(buf + k, 'a', LIMIT - 1 - k);
		buf[LIMIT - 1] = '\n';
		cu_dec_run(&d, c, buf, LIMIT, flags, LIMIT);
		ck_assert_msg(d.rc == LIMIT, "%s: %ld", pre[i], d.rc);
		cu_dec_free(&d);
		/* one more byte is refused, with or without its "\n" */
		memset(buf + k, 'a', LIMIT - k);
		buf[LIMIT] = '\n';
		cu_dec_run(&d, c, buf, LIMIT + 1, flags, LIMIT);
		ck_assert_int_eq(d.rc, TCPCHAT_EMSGSIZE);
		cu_dec_free(&d);
		cu_dec_run(&d, c, buf, LIMIT, flags, LIMIT);
		ck_assert_int_eq(d.rc, TCPCHAT_EMSGSIZE);
		cu_dec_free(&d);
		/* and a prefix asks for more */
		cu_dec_run(&d, c, buf, LIMIT - 1, flags, LIMIT);
		ck_assert_int_eq(d.rc, 0);
		ck_assert_uint_eq(d.ctx.need, LIMIT);
		cu_dec_free(&d);
	}
}
END_TEST

/* /join with a 64-byte room at the limit; the same with 65 bytes is
 * UNKNOWN, not cut. */
START_TEST(test_line_room_limits)
{
	static const char join64[] = "/join " ROOM64 "\n";
	static const char join65[] = "/join " ROOM65 "\n";
	const tcpchat_codec *c = tcpchat_codec_line();
	struct cu_dec d;

	cu_dec_run(&d, c, join64, sizeof(join64) - 1, 0, sizeof(join64) - 1);
	ck_assert_int_eq(d.rc, (long)(sizeof(join64) - 1));
	ck_assert_uint_eq(d.msg.type, TCPCHAT_MSG_JOIN);
	ck_assert_uint_eq(d.msg.room.len, TCPCHAT_ROOM_MAX);
	cu_dec_free(&d);
	cu_dec_run(&d, c, join65, sizeof(join65) - 1, 0, MAX_FRAME);
	ck_assert_uint_eq(d.msg.type, TCPCHAT_MSG_UNKNOWN);
	ck_assert_uint_eq(d.msg.room.len, 0);
	cu_dec_free(&d);
}
END_TEST

/* ---- all codecs: protocol-2 round trips ------------------------------- */

static const tcpchat_msg p2_msgs[] = {
        MSG(.type = TCPCHAT_MSG_TOPIC, .id = 9, .timestamp = 1700000000000,
            .sender = S("alice"), .body = S("Rust only"), .room = S("#dev")),
        MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev")),
        MSG(.type = TCPCHAT_MSG_ROOMS),
        MSG(.type = TCPCHAT_MSG_ROOMS, .code = 3, .room = S("#lobby"),
            .body = S("welcome"), .flags = DEF),
        MSG(.type = TCPCHAT_MSG_ROOMS, .code = 1000),
        MSG(.type = T_TEXT, .id = 7, .sender = S("bob"), .target = S("alice"),
            .body = S("psst"), .flags = ECHO),
        MSG(.type = T_TEXT, .sender = S("bob"), .room = S("#lobby"),
            .body = S("hi"), .flags = DEF),
        MSG(.type = T_TEXT, .room = S("#\xc3\xa9t\xc3\xa9"), .body = S("x")),
        MSG(.type = TCPCHAT_MSG_JOIN, .code = 2, .sender = S("a"),
            .room = S("#dev"), .flags = DEF),
        MSG(.type = TCPCHAT_MSG_JOIN, .room = S(ROOM64)),
        MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#dev"),
            .body = S("bye")),
        MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART),
        MSG(.type = TCPCHAT_MSG_WHO, .code = 2, .room = S("#dev"),
            .body = S("a b")),
        MSG(.type = TCPCHAT_MSG_ERROR, .code = TCPCHAT_WIRE_BADROOM,
            .body = S("bad room")),
        MSG(.type = TCPCHAT_MSG_ERROR, .code = TCPCHAT_WIRE_LIMIT,
            .flags = TCPCHAT_MSGF_CLOSING),
        MSG(.type = TCPCHAT_MSG_WELCOME, .code = 2, .sender = S("alice"),
            .room = S("#lobby"), .caps = TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS,
            .max_frame = 65536),
        MSG(.type = TCPCHAT_MSG_HELLO, .code = 2, .sender = S("alice"),
            .caps = TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS),
        /* binary and JSON carry names as they are: rooms are judged by
         * the protocol layer, not by these codecs */
        MSG(.type = T_TEXT, .room = S("#a b"), .target = S("b\nob"),
            .body = S("x"), .flags = ECHO | DEF),
        MSG(.type = TCPCHAT_MSG_TOPIC, .room = S(ROOM65),
            .body = S("\xe2\x80\xae")),
};

START_TEST(test_p2_roundtrip)
{
	int ci = _i % 2 ? C_JSON : C_BINARY;
	unsigned dir = (_i / 2) % 2 ? SRV : 0;
	const tcpchat_codec *c = cu_codec(ci);
	size_t i;

	for (i = 0; i < ARRAY_LEN(p2_msgs); i++) {
		tcpchat_buf b = {0};
		struct cu_dec d;
		char what[64];

		snprintf(what, sizeof(what), "%s dir %u #%zu", c->name, dir, i);
		ck_assert_int_eq(c->encode(NULL, &p2_msgs[i], dir, &b), 0);
		cu_dec_run(&d, c, b.data, b.len, dir, MAX_FRAME);
		ck_assert_msg(d.rc == (long)b.len, "%s: %ld", what, d.rc);
		cu_check_msg(what, &d.msg, &p2_msgs[i]);
		cu_dec_free(&d);
		tcpchat_buf_free(&b);
	}
}
END_TEST

/* ---- binary and JSON: exact bytes ------------------------------------- */

static const struct {
	tcpchat_msg msg;
	const char *hex;
} p2_frames[] = {
        /* TOPIC (10), flags DEFAULT_ROOM, room tag 3, target tag 4 */
        {MSG(.type = TCPCHAT_MSG_TOPIC, .flags = DEF, .id = 1, .timestamp = 2,
             .sender = S("a"), .body = S("t"), .room = S("#r"),
             .target = S("b")),
         "00 00 00 31 01 0a 00 04  00 00 00 00 00 00 00 01"
         "00 00 00 00 00 00 00 02  00 00 00 00 01 00 00 00"
         "01 61 02 00 00 00 01 74  03 00 00 00 02 23 72 04"
         "00 00 00 01 62"},
        /* ROOMS (11), the end of the list */
        {MSG(.type = TCPCHAT_MSG_ROOMS, .code = 2),
         "00 00 00 18 01 0b 00 00  00 00 00 00 00 00 00 00"
         "00 00 00 00 00 00 00 00  00 00 00 02"},
        /* private TEXT with ECHO */
        {MSG(.type = T_TEXT, .flags = ECHO, .target = S("bob"), .body = S("x")),
         "00 00 00 26 01 03 00 02  00 00 00 00 00 00 00 00"
         "00 00 00 00 00 00 00 00  00 00 00 00 02 00 00 00"
         "01 78 04 00 00 00 03 62  6f 62"},
        /* protocol 1: a TEXT without room, target or flags is the same
         * frame as before */
        {MSG(.type = T_TEXT, .id = 42, .timestamp = 1700000000000,
             .sender = S("alice"), .body = S("hi")),
         "00 00 00 29 01 03 00 00  00 00 00 00 00 00 00 2a"
         "00 00 01 8b cf e5 68 00  00 00 00 00 01 00 00 00"
         "05 61 6c 69 63 65 02 00  00 00 02 68 69"},
        {MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_QUIT,
             .sender = S("a")),
         "00 00 00 1e 01 05 00 00  00 00 00 00 00 00 00 00"
         "00 00 00 00 00 00 00 00  00 00 00 01 01 00 00 00"
         "01 61"},
};

START_TEST(test_binary_p2_frames)
{
	const tcpchat_codec *c = tcpchat_codec_binary();
	unsigned char want[256];
	size_t n = cu_from_hex(p2_frames[_i].hex, want, sizeof(want));
	tcpchat_buf b = {0};
	struct cu_dec d;

	ck_assert_int_eq(c->encode(NULL, &p2_frames[_i].msg, SRV, &b), 0);
	ck_assert_uint_eq(b.len, n);
	ck_assert_mem_eq(b.data, want, n);
	tcpchat_buf_free(&b);

	cu_dec_run(&d, c, want, n, SRV, MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)n);
	cu_check_msg("binary frame", &d.msg, &p2_frames[_i].msg);
	check_in(&d, d.msg.room, n);
	check_in(&d, d.msg.target, n);
	cu_dec_free(&d);
}
END_TEST

static const struct {
	tcpchat_msg msg;
	const char *json;
} p2_json[] = {
        {MSG(.type = TCPCHAT_MSG_TOPIC, .timestamp = 5, .sender = S("alice"),
             .body = S("Rust only"), .room = S("#dev")),
         "{\"type\":\"topic\",\"ts\":5,\"sender\":\"alice\","
         "\"body\":\"Rust only\",\"room\":\"#dev\"}\n"},
        {MSG(.type = TCPCHAT_MSG_TOPIC, .room = S("#dev")),
         "{\"type\":\"topic\",\"room\":\"#dev\"}\n"},
        {MSG(.type = TCPCHAT_MSG_ROOMS, .code = 3, .body = S("t"),
             .room = S("#dev"), .flags = DEF),
         "{\"type\":\"rooms\",\"code\":3,\"body\":\"t\",\"room\":\"#dev\","
         "\"flags\":4}\n"},
        {MSG(.type = TCPCHAT_MSG_ROOMS), "{\"type\":\"rooms\"}\n"},
        {MSG(.type = T_TEXT, .id = 9, .sender = S("alice"), .body = S("hi"),
             .target = S("bob"), .flags = ECHO),
         "{\"type\":\"text\",\"id\":9,\"sender\":\"alice\",\"body\":\"hi\","
         "\"target\":\"bob\",\"flags\":2}\n"},
        {MSG(.type = TCPCHAT_MSG_JOIN, .code = 2, .sender = S("a"),
             .room = S("#\xc3\xa9t\xc3\xa9"), .flags = DEF),
         "{\"type\":\"join\",\"code\":2,\"sender\":\"a\","
         "\"room\":\"#\xc3\xa9t\xc3\xa9\",\"flags\":4}\n"},
        {MSG(.type = TCPCHAT_MSG_LEAVE, .code = PART, .room = S("#dev")),
         "{\"type\":\"leave\",\"code\":8,\"room\":\"#dev\"}\n"},
        /* protocol 1, unchanged */
        {MSG(.type = T_TEXT, .sender = S("a"), .body = S("hi")),
         "{\"type\":\"text\",\"sender\":\"a\",\"body\":\"hi\"}\n"},
        {MSG(.type = TCPCHAT_MSG_WHO, .code = 2, .body = S("a b")),
         "{\"type\":\"who\",\"code\":2,\"body\":\"a b\"}\n"},
};

START_TEST(test_json_p2_lines)
{
	const tcpchat_codec *c = tcpchat_codec_json();
	const char *want = p2_json[_i].json;
	size_t n = strlen(want);
	tcpchat_buf b = {0};
	struct cu_dec d;

	ck_assert_int_eq(c->encode(NULL, &p2_json[_i].msg, SRV, &b), 0);
	ck_assert_msg(b.len == n && memcmp(b.data, want, n) == 0,
	              "got \"%.*s\", want \"%s\"", (int)b.len, b.data, want);
	tcpchat_buf_free(&b);
	cu_dec_run(&d, c, want, n, 0, MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)n);
	cu_check_msg(want, &d.msg, &p2_json[_i].msg);
	cu_dec_free(&d);
}
END_TEST

/* The type names of protocol 2, and what stays unknown. */
START_TEST(test_json_p2_types)
{
	static const struct {
		const char *in;
		uint32_t type;
	} cases[] = {
	        {"{\"type\":\"topic\"}\n", TCPCHAT_MSG_TOPIC},
	        {"{\"type\":\"rooms\"}\n", TCPCHAT_MSG_ROOMS},
	        {"{\"type\":10}\n", TCPCHAT_MSG_TOPIC},
	        {"{\"type\":11}\n", TCPCHAT_MSG_ROOMS},
	        {"{\"type\":12}\n", 12},
	        {"{\"type\":\"Topic\"}\n", TCPCHAT_MSG_UNKNOWN},
	        {"{\"type\":\"room\"}\n", TCPCHAT_MSG_UNKNOWN},
	        {"{\"type\":\"\\u0074opic\",\"room\":\"#\\u0064ev\"}\n",
	         TCPCHAT_MSG_TOPIC},
	};
	size_t i;

	ck_assert_str_eq(tcpchat_msg_type_name(TCPCHAT_MSG_TOPIC), "topic");
	ck_assert_str_eq(tcpchat_msg_type_name(TCPCHAT_MSG_ROOMS), "rooms");
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct cu_dec d;

		cu_dec_run(&d, tcpchat_codec_json(), cases[i].in,
		           strlen(cases[i].in), 0, MAX_FRAME);
		ck_assert_msg(d.rc == (long)strlen(cases[i].in), "%s: %ld",
		              cases[i].in, d.rc);
		ck_assert_msg(d.msg.type == cases[i].type, "%s: type %u",
		              cases[i].in, (unsigned)d.msg.type);
		cu_dec_free(&d);
	}
}
END_TEST

/* JSON refuses protocol-2 keys given twice or of the wrong kind. */
START_TEST(test_json_p2_hostile)
{
	static const char *const bad[] = {
	        "{\"type\":\"topic\",\"room\":\"#a\",\"room\":\"#b\"}\n",
	        "{\"type\":\"text\",\"target\":\"a\",\"target\":\"a\"}\n",
	        "{\"type\":\"rooms\",\"room\":1}\n",
	        "{\"type\":\"text\",\"target\":null}\n",
	        "{\"type\":\"topic\",\"room\":\"#\xff\"}\n",
	        "{\"type\":\"topic\",\"room\":\"#a\\ud800\"}\n",
	        "{\"type\":\"rooms\",\"flags\":\"4\"}\n",
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(bad); i++) {
		struct cu_dec d;

		cu_dec_run(&d, tcpchat_codec_json(), bad[i], strlen(bad[i]), 0,
		           MAX_FRAME);
		ck_assert_msg(d.rc == TCPCHAT_EPROTO, "%s: %ld", bad[i], d.rc);
		cu_dec_free(&d);
	}
}
END_TEST

/* Every new type and field, concatenated in one stream, in every codec:
 * the frames come apart where they were joined. */
START_TEST(test_p2_stream)
{
	const tcpchat_codec *c = cu_codec(_i);
	unsigned dir = SRV;
	tcpchat_buf b = {0};
	size_t ends[ARRAY_LEN(p2_msgs)], i, n = 0, off = 0;

	for (i = 0; i < ARRAY_LEN(p2_msgs); i++) {
		if (c->encode(NULL, &p2_msgs[i], dir, &b) == 0)
			ends[n++] = b.len;
	}
	ck_assert_uint_ge(n, _i == C_LINE ? 12 : ARRAY_LEN(p2_msgs));
	for (i = 0; i < n; i++) {
		struct cu_dec d;

		cu_dec_run(&d, c, b.data + off, b.len - off, dir, MAX_FRAME);
		ck_assert_msg(d.rc == (long)(ends[i] - off),
		              "%s: frame %zu: %ld", c->name, i, d.rc);
		ck_assert_uint_ne(d.msg.type, 0);
		off = ends[i];
		cu_dec_free(&d);
	}
	tcpchat_buf_free(&b);
}
END_TEST

/* ---- suite ------------------------------------------------------------ */

static Suite *codec_rooms_suite(void)
{
	Suite *s = suite_create("codec_rooms");
	TCase *tc;

	tc = tcase_create("line");
	tcase_add_loop_test(tc, test_line_client_lines, 0,
	                    (int)ARRAY_LEN(client_lines));
	tcase_add_loop_test(tc, test_line_forms, 0, (int)ARRAY_LEN(forms));
	tcase_add_loop_test(tc, test_line_bad_server_lines, 0,
	                    (int)ARRAY_LEN(bad_server_lines));
	tcase_add_loop_test(tc, test_line_einval, 0,
	                    (int)ARRAY_LEN(line_einval));
	tcase_add_test(tc, test_line_overlong);
	tcase_add_test(tc, test_line_room_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("binary_json");
	tcase_add_loop_test(tc, test_p2_roundtrip, 0, 4);
	tcase_add_loop_test(tc, test_binary_p2_frames, 0,
	                    (int)ARRAY_LEN(p2_frames));
	tcase_add_loop_test(tc, test_json_p2_lines, 0, (int)ARRAY_LEN(p2_json));
	tcase_add_test(tc, test_json_p2_types);
	tcase_add_test(tc, test_json_p2_hostile);
	tcase_add_loop_test(tc, test_p2_stream, 0, C_COUNT);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return tu_run_suite(codec_rooms_suite());
}
