/* Runs the fuzz harness without libFuzzer, as a regular test: a fixed
 * number of inputs from a seeded generator (random bytes, and valid frames
 * of every codec with random bytes flipped), so every build exercises the
 * harness's checks and the sanitizer builds watch the codecs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tcpchat/tcpchat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t state = 0x9E3779B97F4A7C15u;

static uint64_t next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

/* Fixed inputs for what random bytes rarely hit: unknown types and
 * commands, abi-2 fields and keys, bad number field lengths.  The first
 * byte is the harness's mode byte (codec + 3 * flags). */
static const struct {
	const char *data;
	size_t len;
} seeds[] = {
#define SEED(lit)                                                              \
	{                                                                      \
		lit, sizeof(lit) - 1                                           \
	}
        SEED("\x01/frobnicate x\n/nick\r\n/quit now\n//x\n/ x\n/QUIT\n"),
        SEED("\x07/frob\nname\n"),
        SEED("\x02{\"type\":\"frobnicate\",\"seq\":1}\n{\"type\":200}\n"
             "{\"type\":3,\"flags\":4294967295,\"ref\":\"\\u00e9\"}\n"),
        SEED("\x02{\"type\":\"welcome\",\"caps\":1,\"max_frame\":65536,"
             "\"queue_frames\":1024,\"queue_bytes\":1048576,"
             "\"cursor\":\"c\",\"epoch\":18446744073709551615}\n"),
        SEED("\x00\0\0\0\x2a\x01\xc8\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
             "\0\0\0\0\x10\0\0\0\x08\0\0\0\0\0\0\0\x01\x05\0\0\0\0"),
        SEED("\x00\0\0\0\x1d\x01\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
             "\0\0\0\0\x14\0\0\0\0"),
        /* protocol 2: the client's line commands, good and malformed */
        SEED("\x01/join #dev\n/part\n/part #dev bye now\n/part tired\n"
             "/msg bob hi there\n/rooms\n/who #dev\n/topic #dev new one\n"
             "/topic #dev\n#dev hello\n#dev \n#bad,x hi\n/join #a b\n"
             "/join\n/join x\n/msg bob\n/msg bob \n/topic\n#\n/who x\n"
             "/part #bad,room x\n/rooms now\n/join  #dev  \n"
             "#x\xc2\xa0 y\n#x\xe2\x80\x8b y\n#x\xe2\x80\xae y\n"
             "#\xff y\n#a\x01 b\n"),
        /* protocol 2: the server's lines */
        SEED("\x04[#dev] alice: hi\n[#dev] *** n\n*alice* hi\n"
             "-> *bob* hi\n--> a joined #dev\n<-- a left #dev (part: bye)\n"
             "<-- a left (kicked: x left (y))\n=== 2 in #dev: a b\n"
             "=== 0 in #a:\n=== topic #dev: t\n=== topic #dev by a: t\n"
             "=== topic #dev cleared by a\n=== topic #dev cleared\n"
             "=== #dev 3: t\n=== #dev 0\n=== 2 rooms\n[#a b] x: y\n"
             "*** x\n** x\n-> ** x\n=== topic #dev\n=== #dev x\n"),
        /* history: the client's /history, good and malformed */
        SEED("\x01/history\n/history 20\n/history #dev\n/history #dev 1000\n"
             "/history  #dev \t 7 \n/history 0\n/history 05\n/history 1001\n"
             "/history 18446744073709551616\n/history -1\n/history 5 #dev\n"
             "/history #dev x\n/history #a,b 5\n/history x\n/HISTORY\n"
             "~ alice: hi\n"),
        /* history: texts from it and the end line, good and malformed */
        SEED("\x04~ alice: hi\n~ [#dev] bob: x\n~ *** n\n~ [#dev] *** n\n"
             "~ *bob* psst\n~ -> *bob* psst\n~alice: hi\n"
             "=== history #dev: 2 (9-10), before 9 gone\n"
             "=== history #dev: 0\n=== history #dev: 0, before 4 gone\n"
             "=== history #dev: 1 (0-0)\n"
             "=== history #a: 4294967295 (18446744073709551615-1), before "
             "18446744073709551615 gone\n~\n~ \n~ ~ a: b\n~ --> a joined\n"
             "~ === history #dev: 0\n=== history #dev\n"
             "=== history #dev: 0 (1-2)\n=== history #dev: 2\n"
             "=== history #dev: 2 (1-2\n=== history #dev: 4294967296 (1-2)\n"
             "=== history #dev: 0, before 18446744073709551616 gone\n"
             "=== history #dev: 2 (1-2), before 9\n=== history: x\n"),
        SEED("\x0a~ *** tcpchat: x\n=== history #dev: 0\n=== welcome a\n"
             "=== history #dev: 1 (3-3)\n"),
        SEED("\x02{\"type\":\"history\",\"room\":\"#dev\",\"code\":2,"
             "\"first\":9,\"last\":10,\"oldest\":9,\"flags\":64}\n"
             "{\"type\":\"ack\",\"ref\":\"r1\",\"room\":\"#dev\","
             "\"seq\":3,\"epoch\":1}\n"),
        SEED("\x02{\"type\":\"topic\",\"room\":\"#dev\",\"body\":\"x\","
             "\"sender\":\"a\",\"ts\":1}\n{\"type\":\"rooms\",\"room\":"
             "\"#r\",\"code\":3,\"flags\":4}\n{\"type\":\"text\","
             "\"target\":\"bob\",\"flags\":2,\"body\":\"hi\"}\n"),
#undef SEED
};

