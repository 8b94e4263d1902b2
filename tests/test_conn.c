/* Tests for the connection layer (conn.c): incremental decoding through a
 * codec, partial frames, the bounded queue with its ring cache, and the
 * batched flush.  Reads go through the TCP transport on one end of a
 * socketpair; some queue tests use an in-memory transport to control
 * exactly how many bytes each write takes. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "internal.h"
#include "transport.h"

/* ---- messages and the sink ----------------------------------------------- */

static uint64_t fnv(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* A body of n bytes that depends on seed. */
static char *make_body(size_t n, unsigned seed)
{
	char *b = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < n; i++)
		b[i] = (char)('a' + (i * 7 + seed * 13 + (i >> 8)) % 26);
	return b;
}

/* Appends a binary frame (type TEXT, id, body) to out. */
static void enc_text(tcpchat_buf *out, uint64_t id, const char *body,
                     size_t len)
{
	tcpchat_msg m;
	memset(&m, 0, sizeof m);
	m.type = TCPCHAT_MSG_TEXT;
	m.id = id;
	m.body.ptr = body;
	m.body.len = len;
	ck_assert_int_eq(tcpchat_codec_binary()->encode(NULL, &m, 0, out), 0);
}

struct expect {
	uint64_t id;
	size_t len;
	uint64_t hash;
};

struct sink {
	int n;       /* messages received */
	int stop_at; /* return 1 when n reaches this (0: never) */
	int bad;     /* mismatches against exp */
	int nexp;
	struct expect exp[512];
};

static int sink_fn(void *ctx, tcpchat_msg *m)
{
	struct sink *s = ctx;
	if (s->n >= s->nexp || m->type != TCPCHAT_MSG_TEXT ||
	    m->id != s->exp[s->n].id || m->body.len != s->exp[s->n].len ||
	    fnv(m->body.ptr, m->body.len) != s->exp[s->n].hash)
		s->bad++;
	s->n++;
	return s->stop_at && s->n == s->stop_at;
}

/* Encodes a TEXT message with a body of len bytes and records it as the
 * next expected one. */
static void add_msg(struct sink *s, tcpchat_buf *out, size_t len)
{
	ck_assert_int_lt(s->nexp, (int)TC_ARRAY_LEN(s->exp));
	uint64_t id = 1000 + (uint64_t)s->nexp;
	char *b = make_body(len, (unsigned)s->nexp);
	enc_text(out, id, b, len);
	s->exp[s->nexp].id = id;
	s->exp[s->nexp].len = len;
	s->exp[s->nexp].hash = fnv(b, len);
	s->nexp++;
	free(b);
}

/* ---- a connection on a socketpair --------------------------------------- */

struct end {
	int peer; /* the other end, raw */
	struct conn c;
};

static void end_init(struct end *e, const tcpchat_codec *codec)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX,
	                            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                            0, sv),
	                 0);
	memset(&e->c, 0, sizeof e->c);
	transport__tcp(&e->c.tp, sv[0]);
	e->c.w.fd = -1;
	e->c.codec = codec;
	e->peer = sv[1];
}

static void end_fini(struct end *e, struct conn_shared *sh)
{
	conn__clear(&e->c, sh);
	transport__close(&e->c.tp, 0);
	if (e->peer >= 0)
		close(e->peer);
	e->peer = -1;
}

static void peer_write(struct end *e, const void *p, size_t n)
{
	ck_assert_int_eq(write(e->peer, p, n), (ssize_t)n);
}

/* Reads everything the peer end has (non-blocking). */
static size_t peer_read_all(struct end *e, tcpchat_buf *into)
{
	char buf[65536];
	size_t total = 0;
	for (;;) {
		ssize_t n = read(e->peer, buf, sizeof buf);
		if (n <= 0)
			break;
		ck_assert_int_eq(tcpchat_buf_append(into, buf, (size_t)n), 0);
		total += (size_t)n;
	}
	return total;
}

static int rd(struct end *e, struct conn_shared *sh, size_t max_frame,
              struct sink *s, struct conn_read_result *res)
{
	return conn__read(&e->c, sh, max_frame, sink_fn, s, res);
}

/* ---- a codec wrapper that counts decode calls ---------------------------- */

struct counting {
	tcpchat_codec codec;
	long calls;
	size_t shown;  /* bytes offered to decode, summed over calls */
	int hide_need; /* behave like an abi-1 codec: never set need */
};

static long counting_decode(void *cd, const char *data, size_t len,
                            tcpchat_msg *out, tcpchat_decode_ctx *ctx)
{
	struct counting *k = cd;
	k->calls++;
	k->shown += len;
	long r = tcpchat_codec_binary()->decode(NULL, data, len, out, ctx);
	if (k->hide_need)
		ctx->need = 0;
	return r;
}

static void counting_init(struct counting *k)
{
	memset(k, 0, sizeof *k);
	k->codec = *tcpchat_codec_binary();
	k->codec.decode = counting_decode;
	k->codec.codec_data = k;
}

/* ---- decoding ------------------------------------------------------------ */

/* A stream with frames of assorted sizes (some larger than a small
 * partial, 4 KB), fed one byte at a time: each frame is decoded exactly
 * once, when its last byte arrives. */
START_TEST(test_split_every_byte)
{
	static const size_t sizes[] = {0, 1, 100, 3000, 5000, 17, 9000};
	struct conn_shared sh;
	struct end e;
	struct sink s = {0};
	tcpchat_buf stream = {0};
	size_t ends[TC_ARRAY_LEN(sizes)];
	struct conn_read_result res;

	for (size_t i = 0; i < TC_ARRAY_LEN(sizes); i++) {
		add_msg(&s, &stream, sizes[i]);
		ends[i] = stream.len;
	}
	ck_assert_int_eq(conn__shared_init(&sh, 64 * 1024), 0);
	end_init(&e, tcpchat_codec_binary());
	size_t k = 0;
	int wrong = 0;
	for (size_t i = 0; i < stream.len; i++) {
		peer_write(&e, stream.data + i, 1);
		int rc = rd(&e, &sh, 64 * 1024, &s, &res);
		if (rc != 0 || res.bytes != 1)
			wrong++;
		while (k < TC_ARRAY_LEN(sizes) && ends[k] <= i + 1)
			k++;
		if (s.n != (int)k)
			wrong++; /* decoded too early, too late or twice */
	}
	ck_assert_int_eq(wrong, 0);
	ck_assert_int_eq(s.n, (int)TC_ARRAY_LEN(sizes));
	ck_assert_int_eq(s.bad, 0);
	ck_assert_uint_eq(e.c.rlen, 0);
	ck_assert_ptr_null(e.c.rbuf);
	/* Nothing more: nothing happens. */
	ck_assert_int_eq(rd(&e, &sh, 64 * 1024, &s, &res), 0);
	ck_assert_uint_eq(res.bytes, 0);
	ck_assert_int_eq(s.n, (int)TC_ARRAY_LEN(sizes));
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&stream);
}
END_TEST

/* The same stream cut in two at every position. */
START_TEST(test_split_two_pieces)
{
	static const size_t sizes[] = {5, 0, 40, 200};
	struct conn_shared sh;
	struct sink proto = {0};
	tcpchat_buf stream = {0};
	struct conn_read_result res;

	for (size_t i = 0; i < TC_ARRAY_LEN(sizes); i++)
		add_msg(&proto, &stream, sizes[i]);
	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	int wrong = 0;
	for (size_t cut = 1; cut < stream.len; cut++) {
		struct end e;
		struct sink s = proto;
		end_init(&e, tcpchat_codec_binary());
		peer_write(&e, stream.data, cut);
		if (rd(&e, &sh, 4096, &s, &res) != 0)
			wrong++;
		peer_write(&e, stream.data + cut, stream.len - cut);
		if (rd(&e, &sh, 4096, &s, &res) != 0)
			wrong++;
		if (s.n != proto.nexp || s.bad || e.c.rlen)
			wrong++;
		end_fini(&e, &sh);
	}
	ck_assert_int_eq(wrong, 0);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&stream);
}
END_TEST

/* Feeds a frame with a body of `big` bytes and then a small frame, in
 * 4 KB pieces, one conn__read each. */
struct seg_stats {
	long calls;   /* decode calls */
	size_t shown; /* bytes shown to decode */
	int resized;  /* changes of the partial frame's buffer size */
	uint32_t last_cap;
	size_t big_end; /* size of the large frame */
	size_t stream;  /* bytes in all */
};

