/* libtcpchat - the line codec: one message per line of text, for people
 * using nc or telnet.
 *
 * A frame is a line ending in "\n"; a "\r" right before it is dropped.
 * ROOM is a room name as tcpchat_room_check() accepts it ('#' and 1..63
 * bytes, no blank, comma or colon); NAME a user name.
 *
 * Client to server:
 *	NAME            while in the handshake: HELLO, code = protocol
 *	                version (2), caps 0 (spaces/tabs trimmed)
 *	NAME PASSWORD   while in the handshake: HELLO sender = NAME, body =
 *	                PASSWORD, the rest of the line after the blanks
 *	                that follow NAME, as typed (the credential)
 *	/quit           LEAVE, reason quit
 *	/ping  /pong    PING, PONG
 *	/join ROOM      JOIN room
 *	/part           LEAVE, reason part: the current room
 *	/part ROOM      LEAVE room, reason part
 *	/part ROOM TEXT LEAVE room, reason part, body = TEXT
 *	/part TEXT      LEAVE, reason part, body = TEXT (the current room;
 *	                TEXT does not start with '#')
 *	/msg NAME TEXT  TEXT to target NAME (a private message)
 *	/rooms          ROOMS (the room list)
 *	/who            WHO (the whole server)
 *	/who ROOM       WHO room
 *	/topic ROOM     TOPIC room, empty body (clears the topic)
 *	/topic ROOM TEXT  TOPIC room, body = TEXT
 *	/history        HISTORY, the current room, code 0 (the latest texts,
 *	                as many as the server's default)
 *	/history N      HISTORY, code = N: 1..1000 in decimal digits, without
 *	                sign or leading zero
 *	/history ROOM   HISTORY room, code 0
 *	/history ROOM N HISTORY room, code = N
 *	/kick ROOM NAME[ REASON]  KICK room, target NAME, body REASON
 *	/ban ROOM NAME[ REASON]   the same with flag BAN; /unban ROOM NAME
 *	                KICK with flag UNBAN (codec_line_kick.c)
 *	ROOM TEXT       TEXT to room (TEXT not empty)
 *	//TEXT          TEXT "/TEXT" (a leading '/' is doubled by the encoder)
 *	TEXT            TEXT (the current room); an empty line, or one of
 *	                only spaces and tabs, is skipped (a blank TEXT is
 *	                refused by the protocol anyway).  A line whose first
 *	                word starts with '#' but is not a room name (or has
 *	                no text after it) is TEXT too.
 *	/WORD[ ARGS]    TCPCHAT_MSG_UNKNOWN, body = the whole line, when
 *	                WORD (ASCII letters, digits, '_', '-') is none of
 *	                the commands above, and when WORD is join, part,
 *	                msg, rooms, who, topic, history, kick, ban or unban
 *	                with arguments that
 *	                are not one of the forms above ("/join", "/join x",
 *	                "/msg bob", "/topic", "/who x", "/history 0",
 *	                "/history 1001", "/history 5 #dev").  "/help" is one
 *	                of them.
 *	                The encoder cannot write it.  A server answers
 *	                "/help" with "***" notices listing the commands, and
 *	                the others with ERROR ENOTYPE: a command with bad
 *	                arguments with its usage, an unknown one with its
 *	                word and a hint (line__answer(), codec_line_help.c).
 *	A line starting with quit, ping or pong and more ("/quit now"), or
 *	with '/' and no command word ("/", "/usr/bin", "/ x"), is TEXT, as
 *	in protocol 1.  Blanks (spaces, tabs) before a command's first
 *	argument and after its last word are ignored; exactly one blank
 *	separates the TEXT of /part, /msg, /topic and ROOM TEXT, which is
 *	taken as it is.
 *
 * Server to client:
 *	=== BODY                       a notice (TEXT without sender, room
 *	                               or target) encoded with
 *	                               TCPCHAT_HANDSHAKE: the greeting a
 *	                               server sends at once to a new
 *	                               connection (the codec has
 *	                               TCPCHAT_CODEC_GREET).  BODY must start
 *	                               with a word that ends in ':' ("===
 *	                               tcpchat: type your name ..."); no
 *	                               other "=== " line does, and a client
 *	                               skips such a line
 *	SENDER: BODY                   TEXT (no room, or the default room)
 *	[ROOM] SENDER: BODY            TEXT in another room
 *	*** BODY                       TEXT without sender (a notice)
 *	[ROOM] *** BODY                notice in another room
 *	*SENDER* BODY                  private TEXT to me (decoded with
 *	                               target "*": the line does not name me)
 *	-> *NAME* BODY                 echo of my private TEXT to NAME
 *	                               (target NAME, flags ECHO, no sender)
 *	--> NAME joined                JOIN (no room, or the default room)
 *	--> NAME joined ROOM           JOIN another room
 *	<-- NAME left (REASON)         LEAVE (no room, or the default room)
 *	<-- NAME left (REASON: BODY)   LEAVE with a reason text
 *	<-- NAME left ROOM (REASON[: BODY])  LEAVE of another room
 *	=== welcome NAME               WELCOME (decoded with code 2)
 *	-!- error CODE: BODY           ERROR
 *	/ping  /pong                   PING, PONG
 *	=== N online[: NAMES]          WHO answer, whole server
 *	=== N in ROOM[: NAMES]         WHO answer for a room
 *	=== topic ROOM: TEXT           TOPIC set by the server
 *	=== topic ROOM by NAME: TEXT   TOPIC set by NAME
 *	=== topic ROOM cleared[ by NAME]  TOPIC with an empty body
 *	=== ROOM N[: TOPIC]            ROOMS entry (code N = members)
 *	=== N rooms                    ROOMS end (code N = rooms)
 *	=== kicked NAME from ROOM[: REASON]  KICK (the asker's
 *	                               acknowledgement; banned: flag BAN,
 *	                               unbanned: flag UNBAN, no reason)
 *	~ LINE                         a TEXT from the history (flag
 *	                               HISTORY): LINE is its live line, one
 *	                               of the TEXT lines above ("~ alice:
 *	                               hi", "~ [#dev] *** x")
 *	=== history ROOM: N (FIRST-LAST)  HISTORY end: code N texts were
 *	                               served, seq FIRST to LAST; the room is
 *	                               named, the default room too
 *	=== history ROOM: 0            HISTORY end, none served (first and
 *	                               last 0)
 *	=== history ...[, before OLDEST gone]  HISTORY end with flag GAP:
 *	                               oldest = OLDEST (without GAP, oldest
 *	                               is not written and decodes as 0)
 * REASON is the word of tcpchat_reason_name() (an unknown word decodes
 * as reason 0 with the whole text as body).  A client skips a greeting
 * line, and while TCPCHAT_HANDSHAKE is set in its decode flags (it has
 * no WELCOME yet) every "=== " line but "=== welcome NAME".  The default
 * room is told by TCPCHAT_MSGF_DEFAULT_ROOM: its TEXT, JOIN and LEAVE
 * lines do not name it (they decode without room).  Room names hold no ':' (see
 * tcpchat_room_check), so in "=== topic ROOM: TEXT" the colon ends the
 * room.
 *
 * The encoder writes any control byte (other than TAB) and DEL in a
 * string as '?', so no string can break a line in two.  It refuses
 * (TCPCHAT_EINVAL) a room that is not a room name, a client TEXT with
 * both room and target, a target that is not a user name, a room or
 * private TEXT with an empty body, a plain TEXT that would read back as
 * "ROOM TEXT", a "/part TEXT" whose TEXT starts with '#' or a blank, a
 * TOPIC without room, a HISTORY with a code above 1000 or a selector
 * (flag AFTER or BEFORE: the line has none, and the latest texts are not
 * what was asked), and, from the server, a private TEXT (not an echo)
 * without sender, a TEXT with both room and target, a greeting whose
 * BODY does not start with a notice word, or a HISTORY without room.  It
 * refuses ACK in both directions: a server never sends it to a line peer,
 * and a line client never sends a ref to be acknowledged.  A notice from
 * the history is never a greeting: it is written "~ *** BODY".
 *
 * Carried: type, sender, body, room and target as above; code for LEAVE
 * (the reason), ERROR, WHO, ROOMS and HISTORY; first, last and (with
 * GAP) oldest of the server's HISTORY; flags ECHO, HISTORY (a server's
 * TEXT) and GAP (a server's HISTORY).  Not carried: id, timestamp, the
 * other flags and codes, and every other field of codec abi 2 (caps,
 * max_frame, the queue limits, ref, cursor, seq, epoch): so a history
 * text has no seq on a line, a JOIN or HELLO no resume point.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "codec_line.h"

/* ---- encoding --------------------------------------------------------- */

