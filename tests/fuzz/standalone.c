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

int main(void)
{
	enum { RUNS = 20000, MAX = 2048 };
	static uint8_t in[MAX + 1];
	const tcpchat_codec *codecs[3] = {tcpchat_codec_binary(),
	                                  tcpchat_codec_line(),
	                                  tcpchat_codec_json()};
	for (int run = 0; run < RUNS; run++) {
		size_t n = 1 + next() % MAX;
		if (run % 2 == 0) {
			for (size_t i = 0; i < n; i++)
				in[i] = (uint8_t)next();
		} else {
			/* a valid frame, then a few flipped bytes */
			int ci = (int)(next() % 3);
			tcpchat_msg m = {.type = 1 +
			                         next() % TCPCHAT_MSG_TYPE_MAX};
			m.code = (uint32_t)next();
			m.id = next();
			m.sender.ptr = "alice";
			m.sender.len = 5;
			static const char body[] = "hello \xc3\xa9 \"x\"";
			m.body.ptr = body;
			m.body.len = sizeof body - 1;
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
