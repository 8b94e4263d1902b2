/* libtcpchat - the JSON reader behind the json codec (json_parse.h). */
#include <string.h>

#include "json_parse.h"

int json__fail(struct jp *j, const char *why)
{
	j->ctx->error = why;
	return TCPCHAT_EPROTO;
}

void json__ws(struct jp *j)
{
	while (j->p < j->end &&
	       (*j->p == ' ' || *j->p == '\t' || *j->p == '\r'))
		j->p++;
}

int json__expect(struct jp *j, unsigned char c, const char *why)
{
	if (j->p >= j->end || *j->p != c)
		return json__fail(j, why);
	j->p++;
	return 0;
}

static int jp_hex4(struct jp *j, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (j->end - j->p < 4)
		return json__fail(j, "invalid JSON: truncated \\u escape");
	for (i = 0; i < 4; i++) {
		unsigned char c = j->p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return json__fail(
			        j, "invalid JSON: bad hex digit in \\u escape");
	}
	j->p += 4;
	*out = v;
	return 0;
}

/* Reads the rest of a \u escape (j->p is after the 'u'), combining a
 * surrogate pair; stores the code point in *cp. */
static int jp_unicode(struct jp *j, unsigned *cp)
{
	unsigned hi, lo;
	int rc = jp_hex4(j, &hi);

	if (rc)
		return rc;
	if (hi >= 0xDC00 && hi <= 0xDFFF)
		return json__fail(j, "invalid JSON: lone low surrogate");
	if (hi < 0xD800 || hi > 0xDBFF) {
		*cp = hi;
		return 0;
	}
	if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
		return json__fail(j, "invalid JSON: lone high surrogate");
	j->p += 2;
	rc = jp_hex4(j, &lo);
	if (rc)
		return rc;
	if (lo < 0xDC00 || lo > 0xDFFF)
		return json__fail(j, "invalid JSON: lone high surrogate");
	*cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
	return 0;
}

