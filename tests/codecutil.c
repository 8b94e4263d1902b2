/* Helpers shared by the codec suites: see codecutil.h. */
#include "codecutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const tcpchat_codec *cu_codec(int i)
{
	switch (i) {
	case C_BINARY:
		return tcpchat_codec_binary();
	case C_LINE:
		return tcpchat_codec_line();
	default:
		return tcpchat_codec_json();
	}
}

long cu_dec_run(struct cu_dec *d, const tcpchat_codec *c, const void *data,
                size_t len, unsigned flags, size_t max_frame)
{
	size_t slen = len < max_frame ? len : max_frame;

	memset(d, 0, sizeof(*d));
	d->copy = malloc(len ? len : 1);
	d->scratch = malloc(slen ? slen : 1);
	ck_assert_ptr_nonnull(d->copy);
	ck_assert_ptr_nonnull(d->scratch);
	if (len)
		memcpy(d->copy, data, len);
	d->ctx.flags = flags;
	d->ctx.max_frame = max_frame;
	d->ctx.scratch = d->scratch;
	d->ctx.scratch_len = slen;
	d->ctx.error = NULL;
	d->rc = c->decode(c->codec_data, d->copy, len, &d->msg, &d->ctx);
	return d->rc;
}

void cu_dec_free(struct cu_dec *d)
{
	free(d->copy);
	free(d->scratch);
	d->copy = d->scratch = NULL;
}

int cu_str_eq(tcpchat_str a, tcpchat_str b)
{
	return a.len == b.len &&
	       (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

void cu_check_str(const char *what, const char *field, tcpchat_str got,
                  tcpchat_str want)
{
	ck_assert_msg(cu_str_eq(got, want),
	              "%s: %s is \"%.*s\" (%zu), want \"%.*s\" (%zu)", what,
	              field, (int)(got.len > 200 ? 200 : got.len),
	              got.len ? got.ptr : "", got.len,
	              (int)(want.len > 200 ? 200 : want.len),
	              want.len ? want.ptr : "", want.len);
}

void cu_check_u64(const char *what, const char *field, uint64_t got,
                  uint64_t want)
{
	ck_assert_msg(got == want, "%s: %s %llu, want %llu", what, field,
	              (unsigned long long)got, (unsigned long long)want);
}

void cu_check_msg(const char *what, const tcpchat_msg *got,
                  const tcpchat_msg *want)
{
	ck_assert_msg(got->type == want->type, "%s: type %u, want %u", what,
	              (unsigned)got->type, (unsigned)want->type);
	ck_assert_msg(got->code == want->code, "%s: code %u, want %u", what,
	              (unsigned)got->code, (unsigned)want->code);
	ck_assert_msg(got->id == want->id, "%s: id %llu, want %llu", what,
	              (unsigned long long)got->id,
	              (unsigned long long)want->id);
	ck_assert_msg(got->timestamp == want->timestamp,
	              "%s: ts %lld, want %lld", what, (long long)got->timestamp,
	              (long long)want->timestamp);
	cu_check_str(what, "sender", got->sender, want->sender);
	cu_check_str(what, "body", got->body, want->body);
	cu_check_str(what, "room", got->room, want->room);
	cu_check_str(what, "target", got->target, want->target);
	/* codec abi 2 */
	ck_assert_msg(got->flags == want->flags, "%s: flags %#x, want %#x",
	              what, (unsigned)got->flags, (unsigned)want->flags);
	cu_check_u64(what, "caps", got->caps, want->caps);
	cu_check_u64(what, "max_frame", got->max_frame, want->max_frame);
	cu_check_u64(what, "queue_frames", got->queue_frames,
	             want->queue_frames);
	cu_check_u64(what, "queue_bytes", got->queue_bytes, want->queue_bytes);
	cu_check_str(what, "ref", got->ref, want->ref);
	cu_check_str(what, "cursor", got->cursor, want->cursor);
	cu_check_u64(what, "seq", got->seq, want->seq);
	cu_check_u64(what, "epoch", got->epoch, want->epoch);
}

size_t cu_from_hex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = 0;

	while (*hex) {
		unsigned v;

		if (*hex == ' ' || *hex == '\n') {
			hex++;
			continue;
		}
		ck_assert_int_eq(sscanf(hex, "%2x", &v), 1);
		ck_assert_uint_lt(n, cap);
		out[n++] = (unsigned char)v;
		hex += 2;
	}
	return n;
}