static int line_put(tcpchat_buf *out, const char *s, size_t n)
{
	return tcpchat_buf_append(out, s, n);
}

static int line_puts(tcpchat_buf *out, const char *s)
{
	return tcpchat_buf_append(out, s, strlen(s));
}

/* What line_put_clean() writes for the byte c. */
static char line_clean_byte(char c)
{
	unsigned char u = (unsigned char)c;

	if ((u < 0x20 && u != '\t') || u == 0x7F)
		return '?';
	return c;
}

/* Appends s with every byte that could break the line replaced by '?'. */
static int line_put_clean(tcpchat_buf *out, const tcpchat_str *s)
{
	char *w;
	size_t i;

	if (s->len == 0)
		return 0;
	if (tcpchat_buf_reserve(out, s->len))
		return TCPCHAT_ENOMEM;
	w = out->data + out->len;
	for (i = 0; i < s->len; i++)
		w[i] = line_clean_byte(s->ptr[i]);
	out->len += s->len;
	return 0;
}

/* Appends pre, then s (cleaned), then post; NULL pre or post: nothing. */
static int line_put3(tcpchat_buf *out, const char *pre, const tcpchat_str *s,
                     const char *post)
{
	int rc = pre ? line_puts(out, pre) : 0;

	if (!rc)
		rc = line_put_clean(out, s);
	if (!rc && post)
		rc = line_puts(out, post);
	return rc;
}

