/* Drives fuzz_handshake.c without libFuzzer: a HELLO in each codec with
 * each of a list of credentials (good, deferred, wrong and hostile ones)
 * and names, in every mode of the harness, then a few hundred of them
 * cut, chunked and with bytes flipped, from a fixed seed.  See README in
 * this folder.
 *
 * With a folder as its argument it writes the inputs there as files
 * instead (a seed corpus for libFuzzer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tcpchat/tcpchat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct cred {
	const char *p;
	size_t n; /* 0: strlen(p) */
};

#define MAX TCPCHAT_CREDENTIAL_MAX

static char at_max[MAX], over_max[MAX + 1], very_long[4 * MAX];

/* The credentials each codec carries.  "secret" is accepted, "later..."
 * deferred, others refused; the rest must be refused before the
 * application sees them. */
static const struct cred creds[] = {
        {"secret", 0},
        {"later-SECRET", 0},
        {"wrong SECRET", 0},
        {"", 0},                   /* none */
        {"    ", 0},               /* only blanks */
        {"\t\t\t\t", 0},           /* only tabs */
        {"SECRET\xff\xfe", 0},     /* not UTF-8 */
        {"SECRET\xc3", 0},         /* a cut sequence */
        {"\xed\xa0\x80SECRET", 0}, /* a surrogate */
        {"SECRET\x1b[2J", 0},      /* an escape sequence */
        {"\x01\x02\x03\x04", 0},   /* only control bytes */
        {"SEC\0RET", 7},           /* NUL */
        {"SECRET\x7f", 0},         /* DEL */
        {"p\xc3\xa4ss SECRET \xe2\x82\xac", 0},
        {"SECRET\r", 0},
        {"SECRET\xc2\x85x", 0}, /* U+0085 */
        {at_max, MAX},
        {over_max, MAX + 1},
        {very_long, sizeof very_long},
};

static const char *const names[] = {
        "alice",
        "SECRET",
        "b\xc3\xb6\x62",
        "",
        "bad name",
        "\x01x",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 33 bytes */
};

/* Writes a HELLO of codec ci into out; returns its length (0: the codec
 * cannot carry it). */
static size_t hello(int ci, const char *name, const struct cred *c,
                    uint32_t version, uint8_t *out, size_t cap)
{
	size_t n = c->n ? c->n : strlen(c->p);
	tcpchat_buf b = {0};
	size_t len = 0;

	if (ci == 1) { /* line: "NAME CREDENTIAL" */
		size_t k = strlen(name);
		len = k + 1 + n + 1;
		if (len > cap)
			return 0;
		memcpy(out, name, k);
		out[k] = ' ';
		memcpy(out + k + 1, c->p, n);
		out[len - 1] = '\n';
		return len;
	}
	tcpchat_msg m = {.type = TCPCHAT_MSG_HELLO};
	m.code = version;
	m.caps = TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS;
	m.sender.ptr = name;
	m.sender.len = strlen(name);
	m.body.ptr = c->p;
	m.body.len = n;
	const tcpchat_codec *codec =
	        ci == 0 ? tcpchat_codec_binary() : tcpchat_codec_json();
	if (codec->encode(codec->codec_data, &m, 0, &b) == 0 && b.len <= cap) {
		memcpy(out, b.data, b.len);
		len = b.len;
	}
	tcpchat_buf_free(&b);
	return len;
}

static const char *seed_dir; /* NULL: run the inputs */

/* Runs hello bytes in[1..n) as an input with codec ci and mode, or
 * writes it to seed_dir. */
static void run(uint8_t *in, size_t n, int ci, unsigned mode)
{
	static unsigned long count;
	in[0] = (uint8_t)(ci + 3 * mode);
	if (!seed_dir) {
		LLVMFuzzerTestOneInput(in, n);
		return;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/seed-%05lu", seed_dir, count++);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(in, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	enum { CAP = 8 * 1024, MUTANTS = 300 };
	static uint8_t in[CAP], saved[CAP];
	const size_t ncreds = sizeof creds / sizeof creds[0];
	const size_t nnames = sizeof names / sizeof names[0];
	unsigned long inputs = 0;

	if (argc > 1)
		seed_dir = argv[1];
	memset(at_max, 'y', sizeof at_max);
	memcpy(at_max, "SECRET", 6);
	memset(over_max, 'z', sizeof over_max);
	memcpy(over_max, "SECRET", 6);
	memset(very_long, 'w', sizeof very_long);
	memcpy(very_long, "SECRET", 6);

	/* every credential, in every codec, in every mode (chunked or
	 * not; a deferred JOIN accepted or refused, before or after the
	 * client hung up, with extra answers) */
	for (int ci = 0; ci < 3; ci++) {
		for (size_t k = 0; k < ncreds; k++) {
			size_t n = hello(ci, "alice", &creds[k], 2, in + 2,
			                 CAP - 2);
			if (!n)
				continue;
			for (unsigned mode = 0; mode < 16; mode++) {
				/* chunked: a size seed before the bytes */
				in[1] = (uint8_t)(k * 7 + mode);
				if (mode & 1)
					run(in, n + 2, ci, mode);
				else {
					memmove(in + 1, in + 2, n);
					run(in, n + 1, ci, mode);
					memmove(in + 2, in + 1, n);
				}
				inputs++;
			}
		}
		/* the names, with a credential each, and versions 0 and 1 */
		for (size_t j = 0; j < nnames; j++) {
			size_t n = hello(ci, names[j], &creds[j % ncreds],
			                 (uint32_t)(j % 3), in + 1, CAP - 1);
			if (n) {
				run(in, n + 1, ci, (unsigned)j % 16);
				inputs++;
			}
		}
	}
	/* cut, chunked, flipped, doubled */
	for (int r = 0; r < MUTANTS; r++) {
		int ci = (int)(next() % 3);
		const struct cred *c = &creds[next() % ncreds];
		size_t n = hello(ci, names[next() % 2], c, 2, saved, CAP / 2);
		if (!n)
			continue;
		memcpy(in + 1, saved, n);
		switch (next() % 4) {
		case 0:
			n = 1 + next() % n; /* cut */
			break;
		case 1:
			for (int f = 1 + (int)(next() % 4); f > 0; f--)
				in[1 + next() % n] ^=
				        (uint8_t)(1u << (next() % 8));
			break;
		case 2:
			memcpy(in + 1 + n, saved, n); /* two HELLOs */
			n *= 2;
			break;
		default:
			for (size_t i = 0; i < n; i++)
				in[1 + i] = (uint8_t)next(); /* noise */
			break;
		}
		run(in, n + 1, ci, (unsigned)(next() % 16));
		inputs++;
	}
	if (seed_dir)
		printf("%lu inputs written to %s\n", inputs, seed_dir);
	else
		printf("%lu inputs passed the harness's checks\n", inputs);
	return 0;
}
