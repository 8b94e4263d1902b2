/* libtcpchat - the line codec's operator lines (the forms are listed in
 * codec_line.c):
 *	/kick ROOM NAME[ REASON]   a client's KICK (flags 0)
 *	/ban ROOM NAME[ REASON]    KICK with flag BAN
 *	/unban ROOM NAME           KICK with flag UNBAN
 *	=== kicked NAME from ROOM[: REASON]    the server's KICK (its
 *	=== banned NAME from ROOM[: REASON]    acknowledgement), flags 0,
 *	=== unbanned NAME from ROOM            BAN or UNBAN
 */
#include <string.h>

#include "codec_line.h"

static const struct {
	uint32_t flags;
	const char *cmd;  /* the client's word */
	const char *done; /* the server's */
} kinds[] = {
        {0, "/kick ", "=== kicked "},
        {TCPCHAT_MSGF_BAN, "/ban ", "=== banned "},
        {TCPCHAT_MSGF_UNBAN, "/unban ", "=== unbanned "},
};

/* The kind of a KICK's flags, or -1 for a mix the line cannot say. */
static int kind_of(uint32_t flags)
{
	flags &= TCPCHAT_MSGF_BAN | TCPCHAT_MSGF_UNBAN;
	for (size_t i = 0; i < TC_ARRAY_LEN(kinds); i++)
		if (kinds[i].flags == flags)
			return (int)i;
	return -1;
}

static int put(tcpchat_buf *out, const char *s, size_t n)
{
	return tcpchat_buf_append(out, s, n);
}

/* The body, with any control byte (other than TAB) and DEL as '?'. */
static int put_clean(tcpchat_buf *out, const tcpchat_str *s)
{
	size_t start = out->len;
	int rc = put(out, s->ptr, s->len);

	for (size_t i = start; !rc && i < out->len; i++) {
		unsigned char c = (unsigned char)out->data[i];

		if ((c < 0x20 && c != '\t') || c == 0x7F)
			out->data[i] = '?';
	}
	return rc;
}

int line__encode_kick(const tcpchat_msg *msg, int from_server, tcpchat_buf *out)
{
	int k = kind_of(msg->flags);
	int rc;

	if (k < 0 || !line_room_ok(msg->room.ptr, msg->room.len) ||
	    tcpchat_name_check(msg->target.ptr, msg->target.len) != 0 ||
	    (kinds[k].flags == TCPCHAT_MSGF_UNBAN && msg->body.len > 0))
		return TCPCHAT_EINVAL;
	if (from_server) {
		rc = put(out, kinds[k].done, strlen(kinds[k].done));
		if (!rc)
			rc = put(out, msg->target.ptr, msg->target.len);
		if (!rc)
			rc = put(out, " from ", 6);
		if (!rc)
			rc = put(out, msg->room.ptr, msg->room.len);
		if (!rc && msg->body.len > 0)
			rc = put(out, ": ", 2);
	} else {
		rc = put(out, kinds[k].cmd, strlen(kinds[k].cmd));
		if (!rc)
			rc = put(out, msg->room.ptr, msg->room.len);
		if (!rc)
			rc = put(out, " ", 1);
		if (!rc)
			rc = put(out, msg->target.ptr, msg->target.len);
		if (!rc && msg->body.len > 0)
			rc = put(out, " ", 1);
	}
	return rc ? rc : put_clean(out, &msg->body);
}

int line__args_kick(const char *s, size_t n, size_t a, uint32_t flags,
                    tcpchat_msg *out)
{
	size_t e = line_word_end(s, n, a);
	size_t b, be;

	if (a == n || !line_room_ok(s + a, e - a))
		return -1;
	b = line_skip_blanks(s, n, e);
	be = line_word_end(s, n, b);
	if (b == n || tcpchat_name_check(s + b, be - b) != 0)
		return -1;
	out->type = TCPCHAT_MSG_KICK;
	out->flags = flags;
	line_set_str(&out->room, s + a, e - a);
	line_set_str(&out->target, s + b, be - b);
	if (line_skip_blanks(s, n, be) == n)
		return 0;
	if (flags == TCPCHAT_MSGF_UNBAN) {
		memset(out, 0, sizeof(*out));
		return -1; /* an unban has no reason */
	}
	line_set_str(&out->body, s + be + 1, n - be - 1);
	return 0;
}

int line__parse_kick(const char *s, size_t n, tcpchat_msg *out)
{
	for (size_t k = 0; k < TC_ARRAY_LEN(kinds); k++) {
		size_t w = strlen(kinds[k].done) - 4; /* after "=== " */
		size_t e, r, re;

		if (!line_has_prefix(s, n, kinds[k].done + 4))
			continue;
		e = line_word_end(s, n, w);
		if (e == w || tcpchat_name_check(s + w, e - w) != 0 ||
		    !line_has_prefix(s + e, n - e, " from "))
			return TCPCHAT_EPROTO;
		r = e + 6;
		re = r;
		while (re < n && s[re] != ':')
			re++;
		if (!line_room_ok(s + r, re - r))
			return TCPCHAT_EPROTO;
		if (re < n) {
			if (kinds[k].flags == TCPCHAT_MSGF_UNBAN ||
			    !line_has_prefix(s + re, n - re, ": ") ||
			    re + 2 == n)
				return TCPCHAT_EPROTO;
			line_set_str(&out->body, s + re + 2, n - re - 2);
		}
		out->type = TCPCHAT_MSG_KICK;
		out->flags = kinds[k].flags;
		line_set_str(&out->target, s + w, e - w);
		line_set_str(&out->room, s + r, re - r);
		return 0;
	}
	return 1;
}