static void feed_large(size_t max_frame, size_t big, struct seg_stats *st)
{
	struct conn_shared sh;
	struct counting k;
	struct end e;
	struct sink s = {0};
	tcpchat_buf stream = {0};
	struct conn_read_result res;

	memset(st, 0, sizeof *st);
	counting_init(&k);
	add_msg(&s, &stream, big);
	st->big_end = stream.len;
	add_msg(&s, &stream, 10);
	st->stream = stream.len;
	ck_assert_int_eq(conn__shared_init(&sh, max_frame), 0);
	end_init(&e, &k.codec);

	int wrong = 0;
	size_t total = 0;
	for (size_t off = 0; off < stream.len; off += 4096) {
		size_t n = TC_MIN((size_t)4096, stream.len - off);
		peer_write(&e, stream.data + off, n);
		if (rd(&e, &sh, max_frame, &s, &res) != 0)
			wrong++;
		total += res.bytes;
		if (off + n < st->big_end) {
			if (s.n != 0)
				wrong++;
			/* The partial frame's own buffer: every change of
			 * its size is a realloc, which may copy it all. */
			if (e.c.rbuf && e.c.rcap != st->last_cap) {
				st->last_cap = e.c.rcap;
				st->resized++;
			}
		}
	}
	ck_assert_int_eq(wrong, 0);
	ck_assert_uint_eq(total, stream.len);
	ck_assert_int_eq(s.n, 2);
	ck_assert_int_eq(s.bad, 0);
	/* Done: no partial buffer is kept. */
	ck_assert_ptr_null(e.c.rbuf);
	ck_assert_uint_eq(e.c.rlen, 0);
	st->calls = k.calls;
	st->shown = k.shown;
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&stream);
}

/* A 4 MB frame (limit 8 MB) arriving in 4 KB pieces, then a small one:
 * thanks to `need`, decode is called a handful of times, not once per
 * piece, and is not shown the partial frame again and again. */
START_TEST(test_large_frame_in_segments)
{
	struct seg_stats st;

	feed_large(8u << 20, 4u << 20, &st);
	ck_assert_msg(st.calls <= 6, "decode called %ld times for %zu pieces",
	              st.calls, st.stream / 4096);
	ck_assert_msg(st.shown <= 2 * st.stream + 8192,
	              "decode was shown %zu bytes for a %zu-byte stream",
	              st.shown, st.stream);
}
END_TEST

/* The same: once the length is known, the partial frame's buffer is
 * sized for it and not resized (a realloc may copy the whole partial
 * frame) while the rest arrives. */
START_TEST(test_large_partial_not_resized)
{
	struct seg_stats st;

	feed_large(2u << 20, 1u << 20, &st);
	ck_assert_msg(st.resized <= 2,
	              "the partial frame's buffer was resized %d times while "
	              "it filled (to %u bytes, for a %zu-byte frame)",
	              st.resized, st.last_cap, st.big_end);
	ck_assert_uint_ge(st.last_cap, st.big_end);
}
END_TEST

/* Without the hint (an abi-1 codec), large frames still decode right. */
START_TEST(test_large_frame_without_need)
{
	const size_t max_frame = 2u << 20;
	struct conn_shared sh;
	struct counting k;
	struct end e;
	struct sink s = {0};
	tcpchat_buf stream = {0};
	struct conn_read_result res;

	counting_init(&k);
	k.hide_need = 1;
	add_msg(&s, &stream, 20000);
	add_msg(&s, &stream, 1000000);
	add_msg(&s, &stream, 3);
	ck_assert_int_eq(conn__shared_init(&sh, max_frame), 0);
	end_init(&e, &k.codec);
	int wrong = 0;
	for (size_t off = 0; off < stream.len; off += 3000) {
		size_t n = TC_MIN((size_t)3000, stream.len - off);
		peer_write(&e, stream.data + off, n);
		if (rd(&e, &sh, max_frame, &s, &res) != 0)
			wrong++;
	}
	ck_assert_int_eq(wrong, 0);
	ck_assert_int_eq(s.n, 3);
	ck_assert_int_eq(s.bad, 0);
	ck_assert_uint_eq(e.c.rlen, 0);
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&stream);
}
END_TEST

/* Two connections share one read buffer; their partial frames must not
 * mix. */
START_TEST(test_shared_buffer_two_conns)
{
	struct conn_shared sh;
	struct end a, b;
	struct sink sa = {0}, sb = {0};
	tcpchat_buf fa = {0}, fb = {0};
	struct conn_read_result res;

	add_msg(&sa, &fa, 3000); /* partial stays small */
	add_msg(&sa, &fa, 10);
	add_msg(&sb, &fb, 20000); /* partial is large */
	add_msg(&sb, &fb, 500);
	ck_assert_int_eq(conn__shared_init(&sh, 65536), 0);
	end_init(&a, tcpchat_codec_binary());
	end_init(&b, tcpchat_codec_binary());
	size_t ha = fa.len / 2, hb = fb.len / 2;
	peer_write(&a, fa.data, ha);
	ck_assert_int_eq(rd(&a, &sh, 65536, &sa, &res), 0);
	peer_write(&b, fb.data, hb);
	ck_assert_int_eq(rd(&b, &sh, 65536, &sb, &res), 0);
	ck_assert_int_eq(sa.n + sb.n, 0);
	peer_write(&a, fa.data + ha, fa.len - ha);
	ck_assert_int_eq(rd(&a, &sh, 65536, &sa, &res), 0);
	peer_write(&b, fb.data + hb, fb.len - hb);
	ck_assert_int_eq(rd(&b, &sh, 65536, &sb, &res), 0);
	ck_assert_int_eq(sa.n, 2);
	ck_assert_int_eq(sb.n, 2);
	ck_assert_int_eq(sa.bad, 0);
	ck_assert_int_eq(sb.bad, 0);
	end_fini(&a, &sh);
	end_fini(&b, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&fa);
	tcpchat_buf_free(&fb);
}
END_TEST

static void put_len(char *p, uint32_t body)
{
	util__put_u32((unsigned char *)p, body);
}

/* A binary frame over max_frame is refused as soon as its length is in:
 * after 4 bytes, fed one at a time. */
START_TEST(test_emsgsize_when_length_known)
{
	const size_t max_frame = 1000;
	struct conn_shared sh;
	struct end e;
	struct sink s = {0};
	struct conn_read_result res;
	char hdr[4];

	ck_assert_int_eq(conn__shared_init(&sh, max_frame), 0);
	end_init(&e, tcpchat_codec_binary());
	put_len(hdr, (uint32_t)(max_frame - 4 + 1)); /* total max_frame + 1 */
	for (int i = 0; i < 3; i++) {
		peer_write(&e, hdr + i, 1);
		ck_assert_int_eq(rd(&e, &sh, max_frame, &s, &res), 0);
	}
	peer_write(&e, hdr + 3, 1);
	ck_assert_int_eq(rd(&e, &sh, max_frame, &s, &res), TCPCHAT_EMSGSIZE);
	ck_assert_ptr_nonnull(res.error);
	ck_assert_int_eq(s.n, 0);
	ck_assert_ptr_null(e.c.rbuf); /* nothing kept after an error */
	ck_assert_uint_eq(e.c.rlen, 0);

	/* A huge length, in one piece: the same. */
	end_fini(&e, &sh);
	end_init(&e, tcpchat_codec_binary());
	put_len(hdr, 0xFFFFFFF0u);
	peer_write(&e, hdr, 4);
	ck_assert_int_eq(rd(&e, &sh, max_frame, &s, &res), TCPCHAT_EMSGSIZE);
	ck_assert_uint_eq(res.bytes, 4);
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
}
END_TEST

/* A frame of exactly max_frame bytes is accepted. */
START_TEST(test_exact_max_frame_ok)
{
	struct conn_shared sh;
	struct end e;
	struct sink s = {0};
	tcpchat_buf stream = {0};
	struct conn_read_result res;

	add_msg(&s, &stream, 971);
	size_t max_frame = stream.len; /* the whole frame */
	ck_assert_int_eq(conn__shared_init(&sh, max_frame), 0);
	end_init(&e, tcpchat_codec_binary());
	peer_write(&e, stream.data, stream.len);
	ck_assert_int_eq(rd(&e, &sh, max_frame, &s, &res), 0);
	ck_assert_int_eq(s.n, 1);
	ck_assert_int_eq(s.bad, 0);
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&stream);
}
END_TEST

/* A codec that never finds the end of its frame (and gives no hint):
 * the library refuses the frame once it reaches max_frame bytes. */
static long endless_decode(void *cd, const char *data, size_t len,
                           tcpchat_msg *out, tcpchat_decode_ctx *ctx)
{
	TC_UNUSED(cd);
	TC_UNUSED(data);
	TC_UNUSED(len);
	TC_UNUSED(out);
	TC_UNUSED(ctx);
	return 0;
}

