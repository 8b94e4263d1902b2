/* libtcpchat - the binary codec: length-prefixed, versioned frames.
 *
 * Frame layout (all integers big-endian):
 *
 *	off size field
 *	0   4    L: bytes after this field, L >= 24
 *	4   1    version = 1
 *	5   1    type (1..255; 0 is refused)
 *	6   2    flags (TCPCHAT_MSGF_*: 0x0001 closing; all 16 bits are
 *	         passed on)
 *	8   8    id
 *	16  8    timestamp (two's complement, ms)
 *	24  4    code
 *	28  ...  fields: u8 tag, u32 length n, n bytes
 *
 * Field tags:
 *	1 sender, 2 body, 3 room, 4 target, 5 ref, 6 cursor   strings
 *	16 caps, 17 max_frame, 18 queue_frames, 19 queue_bytes,
 *	20 seq, 21 epoch, 22 first, 23 last, 24 oldest        u64, n = 8
 *
 * The encoder writes only non-empty strings and non-zero numbers, in tag
 * order, so a message without the abi-2 fields is the same frame as in
 * protocol 1.  The decoder skips unknown tags, refuses a known tag that
 * appears twice and a number field whose length is not 8.  Decoded
 * strings point into the input (no copy).
 */
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define BIN_LEN_SIZE 4  /* the length prefix */
#define BIN_HDR_SIZE 24 /* minimum L: version..code */
#define BIN_FIELD_HDR 5 /* tag + length */
#define BIN_NUM_SIZE 8  /* value of a number field */
#define BIN_VERSION 1
#define BIN_TYPE_MAX 255
#define BIN_FLAGS_MAX 0xFFFFu

enum {
	BIN_TAG_SENDER = 1,
	BIN_TAG_BODY = 2,
	BIN_TAG_ROOM = 3,
	BIN_TAG_TARGET = 4,
	BIN_TAG_REF = 5,
	BIN_TAG_CURSOR = 6,
	BIN_TAG_STR_LAST = BIN_TAG_CURSOR,

	BIN_TAG_CAPS = 16,
	BIN_TAG_MAX_FRAME = 17,
	BIN_TAG_QUEUE_FRAMES = 18,
	BIN_TAG_QUEUE_BYTES = 19,
	BIN_TAG_SEQ = 20,
	BIN_TAG_EPOCH = 21,
	BIN_TAG_FIRST = 22,
	BIN_TAG_LAST = 23,
	BIN_TAG_OLDEST = 24,
	BIN_TAG_NUM_FIRST = BIN_TAG_CAPS,
	BIN_TAG_NUM_LAST = BIN_TAG_OLDEST
};

#define BIN_N_STR (BIN_TAG_STR_LAST)
#define BIN_N_NUM (BIN_TAG_NUM_LAST - BIN_TAG_NUM_FIRST + 1)

/* Where the fields are in a tcpchat_msg, in tag order: str_off[i] has tag
 * i + 1, num_off[i] tag BIN_TAG_NUM_FIRST + i. */
static const size_t str_off[BIN_N_STR] = {
        offsetof(tcpchat_msg, sender), offsetof(tcpchat_msg, body),
        offsetof(tcpchat_msg, room),   offsetof(tcpchat_msg, target),
        offsetof(tcpchat_msg, ref),    offsetof(tcpchat_msg, cursor),
};
static const size_t num_off[BIN_N_NUM] = {
        offsetof(tcpchat_msg, caps),         offsetof(tcpchat_msg, max_frame),
        offsetof(tcpchat_msg, queue_frames), offsetof(tcpchat_msg, queue_bytes),
        offsetof(tcpchat_msg, seq),          offsetof(tcpchat_msg, epoch),
        offsetof(tcpchat_msg, first),        offsetof(tcpchat_msg, last),
        offsetof(tcpchat_msg, oldest),
};

static const tcpchat_str *bin_str(const tcpchat_msg *m, size_t i)
{
	return (const tcpchat_str *)((const char *)m + str_off[i]);
}

static uint64_t bin_num(const tcpchat_msg *m, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)m + num_off[i], sizeof(v));
	return v;
}

static long bin_fail(tcpchat_decode_ctx *ctx, long rc, const char *why)
{
	ctx->error = why;
	return rc;
}

/* Adds a field of n data bytes to the frame body size *body, keeping L
 * within a u32.  Returns 0 or TCPCHAT_EINVAL. */
static int bin_grow(size_t *body, size_t n)
{
	if (n > UINT32_MAX - BIN_FIELD_HDR ||
	    *body > UINT32_MAX - BIN_FIELD_HDR - n)
		return TCPCHAT_EINVAL;
	*body += BIN_FIELD_HDR + n;
	return 0;
}

