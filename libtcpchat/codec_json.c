/* libtcpchat - the json codec: JSON Lines, one object per line.
 *
 *	{"type":"text","id":12,"ts":1700000000000,"code":3,
 *	 "sender":"alice","body":"hi","room":"r","target":"t"}
 *
 * "type" is always written; the numbers only when non-zero and the strings
 * only when non-empty.  The decoder accepts the keys in any order, skips
 * unknown keys (any JSON value, nested up to JSON_MAX_DEPTH), refuses a
 * known key given twice, and requires plain integers for id/ts/code.
 * Strings without escapes point into the input; strings with escapes are
 * unescaped into ctx->scratch.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define JSON_MAX_DEPTH 16 /* nesting allowed inside an unknown key's value */

/* ---- encoding --------------------------------------------------------- */

static int json_put(tcpchat_buf *out, const char *s, size_t n)
{
	return tcpchat_buf_append(out, s, n);
}

static int json_puts(tcpchat_buf *out, const char *s)
{
	return tcpchat_buf_append(out, s, strlen(s));
}

/* Appends s as a JSON string: '"', '\\' and control bytes escaped, bytes
 * that are not valid UTF-8 written as U+FFFD, the rest raw. */
static int json_put_string(tcpchat_buf *out, const tcpchat_str *s)
{
	const unsigned char *p = (const unsigned char *)s->ptr;
	size_t i = 0, run = 0;
	char esc[8];

	if (json_put(out, "\"", 1))
		return TCPCHAT_ENOMEM;
	while (i < s->len) {
		unsigned char c = p[i];
		const char *rep;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			i++;
			continue;
		}
		if (c >= 0x80) {
			size_t k = util__utf8_seq(p + i, s->len - i);

			if (k) {
				i += k;
				continue;
			}
		}
		if (json_put(out, s->ptr + run, i - run))
			return TCPCHAT_ENOMEM;
		switch (c) {
		case '"':
			rep = "\\\"";
			break;
		case '\\':
			rep = "\\\\";
			break;
		case '\b':
			rep = "\\b";
			break;
		case '\f':
			rep = "\\f";
			break;
		case '\n':
			rep = "\\n";
			break;
		case '\r':
			rep = "\\r";
			break;
		case '\t':
			rep = "\\t";
			break;
		default:
			if (c >= 0x80) {
				rep = "\\ufffd";
			} else {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				rep = esc;
			}
			break;
		}
		if (json_puts(out, rep))
			return TCPCHAT_ENOMEM;
		i++;
		run = i;
	}
	if (json_put(out, s->ptr + run, i - run) || json_put(out, "\"", 1))
		return TCPCHAT_ENOMEM;
	return 0;
}

static int json_put_key(tcpchat_buf *out, const char *key)
{
	int rc = json_puts(out, ",\"");

	if (!rc)
		rc = json_puts(out, key);
	if (!rc)
		rc = json_puts(out, "\":");
	return rc;
}

static int json_encode(void *codec_data, const tcpchat_msg *msg, unsigned flags,
                       tcpchat_buf *out)
{
	static const char *const keys[] = {"sender", "body", "room", "target"};
	const tcpchat_str *strs[4];
	const char *type;
	char num[32];
	size_t start, i;
	int rc;

	TC_UNUSED(codec_data);
	TC_UNUSED(flags); /* one format for both directions */
	if (!msg || !out)
		return TCPCHAT_EINVAL;
	type = tcpchat_msg_type_name(msg->type <= INT_MAX ? (int)msg->type
	                                                  : -1);
	if (!type)
		return TCPCHAT_EINVAL;
	strs[0] = &msg->sender;
	strs[1] = &msg->body;
	strs[2] = &msg->room;
	strs[3] = &msg->target;
	for (i = 0; i < TC_ARRAY_LEN(strs); i++)
		if (strs[i]->len > 0 && !strs[i]->ptr)
			return TCPCHAT_EINVAL;

	start = out->len;
	rc = json_puts(out, "{\"type\":\"");
	if (!rc)
		rc = json_puts(out, type);
	if (!rc)
		rc = json_puts(out, "\"");
	if (!rc && msg->id) {
		snprintf(num, sizeof(num), "%" PRIu64, msg->id);
		rc = json_put_key(out, "id");
		if (!rc)
			rc = json_puts(out, num);
	}
	if (!rc && msg->timestamp) {
		snprintf(num, sizeof(num), "%" PRId64, msg->timestamp);
		rc = json_put_key(out, "ts");
		if (!rc)
			rc = json_puts(out, num);
	}
	if (!rc && msg->code) {
		snprintf(num, sizeof(num), "%" PRIu32, msg->code);
		rc = json_put_key(out, "code");
		if (!rc)
			rc = json_puts(out, num);
	}
	for (i = 0; !rc && i < TC_ARRAY_LEN(strs); i++) {
		if (strs[i]->len == 0)
			continue;
		rc = json_put_key(out, keys[i]);
		if (!rc)
			rc = json_put_string(out, strs[i]);
	}
	if (!rc)
		rc = json_puts(out, "}\n");
	if (rc) {
		out->len = start;
		return TCPCHAT_ENOMEM;
	}
	return 0;
}

