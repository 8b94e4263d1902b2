/* Tests for the built-in codecs: binary, line and json. */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tcpchat/tcpchat.h>

#include "codecutil.h"
#include "testutil.h"

#define LIT(lit) .data = (lit), .len = sizeof(lit) - 1

/* ---- round-trip cases ------------------------------------------------- */

struct rt {
	unsigned enc_flags;
	unsigned dec_flags;
	tcpchat_msg in;
	tcpchat_msg want;
	const char *what;
};

#define BODY "hello, world \xc3\xa9 \"quoted\" back\\slash tab\t{}[]:,"

static char ascii_body[127]; /* bytes 0x01..0x7F */
static char big_body[3000];
static struct rt full_cases[96];
static size_t n_full;

static void add_full(const tcpchat_msg *m, const char *what)
{
	struct rt *r = &full_cases[n_full++];

	ck_assert_uint_le(n_full, ARRAY_LEN(full_cases));
	memset(r, 0, sizeof(*r));
	/* direction flags mean nothing to binary and json */
	r->enc_flags = (n_full % 2) ? TCPCHAT_FROM_SERVER : 0;
	r->dec_flags = (n_full % 3) ? TCPCHAT_FROM_SERVER : 0;
	r->in = *m;
	r->want = *m;
	r->what = what;
}

/* Every type with every field, minimal messages and extreme values. */
static void build_full_cases(int binary)
{
	static const tcpchat_str sender = S("alice");
	static const tcpchat_str body = S(BODY);
	static const tcpchat_str room = S("lobby");
	static const tcpchat_str target = S("bob");
	tcpchat_msg m;
	uint32_t t;
	size_t i;

	n_full = 0;
	for (i = 0; i < sizeof(ascii_body); i++)
		ascii_body[i] = (char)(i + 1);
	for (i = 0; i < sizeof(big_body); i++)
		big_body[i] = (char)('a' + i % 26);

	for (t = 1; t <= TCPCHAT_MSG_TYPE_MAX; t++) {
		memset(&m, 0, sizeof(m));
		m.type = t;
		m.code = t * 1000 + 7;
		m.id = UINT64_C(0x0123456789abcdef) + t;
		m.timestamp =
		        (t % 2) ? INT64_C(1700000000000) + t : -(int64_t)t;
		m.sender = sender;
		m.body = body;
		m.room = room;
		m.target = target;
		add_full(&m, "all fields");
	}
	for (t = 1; t <= TCPCHAT_MSG_TYPE_MAX; t++) {
		memset(&m, 0, sizeof(m));
		m.type = t;
		add_full(&m, "type only");
	}

	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.code = UINT32_MAX;
	m.id = UINT64_MAX;
	m.timestamp = INT64_MIN;
	add_full(&m, "extreme values 1");
	m.timestamp = INT64_MAX;
	m.id = 1;
	m.code = 1;
	add_full(&m, "extreme values 2");
	m.timestamp = -1;
	add_full(&m, "timestamp -1");

	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.body.ptr = ascii_body;
	m.body.len = sizeof(ascii_body);
	m.sender.ptr = "\x7f\x01";
	m.sender.len = 2;
	add_full(&m, "all ASCII bytes");

	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.body.ptr = "a\0b\0";
	m.body.len = 4;
	m.room.ptr = "\xc3\xa9\xe2\x98\xba\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf";
	m.room.len = 13;
	add_full(&m, "NUL bytes and multi-byte UTF-8");

	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.body.ptr = big_body;
	m.body.len = sizeof(big_body);
	add_full(&m, "big body");

	if (binary) {
		memset(&m, 0, sizeof(m));
		m.type = TCPCHAT_MSG_ERROR;
		m.body.ptr = "\xff\xc0\x80\xed\xa0\x80";
		m.body.len = 6;
		add_full(&m, "binary carries any bytes");
	}

	/* codec abi 2: each new field alone, then all of them at once */
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_ERROR;
	m.code = 4;
	m.flags = TCPCHAT_MSGF_CLOSING;
	add_full(&m, "flags closing");
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_HELLO;
	m.caps = TCPCHAT_CAP_BASE;
	add_full(&m, "caps alone");
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_WELCOME;
	m.max_frame = 65536;
	add_full(&m, "max_frame alone");
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_WELCOME;
	m.queue_frames = 1024;
	add_full(&m, "queue_frames alone");
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_WELCOME;
	m.queue_bytes = 1 << 20;
	add_full(&m, "queue_bytes alone");
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.ref = (tcpchat_str)S("c-17");
	add_full(&m, "ref alone");
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.cursor = (tcpchat_str)S("\xc3\xa9poch:42");
	add_full(&m, "cursor alone");
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.seq = 1;
	add_full(&m, "seq alone");
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.epoch = UINT64_MAX;
	add_full(&m, "epoch alone");

	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_WELCOME;
	m.code = TCPCHAT_PROTOCOL_VERSION;
	m.id = 77;
	m.timestamp = INT64_C(1700000000000);
	m.sender = sender;
	m.body = body;
	m.room = room;
	m.target = target;
	m.flags = binary ? 0xFFFFu : UINT32_MAX;
	m.caps = UINT64_MAX;
	m.max_frame = UINT64_MAX - 1;
	m.queue_frames = UINT64_C(0x8000000000000000);
	m.queue_bytes = UINT64_C(0x0102030405060708);
	m.ref = (tcpchat_str)S("ref \"1\"\n");
	m.cursor = (tcpchat_str)S("cur\\sor");
	m.seq = UINT64_MAX;
	m.epoch = 3;
	add_full(&m, "every field, abi 2 too");

	/* types this version does not know: numbered, so they travel */
	for (t = TCPCHAT_MSG_TYPE_MAX + 1; t <= 255; t += 41) {
		memset(&m, 0, sizeof(m));
		m.type = t;
		m.code = t;
		m.body = body;
		m.seq = t;
		add_full(&m, "unknown type");
	}
	memset(&m, 0, sizeof(m));
	m.type = 255;
	add_full(&m, "type 255");
}

static const struct rt line_cases[] = {
        /* client -> server */
        {0, TCPCHAT_HANDSHAKE,
         MSG(.type = TCPCHAT_MSG_HELLO, .code = 1, .sender = S("alice")),
         MSG(.type = TCPCHAT_MSG_HELLO, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("alice")),
         "hello"},
        {0, TCPCHAT_HANDSHAKE,
         MSG(.type = TCPCHAT_MSG_HELLO, .sender = S("zo\xc3\xab")),
         MSG(.type = TCPCHAT_MSG_HELLO, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("zo\xc3\xab")),
         "hello utf-8"},
        {0, TCPCHAT_HANDSHAKE,
         MSG(.type = TCPCHAT_MSG_HELLO, .sender = S("/quit")),
         MSG(.type = TCPCHAT_MSG_HELLO, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("/quit")),
         "hello named /quit"},
        {0, TCPCHAT_HANDSHAKE,
         MSG(.type = TCPCHAT_MSG_HELLO, .sender = S("alice"),
             .body = S("open sesame:$1 ")),
         MSG(.type = TCPCHAT_MSG_HELLO, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("alice"), .body = S("open sesame:$1 ")),
         "hello with a credential"},
        {0, 0, MSG(.type = TCPCHAT_MSG_TEXT, .body = S("hello world")),
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("hello world")), "text"},
        {0, 0, MSG(.type = TCPCHAT_MSG_TEXT, .body = S(BODY)),
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S(BODY)), "text punctuation"},
        {0, 0, MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/me waves")),
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/me waves")), "text /me"},
        {0, 0, MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/quit")),
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/quit")), "text /quit"},
        {0, 0, MSG(.type = TCPCHAT_MSG_TEXT, .body = S("//x")),
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("//x")), "text //x"},
        {0, 0, MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/")),
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/")), "text /"},
        {0, 0, MSG(.type = TCPCHAT_MSG_TEXT, .body = S("alice: hi")),
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("alice: hi")),
         "text that looks like a server line"},
        {0, 0,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_QUIT,
             .body = S("bye")),
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_QUIT), "leave"},
        {0, 0, MSG(.type = TCPCHAT_MSG_PING), MSG(.type = TCPCHAT_MSG_PING),
         "ping"},
        {0, 0, MSG(.type = TCPCHAT_MSG_PONG), MSG(.type = TCPCHAT_MSG_PONG),
         "pong"},
        {0, 0, MSG(.type = TCPCHAT_MSG_WHO), MSG(.type = TCPCHAT_MSG_WHO),
         "who"},
        {0, 0,
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("hi"), .flags = 1, .caps = 1,
             .max_frame = 2, .queue_frames = 3, .queue_bytes = 4, .ref = S("r"),
             .cursor = S("c"), .seq = 5, .epoch = 6),
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("hi")),
         "text: the abi-2 fields are not carried"},
        {0, TCPCHAT_HANDSHAKE,
         MSG(.type = TCPCHAT_MSG_HELLO, .code = 1, .sender = S("alice"),
             .caps = TCPCHAT_CAP_BASE),
         MSG(.type = TCPCHAT_MSG_HELLO, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("alice")),
         "hello: caps are not carried"},

        /* server -> client */
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_TEXT, .id = 42, .timestamp = 1700000000000,
             .sender = S("alice"), .body = S("hi there: you")),
         MSG(.type = TCPCHAT_MSG_TEXT, .sender = S("alice"),
             .body = S("hi there: you")),
         "s text"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_TEXT, .sender = S("a:"), .body = S("x")),
         MSG(.type = TCPCHAT_MSG_TEXT, .sender = S("a:"), .body = S("x")),
         "s text, sender ends in ':'"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_TEXT, .sender = S("***"), .body = S("*** x")),
         MSG(.type = TCPCHAT_MSG_TEXT, .sender = S("***"), .body = S("*** x")),
         "s text, sender ***"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_TEXT, .sender = S("alice")),
         MSG(.type = TCPCHAT_MSG_TEXT, .sender = S("alice")),
         "s text, empty body"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("server restarting: soon")),
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("server restarting: soon")),
         "s notice"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("--> bob joined")),
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("--> bob joined")),
         "s notice that looks like a join"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_JOIN, .id = 3, .sender = S("bob")),
         MSG(.type = TCPCHAT_MSG_JOIN, .sender = S("bob")), "s join"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_JOIN, .sender = S("joined")),
         MSG(.type = TCPCHAT_MSG_JOIN, .sender = S("joined")),
         "s join of a user named joined"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 1, .sender = S("bob")),
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 1, .sender = S("bob")),
         "s leave quit"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 2, .sender = S("bob")),
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 2, .sender = S("bob")),
         "s leave closed"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 3, .sender = S("bob")),
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 3, .sender = S("bob")),
         "s leave timeout"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 4, .sender = S("bob")),
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 4, .sender = S("bob")),
         "s leave error"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 5, .sender = S("bob")),
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 5, .sender = S("bob")),
         "s leave kicked"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 6, .sender = S("bob")),
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 6, .sender = S("bob")),
         "s leave shutdown"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 7, .sender = S("bob")),
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 7, .sender = S("bob")),
         "s leave slow"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 1, .sender = S("bob"),
             .body = S("bye: all (see you) left (x)")),
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 1, .sender = S("bob"),
             .body = S("bye: all (see you) left (x)")),
         "s leave with body"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .sender = S("bob")),
         MSG(.type = TCPCHAT_MSG_LEAVE, .sender = S("bob")),
         "s leave, reason 0"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 999, .sender = S("bob"),
             .body = S("x")),
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 0, .sender = S("bob"),
             .body = S("x")),
         "s leave, unknown reason"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_WELCOME, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("alice")),
         MSG(.type = TCPCHAT_MSG_WELCOME, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("alice")),
         "s welcome"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_ERROR, .code = 8,
             .body = S("name already in use")),
         MSG(.type = TCPCHAT_MSG_ERROR, .code = 8,
             .body = S("name already in use")),
         "s error"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_ERROR, .code = UINT32_MAX),
         MSG(.type = TCPCHAT_MSG_ERROR, .code = UINT32_MAX),
         "s error, no body"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_PING), MSG(.type = TCPCHAT_MSG_PING),
         "s ping"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_PONG), MSG(.type = TCPCHAT_MSG_PONG),
         "s pong"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_WHO, .code = 3, .body = S("a b c")),
         MSG(.type = TCPCHAT_MSG_WHO, .code = 3, .body = S("a b c")), "s who"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_ERROR, .code = 7, .body = S("idle timeout"),
             .flags = TCPCHAT_MSGF_CLOSING),
         MSG(.type = TCPCHAT_MSG_ERROR, .code = 7, .body = S("idle timeout")),
         "s error: the closing flag is not carried"},
        {TCPCHAT_FROM_SERVER, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_WELCOME, .code = 1, .sender = S("bob"),
             .caps = 1, .max_frame = 65536, .queue_frames = 1024,
             .queue_bytes = 1048576),
         MSG(.type = TCPCHAT_MSG_WELCOME, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("bob")),
         "s welcome: the limits are not carried"},
};