/* Appends sep and s when s is not empty. */
static int line_put_opt(tcpchat_buf *out, const char *sep, const tcpchat_str *s)
{
	if (s->len == 0)
		return 0;
	return line_put3(out, sep, s, NULL);
}

static int line_str_ok(const tcpchat_str *s)
{
	return s->len == 0 || s->ptr != NULL;
}

/* 1 when s is empty or a valid room name. */
static int line_room_empty_or_ok(const tcpchat_str *s)
{
	return s->len == 0 || line_room_ok(s->ptr, s->len);
}

/* 1 when the line that line_put_clean() makes of s would read as "ROOM
 * TEXT": a room name, a blank, then at least one byte. */
static int line_reads_as_room_text(const tcpchat_str *s)
{
	char word[TCPCHAT_ROOM_MAX];
	size_t i = 0;

	while (i < s->len && !line_is_blank(s->ptr[i])) {
		if (i == sizeof(word))
			return 0; /* too long for a room name */
		word[i] = line_clean_byte(s->ptr[i]);
		i++;
	}
	return i + 1 < s->len && line_room_ok(word, i);
}

static int line_encode_text_c(const tcpchat_msg *msg, tcpchat_buf *out)
{
	int rc = 0;

	if (msg->target.len > 0) {
		if (msg->room.len > 0 || msg->body.len == 0 ||
		    tcpchat_name_check(msg->target.ptr, msg->target.len))
			return TCPCHAT_EINVAL;
		rc = line_put3(out, "/msg ", &msg->target, " ");
		return rc ? rc : line_put_clean(out, &msg->body);
	}
	if (msg->room.len > 0) {
		if (msg->body.len == 0)
			return TCPCHAT_EINVAL;
		rc = line_put3(out, NULL, &msg->room, " ");
		return rc ? rc : line_put_clean(out, &msg->body);
	}
	if (line_reads_as_room_text(&msg->body))
		return TCPCHAT_EINVAL;
	if (msg->body.len > 0 && msg->body.ptr[0] == '/')
		rc = line_puts(out, "/");
	return rc ? rc : line_put_clean(out, &msg->body);
}

