/* libtcpchat - the binary codec: length-prefixed, versioned frames.
 *
 * Frame layout (all integers big-endian):
 *
 *	off size field
 *	0   4    L: bytes after this field, L >= 24
 *	4   1    version = 1
 *	5   1    type (1..TCPCHAT_MSG_TYPE_MAX)
 *	6   2    flags (sent as 0, ignored on receipt)
 *	8   8    id
 *	16  8    timestamp (two's complement, ms)
 *	24  4    code
 *	28  ...  fields: u8 tag, u32 length n, n bytes
 *
 * Field tags: 1 sender, 2 body, 3 room, 4 target.  The encoder writes only
 * non-empty fields, in tag order; the decoder skips unknown tags and
 * refuses a known tag that appears twice.  Decoded strings point into the
 * input (no copy).
 */
#include <limits.h>
#include <string.h>

#include "internal.h"

#define BIN_LEN_SIZE 4  /* the length prefix */
#define BIN_HDR_SIZE 24 /* minimum L: version..code */
#define BIN_FIELD_HDR 5 /* tag + length */
#define BIN_VERSION 1

enum {
	BIN_TAG_SENDER = 1,
	BIN_TAG_BODY = 2,
	BIN_TAG_ROOM = 3,
	BIN_TAG_TARGET = 4
};

static long bin_fail(tcpchat_decode_ctx *ctx, long rc, const char *why)
{
	ctx->error = why;
	return rc;
}

static int bin_encode(void *codec_data, const tcpchat_msg *msg, unsigned flags,
                      tcpchat_buf *out)
{
	const tcpchat_str *fields[4];
	size_t body = BIN_HDR_SIZE;
	size_t start, total, i;
	unsigned char *p;

	TC_UNUSED(codec_data);
	TC_UNUSED(flags); /* one format for both directions */
	if (!msg || !out)
		return TCPCHAT_EINVAL;
	if (msg->type < 1 || msg->type > TCPCHAT_MSG_TYPE_MAX)
		return TCPCHAT_EINVAL;

	fields[0] = &msg->sender;
	fields[1] = &msg->body;
	fields[2] = &msg->room;
	fields[3] = &msg->target;

	for (i = 0; i < TC_ARRAY_LEN(fields); i++) {
		size_t n = fields[i]->len;

		if (n == 0)
			continue;
		if (!fields[i]->ptr)
			return TCPCHAT_EINVAL;
		/* L must fit in a u32 */
		if (n > UINT32_MAX - BIN_FIELD_HDR ||
		    body > UINT32_MAX - BIN_FIELD_HDR - n)
			return TCPCHAT_EINVAL;
		body += BIN_FIELD_HDR + n;
	}
	if (body > SIZE_MAX - BIN_LEN_SIZE)
		return TCPCHAT_EINVAL;
	total = BIN_LEN_SIZE + body;

	start = out->len;
	if (tcpchat_buf_reserve(out, total)) {
		out->len = start;
		return TCPCHAT_ENOMEM;
	}

	p = (unsigned char *)out->data + start;
	util__put_u32(p, (uint32_t)body);
	p[4] = BIN_VERSION;
	p[5] = (unsigned char)msg->type;
	util__put_u16(p + 6, 0);
	util__put_u64(p + 8, msg->id);
	util__put_u64(p + 16, (uint64_t)msg->timestamp);
	util__put_u32(p + 24, msg->code);
	p += BIN_LEN_SIZE + BIN_HDR_SIZE;

	for (i = 0; i < TC_ARRAY_LEN(fields); i++) {
		size_t n = fields[i]->len;

		if (n == 0)
			continue;
		p[0] = (unsigned char)(i + 1); /* tags follow fields[] order */
		util__put_u32(p + 1, (uint32_t)n);
		memcpy(p + BIN_FIELD_HDR, fields[i]->ptr, n);
		p += BIN_FIELD_HDR + n;
	}
	out->len = start + total;
	return 0;
}

static int64_t bin_to_i64(uint64_t v)
{
	if (v <= (uint64_t)INT64_MAX)
		return (int64_t)v;
	return -(int64_t)(~v) - 1;
}

static long bin_decode(void *codec_data, const char *data, size_t len,
                       tcpchat_msg *out, tcpchat_decode_ctx *ctx)
{
	const unsigned char *p = (const unsigned char *)data;
	unsigned seen = 0;
	uint64_t total;
	uint32_t body;
	size_t off, end;

	TC_UNUSED(codec_data);
	if (len < BIN_LEN_SIZE)
		return 0;
	body = util__get_u32(p);
	total = (uint64_t)BIN_LEN_SIZE + body;
	if (total > ctx->max_frame || total > (uint64_t)LONG_MAX)
		return bin_fail(ctx, TCPCHAT_EMSGSIZE,
		                "frame larger than the size limit");
	if (body < BIN_HDR_SIZE)
		return bin_fail(ctx, TCPCHAT_EPROTO,
		                "frame length too short for the header");
	if (len < total)
		return 0;
	end = (size_t)total;

	if (p[4] != BIN_VERSION)
		return bin_fail(ctx, TCPCHAT_EPROTO,
		                "unsupported frame version");
	if (p[5] < 1 || p[5] > TCPCHAT_MSG_TYPE_MAX)
		return bin_fail(ctx, TCPCHAT_EPROTO, "unknown message type");

	memset(out, 0, sizeof(*out));
	out->type = p[5];
	/* p[6..8) are flags: reserved, ignored */
	out->id = util__get_u64(p + 8);
	out->timestamp = bin_to_i64(util__get_u64(p + 16));
	out->code = util__get_u32(p + 24);

	off = BIN_LEN_SIZE + BIN_HDR_SIZE;
	while (off < end) {
		tcpchat_str *dst;
		unsigned tag;
		uint32_t n;

		if (end - off < BIN_FIELD_HDR)
			return bin_fail(ctx, TCPCHAT_EPROTO,
			                "truncated field header");
		tag = p[off];
		n = util__get_u32(p + off + 1);
		off += BIN_FIELD_HDR;
		if (n > end - off)
			return bin_fail(ctx, TCPCHAT_EPROTO,
			                "field overruns the frame");

		switch (tag) {
		case BIN_TAG_SENDER:
			dst = &out->sender;
			break;
		case BIN_TAG_BODY:
			dst = &out->body;
			break;
		case BIN_TAG_ROOM:
			dst = &out->room;
			break;
		case BIN_TAG_TARGET:
			dst = &out->target;
			break;
		default:
			dst = NULL; /* unknown tag: skip it */
			break;
		}
		if (dst) {
			if (seen & (1u << tag))
				return bin_fail(ctx, TCPCHAT_EPROTO,
				                "duplicate field in frame");
			seen |= 1u << tag;
			dst->ptr = data + off;
			dst->len = n;
		}
		off += n;
	}
	return (long)end;
}

static const tcpchat_codec binary_codec = {
        .abi = TCPCHAT_CODEC_ABI,
        .name = "binary",
        .flags = 0,
        .encode = bin_encode,
        .decode = bin_decode,
        .codec_data = NULL,
};

TCPCHAT_API const tcpchat_codec *tcpchat_codec_binary(void)
{
	return &binary_codec;
}