static const struct rt *get_cases(int ci, size_t *n)
{
	if (ci == C_LINE) {
		*n = ARRAY_LEN(line_cases);
		return line_cases;
	}
	build_full_cases(ci == C_BINARY);
	*n = n_full;
	return full_cases;
}

static void encode_ok(const tcpchat_codec *c, const struct rt *r,
                      tcpchat_buf *b)
{
	int rc = c->encode(c->codec_data, &r->in, r->enc_flags, b);

	ck_assert_msg(rc == 0, "%s/%s: encode returned %d", c->name, r->what,
	              rc);
}

/* ---- tests: codec table ----------------------------------------------- */

START_TEST(test_codec_table)
{
	static const char *const names[] = {"binary", "line", "json"};
	int i;

	for (i = 0; i < C_COUNT; i++) {
		const tcpchat_codec *c = cu_codec(i);

		ck_assert_ptr_nonnull(c);
		ck_assert_uint_eq(c->abi, TCPCHAT_CODEC_ABI);
		ck_assert_uint_eq(c->abi, 2);
		ck_assert_str_eq(c->name, names[i]);
		ck_assert_ptr_nonnull(c->encode);
		ck_assert_ptr_nonnull(c->decode);
		ck_assert_ptr_null(c->codec_data);
		ck_assert_ptr_eq(tcpchat_codec_find(names[i]), c);
	}
	ck_assert_uint_eq(tcpchat_codec_binary()->flags, 0);
	ck_assert_uint_eq(tcpchat_codec_line()->flags,
	                  TCPCHAT_CODEC_NO_PING | TCPCHAT_CODEC_GREET);
	ck_assert_uint_eq(tcpchat_codec_json()->flags, 0);
	ck_assert_ptr_null(tcpchat_codec_find("xml"));
	ck_assert_ptr_null(tcpchat_codec_find(""));
	ck_assert_ptr_null(tcpchat_codec_find(NULL));
}
END_TEST

/* ---- tests: round trips ----------------------------------------------- */

START_TEST(test_roundtrip)
{
	const tcpchat_codec *c = cu_codec(_i);
	size_t i, n;
	const struct rt *cases = get_cases(_i, &n);

	for (i = 0; i < n; i++) {
		const struct rt *r = &cases[i];
		tcpchat_buf b = {0};
		struct cu_dec d;
		char what[128];

		snprintf(what, sizeof(what), "%s/%s #%zu", c->name, r->what, i);
		/* encode appends and leaves what is already there */
		ck_assert_int_eq(tcpchat_buf_append(&b, "keep", 4), 0);
		encode_ok(c, r, &b);
		ck_assert_mem_eq(b.data, "keep", 4);
		ck_assert_uint_gt(b.len, 4);

		cu_dec_run(&d, c, b.data + 4, b.len - 4, r->dec_flags,
		           MAX_FRAME);
		ck_assert_msg(d.rc == (long)(b.len - 4),
		              "%s: decode returned %ld of %zu (%s)", what, d.rc,
		              b.len - 4, d.ctx.error ? d.ctx.error : "-");
		ck_assert_ptr_null(d.ctx.error);
		cu_check_msg(what, &d.msg, &r->want);
		cu_dec_free(&d);
		tcpchat_buf_free(&b);
	}
}
END_TEST

START_TEST(test_concatenated)
{
	const tcpchat_codec *c = cu_codec(_i);
	size_t i, n, off = 0;
	const struct rt *cases = get_cases(_i, &n);
	size_t *ends = calloc(n, sizeof(*ends));
	tcpchat_buf b = {0};
	char *copy, *scratch;

	ck_assert_ptr_nonnull(ends);
	for (i = 0; i < n; i++) {
		encode_ok(c, &cases[i], &b);
		ends[i] = b.len;
	}
	copy = malloc(b.len);
	scratch = malloc(MAX_FRAME);
	ck_assert_ptr_nonnull(copy);
	ck_assert_ptr_nonnull(scratch);
	memcpy(copy, b.data, b.len);

	for (i = 0; i < n; i++) {
		tcpchat_decode_ctx ctx = {.flags = cases[i].dec_flags,
		                          .max_frame = MAX_FRAME,
		                          .scratch = scratch,
		                          .scratch_len = MAX_FRAME};
		tcpchat_msg m;
		long rc;

		memset(&m, 0, sizeof(m));
		rc = c->decode(NULL, copy + off, b.len - off, &m, &ctx);
		ck_assert_msg(rc == (long)(ends[i] - off),
		              "%s/%s: frame %zu consumed %ld, want %zu",
		              c->name, cases[i].what, i, rc, ends[i] - off);
		cu_check_msg(cases[i].what, &m, &cases[i].want);
		off += (size_t)rc;
	}
	ck_assert_uint_eq(off, b.len);
	free(copy);
	free(scratch);
	free(ends);
	tcpchat_buf_free(&b);
}
END_TEST

START_TEST(test_byte_at_a_time)
{
	const tcpchat_codec *c = cu_codec(_i);
	size_t i, n, k;
	const struct rt *cases = get_cases(_i, &n);

	for (i = 0; i < n; i++) {
		const struct rt *r = &cases[i];
		tcpchat_buf b = {0};
		struct cu_dec d;

		encode_ok(c, r, &b);
		for (k = 0; k < b.len; k++) {
			size_t want_need;

			cu_dec_run(&d, c, b.data, k, r->dec_flags, MAX_FRAME);
			ck_assert_msg(d.rc == 0,
			              "%s/%s: prefix %zu of %zu gave %ld",
			              c->name, r->what, k, b.len, d.rc);
			/* binary knows the whole size once the length
			 * prefix is in; the line codecs one more byte */
			if (_i != C_BINARY)
				want_need = k + 1;
			else
				want_need = k < 4 ? 4 : b.len;
			ck_assert_msg(d.ctx.need == want_need,
			              "%s/%s: prefix %zu of %zu: need %zu, "
			              "want %zu",
			              c->name, r->what, k, b.len, d.ctx.need,
			              want_need);
			cu_dec_free(&d);
		}
		cu_dec_run(&d, c, b.data, b.len, r->dec_flags, MAX_FRAME);
		ck_assert_int_eq(d.rc, (long)b.len);
		cu_check_msg(r->what, &d.msg, &r->want);
		cu_dec_free(&d);
		tcpchat_buf_free(&b);
	}
}
END_TEST

/* ---- tests: hostile input --------------------------------------------- */

enum { X_PROTO, X_SIZE, X_MORE, X_SKIP, X_OK };

struct hostile {
	int codec;
	unsigned flags;
	const char *data;
	size_t len;
	size_t pad; /* this many padc bytes come before data */
	char padc;
	size_t max_frame; /* 0: MAX_FRAME */
	int expect;
	long used;     /* X_OK/X_SKIP: bytes consumed; 0: all */
	uint32_t type; /* X_OK: the type expected; 0: any */
	const char *what;
};

#define H(c, f, lit, x, w)                                                     \
	{                                                                      \
		.codec = (c), .flags = (f), LIT(lit), .expect = (x),           \
		.what = (w)                                                    \
	}
#define HB(lit, x, w) H(C_BINARY, 0, lit, x, w)
#define HL(f, lit, x, w) H(C_LINE, f, lit, x, w)
#define HJ(lit, x, w) H(C_JSON, 0, lit, x, w)

/* Binary frames: 4-byte length, then version, type, flags, id, ts, code. */
#define Z4 "\0\0\0\0"
#define Z8 Z4 Z4
#define HDR(ver, type) ver type "\0\0" Z8 Z8 Z4
#define TEXT_HDR HDR("\x01", "\x03")

/* JSON arrays nested 16 deep */
#define OPEN16 "[[[[[[[[[[[[[[[["
#define CLOSE16 "]]]]]]]]]]]]]]]]"