static int line_encode_leave_c(const tcpchat_msg *msg, tcpchat_buf *out)
{
	int rc;

	if (msg->room.len > 0) {
		rc = line_put3(out, "/part ", &msg->room, NULL);
		return rc ? rc : line_put_opt(out, " ", &msg->body);
	}
	if (msg->code != TCPCHAT_REASON_PART)
		return line_puts(out, "/quit");
	if (msg->body.len > 0 &&
	    (msg->body.ptr[0] == '#' || line_is_blank(msg->body.ptr[0])))
		return TCPCHAT_EINVAL;
	rc = line_puts(out, "/part");
	return rc ? rc : line_put_opt(out, " ", &msg->body);
}

/* "NAME" or "NAME CREDENTIAL": with a credential, a name with a blank,
 * or a credential that starts with one, would not read back the same. */
static int line_encode_hello_c(const tcpchat_msg *msg, tcpchat_buf *out)
{
	const tcpchat_str *n = &msg->sender;

	if (msg->body.len &&
	    (n->len == 0 || line_word_end(n->ptr, n->len, 0) < n->len ||
	     line_is_blank(msg->body.ptr[0])))
		return TCPCHAT_EINVAL;
	int rc = line_put_clean(out, &msg->sender);
	return rc ? rc : line_put_opt(out, " ", &msg->body);
}

static int line_encode_client(const tcpchat_msg *msg, tcpchat_buf *out)
{
	int rc;

	switch (msg->type) {
	case TCPCHAT_MSG_HELLO:
		return line_encode_hello_c(msg, out);
	case TCPCHAT_MSG_TEXT:
		return line_encode_text_c(msg, out);
	case TCPCHAT_MSG_JOIN:
		if (msg->room.len == 0)
			return TCPCHAT_EINVAL;
		return line_put3(out, "/join ", &msg->room, NULL);
	case TCPCHAT_MSG_LEAVE:
		return line_encode_leave_c(msg, out);
	case TCPCHAT_MSG_PING:
		return line_puts(out, "/ping");
	case TCPCHAT_MSG_PONG:
		return line_puts(out, "/pong");
	case TCPCHAT_MSG_WHO:
		rc = line_puts(out, "/who");
		return rc ? rc : line_put_opt(out, " ", &msg->room);
	case TCPCHAT_MSG_TOPIC:
		if (msg->room.len == 0)
			return TCPCHAT_EINVAL;
		rc = line_put3(out, "/topic ", &msg->room, NULL);
		return rc ? rc : line_put_opt(out, " ", &msg->body);
	case TCPCHAT_MSG_ROOMS:
		return line_puts(out, "/rooms");
	case TCPCHAT_MSG_HISTORY:
		return line__encode_history_c(msg, out);
	case TCPCHAT_MSG_KICK:
		return line__encode_kick(msg, 0, out);
	default: /* ACK among them: never sent on a line */
		return TCPCHAT_EINVAL;
	}
}

/* "[ROOM] " for a room other than the default room, else nothing. */
static int line_put_room_tag(const tcpchat_msg *msg, tcpchat_buf *out)
{
	if (msg->room.len == 0 || (msg->flags & TCPCHAT_MSGF_DEFAULT_ROOM))
		return 0;
	return line_put3(out, "[", &msg->room, "] ");
}

static int line_encode_text_s(const tcpchat_msg *msg, tcpchat_buf *out)
{
	int rc;

	/* from the history: the live line after "~ " (line_encode() drops
	 * what was written when a check below fails) */
	if ((msg->flags & TCPCHAT_MSGF_HISTORY) && line_puts(out, "~ "))
		return TCPCHAT_ENOMEM;
	if (msg->target.len > 0) {
		if (msg->room.len > 0)
			return TCPCHAT_EINVAL;
		if (msg->flags & TCPCHAT_MSGF_ECHO)
			rc = line_put3(out, "-> *", &msg->target, "* ");
		else if (msg->sender.len > 0)
			rc = line_put3(out, "*", &msg->sender, "* ");
		else
			return TCPCHAT_EINVAL;
		return rc ? rc : line_put_clean(out, &msg->body);
	}
	rc = line_put_room_tag(msg, out);
	if (!rc && msg->sender.len > 0)
		rc = line_put3(out, NULL, &msg->sender, ": ");
	else if (!rc)
		rc = line_puts(out, "*** ");
	return rc ? rc : line_put_clean(out, &msg->body);
}

