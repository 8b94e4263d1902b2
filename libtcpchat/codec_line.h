/* libtcpchat - the line codec's shared helpers: codec_line.c (framing,
 * encoding, client lines), codec_line_parse.c (server lines) and
 * codec_line_history.c (the history lines).  Not installed.  Every helper
 * reads s[0..n) only. */
#ifndef TCPCHAT_CODEC_LINE_H
#define TCPCHAT_CODEC_LINE_H

#include <string.h>

#include "internal.h"

static inline int line_has_prefix(const char *s, size_t n, const char *pre)
{
	size_t k = strlen(pre);

	return n >= k && memcmp(s, pre, k) == 0;
}

static inline int line_is_exactly(const char *s, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(s, word, n) == 0;
}

static inline void line_set_str(tcpchat_str *dst, const char *p, size_t n)
{
	dst->ptr = p;
	dst->len = n;
}

static inline int line_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The index of the first blank in s[i..n), or n. */
static inline size_t line_word_end(const char *s, size_t n, size_t i)
{
	while (i < n && !line_is_blank(s[i]))
		i++;
	return i;
}

/* The index of the first byte that is not a blank in s[i..n), or n. */
static inline size_t line_skip_blanks(const char *s, size_t n, size_t i)
{
	while (i < n && line_is_blank(s[i]))
		i++;
	return i;
}

/* 1 when s[0..n) is a valid room name (tcpchat_room_check). */
static inline int line_room_ok(const char *s, size_t n)
{
	return tcpchat_room_check(s, n) == 0;
}

/* 1 when s[0..n) starts with a notice word: one or more bytes other
 * than a space, the last of them ':', then a space or the end ("tcpchat:
 * type your name").  A greeting is "=== " and such a text: no other
 * "=== " line starts so (its first word is a number, a room name,
 * "welcome" or "topic"). */
static inline int line_notice_word(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] != ' ')
		i++;
	return i >= 2 && s[i - 1] == ':';
}

/* Parses the decimal number at the start of s[0..n) into *v.  Returns
 * the count of digits, or 0 when there is none or it overflows. */
static inline size_t line_u64(const char *s, size_t n, uint64_t *v)
{
	size_t i = 0;

	*v = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		unsigned d = (unsigned)(s[i] - '0');

		if (*v > (UINT64_MAX - d) / 10)
			return 0;
		*v = *v * 10 + d;
		i++;
	}
	return i;
}

/* Parses one line from a server (without its "\n" or "\r\n") into *out.
 * Returns 0, or TCPCHAT_EPROTO when it is none of the server lines
 * (codec_line_parse.c). */
int line__parse_server(const char *s, size_t n, tcpchat_msg *out);

/* 1 when a client skips the server line s[0..n) (decode flags `flags`):
 * a greeting ("=== " and a notice word), and, while TCPCHAT_HANDSHAKE is
 * set, every "=== " line but "=== welcome NAME" (codec_line_parse.c). */
int line__server_skips(const char *s, size_t n, unsigned flags);

/* ---- the history lines (codec_line_history.c) ---- */

/* The most texts "/history N" asks for (the server's largest limit). */
#define LINE_HISTORY_MAX 1000

/* Appends "/history[ ROOM][ N]" for the client's HISTORY msg (room
 * already checked).  Returns 0, TCPCHAT_EINVAL for a code above
 * LINE_HISTORY_MAX or a selector (flag AFTER or BEFORE), which the line
 * cannot carry, or TCPCHAT_ENOMEM. */
int line__encode_history_c(const tcpchat_msg *msg, tcpchat_buf *out);

/* Appends "=== history ROOM: N[ (FIRST-LAST)][, before OLDEST gone]" for
 * the server's HISTORY msg.  Returns 0, TCPCHAT_EINVAL without a room, or
 * TCPCHAT_ENOMEM. */
int line__encode_history_s(const tcpchat_msg *msg, tcpchat_buf *out);

/* The arguments of "/history", s[a..n) after the blanks that follow the
 * word: 0 when they are one of its forms (*out is the HISTORY), -1 when
 * not.  The type is unused (the signature of the other commands'). */
int line__args_history(const char *s, size_t n, size_t a, uint32_t type,
                       tcpchat_msg *out);

/* What follows "=== history " in a server line.  Returns 0 (*out is the
 * HISTORY end) or TCPCHAT_EPROTO. */
int line__parse_history(const char *s, size_t n, tcpchat_msg *out);

/* ---- the operator lines (codec_line_kick.c) ---- */

/* Appends the line of the KICK msg: "/kick ROOM NAME[ REASON]" (or /ban,
 * /unban) from a client, "=== kicked NAME from ROOM[: REASON]" (or
 * banned, unbanned) from a server.  Returns 0, TCPCHAT_EINVAL (no valid
 * room or target, both flags BAN and UNBAN, a reason with UNBAN) or
 * TCPCHAT_ENOMEM. */
int line__encode_kick(const tcpchat_msg *msg, int from_server,
                      tcpchat_buf *out);

/* The arguments of "/kick", "/ban" (flags TCPCHAT_MSGF_BAN) or "/unban"
 * (TCPCHAT_MSGF_UNBAN), s[a..n) after the blanks that follow the word:
 * 0 when they are "ROOM NAME[ REASON]" (no reason for /unban: *out is
 * the KICK), -1 when not. */
int line__args_kick(const char *s, size_t n, size_t a, uint32_t flags,
                    tcpchat_msg *out);

/* What follows "=== " in a server line: 0 when it is a KICK line (*out
 * filled), TCPCHAT_EPROTO when it starts like one but is malformed, 1
 * when it is none. */
int line__parse_kick(const char *s, size_t n, tcpchat_msg *out);

/* ---- help for people (codec_line_help.c) ---- */

/* What a server answers to the line s[0..n), the body of a
 * TCPCHAT_MSG_UNKNOWN this codec decoded ("/WORD[ ARGS]").  Returns 0 for
 * "/help" (answer with the lines of line__help_line()); otherwise the
 * code of a non-fatal ERROR, TCPCHAT_ENOTYPE (the code of any message
 * the server cannot make out), with its text, NUL-terminated and cut to
 * fit, in out[0..cap): the usage of a command of this codec whose
 * arguments fit none of its forms, or for an unknown command its word
 * and a hint. */
int line__answer(const char *s, size_t n, char *out, size_t cap);

/* The i-th line of the answer to "/help" (i from 0), or NULL after the
 * last. */
const char *line__help_line(size_t i);

#endif
