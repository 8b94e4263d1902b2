/* libtcpchat - the line codec: one message per line of text, for people
 * using nc or telnet.
 *
 * A frame is a line ending in "\n"; a "\r" right before it is dropped.
 *
 * Client to server:
 *	NAME            while in the handshake: HELLO (spaces/tabs trimmed)
 *	/quit           LEAVE, reason quit
 *	/ping  /pong    PING, PONG
 *	/who            WHO
 *	//TEXT          TEXT "/TEXT" (a leading '/' is doubled by the encoder)
 *	/WORD[ ARGS]    TCPCHAT_MSG_UNKNOWN, body = the whole line ("/WORD
 *	                ARGS"), when WORD (ASCII letters, digits, '_', '-')
 *	                is not quit, ping, pong or who.  The protocol layer
 *	                answers it; the encoder cannot write it.
 *	TEXT            TEXT; an empty line is skipped.  A line starting
 *	                with a known command word and more ("/quit now"),
 *	                or with '/' and no command word ("/", "/usr/bin",
 *	                "/ x"), is TEXT too, as in protocol 1.
 *
 * Server to client:
 *	SENDER: BODY                    TEXT
 *	*** BODY                        TEXT without sender (a notice)
 *	--> NAME joined                 JOIN
 *	<-- NAME left (REASON)          LEAVE
 *	<-- NAME left (REASON: BODY)    LEAVE with a reason text
 *	=== welcome NAME                WELCOME
 *	-!- error CODE: BODY            ERROR
 *	/ping  /pong                    PING, PONG
 *	=== N online[: NAMES]           WHO (answer)
 *
 * The encoder writes any control byte (other than TAB) and DEL in a
 * string as '?', so no string can break a line in two.
 *
 * Only type, code, sender and body are carried: id, timestamp, room,
 * target and every field of codec abi 2 (flags, caps, max_frame, the
 * queue limits, ref, cursor, seq, epoch) are neither written nor read.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define LINE_REASON_SCAN 64 /* reason codes tried when mapping a word */

/* ---- encoding --------------------------------------------------------- */

static int line_put(tcpchat_buf *out, const char *s, size_t n)
{
	return tcpchat_buf_append(out, s, n);
}

static int line_puts(tcpchat_buf *out, const char *s)
{
	return tcpchat_buf_append(out, s, strlen(s));
}

/* Appends s with every byte that could break the line replaced by '?'. */
static int line_put_clean(tcpchat_buf *out, const tcpchat_str *s)
{
	const unsigned char *p = (const unsigned char *)s->ptr;
	char *w;
	size_t i;

	if (s->len == 0)
		return 0;
	if (tcpchat_buf_reserve(out, s->len))
		return TCPCHAT_ENOMEM;
	w = out->data + out->len;
	for (i = 0; i < s->len; i++) {
		unsigned char c = p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7F)
			c = '?';
		w[i] = (char)c;
	}
	out->len += s->len;
	return 0;
}

static int line_str_ok(const tcpchat_str *s)
{
	return s->len == 0 || s->ptr != NULL;
}

static int line_encode_client(const tcpchat_msg *msg, tcpchat_buf *out)
{
	int rc;

	switch (msg->type) {
	case TCPCHAT_MSG_HELLO:
		rc = line_put_clean(out, &msg->sender);
		break;
	case TCPCHAT_MSG_TEXT:
		rc = 0;
		if (msg->body.len > 0 && msg->body.ptr[0] == '/')
			rc = line_puts(out, "/");
		if (!rc)
			rc = line_put_clean(out, &msg->body);
		break;
	case TCPCHAT_MSG_LEAVE:
		rc = line_puts(out, "/quit");
		break;
	case TCPCHAT_MSG_PING:
		rc = line_puts(out, "/ping");
		break;
	case TCPCHAT_MSG_PONG:
		rc = line_puts(out, "/pong");
		break;
	case TCPCHAT_MSG_WHO:
		rc = line_puts(out, "/who");
		break;
	default:
		return TCPCHAT_EINVAL;
	}
	return rc;
}

