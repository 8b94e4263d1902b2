/* libtcpchat - the json codec: JSON Lines, one object per line.
 *
 *	{"type":"text","id":12,"ts":1700000000000,"code":3,
 *	 "sender":"alice","body":"hi","room":"r","target":"t"}
 *
 * The keys, in the order they are written (json_keys[]): type, id, ts,
 * code, sender, body, room, target, then (codec abi 2) flags, caps,
 * max_frame, queue_frames, queue_bytes, ref, cursor, seq, epoch, first,
 * last, oldest.  "type"
 * is always written: the type's name, or a plain integer for a type
 * 1..255 that has no name; the numbers only when non-zero and the strings
 * only when non-empty, so a message without the abi-2 fields is the same
 * line as in protocol 1.
 *
 * The decoder accepts the keys in any order, skips unknown keys (any JSON
 * value, nested up to JSON_MAX_DEPTH), refuses a known key given twice,
 * and requires plain integers in range for the numbers.  "type" is a
 * known name, an integer 1..255, or any other non-empty string, which
 * decodes as TCPCHAT_MSG_UNKNOWN.  Strings without escapes point into the
 * input; strings with escapes are unescaped into ctx->scratch.
 */
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "json_parse.h"

#define JSON_TYPE_MAX 255 /* highest type that has a number */

/* What a key's value is: the type, a plain integer, or a string. */
enum json_kind { JK_TYPE, JK_U32, JK_U64, JK_I64, JK_STR };

struct json_key {
	const char *name;
	unsigned char kind; /* enum json_kind */
	size_t off;         /* of the field in tcpchat_msg */
};

#define JKEY(name, kind, field)                                                \
	{                                                                      \
		name, kind, offsetof(tcpchat_msg, field)                       \
	}

/* The keys of a message, in the order the encoder writes them; the
 * decoder's `seen` mask uses the same indexes ("type" is bit 0). */
static const struct json_key json_keys[] = {
        JKEY("type", JK_TYPE, type),
        JKEY("id", JK_U64, id),
        JKEY("ts", JK_I64, timestamp),
        JKEY("code", JK_U32, code),
        JKEY("sender", JK_STR, sender),
        JKEY("body", JK_STR, body),
        JKEY("room", JK_STR, room),
        JKEY("target", JK_STR, target),
        /* codec abi 2 */
        JKEY("flags", JK_U32, flags),
        JKEY("caps", JK_U64, caps),
        JKEY("max_frame", JK_U64, max_frame),
        JKEY("queue_frames", JK_U64, queue_frames),
        JKEY("queue_bytes", JK_U64, queue_bytes),
        JKEY("ref", JK_STR, ref),
        JKEY("cursor", JK_STR, cursor),
        JKEY("seq", JK_U64, seq),
        JKEY("epoch", JK_U64, epoch),
        JKEY("first", JK_U64, first),
        JKEY("last", JK_U64, last),
        JKEY("oldest", JK_U64, oldest),
};

#define JSON_N_KEYS TC_ARRAY_LEN(json_keys)
_Static_assert(TC_ARRAY_LEN(json_keys) <= 32, "seen is a 32-bit mask");

static const void *json_field(const tcpchat_msg *m, size_t k)
{
	return (const char *)m + json_keys[k].off;
}

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

/* Appends ,"key":value for key k of msg, or nothing when the value is zero
 * or empty. */
static int json_put_value(tcpchat_buf *out, const tcpchat_msg *msg, size_t k)
{
	const void *f = json_field(msg, k);
	char num[32];
	uint64_t u;
	int64_t i;
	uint32_t w;
	int rc;

	switch (json_keys[k].kind) {
	case JK_U32:
		memcpy(&w, f, sizeof(w));
		if (!w)
			return 0;
		snprintf(num, sizeof(num), "%" PRIu32, w);
		break;
	case JK_U64:
		memcpy(&u, f, sizeof(u));
		if (!u)
			return 0;
		snprintf(num, sizeof(num), "%" PRIu64, u);
		break;
	case JK_I64:
		memcpy(&i, f, sizeof(i));
		if (!i)
			return 0;
		snprintf(num, sizeof(num), "%" PRId64, i);
		break;
	case JK_STR:
		if (((const tcpchat_str *)f)->len == 0)
			return 0;
		rc = json_put_key(out, json_keys[k].name);
		return rc ? rc : json_put_string(out, f);
	default:
		return 0; /* type: written first, by json_encode() */
	}
	rc = json_put_key(out, json_keys[k].name);
	return rc ? rc : json_puts(out, num);
}