static int line_encode_leave_s(const tcpchat_msg *msg, tcpchat_buf *out)
{
	int reason = msg->code <= INT_MAX ? (int)msg->code : -1;
	int rc = line_put3(out, "<-- ", &msg->sender, " left ");

	if (!rc && msg->room.len > 0 &&
	    !(msg->flags & TCPCHAT_MSGF_DEFAULT_ROOM))
		rc = line_put3(out, NULL, &msg->room, " ");
	if (!rc)
		rc = line_puts(out, "(");
	if (!rc)
		rc = line_puts(out, tcpchat_reason_name(reason));
	if (!rc)
		rc = line_put_opt(out, ": ", &msg->body);
	return rc ? rc : line_puts(out, ")");
}

static int line_encode_topic_s(const tcpchat_msg *msg, tcpchat_buf *out)
{
	int rc;

	if (msg->room.len == 0)
		return TCPCHAT_EINVAL;
	rc = line_put3(out, "=== topic ", &msg->room, NULL);
	if (rc)
		return rc;
	if (msg->body.len == 0) {
		rc = line_puts(out, " cleared");
		return rc ? rc : line_put_opt(out, " by ", &msg->sender);
	}
	if (msg->sender.len > 0)
		rc = line_put3(out, " by ", &msg->sender, ": ");
	else
		rc = line_puts(out, ": ");
	return rc ? rc : line_put_clean(out, &msg->body);
}

/* "=== N online", "=== N in ROOM", "=== ROOM N" or "=== N rooms". */
static int line_encode_count_s(const tcpchat_msg *msg, tcpchat_buf *out)
{
	char num[32];
	int rc;

	if (msg->type == TCPCHAT_MSG_ROOMS && msg->room.len > 0) {
		snprintf(num, sizeof(num), " %" PRIu32, msg->code);
		rc = line_put3(out, "=== ", &msg->room, num);
	} else if (msg->type == TCPCHAT_MSG_ROOMS) {
		snprintf(num, sizeof(num), "=== %" PRIu32 " rooms", msg->code);
		return line_puts(out, num);
	} else if (msg->room.len > 0) {
		snprintf(num, sizeof(num), "=== %" PRIu32 " in ", msg->code);
		rc = line_put3(out, num, &msg->room, NULL);
	} else {
		snprintf(num, sizeof(num), "=== %" PRIu32 " online", msg->code);
		rc = line_puts(out, num);
	}
	return rc ? rc : line_put_opt(out, ": ", &msg->body);
}

/* A notice (not from the history) encoded with TCPCHAT_HANDSHAKE: "===
 * BODY". */
static int line_is_greeting(const tcpchat_msg *msg, unsigned flags)
{
	return (flags & TCPCHAT_HANDSHAKE) && msg->type == TCPCHAT_MSG_TEXT &&
	       !(msg->flags & TCPCHAT_MSGF_HISTORY) && msg->sender.len == 0 &&
	       msg->room.len == 0 && msg->target.len == 0;
}

