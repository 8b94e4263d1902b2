/* libtcpchat - the line codec's shared helpers: codec_line.c (framing,
 * encoding, client lines) and codec_line_parse.c (server lines).  Not
 * installed.  Every helper reads s[0..n) only. */
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

/* Parses one line from a server (without its "\n" or "\r\n") into *out.
 * Returns 0, or TCPCHAT_EPROTO when it is none of the server lines
 * (codec_line_parse.c). */
int line__parse_server(const char *s, size_t n, tcpchat_msg *out);

#endif