/* Strings the generated messages draw from: valid and invalid room
 * names, names, bodies that look like line forms. */
static const char *const rooms[] = {
        "#dev",
        "#a:",
        "#\xc3\xa9t\xc3\xa9",
        "#",
        "#a b",
        "#a,b",
        "#x\xc2\xa0",
        "#x\xe2\x80\x8b",
        "#x\xe2\x80\xae",
        "#\xff",
        "#a\x01",
        "dev",
        "#a]",
        "#aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "#aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};
static const char *const names[] = {
        "alice", "bob",  "*",   "a:",     "[x]",
        "b ob",  "#dev", "*x*", "joined", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};
static const char *const bodies[] = {
        "hello \xc3\xa9 \"x\"",
        "#dev hi",
        "/join #x",
        " lead",
        "cleared",
        "cleared by bob",
        "by bob: x",
        "x) left (y",
        "a\x01b",
        "#a\x01 b",
        "#",
        "tired",
        "\t",
        "a\r\n*** b",
};
static const uint32_t flag_set[] = {
        0,
        TCPCHAT_MSGF_ECHO,
        TCPCHAT_MSGF_DEFAULT_ROOM,
        TCPCHAT_MSGF_ECHO | TCPCHAT_MSGF_DEFAULT_ROOM,
        TCPCHAT_MSGF_CLOSING,
        TCPCHAT_MSGF_HISTORY,
        TCPCHAT_MSGF_HISTORY | TCPCHAT_MSGF_DEFAULT_ROOM,
        TCPCHAT_MSGF_HISTORY | TCPCHAT_MSGF_ECHO,
        TCPCHAT_MSGF_GAP,
        TCPCHAT_MSGF_GAP | TCPCHAT_MSGF_DEFAULT_ROOM,
        TCPCHAT_MSGF_AFTER,
        TCPCHAT_MSGF_BEFORE,
};
/* Limits of "/history N", and numbers around them. */
static const uint32_t codes[] = {0, 1, 50, 999, 1000, 1001, UINT32_MAX};

#define PICK(a) (a)[next() % (sizeof(a) / sizeof((a)[0]))]

static tcpchat_str str(const char *s)
{
	tcpchat_str v = {s, strlen(s)};

	return v;
}

/* The protocol-2 fields, each set half of the time. */
static void add_rooms(tcpchat_msg *m)
{
	if (next() % 2)
		m->room = str(PICK(rooms));
	if (next() % 3 == 0)
		m->target = str(PICK(names));
	if (next() % 2)
		m->sender = str(PICK(names));
	if (next() % 2)
		m->body = str(PICK(bodies));
	if (next() % 2)
		m->flags = PICK(flag_set);
	if (next() % 2)
		m->code =
		        (uint32_t)(next() % 10); /* reasons, PART among them */
	else if (next() % 2)
		m->code = PICK(codes);
	/* the history fields */
	if (next() % 3 == 0) {
		m->first = next() % 2 ? next() % 100 : next();
		m->last = next() % 2 ? next() % 100 : UINT64_MAX;
	}
	if (next() % 3 == 0)
		m->oldest = next() % 2 ? next() % 100 : next();
}

/* Writes m as an input of the harness's encode mode (see build_msg() in
 * fuzz_codec.c); returns its length, or 0 if it does not fit. */
static size_t encode_input(const tcpchat_msg *m, uint8_t *in, size_t cap)
{
	const tcpchat_str *strs[6] = {&m->sender, &m->body, &m->room,
	                              &m->target, &m->ref,  &m->cursor};
	const uint64_t nums[3] = {m->first, m->last, m->oldest};
	size_t n = 0, i;
	uint8_t ctl2 = 0;
	int k;

	if (cap < 1 + 3 + 4 + 8 + 8 + 4 + 3 * 8 + 6)
		return 0;
	for (i = 0; i < 3; i++)
		if (nums[i])
			ctl2 |= (uint8_t)(1u << i);
	in[n++] = 0x80;
	in[n++] = (uint8_t)m->type;
	in[n++] = 0x00; /* none of the six other abi-2 numbers */
	in[n++] = ctl2; /* first, last, oldest when not 0 */
	for (k = 24; k >= 0; k -= 8)
		in[n++] = (uint8_t)(m->code >> k);
	for (k = 56; k >= 0; k -= 8)
		in[n++] = (uint8_t)(m->id >> k);
	for (k = 56; k >= 0; k -= 8)
		in[n++] = (uint8_t)((uint64_t)m->timestamp >> k);
	for (k = 24; k >= 0; k -= 8)
		in[n++] = (uint8_t)(m->flags >> k);
	for (i = 0; i < 3; i++)
		for (k = 56; nums[i] && k >= 0; k -= 8)
			in[n++] = (uint8_t)(nums[i] >> k);
	for (i = 0; i < 6; i++) {
		if (strs[i]->len > 255)
			return 0;
		in[n++] = (uint8_t)strs[i]->len;
	}
	for (i = 0; i < 6; i++) {
		if (strs[i]->len > cap - n)
			return 0;
		if (strs[i]->len)
			memcpy(in + n, strs[i]->ptr, strs[i]->len);
		n += strs[i]->len;
	}
	return n;
}

int main(void)
{
	enum { RUNS = 60000, MAX = 2048 };
	static uint8_t in[MAX + 1];
	const tcpchat_codec *codecs[3] = {tcpchat_codec_binary(),
	                                  tcpchat_codec_line(),
	                                  tcpchat_codec_json()};
	static const char body[] = "hello \xc3\xa9 \"x\"";
	size_t i;

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		LLVMFuzzerTestOneInput((const uint8_t *)seeds[i].data,
		                       seeds[i].len);
	for (int run = 0; run < RUNS; run++) {
		size_t n = 1 + next() % MAX;
		if (run % 3 == 0) {
			for (size_t k = 0; k < n; k++)
				in[k] = (uint8_t)next();
		} else if (run % 3 == 2) {
			/* encode mode: a protocol-2 message of a known type
			 * (or one past them), names from the pools */
			tcpchat_msg m = {0};

			m.type = 1 + next() % (TCPCHAT_MSG_TYPE_MAX + 1);
			m.id = next() % 2 ? next() : 0;
			m.timestamp = next() % 2 ? (int64_t)next() : 0;
			add_rooms(&m);
			n = encode_input(&m, in, MAX);
			if (n == 0)
				continue;
		} else {
			/* a valid frame, then a few flipped bytes */
			int ci = (int)(next() % 3);
			tcpchat_msg m = {0};
			/* any numbered type for binary and JSON (the known
			 * ones half of the time), the known ones for line */
			m.type = ci == 1 || next() % 2
			                 ? 1 + next() % TCPCHAT_MSG_TYPE_MAX
			                 : 1 + next() % 255;
			m.code = (uint32_t)next();
			m.id = next();
			m.sender.ptr = "alice";
			m.sender.len = 5;
			m.body.ptr = body;
			m.body.len = sizeof body - 1;
			if (next() % 2) {
				/* the fields of codec abi 2 */
				m.flags = (uint32_t)(next() & 0xFFFF);
				m.caps = next() % 2 ? next() : 0;
				m.max_frame = next() % 2 ? next() : 0;
				m.queue_frames = next() % 2 ? next() : 0;
				m.queue_bytes = next() % 2 ? next() : 0;
				m.seq = next() % 2 ? next() : 0;
				m.epoch = next() % 2 ? next() : 0;
				m.first = next() % 2 ? next() : 0;
				m.last = next() % 2 ? next() : 0;
				m.oldest = next() % 2 ? next() : 0;
				if (next() % 2) {
					m.ref.ptr = "r-1";
					m.ref.len = 3;
				}
				if (next() % 2) {
					m.cursor.ptr = body;
					m.cursor.len = 8;
				}
			}
			if (next() % 2)
				add_rooms(&m); /* protocol 2 */
			tcpchat_buf b = {0};
			unsigned dir = (unsigned)(next() % 2);
			if (codecs[ci]->encode(NULL, &m, dir, &b) != 0 ||
			    b.len + 1 > MAX) {
				tcpchat_buf_free(&b);
				continue;
			}
			in[0] = (uint8_t)(ci +
			                  3 * (dir ? 1 : 0)); /* decode mode */
			memcpy(in + 1, b.data, b.len);
			n = b.len + 1;
			tcpchat_buf_free(&b);
			for (int k = next() % 4; k > 0; k--)
				in[1 + next() % (n - 1)] ^=
				        (uint8_t)(1u << (next() % 8));
		}
		LLVMFuzzerTestOneInput(in, n);
	}
	printf("%d inputs passed the harness's checks\n", RUNS);
	return 0;
}