START_TEST(test_emsgsize_unknown_length)
{
	const size_t max_frame = 1000;
	struct conn_shared sh;
	struct end e;
	struct sink s = {0};
	struct conn_read_result res;
	tcpchat_codec codec = *tcpchat_codec_binary();
	char junk[100];

	codec.decode = endless_decode;
	memset(junk, 'j', sizeof junk);
	ck_assert_int_eq(conn__shared_init(&sh, max_frame), 0);
	end_init(&e, &codec);
	for (int i = 0; i < 9; i++) {
		peer_write(&e, junk, 100);
		ck_assert_int_eq(rd(&e, &sh, max_frame, &s, &res), 0);
	}
	peer_write(&e, junk, 99);
	ck_assert_int_eq(rd(&e, &sh, max_frame, &s, &res), 0); /* 999 */
	peer_write(&e, junk, 1);
	ck_assert_int_eq(rd(&e, &sh, max_frame, &s, &res), TCPCHAT_EMSGSIZE);
	ck_assert_ptr_nonnull(res.error);
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
}
END_TEST

/* A length-prefixed codec that does not check max_frame itself but says
 * how much it needs: the library still refuses a frame that outgrows
 * max_frame (codec.h: "the library then refuses frames that outgrow
 * ctx->max_frame"), instead of collecting it. */
static long lenprefix_decode(void *cd, const char *data, size_t len,
                             tcpchat_msg *out, tcpchat_decode_ctx *ctx)
{
	TC_UNUSED(cd);
	if (len < 4) {
		ctx->need = 4;
		return 0;
	}
	size_t total = 4 + (size_t)util__get_u32((const unsigned char *)data);
	if (len < total) {
		ctx->need = total;
		return 0;
	}
	out->type = TCPCHAT_MSG_TEXT;
	out->body.ptr = data + 4;
	out->body.len = total - 4;
	return (long)total;
}

START_TEST(test_emsgsize_need_beyond_limit)
{
	const size_t max_frame = 1000;
	struct conn_shared sh;
	struct end e;
	struct sink s = {0};
	struct conn_read_result res;
	tcpchat_codec codec = *tcpchat_codec_binary();
	char buf[100];

	codec.decode = lenprefix_decode;
	memset(buf, 'q', sizeof buf);
	ck_assert_int_eq(conn__shared_init(&sh, max_frame), 0);
	end_init(&e, &codec);
	put_len(buf, 5000); /* a 5004-byte frame, limit 1000 */
	int rc = 0;
	size_t sent = 0;
	while (rc == 0 && sent < 8000) {
		peer_write(&e, buf, sizeof buf);
		put_len(buf, 0x71717171u); /* later pieces: plain bytes */
		memset(buf, 'q', 4);
		sent += sizeof buf;
		rc = rd(&e, &sh, max_frame, &s, &res);
	}
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	ck_assert_msg(rc == TCPCHAT_EMSGSIZE,
	              "rc %d after %zu bytes of a frame over the %zu-byte "
	              "limit; %d message(s) accepted",
	              rc, sent, max_frame, s.n);
	ck_assert_int_eq(s.n, 0);
}
END_TEST

START_TEST(test_eproto_after_good_frame)
{
	struct conn_shared sh;
	struct end e;
	struct sink s = {0};
	tcpchat_buf stream = {0};
	struct conn_read_result res;

	add_msg(&s, &stream, 10);
	size_t bad_at = stream.len;
	add_msg(&s, &stream, 10);
	stream.data[bad_at + 4] = 99; /* unsupported version */
	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	end_init(&e, tcpchat_codec_binary());
	peer_write(&e, stream.data, stream.len);
	ck_assert_int_eq(rd(&e, &sh, 4096, &s, &res), TCPCHAT_EPROTO);
	ck_assert_ptr_nonnull(res.error);
	ck_assert_int_eq(s.n, 1); /* the good one first */
	ck_assert_int_eq(s.bad, 0);
	ck_assert_ptr_null(e.c.rbuf);
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&stream);
}
END_TEST

START_TEST(test_eof_closed)
{
	struct conn_shared sh;
	struct end e;
	struct sink s = {0};
	tcpchat_buf stream = {0};
	struct conn_read_result res;

	add_msg(&s, &stream, 30);
	add_msg(&s, &stream, 6000); /* only half of it arrives */
	ck_assert_int_eq(conn__shared_init(&sh, 65536), 0);
	end_init(&e, tcpchat_codec_binary());
	size_t half = stream.len - 3000;
	peer_write(&e, stream.data, half);
	close(e.peer);
	e.peer = -1;
	int rc = 0, calls = 0;
	size_t bytes = 0;
	while (rc == 0 && calls < 5) {
		rc = rd(&e, &sh, 65536, &s, &res);
		bytes += res.bytes;
		calls++;
	}
	ck_assert_int_eq(rc, TCPCHAT_ECLOSED);
	ck_assert_uint_eq(bytes, half);
	ck_assert_int_eq(s.n, 1);
	ck_assert_int_eq(s.bad, 0);
	ck_assert_ptr_null(e.c.rbuf);
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&stream);
}
END_TEST

/* The callback stops decoding; the rest waits for conn__resume, which
 * delivers it in order, and then reading goes on. */
START_TEST(test_stop_and_resume)
{
	struct conn_shared sh;
	struct end e;
	struct sink s = {0};
	tcpchat_buf stream = {0};
	struct conn_read_result res;
	size_t ends[6];

	for (int i = 0; i < 6; i++) {
		add_msg(&s, &stream, 20 + (size_t)i * 10);
		ends[i] = stream.len;
	}
	size_t cut = ends[4] + 20; /* the 6th arrives in two parts */

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	end_init(&e, tcpchat_codec_binary());
	/* Nothing buffered: nothing to resume. */
	ck_assert_int_eq(conn__resume(&e.c, &sh, 4096, sink_fn, &s, &res), 0);
	ck_assert_int_eq(s.n, 0);

	peer_write(&e, stream.data, cut);
	s.stop_at = 2;
	ck_assert_int_eq(rd(&e, &sh, 4096, &s, &res), 1);
	ck_assert_uint_eq(res.bytes, cut);
	ck_assert_int_eq(s.n, 2);
	ck_assert_uint_eq(e.c.rlen, cut - ends[1]); /* kept, not lost */

	/* Stopped again inside resume. */
	s.stop_at = 4;
	ck_assert_int_eq(conn__resume(&e.c, &sh, 4096, sink_fn, &s, &res), 1);
	ck_assert_int_eq(s.n, 4);
	ck_assert_uint_eq(e.c.rlen, cut - ends[3]);

	s.stop_at = 0;
	ck_assert_int_eq(conn__resume(&e.c, &sh, 4096, sink_fn, &s, &res), 0);
	ck_assert_int_eq(s.n, 5);
	ck_assert_uint_eq(e.c.rlen, cut - ends[4]); /* the partial 6th */
	ck_assert_int_eq(conn__resume(&e.c, &sh, 4096, sink_fn, &s, &res), 0);
	ck_assert_int_eq(s.n, 5);

	peer_write(&e, stream.data + cut, stream.len - cut);
	ck_assert_int_eq(rd(&e, &sh, 4096, &s, &res), 0);
	ck_assert_int_eq(s.n, 6);
	ck_assert_int_eq(s.bad, 0);
	ck_assert_uint_eq(e.c.rlen, 0);
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&stream);
}
END_TEST

/* Stopped with a large partial frame behind the stop point. */
START_TEST(test_stop_with_large_partial)
{
	struct conn_shared sh;
	struct end e;
	struct sink s = {0};
	tcpchat_buf stream = {0};
	struct conn_read_result res;

	add_msg(&s, &stream, 10);
	add_msg(&s, &stream, 10);
	size_t big_start = stream.len;
	add_msg(&s, &stream, 20000);
	add_msg(&s, &stream, 7);
	size_t cut = big_start + 9000;

	ck_assert_int_eq(conn__shared_init(&sh, 65536), 0);
	end_init(&e, tcpchat_codec_binary());
	peer_write(&e, stream.data, cut);
	s.stop_at = 1;
	ck_assert_int_eq(rd(&e, &sh, 65536, &s, &res), 1);
	ck_assert_int_eq(s.n, 1);
	s.stop_at = 0;
	ck_assert_int_eq(conn__resume(&e.c, &sh, 65536, sink_fn, &s, &res), 0);
	ck_assert_int_eq(s.n, 2);
	ck_assert_uint_eq(e.c.rlen, cut - big_start);
	/* The rest in pieces. */
	for (size_t off = cut; off < stream.len; off += 4000) {
		size_t n = TC_MIN((size_t)4000, stream.len - off);
		peer_write(&e, stream.data + off, n);
		ck_assert_int_eq(rd(&e, &sh, 65536, &s, &res), 0);
	}
	ck_assert_int_eq(s.n, 4);
	ck_assert_int_eq(s.bad, 0);
	ck_assert_uint_eq(e.c.rlen, 0);
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&stream);
}
END_TEST