/* ---- decoding --------------------------------------------------------- */

struct jp {
	const unsigned char *p;   /* next byte */
	const unsigned char *end; /* end of the line (the "\n" or "\r\n") */
	tcpchat_decode_ctx *ctx;
	size_t spos; /* bytes of ctx->scratch in use */
};

enum {
	KEY_TYPE,
	KEY_ID,
	KEY_TS,
	KEY_CODE,
	KEY_SENDER,
	KEY_BODY,
	KEY_ROOM,
	KEY_TARGET,
	KEY_COUNT
};

static const char *const json_keys[KEY_COUNT] = {
        [KEY_TYPE] = "type", [KEY_ID] = "id",         [KEY_TS] = "ts",
        [KEY_CODE] = "code", [KEY_SENDER] = "sender", [KEY_BODY] = "body",
        [KEY_ROOM] = "room", [KEY_TARGET] = "target",
};

static int jp_fail(struct jp *j, const char *why)
{
	j->ctx->error = why;
	return TCPCHAT_EPROTO;
}

static void jp_ws(struct jp *j)
{
	while (j->p < j->end &&
	       (*j->p == ' ' || *j->p == '\t' || *j->p == '\r'))
		j->p++;
}

static int jp_expect(struct jp *j, unsigned char c, const char *why)
{
	if (j->p >= j->end || *j->p != c)
		return jp_fail(j, why);
	j->p++;
	return 0;
}

static int jp_hex4(struct jp *j, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (j->end - j->p < 4)
		return jp_fail(j, "invalid JSON: truncated \\u escape");
	for (i = 0; i < 4; i++) {
		unsigned char c = j->p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return jp_fail(
			        j, "invalid JSON: bad hex digit in \\u escape");
	}
	j->p += 4;
	*out = v;
	return 0;
}

/* Reads the rest of a \u escape (j->p is after the 'u'), combining a
 * surrogate pair; stores the code point in *cp. */
static int jp_unicode(struct jp *j, unsigned *cp)
{
	unsigned hi, lo;
	int rc = jp_hex4(j, &hi);

	if (rc)
		return rc;
	if (hi >= 0xDC00 && hi <= 0xDFFF)
		return jp_fail(j, "invalid JSON: lone low surrogate");
	if (hi < 0xD800 || hi > 0xDBFF) {
		*cp = hi;
		return 0;
	}
	if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
		return jp_fail(j, "invalid JSON: lone high surrogate");
	j->p += 2;
	rc = jp_hex4(j, &lo);
	if (rc)
		return rc;
	if (lo < 0xDC00 || lo > 0xDFFF)
		return jp_fail(j, "invalid JSON: lone high surrogate");
	*cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
	return 0;
}

