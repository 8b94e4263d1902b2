/* tcpchat-bench: small helpers shared by the modes (errors, memory, byte
 * order, hex and decimal numbers, the latency histogram, /proc, and the
 * RESULT line).
 * SPDX-License-Identifier: MIT
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ------------------------------------------------------- */

void die(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	exit(2);
}

void warn(unsigned *count, const char *fmt, ...)
{
	va_list ap;
	if (count && (*count)++ >= MAX_WARN)
		return;
	fprintf(stderr, PROG ": warning: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

void *xcalloc(size_t n, size_t each)
{
	void *p = calloc(n ? n : 1, each ? each : 1);
	if (!p)
		die("out of memory (%zu x %zu bytes)", n, each);
	return p;
}

void put_u16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

void put_u64(unsigned char *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

uint64_t get_u64(const unsigned char *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

const char hexdig[] = "0123456789abcdef";

void put_hex(char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = hexdig[v & 15];
		v >>= 4;
	}
}

int get_hex(const char *p, int n, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10u;
		else
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

/* Parses an unsigned decimal number of at most 18 digits. */
int get_dec(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

/* ---- latency histogram ----------------------------------------------------
 * Values below 16 have a bucket each; above, every power of two [2^k,
 * 2^(k+1)) is split into 16 linear sub-buckets: relative error <= 1/16. */

static unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned k = 63u - (unsigned)__builtin_clzll(v);
	unsigned sub = (unsigned)(v >> (k - HIST_SUBBITS)) & (HIST_SUB - 1);
	return (k - HIST_SUBBITS + 1) * HIST_SUB + sub;
}

static void hist_bounds(unsigned i, uint64_t *lo, uint64_t *width)
{
	if (i < HIST_SUB) {
		*lo = i;
		*width = 1;
		return;
	}
	unsigned k = i / HIST_SUB + HIST_SUBBITS - 1;
	unsigned sub = i % HIST_SUB;
	*lo = (uint64_t)(HIST_SUB + sub) << (k - HIST_SUBBITS);
	*width = (uint64_t)1 << (k - HIST_SUBBITS);
}

void hist_add(struct hist *h, int64_t v)
{
	uint64_t u = v > 0 ? (uint64_t)v : 0;
	h->hist[hist_index(u)]++;
	h->hist_n++;
	if (u > h->hist_max)
		h->hist_max = u;
}

/* The value at quantile q (0..1], as the middle of its bucket, in ns. */
double hist_quantile(const struct hist *h, double q)
{
	if (h->hist_n == 0)
		return -1;
	uint64_t want = (uint64_t)(q * (double)h->hist_n + 0.999999);
	if (want < 1)
		want = 1;
	if (want > h->hist_n)
		want = h->hist_n;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->hist[i];
		if (seen >= want) {
			uint64_t lo, w;
			hist_bounds(i, &lo, &w);
			double mid = (double)lo + (double)(w - 1) / 2.0;
			return mid > (double)h->hist_max ? (double)h->hist_max
			                                 : mid;
		}
	}
	return (double)h->hist_max;
}

/* ---- /proc and rusage ----------------------------------------------------- */

int proc_cpu_ticks(long pid, uint64_t *ticks)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* fields after "(comm)": 3 state ... 14 utime, 15 stime */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	unsigned long long ut = 0, st = 0;
	for (int field = 3; field <= 15; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -1;
		if (field == 14)
			ut = strtoull(p, NULL, 10);
		if (field == 15)
			st = strtoull(p, NULL, 10);
		while (*p && *p != ' ')
			p++;
	}
	*ticks = ut + st;
	return 0;
}

/* VmRSS and VmHWM in kB, -1 when unknown. */
int proc_mem(long pid, long *rss_kb, long *hwm_kb)
{
	char path[64], line[256];
	*rss_kb = *hwm_kb = -1;
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "VmRSS:", 6))
			*rss_kb = strtol(line + 6, NULL, 10);
		else if (!strncmp(line, "VmHWM:", 6))
			*hwm_kb = strtol(line + 6, NULL, 10);
	}
	fclose(f);
	return *rss_kb >= 0 ? 0 : -1;
}

double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- output ----------------------------------------------------------------- */

void kv_add(struct kv *kv, const char *key, const char *fmt, ...)
{
	va_list ap;
	if (kv->len >= sizeof kv->buf)
		return;
	int n = snprintf(kv->buf + kv->len, sizeof kv->buf - kv->len,
	                 " %s=", key);
	if (n > 0)
		kv->len += (size_t)n;
	if (kv->len >= sizeof kv->buf)
		return;
	va_start(ap, fmt);
	n = vsnprintf(kv->buf + kv->len, sizeof kv->buf - kv->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		kv->len += (size_t)n;
}

/* A number, or "-" when v < 0 (unknown or not applicable). */
void kv_num(struct kv *kv, const char *key, double v, int decimals)
{
	if (v < 0)
		kv_add(kv, key, "-");
	else
		kv_add(kv, key, "%.*f", decimals, v);
}