/* Stopped at the last frame: nothing kept, nothing to resume. */
START_TEST(test_stop_at_last)
{
	struct conn_shared sh;
	struct end e;
	struct sink s = {0};
	tcpchat_buf stream = {0};
	struct conn_read_result res;

	add_msg(&s, &stream, 10);
	add_msg(&s, &stream, 10);
	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	end_init(&e, tcpchat_codec_binary());
	peer_write(&e, stream.data, stream.len);
	s.stop_at = 2;
	ck_assert_int_eq(rd(&e, &sh, 4096, &s, &res), 1);
	ck_assert_int_eq(s.n, 2);
	ck_assert_uint_eq(e.c.rlen, 0);
	ck_assert_int_eq(conn__resume(&e.c, &sh, 4096, sink_fn, &s, &res), 0);
	ck_assert_int_eq(s.n, 2);
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&stream);
}
END_TEST

/* ---- the queue ----------------------------------------------------------- */

/* A transport in memory: takes at most per_call bytes per write and
 * budget bytes in all before TRANSPORT_AGAIN, and remembers the iovecs
 * of the first write since calls was last zeroed. */
struct fake {
	size_t per_call; /* 0: no limit */
	size_t budget;
	int fail;      /* errno to fail every write with */
	int max_calls; /* more writes than this fail (a runaway guard) */
	int calls;
	int first_cnt;
	const char *first_base[64];
	size_t first_len[64];
	tcpchat_buf out;
};

static ssize_t fake_writev(struct transport *t, const struct iovec *iov,
                           int cnt)
{
	struct fake *f = t->impl;
	f->calls++;
	if (f->max_calls && f->calls > f->max_calls) {
		errno = EIO;
		return TCPCHAT_ESYS;
	}
	if (f->fail) {
		errno = f->fail;
		return TCPCHAT_ESYS;
	}
	if (f->calls == 1)
		f->first_cnt = cnt;
	size_t sum = 0;
	for (int i = 0; i < cnt; i++) {
		if (i < 64 && f->calls == 1) {
			f->first_base[i] = iov[i].iov_base;
			f->first_len[i] = iov[i].iov_len;
		}
		sum += iov[i].iov_len;
	}
	size_t n = sum;
	if (f->per_call && n > f->per_call)
		n = f->per_call;
	if (n > f->budget)
		n = f->budget;
	if (n == 0 && sum > 0)
		return TRANSPORT_AGAIN;
	size_t left = n;
	for (int i = 0; i < cnt && left; i++) {
		size_t k = TC_MIN(left, iov[i].iov_len);
		ck_assert_int_eq(
		        tcpchat_buf_append(&f->out, iov[i].iov_base, k), 0);
		left -= k;
	}
	f->budget -= n;
	return (ssize_t)n;
}

static ssize_t fake_read(struct transport *t, void *buf, size_t len)
{
	TC_UNUSED(t);
	TC_UNUSED(buf);
	TC_UNUSED(len);
	return TRANSPORT_AGAIN;
}

static int fake_connected(struct transport *t)
{
	TC_UNUSED(t);
	return 0;
}

static void fake_shutdown(struct transport *t)
{
	TC_UNUSED(t);
}

static void fake_close(struct transport *t, int drain)
{
	TC_UNUSED(drain);
	t->fd = -1;
}

static const struct transport_ops fake_ops = {
        .name = "fake",
        .connected = fake_connected,
        .read = fake_read,
        .writev = fake_writev,
        .shutdown = fake_shutdown,
        .close = fake_close,
};

static void fake_conn(struct conn *c, struct fake *f)
{
	memset(c, 0, sizeof *c);
	memset(f, 0, sizeof *f);
	f->budget = SIZE_MAX;
	c->tp.ops = &fake_ops;
	c->tp.fd = -1;
	c->tp.impl = f;
	c->w.fd = -1;
	c->codec = tcpchat_codec_binary();
}

/* A frame of len bytes whose content depends on tag. */
static struct frame *mkframe(size_t len, unsigned tag)
{
	char *b = make_body(len, tag);
	struct frame *f = frame__new(b, len);
	free(b);
	ck_assert_ptr_nonnull(f);
	return f;
}

/* The bytes of frames[0..n), concatenated. */
static void concat(tcpchat_buf *out, struct frame **f, int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(tcpchat_buf_append(out, f[i]->data, f[i]->len),
		                 0);
}

static int same_bytes(const tcpchat_buf *a, const tcpchat_buf *b)
{
	return a->len == b->len &&
	       (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

START_TEST(test_push_flush_order)
{
	static const size_t sizes[] = {10,   2000, 1,      500,  70000, 3, 1024,
	                               1025, 64,   200000, 4096, 9,     33};
	enum { N = TC_ARRAY_LEN(sizes) };
	struct conn_shared sh;
	struct end e;
	struct frame *f[N];
	tcpchat_buf want = {0}, got = {0};

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	end_init(&e, tcpchat_codec_binary());
	size_t bytes = 0;
	for (int i = 0; i < N; i++) {
		f[i] = mkframe(sizes[i], (unsigned)i);
		ck_assert_int_eq(conn__push(&e.c, &sh, f[i], 1000, SIZE_MAX),
		                 0);
		bytes += sizes[i];
		ck_assert_uint_eq(e.c.qcount, (uint32_t)i + 1);
		ck_assert_uint_eq(e.c.qbytes, bytes);
		ck_assert_uint_eq(f[i]->refs, 2); /* the queue took one */
	}
	concat(&want, f, N);
	size_t written_all = 0, frames_all = 0;
	int rounds = 0, rc;
	do {
		size_t w, fr;
		rc = conn__flush(&e.c, &sh, &w, &fr);
		ck_assert_int_ge(rc, 0);
		written_all += w;
		frames_all += fr;
		ck_assert_uint_eq(e.c.qbytes, bytes - written_all);
		peer_read_all(&e, &got);
		ck_assert_int_lt(++rounds, 100000);
	} while (rc == 1);
	peer_read_all(&e, &got);
	ck_assert_uint_eq(written_all, bytes);
	ck_assert_uint_eq(frames_all, N);
	ck_assert_uint_eq(e.c.qcount, 0);
	ck_assert_uint_eq(e.c.qbytes, 0);
	ck_assert(same_bytes(&got, &want));
	for (int i = 0; i < N; i++) {
		ck_assert_uint_eq(f[i]->refs, 1);
		frame__unref(f[i]);
	}
	/* Empty queue: flush says so and writes nothing. */
	size_t w = 9, fr = 9;
	ck_assert_int_eq(conn__flush(&e.c, &sh, &w, &fr), 0);
	ck_assert_uint_eq(w, 0);
	ck_assert_uint_eq(fr, 0);
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&want);
	tcpchat_buf_free(&got);
}
END_TEST

/* A socket that takes no more: flush reports 1 and keeps the rest; once
 * the peer reads, the rest follows in order. */
START_TEST(test_flush_socket_full)
{
	enum { N = 40 };
	struct conn_shared sh;
	struct end e;
	struct frame *f[N];
	tcpchat_buf want = {0}, got = {0};

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	end_init(&e, tcpchat_codec_binary());
	for (int i = 0; i < N; i++) {
		f[i] = mkframe(100000 + (size_t)i, (unsigned)i);
		ck_assert_int_eq(conn__push(&e.c, &sh, f[i], N, SIZE_MAX), 0);
		frame__unref(f[i]); /* the queue owns them now */
	}
	concat(&want, f, N);
	size_t w, fr, total = 0, frames = 0;
	ck_assert_int_eq(conn__flush(&e.c, &sh, &w, &fr), 1);
	ck_assert_uint_lt(w, want.len);
	total += w;
	frames += fr;
	ck_assert_uint_eq(e.c.qbytes, want.len - total);
	ck_assert_uint_eq(e.c.qcount, N - frames);
	/* Still full: nothing moves. */
	ck_assert_int_eq(conn__flush(&e.c, &sh, &w, &fr), 1);
	ck_assert_uint_eq(w, 0);
	ck_assert_uint_eq(fr, 0);
	int rc = 1, rounds = 0;
	while (rc == 1) {
		ck_assert_int_lt(++rounds, 100000);
		peer_read_all(&e, &got);
		rc = conn__flush(&e.c, &sh, &w, &fr);
		ck_assert_int_ge(rc, 0);
		total += w;
		frames += fr;
	}
	peer_read_all(&e, &got);
	ck_assert_uint_eq(total, want.len);
	ck_assert_uint_eq(frames, N);
	ck_assert(same_bytes(&got, &want));
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&want);
	tcpchat_buf_free(&got);
}
END_TEST

START_TEST(test_flush_error)
{
	struct conn_shared sh;
	struct end e;
	struct frame *f = mkframe(100, 1);

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	end_init(&e, tcpchat_codec_binary());
	close(e.peer);
	e.peer = -1;
	ck_assert_int_eq(conn__push(&e.c, &sh, f, 10, SIZE_MAX), 0);
	size_t w, fr;
	errno = 0;
	ck_assert_int_eq(conn__flush(&e.c, &sh, &w, &fr), TCPCHAT_ESYS);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_uint_eq(w, 0);
	ck_assert_uint_eq(e.c.qcount, 1); /* kept until cleared */
	end_fini(&e, &sh);
	ck_assert_uint_eq(f->refs, 1);
	frame__unref(f);
	conn__shared_fini(&sh);
}
END_TEST

