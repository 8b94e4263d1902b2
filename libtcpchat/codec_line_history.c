/* libtcpchat - the line codec's history lines (the forms are listed in
 * codec_line.c):
 *	/history[ ROOM][ N]                 a client's HISTORY request
 *	=== history ROOM: N[ (FIRST-LAST)][, before OLDEST gone]
 *	                                    the server's HISTORY end
 * A text from the history is its live line with "~ " in front, which
 * codec_line.c and codec_line_parse.c write and read.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codec_line.h"

/* ---- encoding --------------------------------------------------------- */

static int put(tcpchat_buf *out, const char *s)
{
	return tcpchat_buf_append(out, s, strlen(s));
}

/* The room as it is: a room name holds no byte that needs cleaning. */
static int put_room(tcpchat_buf *out, const tcpchat_str *room)
{
	return tcpchat_buf_append(out, room->ptr, room->len);
}

int line__encode_history_c(const tcpchat_msg *msg, tcpchat_buf *out)
{
	char num[16];
	int rc;

	if (msg->code > LINE_HISTORY_MAX ||
	    (msg->flags & (TCPCHAT_MSGF_AFTER | TCPCHAT_MSGF_BEFORE)))
		return TCPCHAT_EINVAL;
	rc = put(out, "/history");
	if (!rc && msg->room.len > 0)
		rc = put(out, " ");
	if (!rc)
		rc = put_room(out, &msg->room);
	if (!rc && msg->code > 0) {
		snprintf(num, sizeof(num), " %" PRIu32, msg->code);
		rc = put(out, num);
	}
	return rc;
}

int line__encode_history_s(const tcpchat_msg *msg, tcpchat_buf *out)
{
	char num[80];
	int rc;

	if (msg->room.len == 0)
		return TCPCHAT_EINVAL;
	rc = put(out, "=== history ");
	if (!rc)
		rc = put_room(out, &msg->room);
	if (rc)
		return rc;
	if (msg->code > 0)
		snprintf(num, sizeof(num),
		         ": %" PRIu32 " (%" PRIu64 "-%" PRIu64 ")", msg->code,
		         msg->first, msg->last);
	else
		snprintf(num, sizeof(num), ": 0");
	rc = put(out, num);
	if (!rc && (msg->flags & TCPCHAT_MSGF_GAP)) {
		snprintf(num, sizeof(num), ", before %" PRIu64 " gone",
		         msg->oldest);
		rc = put(out, num);
	}
	return rc;
}

/* ---- decoding --------------------------------------------------------- */

int line__args_history(const char *s, size_t n, size_t a, uint32_t type,
                       tcpchat_msg *out)
{
	uint64_t v = 0;
	size_t e;

	TC_UNUSED(type);
	if (a < n && s[a] == '#') {
		e = line_word_end(s, n, a);
		if (!line_room_ok(s + a, e - a))
			return -1;
		line_set_str(&out->room, s + a, e - a);
		a = line_skip_blanks(s, n, e);
	}
	if (a < n) {
		/* N: 1..LINE_HISTORY_MAX, digits only, no leading zero */
		e = line_word_end(s, n, a);
		if (s[a] == '0' || line_u64(s + a, e - a, &v) != e - a ||
		    v > LINE_HISTORY_MAX || line_skip_blanks(s, n, e) != n)
			return -1;
	}
	out->type = TCPCHAT_MSG_HISTORY;
	out->code = (uint32_t)v;
	return 0;
}

/* Reads the literal lit at s[*i..n) and moves *i past it: 1, or 0 when it
 * is not there. */
static int take_lit(const char *s, size_t n, size_t *i, const char *lit)
{
	if (!line_has_prefix(s + *i, n - *i, lit))
		return 0;
	*i += strlen(lit);
	return 1;
}

/* Reads a decimal number at s[*i..n) and moves *i past it: 1, or 0 when
 * there is none or it overflows. */
static int take_num(const char *s, size_t n, size_t *i, uint64_t *v)
{
	size_t k = line_u64(s + *i, n - *i, v);

	*i += k;
	return k > 0;
}

int line__parse_history(const char *s, size_t n, tcpchat_msg *out)
{
	size_t e = line_word_end(s, n, 0);
	size_t i = e;
	uint64_t code;

	/* "ROOM: N": a room name holds no ':', so the colon ends it */
	if (e < 2 || s[e - 1] != ':' || !line_room_ok(s, e - 1) ||
	    !take_lit(s, n, &i, " ") || !take_num(s, n, &i, &code) ||
	    code > UINT32_MAX)
		return TCPCHAT_EPROTO;
	if (code > 0 &&
	    (!take_lit(s, n, &i, " (") || !take_num(s, n, &i, &out->first) ||
	     !take_lit(s, n, &i, "-") || !take_num(s, n, &i, &out->last) ||
	     !take_lit(s, n, &i, ")")))
		return TCPCHAT_EPROTO;
	if (take_lit(s, n, &i, ", before ")) {
		if (!take_num(s, n, &i, &out->oldest) ||
		    !take_lit(s, n, &i, " gone"))
			return TCPCHAT_EPROTO;
		out->flags = TCPCHAT_MSGF_GAP;
	}
	if (i != n)
		return TCPCHAT_EPROTO;
	out->type = TCPCHAT_MSG_HISTORY;
	out->code = (uint32_t)code;
	line_set_str(&out->room, s, e - 1);
	return 0;
}
