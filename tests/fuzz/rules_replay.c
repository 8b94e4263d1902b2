/* Runs the rules harness without libFuzzer, as a regular test: each seed
 * file given as an argument as it is, then mutated many times by a
 * seeded generator (bytes flipped, words of the format inserted, lines
 * cut), so every build exercises the parser's error paths. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUTATIONS 3000
#define BUF_MAX 8192

static uint64_t state = 0x9E3779B97F4A7C15u;

static uint64_t next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

static const char *const words[] = {"room ",  "room * ", "#dev ",
                                    "# ",     "*",       "@registered",
                                    " op ",   "join ",   "speak ",
                                    "topic ", "ops",     "\n",
                                    " ",      "\t",      "\r\n",
                                    "#",      "\0",      "\xff",
                                    "alice ", "jion ",   "room #a\nroom #a\n"};

static size_t mutate(const uint8_t *seed, size_t n, uint8_t *out)
{
	size_t len = n;
	memcpy(out, seed, n);
	int steps = 1 + (int)(next() % 4);
	for (int s = 0; s < steps; s++) {
		size_t at = len ? (size_t)(next() % (len + 1)) : 0;
		switch (next() % 3) {
		case 0: /* flip a byte */
			if (len)
				out[at % len] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 1: { /* insert a word */
			const char *w = words[next() %
			                      (sizeof words / sizeof words[0])];
			size_t k = w[0] ? strlen(w) : 1;
			if (len + k > BUF_MAX)
				break;
			memmove(out + at + k, out + at, len - at);
			memcpy(out + at, w, k);
			len += k;
			break;
		}
		default: /* cut the end */
			len = at;
			break;
		}
	}
	return len;
}

int main(int argc, char **argv)
{
	static uint8_t seed[BUF_MAX], buf[BUF_MAX];
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			return 1;
		}
		size_t n = fread(seed, 1, sizeof seed, f);
		fclose(f);
		LLVMFuzzerTestOneInput(seed, n);
		for (int m = 0; m < MUTATIONS; m++)
			LLVMFuzzerTestOneInput(buf, mutate(seed, n, buf));
	}
	printf("%d seed files, %d inputs each\n", argc - 1, MUTATIONS + 1);
	return 0;
}
