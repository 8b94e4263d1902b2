/* Drives fuzz_cluster.c without libFuzzer: a few handmade inputs (empty,
 * garbage, a remote user who comes, joins "#fz", parts and goes, a
 * snapshot, room texts with a gap, a private message to the probe and
 * an ERROR back to it, the bus lost and back, servers gone silent) then pseudo-random inputs
 * from a fixed seed.  See README in this folder.
 *
 * With a folder as its argument it writes the inputs there as files
 * instead (a seed corpus for libFuzzer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 4096
#define RANDOM_INPUTS 600

/* The selectors of fuzz_cluster.c (mod 12). */
enum {
	S_NOTE,
	S_NOTE_BUILT,
	S_ROOM,
	S_ROOM_BUILT,
	S_POSTED,
	S_FETCHED,
	S_CLAIMED,
	S_DOWN,
	S_UP,
	S_STEP,
	S_OWN,
	S_DRAIN
};

/* Indexes into the lists of fuzz_cluster.c's build(). */
enum { T_JOIN, T_LEAVE, T_TOPIC, T_TEXT, T_ERROR, T_WHO, T_ROOMS, T_PING };
enum { N1, N2, N3, N_ME };
enum { U_ALICE, U_BOB, U_PROBE };
enum { R_FZ, R_LOBBY, R_OTHER, R_NONE };
enum { TG_PROBE, TG_ALICE, TG_NONE };

static uint8_t in[CAP];
static size_t in_len;
static const char *seed_dir; /* NULL: run the inputs */
static unsigned long count;

static void put(uint8_t sel, const void *p, size_t n)
{
	if (in_len + 3 + n > CAP)
		return;
	in[in_len++] = sel;
	in[in_len++] = (uint8_t)(n >> 8);
	in[in_len++] = (uint8_t)n;
	memcpy(in + in_len, p, n);
	in_len += n;
}

/* A record build() makes: type, origin, sender, room, target, code,
 * then flags, id and time 0, and body. */
static void put_built(uint8_t sel, const uint8_t *pre, size_t npre,
                      uint8_t type, uint8_t node, uint8_t sender, uint8_t room,
                      uint8_t target, uint8_t code, const char *body)
{
	uint8_t b[256];
	size_t n = 0;
	if (npre)
		memcpy(b, pre, npre);
	n = npre;
	b[n++] = type;
	b[n++] = node;
	b[n++] = sender;
	b[n++] = room;
	b[n++] = target;
	b[n++] = code;
	b[n++] = 0;
	b[n++] = 1;
	b[n++] = 0;
	size_t k = strlen(body);
	memcpy(b + n, body, k);
	put(sel, b, n + k);
}

static void note(uint8_t type, uint8_t node, uint8_t sender, uint8_t room,
                 uint8_t target, uint8_t code, const char *body)
{
	put_built(S_NOTE_BUILT, NULL, 0, type, node, sender, room, target, code,
	          body);
}

/* A built TEXT of "#fz" from alice with seq as it is. */
static void room_text(unsigned seq, const char *body)
{
	uint8_t pre[3] = {0, (uint8_t)(0x80 | seq >> 8), (uint8_t)seq};
	put_built(S_ROOM_BUILT, pre, 3, T_TEXT, N1, U_ALICE, R_NONE, TG_NONE, 0,
	          body);
}

static void op(uint8_t sel, uint8_t arg)
{
	put(sel, &arg, 1);
}

