/* libtcpchat - the line codec, reading the lines a server writes (what a
 * client that speaks the line codec receives).  The forms are listed in
 * codec_line.c.  Names (senders, targets) are taken as they are; room
 * names must pass tcpchat_room_check().  Words end at a space (the
 * server writes no other blank between them).  The lines a client skips
 * (a greeting, and the other "=== " lines of the handshake) are told by
 * line__server_skips().  A text from the history is its live line with
 * "~ " in front.
 */
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include "codec_line.h"

#define LINE_REASON_SCAN 64 /* reason codes tried when mapping a word */

/* Position of the first occurrence of pat in s[0..n), or NULL. */
static const char *find(const char *s, size_t n, const char *pat)
{
	size_t k = strlen(pat);
	size_t i;

	if (k > n)
		return NULL;
	for (i = 0; i + k <= n; i++)
		if (memcmp(s + i, pat, k) == 0)
			return s + i;
	return NULL;
}

/* The index of the first space in s[i..n), or n. */
static size_t space_at(const char *s, size_t n, size_t i)
{
	while (i < n && s[i] != ' ')
		i++;
	return i;
}

/* Maps a reason word back to its code; -1 if unknown. */
static int line_reason(const char *s, size_t n)
{
	int i;

	if (line_is_exactly(s, n, tcpchat_reason_name(0)))
		return 0;
	for (i = 1; i < LINE_REASON_SCAN; i++) {
		const char *w = tcpchat_reason_name(i);

		if (strcmp(w, tcpchat_reason_name(0)) == 0)
			break;
		if (line_is_exactly(s, n, w))
			return i;
	}
	return -1;
}

/* Parses the decimal number at the start of s[0..n) into *code.  Returns
 * the count of digits, or 0 when there is none or it overflows. */
static size_t line_number(const char *s, size_t n, uint32_t *code)
{
	uint64_t v;
	size_t i = line_u64(s, n, &v);

	*code = 0;
	if (v > UINT32_MAX)
		return 0;
	*code = (uint32_t)v;
	return i;
}

/* "[: BODY]" after a fixed part: no body, or ": " and the body. */
static int line_tail(const char *s, size_t n, tcpchat_msg *out)
{
	if (n == 0)
		return 0;
	if (n < 2 || s[0] != ':' || s[1] != ' ')
		return TCPCHAT_EPROTO;
	line_set_str(&out->body, s + 2, n - 2);
	return 0;
}

/* "SENDER: BODY" or "*** BODY" (a notice): 1 when s[0..n) is one of them
 * (sender and body are set), else 0. */
static int line_chat(const char *s, size_t n, tcpchat_msg *out)
{
	size_t sp = space_at(s, n, 0);

	if (sp < n && sp >= 2 && s[sp - 1] == ':') {
		line_set_str(&out->sender, s, sp - 1);
		line_set_str(&out->body, s + sp + 1, n - sp - 1);
		return 1;
	}
	if (line_has_prefix(s, n, "*** ")) {
		line_set_str(&out->body, s + 4, n - 4);
		return 1;
	}
	return 0;
}

/* "[ROOM] SENDER: BODY" or "[ROOM] *** BODY". */
static int line_room_chat(const char *s, size_t n, tcpchat_msg *out)
{
	size_t e = space_at(s, n, 0);

	if (e < 3 || e == n || s[0] != '[' || s[e - 1] != ']' ||
	    !line_room_ok(s + 1, e - 2))
		return TCPCHAT_EPROTO;
	if (!line_chat(s + e + 1, n - e - 1, out))
		return TCPCHAT_EPROTO;
	out->type = TCPCHAT_MSG_TEXT;
	line_set_str(&out->room, s + 1, e - 2);
	return 0;
}

/* "*NAME* BODY": a private TEXT from NAME to me (echo 0: the line does
 * not name me, so target is the leading "*"), or the echo of mine to NAME
 * (echo 1, after "-> "). */
static int line_private(const char *s, size_t n, int echo, tcpchat_msg *out)
{
	size_t e = space_at(s, n, 0);

	if (e < 3 || e == n || s[0] != '*' || s[e - 1] != '*')
		return TCPCHAT_EPROTO;
	out->type = TCPCHAT_MSG_TEXT;
	line_set_str(&out->body, s + e + 1, n - e - 1);
	if (echo) {
		line_set_str(&out->target, s + 1, e - 2);
		out->flags = TCPCHAT_MSGF_ECHO;
	} else {
		line_set_str(&out->sender, s + 1, e - 2);
		line_set_str(&out->target, s, 1);
	}
	return 0;
}