START_TEST(test_queue_full_frames)
{
	struct conn_shared sh;
	struct conn c;
	struct fake fk;
	struct frame *f = mkframe(10, 0);

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(conn__push(&c, &sh, f, 3, SIZE_MAX), 0);
	ck_assert_int_eq(conn__push(&c, &sh, f, 3, SIZE_MAX),
	                 TCPCHAT_EQUEUEFULL);
	ck_assert_uint_eq(c.qcount, 3);
	ck_assert_uint_eq(c.qbytes, 30);
	ck_assert_uint_eq(f->refs, 4); /* the refused push took none */
	/* One written: room for one more. */
	fk.per_call = 10;
	fk.budget = 10;
	size_t w, fr;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 1);
	ck_assert_uint_eq(fr, 1);
	ck_assert_int_eq(conn__push(&c, &sh, f, 3, SIZE_MAX), 0);
	ck_assert_int_eq(conn__push(&c, &sh, f, 3, SIZE_MAX),
	                 TCPCHAT_EQUEUEFULL);
	conn__clear(&c, &sh);
	ck_assert_uint_eq(f->refs, 1);
	frame__unref(f);
	tcpchat_buf_free(&fk.out);
	conn__shared_fini(&sh);
}
END_TEST

START_TEST(test_queue_full_bytes)
{
	struct conn_shared sh;
	struct conn c;
	struct fake fk;
	struct frame *f40 = mkframe(40, 0), *f20 = mkframe(20, 1),
	             *f21 = mkframe(21, 2);

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	ck_assert_int_eq(conn__push(&c, &sh, f40, 100, 100), 0);
	ck_assert_int_eq(conn__push(&c, &sh, f40, 100, 100), 0);
	ck_assert_int_eq(conn__push(&c, &sh, f21, 100, 100),
	                 TCPCHAT_EQUEUEFULL);                    /* 101 > 100 */
	ck_assert_int_eq(conn__push(&c, &sh, f20, 100, 100), 0); /* = 100 */
	ck_assert_uint_eq(c.qbytes, 100);
	ck_assert_int_eq(conn__push(&c, &sh, f20, 100, 100),
	                 TCPCHAT_EQUEUEFULL);
	/* Bytes written count as gone, even within a frame. */
	fk.budget = 30;
	size_t w, fr;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 1);
	ck_assert_uint_eq(w, 30);
	ck_assert_uint_eq(fr, 0);
	ck_assert_uint_eq(c.qbytes, 70);
	ck_assert_uint_eq(c.qoff, 30);
	ck_assert_int_eq(conn__push(&c, &sh, f21, 100, 100), 0); /* 91 */
	ck_assert_int_eq(conn__push(&c, &sh, f20, 100, 100),
	                 TCPCHAT_EQUEUEFULL); /* 111 */
	conn__clear(&c, &sh);
	ck_assert_uint_eq(f40->refs, 1);
	ck_assert_uint_eq(f20->refs, 1);
	ck_assert_uint_eq(f21->refs, 1);
	frame__unref(f40);
	frame__unref(f20);
	frame__unref(f21);
	tcpchat_buf_free(&fk.out);
	conn__shared_fini(&sh);
}
END_TEST

START_TEST(test_queue_empty_always_accepts)
{
	struct conn_shared sh;
	struct conn c;
	struct fake fk;
	struct frame *big = mkframe(5000, 0);

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	ck_assert_int_eq(conn__push(&c, &sh, big, 1, 10), 0);
	ck_assert_int_eq(conn__push(&c, &sh, big, 1, 10), TCPCHAT_EQUEUEFULL);
	conn__clear(&c, &sh);
	ck_assert_int_eq(conn__push(&c, &sh, big, 0, 0), 0);
	ck_assert_uint_eq(c.qcount, 1);
	ck_assert_uint_eq(c.qbytes, 5000);
	size_t w, fr;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	ck_assert_uint_eq(w, 5000);
	ck_assert_int_eq(memcmp(fk.out.data, big->data, 5000), 0);
	ck_assert_int_eq(conn__push(&c, &sh, big, 0, 0), 0);
	conn__clear(&c, &sh);
	ck_assert_uint_eq(big->refs, 1);
	frame__unref(big);
	tcpchat_buf_free(&fk.out);
	conn__shared_fini(&sh);
}
END_TEST

/* Partial writes at every size: counters and bytes stay right. */
START_TEST(test_flush_partial_writes)
{
	struct conn_shared sh;
	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	for (size_t step = 1; step <= 37; step += 3) {
		struct conn c;
		struct fake fk;
		struct frame *f[6];
		tcpchat_buf want = {0};
		fake_conn(&c, &fk);
		size_t total = 0;
		for (int i = 0; i < 6; i++) {
			f[i] = mkframe(5 + (size_t)i * 7, (unsigned)i);
			ck_assert_int_eq(
			        conn__push(&c, &sh, f[i], 10, SIZE_MAX), 0);
			total += f[i]->len;
		}
		concat(&want, f, 6);
		fk.per_call = step;
		size_t done = 0, frames = 0, ends[6], acc = 0;
		for (int i = 0; i < 6; i++)
			ends[i] = acc += f[i]->len;
		int rc = 1, bad = 0;
		while (rc == 1 || c.qcount) {
			fk.budget = step; /* one write's worth per flush */
			size_t w, fr;
			rc = conn__flush(&c, &sh, &w, &fr);
			ck_assert_int_ge(rc, 0);
			done += w;
			frames += fr;
			size_t complete = 0;
			while (complete < 6 && ends[complete] <= done)
				complete++;
			if (frames != complete || c.qbytes != total - done ||
			    c.qcount != 6 - complete ||
			    (complete < 6 &&
			     c.qoff != done - (complete ? ends[complete - 1]
			                                : 0)))
				bad++;
		}
		ck_assert_int_eq(bad, 0);
		ck_assert_uint_eq(done, total);
		ck_assert(same_bytes(&fk.out, &want));
		for (int i = 0; i < 6; i++) {
			ck_assert_uint_eq(f[i]->refs, 1);
			frame__unref(f[i]);
		}
		tcpchat_buf_free(&want);
		tcpchat_buf_free(&fk.out);
		conn__clear(&c, &sh);
	}
	conn__shared_fini(&sh);
}
END_TEST

START_TEST(test_drop_oldest)
{
	struct conn_shared sh;
	struct conn c;
	struct fake fk;
	struct frame *a = mkframe(50, 1), *b = mkframe(60, 2),
	             *d = mkframe(70, 3);

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	ck_assert_int_eq(conn__drop_oldest(&c), 0); /* empty */

	/* Nothing started: the head goes. */
	ck_assert_int_eq(conn__push(&c, &sh, a, 10, SIZE_MAX), 0);
	ck_assert_int_eq(conn__push(&c, &sh, b, 10, SIZE_MAX), 0);
	ck_assert_int_eq(conn__push(&c, &sh, d, 10, SIZE_MAX), 0);
	ck_assert_int_eq(conn__drop_oldest(&c), 1);
	ck_assert_uint_eq(c.qcount, 2);
	ck_assert_uint_eq(c.qbytes, 130);
	ck_assert_uint_eq(a->refs, 1);
	size_t w, fr;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	tcpchat_buf want = {0};
	struct frame *bd[2] = {b, d};
	concat(&want, bd, 2);
	ck_assert(same_bytes(&fk.out, &want));
	tcpchat_buf_free(&want);
	fk.out.len = 0;

	/* The head partly written: it stays, the next one goes. */
	ck_assert_int_eq(conn__push(&c, &sh, a, 10, SIZE_MAX), 0);
	ck_assert_int_eq(conn__push(&c, &sh, b, 10, SIZE_MAX), 0);
	ck_assert_int_eq(conn__push(&c, &sh, d, 10, SIZE_MAX), 0);
	fk.budget = 20;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 1);
	ck_assert_uint_eq(c.qoff, 20);
	ck_assert_int_eq(conn__drop_oldest(&c), 1);
	ck_assert_uint_eq(b->refs, 1); /* b was dropped */
	ck_assert_uint_eq(c.qcount, 2);
	ck_assert_uint_eq(c.qoff, 20);
	ck_assert_uint_eq(c.qbytes, 30 + 70);
	/* Only the partial head left after one more drop: no more. */
	ck_assert_int_eq(conn__drop_oldest(&c), 1);
	ck_assert_uint_eq(d->refs, 1);
	ck_assert_int_eq(conn__drop_oldest(&c), 0);
	ck_assert_uint_eq(c.qcount, 1);
	fk.budget = SIZE_MAX;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	ck_assert_uint_eq(fk.out.len, 50);
	ck_assert_int_eq(memcmp(fk.out.data, a->data, 50), 0); /* whole */
	ck_assert_uint_eq(a->refs, 1);

	conn__clear(&c, &sh);
	frame__unref(a);
	frame__unref(b);
	frame__unref(d);
	tcpchat_buf_free(&fk.out);
	conn__shared_fini(&sh);
}
END_TEST