static int bin_encode(void *codec_data, const tcpchat_msg *msg, unsigned flags,
                      tcpchat_buf *out)
{
	size_t body = BIN_HDR_SIZE;
	size_t start, total, i;
	unsigned char *p;

	TC_UNUSED(codec_data);
	TC_UNUSED(flags); /* one format for both directions */
	if (!msg || !out)
		return TCPCHAT_EINVAL;
	if (msg->type < 1 || msg->type > BIN_TYPE_MAX)
		return TCPCHAT_EINVAL;
	if (msg->flags > BIN_FLAGS_MAX)
		return TCPCHAT_EINVAL;

	for (i = 0; i < BIN_N_STR; i++) {
		const tcpchat_str *s = bin_str(msg, i);

		if (s->len == 0)
			continue;
		if (!s->ptr || bin_grow(&body, s->len))
			return TCPCHAT_EINVAL;
	}
	for (i = 0; i < BIN_N_NUM; i++)
		if (bin_num(msg, i) && bin_grow(&body, BIN_NUM_SIZE))
			return TCPCHAT_EINVAL;
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
	util__put_u16(p + 6, (uint16_t)msg->flags);
	util__put_u64(p + 8, msg->id);
	util__put_u64(p + 16, (uint64_t)msg->timestamp);
	util__put_u32(p + 24, msg->code);
	p += BIN_LEN_SIZE + BIN_HDR_SIZE;

	for (i = 0; i < BIN_N_STR; i++) {
		const tcpchat_str *s = bin_str(msg, i);

		if (s->len == 0)
			continue;
		p[0] = (unsigned char)(i + 1); /* tags follow str_off[] */
		util__put_u32(p + 1, (uint32_t)s->len);
		memcpy(p + BIN_FIELD_HDR, s->ptr, s->len);
		p += BIN_FIELD_HDR + s->len;
	}
	for (i = 0; i < BIN_N_NUM; i++) {
		uint64_t v = bin_num(msg, i);

		if (v == 0)
			continue;
		p[0] = (unsigned char)(BIN_TAG_NUM_FIRST + i);
		util__put_u32(p + 1, BIN_NUM_SIZE);
		util__put_u64(p + BIN_FIELD_HDR, v);
		p += BIN_FIELD_HDR + BIN_NUM_SIZE;
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

/* Stores field `tag` of n bytes at p in *out, unless it is a duplicate
 * (bit `tag` of *seen).  Returns 0, or TCPCHAT_EPROTO with *why set. */
static int bin_field(tcpchat_msg *out, uint32_t *seen, unsigned tag,
                     const char *p, uint32_t n, const char **why)
{
	char *base = (char *)out;
	uint64_t v;
	int is_str = tag >= 1 && tag <= BIN_TAG_STR_LAST;
	int is_num = tag >= BIN_TAG_NUM_FIRST && tag <= BIN_TAG_NUM_LAST;

	if (!is_str && !is_num)
		return 0; /* unknown tag: skipped, may repeat */
	if (*seen & ((uint32_t)1 << tag)) {
		*why = "duplicate field in frame";
		return TCPCHAT_EPROTO;
	}
	*seen |= (uint32_t)1 << tag;
	if (is_str) {
		tcpchat_str s = {p, n};

		memcpy(base + str_off[tag - 1], &s, sizeof(s));
		return 0;
	}
	if (n != BIN_NUM_SIZE) {
		*why = "number field of the wrong length";
		return TCPCHAT_EPROTO;
	}
	v = util__get_u64((const unsigned char *)p);
	memcpy(base + num_off[tag - BIN_TAG_NUM_FIRST], &v, sizeof(v));
	return 0;
}

static long bin_decode(void *codec_data, const char *data, size_t len,
                       tcpchat_msg *out, tcpchat_decode_ctx *ctx)
{
	const unsigned char *p = (const unsigned char *)data;
	uint32_t seen = 0; /* bit t: known tag t has been seen (t <= 31) */
	uint64_t total;
	uint32_t body;
	size_t off, end;

	TC_UNUSED(codec_data);
	if (len < BIN_LEN_SIZE) {
		ctx->need = BIN_LEN_SIZE;
		return 0;
	}
	body = util__get_u32(p);
	total = (uint64_t)BIN_LEN_SIZE + body;
	if (total > ctx->max_frame || total > (uint64_t)LONG_MAX)
		return bin_fail(ctx, TCPCHAT_EMSGSIZE,
		                "frame larger than the size limit");
	if (body < BIN_HDR_SIZE)
		return bin_fail(ctx, TCPCHAT_EPROTO,
		                "frame length too short for the header");
	if (len < total) {
		ctx->need = (size_t)total;
		return 0;
	}
	end = (size_t)total;

	if (p[4] != BIN_VERSION)
		return bin_fail(ctx, TCPCHAT_EPROTO,
		                "unsupported frame version");
	if (p[5] == 0)
		return bin_fail(ctx, TCPCHAT_EPROTO, "message type 0");

	memset(out, 0, sizeof(*out));
	out->type = p[5];
	out->flags = util__get_u16(p + 6);
	out->id = util__get_u64(p + 8);
	out->timestamp = bin_to_i64(util__get_u64(p + 16));
	out->code = util__get_u32(p + 24);

	off = BIN_LEN_SIZE + BIN_HDR_SIZE;
	while (off < end) {
		const char *why = NULL;
		unsigned tag;
		uint32_t n;
		int rc;

		if (end - off < BIN_FIELD_HDR)
			return bin_fail(ctx, TCPCHAT_EPROTO,
			                "truncated field header");
		tag = p[off];
		n = util__get_u32(p + off + 1);
		off += BIN_FIELD_HDR;
		if (n > end - off)
			return bin_fail(ctx, TCPCHAT_EPROTO,
			                "field overruns the frame");
		rc = bin_field(out, &seen, tag, data + off, n, &why);
		if (rc)
			return bin_fail(ctx, rc, why);
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