static const struct hostile hostile[] = {
        /* ---- binary ---- */
        HB("", X_MORE, "empty input"),
        HB("\0\0\0", X_MORE, "3 bytes of the length"),
        HB("\0\0\0\x18"
           "\x01\x03\0\0",
           X_MORE, "truncated header"),
        HB("\0\0\0\x19" TEXT_HDR, X_MORE, "truncated field"),
        HB("\0\0\0\0", X_PROTO, "length 0"),
        HB("\0\0\0\x17"
           "\x01\x03\0\0" Z8 Z8 "\0\0\0",
           X_PROTO, "length 23"),
        HB("\xff\xff\xff\xff", X_SIZE, "length 4 GiB, known at once"),
        HB("\0\0\xff\xfd", X_SIZE, "frame of max_frame + 1"),
        HB("\0\0\0\x18" HDR("\x00", "\x03"), X_PROTO, "version 0"),
        HB("\0\0\0\x18" HDR("\x02", "\x03"), X_PROTO, "version 2"),
        HB("\0\0\0\x18" HDR("\xff", "\x03"), X_PROTO, "version 255"),
        HB("\0\0\0\x18" HDR("\x01", "\x00"), X_PROTO, "type 0"),
        {.codec = C_BINARY,
         LIT("\0\0\0\x18" HDR("\x01", "\x0a")),
         .expect = X_OK,
         .type = 10,
         .what = "type 10 (topic) decodes"},
        {.codec = C_BINARY,
         LIT("\0\0\0\x18" HDR("\x01", "\xff")),
         .expect = X_OK,
         .type = 255,
         .what = "type 255 (unknown) decodes"},
        HB("\0\0\0\x21" TEXT_HDR "\x10\0\0\0\x08"
           "\0\0\0\0",
           X_PROTO, "caps overruns the frame"),
        HB("\0\0\0\x24" TEXT_HDR "\x10\0\0\0\x07"
           "\0\0\0\0\0\0\x01",
           X_PROTO, "caps of 7 bytes"),
        HB("\0\0\0\x26" TEXT_HDR "\x11\0\0\0\x09"
           "\0\0\0\0\0\0\0\0\x01",
           X_PROTO, "max_frame of 9 bytes"),
        HB("\0\0\0\x1d" TEXT_HDR "\x15\0\0\0\0", X_PROTO, "epoch of 0 bytes"),
        HB("\0\0\0\x1d" TEXT_HDR "\x12\0\0\0\0", X_PROTO,
           "queue_frames of 0 bytes"),
        HB("\0\0\0\x1d" TEXT_HDR "\x13\0\0\0\0", X_PROTO,
           "queue_bytes of 0 bytes"),
        HB("\0\0\0\x1d" TEXT_HDR "\x14\0\0\0\0", X_PROTO, "seq of 0 bytes"),
        HB("\0\0\0\x32" TEXT_HDR "\x14\0\0\0\x08"
           "\0\0\0\0\0\0\0\x01"
           "\x14\0\0\0\x08"
           "\0\0\0\0\0\0\0\x01",
           X_PROTO, "seq twice"),
        HB("\0\0\0\x37" TEXT_HDR "\x10\0\0\0\x08"
           "\0\0\0\0\0\0\0\x01"
           "\x16\0\0\0\0"
           "\x10\0\0\0\x08"
           "\0\0\0\0\0\0\0\0",
           X_PROTO, "caps twice, unknown between"),
        HB("\0\0\0\x23" TEXT_HDR "\x05\0\0\0\x01"
           "a"
           "\x05\0\0\0\0",
           X_PROTO, "ref twice"),
        HB("\0\0\0\x22" TEXT_HDR "\x06\0\0\0\0"
           "\x06\0\0\0\0",
           X_PROTO, "empty cursor twice"),
        HB("\0\0\0\x20" TEXT_HDR "\x06\0\0\0\x04"
           "abc",
           X_PROTO, "cursor overruns the frame"),
        HB("\0\0\0\x1a" TEXT_HDR "\x02\x00", X_PROTO, "truncated field header"),
        HB("\0\0\0\x1c" TEXT_HDR "\x02\0\0\0", X_PROTO,
           "field header one byte short"),
        HB("\0\0\0\x20" TEXT_HDR "\x02\0\0\0\x04"
           "abc",
           X_PROTO, "field overruns the frame by one"),
        HB("\0\0\0\x20" TEXT_HDR "\x02\xff\xff\xff\xff"
           "abc",
           X_PROTO, "field length 4 GiB"),
        HB("\0\0\0\x20" TEXT_HDR "\x63\0\0\0\x04"
           "abc",
           X_PROTO, "unknown field overruns the frame"),
        HB("\0\0\0\x26" TEXT_HDR "\x02\0\0\0\x02"
           "hi"
           "\x02\0\0\0\x02"
           "yo",
           X_PROTO, "body twice"),
        HB("\0\0\0\x2a" TEXT_HDR "\x01\0\0\0\x01"
           "a"
           "\x09\0\0\0\x01"
           "z"
           "\x01\0\0\0\x01"
           "b",
           X_PROTO, "sender twice, unknown between"),
        HB("\0\0\0\x22" TEXT_HDR "\x04\0\0\0\0"
           "\x04\0\0\0\0",
           X_PROTO, "empty target twice"),
        HB("\0\0\0\x1d" TEXT_HDR "\x02\0\0\0\x01", X_PROTO,
           "field of 1 byte with none left"),
        HB("\0\0\0\x17", X_PROTO, "length 23, known at once"),
        HB("GET / HTTP/1.1\r\n", X_SIZE, "HTTP request"),
        HB("{\"type\":\"ping\"}\n", X_SIZE, "JSON line"),
        {.codec = C_BINARY,
         LIT("\0\0\0\x1d" TEXT_HDR "\x02\0\0\0\0"),
         .max_frame = 32,
         .expect = X_SIZE,
         .what = "frame over a small limit"},
        {.codec = C_BINARY,
         LIT("\0\0\0\x1d" TEXT_HDR "\x02\0\0\0\0"),
         .max_frame = 33,
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "frame of exactly a small limit"},
        {.codec = C_BINARY,
         LIT("\0\0\0\x18" TEXT_HDR "\0\0\0\x18"),
         .expect = X_OK,
         .used = 28,
         .type = TCPCHAT_MSG_TEXT,
         .what = "minimal frame, then more"},
        {.codec = C_BINARY,
         LIT("\0\0\0\x20" TEXT_HDR "\x02\0\0\0\x03"
             "\xff\0\xc0"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "invalid UTF-8 and NUL pass through (checked later)"},
        {.codec = C_BINARY,
         LIT("\0\0\0\x30" TEXT_HDR "\x07\0\0\0\x01"
             "x"
             "\x0f\0\0\0\0"
             "\x26\0\0\0\x03"
             "abc"
             "\x07\0\0\0\0"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "unknown tags 7, 15, 38 skipped, may repeat"},
        {.codec = C_BINARY,
         LIT("\0\0\0\x18" HDR("\x01", "\x08")),
         .flags = SRV | HSK,
         .expect = X_OK,
         .type = TCPCHAT_MSG_PONG,
         .what = "direction flags are ignored"},

        /* ---- line ---- */
        HL(0, "", X_MORE, "empty input"),
        HL(0, "no newline yet", X_MORE, "no newline"),
        HL(0, "\r", X_MORE, "lone CR"),
        {.codec = C_LINE,
         LIT(""),
         .pad = MAX_FRAME,
         .padc = 'a',
         .expect = X_SIZE,
         .what = "max_frame bytes, no newline"},
        {.codec = C_LINE,
         LIT(""),
         .pad = MAX_FRAME - 1,
         .padc = 'a',
         .expect = X_MORE,
         .what = "max_frame - 1 bytes, no newline"},
        {.codec = C_LINE,
         LIT("\n"),
         .pad = MAX_FRAME,
         .padc = 'a',
         .expect = X_SIZE,
         .what = "overlong line"},
        {.codec = C_LINE,
         LIT("\n"),
         .pad = MAX_FRAME - 1,
         .padc = 'a',
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "line of exactly max_frame with its newline"},
        {.codec = C_LINE,
         LIT("x\n"),
         .max_frame = 4,
         .pad = 4,
         .padc = 'a',
         .expect = X_SIZE,
         .what = "newline after the limit"},
        HL(0, "\n", X_SKIP, "empty line"),
        HL(0, "\r\n", X_SKIP, "empty CRLF line"),
        HL(HSK, "\n", X_SKIP, "handshake: empty line"),
        HL(HSK, "  \t \r\n", X_SKIP, "handshake: blank line"),
        {.codec = C_LINE,
         LIT("hi\nthere\n"),
         .expect = X_OK,
         .used = 3,
         .type = TCPCHAT_MSG_TEXT,
         .what = "only the first line"},
        {.codec = C_LINE,
         LIT("/quit \n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "/quit with a space is text"},
        {.codec = C_LINE,
         LIT("/nick bob\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_UNKNOWN,
         .what = "unknown command"},
        {.codec = C_LINE,
         LIT("/QUIT\r\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_UNKNOWN,
         .what = "commands are case-sensitive"},
        {.codec = C_LINE,
         LIT("/ping now\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "known command with more is text"},
        {.codec = C_LINE,
         LIT("/usr/bin is a path\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "no blank after the word: text"},
        {.codec = C_LINE,
         LIT("/ x\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "no command word: text"},
        {.codec = C_LINE,
         LIT("/\xc3\xa9t\xc3\xa9\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "non-ASCII word: text"},
        {.codec = C_LINE,
         .flags = HSK,
         LIT("/frob\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_HELLO,
         .what = "handshake: a command-like name is the hello"},
        {.codec = C_LINE,
         LIT("a\0b\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "NUL passes through (checked later)"},
        {.codec = C_LINE,
         LIT("\xff\xc0\x80\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "invalid UTF-8 passes through (checked later)"},
        {.codec = C_LINE,
         LIT("/ping\r\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_PING,
         .what = "CRLF command"},
        {.codec = C_LINE,
         LIT("/ping\r\r\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "only one CR is stripped"},
        {.codec = C_LINE,
         .flags = SRV,
         LIT("/pong\r\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_PONG,
         .what = "s: CRLF pong"},
        {.codec = C_LINE,
         .flags = SRV,
         LIT("*** \n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "s: empty notice"},
        {.codec = C_LINE,
         .flags = SRV,
         LIT("a\0b: c\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "s: NUL in sender"},
        {.codec = C_LINE,
         .flags = SRV,
         LIT("<-- bob left (frobbed)\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_LEAVE,
         .what = "s: unknown reason word"},
        HL(SRV, "\n", X_PROTO, "s: empty line"),
        HL(SRV, "\0\n", X_PROTO, "s: NUL"),
        HL(SRV, "hello world\n", X_PROTO, "s: plain text"),
        HL(SRV, ": x\n", X_PROTO, "s: colon at index 0"),
        HL(SRV, "alice:\n", X_PROTO, "s: no space after the colon"),
        HL(SRV, "alice:hi there\n", X_PROTO, "s: colon not before the space"),
        HL(SRV, "--> bob\n", X_PROTO, "s: join without 'joined'"),
        HL(SRV, "--> bobjoined\n", X_PROTO, "s: join without space"),
        HL(SRV, "<-- bob\n", X_PROTO, "s: leave without reason"),
        HL(SRV, "<-- bob left (quit\n", X_PROTO, "s: leave without ')'"),
        HL(SRV, "<-- bob left quit)\n", X_PROTO, "s: leave without '('"),
        HL(SRV, "=== welcome\n", X_PROTO, "s: welcome without space"),
        HL(SRV, "=== hello bob\n", X_PROTO, "s: unknown === line"),
        HL(SRV, "-!- error\n", X_PROTO, "s: error without code"),
        HL(SRV, "-!- error x: y\n", X_PROTO, "s: error code not a number"),
        HL(SRV, "-!- error 4294967296: y\n", X_PROTO, "s: error code overflow"),
        HL(SRV, "-!- error 5:y\n", X_PROTO, "s: error without ': '"),
        HL(SRV, "-!- error 5 y\n", X_PROTO, "s: error junk after code"),
        HL(SRV, "/ping extra\n", X_PROTO, "s: ping with junk"),
        HL(SRV, "/quit\n", X_PROTO, "s: client command"),
        HL(SRV, "/frobnicate x\n", X_PROTO, "s: unknown command"),
        HL(SRV, "***notice\n", X_PROTO, "s: notice without space"),

        /* ---- json ---- */
        HJ("", X_MORE, "empty input"),
        HJ("{\"type\":\"ping\"}", X_MORE, "no newline yet"),
        {.codec = C_JSON,
         LIT(""),
         .pad = MAX_FRAME,
         .padc = ' ',
         .expect = X_SIZE,
         .what = "max_frame bytes, no newline"},
        {.codec = C_JSON,
         LIT("{\"type\":\"ping\"}\n"),
         .pad = MAX_FRAME - 16,
         .padc = ' ',
         .expect = X_OK,
         .type = TCPCHAT_MSG_PING,
         .what = "line of exactly max_frame"},
        {.codec = C_JSON,
         LIT("{\"type\":\"ping\"}\n"),
         .pad = MAX_FRAME - 15,
         .padc = ' ',
         .expect = X_SIZE,
         .what = "line one byte over max_frame"},
        HJ("\n", X_SKIP, "empty line"),
        HJ(" \t\r \n", X_SKIP, "blank line"),
        {.codec = C_JSON,
         LIT("{\"type\":\"ping\"}\n{\"type\":"),
         .expect = X_OK,
         .used = 16,
         .type = TCPCHAT_MSG_PING,
         .what = "only the first line"},
        {.codec = C_JSON,
         LIT(" {\"type\" : \"pong\" , \"id\" :\t7 }\r\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_PONG,
         .what = "whitespace around tokens"},
        {.codec = C_JSON,
         LIT("{\"\\u0074ype\":\"t\\u0065xt\"}\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "escaped key"},
        {.codec = C_JSON,
         LIT("{\"x\":[1.5e+10,-0.25E-3,0,-0,true,false,null,\"s\\n\",{}],"
             "\"y\":{\"type\":1,\"type\":2},\"type\":\"join\",\"z\":{}}\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_JOIN,
         .what = "unknown keys with any value"},
        {.codec = C_JSON,
         LIT("{\"x\":" OPEN16 CLOSE16 ",\"type\":\"text\"}\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "nesting of 16"},
        HJ("{\"x\":" OPEN16 "[]" CLOSE16 ",\"type\":\"text\"}\n", X_PROTO,
           "nesting of 17"),
        HJ("{\"x\":" OPEN16 OPEN16 OPEN16 OPEN16, X_MORE, "deep, no newline"),
        HJ("{\"x\":" OPEN16 OPEN16 OPEN16 OPEN16 "\n", X_PROTO,
           "deep and truncated"),
        {.codec = C_JSON,
         LIT("{\"type\":\"text\",\"body\":\"a\\u0000b\"}\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "escaped NUL"},
        HJ("{}\n", X_PROTO, "empty object"),
        HJ("{\"id\":1}\n", X_PROTO, "missing type"),
        {.codec = C_JSON,
         LIT("{\"type\":\"nope\",\"body\":\"x\"}\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_UNKNOWN,
         .what = "unknown type name"},
        {.codec = C_JSON,
         LIT("{\"type\":\"Text\"}\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_UNKNOWN,
         .what = "type names are case-sensitive"},
        {.codec = C_JSON,
         LIT("{\"type\":\"\\u0074ext\"}\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "escaped type name"},
        {.codec = C_JSON,
         LIT("{\"type\":3}\n"),
         .expect = X_OK,
         .type = TCPCHAT_MSG_TEXT,
         .what = "type as a number"},
        {.codec = C_JSON,
         LIT("{\"type\" : 200 }\n"),
         .expect = X_OK,
         .type = 200,
         .what = "unknown type as a number"},
        {.codec = C_JSON,
         LIT("{\"type\":255}\n"),
         .expect = X_OK,
         .type = 255,
         .what = "type 255"},
        HJ("{\"type\":\"\"}\n", X_PROTO, "empty type"),
        HJ("{\"type\":0}\n", X_PROTO, "type 0"),
        HJ("{\"type\":256}\n", X_PROTO, "type 256"),
        HJ("{\"type\":65536}\n", X_PROTO, "type 65536 (MSG_UNKNOWN)"),
        HJ("{\"type\":-3}\n", X_PROTO, "negative type"),
        HJ("{\"type\":3.0}\n", X_PROTO, "fractional type"),
        HJ("{\"type\":03}\n", X_PROTO, "type with leading zero"),
        HJ("{\"type\":\"3\",\"type\":3}\n", X_PROTO,
           "type twice, string and number"),
        HJ("{\"type\":null}\n", X_PROTO, "type is null"),
        HJ("{\"type\":true}\n", X_PROTO, "type is true"),
        HJ("{\"type\":[3]}\n", X_PROTO, "type is an array"),
        HJ("{\"type\":\"text\",\"flags\":4294967296}\n", X_PROTO, "flags 2^32"),
        HJ("{\"type\":\"text\",\"flags\":-1}\n", X_PROTO, "negative flags"),
        HJ("{\"type\":\"text\",\"caps\":18446744073709551616}\n", X_PROTO,
           "caps 2^64"),
        HJ("{\"type\":\"text\",\"max_frame\":1e3}\n", X_PROTO,
           "max_frame with exponent"),
        HJ("{\"type\":\"text\",\"queue_frames\":\"1\"}\n", X_PROTO,
           "queue_frames is a string"),
        HJ("{\"type\":\"text\",\"queue_bytes\":1.5}\n", X_PROTO,
           "fractional queue_bytes"),
        HJ("{\"type\":\"text\",\"seq\":-0}\n", X_PROTO, "negative seq"),
        HJ("{\"type\":\"text\",\"epoch\":null}\n", X_PROTO, "epoch is null"),
        HJ("{\"type\":\"text\",\"ref\":1}\n", X_PROTO, "ref is a number"),
        HJ("{\"type\":\"text\",\"cursor\":\"\xff\"}\n", X_PROTO,
           "invalid UTF-8 in cursor"),
        HJ("{\"type\":\"text\",\"flags\":1,\"flags\":1}\n", X_PROTO,
           "flags twice"),
        HJ("{\"type\":\"text\",\"ref\":\"a\",\"ref\":\"a\"}\n", X_PROTO,
           "ref twice"),
        HJ("{\"epoch\":1,\"type\":\"text\",\"epoch\":2}\n", X_PROTO,
           "epoch twice"),
        HJ("{\"type\":\"text\",\"type\":\"text\"}\n", X_PROTO, "type twice"),
        HJ("{\"type\":\"text\",\"body\":\"a\",\"body\":\"b\"}\n", X_PROTO,
           "body twice"),
        HJ("{\"type\":\"text\",\"id\":1,\"id\":1}\n", X_PROTO, "id twice"),
        HJ("{\"type\":\"text\"} x\n", X_PROTO, "trailing garbage"),
        HJ("{\"type\":\"text\"}{}\n", X_PROTO, "two objects"),
        HJ("{\"type\":\"text\"}\0\n", X_PROTO, "NUL after the object"),
        HJ("\0{\"type\":\"text\"}\n", X_PROTO, "NUL before the object"),
        HJ("[{\"type\":\"text\"}]\n", X_PROTO, "array"),
        HJ("\"text\"\n", X_PROTO, "string"),
        HJ("{\"type\":\"text\"\n", X_PROTO, "unterminated object"),
        HJ("{\"type\":\"te\n", X_PROTO, "unterminated string"),
        HJ("{\"type\":\"text\\\n", X_PROTO, "unterminated escape"),
        HJ("{\"type\" \"text\"}\n", X_PROTO, "missing ':'"),
        HJ("{\"type\":\"text\" \"id\":1}\n", X_PROTO, "missing ','"),
        HJ("{\"type\":\"text\",}\n", X_PROTO, "trailing comma"),
        HJ("{,\"type\":\"text\"}\n", X_PROTO, "leading comma"),
        HJ("{type:\"text\"}\n", X_PROTO, "bare key"),
        HJ("{'type':'text'}\n", X_PROTO, "single quotes"),
        HJ("{\"type\":\"text\",\"body\":\"\xff\"}\n", X_PROTO, "invalid UTF-8"),
        HJ("{\"type\":\"text\",\"body\":\"\xc0\xaf\"}\n", X_PROTO,
           "overlong UTF-8"),
        HJ("{\"type\":\"text\",\"body\":\"\xed\xa0\x80\"}\n", X_PROTO,
           "raw surrogate"),
        HJ("{\"type\":\"text\",\"body\":\"\xe2\x82\"}\n", X_PROTO,
           "truncated UTF-8"),
        HJ("{\"\xff\":1,\"type\":\"text\"}\n", X_PROTO, "invalid UTF-8 in key"),
        HJ("{\"type\":\"text\",\"x\":\"\xf8\x88\x80\x80\x80\"}\n", X_PROTO,
           "invalid UTF-8 in unknown key"),
        HJ("{\"type\":\"text\",\"body\":\"a\x01"
           "b\"}\n",
           X_PROTO, "raw control byte"),
        HJ("{\"type\":\"text\",\"body\":\"a\tb\"}\n", X_PROTO, "raw tab"),
        HJ("{\"type\":\"text\",\"body\":\"a\0b\"}\n", X_PROTO, "raw NUL"),
        HJ("{\"type\":\"text\",\"body\":\"\\x41\"}\n", X_PROTO,
           "bad escape \\x"),
        HJ("{\"type\":\"text\",\"body\":\"\\'\"}\n", X_PROTO, "bad escape \\'"),
        HJ("{\"type\":\"text\",\"body\":\"\\u12\"}\n", X_PROTO,
           "truncated \\u"),
        HJ("{\"type\":\"text\",\"body\":\"\\u12G4\"}\n", X_PROTO,
           "bad hex in \\u"),
        HJ("{\"type\":\"text\",\"body\":\"\\ud800\"}\n", X_PROTO,
           "lone high surrogate"),
        HJ("{\"type\":\"text\",\"body\":\"\\ud800x\"}\n", X_PROTO,
           "high surrogate then text"),
        HJ("{\"type\":\"text\",\"body\":\"\\ud800\\u0041\"}\n", X_PROTO,
           "high surrogate then BMP"),
        HJ("{\"type\":\"text\",\"body\":\"\\ud800\\ud800\"}\n", X_PROTO,
           "two high surrogates"),
        HJ("{\"type\":\"text\",\"body\":\"\\udc00\"}\n", X_PROTO,
           "lone low surrogate"),
        HJ("{\"type\":\"text\",\"body\":\"\\udc00\\ud800\"}\n", X_PROTO,
           "mis-ordered surrogates"),
        HJ("{\"type\":\"text\",\"body\":\"\\ud800\\\"}\n", X_PROTO,
           "high surrogate then cut escape"),
        HJ("{\"type\":\"text\",\"body\":1}\n", X_PROTO, "body is a number"),
        HJ("{\"type\":\"text\",\"sender\":null}\n", X_PROTO, "sender is null"),
        HJ("{\"type\":\"text\",\"id\":18446744073709551616}\n", X_PROTO,
           "id 2^64"),
        HJ("{\"type\":\"text\",\"id\":99999999999999999999999999}\n", X_PROTO,
           "id huge"),
        HJ("{\"type\":\"text\",\"code\":4294967296}\n", X_PROTO, "code 2^32"),
        HJ("{\"type\":\"text\",\"ts\":9223372036854775808}\n", X_PROTO,
           "ts 2^63"),
        HJ("{\"type\":\"text\",\"ts\":-9223372036854775809}\n", X_PROTO,
           "ts -2^63-1"),
        HJ("{\"type\":\"text\",\"id\":-1}\n", X_PROTO, "negative id"),
        HJ("{\"type\":\"text\",\"code\":-0}\n", X_PROTO, "negative code"),
        HJ("{\"type\":\"text\",\"id\":1.5}\n", X_PROTO, "fractional id"),
        HJ("{\"type\":\"text\",\"id\":1e3}\n", X_PROTO, "id with exponent"),
        HJ("{\"type\":\"text\",\"ts\":1.0}\n", X_PROTO, "ts with fraction"),
        HJ("{\"type\":\"text\",\"id\":01}\n", X_PROTO, "id with leading zero"),
        HJ("{\"type\":\"text\",\"id\":+1}\n", X_PROTO, "id with '+'"),
        HJ("{\"type\":\"text\",\"id\":\"1\"}\n", X_PROTO, "id is a string"),
        HJ("{\"type\":\"text\",\"ts\":-}\n", X_PROTO, "bare minus"),
        HJ("{\"type\":\"text\",\"x\":01}\n", X_PROTO, "unknown: leading zero"),
        HJ("{\"type\":\"text\",\"x\":1.}\n", X_PROTO, "unknown: bad fraction"),
        HJ("{\"type\":\"text\",\"x\":1e}\n", X_PROTO, "unknown: bad exponent"),
        HJ("{\"type\":\"text\",\"x\":.5}\n", X_PROTO, "unknown: bare fraction"),
        HJ("{\"type\":\"text\",\"x\":tru}\n", X_PROTO, "unknown: bad literal"),
        HJ("{\"type\":\"text\",\"x\":nul\n", X_PROTO, "unknown: cut literal"),
        HJ("{\"type\":\"text\",\"x\":[1,]}\n", X_PROTO, "unknown: bad array"),
        HJ("{\"type\":\"text\",\"x\":[1 2]}\n", X_PROTO,
           "unknown: array without ','"),
        HJ("{\"type\":\"text\",\"x\":{1:2}}\n", X_PROTO,
           "unknown: object with number key"),
        HJ("{\"type\":\"text\",\"x\":{\"a\" 2}}\n", X_PROTO,
           "unknown: object without ':'"),
        HJ("{\"type\":\"text\",\"x\":}\n", X_PROTO, "unknown: missing value"),
        HJ("{\"type\":\"text\",\"x\":[}\n", X_PROTO, "unknown: mismatched"),
};

START_TEST(test_hostile)
{
	const struct hostile *h = &hostile[_i];
	const tcpchat_codec *c = cu_codec(h->codec);
	size_t max = h->max_frame ? h->max_frame : MAX_FRAME;
	size_t len = h->pad + h->len;
	char *in = malloc(len ? len : 1);
	struct cu_dec d;

	ck_assert_ptr_nonnull(in);
	memset(in, h->padc, h->pad);
	memcpy(in + h->pad, h->data, h->len);
	cu_dec_run(&d, c, in, len, h->flags, max);

	switch (h->expect) {
	case X_PROTO:
	case X_SIZE:
		ck_assert_msg(d.rc == (h->expect == X_PROTO ? TCPCHAT_EPROTO
		                                            : TCPCHAT_EMSGSIZE),
		              "%s/%s: got %ld, want %s", c->name, h->what, d.rc,
		              h->expect == X_PROTO ? "EPROTO" : "EMSGSIZE");
		ck_assert_msg(d.ctx.error != NULL && d.ctx.error[0] != '\0',
		              "%s/%s: no error text", c->name, h->what);
		break;
	case X_MORE:
		ck_assert_msg(d.rc == 0, "%s/%s: got %ld, want 0", c->name,
		              h->what, d.rc);
		ck_assert_msg(d.ctx.need > len && d.ctx.need <= max,
		              "%s/%s: need %zu with %zu bytes", c->name,
		              h->what, d.ctx.need, len);
		break;
	case X_SKIP:
	case X_OK:
		ck_assert_msg(d.rc == (h->used ? h->used : (long)len),
		              "%s/%s: got %ld (%s), want %ld", c->name, h->what,
		              d.rc, d.ctx.error ? d.ctx.error : "-",
		              h->used ? h->used : (long)len);
		ck_assert_ptr_null(d.ctx.error);
		if (h->expect == X_SKIP)
			ck_assert_msg(d.msg.type == 0, "%s/%s: type %u",
			              c->name, h->what, (unsigned)d.msg.type);
		else if (h->type)
			ck_assert_msg(d.msg.type == h->type,
			              "%s/%s: type %u, want %u", c->name,
			              h->what, (unsigned)d.msg.type,
			              (unsigned)h->type);
		else
			ck_assert_uint_ne(d.msg.type, 0);
		break;
	}
	cu_dec_free(&d);
	free(in);
}
END_TEST

START_TEST(test_hostile_counts)
{
	int per[C_COUNT] = {0};
	size_t i;

	for (i = 0; i < ARRAY_LEN(hostile); i++)
		if (hostile[i].expect == X_PROTO ||
		    hostile[i].expect == X_SIZE || hostile[i].expect == X_SKIP)
			per[hostile[i].codec]++;
	for (i = 0; i < C_COUNT; i++)
		ck_assert_msg(per[i] >= 20, "%s: only %d hostile cases",
		              cu_codec((int)i)->name, per[i]);
}
END_TEST

/* ---- tests: encode errors --------------------------------------------- */

struct bad_enc {
	int codec;
	unsigned flags;
	tcpchat_msg msg;
	const char *what;
};

static const struct bad_enc bad_enc[] = {
        {C_BINARY, 0, MSG(.type = 0), "binary type 0"},
        {C_BINARY, 0, MSG(.type = 256), "binary type 256"},
        {C_BINARY, 0, MSG(.type = TCPCHAT_MSG_UNKNOWN), "binary MSG_UNKNOWN"},
        {C_BINARY, 0, MSG(.type = TCPCHAT_MSG_ERROR, .flags = 0x10000),
         "binary flags over 16 bits"},
        {C_BINARY, 0, MSG(.type = 3, .ref = {NULL, 1}), "binary NULL ref"},
        {C_BINARY, 0, MSG(.type = 3, .cursor = {NULL, 1}),
         "binary NULL cursor"},
        {C_BINARY, 0, MSG(.type = UINT32_MAX), "binary type max"},
        {C_BINARY, 0, MSG(.type = 3, .body = {NULL, 3}), "binary NULL string"},
        {C_JSON, 0, MSG(.type = 0), "json type 0"},
        {C_JSON, 0, MSG(.type = 256), "json type 256"},
        {C_JSON, 0, MSG(.type = TCPCHAT_MSG_UNKNOWN), "json MSG_UNKNOWN"},
        {C_JSON, 0, MSG(.type = 3, .ref = {NULL, 1}), "json NULL ref"},
        {C_JSON, 0, MSG(.type = 3, .cursor = {NULL, 2}), "json NULL cursor"},
        {C_JSON, 0, MSG(.type = UINT32_MAX), "json type max"},
        {C_JSON, 0, MSG(.type = 3, .room = {NULL, 1}), "json NULL string"},
        {C_LINE, 0, MSG(.type = 0), "line type 0"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_WELCOME), "line c: welcome"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_JOIN), "line c: join"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_ERROR), "line c: error"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_TYPE_MAX + 1),
         "line c: unknown type"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_UNKNOWN, .body = S("/nick bob")),
         "line c: MSG_UNKNOWN"},
        {C_LINE, 0,
         MSG(.type = TCPCHAT_MSG_HELLO, .sender = S("bob smith"),
             .body = S("pw")),
         "line c: hello with a credential, a blank in the name"},
        {C_LINE, 0,
         MSG(.type = TCPCHAT_MSG_HELLO, .sender = S("bob"), .body = S(" pw")),
         "line c: hello, a credential starting with a blank"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_HELLO, .body = S("pw")),
         "line c: hello, a credential without a name"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_UNKNOWN, .body = S("x")),
         "line s: MSG_UNKNOWN"},
        {C_LINE, TCPCHAT_FROM_SERVER, MSG(.type = TCPCHAT_MSG_HELLO),
         "line s: hello"},
        {C_LINE, TCPCHAT_FROM_SERVER, MSG(.type = 0), "line s: type 0"},
        {C_LINE, TCPCHAT_FROM_SERVER, MSG(.type = TCPCHAT_MSG_TYPE_MAX + 1),
         "line s: unknown type"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_TEXT, .body = {NULL, 2}),
         "line s: NULL string"},
};

START_TEST(test_encode_einval)
{
	const struct bad_enc *e = &bad_enc[_i];
	const tcpchat_codec *c = cu_codec(e->codec);
	tcpchat_buf b = {0};
	int rc;

	ck_assert_int_eq(tcpchat_buf_append(&b, "keep", 4), 0);
	rc = c->encode(c->codec_data, &e->msg, e->flags, &b);
	ck_assert_msg(rc == TCPCHAT_EINVAL, "%s: got %d", e->what, rc);
	ck_assert_uint_eq(b.len, 4);
	ck_assert_mem_eq(b.data, "keep", 4);
	tcpchat_buf_free(&b);
}
END_TEST

START_TEST(test_binary_too_big)
{
	const tcpchat_codec *c = tcpchat_codec_binary();
	tcpchat_buf b = {0};
	tcpchat_msg m;

	/* the sizes are checked before any string is read */
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.body.ptr = "x";
	m.body.len = (size_t)UINT32_MAX;
	ck_assert_int_eq(tcpchat_buf_append(&b, "keep", 4), 0);
	ck_assert_int_eq(c->encode(NULL, &m, 0, &b), TCPCHAT_EINVAL);
	m.body.len = (size_t)UINT32_MAX - 24 - 5 + 1;
	ck_assert_int_eq(c->encode(NULL, &m, 0, &b), TCPCHAT_EINVAL);
	m.body.len = (size_t)UINT32_MAX / 2;
	m.sender = m.body;
	m.room.ptr = "x";
	m.room.len = 40;
	ck_assert_int_eq(c->encode(NULL, &m, 0, &b), TCPCHAT_EINVAL);
	ck_assert_uint_eq(b.len, 4);
	ck_assert_mem_eq(b.data, "keep", 4);
	tcpchat_buf_free(&b);
}
END_TEST

/* ---- tests: exact encodings ------------------------------------------- */

START_TEST(test_binary_layout)
{
	static const unsigned char want[] = {
	        0,    0,    0,    0x26, /* L = 38 */
	        1,    3,    0,    0,    /* version, TEXT, flags */
	        0,    0,    0,    0,    0,    0,    0x01, 0x02, /* id */
	        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, /* ts -2 */
	        0,    0,    0,    7,                            /* code */
	        1,    0,    0,    0,    2,    'a',  'l',        /* sender */
	        2,    0,    0,    0,    2,    'h',  'i',        /* body */
	};
	const tcpchat_codec *c = tcpchat_codec_binary();
	tcpchat_msg m = {.type = TCPCHAT_MSG_TEXT,
	                 .code = 7,
	                 .id = 0x102,
	                 .timestamp = -2,
	                 .sender = S("al"),
	                 .body = S("hi")};
	tcpchat_buf b = {0};

	ck_assert_int_eq(c->encode(NULL, &m, 0, &b), 0);
	ck_assert_uint_eq(b.len, sizeof(want));
	ck_assert_mem_eq(b.data, want, sizeof(want));
	tcpchat_buf_free(&b);
}
END_TEST

START_TEST(test_binary_unknown_tag_and_flags)
{
	/* A protocol-1 frame: flags 0xffff; tags 0, 5 and 200, which
	 * protocol 1 did not know, around the known ones; an unknown tag may
	 * repeat.  Since codec abi 2 the flags are passed on and tag 5 is
	 * ref (here empty), so the message is the same as in protocol 1. */
	static const char frame[] = "\0\0\0\x4e"
	                            "\x01\x07\xff\xff"
	                            "\0\0\0\0\0\0\0\x09"
	                            "\0\0\0\0\0\0\0\x0a"
	                            "\0\0\0\x0b"
	                            "\x00\0\0\0\x01"
	                            "z"
	                            "\x01\0\0\0\x03"
	                            "bob"
	                            "\xc8\0\0\0\x04"
	                            "junk"
	                            "\x05\0\0\0\x00"
	                            "\x02\0\0\0\x02"
	                            "hi"
	                            "\xc8\0\0\0\x02"
	                            "jj"
	                            "\x03\0\0\0\x01"
	                            "r"
	                            "\x04\0\0\0\x01"
	                            "t";
	tcpchat_msg want = {.type = TCPCHAT_MSG_PING,
	                    .id = 9,
	                    .timestamp = 10,
	                    .code = 11,
	                    .sender = S("bob"),
	                    .body = S("hi"),
	                    .room = S("r"),
	                    .target = S("t"),
	                    .flags = 0xffff};
	struct cu_dec d;

	ck_assert_uint_eq(sizeof(frame) - 1, 4 + 0x4e);
	cu_dec_run(&d, tcpchat_codec_binary(), frame, sizeof(frame) - 1, 0,
	           MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)(sizeof(frame) - 1));
	cu_check_msg("unknown tags", &d.msg, &want);
	/* zero copy: the strings point into the input */
	ck_assert_ptr_eq(d.msg.sender.ptr, d.copy + 28 + 6 + 5);
	cu_dec_free(&d);
}
END_TEST

/* Exact frames: protocol-1 frames (with the examples of
 * tcpchat-protocol(7)) encode and decode exactly as before codec abi 2;
 * the last two are the abi-2 examples of tcpchat-protocol(7). */
static const struct {
	tcpchat_msg msg;
	const char *hex;
} hex_frames[] = {
        {MSG(.type = TCPCHAT_MSG_HELLO, .code = 1, .sender = S("alice")),
         "00 00 00 22 01 01 00 00  00 00 00 00 00 00 00 00"
         "00 00 00 00 00 00 00 00  00 00 00 01 01 00 00 00"
         "05 61 6c 69 63 65"},
        {MSG(.type = TCPCHAT_MSG_TEXT, .id = 42, .timestamp = 1700000000000,
             .sender = S("alice"), .body = S("hi")),
         "00 00 00 29 01 03 00 00  00 00 00 00 00 00 00 2a"
         "00 00 01 8b cf e5 68 00  00 00 00 00 01 00 00 00"
         "05 61 6c 69 63 65 02 00  00 00 02 68 69"},
        {MSG(.type = TCPCHAT_MSG_WHO),
         "00 00 00 18 01 09 00 00  00 00 00 00 00 00 00 00"
         "00 00 00 00 00 00 00 00  00 00 00 00"},
        {MSG(.type = TCPCHAT_MSG_ERROR, .code = 8, .timestamp = -1,
             .body = S("taken"), .room = S("r"), .target = S("t")),
         "00 00 00 2e 01 06 00 00  00 00 00 00 00 00 00 00"
         "ff ff ff ff ff ff ff ff  00 00 00 08 02 00 00 00"
         "05 74 61 6b 65 6e 03 00  00 00 01 72 04 00 00 00"
         "01 74"},
        {MSG(.type = TCPCHAT_MSG_WELCOME, .code = 1, .sender = S("alice"),
             .caps = 1, .max_frame = 65536),
         "00 00 00 3c 01 02 00 00  00 00 00 00 00 00 00 00"
         "00 00 00 00 00 00 00 00  00 00 00 01 01 00 00 00"
         "05 61 6c 69 63 65 10 00  00 00 08 00 00 00 00 00"
         "00 00 01 11 00 00 00 08  00 00 00 00 00 01 00 00"},
        {MSG(.type = TCPCHAT_MSG_ERROR, .code = 7, .body = S("idle timeout"),
             .flags = TCPCHAT_MSGF_CLOSING),
         "00 00 00 29 01 06 00 01  00 00 00 00 00 00 00 00"
         "00 00 00 00 00 00 00 00  00 00 00 07 02 00 00 00"
         "0c 69 64 6c 65 20 74 69  6d 65 6f 75 74"},
};

START_TEST(test_binary_hex_frames)
{
	const tcpchat_codec *c = tcpchat_codec_binary();
	unsigned char want[256];
	size_t n = cu_from_hex(hex_frames[_i].hex, want, sizeof(want));
	tcpchat_buf b = {0};
	struct cu_dec d;

	ck_assert_int_eq(c->encode(NULL, &hex_frames[_i].msg, 0, &b), 0);
	ck_assert_uint_eq(b.len, n);
	ck_assert_mem_eq(b.data, want, n);
	tcpchat_buf_free(&b);

	cu_dec_run(&d, c, want, n, 0, MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)n);
	cu_check_msg("hex frame", &d.msg, &hex_frames[_i].msg);
	cu_dec_free(&d);
}
END_TEST

START_TEST(test_binary_abi2_layout)
{
	static const unsigned char want[] = {
	        0,    0, 0, 0x3e, /* L = 62 */
	        1,    6, 0, 1,    /* version, ERROR, flags closing */
	        0,    0, 0, 0,    0, 0,   0, 0, /* id */
	        0,    0, 0, 0,    0, 0,   0, 0, /* ts */
	        0,    0, 0, 5,                  /* code */
	        2,    0, 0, 0,    1, 'x',       /* body */
	        5,    0, 0, 0,    1, 'r',       /* ref */
	        16,   0, 0, 0,    8,            /* caps */
	        0,    0, 0, 0,    0, 0,   0, 1, /**/
	        21,   0, 0, 0,    8,            /* epoch */
	        0x80, 0, 0, 0,    0, 0,   0, 2,
	};
	/* the same fields, in reverse order; fields need no order */
	static const unsigned char rev[] = {
	        0, 0, 0, 0x3e, 1, 6, 0, 1,  0,   0, 0, 0,  0, 0, 0,   0, 0,
	        0, 0, 0, 0,    0, 0, 0, 0,  0,   0, 5, 21, 0, 0, 0,   8, 0x80,
	        0, 0, 0, 0,    0, 0, 2, 16, 0,   0, 0, 8,  0, 0, 0,   0, 0,
	        0, 0, 1, 5,    0, 0, 0, 1,  'r', 2, 0, 0,  0, 1, 'x',
	};
	const tcpchat_codec *c = tcpchat_codec_binary();
	tcpchat_msg m = {.type = TCPCHAT_MSG_ERROR,
	                 .code = 5,
	                 .body = S("x"),
	                 .flags = TCPCHAT_MSGF_CLOSING,
	                 .ref = S("r"),
	                 .caps = 1,
	                 .epoch = UINT64_C(0x8000000000000002)};
	tcpchat_buf b = {0};
	struct cu_dec d;

	ck_assert_uint_eq(sizeof(want), sizeof(rev));
	ck_assert_int_eq(c->encode(NULL, &m, 0, &b), 0);
	ck_assert_uint_eq(b.len, sizeof(want));
	ck_assert_mem_eq(b.data, want, sizeof(want));
	tcpchat_buf_free(&b);

	cu_dec_run(&d, c, want, sizeof(want), 0, MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)sizeof(want));
	cu_check_msg("abi 2 layout", &d.msg, &m);
	cu_dec_free(&d);
	cu_dec_run(&d, c, rev, sizeof(rev), 0, MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)sizeof(rev));
	cu_check_msg("abi 2, reversed", &d.msg, &m);
	cu_dec_free(&d);
}
END_TEST

/* Each number tag refuses every length but 8; each string tag and each
 * unknown tag takes any length. */
START_TEST(test_binary_number_tags)
{
	static const unsigned char hdr[] = {1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	                                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	const tcpchat_codec *c = tcpchat_codec_binary();
	unsigned tag, n;

	for (tag = 0; tag < 256; tag++) {
		for (n = 0; n <= 16; n++) {
			unsigned char f[4 + 24 + 5 + 16];
			size_t len = 4 + 24 + 5 + n;
			int num = tag >= 16 && tag <= 24;
			struct cu_dec d;

			memset(f, 0, sizeof(f));
			f[3] = (unsigned char)(24 + 5 + n);
			memcpy(f + 4, hdr, sizeof(hdr));
			f[28] = (unsigned char)tag;
			f[32] = (unsigned char)n;
			if (n)
				f[33 + n - 1] = 0x2a;
			cu_dec_run(&d, c, f, len, 0, MAX_FRAME);
			if (num && n != 8) {
				ck_assert_msg(d.rc == TCPCHAT_EPROTO,
				              "tag %u length %u: %ld", tag, n,
				              d.rc);
				ck_assert_ptr_nonnull(d.ctx.error);
			} else {
				ck_assert_msg(d.rc == (long)len,
				              "tag %u length %u: %ld (%s)", tag,
				              n, d.rc,
				              d.ctx.error ? d.ctx.error : "-");
			}
			if (num && n == 8) {
				static const size_t off[] = {
				        offsetof(tcpchat_msg, caps),
				        offsetof(tcpchat_msg, max_frame),
				        offsetof(tcpchat_msg, queue_frames),
				        offsetof(tcpchat_msg, queue_bytes),
				        offsetof(tcpchat_msg, seq),
				        offsetof(tcpchat_msg, epoch),
				        offsetof(tcpchat_msg, first),
				        offsetof(tcpchat_msg, last),
				        offsetof(tcpchat_msg, oldest),
				};
				uint64_t v;

				memcpy(&v, (char *)&d.msg + off[tag - 16],
				       sizeof(v));
				ck_assert_msg(v == 0x2a, "tag %u: %llu", tag,
				              (unsigned long long)v);
			}
			cu_dec_free(&d);
		}
	}
}
END_TEST

START_TEST(test_json_decode_abi2)
{
	static const char in[] =
	        "{ \"epoch\" : 6, \"seq\":18446744073709551615,"
	        "\"cursor\":\"c\\u00e9\",\"ref\":\"r1\","
	        "\"queue_bytes\":4,\"queue_frames\":3,\"max_frame\":2,"
	        "\"caps\":0,\"flags\":4294967295,\"type\":\"welcome\","
	        "\"code\":1,\"future\":{\"caps\":[1,2]}}\r\n";
	tcpchat_msg want = {
	        .type = TCPCHAT_MSG_WELCOME,
	        .code = 1,
	        .flags = UINT32_MAX,
	        .max_frame = 2,
	        .queue_frames = 3,
	        .queue_bytes = 4,
	        .ref = S("r1"),
	        .cursor = S("c\xc3\xa9"),
	        .seq = UINT64_MAX,
	        .epoch = 6,
	};
	struct cu_dec d;

	cu_dec_run(&d, tcpchat_codec_json(), in, sizeof(in) - 1, 0, MAX_FRAME);
	ck_assert_msg(d.rc == (long)(sizeof(in) - 1), "got %ld (%s)", d.rc,
	              d.ctx.error ? d.ctx.error : "-");
	cu_check_msg("json abi 2", &d.msg, &want);
	ck_assert(d.msg.ref.ptr > d.copy &&
	          d.msg.ref.ptr < d.copy + sizeof(in));
	ck_assert(d.msg.cursor.ptr >= d.scratch &&
	          d.msg.cursor.ptr + d.msg.cursor.len <=
	                  d.scratch + d.ctx.scratch_len);
	cu_dec_free(&d);
}
END_TEST

/* Types the codecs do not know still decode, with all their fields. */
START_TEST(test_unknown_types)
{
	static const char json_name[] =
	        "{\"type\":\"frobnicate\",\"id\":5,\"body\":\"x\",\"seq\":2,"
	        "\"flags\":1}\n";
	static const char json_num[] =
	        "{\"seq\":2,\"type\":77,\"body\":\"x\"}\n";
	static const char bin[] = "\0\0\0\x2b"
	                          "\x01\x4d\0\x01"
	                          "\0\0\0\0\0\0\0\x05"
	                          "\0\0\0\0\0\0\0\0"
	                          "\0\0\0\0"
	                          "\x02\0\0\0\x01"
	                          "x"
	                          "\x14\0\0\0\x08"
	                          "\0\0\0\0\0\0\0\x02";
	tcpchat_msg want = {.id = 5,
	                    .body = S("x"),
	                    .seq = 2,
	                    .flags = 1,
	                    .type = TCPCHAT_MSG_UNKNOWN};
	tcpchat_buf b = {0};
	struct cu_dec d;

	cu_dec_run(&d, tcpchat_codec_json(), json_name, sizeof(json_name) - 1,
	           0, MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)(sizeof(json_name) - 1));
	cu_check_msg("json unknown name", &d.msg, &want);
	/* MSG_UNKNOWN has no number: no codec can send it */
	ck_assert_int_eq(tcpchat_codec_json()->encode(NULL, &d.msg, 0, &b),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_codec_binary()->encode(NULL, &d.msg, 0, &b),
	                 TCPCHAT_EINVAL);
	ck_assert_uint_eq(b.len, 0);
	cu_dec_free(&d);

	/* a numbered unknown type travels between binary and JSON */
	want.type = 77;
	cu_dec_run(&d, tcpchat_codec_binary(), bin, sizeof(bin) - 1, 0,
	           MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)(sizeof(bin) - 1));
	cu_check_msg("binary type 77", &d.msg, &want);
	ck_assert_int_eq(tcpchat_codec_json()->encode(NULL, &d.msg, 0, &b), 0);
	ck_assert_uint_eq(b.len, strlen("{\"type\":77,\"id\":5,\"body\":\"x\","
	                                "\"flags\":1,\"seq\":2}\n"));
	ck_assert_mem_eq(b.data,
	                 "{\"type\":77,\"id\":5,\"body\":\"x\",\"flags\":1,"
	                 "\"seq\":2}\n",
	                 b.len);
	cu_dec_free(&d);
	tcpchat_buf_free(&b);

	want.id = 0;
	want.flags = 0;
	cu_dec_run(&d, tcpchat_codec_json(), json_num, sizeof(json_num) - 1, 0,
	           MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)(sizeof(json_num) - 1));
	cu_check_msg("json type 77", &d.msg, &want);
	ck_assert_int_eq(tcpchat_codec_binary()->encode(NULL, &d.msg, 0, &b),
	                 0);
	ck_assert_uint_eq(b.len, 4 + 24 + 6 + 13);
	ck_assert_uint_eq((unsigned char)b.data[5], 77);
	tcpchat_buf_free(&b);
	cu_dec_free(&d);

	/* the line codec: an unknown command, which it cannot send */
	cu_dec_run(&d, tcpchat_codec_line(), "/frobnicate x\n", 14, 0,
	           MAX_FRAME);
	ck_assert_int_eq(d.rc, 14);
	ck_assert_uint_eq(d.msg.type, TCPCHAT_MSG_UNKNOWN);
	ck_assert(cu_str_eq(d.msg.body, (tcpchat_str)S("/frobnicate x")));
	ck_assert_int_eq(tcpchat_codec_line()->encode(NULL, &d.msg, 0, &b),
	                 TCPCHAT_EINVAL);
	ck_assert_uint_eq(b.len, 0);
	cu_dec_free(&d);
}
END_TEST

/* ctx->need on incomplete frames. */
START_TEST(test_need_values)
{
	static const struct {
		int codec;
		const char *data;
		size_t len;
		size_t max_frame;
		size_t need; /* 0: not incomplete (an error) */
	} cases[] = {
	        {C_BINARY, "", 0, MAX_FRAME, 4},
	        {C_BINARY, "\0\0", 2, MAX_FRAME, 4},
	        {C_BINARY, "\0\0\0", 3, 8, 4},
	        {C_BINARY, "\0\0\0\x18", 4, MAX_FRAME, 28},
	        {C_BINARY, "\0\0\0\x18\x01\x03", 6, MAX_FRAME, 28},
	        {C_BINARY, "\0\0\xff\xfc", 4, MAX_FRAME, MAX_FRAME},
	        {C_BINARY, "\0\0\xff\xfd", 4, MAX_FRAME, 0},
	        {C_BINARY, "\x7f\xff\xff\xff", 4, SIZE_MAX,
	         ((size_t)1 << 31) + 3},
	        {C_BINARY, "\0\0\0\x17", 4, MAX_FRAME, 0},
	        {C_LINE, "", 0, MAX_FRAME, 1},
	        {C_LINE, "abc", 3, MAX_FRAME, 4},
	        {C_LINE, "abc\r", 4, MAX_FRAME, 5},
	        {C_LINE, "abc", 3, 4, 4},
	        {C_LINE, "abcd", 4, 4, 0},
	        {C_JSON, "", 0, MAX_FRAME, 1},
	        {C_JSON, "{\"type\":", 8, MAX_FRAME, 9},
	        {C_JSON, "{\"type\":", 8, 9, 9},
	        {C_JSON, "{\"type\":", 8, 8, 0},
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		const tcpchat_codec *c = cu_codec(cases[i].codec);
		struct cu_dec d;

		cu_dec_run(&d, c, cases[i].data, cases[i].len, 0,
		           cases[i].max_frame);
		if (cases[i].need) {
			ck_assert_msg(d.rc == 0, "#%zu: %ld", i, d.rc);
			ck_assert_msg(d.ctx.need == cases[i].need,
			              "#%zu: need %zu, want %zu", i, d.ctx.need,
			              cases[i].need);
		} else {
			ck_assert_msg(d.rc < 0, "#%zu: %ld", i, d.rc);
			ck_assert_msg(d.ctx.need == 0, "#%zu: need %zu", i,
			              d.ctx.need);
		}
		cu_dec_free(&d);
	}
}
END_TEST

/* A reader that calls decode only once it has ctx->need bytes, bytes
 * arriving one at a time, decodes every frame, and calls binary at most
 * three times per frame. */
START_TEST(test_need_driven)
{
	const tcpchat_codec *c = cu_codec(_i);
	size_t i, n, have = 0, off = 0, next = 1, calls = 0, frames = 0;
	const struct rt *cases = get_cases(_i, &n);
	tcpchat_buf b = {0};
	char *scratch = malloc(MAX_FRAME);

	ck_assert_ptr_nonnull(scratch);
	for (i = 0; i < n; i++)
		encode_ok(c, &cases[i], &b);
	while (off < b.len) {
		tcpchat_decode_ctx ctx = {.flags = cases[frames].dec_flags,
		                          .max_frame = MAX_FRAME,
		                          .scratch = scratch,
		                          .scratch_len = MAX_FRAME};
		tcpchat_msg m;
		long rc;

		have++; /* one more byte has arrived */
		ck_assert_uint_le(have, b.len - off);
		if (have < next)
			continue;
		memset(&m, 0, sizeof(m));
		calls++;
		rc = c->decode(NULL, b.data + off, have, &m, &ctx);
		ck_assert_int_ge(rc, 0);
		if (rc == 0) {
			ck_assert_uint_gt(ctx.need, have);
			next = ctx.need;
			continue;
		}
		cu_check_msg(cases[frames].what, &m, &cases[frames].want);
		frames++;
		off += (size_t)rc;
		have -= (size_t)rc;
		next = 1;
		if (have) /* what is left is tried again at once */
			have--;
	}
	ck_assert_uint_eq(frames, n);
	ck_assert_uint_eq(off, b.len);
	if (_i == C_BINARY)
		ck_assert_uint_le(calls, 3 * n);
	free(scratch);
	tcpchat_buf_free(&b);
}
END_TEST

struct exact {
	int codec;
	unsigned flags;
	tcpchat_msg msg;
	const char *want;
};

static const struct exact exact[] = {
        {C_JSON, 0,
         MSG(.type = TCPCHAT_MSG_TEXT, .id = 12, .timestamp = 1700000000000,
             .code = 3, .sender = S("alice"), .body = S("hi"), .room = S("r"),
             .target = S("t")),
         "{\"type\":\"text\",\"id\":12,\"ts\":1700000000000,\"code\":3,"
         "\"sender\":\"alice\",\"body\":\"hi\",\"room\":\"r\",\"target\":\"t\"}"
         "\n"},
        {C_JSON, TCPCHAT_FROM_SERVER, MSG(.type = TCPCHAT_MSG_PING),
         "{\"type\":\"ping\"}\n"},
        {C_JSON, 0,
         MSG(.type = TCPCHAT_MSG_LEAVE, .timestamp = -5, .id = UINT64_MAX,
             .code = UINT32_MAX),
         "{\"type\":\"leave\",\"id\":18446744073709551615,\"ts\":-5,"
         "\"code\":4294967295}\n"},
        {C_JSON, 0, MSG(.type = TCPCHAT_MSG_HELLO, .timestamp = INT64_MIN),
         "{\"type\":\"hello\",\"ts\":-9223372036854775808}\n"},
        {C_JSON, 0,
         MSG(.type = TCPCHAT_MSG_ERROR,
             .body = S("\"\\\b\f\n\r\t\x01\x1f\x7f/"
                       "\xc3\xa9\xff\xc3\x28\xe2\x82")),
         "{\"type\":\"error\",\"body\":\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f"
         "\x7f/\xc3\xa9\\ufffd\\ufffd(\\ufffd\\ufffd\"}\n"},
        {C_JSON, 0,
         MSG(.type = TCPCHAT_MSG_WELCOME,
             .sender = S("\xed\xa0\x80\xf0\x9f\x98\x80")),
         "{\"type\":\"welcome\",\"sender\":\"\\ufffd\\ufffd\\ufffd"
         "\xf0\x9f\x98\x80\"}\n"},

        /* codec abi 2 */
        {C_JSON, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_ERROR, .code = 7, .body = S("idle timeout"),
             .flags = TCPCHAT_MSGF_CLOSING),
         "{\"type\":\"error\",\"code\":7,\"body\":\"idle timeout\","
         "\"flags\":1}\n"},
        {C_JSON, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_WELCOME, .code = 1, .sender = S("bob"),
             .caps = TCPCHAT_CAP_BASE, .max_frame = 65536, .queue_frames = 1024,
             .queue_bytes = 1048576),
         "{\"type\":\"welcome\",\"code\":1,\"sender\":\"bob\",\"caps\":1,"
         "\"max_frame\":65536,\"queue_frames\":1024,"
         "\"queue_bytes\":1048576}\n"},
        {C_JSON, 0,
         MSG(.type = TCPCHAT_MSG_TEXT, .id = 1, .body = S("hi"),
             .target = S("t"), .flags = UINT32_MAX, .caps = UINT64_MAX,
             .max_frame = 2, .queue_frames = 3, .queue_bytes = 4,
             .ref = S("r\"\n"), .cursor = S("c"), .seq = 5, .epoch = 6),
         "{\"type\":\"text\",\"id\":1,\"body\":\"hi\",\"target\":\"t\","
         "\"flags\":4294967295,\"caps\":18446744073709551615,"
         "\"max_frame\":2,\"queue_frames\":3,\"queue_bytes\":4,"
         "\"ref\":\"r\\\"\\n\",\"cursor\":\"c\",\"seq\":5,\"epoch\":6}\n"},
        {C_JSON, 0, MSG(.type = TCPCHAT_MSG_TYPE_MAX + 1), "{\"type\":15}\n"},
        {C_JSON, 0, MSG(.type = 200, .code = 1, .sender = S("a"), .seq = 9),
         "{\"type\":200,\"code\":1,\"sender\":\"a\",\"seq\":9}\n"},
        {C_JSON, 0, MSG(.type = 255), "{\"type\":255}\n"},
        {C_LINE, 0,
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("hi"), .flags = 1, .caps = 1,
             .ref = S("r"), .seq = 3),
         "hi\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_ERROR, .code = 7, .body = S("idle timeout"),
             .flags = TCPCHAT_MSGF_CLOSING),
         "-!- error 7: idle timeout\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_WELCOME, .code = 1, .sender = S("bob"),
             .caps = 1, .max_frame = 65536),
         "=== welcome bob\n"},

        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_HELLO, .sender = S("alice")),
         "alice\n"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_TEXT, .body = S("hi")), "hi\n"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/me")), "//me\n"},
        {C_LINE, 0,
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("a\tb\x01\x7f\r\n")),
         "a\tb????\n"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_LEAVE, .code = 5, .body = S("x")),
         "/quit\n"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_PING), "/ping\n"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_PONG), "/pong\n"},
        {C_LINE, 0, MSG(.type = TCPCHAT_MSG_WHO), "/who\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_WHO, .code = 2, .body = S("alice bob")),
         "=== 2 online: alice bob\n"},
        {C_LINE, TCPCHAT_FROM_SERVER, MSG(.type = TCPCHAT_MSG_WHO),
         "=== 0 online\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_TEXT, .id = 5, .timestamp = 7,
             .sender = S("alice"), .body = S("hi")),
         "alice: hi\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("notice")), "*** notice\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_JOIN, .sender = S("bob")), "--> bob joined\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 3, .sender = S("bob")),
         "<-- bob left (timeout)\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 1, .sender = S("bob"),
             .body = S("bye")),
         "<-- bob left (quit: bye)\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = 99, .sender = S("bob")),
         "<-- bob left (unknown)\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_WELCOME, .code = 1, .sender = S("bob")),
         "=== welcome bob\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_ERROR, .code = 8, .body = S("name taken")),
         "-!- error 8: name taken\n"},
        {C_LINE, TCPCHAT_FROM_SERVER, MSG(.type = TCPCHAT_MSG_PING), "/ping\n"},
        {C_LINE, TCPCHAT_FROM_SERVER, MSG(.type = TCPCHAT_MSG_PONG), "/pong\n"},
        {C_LINE, TCPCHAT_FROM_SERVER,
         MSG(.type = TCPCHAT_MSG_TEXT, .sender = S("ev\nil"),
             .body = S("x\r\n--> y joined")),
         "ev?il: x??"
         "--> y joined\n"},
};

START_TEST(test_exact_encoding)
{
	const struct exact *e = &exact[_i];
	const tcpchat_codec *c = cu_codec(e->codec);
	tcpchat_buf b = {0};
	size_t n = strlen(e->want);

	ck_assert_int_eq(c->encode(NULL, &e->msg, e->flags, &b), 0);
	ck_assert_msg(b.len == n && memcmp(b.data, e->want, n) == 0,
	              "%s #%d: got \"%.*s\", want \"%s\"", c->name, _i,
	              (int)b.len, b.data, e->want);
	tcpchat_buf_free(&b);
}
END_TEST

/* ---- tests: line specifics -------------------------------------------- */

struct line_dec {
	unsigned flags;
	const char *in;
	tcpchat_msg want;
};

static const struct line_dec line_dec[] = {
        {TCPCHAT_HANDSHAKE, "  alice \t\r\n",
         MSG(.type = TCPCHAT_MSG_HELLO, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("alice"))},
        {TCPCHAT_HANDSHAKE, "bob smith\n",
         MSG(.type = TCPCHAT_MSG_HELLO, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("bob"), .body = S("smith"))},
        {TCPCHAT_HANDSHAKE, " bob \t s3cret pass \r\n",
         MSG(.type = TCPCHAT_MSG_HELLO, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("bob"), .body = S("s3cret pass "))},
        {TCPCHAT_HANDSHAKE, "bob \t \r\n",
         MSG(.type = TCPCHAT_MSG_HELLO, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("bob"))},
        {TCPCHAT_HANDSHAKE, "bob pa\x01ss\n",
         MSG(.type = TCPCHAT_MSG_HELLO, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("bob"), .body = S("pa\x01ss"))},
        {TCPCHAT_HANDSHAKE, "/quit\n",
         MSG(.type = TCPCHAT_MSG_HELLO, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("/quit"))},
        {0, "/quit\r\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_QUIT)},
        {0, "/ping\n", MSG(.type = TCPCHAT_MSG_PING)},
        {0, "/pong\n", MSG(.type = TCPCHAT_MSG_PONG)},
        {0, "/who\n", MSG(.type = TCPCHAT_MSG_WHO)},
        {TCPCHAT_FROM_SERVER, "=== 3 online: a b c\n",
         MSG(.type = TCPCHAT_MSG_WHO, .code = 3, .body = S("a b c"))},
        {TCPCHAT_FROM_SERVER, "=== 0 online\n", MSG(.type = TCPCHAT_MSG_WHO)},
        {0, "//quit\n", MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/quit"))},
        {0, "///\n", MSG(.type = TCPCHAT_MSG_TEXT, .body = S("//"))},
        {0, "/nick bob\n",
         MSG(.type = TCPCHAT_MSG_UNKNOWN, .body = S("/nick bob"))},
        {0, "/frobnicate x\ty \r\n",
         MSG(.type = TCPCHAT_MSG_UNKNOWN, .body = S("/frobnicate x\ty "))},
        {0, "/me\n", MSG(.type = TCPCHAT_MSG_UNKNOWN, .body = S("/me"))},
        {0, "/who_is-2\tx\n",
         MSG(.type = TCPCHAT_MSG_UNKNOWN, .body = S("/who_is-2\tx"))},
        {0, "/who \n", MSG(.type = TCPCHAT_MSG_WHO)},
        {0, "/quit now\n",
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/quit now"))},
        {0, "/\n", MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/"))},
        {0, "/x/y\n", MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/x/y"))},
        {0, "//frob\n", MSG(.type = TCPCHAT_MSG_TEXT, .body = S("/frob"))},
        {0, "  \n", MSG(.type = 0)}, /* blank: skipped */
        {0, " \t \r\n", MSG(.type = 0)},
        {0, "\r\n", MSG(.type = 0)},
        {0, "/help\n", MSG(.type = TCPCHAT_MSG_UNKNOWN, .body = S("/help"))},
        /* the greeting, skipped in the handshake and after it */
        {TCPCHAT_FROM_SERVER | TCPCHAT_HANDSHAKE,
         "=== tcpchat: type your name (1-32 bytes, no spaces)\r\n",
         MSG(.type = 0)},
        {TCPCHAT_FROM_SERVER, "=== tcpchat: type your name\n", MSG(.type = 0)},
        {TCPCHAT_FROM_SERVER, "=== x:\n", MSG(.type = 0)},
        /* in the handshake every other "=== " line is skipped too */
        {TCPCHAT_FROM_SERVER | TCPCHAT_HANDSHAKE, "=== 3 online: a b c\n",
         MSG(.type = 0)},
        {TCPCHAT_FROM_SERVER | TCPCHAT_HANDSHAKE, "=== hello bob\n",
         MSG(.type = 0)},
        {TCPCHAT_FROM_SERVER | TCPCHAT_HANDSHAKE, "=== welcome bob\n",
         MSG(.type = TCPCHAT_MSG_WELCOME, .code = TCPCHAT_PROTOCOL_VERSION,
             .sender = S("bob"))},
        {TCPCHAT_FROM_SERVER | TCPCHAT_HANDSHAKE,
         "-!- error 8: name already in use\n",
         MSG(.type = TCPCHAT_MSG_ERROR, .code = 8,
             .body = S("name already in use"))},
        {TCPCHAT_FROM_SERVER | TCPCHAT_HANDSHAKE, "*** hi\n",
         MSG(.type = TCPCHAT_MSG_TEXT, .body = S("hi"))},
        {0, " hi \r\n", MSG(.type = TCPCHAT_MSG_TEXT, .body = S(" hi "))},
        {TCPCHAT_FROM_SERVER, "alice: hi\r\n",
         MSG(.type = TCPCHAT_MSG_TEXT, .sender = S("alice"), .body = S("hi"))},
        {TCPCHAT_FROM_SERVER, "a:: b c\n",
         MSG(.type = TCPCHAT_MSG_TEXT, .sender = S("a:"), .body = S("b c"))},
        {TCPCHAT_FROM_SERVER, "*** \n", MSG(.type = TCPCHAT_MSG_TEXT)},
        {TCPCHAT_FROM_SERVER, "<-- bob left (frobbed)\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .sender = S("bob"),
             .body = S("frobbed"))},
        {TCPCHAT_FROM_SERVER, "<-- bob left (frob: x)\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .sender = S("bob"),
             .body = S("frob: x"))},
        {TCPCHAT_FROM_SERVER, "<-- bob left ()\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .sender = S("bob"))},
        {TCPCHAT_FROM_SERVER, "<-- bob left (unknown)\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .sender = S("bob"))},
        {TCPCHAT_FROM_SERVER, "<-- bob left (kicked: )\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_KICKED,
             .sender = S("bob"))},
        {TCPCHAT_FROM_SERVER, "<-- bob left (quit: (a) b)\n",
         MSG(.type = TCPCHAT_MSG_LEAVE, .code = TCPCHAT_REASON_QUIT,
             .sender = S("bob"), .body = S("(a) b"))},
        {TCPCHAT_FROM_SERVER, "-->  joined\n", MSG(.type = TCPCHAT_MSG_JOIN)},
        {TCPCHAT_FROM_SERVER, "=== welcome \n",
         MSG(.type = TCPCHAT_MSG_WELCOME, .code = TCPCHAT_PROTOCOL_VERSION)},
        {TCPCHAT_FROM_SERVER, "-!- error 5\n",
         MSG(.type = TCPCHAT_MSG_ERROR, .code = 5)},
        {TCPCHAT_FROM_SERVER, "-!- error 007: x\n",
         MSG(.type = TCPCHAT_MSG_ERROR, .code = 7, .body = S("x"))},
        {TCPCHAT_FROM_SERVER, "-!- error 4294967295: \n",
         MSG(.type = TCPCHAT_MSG_ERROR, .code = UINT32_MAX)},
};

START_TEST(test_line_decode)
{
	const struct line_dec *l = &line_dec[_i];
	struct cu_dec d;

	cu_dec_run(&d, tcpchat_codec_line(), l->in, strlen(l->in), l->flags,
	           MAX_FRAME);
	ck_assert_msg(d.rc == (long)strlen(l->in), "\"%s\": got %ld (%s)",
	              l->in, d.rc, d.ctx.error ? d.ctx.error : "-");
	cu_check_msg(l->in, &d.msg, &l->want);
	cu_dec_free(&d);
}
END_TEST

/* ---- tests: JSON specifics -------------------------------------------- */

START_TEST(test_json_decode_values)
{
	static const char in[] =
	        "\t{ \"target\":\"t\", \"room\" : \"\\/r\\u00e9\" ,"
	        "\"body\":\"\\ud83d\\ude00 \\\"hi\\\"\\n\\b\\f\\r\\t\\\\\","
	        "\"sender\":\"zo\xc3\xab\",\"code\":4294967295,"
	        "\"ts\":-9223372036854775808,\"extra\":[{\"a\":[]}],"
	        "\"id\":18446744073709551615,\"type\":\"error\"}\r\n";
	tcpchat_msg want = {
	        .type = TCPCHAT_MSG_ERROR,
	        .code = UINT32_MAX,
	        .id = UINT64_MAX,
	        .timestamp = INT64_MIN,
	        .sender = S("zo\xc3\xab"),
	        .body = S("\xf0\x9f\x98\x80 \"hi\"\n\b\f\r\t\\"),
	        .room = S("/r\xc3\xa9"),
	        .target = S("t"),
	};
	struct cu_dec d;

	cu_dec_run(&d, tcpchat_codec_json(), in, sizeof(in) - 1, 0, MAX_FRAME);
	ck_assert_msg(d.rc == (long)(sizeof(in) - 1), "got %ld (%s)", d.rc,
	              d.ctx.error ? d.ctx.error : "-");
	cu_check_msg("json values", &d.msg, &want);
	/* plain strings point into the input, escaped ones into scratch */
	ck_assert(d.msg.sender.ptr > d.copy &&
	          d.msg.sender.ptr < d.copy + sizeof(in));
	ck_assert(d.msg.target.ptr > d.copy &&
	          d.msg.target.ptr < d.copy + sizeof(in));
	ck_assert(d.msg.body.ptr >= d.scratch &&
	          d.msg.body.ptr + d.msg.body.len <=
	                  d.scratch + d.ctx.scratch_len);
	ck_assert(d.msg.room.ptr >= d.scratch &&
	          d.msg.room.ptr + d.msg.room.len <=
	                  d.scratch + d.ctx.scratch_len);
	cu_dec_free(&d);
}
END_TEST

START_TEST(test_json_numbers)
{
	static const struct {
		const char *in;
		uint64_t id;
		int64_t ts;
		uint32_t code;
	} cases[] = {
	        {"{\"type\":\"text\",\"id\":0,\"ts\":0,\"code\":0}\n", 0, 0, 0},
	        {"{\"type\":\"text\",\"ts\":-0}\n", 0, 0, 0},
	        {"{\"type\":\"text\",\"ts\":-1}\n", 0, -1, 0},
	        {"{\"type\":\"text\",\"ts\":9223372036854775807}\n", 0,
	         INT64_MAX, 0},
	        {"{\"type\":\"text\",\"id\":10,\"code\":10}\n", 10, 0, 10},
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		struct cu_dec d;

		cu_dec_run(&d, tcpchat_codec_json(), cases[i].in,
		           strlen(cases[i].in), 0, MAX_FRAME);
		ck_assert_msg(d.rc > 0, "%s: %ld", cases[i].in, d.rc);
		ck_assert(d.msg.id == cases[i].id);
		ck_assert(d.msg.timestamp == cases[i].ts);
		ck_assert(d.msg.code == cases[i].code);
		cu_dec_free(&d);
	}
}
END_TEST

START_TEST(test_json_scratch_limit)
{
	static const char in[] = "{\"type\":\"text\",\"body\":\"a\\nb\"}\n";
	const tcpchat_codec *c = tcpchat_codec_json();
	char *copy = malloc(sizeof(in) - 1);
	char scratch[8];
	tcpchat_decode_ctx ctx = {
	        .max_frame = MAX_FRAME, .scratch = scratch, .scratch_len = 2};
	tcpchat_msg m;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, in, sizeof(in) - 1);
	memset(&m, 0, sizeof(m));
	/* "a\nb" needs 3 bytes: refused, not overflowed */
	ck_assert_int_eq(c->decode(NULL, copy, sizeof(in) - 1, &m, &ctx),
	                 TCPCHAT_EPROTO);
	ck_assert_ptr_nonnull(ctx.error);

	ctx.scratch_len = 3;
	ctx.error = NULL;
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(c->decode(NULL, copy, sizeof(in) - 1, &m, &ctx),
	                 (long)(sizeof(in) - 1));
	ck_assert(cu_str_eq(m.body, (tcpchat_str)S("a\nb")));

	ctx.scratch = NULL;
	ctx.scratch_len = 0;
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(c->decode(NULL, copy, sizeof(in) - 1, &m, &ctx),
	                 TCPCHAT_EPROTO);
	free(copy);
}
END_TEST

/* ---- tests: no line injection ----------------------------------------- */

static void check_single_line(const tcpchat_codec *c, const tcpchat_msg *m,
                              unsigned enc_flags, unsigned dec_flags,
                              const tcpchat_msg *want)
{
	tcpchat_buf b = {0};
	struct cu_dec d;

	ck_assert_int_eq(c->encode(NULL, m, enc_flags, &b), 0);
	ck_assert_uint_gt(b.len, 0);
	ck_assert_msg(memchr(b.data, '\n', b.len) == b.data + b.len - 1,
	              "%s: newline inside the frame: \"%.*s\"", c->name,
	              (int)b.len, b.data);
	ck_assert_ptr_null(memchr(b.data, '\r', b.len));
	cu_dec_run(&d, c, b.data, b.len, dec_flags, MAX_FRAME);
	ck_assert_int_eq(d.rc, (long)b.len);
	cu_check_msg(c->name, &d.msg, want);
	cu_dec_free(&d);
	tcpchat_buf_free(&b);
}

START_TEST(test_no_injection)
{
	tcpchat_msg m, want;

	/* client text that tries to add a /quit line */
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.body = (tcpchat_str)S("hi\n/quit\r\nx");
	want = m;
	want.body = (tcpchat_str)S("hi?/quit??x");
	check_single_line(tcpchat_codec_line(), &m, 0, 0, &want);

	/* a HELLO name with a line break */
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_HELLO;
	m.sender = (tcpchat_str)S("al\nice");
	want = m;
	want.code = TCPCHAT_PROTOCOL_VERSION;
	want.sender = (tcpchat_str)S("al?ice");
	check_single_line(tcpchat_codec_line(), &m, 0, TCPCHAT_HANDSHAKE,
	                  &want);

	/* server text that tries to fake a join and a notice */
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.sender = (tcpchat_str)S("mallory");
	m.body = (tcpchat_str)S("hi\n--> eve joined\r*** x\x0b\x0c\x85");
	want = m;
	want.body = (tcpchat_str)S("hi?--> eve joined?*** x??\x85");
	check_single_line(tcpchat_codec_line(), &m, TCPCHAT_FROM_SERVER,
	                  TCPCHAT_FROM_SERVER, &want);

	/* leave and error reasons */
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_LEAVE;
	m.code = TCPCHAT_REASON_ERROR;
	m.sender = (tcpchat_str)S("bob");
	m.body = (tcpchat_str)S("x\n/ping");
	want = m;
	want.body = (tcpchat_str)S("x?/ping");
	check_single_line(tcpchat_codec_line(), &m, TCPCHAT_FROM_SERVER,
	                  TCPCHAT_FROM_SERVER, &want);

	/* JSON escapes the line break and keeps the body intact */
	memset(&m, 0, sizeof(m));
	m.type = TCPCHAT_MSG_TEXT;
	m.sender = (tcpchat_str)S("a\nb");
	m.body = (tcpchat_str)S("x\n{\"type\":\"leave\"}\r\n");
	check_single_line(tcpchat_codec_json(), &m, 0, 0, &m);
}
END_TEST

/* ---- suite ------------------------------------------------------------ */

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc;

	tc = tcase_create("table");
	tcase_add_test(tc, test_codec_table);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_roundtrip, 0, C_COUNT);
	tcase_add_loop_test(tc, test_concatenated, 0, C_COUNT);
	tcase_add_loop_test(tc, test_byte_at_a_time, 0, C_COUNT);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_hostile, 0, (int)ARRAY_LEN(hostile));
	tcase_add_test(tc, test_hostile_counts);
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_add_loop_test(tc, test_encode_einval, 0, (int)ARRAY_LEN(bad_enc));
	tcase_add_test(tc, test_binary_too_big);
	tcase_add_test(tc, test_binary_layout);
	tcase_add_loop_test(tc, test_binary_hex_frames, 0,
	                    (int)ARRAY_LEN(hex_frames));
	tcase_add_test(tc, test_binary_abi2_layout);
	tcase_add_loop_test(tc, test_exact_encoding, 0, (int)ARRAY_LEN(exact));
	suite_add_tcase(s, tc);

	tc = tcase_create("formats");
	tcase_add_test(tc, test_binary_unknown_tag_and_flags);
	tcase_add_test(tc, test_binary_number_tags);
	tcase_add_test(tc, test_json_decode_abi2);
	tcase_add_test(tc, test_unknown_types);
	tcase_add_test(tc, test_need_values);
	tcase_add_loop_test(tc, test_need_driven, 0, C_COUNT);
	tcase_add_loop_test(tc, test_line_decode, 0, (int)ARRAY_LEN(line_dec));
	tcase_add_test(tc, test_json_decode_values);
	tcase_add_test(tc, test_json_numbers);
	tcase_add_test(tc, test_json_scratch_limit);
	tcase_add_test(tc, test_no_injection);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return tu_run_suite(codec_suite());
}