/* "NAME joined" or "NAME joined ROOM"; s/n is what follows "--> ". */
static int line_join(const char *s, size_t n, tcpchat_msg *out)
{
	static const char joined[] = " joined";
	size_t k = sizeof(joined) - 1;
	size_t r = n; /* the room: after the last space */

	out->type = TCPCHAT_MSG_JOIN;
	if (n >= k && memcmp(s + n - k, joined, k) == 0) {
		line_set_str(&out->sender, s, n - k);
		return 0;
	}
	while (r > 0 && s[r - 1] != ' ')
		r--;
	if (r == 0 || !line_room_ok(s + r, n - r) || r - 1 < k ||
	    memcmp(s + r - 1 - k, joined, k) != 0)
		return TCPCHAT_EPROTO;
	line_set_str(&out->sender, s, r - 1 - k);
	line_set_str(&out->room, s + r, n - r);
	return 0;
}

/* "(REASON)" or "(REASON: BODY)", the whole of s[0..n). */
static int line_reason_text(const char *s, size_t n, tcpchat_msg *out)
{
	const char *in, *colon;
	size_t inlen;
	int reason;

	if (n < 2 || s[0] != '(' || s[n - 1] != ')')
		return TCPCHAT_EPROTO;
	in = s + 1;
	inlen = n - 2;
	colon = find(in, inlen, ": ");
	if (colon) {
		reason = line_reason(in, (size_t)(colon - in));
		if (reason >= 0) {
			out->code = (uint32_t)reason;
			line_set_str(&out->body, colon + 2,
			             inlen - (size_t)(colon - in) - 2);
			return 0;
		}
	} else {
		reason = line_reason(in, inlen);
		if (reason >= 0) {
			out->code = (uint32_t)reason;
			return 0;
		}
	}
	/* unknown reason word: keep the whole text */
	out->code = 0;
	line_set_str(&out->body, in, inlen);
	return 0;
}

/* "NAME left (REASON[: BODY])" or "NAME left ROOM (REASON[: BODY])"; s/n
 * is what follows "<-- ".  NAME ends at the first " left " followed by
 * '(' or '#' (the body may hold " left (" too). */
static int line_leave(const char *s, size_t n, tcpchat_msg *out)
{
	static const char mid[] = " left ";
	size_t k = sizeof(mid) - 1;
	size_t at = 0, i, e;
	const char *m;

	for (;;) {
		m = find(s + at, n - at, mid);
		if (!m)
			return TCPCHAT_EPROTO;
		i = (size_t)(m - s) + k;
		if (i < n && (s[i] == '(' || s[i] == '#'))
			break;
		at = (size_t)(m - s) + 1;
	}
	out->type = TCPCHAT_MSG_LEAVE;
	line_set_str(&out->sender, s, (size_t)(m - s));
	if (s[i] == '#') {
		e = space_at(s, n, i);
		if (e == n || !line_room_ok(s + i, e - i))
			return TCPCHAT_EPROTO;
		line_set_str(&out->room, s + i, e - i);
		i = e + 1;
	}
	return line_reason_text(s + i, n - i, out);
}

/* "CODE[: BODY]"; s/n is what follows "-!- error ". */
static int line_error(const char *s, size_t n, tcpchat_msg *out)
{
	size_t i = line_number(s, n, &out->code);

	if (i == 0)
		return TCPCHAT_EPROTO;
	out->type = TCPCHAT_MSG_ERROR;
	return line_tail(s + i, n - i, out);
}

/* "ROOM" or "ROOM: NAMES" (a WHO answer for a room). */
static int line_who_room(const char *s, size_t n, tcpchat_msg *out)
{
	size_t e = space_at(s, n, 0);
	size_t r = e;

	if (e < n) {
		if (e == 0 || s[e - 1] != ':')
			return TCPCHAT_EPROTO;
		r = e - 1;
		line_set_str(&out->body, s + e + 1, n - e - 1);
	}
	if (!line_room_ok(s, r))
		return TCPCHAT_EPROTO;
	line_set_str(&out->room, s, r);
	return 0;
}

/* "N online[: NAMES]", "N in ROOM[: NAMES]" or "N rooms". */
static int line_count(const char *s, size_t n, tcpchat_msg *out)
{
	size_t i = line_number(s, n, &out->code);

	if (i == 0)
		return TCPCHAT_EPROTO;
	s += i;
	n -= i;
	if (line_has_prefix(s, n, " online")) {
		out->type = TCPCHAT_MSG_WHO;
		return line_tail(s + 7, n - 7, out);
	}
	if (line_has_prefix(s, n, " in ")) {
		out->type = TCPCHAT_MSG_WHO;
		return line_who_room(s + 4, n - 4, out);
	}
	if (line_is_exactly(s, n, " rooms")) {
		out->type = TCPCHAT_MSG_ROOMS;
		return 0;
	}
	return TCPCHAT_EPROTO;
}