/* Runs (or writes) the input made so far, and starts the next. */
static void run(void)
{
	if (seed_dir) {
		char path[4096];
		snprintf(path, sizeof path, "%s/seed-%05lu", seed_dir, count);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(in, 1, in_len, f) != in_len ||
		    fclose(f) != 0) {
			perror(path);
			exit(1);
		}
	} else {
		LLVMFuzzerTestOneInput(in, in_len);
	}
	count++;
	in_len = 0;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint32_t next(void)
{
	/* a linear congruential generator (Knuth's MMIX constants) */
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng >> 33);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		seed_dir = argv[1];

	run(); /* empty */
	memset(in, 0xFF, 300);
	in_len = 300;
	run(); /* garbage */
	static const uint8_t junk[] = "\x00\x00\x00\x10not a frame at all";
	put(S_NOTE, junk, sizeof junk - 1);
	put(S_ROOM, junk, sizeof junk - 1);
	run();

	/* a remote user comes, joins #fz, parts and goes */
	note(T_JOIN, N1, U_ALICE, R_NONE, TG_NONE, 0, "");
	note(T_JOIN, N1, U_ALICE, R_FZ, TG_NONE, 0, "");
	op(S_STEP, 3);
	run();
	note(T_TOPIC, N1, U_ALICE, R_FZ, TG_NONE, 0, "a topic");
	note(T_LEAVE, N1, U_ALICE, R_FZ, TG_NONE, 1, "bye #fz");
	note(T_LEAVE, N1, U_ALICE, R_NONE, TG_NONE, 0, "bye");
	run();

	/* a snapshot of n2: bob in #fz and #lobby, then one without him */
	note(T_ROOMS, N2, U_BOB, R_NONE, TG_NONE, 1, "");
	note(T_JOIN, N2, U_BOB, R_NONE, TG_NONE, 0, "");
	note(T_JOIN, N2, U_BOB, R_FZ, TG_NONE, 0, "");
	note(T_JOIN, N2, U_BOB, R_LOBBY, TG_NONE, 0, "");
	note(T_ROOMS, N2, U_BOB, R_NONE, TG_NONE, 2, "");
	run();
	note(T_ROOMS, N2, U_BOB, R_NONE, TG_NONE, 1, "");
	note(T_ROOMS, N2, U_BOB, R_NONE, TG_NONE, 2, "");
	note(T_WHO, N3, U_BOB, R_NONE, TG_NONE, 0, "");
	note(T_PING, N3, U_BOB, R_NONE, TG_NONE, 0, "");
	run();

	/* room texts 1, 3 (a gap: a fetch), 2 (kept), the fetch answered */
	room_text(1, "one");
	room_text(3, "three");
	room_text(2, "two");
	uint8_t f[] = {2, 0, 1, T_TEXT, N2,  U_BOB, R_NONE, TG_NONE,
	               0, 0, 1, 0,      't', 'w',   'o'};
	put(S_FETCHED, f, sizeof f);
	room_text(3, "three again");
	run();

	/* a private message to the probe, an ERROR back to it, one to
	 * nobody here (an ERROR goes back to n1) */
	note(T_TEXT, N1, U_ALICE, R_NONE, TG_PROBE, 0, "hi there");
	note(T_ERROR, N1, U_ALICE, R_NONE, TG_PROBE, 0, "that user has gone");
	note(T_TEXT, N1, U_ALICE, R_NONE, TG_ALICE, 0, "to nobody");
	note(T_JOIN, N_ME, U_ALICE, R_FZ, TG_NONE, 0, "");
	run();

	/* the bus lost and back, with the server's own records */
	op(S_DOWN, 0);
	room_text(10, "while down");
	op(S_STEP, 2);
	op(S_UP, 0);
	op(S_OWN, 0);
	op(S_OWN, 1);
	op(S_FETCHED, 0);
	op(S_DRAIN, 0);
	run();

	/* silence: n1, n2 and n3 are heard of no more and are dropped
	 * (CL_NODE_TIMEOUT_MS): their users leave, the probe is told */
	note(T_JOIN, N1, U_ALICE, R_NONE, TG_NONE, 0, "");
	note(T_JOIN, N1, U_ALICE, R_FZ, TG_NONE, 0, "");
	note(T_JOIN, N1, U_BOB, R_LOBBY, TG_NONE, 0, "");
	run();
	for (int i = 0; i < 12; i++) {
		op(S_STEP, 0xF7); /* 8 steps of at most 50 ms */
		run();
	}
	note(T_PING, N1, U_ALICE, R_NONE, TG_NONE, 0, ""); /* back */
	run();

	/* pseudo-random: records of random selectors and bytes */
	for (int i = 0; i < RANDOM_INPUTS; i++) {
		int records = 1 + (int)(next() % 16);
		for (int k = 0; k < records; k++) {
			uint8_t b[96];
			size_t n = next() % sizeof b;
			int small = next() % 2;
			/* small: list indexes and a printable body, which
			 * build() makes a valid record of */
			for (size_t j = 0; j < n; j++)
				b[j] = (uint8_t)(!small  ? next()
				                 : j < 9 ? next() % 8
				                         : 'a' + next() % 26);
			uint8_t sel = (uint8_t)next();
			if (sel % 12 == S_STEP && n)
				b[0] &= 0x7F; /* steps that do not wait */
			put(sel, b, n);
		}
		if (next() % 8 == 0) /* a cut record */
			in_len -= next() % (in_len + 1);
		run();
	}
	if (seed_dir)
		printf("%lu inputs written to %s\n", count, seed_dir);
	else
		printf("%lu inputs passed the harness's checks\n", count);
	return 0;
}
