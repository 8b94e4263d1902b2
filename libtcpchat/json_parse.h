/* libtcpchat - the JSON reader behind the json codec: strings, integers
 * and skipping of any value, over one line of input.  Not installed. */
#ifndef TCPCHAT_JSON_PARSE_H
#define TCPCHAT_JSON_PARSE_H

#include "internal.h"

#define JSON_MAX_DEPTH 16 /* nesting allowed inside an unknown key's value */

/* A reader over one line: it never reads at or past end. */
struct jp {
	const unsigned char *p;   /* next byte */
	const unsigned char *end; /* end of the line (the "\n" or "\r\n") */
	tcpchat_decode_ctx *ctx;
	size_t spos; /* bytes of ctx->scratch in use */
};

/* Every function below returns 0, or TCPCHAT_EPROTO with ctx->error set
 * (json__fail() sets it), and advances j->p past what it read. */
int json__fail(struct jp *j, const char *why);
/* Skips spaces, tabs and carriage returns. */
void json__ws(struct jp *j);
/* Consumes the byte c, or fails with why. */
int json__expect(struct jp *j, unsigned char c, const char *why);
/* Parses a string; j->p is at the opening quote.  The result points into
 * the line, or into ctx->scratch (from j->spos on) if it has escapes. */
int json__string(struct jp *j, tcpchat_str *res);
/* A plain integer (no fraction, exponent, '+' or leading zeros), in
 * [0, max] or in the int64_t range. */
int json__unsigned(struct jp *j, uint64_t max, uint64_t *out);
int json__signed(struct jp *j, int64_t *out);
/* Skips one value of any kind; depth is the nesting of arrays/objects
 * already open around it (0 for a value of the message object). */
int json__skip(struct jp *j, int depth);

#endif
