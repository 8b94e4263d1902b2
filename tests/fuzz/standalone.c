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
#undef SEED
};

int main(void)
{
	enum { RUNS = 20000, MAX = 2048 };
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
		if (run % 2 == 0) {
			for (size_t k = 0; k < n; k++)
				in[k] = (uint8_t)next();
		} else {
			/* a valid frame, then a few flipped bytes */
			int ci = (int)(next() % 3);
			tcpchat_msg m = {0};
			/* any numbered type for binary and JSON, the known
			 * ones for line */
			m.type = ci == 1 ? 1 + next() % TCPCHAT_MSG_TYPE_MAX
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
				if (next() % 2) {
					m.ref.ptr = "r-1";
					m.ref.len = 3;
				}
				if (next() % 2) {
					m.cursor.ptr = body;
					m.cursor.len = 8;
				}
			}
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