static size_t utf8_put(unsigned char *w, unsigned cp)
{
	if (cp < 0x80) {
		w[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		w[0] = (unsigned char)(0xC0 | (cp >> 6));
		w[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		w[0] = (unsigned char)(0xE0 | (cp >> 12));
		w[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		w[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	w[0] = (unsigned char)(0xF0 | (cp >> 18));
	w[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	w[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	w[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Appends n bytes to the scratch string being built. */
static int jp_scratch(struct jp *j, size_t *w, const void *p, size_t n)
{
	if (!j->ctx->scratch || n > j->ctx->scratch_len ||
	    *w > j->ctx->scratch_len - n)
		return jp_fail(
		        j,
		        "invalid JSON: string does not fit the scratch buffer");
	memcpy(j->ctx->scratch + *w, p, n);
	*w += n;
	return 0;
}

/* Parses a string; j->p is at the opening quote.  The result points into
 * the line, or into the scratch buffer if the string has escapes. */
static int jp_string(struct jp *j, tcpchat_str *res)
{
	const unsigned char *start;
	size_t w = 0; /* scratch write position, when unescaping */
	int unescape = 0;
	int rc;

	if (j->p >= j->end || *j->p != '"')
		return jp_fail(j, "invalid JSON: expected a string");
	start = ++j->p;
	for (;;) {
		unsigned char c, buf[4];
		unsigned cp;
		size_t k;

		if (j->p >= j->end)
			return jp_fail(j, "invalid JSON: unterminated string");
		c = *j->p;
		if (c == '"')
			break;
		if (c < 0x20)
			return jp_fail(
			        j, "invalid JSON: control character in string");
		if (c == '\\') {
			if (!unescape) {
				unescape = 1;
				w = j->spos;
				rc = jp_scratch(j, &w, start,
				                (size_t)(j->p - start));
				if (rc)
					return rc;
			}
			j->p++;
			if (j->p >= j->end)
				return jp_fail(
				        j, "invalid JSON: unterminated string");
			c = *j->p++;
			switch (c) {
			case '"':
			case '\\':
			case '/':
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'u':
				rc = jp_unicode(j, &cp);
				if (rc)
					return rc;
				k = utf8_put(buf, cp);
				rc = jp_scratch(j, &w, buf, k);
				if (rc)
					return rc;
				continue;
			default:
				return jp_fail(
				        j,
				        "invalid JSON: bad escape in string");
			}
			rc = jp_scratch(j, &w, &c, 1);
			if (rc)
				return rc;
			continue;
		}
		k = 1;
		if (c >= 0x80) {
			k = util__utf8_seq(j->p, (size_t)(j->end - j->p));
			if (!k)
				return jp_fail(j, "invalid UTF-8 in string");
		}
		if (unescape) {
			rc = jp_scratch(j, &w, j->p, k);
			if (rc)
				return rc;
		}
		j->p += k;
	}
	if (unescape) {
		res->ptr = j->ctx->scratch + j->spos;
		res->len = w - j->spos;
		j->spos = w;
	} else {
		res->ptr = (const char *)start;
		res->len = (size_t)(j->p - start);
	}
	j->p++; /* closing quote */
	return 0;
}

static int jp_digit(const struct jp *j)
{
	return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

/* Parses a plain integer (no fraction, exponent, '+' or leading zeros):
 * its sign in *neg and magnitude in *mag. */
static int jp_integer(struct jp *j, int *neg, uint64_t *mag)
{
	uint64_t v = 0;

	*neg = 0;
	if (j->p < j->end && *j->p == '-') {
		*neg = 1;
		j->p++;
	}
	if (!jp_digit(j))
		return jp_fail(j, "invalid JSON: expected an integer");
	if (*j->p == '0' && j->end - j->p > 1 && j->p[1] >= '0' &&
	    j->p[1] <= '9')
		return jp_fail(j, "invalid JSON: number with leading zeros");
	while (jp_digit(j)) {
		unsigned d = (unsigned)(*j->p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return jp_fail(j, "number out of range");
		v = v * 10 + d;
		j->p++;
	}
	if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
		return jp_fail(j, "invalid JSON: expected an integer");
	*mag = v;
	return 0;
}

static int jp_unsigned(struct jp *j, uint64_t max, uint64_t *out)
{
	uint64_t v;
	int neg, rc;

	if (j->p < j->end && *j->p == '-')
		return jp_fail(j, "number out of range");
	rc = jp_integer(j, &neg, &v);
	if (rc)
		return rc;
	if (v > max)
		return jp_fail(j, "number out of range");
	*out = v;
	return 0;
}

static int jp_signed(struct jp *j, int64_t *out)
{
	uint64_t v;
	int neg, rc;

	rc = jp_integer(j, &neg, &v);
	if (rc)
		return rc;
	if (!neg) {
		if (v > (uint64_t)INT64_MAX)
			return jp_fail(j, "number out of range");
		*out = (int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX + 1)
			return jp_fail(j, "number out of range");
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	}
	return 0;
}

/* Skips any JSON number (fraction and exponent allowed). */
static int jp_skip_number(struct jp *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (!jp_digit(j))
		return jp_fail(j, "invalid JSON: expected a value");
	if (*j->p == '0') {
		j->p++;
		if (jp_digit(j))
			return jp_fail(
			        j, "invalid JSON: number with leading zeros");
	} else {
		while (jp_digit(j))
			j->p++;
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!jp_digit(j))
			return jp_fail(j, "invalid JSON: bad number");
		while (jp_digit(j))
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!jp_digit(j))
			return jp_fail(j, "invalid JSON: bad number");
		while (jp_digit(j))
			j->p++;
	}
	return 0;
}

static int jp_literal(struct jp *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return jp_fail(j, "invalid JSON: expected a value");
	j->p += n;
	return 0;
}

/* Skips one value of any kind; depth is the nesting of arrays/objects
 * already open around it (0 for a value of the message object). */
static int jp_skip(struct jp *j, int depth)
{
	size_t save = j->spos;
	tcpchat_str s;
	unsigned char open, close;
	int rc;

	if (j->p >= j->end)
		return jp_fail(j, "invalid JSON: expected a value");
	switch (*j->p) {
	case '"':
		rc = jp_string(j, &s);
		j->spos = save;
		return rc;
	case 't':
		return jp_literal(j, "true");
	case 'f':
		return jp_literal(j, "false");
	case 'n':
		return jp_literal(j, "null");
	case '{':
	case '[':
		break;
	default:
		return jp_skip_number(j);
	}

	open = *j->p;
	close = open == '{' ? '}' : ']';
	if (depth >= JSON_MAX_DEPTH)
		return jp_fail(j, "invalid JSON: nesting too deep");
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return 0;
	}
	for (;;) {
		if (open == '{') {
			rc = jp_string(j, &s);
			j->spos = save;
			if (rc)
				return rc;
			jp_ws(j);
			rc = jp_expect(j, ':', "invalid JSON: expected ':'");
			if (rc)
				return rc;
			jp_ws(j);
		}
		rc = jp_skip(j, depth + 1);
		if (rc)
			return rc;
		jp_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			jp_ws(j);
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			return 0;
		}
		return jp_fail(
		        j, open == '{' ? "invalid JSON: expected ',' or '}'"
		                       : "invalid JSON: expected ',' or ']'");
	}
}

static int jp_key(const tcpchat_str *k)
{
	int i;

	for (i = 0; i < KEY_COUNT; i++)
		if (k->len == strlen(json_keys[i]) &&
		    memcmp(k->ptr, json_keys[i], k->len) == 0)
			return i;
	return -1;
}

static int jp_type(struct jp *j, tcpchat_msg *out)
{
	size_t save = j->spos;
	tcpchat_str s;
	int rc, t;

	if (j->p >= j->end || *j->p != '"')
		return jp_fail(j, "\"type\" is not a string");
	rc = jp_string(j, &s);
	if (rc)
		return rc;
	j->spos = save;
	for (t = 1; t <= TCPCHAT_MSG_TYPE_MAX; t++) {
		const char *name = tcpchat_msg_type_name(t);

		if (name && s.len == strlen(name) &&
		    memcmp(s.ptr, name, s.len) == 0) {
			out->type = (uint32_t)t;
			return 0;
		}
	}
	return jp_fail(j, "unknown message type");
}

static int jp_value(struct jp *j, int key, tcpchat_msg *out)
{
	uint64_t v;
	int rc;

	switch (key) {
	case KEY_TYPE:
		return jp_type(j, out);
	case KEY_ID:
		return jp_unsigned(j, UINT64_MAX, &out->id);
	case KEY_TS:
		return jp_signed(j, &out->timestamp);
	case KEY_CODE:
		rc = jp_unsigned(j, UINT32_MAX, &v);
		if (!rc)
			out->code = (uint32_t)v;
		return rc;
	case KEY_SENDER:
		return jp_string(j, &out->sender);
	case KEY_BODY:
		return jp_string(j, &out->body);
	case KEY_ROOM:
		return jp_string(j, &out->room);
	case KEY_TARGET:
		return jp_string(j, &out->target);
	default:
		return jp_skip(j, 0);
	}
}

static int jp_object(struct jp *j, tcpchat_msg *out)
{
	unsigned seen = 0;
	int rc;

	rc = jp_expect(j, '{', "invalid JSON: expected '{'");
	if (rc)
		return rc;
	jp_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
	} else {
		for (;;) {
			size_t save = j->spos;
			tcpchat_str k;
			int key;

			if (j->p >= j->end || *j->p != '"')
				return jp_fail(
				        j,
				        "invalid JSON: expected a string key");
			rc = jp_string(j, &k);
			if (rc)
				return rc;
			key = jp_key(&k);
			j->spos = save;
			jp_ws(j);
			rc = jp_expect(j, ':', "invalid JSON: expected ':'");
			if (rc)
				return rc;
			jp_ws(j);
			if (key >= 0) {
				if (seen & (1u << key))
					return jp_fail(
					        j, "duplicate key in object");
				seen |= 1u << key;
			}
			rc = jp_value(j, key, out);
			if (rc)
				return rc;
			jp_ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				jp_ws(j);
				continue;
			}
			rc = jp_expect(j, '}',
			               "invalid JSON: expected ',' or '}'");
			if (rc)
				return rc;
			break;
		}
	}
	jp_ws(j);
	if (j->p != j->end)
		return jp_fail(j,
		               "invalid JSON: trailing data after the object");
	if (!(seen & (1u << KEY_TYPE)))
		return jp_fail(j, "missing \"type\"");
	return 0;
}

static long json_fail(tcpchat_decode_ctx *ctx, long rc, const char *why)
{
	ctx->error = why;
	return rc;
}

/* Same framing as the line codec: the frame, "\n" included, must fit in
 * ctx->max_frame. */
static long json_frame(const char *data, size_t len, tcpchat_decode_ctx *ctx)
{
	size_t limit = TC_MIN(len, ctx->max_frame);
	const char *nl;

	if (limit > (size_t)LONG_MAX)
		limit = (size_t)LONG_MAX;
	nl = limit ? memchr(data, '\n', limit) : NULL;
	if (nl)
		return (long)(nl - data) + 1;
	if (len >= ctx->max_frame || len >= (size_t)LONG_MAX)
		return json_fail(ctx, TCPCHAT_EMSGSIZE,
		                 "line longer than the size limit");
	return 0;
}

static long json_decode(void *codec_data, const char *data, size_t len,
                        tcpchat_msg *out, tcpchat_decode_ctx *ctx)
{
	long frame = json_frame(data, len, ctx);
	struct jp j;

	TC_UNUSED(codec_data);
	if (frame <= 0)
		return frame;
	j.p = (const unsigned char *)data;
	j.end = j.p + frame - 1;
	j.ctx = ctx;
	j.spos = 0;

	memset(out, 0, sizeof(*out));
	jp_ws(&j);
	if (j.p == j.end)
		return frame; /* blank line: skipped */
	if (jp_object(&j, out)) {
		memset(out, 0, sizeof(*out));
		return TCPCHAT_EPROTO;
	}
	return frame;
}

static const tcpchat_codec json_codec = {
        .abi = TCPCHAT_CODEC_ABI,
        .name = "json",
        .flags = 0,
        .encode = json_encode,
        .decode = json_decode,
        .codec_data = NULL,
};

TCPCHAT_API const tcpchat_codec *tcpchat_codec_json(void)
{
	return &json_codec;
}