static int line_encode_server(const tcpchat_msg *msg, tcpchat_buf *out)
{
	char num[32];
	int rc;

	switch (msg->type) {
	case TCPCHAT_MSG_TEXT:
		if (msg->sender.len > 0) {
			rc = line_put_clean(out, &msg->sender);
			if (!rc)
				rc = line_puts(out, ": ");
		} else {
			rc = line_puts(out, "*** ");
		}
		if (!rc)
			rc = line_put_clean(out, &msg->body);
		break;
	case TCPCHAT_MSG_JOIN:
		rc = line_puts(out, "--> ");
		if (!rc)
			rc = line_put_clean(out, &msg->sender);
		if (!rc)
			rc = line_puts(out, " joined");
		break;
	case TCPCHAT_MSG_LEAVE:
		rc = line_puts(out, "<-- ");
		if (!rc)
			rc = line_put_clean(out, &msg->sender);
		if (!rc)
			rc = line_puts(out, " left (");
		if (!rc)
			rc = line_puts(out, tcpchat_reason_name(
			                            msg->code <= INT_MAX
			                                    ? (int)msg->code
			                                    : -1));
		if (!rc && msg->body.len > 0) {
			rc = line_puts(out, ": ");
			if (!rc)
				rc = line_put_clean(out, &msg->body);
		}
		if (!rc)
			rc = line_puts(out, ")");
		break;
	case TCPCHAT_MSG_WELCOME:
		rc = line_puts(out, "=== welcome ");
		if (!rc)
			rc = line_put_clean(out, &msg->sender);
		break;
	case TCPCHAT_MSG_ERROR:
		snprintf(num, sizeof(num), "-!- error %" PRIu32 ": ",
		         msg->code);
		rc = line_puts(out, num);
		if (!rc)
			rc = line_put_clean(out, &msg->body);
		break;
	case TCPCHAT_MSG_PING:
		rc = line_puts(out, "/ping");
		break;
	case TCPCHAT_MSG_PONG:
		rc = line_puts(out, "/pong");
		break;
	case TCPCHAT_MSG_WHO:
		snprintf(num, sizeof(num), "=== %" PRIu32 " online", msg->code);
		rc = line_puts(out, num);
		if (!rc && msg->body.len > 0) {
			rc = line_puts(out, ": ");
			if (!rc)
				rc = line_put_clean(out, &msg->body);
		}
		break;
	default:
		return TCPCHAT_EINVAL;
	}
	return rc;
}