START_TEST(test_drop_unsent)
{
	struct conn_shared sh;
	struct conn c;
	struct fake fk;
	struct frame *f[10];

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	for (int i = 0; i < 10; i++)
		f[i] = mkframe(30, (unsigned)i);
	/* Nothing started: everything goes. */
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(conn__push(&c, &sh, f[i], 20, SIZE_MAX), 0);
	conn__drop_unsent(&c);
	ck_assert_uint_eq(c.qcount, 0);
	ck_assert_uint_eq(c.qbytes, 0);
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(f[i]->refs, 1);
	size_t w, fr;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	ck_assert_uint_eq(fk.calls, 0);

	/* A partly written head survives, and is finished. */
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(conn__push(&c, &sh, f[i], 20, SIZE_MAX), 0);
	fk.budget = 45; /* f[0] whole, 15 bytes of f[1] */
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 1);
	ck_assert_uint_eq(fr, 1);
	conn__drop_unsent(&c);
	ck_assert_uint_eq(c.qcount, 1);
	ck_assert_uint_eq(c.qbytes, 15);
	fk.budget = SIZE_MAX;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	tcpchat_buf want = {0};
	concat(&want, f, 2);
	ck_assert(same_bytes(&fk.out, &want));
	tcpchat_buf_free(&want);
	for (int i = 0; i < 10; i++) {
		ck_assert_uint_eq(f[i]->refs, 1);
		frame__unref(f[i]);
	}
	conn__clear(&c, &sh);
	tcpchat_buf_free(&fk.out);
	conn__shared_fini(&sh);
}
END_TEST

static size_t cache_len(const struct conn_shared *sh, int k)
{
	size_t n = 0;
	for (void *p = sh->ring_free[k]; p; p = *(void **)p)
		n++;
	return n;
}

/* A ring that grew past the inline slots goes back to the shared cache
 * when a flush empties the queue, and the next growth (of any connection
 * of the loop) takes it from there. */
START_TEST(test_ring_cache_reuse)
{
	struct conn_shared sh;
	struct conn c, c2;
	struct fake fk, fk2;
	struct frame *f = mkframe(3, 0);
	size_t w, fr;

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	for (int k = 0; k < RING_CLASSES; k++)
		ck_assert_uint_eq(sh.ring_nfree[k], 0);

	for (int i = 0; i < CONN_INLINE_Q; i++)
		ck_assert_int_eq(conn__push(&c, &sh, f, 100, SIZE_MAX), 0);
	ck_assert_ptr_eq(c.q, c.inl);
	ck_assert_int_eq(conn__push(&c, &sh, f, 100, SIZE_MAX), 0);
	ck_assert_ptr_ne(c.q, c.inl);
	ck_assert_uint_eq(c.qcap, 8);
	struct frame **r8 = c.q;
	for (int i = 5; i < 9; i++)
		ck_assert_int_eq(conn__push(&c, &sh, f, 100, SIZE_MAX), 0);
	ck_assert_uint_eq(c.qcap, 16);
	struct frame **r16 = c.q;
	/* The outgrown 8-ring is cached at once. */
	ck_assert_uint_eq(sh.ring_nfree[0], 1);
	ck_assert_ptr_eq(sh.ring_free[0], r8);

	/* A partial flush keeps the ring. */
	fk.budget = 5;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 1);
	ck_assert_ptr_eq(c.q, r16);
	ck_assert_uint_eq(sh.ring_nfree[1], 0);
	fk.budget = SIZE_MAX;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	ck_assert_ptr_eq(c.q, c.inl);
	ck_assert_uint_eq(c.qcap, CONN_INLINE_Q);
	ck_assert_uint_eq(sh.ring_nfree[1], 1);
	ck_assert_ptr_eq(sh.ring_free[1], r16);
	ck_assert_uint_eq(cache_len(&sh, 0), 1);
	ck_assert_uint_eq(cache_len(&sh, 1), 1);

	/* Growth again: the cached rings, no new ones. */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(conn__push(&c, &sh, f, 100, SIZE_MAX), 0);
	ck_assert_ptr_eq(c.q, r8);
	ck_assert_uint_eq(sh.ring_nfree[0], 0);
	ck_assert_ptr_null(sh.ring_free[0]);
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	ck_assert_uint_eq(sh.ring_nfree[0], 1);

	/* Another connection of the same loop uses the same cache. */
	fake_conn(&c2, &fk2);
	for (int i = 0; i < 9; i++)
		ck_assert_int_eq(conn__push(&c2, &sh, f, 100, SIZE_MAX), 0);
	ck_assert_ptr_eq(c2.q, r16);
	ck_assert_uint_eq(sh.ring_nfree[1], 0);
	ck_assert_uint_eq(sh.ring_nfree[0], 1); /* r8 taken and put back */
	/* The queue's contents survived both moves. */
	ck_assert_int_eq(conn__flush(&c2, &sh, &w, &fr), 0);
	ck_assert_uint_eq(fr, 9);
	ck_assert_uint_eq(fk2.out.len, 27);
	ck_assert_uint_eq(sh.ring_nfree[1], 1);

	conn__clear(&c, &sh);
	conn__clear(&c2, &sh);
	ck_assert_uint_eq(f->refs, 1);
	frame__unref(f);
	tcpchat_buf_free(&fk.out);
	tcpchat_buf_free(&fk2.out);
	conn__shared_fini(&sh); /* frees the cached rings */
	ck_assert_ptr_null(sh.ring_free[0]);
}
END_TEST

/* The cache holds a bounded number of rings per size; the rest are
 * freed (valgrind checks that nothing leaks either way). */
START_TEST(test_ring_cache_bounded)
{
	enum { NC = 300 };
	struct conn_shared sh;
	static struct conn c[NC];
	static struct fake fk[NC];
	struct frame *f = mkframe(1, 0);
	size_t w, fr;

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	for (int i = 0; i < NC; i++) {
		fake_conn(&c[i], &fk[i]);
		for (int k = 0; k < 5; k++)
			ck_assert_int_eq(
			        conn__push(&c[i], &sh, f, 100, SIZE_MAX), 0);
		ck_assert_uint_eq(c[i].qcap, 8);
	}
	for (int i = 0; i < NC; i++)
		ck_assert_int_eq(conn__flush(&c[i], &sh, &w, &fr), 0);
	ck_assert_uint_gt(sh.ring_nfree[0], 0);
	ck_assert_uint_lt(sh.ring_nfree[0], NC);
	ck_assert_uint_eq(cache_len(&sh, 0), sh.ring_nfree[0]);
	for (int i = 0; i < NC; i++) {
		conn__clear(&c[i], &sh);
		tcpchat_buf_free(&fk[i].out);
	}
	ck_assert_uint_eq(f->refs, 1);
	frame__unref(f);
	conn__shared_fini(&sh);
}
END_TEST

/* Rings larger than the largest cached size are plain allocations. */
START_TEST(test_ring_huge)
{
	const uint32_t n = (8u << (RING_CLASSES - 1)) + 1; /* past the top */
	struct conn_shared sh;
	struct conn c;
	struct fake fk;
	struct frame *f = mkframe(1, 0);

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	for (uint32_t i = 0; i < n; i++)
		if (conn__push(&c, &sh, f, UINT32_MAX, SIZE_MAX) != 0)
			ck_abort_msg("push %u failed", i);
	ck_assert_uint_eq(c.qcount, n);
	ck_assert_uint_eq(c.qcap, 2 * (n - 1));
	ck_assert_uint_eq(f->refs, n + 1);
	/* Every smaller class was outgrown and cached once. */
	for (int k = 0; k < RING_CLASSES; k++)
		ck_assert_uint_eq(sh.ring_nfree[k], 1);
	conn__clear(&c, &sh);
	ck_assert_uint_eq(f->refs, 1);
	for (int k = 0; k < RING_CLASSES; k++)
		ck_assert_uint_eq(sh.ring_nfree[k], 1);
	frame__unref(f);
	conn__shared_fini(&sh);
}
END_TEST