static size_t utf8_put(unsigned char *w, unsigned cp)
{
	if (cp < 0x80) {
		w[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		w[0] = (unsigned char)(0xC0 | (cp >> 6));
		w[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		w[0] = (unsigned char)(0xE0 | (cp >> 12));
		w[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		w[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	w[0] = (unsigned char)(0xF0 | (cp >> 18));
	w[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	w[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	w[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Appends n bytes to the scratch string being built. */
static int jp_scratch(struct jp *j, size_t *w, const void *p, size_t n)
{
	if (!j->ctx->scratch || n > j->ctx->scratch_len ||
	    *w > j->ctx->scratch_len - n)
		return json__fail(
		        j,
		        "invalid JSON: string does not fit the scratch buffer");
	memcpy(j->ctx->scratch + *w, p, n);
	*w += n;
	return 0;
}

/* Parses a string; j->p is at the opening quote.  The result points into
 * the line, or into the scratch buffer if the string has escapes. */
int json__string(struct jp *j, tcpchat_str *res)
{
	const unsigned char *start;
	size_t w = 0; /* scratch write position, when unescaping */
	int unescape = 0;
	int rc;

	if (j->p >= j->end || *j->p != '"')
		return json__fail(j, "invalid JSON: expected a string");
	start = ++j->p;
	for (;;) {
		unsigned char c, buf[4];
		unsigned cp;
		size_t k;

		if (j->p >= j->end)
			return json__fail(j,
			                  "invalid JSON: unterminated string");
		c = *j->p;
		if (c == '"')
			break;
		if (c < 0x20)
			return json__fail(
			        j, "invalid JSON: control character in string");
		if (c == '\\') {
			if (!unescape) {
				unescape = 1;
				w = j->spos;
				rc = jp_scratch(j, &w, start,
				                (size_t)(j->p - start));
				if (rc)
					return rc;
			}
			j->p++;
			if (j->p >= j->end)
				return json__fail(
				        j, "invalid JSON: unterminated string");
			c = *j->p++;
			switch (c) {
			case '"':
			case '\\':
			case '/':
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'u':
				rc = jp_unicode(j, &cp);
				if (rc)
					return rc;
				k = utf8_put(buf, cp);
				rc = jp_scratch(j, &w, buf, k);
				if (rc)
					return rc;
				continue;
			default:
				return json__fail(
				        j,
				        "invalid JSON: bad escape in string");
			}
			rc = jp_scratch(j, &w, &c, 1);
			if (rc)
				return rc;
			continue;
		}
		k = 1;
		if (c >= 0x80) {
			k = util__utf8_seq(j->p, (size_t)(j->end - j->p));
			if (!k)
				return json__fail(j, "invalid UTF-8 in string");
		}
		if (unescape) {
			rc = jp_scratch(j, &w, j->p, k);
			if (rc)
				return rc;
		}
		j->p += k;
	}
	if (unescape) {
		res->ptr = j->ctx->scratch + j->spos;
		res->len = w - j->spos;
		j->spos = w;
	} else {
		res->ptr = (const char *)start;
		res->len = (size_t)(j->p - start);
	}
	j->p++; /* closing quote */
	return 0;
}

static int jp_digit(const struct jp *j)
{
	return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

/* Parses a plain integer (no fraction, exponent, '+' or leading zeros):
 * its sign in *neg and magnitude in *mag. */
static int jp_integer(struct jp *j, int *neg, uint64_t *mag)
{
	uint64_t v = 0;

	*neg = 0;
	if (j->p < j->end && *j->p == '-') {
		*neg = 1;
		j->p++;
	}
	if (!jp_digit(j))
		return json__fail(j, "invalid JSON: expected an integer");
	if (*j->p == '0' && j->end - j->p > 1 && j->p[1] >= '0' &&
	    j->p[1] <= '9')
		return json__fail(j, "invalid JSON: number with leading zeros");
	while (jp_digit(j)) {
		unsigned d = (unsigned)(*j->p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return json__fail(j, "number out of range");
		v = v * 10 + d;
		j->p++;
	}
	if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
		return json__fail(j, "invalid JSON: expected an integer");
	*mag = v;
	return 0;
}

int json__unsigned(struct jp *j, uint64_t max, uint64_t *out)
{
	uint64_t v;
	int neg, rc;

	if (j->p < j->end && *j->p == '-')
		return json__fail(j, "number out of range");
	rc = jp_integer(j, &neg, &v);
	if (rc)
		return rc;
	if (v > max)
		return json__fail(j, "number out of range");
	*out = v;
	return 0;
}

int json__signed(struct jp *j, int64_t *out)
{
	uint64_t v;
	int neg, rc;

	rc = jp_integer(j, &neg, &v);
	if (rc)
		return rc;
	if (!neg) {
		if (v > (uint64_t)INT64_MAX)
			return json__fail(j, "number out of range");
		*out = (int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX + 1)
			return json__fail(j, "number out of range");
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	}
	return 0;
}

/* Skips any JSON number (fraction and exponent allowed). */
static int jp_skip_number(struct jp *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (!jp_digit(j))
		return json__fail(j, "invalid JSON: expected a value");
	if (*j->p == '0') {
		j->p++;
		if (jp_digit(j))
			return json__fail(
			        j, "invalid JSON: number with leading zeros");
	} else {
		while (jp_digit(j))
			j->p++;
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!jp_digit(j))
			return json__fail(j, "invalid JSON: bad number");
		while (jp_digit(j))
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!jp_digit(j))
			return json__fail(j, "invalid JSON: bad number");
		while (jp_digit(j))
			j->p++;
	}
	return 0;
}

static int jp_literal(struct jp *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return json__fail(j, "invalid JSON: expected a value");
	j->p += n;
	return 0;
}

/* Skips one value of any kind; depth is the nesting of arrays/objects
 * already open around it (0 for a value of the message object). */
int json__skip(struct jp *j, int depth)
{
	size_t save = j->spos;
	tcpchat_str s;
	unsigned char open, close;
	int rc;

	if (j->p >= j->end)
		return json__fail(j, "invalid JSON: expected a value");
	switch (*j->p) {
	case '"':
		rc = json__string(j, &s);
		j->spos = save;
		return rc;
	case 't':
		return jp_literal(j, "true");
	case 'f':
		return jp_literal(j, "false");
	case 'n':
		return jp_literal(j, "null");
	case '{':
	case '[':
		break;
	default:
		return jp_skip_number(j);
	}

	open = *j->p;
	close = open == '{' ? '}' : ']';
	if (depth >= JSON_MAX_DEPTH)
		return json__fail(j, "invalid JSON: nesting too deep");
	j->p++;
	json__ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return 0;
	}
	for (;;) {
		if (open == '{') {
			rc = json__string(j, &s);
			j->spos = save;
			if (rc)
				return rc;
			json__ws(j);
			rc = json__expect(j, ':', "invalid JSON: expected ':'");
			if (rc)
				return rc;
			json__ws(j);
		}
		rc = json__skip(j, depth + 1);
		if (rc)
			return rc;
		json__ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			json__ws(j);
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			return 0;
		}
		return json__fail(
		        j, open == '{' ? "invalid JSON: expected ',' or '}'"
		                       : "invalid JSON: expected ',' or ']'");
	}
}