static int line_encode_server(const tcpchat_msg *msg, unsigned flags,
                              tcpchat_buf *out)
{
	char num[32];
	int rc;

	switch (msg->type) {
	case TCPCHAT_MSG_TEXT:
		if (!line_is_greeting(msg, flags))
			return line_encode_text_s(msg, out);
		/* cleaning keeps every space and ':' where it is */
		if (!line_notice_word(msg->body.ptr, msg->body.len))
			return TCPCHAT_EINVAL;
		return line_put3(out, "=== ", &msg->body, NULL);
	case TCPCHAT_MSG_JOIN:
		rc = line_put3(out, "--> ", &msg->sender, " joined");
		if (!rc && !(msg->flags & TCPCHAT_MSGF_DEFAULT_ROOM))
			rc = line_put_opt(out, " ", &msg->room);
		return rc;
	case TCPCHAT_MSG_LEAVE:
		return line_encode_leave_s(msg, out);
	case TCPCHAT_MSG_WELCOME:
		return line_put3(out, "=== welcome ", &msg->sender, NULL);
	case TCPCHAT_MSG_ERROR:
		snprintf(num, sizeof(num), "-!- error %" PRIu32 ": ",
		         msg->code);
		return line_put3(out, num, &msg->body, NULL);
	case TCPCHAT_MSG_PING:
		return line_puts(out, "/ping");
	case TCPCHAT_MSG_PONG:
		return line_puts(out, "/pong");
	case TCPCHAT_MSG_WHO:
	case TCPCHAT_MSG_ROOMS:
		return line_encode_count_s(msg, out);
	case TCPCHAT_MSG_TOPIC:
		return line_encode_topic_s(msg, out);
	case TCPCHAT_MSG_HISTORY:
		return line__encode_history_s(msg, out);
	case TCPCHAT_MSG_KICK:
		return line__encode_kick(msg, 1, out);
	default: /* ACK among them: never sent to a line peer */
		return TCPCHAT_EINVAL;
	}
}

/* 1 for the types whose line carries a room (in that direction). */
static int line_has_room(uint32_t type, unsigned flags)
{
	switch (type) {
	case TCPCHAT_MSG_TEXT:
	case TCPCHAT_MSG_JOIN:
	case TCPCHAT_MSG_LEAVE:
	case TCPCHAT_MSG_WHO:
	case TCPCHAT_MSG_TOPIC:
	case TCPCHAT_MSG_HISTORY:
		return 1;
	case TCPCHAT_MSG_ROOMS:
		return (flags & TCPCHAT_FROM_SERVER) != 0;
	default:
		return 0;
	}
}

static int line_encode(void *codec_data, const tcpchat_msg *msg, unsigned flags,
                       tcpchat_buf *out)
{
	size_t start;
	int rc;

	TC_UNUSED(codec_data);
	if (!msg || !out)
		return TCPCHAT_EINVAL;
	if (!line_str_ok(&msg->sender) || !line_str_ok(&msg->body) ||
	    !line_str_ok(&msg->room) || !line_str_ok(&msg->target))
		return TCPCHAT_EINVAL;
	if (line_has_room(msg->type, flags) &&
	    !line_room_empty_or_ok(&msg->room))
		return TCPCHAT_EINVAL;

	start = out->len;
	if (flags & TCPCHAT_FROM_SERVER)
		rc = line_encode_server(msg, flags, out);
	else
		rc = line_encode_client(msg, out);
	if (!rc)
		rc = line_put(out, "\n", 1);
	if (rc) {
		out->len = start;
		return rc == TCPCHAT_EINVAL ? TCPCHAT_EINVAL : TCPCHAT_ENOMEM;
	}
	return 0;
}

/* ---- decoding --------------------------------------------------------- */

static long line_fail(tcpchat_decode_ctx *ctx, long rc, const char *why)
{
	ctx->error = why;
	return rc;
}

/* Finds the end of the first line.  Returns the frame length (through the
 * "\n"), 0 when more bytes are needed, or TCPCHAT_EMSGSIZE when the frame
 * (including its "\n") cannot fit in ctx->max_frame. */
static long line_frame(const char *data, size_t len, tcpchat_decode_ctx *ctx)
{
	size_t limit = TC_MIN(len, ctx->max_frame);
	const char *nl;

	if (limit > (size_t)LONG_MAX)
		limit = (size_t)LONG_MAX;
	nl = limit ? memchr(data, '\n', limit) : NULL;
	if (nl)
		return (long)(nl - data) + 1;
	if (len >= ctx->max_frame || len >= (size_t)LONG_MAX)
		return line_fail(ctx, TCPCHAT_EMSGSIZE,
		                 "line longer than the size limit");
	ctx->need = len + 1; /* at least the "\n" */
	return 0;
}

static int is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* The length of "/WORD" at the start of s[0..n) when a blank or the end
 * follows it, else 0 (not a command). */