static int line_encode(void *codec_data, const tcpchat_msg *msg, unsigned flags,
                       tcpchat_buf *out)
{
	size_t start;
	int rc;

	TC_UNUSED(codec_data);
	if (!msg || !out)
		return TCPCHAT_EINVAL;
	if (!line_str_ok(&msg->sender) || !line_str_ok(&msg->body))
		return TCPCHAT_EINVAL;

	start = out->len;
	if (flags & TCPCHAT_FROM_SERVER)
		rc = line_encode_server(msg, out);
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

static int has_prefix(const char *s, size_t n, const char *pre)
{
	size_t k = strlen(pre);

	return n >= k && memcmp(s, pre, k) == 0;
}

static int is_exactly(const char *s, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(s, word, n) == 0;
}

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

static void set_str(tcpchat_str *dst, const char *p, size_t n)
{
	dst->ptr = p;
	dst->len = n;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* 1 when s[0..n) is "/WORD" or "/WORD ARGS" (a blank after WORD), with
 * WORD not one of the known commands: an unknown command. */
static int is_unknown_command(const char *s, size_t n)
{
	static const char *const known[] = {"quit", "ping", "pong", "who"};
	size_t w = 1, i;

	if (n < 2 || s[0] != '/')
		return 0;
	while (w < n && is_word_char(s[w]))
		w++;
	if (w == 1 || (w < n && !is_blank(s[w])))
		return 0;
	for (i = 0; i < TC_ARRAY_LEN(known); i++)
		if (is_exactly(s + 1, w - 1, known[i]))
			return 0;
	return 1;
}

static void line_client(const char *s, size_t n, tcpchat_msg *out,
                        const tcpchat_decode_ctx *ctx)
{
	if (ctx->flags & TCPCHAT_HANDSHAKE) {
		while (n > 0 && is_blank(s[0])) {
			s++;
			n--;
		}
		while (n > 0 && is_blank(s[n - 1]))
			n--;
		if (n == 0)
			return; /* skipped */
		out->type = TCPCHAT_MSG_HELLO;
		out->code = TCPCHAT_PROTOCOL_VERSION;
		set_str(&out->sender, s, n);
		return;
	}
	if (n == 0)
		return; /* skipped */
	if (is_exactly(s, n, "/quit")) {
		out->type = TCPCHAT_MSG_LEAVE;
		out->code = TCPCHAT_REASON_QUIT;
	} else if (is_exactly(s, n, "/ping")) {
		out->type = TCPCHAT_MSG_PING;
	} else if (is_exactly(s, n, "/pong")) {
		out->type = TCPCHAT_MSG_PONG;
	} else if (is_exactly(s, n, "/who")) {
		out->type = TCPCHAT_MSG_WHO;
	} else if (has_prefix(s, n, "//")) {
		out->type = TCPCHAT_MSG_TEXT;
		set_str(&out->body, s + 1, n - 1);
	} else if (is_unknown_command(s, n)) {
		out->type = TCPCHAT_MSG_UNKNOWN;
		set_str(&out->body, s, n);
	} else {
		out->type = TCPCHAT_MSG_TEXT;
		set_str(&out->body, s, n);
	}
}

/* Maps a reason word back to its code; -1 if unknown. */
static int line_reason(const char *s, size_t n)
{
	int i;

	if (is_exactly(s, n, tcpchat_reason_name(0)))
		return 0;
	for (i = 1; i < LINE_REASON_SCAN; i++) {
		const char *w = tcpchat_reason_name(i);

		if (strcmp(w, tcpchat_reason_name(0)) == 0)
			break;
		if (is_exactly(s, n, w))
			return i;
	}
	return -1;
}

/* "<-- NAME left (REASON[: BODY])"; s/n is what follows "<-- ". */
static int line_leave(const char *s, size_t n, tcpchat_msg *out)
{
	static const char mid[] = " left (";
	const char *m = find(s, n, mid);
	const char *in, *colon;
	size_t inlen;
	int reason;

	/* the final ')' cannot be part of " left (", so in <= s + n - 1 */
	if (!m || s[n - 1] != ')')
		return TCPCHAT_EPROTO;
	in = m + (sizeof(mid) - 1);
	inlen = (size_t)(s + n - 1 - in);

	out->type = TCPCHAT_MSG_LEAVE;
	set_str(&out->sender, s, (size_t)(m - s));
	colon = find(in, inlen, ": ");
	if (colon) {
		reason = line_reason(in, (size_t)(colon - in));
		if (reason >= 0) {
			out->code = (uint32_t)reason;
			set_str(&out->body, colon + 2,
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
	set_str(&out->body, in, inlen);
	return 0;
}

/* "-!- error CODE: BODY"; s/n is what follows "-!- error ". */
/* Parses the decimal number at the start of s[0..n) into *code.  Returns
 * the count of digits, or 0 when there is none or it overflows. */
static size_t line_number(const char *s, size_t n, uint32_t *code)
{
	size_t i = 0;

	*code = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		unsigned d = (unsigned)(s[i] - '0');

		if (*code > (UINT32_MAX - d) / 10)
			return 0;
		*code = *code * 10 + d;
		i++;
	}
	return i;
}

/* "[: BODY]" after a fixed part: no body, or ": " and the body. */
static int line_tail(const char *s, size_t n, tcpchat_msg *out)
{
	if (n == 0)
		return 0;
	if (n < 2 || s[0] != ':' || s[1] != ' ')
		return TCPCHAT_EPROTO;
	set_str(&out->body, s + 2, n - 2);
	return 0;
}

static int line_error(const char *s, size_t n, tcpchat_msg *out)
{
	size_t i = line_number(s, n, &out->code);

	if (i == 0)
		return TCPCHAT_EPROTO;
	out->type = TCPCHAT_MSG_ERROR;
	return line_tail(s + i, n - i, out);
}

/* "N online[: NAMES]" */
static int line_who(const char *s, size_t n, tcpchat_msg *out)
{
	static const char online[] = " online";
	size_t k = sizeof(online) - 1;
	size_t i = line_number(s, n, &out->code);

	if (i == 0 || n - i < k || memcmp(s + i, online, k) != 0)
		return TCPCHAT_EPROTO;
	out->type = TCPCHAT_MSG_WHO;
	return line_tail(s + i + k, n - i - k, out);
}

static int line_server(const char *s, size_t n, tcpchat_msg *out)
{
	static const char joined[] = " joined";
	const char *sp = memchr(s, ' ', n);

	if (sp && sp - s >= 2 && sp[-1] == ':') {
		out->type = TCPCHAT_MSG_TEXT;
		set_str(&out->sender, s, (size_t)(sp - s) - 1);
		set_str(&out->body, sp + 1, n - (size_t)(sp - s) - 1);
		return 0;
	}
	if (has_prefix(s, n, "*** ")) {
		out->type = TCPCHAT_MSG_TEXT;
		set_str(&out->body, s + 4, n - 4);
		return 0;
	}
	if (has_prefix(s, n, "--> ")) {
		size_t k = sizeof(joined) - 1;

		s += 4;
		n -= 4;
		if (n < k || memcmp(s + n - k, joined, k) != 0)
			return TCPCHAT_EPROTO;
		out->type = TCPCHAT_MSG_JOIN;
		set_str(&out->sender, s, n - k);
		return 0;
	}
	if (has_prefix(s, n, "<-- "))
		return line_leave(s + 4, n - 4, out);
	if (has_prefix(s, n, "=== welcome ")) {
		out->type = TCPCHAT_MSG_WELCOME;
		out->code = TCPCHAT_PROTOCOL_VERSION;
		set_str(&out->sender, s + 12, n - 12);
		return 0;
	}
	if (has_prefix(s, n, "-!- error "))
		return line_error(s + 10, n - 10, out);
	if (has_prefix(s, n, "=== "))
		return line_who(s + 4, n - 4, out);
	if (is_exactly(s, n, "/ping")) {
		out->type = TCPCHAT_MSG_PING;
		return 0;
	}
	if (is_exactly(s, n, "/pong")) {
		out->type = TCPCHAT_MSG_PONG;
		return 0;
	}
	return TCPCHAT_EPROTO;
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
		if (line_server(data, n, out)) {
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
        .flags = TCPCHAT_CODEC_NO_PING,
        .encode = line_encode,
        .decode = line_decode,
        .codec_data = NULL,
};

TCPCHAT_API const tcpchat_codec *tcpchat_codec_line(void)
{
	return &line_codec;
}
