/* Append throughput of the SQLite store: batches of 1, 32 and 256
 * messages of 100 bytes, with synchronous NORMAL and FULL, each for about
 * a second, on a new file in $TMPDIR (else /tmp).  Prints; asserts
 * nothing.  Run with `meson test --benchmark` or directly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storeutil.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(int flags, size_t batch)
{
	static struct store_msg m[256];
	static const char body[] =
	        "0123456789012345678901234567890123456789012345678901234567890"
	        "123456789012345678901234567890123456789";
	char dir[256], path[300];
	const char *tmp = getenv("TMPDIR");
	struct store *s = NULL;
	char err[512];
	uint64_t seq = 1, n = 0, commits = 0;
	double t0, t = 0;
	size_t k;
	int rc;

	snprintf(dir, sizeof dir, "%s/tcpchat-bench-XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror(dir);
		return 1;
	}
	snprintf(path, sizeof path, "%s/bench.db", dir);
	rc = store__sqlite_open(&s, path, flags | STORE_CREATE, err,
	                        sizeof err);
	if (rc) {
		fprintf(stderr, "%s\n", err);
		rmdir(dir);
		return 1;
	}
	t0 = now_s();
	do {
		for (k = 0; k < batch; k++) {
			m[k].room = su_str("#bench");
			m[k].seq = seq++;
			m[k].id = m[k].seq;
			m[k].timestamp = (int64_t)m[k].seq;
			m[k].sender = su_str("alice");
			m[k].body = (tcpchat_str){body, 100};
			m[k].flags = 0;
		}
		if ((rc = store__append(s, m, batch, NULL, 0)) != 0) {
			fprintf(stderr, "append: %d %s\n", rc,
			        store__errmsg(s));
			break;
		}
		n += batch;
		commits++;
		t = now_s() - t0;
	} while (t < 1.0 && n < 2000000);
	if (t <= 0)
		t = now_s() - t0;
	printf("%-6s batch %3zu: %9.0f messages/s  %7.0f commits/s  "
	       "(%llu messages in %.2f s)\n",
	       flags & STORE_FSYNC ? "FULL" : "NORMAL", batch, (double)n / t,
	       (double)commits / t, (unsigned long long)n, t);
	store__close(s);
	unlink(path); /* the WAL is gone after a clean close */
	rmdir(dir);
	return rc != 0;
}

int main(void)
{
	static const size_t batches[] = {1, 32, 256};
	size_t i;
	int f, bad = 0;

	if (!TCPCHAT_HAVE_SQLITE) {
		printf("built without SQLite: nothing to measure\n");
		return 0;
	}
	for (f = 0; f < 2; f++)
		for (i = 0; i < 3; i++)
			bad |= run(f ? STORE_FSYNC : 0, batches[i]);
	return bad;
}