static size_t line_command_len(const char *s, size_t n)
{
	size_t w = 1;

	if (n < 2 || s[0] != '/')
		return 0;
	while (w < n && is_word_char(s[w]))
		w++;
	if (w == 1 || (w < n && !line_is_blank(s[w])))
		return 0;
	return w;
}

/* The room word at s[i..): its end, or 0 when it is not a room name. */
static size_t line_room_at(const char *s, size_t n, size_t i)
{
	size_t e = line_word_end(s, n, i);

	return line_room_ok(s + i, e - i) ? e : 0;
}

/* The arguments of /join, /who and /rooms, from a (after the blanks):
 * 0 when fine (*out filled), -1 when malformed. */
static int line_args_room(const char *s, size_t n, size_t a, uint32_t type,
                          tcpchat_msg *out)
{
	size_t e;

	if (a == n && type != TCPCHAT_MSG_JOIN) {
		out->type = type;
		return 0;
	}
	if (a == n || type == TCPCHAT_MSG_ROOMS)
		return -1;
	e = line_room_at(s, n, a);
	if (!e || line_skip_blanks(s, n, e) != n)
		return -1;
	out->type = type;
	line_set_str(&out->room, s + a, e - a);
	return 0;
}

/* "/part[ ...]", "/msg NAME TEXT", "/topic ROOM[ TEXT]": 0 or -1. */
static int line_args_text(const char *s, size_t n, size_t a, uint32_t type,
                          tcpchat_msg *out)
{
	size_t e;

	if (type == TCPCHAT_MSG_TEXT) {
		e = line_word_end(s, n, a);
		if (e == a || e + 1 >= n || tcpchat_name_check(s + a, e - a))
			return -1;
		line_set_str(&out->target, s + a, e - a);
	} else if (type == TCPCHAT_MSG_LEAVE && (a == n || s[a] != '#')) {
		out->type = type;
		out->code = TCPCHAT_REASON_PART;
		line_set_str(&out->body, s + a, n - a);
		return 0;
	} else {
		e = a < n ? line_room_at(s, n, a) : 0;
		if (!e)
			return -1;
		line_set_str(&out->room, s + a, e - a);
	}
	out->type = type;
	if (type == TCPCHAT_MSG_LEAVE)
		out->code = TCPCHAT_REASON_PART;
	if (e < n)
		line_set_str(&out->body, s + e + 1, n - e - 1);
	return 0;
}

/* A line that starts with "/WORD" (w bytes): 1 when it is decoded into
 * *out (a command, or TCPCHAT_MSG_UNKNOWN), 0 when it is TEXT. */
static int line_command(const char *s, size_t n, size_t w, tcpchat_msg *out)
{
	static const struct {
		const char *word;
		uint32_t type; /* kick, ban, unban: the KICK's flags */
		int (*args)(const char *s, size_t n, size_t a, uint32_t type,
		            tcpchat_msg *out);
	} cmds[] = {
	        {"join", TCPCHAT_MSG_JOIN, line_args_room},
	        {"who", TCPCHAT_MSG_WHO, line_args_room},
	        {"rooms", TCPCHAT_MSG_ROOMS, line_args_room},
	        {"part", TCPCHAT_MSG_LEAVE, line_args_text},
	        {"msg", TCPCHAT_MSG_TEXT, line_args_text},
	        {"topic", TCPCHAT_MSG_TOPIC, line_args_text},
	        {"history", TCPCHAT_MSG_HISTORY, line__args_history},
	        {"kick", 0, line__args_kick},
	        {"ban", TCPCHAT_MSGF_BAN, line__args_kick},
	        {"unban", TCPCHAT_MSGF_UNBAN, line__args_kick},
	};
	static const struct {
		const char *word;
		uint32_t type;
	} bare[] = {
	        {"quit", TCPCHAT_MSG_LEAVE},
	        {"ping", TCPCHAT_MSG_PING},
	        {"pong", TCPCHAT_MSG_PONG},
	};
	size_t a = line_skip_blanks(s, n, w);
	size_t i;
	int rc = -1;

	for (i = 0; i < TC_ARRAY_LEN(bare); i++) {
		if (!line_is_exactly(s + 1, w - 1, bare[i].word))
			continue;
		if (w < n)
			return 0; /* "/quit now": text, as in protocol 1 */
		out->type = bare[i].type;
		if (bare[i].type == TCPCHAT_MSG_LEAVE)
			out->code = TCPCHAT_REASON_QUIT;
		return 1;
	}
	for (i = 0; i < TC_ARRAY_LEN(cmds); i++) {
		if (!line_is_exactly(s + 1, w - 1, cmds[i].word))
			continue;
		rc = cmds[i].args(s, n, a, cmds[i].type, out);
		break;
	}
	if (rc) {
		/* an unknown command, or a known one with bad arguments */
		memset(out, 0, sizeof(*out));
		out->type = TCPCHAT_MSG_UNKNOWN;
		line_set_str(&out->body, s, n);
	}
	return 1;
}