/* conn__clear releases queued frames, a grown ring and a partial frame. */
START_TEST(test_clear_frees_everything)
{
	struct conn_shared sh;
	struct end e;
	struct sink s = {0};
	tcpchat_buf stream = {0};
	struct conn_read_result res;
	struct frame *f[12];

	ck_assert_int_eq(conn__shared_init(&sh, 65536), 0);
	end_init(&e, tcpchat_codec_binary());
	add_msg(&s, &stream, 30000);
	peer_write(&e, stream.data, stream.len / 2); /* a large partial */
	ck_assert_int_eq(rd(&e, &sh, 65536, &s, &res), 0);
	ck_assert_ptr_nonnull(e.c.rbuf);
	ck_assert_uint_gt(e.c.need, 0);
	for (int i = 0; i < 12; i++) {
		f[i] = mkframe(100, (unsigned)i);
		ck_assert_int_eq(conn__push(&e.c, &sh, f[i], 100, SIZE_MAX), 0);
	}
	ck_assert_ptr_ne(e.c.q, e.c.inl);
	uint32_t cached = sh.ring_nfree[1];
	conn__clear(&e.c, &sh);
	ck_assert_ptr_null(e.c.rbuf);
	ck_assert_uint_eq(e.c.rlen, 0);
	ck_assert_uint_eq(e.c.need, 0);
	ck_assert_ptr_null(e.c.q);
	ck_assert_uint_eq(e.c.qcount, 0);
	ck_assert_uint_eq(e.c.qbytes, 0);
	ck_assert_uint_eq(e.c.qoff, 0);
	ck_assert_uint_eq(sh.ring_nfree[1], cached + 1);
	for (int i = 0; i < 12; i++)
		ck_assert_uint_eq(f[i]->refs, 1);
	/* Usable again. */
	ck_assert_int_eq(conn__push(&e.c, &sh, f[0], 100, SIZE_MAX), 0);
	size_t w, fr;
	ck_assert_int_eq(conn__flush(&e.c, &sh, &w, &fr), 0);
	ck_assert_uint_eq(w, 100);
	conn__clear(&e.c, &sh);
	conn__clear(&e.c, &sh); /* twice: harmless */
	for (int i = 0; i < 12; i++)
		frame__unref(f[i]);
	end_fini(&e, &sh);
	conn__shared_fini(&sh);
	tcpchat_buf_free(&stream);
}
END_TEST

static int stage_poisoned(const struct conn_shared *sh)
{
	for (size_t i = 0; i < sh->stage_cap; i++)
		if ((unsigned char)sh->stage[i] != 0xA5)
			return 0;
	return 1;
}

/* A frame queued alone is written from the frame itself, not copied. */
START_TEST(test_single_frame_in_place)
{
	struct conn_shared sh;
	struct end e;
	struct conn c;
	struct fake fk;
	struct frame *f = mkframe(200, 7), *g = mkframe(200, 8);
	tcpchat_buf got = {0};
	size_t w, fr;

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	memset(sh.stage, 0xA5, sh.stage_cap);

	/* Over a socket: the bytes arrive intact, the stage untouched. */
	end_init(&e, tcpchat_codec_binary());
	ck_assert_int_eq(conn__push(&e.c, &sh, f, 10, SIZE_MAX), 0);
	ck_assert_int_eq(conn__flush(&e.c, &sh, &w, &fr), 0);
	peer_read_all(&e, &got);
	ck_assert_uint_eq(got.len, 200);
	ck_assert_int_eq(memcmp(got.data, f->data, 200), 0);
	ck_assert(stage_poisoned(&sh));

	/* The iovec points into the frame, also after a partial write. */
	fake_conn(&c, &fk);
	ck_assert_int_eq(conn__push(&c, &sh, f, 10, SIZE_MAX), 0);
	fk.budget = 50;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 1);
	ck_assert_int_eq(fk.first_cnt, 1);
	ck_assert_ptr_eq(fk.first_base[0], f->data);
	ck_assert_uint_eq(fk.first_len[0], 200);
	fk.budget = SIZE_MAX;
	fk.calls = 0;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	ck_assert_ptr_eq(fk.first_base[0], f->data + 50);
	ck_assert_uint_eq(fk.first_len[0], 150);
	ck_assert(stage_poisoned(&sh));

	/* Control: two small frames do go through the stage. */
	ck_assert_int_eq(conn__push(&c, &sh, f, 10, SIZE_MAX), 0);
	ck_assert_int_eq(conn__push(&c, &sh, g, 10, SIZE_MAX), 0);
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	ck_assert(!stage_poisoned(&sh));

	conn__clear(&c, &sh);
	end_fini(&e, &sh);
	frame__unref(f);
	frame__unref(g);
	tcpchat_buf_free(&got);
	tcpchat_buf_free(&fk.out);
	conn__shared_fini(&sh);
}
END_TEST

/* Many small frames leave in one write of one run of bytes. */
START_TEST(test_batched_small_frames)
{
	enum { N = 100 };
	struct conn_shared sh;
	struct conn c;
	struct fake fk;
	struct frame *f[N];
	tcpchat_buf want = {0};
	size_t w, fr;

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	for (int i = 0; i < N; i++) {
		f[i] = mkframe(1 + (size_t)i % 17, (unsigned)i);
		ck_assert_int_eq(conn__push(&c, &sh, f[i], N, SIZE_MAX), 0);
	}
	concat(&want, f, N);
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	ck_assert_int_eq(fk.calls, 1);
	ck_assert_int_eq(fk.first_cnt, 1);
	ck_assert_ptr_eq(fk.first_base[0], sh.stage);
	ck_assert_uint_eq(fk.first_len[0], want.len);
	ck_assert_uint_eq(fr, N);
	ck_assert(same_bytes(&fk.out, &want));
	for (int i = 0; i < N; i++) {
		ck_assert_uint_eq(f[i]->refs, 1);
		frame__unref(f[i]);
	}
	conn__clear(&c, &sh);
	tcpchat_buf_free(&want);
	tcpchat_buf_free(&fk.out);
	conn__shared_fini(&sh);
}
END_TEST

/* Large frames are passed in place, one iovec each, small ones around
 * them staged; a write takes at most 64 iovecs; every byte arrives in
 * order. */
START_TEST(test_gather_mixed_and_iov_limit)
{
	enum { N = 150 };
	struct conn_shared sh;
	struct conn c;
	struct fake fk;
	struct frame *f[N];
	tcpchat_buf want = {0};
	size_t w, fr;

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	struct frame *s1 = mkframe(10, 1), *big = mkframe(2000, 2),
	             *s2 = mkframe(10, 3);
	ck_assert_int_eq(conn__push(&c, &sh, s1, 10, SIZE_MAX), 0);
	ck_assert_int_eq(conn__push(&c, &sh, big, 10, SIZE_MAX), 0);
	ck_assert_int_eq(conn__push(&c, &sh, s2, 10, SIZE_MAX), 0);
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	ck_assert_int_eq(fk.calls, 1);
	ck_assert_int_eq(fk.first_cnt, 3);
	ck_assert_ptr_eq(fk.first_base[0], sh.stage);
	ck_assert_uint_eq(fk.first_len[0], 10);
	ck_assert_ptr_eq(fk.first_base[1], big->data);
	ck_assert_uint_eq(fk.first_len[1], 2000);
	ck_assert_ptr_eq(fk.first_base[2], sh.stage + 10);
	ck_assert_uint_eq(fk.first_len[2], 10);
	struct frame *three[3] = {s1, big, s2};
	concat(&want, three, 3);
	ck_assert(same_bytes(&fk.out, &want));
	frame__unref(s1);
	frame__unref(big);
	frame__unref(s2);

	/* More large frames than one write takes. */
	want.len = 0;
	fk.out.len = 0;
	fk.calls = 0;
	for (int i = 0; i < N; i++) {
		f[i] = mkframe(1500 + (size_t)i, (unsigned)i);
		ck_assert_int_eq(conn__push(&c, &sh, f[i], N, SIZE_MAX), 0);
	}
	concat(&want, f, N);
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	/* Several frames per write, but within what the kernel takes
	 * (Linux's IOV_MAX is 1024). */
	ck_assert_int_gt(fk.first_cnt, 1);
	ck_assert_int_lt(fk.first_cnt, N);
	ck_assert_int_le(fk.first_cnt, 1024);
	int moved = 0;
	for (int i = 0; i < fk.first_cnt && i < 64; i++)
		moved += fk.first_base[i] != f[i]->data;
	ck_assert_int_eq(moved, 0);
	ck_assert_int_ge(fk.calls, (N + fk.first_cnt - 1) / fk.first_cnt);
	for (int i = 0; i < N; i++) {
		ck_assert_uint_eq(f[i]->refs, 1);
		frame__unref(f[i]);
	}
	ck_assert(same_bytes(&fk.out, &want));
	conn__clear(&c, &sh);
	tcpchat_buf_free(&want);
	tcpchat_buf_free(&fk.out);
	conn__shared_fini(&sh);
}
END_TEST

/* More small frames than the stage holds: the rest go in place, in
 * order. */