/* "ROOM N[: TOPIC]", an entry of the room list. */
static int line_rooms_entry(const char *s, size_t n, tcpchat_msg *out)
{
	size_t e = space_at(s, n, 0);
	size_t i;

	if (e == n || !line_room_ok(s, e))
		return TCPCHAT_EPROTO;
	i = line_number(s + e + 1, n - e - 1, &out->code);
	if (i == 0)
		return TCPCHAT_EPROTO;
	out->type = TCPCHAT_MSG_ROOMS;
	line_set_str(&out->room, s, e);
	return line_tail(s + e + 1 + i, n - e - 1 - i, out);
}

/* What follows "=== topic ": "ROOM: TEXT", "ROOM by NAME: TEXT",
 * "ROOM cleared" or "ROOM cleared by NAME".  A first word that ends in
 * ':' is always the room of the first form. */
static int line_topic(const char *s, size_t n, tcpchat_msg *out)
{
	size_t e = space_at(s, n, 0);
	const char *r;
	size_t rn, se;

	if (e == n || e == 0)
		return TCPCHAT_EPROTO;
	r = s + e + 1;
	rn = n - e - 1;
	out->type = TCPCHAT_MSG_TOPIC;
	if (s[e - 1] == ':') {
		e--;
		line_set_str(&out->body, r, rn);
	} else if (line_is_exactly(r, rn, "cleared")) {
		/* no sender, no body */
	} else if (line_has_prefix(r, rn, "cleared by ") && rn > 11) {
		line_set_str(&out->sender, r + 11, rn - 11);
	} else if (line_has_prefix(r, rn, "by ")) {
		se = space_at(r, rn, 3);
		if (se == rn || se < 5 || r[se - 1] != ':')
			return TCPCHAT_EPROTO;
		line_set_str(&out->sender, r + 3, se - 4);
		line_set_str(&out->body, r + se + 1, rn - se - 1);
	} else {
		return TCPCHAT_EPROTO;
	}
	if (!line_room_ok(s, e))
		return TCPCHAT_EPROTO;
	line_set_str(&out->room, s, e);
	return 0;
}

/* What follows "=== ". */
static int line_status(const char *s, size_t n, tcpchat_msg *out)
{
	int rc = line__parse_kick(s, n, out);

	if (rc != 1)
		return rc;
	if (line_has_prefix(s, n, "welcome ")) {
		out->type = TCPCHAT_MSG_WELCOME;
		out->code = TCPCHAT_PROTOCOL_VERSION;
		line_set_str(&out->sender, s + 8, n - 8);
		return 0;
	}
	if (line_has_prefix(s, n, "topic "))
		return line_topic(s + 6, n - 6, out);
	if (line_has_prefix(s, n, "history "))
		return line__parse_history(s + 8, n - 8, out);
	if (n > 0 && s[0] == '#')
		return line_rooms_entry(s, n, out);
	return line_count(s, n, out);
}

/* Every server line but a text from the history. */
static int line_parse_live(const char *s, size_t n, tcpchat_msg *out)
{
	if (line_chat(s, n, out)) {
		out->type = TCPCHAT_MSG_TEXT;
		return 0;
	}
	if (n > 0 && s[0] == '[')
		return line_room_chat(s, n, out);
	if (line_has_prefix(s, n, "-> "))
		return line_private(s + 3, n - 3, 1, out);
	if (n > 0 && s[0] == '*')
		return line_private(s, n, 0, out);
	if (line_has_prefix(s, n, "--> "))
		return line_join(s + 4, n - 4, out);
	if (line_has_prefix(s, n, "<-- "))
		return line_leave(s + 4, n - 4, out);
	if (line_has_prefix(s, n, "=== "))
		return line_status(s + 4, n - 4, out);
	if (line_has_prefix(s, n, "-!- error "))
		return line_error(s + 10, n - 10, out);
	if (line_is_exactly(s, n, "/ping")) {
		out->type = TCPCHAT_MSG_PING;
		return 0;
	}
	if (line_is_exactly(s, n, "/pong")) {
		out->type = TCPCHAT_MSG_PONG;
		return 0;
	}
	return TCPCHAT_EPROTO;
}

int line__parse_server(const char *s, size_t n, tcpchat_msg *out)
{
	int rc;

	if (!line_has_prefix(s, n, "~ "))
		return line_parse_live(s, n, out);
	/* "~ " and the live line of a TEXT: a text from the history */
	rc = line_parse_live(s + 2, n - 2, out);
	if (rc || out->type != TCPCHAT_MSG_TEXT)
		return TCPCHAT_EPROTO;
	out->flags |= TCPCHAT_MSGF_HISTORY;
	return 0;
}

int line__server_skips(const char *s, size_t n, unsigned flags)
{
	if (!line_has_prefix(s, n, "=== "))
		return 0;
	if (line_notice_word(s + 4, n - 4))
		return 1;
	return (flags & TCPCHAT_HANDSHAKE) &&
	       !line_has_prefix(s + 4, n - 4, "welcome ");
}