/* "ROOM TEXT": 1 when s[0..n) is one (decoded into *out), else 0. */
static int line_room_text(const char *s, size_t n, tcpchat_msg *out)
{
	size_t e;

	if (n == 0 || s[0] != '#')
		return 0;
	e = line_room_at(s, n, 0);
	if (!e || e + 1 >= n)
		return 0;
	out->type = TCPCHAT_MSG_TEXT;
	line_set_str(&out->room, s, e);
	line_set_str(&out->body, s + e + 1, n - e - 1);
	return 1;
}

static void line_client(const char *s, size_t n, tcpchat_msg *out,
                        const tcpchat_decode_ctx *ctx)
{
	size_t w;

	if (ctx->flags & TCPCHAT_HANDSHAKE) {
		while (n > 0 && line_is_blank(s[0])) {
			s++;
			n--;
		}
		if (n == 0)
			return; /* skipped */
		out->type = TCPCHAT_MSG_HELLO;
		out->code = TCPCHAT_PROTOCOL_VERSION;
		for (w = 0; w < n && !line_is_blank(s[w]);)
			w++;
		line_set_str(&out->sender, s, w);
		w = line_skip_blanks(s, n, w);
		if (w < n) /* the credential, as typed */
			line_set_str(&out->body, s + w, n - w);
		return;
	}
	if (line_skip_blanks(s, n, 0) == n)
		return; /* an empty or blank line: skipped */
	if (line_has_prefix(s, n, "//")) {
		out->type = TCPCHAT_MSG_TEXT;
		line_set_str(&out->body, s + 1, n - 1);
		return;
	}
	w = line_command_len(s, n);
	if (w && line_command(s, n, w, out))
		return;
	if (line_room_text(s, n, out))
		return;
	out->type = TCPCHAT_MSG_TEXT;
	line_set_str(&out->body, s, n);
}

static long line_decode(void *codec_data, const char *data, size_t len,
                        tcpchat_msg *out, tcpchat_decode_ctx *ctx)
{
	long frame = line_frame(data, len, ctx);
	size_t n;

	TC_UNUSED(codec_data);
	if (frame <= 0)
		return frame;
	n = (size_t)frame - 1;
	if (n > 0 && data[n - 1] == '\r')
		n--;

	memset(out, 0, sizeof(*out));
	if (ctx->flags & TCPCHAT_FROM_SERVER) {
		if (line__server_skips(data, n, ctx->flags))
			return frame; /* a greeting */
		if (line__parse_server(data, n, out)) {
			memset(out, 0, sizeof(*out));
			return line_fail(ctx, TCPCHAT_EPROTO,
			                 "unrecognised line");
		}
	} else {
		line_client(data, n, out, ctx);
	}
	return frame;
}

static const tcpchat_codec line_codec = {
        .abi = TCPCHAT_CODEC_ABI,
        .name = "line",
        .flags = TCPCHAT_CODEC_NO_PING | TCPCHAT_CODEC_GREET,
        .encode = line_encode,
        .decode = line_decode,
        .codec_data = NULL,
};

TCPCHAT_API const tcpchat_codec *tcpchat_codec_line(void)
{
	return &line_codec;
}