START_TEST(test_stage_overflow)
{
	enum { N = 300, LEN = 500 };
	struct conn_shared sh;
	struct conn c;
	struct fake fk;
	struct frame *f[N];
	tcpchat_buf want = {0};
	size_t w, fr;

	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	for (int i = 0; i < N; i++) {
		f[i] = mkframe(LEN, (unsigned)i);
		ck_assert_int_eq(conn__push(&c, &sh, f[i], N, SIZE_MAX), 0);
		frame__unref(f[i]);
	}
	concat(&want, f, N);
	fk.budget = 1;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 1);
	size_t fit = sh.stage_cap / LEN;
	ck_assert_uint_lt(fit, N);
	ck_assert_ptr_eq(fk.first_base[0], sh.stage);
	ck_assert_uint_eq(fk.first_len[0], fit * LEN);
	ck_assert_int_le(fk.first_cnt, 64);
	ck_assert_int_gt(fk.first_cnt, 1);
	fk.budget = SIZE_MAX;
	ck_assert_int_eq(conn__flush(&c, &sh, &w, &fr), 0);
	ck_assert(same_bytes(&fk.out, &want));
	conn__clear(&c, &sh);
	tcpchat_buf_free(&want);
	tcpchat_buf_free(&fk.out);
	conn__shared_fini(&sh);
}
END_TEST

/* A random mix of pushes, partial flushes and drops, checked against a
 * simple model of the queue. */
struct mframe {
	uint32_t len;
	unsigned tag;
};

static unsigned char mbyte(unsigned tag, size_t i)
{
	return (unsigned char)((tag * 2654435761u + i * 40503u) >> 7);
}

START_TEST(test_queue_model_random)
{
	enum { OPS = 6000, MAXQ = 300, MAXF = 40 };
	const size_t max_bytes = 30000;
	struct conn_shared sh;
	struct conn c;
	struct fake fk;
	static struct mframe mq[MAXQ];
	uint32_t mhead = 0, mcount = 0, moff = 0;
	size_t mbytes = 0;
	tcpchat_buf want = {0};
	uint64_t st = 0x1234567887654321ull;
	unsigned next_tag = 1;
	int bad = 0;
	char *tmp = malloc(5000);

	ck_assert_ptr_nonnull(tmp);
	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	for (int op = 0; op < OPS; op++) {
		st ^= st << 13;
		st ^= st >> 7;
		st ^= st << 17;
		unsigned r = (unsigned)(st >> 20);
		unsigned what = r % 100;
		if (what < 55) {
			/* push */
			uint32_t len = (r >> 8) % 7 == 0
			                       ? 1100 + (r >> 12) % 3000
			                       : 1 + (r >> 12) % 200;
			unsigned tag = next_tag++;
			for (uint32_t i = 0; i < len; i++)
				tmp[i] = (char)mbyte(tag, i);
			struct frame *f = frame__new(tmp, len);
			ck_assert_ptr_nonnull(f);
			int expect_full = mcount && (mcount >= MAXF ||
			                             mbytes + len > max_bytes);
			int rc = conn__push(&c, &sh, f, MAXF, max_bytes);
			if (rc != (expect_full ? TCPCHAT_EQUEUEFULL : 0))
				bad++;
			if (rc == 0) {
				mq[(mhead + mcount) % MAXQ] =
				        (struct mframe){len, tag};
				mcount++;
				mbytes += len;
			}
			frame__unref(f);
		} else if (what < 90) {
			/* flush with a random allowance */
			fk.budget =
			        (r >> 8) % 4 == 0 ? SIZE_MAX : (r >> 10) % 3000;
			fk.per_call =
			        (r >> 9) % 3 == 0 ? 1 + (r >> 14) % 700 : 0;
			size_t w, fr, done = 0;
			int rc = conn__flush(&c, &sh, &w, &fr);
			if (rc < 0 || (rc == 0) != (mcount == 0 || w == mbytes))
				bad++;
			/* The model moves by w bytes. */
			size_t left = w;
			while (left && mcount) {
				struct mframe *m = &mq[mhead];
				size_t rest = m->len - moff;
				size_t k = TC_MIN(left, rest);
				for (size_t i = 0; i < k; i++)
					tmp[i] = (char)mbyte(m->tag, moff + i);
				if (tcpchat_buf_append(&want, tmp, k))
					ck_abort_msg("out of memory");
				left -= k;
				moff += (uint32_t)k;
				if (moff == m->len) {
					moff = 0;
					mhead = (mhead + 1) % MAXQ;
					mcount--;
					done++;
				}
			}
			mbytes -= w;
			if (left || done != fr)
				bad++;
		} else if (what < 97) {
			uint32_t idx = moff ? 1 : 0;
			int expect = idx < mcount;
			if (conn__drop_oldest(&c) != expect)
				bad++;
			if (expect) {
				uint32_t at = (mhead + idx) % MAXQ;
				mbytes -= mq[at].len;
				if (idx == 1)
					mq[at] = mq[mhead];
				mhead = (mhead + 1) % MAXQ;
				mcount--;
			}
		} else {
			conn__drop_unsent(&c);
			uint32_t keep = moff ? 1 : 0;
			while (mcount > keep) {
				mcount--;
				mbytes -= mq[(mhead + mcount) % MAXQ].len;
			}
		}
		if (c.qcount != mcount || c.qbytes != mbytes ||
		    c.qoff != moff || fk.out.len != want.len)
			bad++;
		if (bad) {
			ck_abort_msg("diverged from the model at op %d", op);
		}
	}
	ck_assert(same_bytes(&fk.out, &want));
	conn__clear(&c, &sh);
	free(tmp);
	tcpchat_buf_free(&want);
	tcpchat_buf_free(&fk.out);
	conn__shared_fini(&sh);
}
END_TEST

/* An empty frame (a codec may encode a message as nothing) is completed
 * by a flush like any other, instead of being written forever. */
START_TEST(test_flush_empty_frame)
{
	struct conn_shared sh;
	struct conn c;
	struct fake fk;
	struct frame *f = frame__new("", 0);
	size_t w, fr;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(conn__shared_init(&sh, 4096), 0);
	fake_conn(&c, &fk);
	fk.max_calls = 1000; /* turns a runaway flush into an error */
	ck_assert_int_eq(conn__push(&c, &sh, f, 10, SIZE_MAX), 0);
	int rc = conn__flush(&c, &sh, &w, &fr);
	uint32_t left = c.qcount;
	conn__clear(&c, &sh);
	frame__unref(f);
	tcpchat_buf_free(&fk.out);
	conn__shared_fini(&sh);
	ck_assert_msg(rc == 0 && fr == 1,
	              "flush of an empty frame: rc %d, %zu frames, %d writes",
	              rc, fr, fk.calls);
	ck_assert_uint_eq(left, 0);
}
END_TEST

static Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc;

	tc = tcase_create("read");
	tcase_add_test(tc, test_split_every_byte);
	tcase_add_test(tc, test_split_two_pieces);
	tcase_add_test(tc, test_large_frame_in_segments);
	tcase_add_test(tc, test_large_partial_not_resized);
	tcase_add_test(tc, test_large_frame_without_need);
	tcase_add_test(tc, test_shared_buffer_two_conns);
	tcase_add_test(tc, test_emsgsize_when_length_known);
	tcase_add_test(tc, test_exact_max_frame_ok);
	tcase_add_test(tc, test_emsgsize_unknown_length);
	tcase_add_test(tc, test_emsgsize_need_beyond_limit);
	tcase_add_test(tc, test_eproto_after_good_frame);
	tcase_add_test(tc, test_eof_closed);
	tcase_add_test(tc, test_stop_and_resume);
	tcase_add_test(tc, test_stop_with_large_partial);
	tcase_add_test(tc, test_stop_at_last);
	suite_add_tcase(s, tc);

	tc = tcase_create("queue");
	tcase_add_test(tc, test_push_flush_order);
	tcase_add_test(tc, test_flush_socket_full);
	tcase_add_test(tc, test_flush_error);
	tcase_add_test(tc, test_queue_full_frames);
	tcase_add_test(tc, test_queue_full_bytes);
	tcase_add_test(tc, test_queue_empty_always_accepts);
	tcase_add_test(tc, test_flush_partial_writes);
	tcase_add_test(tc, test_drop_oldest);
	tcase_add_test(tc, test_drop_unsent);
	tcase_add_test(tc, test_ring_cache_reuse);
	tcase_add_test(tc, test_ring_cache_bounded);
	tcase_add_test(tc, test_ring_huge);
	tcase_add_test(tc, test_clear_frees_everything);
	tcase_add_test(tc, test_single_frame_in_place);
	tcase_add_test(tc, test_batched_small_frames);
	tcase_add_test(tc, test_gather_mixed_and_iov_limit);
	tcase_add_test(tc, test_stage_overflow);
	tcase_add_test(tc, test_queue_model_random);
	tcase_add_test(tc, test_flush_empty_frame);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(conn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
