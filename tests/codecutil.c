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
	cu_check_u64(what, "first", got->first, want->first);
	cu_check_u64(what, "last", got->last, want->last);
	cu_check_u64(what, "oldest", got->oldest, want->oldest);
}

/* A decoded string lies inside the decoded frame (the line codec does not
 * copy). */
static void cu_check_in(const struct cu_dec *d, tcpchat_str s, size_t len)
{
	if (s.len == 0)
		return;
	ck_assert(s.ptr >= d->copy && s.ptr + s.len <= d->copy + len);
}

void cu_line_form(const struct cu_form *f, int i)
{
	const tcpchat_codec *c = tcpchat_codec_line();
	const char *line = f->line;
	size_t n = strlen(line);
	tcpchat_buf b = {0};
	struct cu_dec d;

	ck_assert_int_eq(tcpchat_buf_append(&b, "keep", 4), 0);
	ck_assert_int_eq(c->encode(NULL, &f->in, f->enc, &b), 0);
	ck_assert_mem_eq(b.data, "keep", 4);
	ck_assert_msg(b.len - 4 == n && memcmp(b.data + 4, line, n) == 0,
	              "#%d: got \"%.*s\", want \"%s\"", i, (int)(b.len - 4),
	              b.data + 4, line);
	tcpchat_buf_free(&b);

	cu_dec_run(&d, c, line, n, f->dec, MAX_FRAME);
	ck_assert_msg(d.rc == (long)n, "\"%s\": got %ld (%s)", line, d.rc,
	              d.ctx.error ? d.ctx.error : "-");
	cu_check_msg(line, &d.msg, &f->back);
	cu_check_in(&d, d.msg.room, n);
	cu_check_in(&d, d.msg.target, n);
	cu_dec_free(&d);

	/* what was read back is written the same way again */
	ck_assert_int_eq(c->encode(NULL, &f->back, f->enc, &b), 0);
	ck_assert_msg(b.len == n && memcmp(b.data, line, n) == 0,
	              "#%d again: got \"%.*s\", want \"%s\"", i, (int)b.len,
	              b.data, line);
	tcpchat_buf_free(&b);
}

void cu_line_bad_server_line(const char *in)
{
	struct cu_dec d;

	cu_dec_run(&d, tcpchat_codec_line(), in, strlen(in),
	           TCPCHAT_FROM_SERVER, MAX_FRAME);
	ck_assert_msg(d.rc == TCPCHAT_EPROTO, "\"%s\": got %ld, type %u", in,
	              d.rc, (unsigned)d.msg.type);
	ck_assert_ptr_nonnull(d.ctx.error);
	ck_assert_uint_eq(d.msg.type, 0);
	ck_assert_uint_eq(d.msg.flags, 0);
	ck_assert_uint_eq(d.msg.first, 0);
	ck_assert_uint_eq(d.msg.oldest, 0);
	cu_dec_free(&d);
}

void cu_line_einval(const struct cu_bad_enc *e)
{
	const tcpchat_codec *c = tcpchat_codec_line();
	tcpchat_buf b = {0};
	int rc;

	ck_assert_int_eq(tcpchat_buf_append(&b, "keep", 4), 0);
	rc = c->encode(NULL, &e->msg, e->flags, &b);
	ck_assert_msg(rc == TCPCHAT_EINVAL, "%s: got %d (\"%.*s\")", e->what,
	              rc, (int)b.len, b.data);
	ck_assert_uint_eq(b.len, 4);
	ck_assert_mem_eq(b.data, "keep", 4);
	tcpchat_buf_free(&b);
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