static int json_encode(void *codec_data, const tcpchat_msg *msg, unsigned flags,
                       tcpchat_buf *out)
{
	const char *type;
	char num[32];
	size_t start, k;
	int rc;

	TC_UNUSED(codec_data);
	TC_UNUSED(flags); /* one format for both directions */
	if (!msg || !out)
		return TCPCHAT_EINVAL;
	if (msg->type < 1 || msg->type > JSON_TYPE_MAX)
		return TCPCHAT_EINVAL; /* 0, or no number (MSG_UNKNOWN) */
	for (k = 0; k < JSON_N_KEYS; k++) {
		const tcpchat_str *str;

		if (json_keys[k].kind != JK_STR)
			continue;
		str = json_field(msg, k);
		if (str->len > 0 && !str->ptr)
			return TCPCHAT_EINVAL;
	}
	type = tcpchat_msg_type_name(msg->type);

	start = out->len;
	if (type) {
		rc = json_puts(out, "{\"type\":\"");
		if (!rc)
			rc = json_puts(out, type);
		if (!rc)
			rc = json_puts(out, "\"");
	} else {
		/* a type this version has no name for travels as a number */
		snprintf(num, sizeof(num), "{\"type\":%" PRIu32, msg->type);
		rc = json_puts(out, num);
	}
	for (k = 0; !rc && k < JSON_N_KEYS; k++)
		rc = json_put_value(out, msg, k);
	if (!rc)
		rc = json_puts(out, "}\n");
	if (rc) {
		out->len = start;
		return TCPCHAT_ENOMEM;
	}
	return 0;
}

/* ---- decoding --------------------------------------------------------- */

static int jp_key(const tcpchat_str *k)
{
	size_t i;

	for (i = 0; i < JSON_N_KEYS; i++)
		if (k->len == strlen(json_keys[i].name) &&
		    memcmp(k->ptr, json_keys[i].name, k->len) == 0)
			return (int)i;
	return -1;
}

/* "type": a known name, any other non-empty string (TCPCHAT_MSG_UNKNOWN),
 * or a plain integer 1..255. */
static int jp_type(struct jp *j, tcpchat_msg *out)
{
	size_t save = j->spos;
	tcpchat_str s;
	uint64_t v;
	uint32_t t;
	int rc;

	if (j->p < j->end && (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))) {
		rc = json__unsigned(j, JSON_TYPE_MAX, &v);
		if (rc)
			return rc;
		if (v == 0)
			return json__fail(j, "message type 0");
		out->type = (uint32_t)v;
		return 0;
	}
	if (j->p >= j->end || *j->p != '"')
		return json__fail(j, "\"type\" is not a string or an integer");
	rc = json__string(j, &s);
	if (rc)
		return rc;
	j->spos = save;
	if (s.len == 0)
		return json__fail(j, "empty \"type\"");
	for (t = 1; t <= TCPCHAT_MSG_TYPE_MAX; t++) {
		const char *name = tcpchat_msg_type_name(t);

		if (name && s.len == strlen(name) &&
		    memcmp(s.ptr, name, s.len) == 0) {
			out->type = t;
			return 0;
		}
	}
	out->type = TCPCHAT_MSG_UNKNOWN; /* a name from a newer protocol */
	return 0;
}

/* Parses the value of key k (or skips it, for k < 0) into *out. */
static int jp_value(struct jp *j, int k, tcpchat_msg *out)
{
	char *f;
	uint64_t u;
	int64_t i;
	uint32_t w;
	tcpchat_str str;
	int rc;

	if (k < 0)
		return json__skip(j, 0);
	f = (char *)out + json_keys[k].off;
	switch (json_keys[k].kind) {
	case JK_TYPE:
		return jp_type(j, out);
	case JK_U32:
		rc = json__unsigned(j, UINT32_MAX, &u);
		if (!rc) {
			w = (uint32_t)u;
			memcpy(f, &w, sizeof(w));
		}
		return rc;
	case JK_U64:
		rc = json__unsigned(j, UINT64_MAX, &u);
		if (!rc)
			memcpy(f, &u, sizeof(u));
		return rc;
	case JK_I64:
		rc = json__signed(j, &i);
		if (!rc)
			memcpy(f, &i, sizeof(i));
		return rc;
	default:
		rc = json__string(j, &str);
		if (!rc)
			memcpy(f, &str, sizeof(str));
		return rc;
	}
}

static int jp_object(struct jp *j, tcpchat_msg *out)
{
	uint32_t seen = 0; /* bit k: json_keys[k] has been seen */
	int rc;

	rc = json__expect(j, '{', "invalid JSON: expected '{'");
	if (rc)
		return rc;
	json__ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
	} else {
		for (;;) {
			size_t save = j->spos;
			tcpchat_str k;
			int key;

			if (j->p >= j->end || *j->p != '"')
				return json__fail(
				        j,
				        "invalid JSON: expected a string key");
			rc = json__string(j, &k);
			if (rc)
				return rc;
			key = jp_key(&k);
			j->spos = save;
			json__ws(j);
			rc = json__expect(j, ':', "invalid JSON: expected ':'");
			if (rc)
				return rc;
			json__ws(j);
			if (key >= 0) {
				if (seen & ((uint32_t)1 << key))
					return json__fail(
					        j, "duplicate key in object");
				seen |= (uint32_t)1 << key;
			}
			rc = jp_value(j, key, out);
			if (rc)
				return rc;
			json__ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				json__ws(j);
				continue;
			}
			rc = json__expect(j, '}',
			                  "invalid JSON: expected ',' or '}'");
			if (rc)
				return rc;
			break;
		}
	}
	json__ws(j);
	if (j->p != j->end)
		return json__fail(
		        j, "invalid JSON: trailing data after the object");
	if (!(seen & 1u)) /* json_keys[0] is "type" */
		return json__fail(j, "missing \"type\"");
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
	ctx->need = len + 1; /* at least the "\n" */
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
	json__ws(&j);
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
