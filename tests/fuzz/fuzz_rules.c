/* A libFuzzer harness for the rules file parser of tcpchat-server
 * (examples/tcpchat-server-rules.c): any bytes are parsed as a rules
 * file.  A refused file must come with one error line "fuzz.conf:LINE:
 * what" (LINE within the file, no control characters); an accepted one
 * must answer every question with 0 or 1, the same way twice, and let
 * whoever may kick (an operator) also join, speak and set the topic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpchat-server-rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			        __LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

static const char *const rooms[] = {"#lobby", "#announce", "#dev", "#x", "#a"};
static const char *const names[] = {"alice", "bob", "op",
                                    "x",     "*",   "@registered"};

static void check_error(const char *err, const uint8_t *data, size_t size)
{
	static const char pre[] = "fuzz.conf:";
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	CHECK(strncmp(err, pre, sizeof pre - 1) == 0);
	char *end;
	unsigned long line = strtoul(err + sizeof pre - 1, &end, 10);
	CHECK(line >= 1 && line <= lines);
	CHECK(end[0] == ':' && end[1] == ' ' && end[2] != '\0');
	for (const char *p = err; *p; p++)
		CHECK((unsigned char)*p >= 0x20 && *p != 0x7F);
}

static void check_answers(const struct rules *r)
{
	for (size_t i = 0; i < sizeof rooms / sizeof rooms[0]; i++) {
		for (size_t j = 0; j < sizeof names / sizeof names[0]; j++) {
			for (int reg = 0; reg < 2; reg++) {
				int a[4];
				for (int act = 0; act < 4; act++) {
					a[act] = rules_allow(
					        r, rooms[i], strlen(rooms[i]),
					        names[j], strlen(names[j]), reg,
					        act);
					CHECK(a[act] == 0 || a[act] == 1);
					CHECK(a[act] ==
					      rules_allow(r, rooms[i],
					                  strlen(rooms[i]),
					                  names[j],
					                  strlen(names[j]), reg,
					                  act));
				}
				if (a[RULES_KICK])
					CHECK(a[RULES_JOIN] && a[RULES_SPEAK] &&
					      a[RULES_TOPIC]);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	err[0] = '\0';
	struct rules *r = rules_parse((const char *)data, size, "fuzz.conf",
	                              err, sizeof err);
	if (!r) {
		check_error(err, data, size);
		return 0;
	}
	CHECK(err[0] == '\0');
	check_answers(r);
	rules_free(r);
	return 0;
}
