/* Tests for the plain TCP transport (transport_tcp.c) over real
 * non-blocking TCP sockets on 127.0.0.1. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "net.h"
#include "transport.h"

#define DEADLINE_MS 30000

/* ---- helpers ------------------------------------------------------------ */

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t until = util__now_ms() + timeout_ms;
	for (;;) {
		int left = (int)(until - util__now_ms());
		int n = poll(&p, 1, left > 0 ? left : 0);
		if (n > 0)
			return p.revents;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static void addr_of(const char *s, union net_addr *a, socklen_t *len)
{
	struct net_addrs as;
	ck_assert_int_eq(net__resolve(s, 0, &as), 0);
	*a = as.a[0];
	*len = as.len[0];
}

/* A listening socket on 127.0.0.1 with an ephemeral port. */
static int listener(int backlog, int *port)
{
	struct net_addrs as;
	int lfd;
	ck_assert_int_eq(net__resolve("127.0.0.1:0", 1, &as), 0);
	ck_assert_int_eq(net__listen(&as.a[0], as.len[0], backlog, &lfd), 0);
	*port = net__local_port(lfd);
	ck_assert_int_gt(*port, 0);
	return lfd;
}

static int connect_to(int port)
{
	char s[64];
	union net_addr a;
	socklen_t len;
	int fd;
	snprintf(s, sizeof s, "127.0.0.1:%d", port);
	addr_of(s, &a, &len);
	ck_assert_int_eq(net__connect(&a, len, &fd), 0);
	return fd;
}

static int accept_one(int lfd)
{
	union net_addr peer;
	socklen_t plen;
	int fd;
	ck_assert(wait_fd(lfd, POLLIN, DEADLINE_MS) & POLLIN);
	ck_assert_int_eq(net__accept(lfd, &fd, &peer, &plen), 0);
	return fd;
}

/* A connected pair: *a from net__connect, *b accepted; both
 * non-blocking. */
static void tcp_pair(int *a, int *b)
{
	int port;
	int lfd = listener(16, &port);
	*a = connect_to(port);
	ck_assert(wait_fd(*a, POLLOUT, DEADLINE_MS) & POLLOUT);
	*b = accept_one(lfd);
	close(lfd);
	ck_assert(fcntl(*a, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(*b, F_GETFL) & O_NONBLOCK);
}

static unsigned char pat(size_t off)
{
	return (unsigned char)((off * 131u + (off >> 9)) & 0xFF);
}

static void fill_pat(unsigned char *p, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(off + i);
}

/* Reads from a raw fd until EOF, an error or the deadline; checks the
 * pattern from offset start.  Returns the byte count; *eof is 1 on a
 * clean end of stream, *err the errno of a failed read (0 if none), *bad
 * the number of bytes off the pattern. */
static size_t drain_raw(int fd, size_t start, int *eof, int *err, size_t *bad)
{
	unsigned char buf[65536];
	size_t total = 0;
	int64_t until = util__now_ms() + DEADLINE_MS;
	*eof = 0;
	*err = 0;
	*bad = 0;
	while (util__now_ms() < until) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			for (ssize_t i = 0; i < n; i++)
				if (buf[i] != pat(start + total + (size_t)i))
					(*bad)++;
			total += (size_t)n;
			continue;
		}
		if (n == 0) {
			*eof = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			wait_fd(fd, POLLIN, (int)(until - util__now_ms()));
			continue;
		}
		*err = errno;
		break;
	}
	return total;
}

/* Reads exactly n bytes from the transport (waiting for readiness). */
static void tp_read_exact(struct transport *t, char *buf, size_t n)
{
	size_t got = 0;
	int64_t until = util__now_ms() + DEADLINE_MS;
	while (got < n) {
		ck_assert_msg(util__now_ms() < until, "read timed out");
		ssize_t k = transport__read(t, buf + got, n - got);
		if (k == TRANSPORT_AGAIN) {
			wait_fd(t->fd, POLLIN, 1000);
			continue;
		}
		ck_assert_int_gt(k, 0);
		got += (size_t)k;
	}
}

static void raw_read_exact(int fd, char *buf, size_t n)
{
	size_t got = 0;
	int64_t until = util__now_ms() + DEADLINE_MS;
	while (got < n) {
		ck_assert_msg(util__now_ms() < until, "read timed out");
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			wait_fd(fd, POLLIN, 1000);
			continue;
		}
		ck_assert_int_gt(k, 0);
		got += (size_t)k;
	}
}

/* Writes through the transport until it reports TRANSPORT_AGAIN;
 * returns the bytes written (following the pattern from *off). */
static size_t fill_until_again(struct transport *t, size_t *off)
{
	enum { CHUNK = 128 * 1024 };
	unsigned char *a = malloc(CHUNK), *b = malloc(CHUNK);
	size_t total = 0;
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	for (;;) {
		ck_assert_msg(total < ((size_t)1 << 30),
		              "1 GB written without TRANSPORT_AGAIN");
		/* Two iovecs per call. */
		fill_pat(a, *off, CHUNK);
		fill_pat(b, *off + CHUNK, CHUNK);
		struct iovec iov[2] = {{a, CHUNK}, {b, CHUNK}};
		ssize_t n = transport__writev(t, iov, 2);
		if (n == TRANSPORT_AGAIN)
			break;
		ck_assert_int_gt(n, 0);
		ck_assert_int_le(n, 2 * CHUNK);
		total += (size_t)n;
		*off += (size_t)n;
	}
	free(a);
	free(b);
	return total;
}

/* ---- read and write ------------------------------------------------------ */

START_TEST(test_roundtrip)
{
	struct transport t;
	int a, b;
	char buf[256];

	tcp_pair(&a, &b);
	transport__tcp(&t, a);
	ck_assert_int_eq(t.fd, a);
	ck_assert_uint_eq(t.wants, 0);
	ck_assert_ptr_nonnull(t.ops);
	ck_assert_str_eq(t.ops->name, "tcp");

	struct iovec iov[3] = {{"hello ", 6}, {"", 0}, {"world!", 6}};
	ck_assert_int_eq(transport__writev(&t, iov, 3), 12);
	raw_read_exact(b, buf, 12);
	ck_assert_int_eq(memcmp(buf, "hello world!", 12), 0);

	ck_assert_int_eq(write(b, "pong", 4), 4);
	tp_read_exact(&t, buf, 4);
	ck_assert_int_eq(memcmp(buf, "pong", 4), 0);

	/* A read smaller than what is there leaves the rest. */
	ck_assert_int_eq(write(b, "abcdef", 6), 6);
	tp_read_exact(&t, buf, 2);
	ck_assert_int_eq(memcmp(buf, "ab", 2), 0);
	tp_read_exact(&t, buf, 4);
	ck_assert_int_eq(memcmp(buf, "cdef", 4), 0);

	transport__close(&t, 0);
	ck_assert_int_eq(t.fd, -1);
	close(b);
}
END_TEST

START_TEST(test_read_again_and_eof)
{
	struct transport t;
	int a, b;
	char buf[64];

	tcp_pair(&a, &b);
	transport__tcp(&t, a);
	ck_assert_int_eq(transport__read(&t, buf, sizeof buf), TRANSPORT_AGAIN);
	ck_assert_int_eq(transport__read(&t, buf, sizeof buf), TRANSPORT_AGAIN);

	ck_assert_int_eq(write(b, "last", 4), 4);
	ck_assert_int_eq(shutdown(b, SHUT_WR), 0);
	tp_read_exact(&t, buf, 4);
	ck_assert_int_eq(memcmp(buf, "last", 4), 0);
	ck_assert(wait_fd(a, POLLIN, DEADLINE_MS) & POLLIN);
	ck_assert_int_eq(transport__read(&t, buf, sizeof buf), 0);
	ck_assert_int_eq(transport__read(&t, buf, sizeof buf), 0); /* stays */

	/* Half-closed: our direction still works. */
	struct iovec iov = {"still", 5};
	ck_assert_int_eq(transport__writev(&t, &iov, 1), 5);
	raw_read_exact(b, buf, 5);
	ck_assert_int_eq(memcmp(buf, "still", 5), 0);

	transport__close(&t, 0);
	close(b);
}
END_TEST

START_TEST(test_read_reset_is_esys)
{
	struct transport t;
	int a, b;
	char buf[64];

	tcp_pair(&a, &b);
	transport__tcp(&t, a);
	struct linger lg = {1, 0};
	ck_assert_int_eq(setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg),
	                 0);
	close(b); /* sends a reset */
	ck_assert(wait_fd(a, POLLIN, DEADLINE_MS) != 0);
	errno = 0;
	ck_assert_int_eq(transport__read(&t, buf, sizeof buf), TCPCHAT_ESYS);
	ck_assert_int_eq(errno, ECONNRESET);
	transport__close(&t, 0);
}
END_TEST

START_TEST(test_writev_again_when_full)
{
	struct transport t;
	int a, b, eof, err;
	size_t off = 0, bad;

	tcp_pair(&a, &b);
	transport__tcp(&t, a);
	size_t first = fill_until_again(&t, &off);
	ck_assert_uint_gt(first, 0);
	/* (No second "still full" check: the kernel may move queued bytes
	 * on to the peer's receive buffer meanwhile and open room.) */

	/* Once the peer reads, it can write again. */
	size_t head = first / 2;
	unsigned char *buf = malloc(head);
	ck_assert_ptr_nonnull(buf);
	raw_read_exact(b, (char *)buf, head);
	size_t off_pat = 0;
	for (size_t i = 0; i < head; i++)
		off_pat += buf[i] != pat(i);
	ck_assert_uint_eq(off_pat, 0);
	free(buf);
	ck_assert(wait_fd(a, POLLOUT, DEADLINE_MS) & POLLOUT);
	size_t more = fill_until_again(&t, &off);
	ck_assert_uint_gt(more, 0);

	/* Every byte arrives, in order, then EOF. */
	transport__shutdown(&t);
	size_t rest = drain_raw(b, head, &eof, &err, &bad);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(eof, 1);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(head + rest, first + more);
	transport__close(&t, 0);
	close(b);
}
END_TEST

/* Content check of a filled stream, read from the start. */
START_TEST(test_writev_full_content)
{
	struct transport t;
	int a, b, eof, err;
	size_t off = 0, bad;

	tcp_pair(&a, &b);
	transport__tcp(&t, a);
	size_t n = fill_until_again(&t, &off);
	transport__shutdown(&t);
	size_t got = drain_raw(b, 0, &eof, &err, &bad);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(eof, 1);
	ck_assert_uint_eq(got, n);
	ck_assert_uint_eq(bad, 0);
	transport__close(&t, 0);
	close(b);
}
END_TEST

START_TEST(test_writev_peer_gone_no_sigpipe)
{
	struct transport t;
	int a, b;
	char buf[4096];

	/* SIGPIPE at its default: a write without MSG_NOSIGNAL would
	 * kill the test. */
	signal(SIGPIPE, SIG_DFL);
	tcp_pair(&a, &b);
	transport__tcp(&t, a);
	close(b);
	memset(buf, 'z', sizeof buf);
	struct iovec iov = {buf, sizeof buf};
	ssize_t n = 0;
	int64_t until = util__now_ms() + DEADLINE_MS;
	errno = 0;
	while (util__now_ms() < until) {
		n = transport__writev(&t, &iov, 1);
		if (n < 0 && n != TRANSPORT_AGAIN)
			break;
		if (n == TRANSPORT_AGAIN)
			wait_fd(a, POLLOUT, 100);
	}
	ck_assert_int_eq(n, TCPCHAT_ESYS);
	ck_assert(errno == EPIPE || errno == ECONNRESET);
	transport__close(&t, 0);
}
END_TEST

/* ---- shutdown and close -------------------------------------------------- */

START_TEST(test_shutdown_peer_reads_eof)
{
	struct transport t;
	int a, b;
	char buf[64];

	tcp_pair(&a, &b);
	transport__tcp(&t, a);
	struct iovec iov = {"bye", 3};
	ck_assert_int_eq(transport__writev(&t, &iov, 1), 3);
	transport__shutdown(&t);
	ck_assert_int_eq(t.fd, a); /* still open */
	raw_read_exact(b, buf, 3);
	ck_assert_int_eq(memcmp(buf, "bye", 3), 0);
	ck_assert(wait_fd(b, POLLIN, DEADLINE_MS) & POLLIN);
	ck_assert_int_eq(read(b, buf, sizeof buf), 0);
	/* Reading still works after our shutdown. */
	ck_assert_int_eq(write(b, "ok", 2), 2);
	tp_read_exact(&t, buf, 2);
	ck_assert_int_eq(memcmp(buf, "ok", 2), 0);
	transport__close(&t, 0);
	close(b);
}
END_TEST

/* The situation close(drain) is for: our last bytes are still in flight
 * (the peer has not read them: some are still in our send buffer) and the
 * peer has sent bytes we never read.  Returns what the peer then
 * receives. */
static void close_with_unread_input(int drain, size_t *sent, size_t *got,
                                    int *eof, int *err, size_t *bad)
{
	struct transport t;
	int a, b;
	size_t off = 0;

	tcp_pair(&a, &b);
	transport__tcp(&t, a);
	*sent = fill_until_again(&t, &off);
	/* The peer sends more, which we never read. */
	char in[2000];
	memset(in, 'p', sizeof in);
	ck_assert_int_eq(write(b, in, sizeof in), (ssize_t)sizeof in);
	int64_t until = util__now_ms() + DEADLINE_MS;
	int avail = 0;
	while (avail < (int)sizeof in) {
		ck_assert_msg(util__now_ms() < until, "input never arrived");
		wait_fd(a, POLLIN, 100);
		ck_assert_int_eq(ioctl(a, FIONREAD, &avail), 0);
	}
	transport__close(&t, drain);
	ck_assert_int_eq(t.fd, -1);
	*got = drain_raw(b, 0, eof, err, bad);
	close(b);
}

START_TEST(test_close_drain_keeps_last_bytes)
{
	size_t sent, got, bad;
	int eof, err;

	close_with_unread_input(1, &sent, &got, &eof, &err, &bad);
	ck_assert_msg(err == 0, "peer read failed: %s", strerror(err));
	ck_assert_int_eq(eof, 1);
	ck_assert_uint_eq(got, sent);
	ck_assert_uint_eq(bad, 0);
}
END_TEST

/* The control for the test above: without draining, the same sequence
 * resets the connection and the peer loses our last bytes (so the test
 * above can tell drain from no drain). */
START_TEST(test_close_nodrain_resets)
{
	size_t sent, got, bad;
	int eof, err;

	close_with_unread_input(0, &sent, &got, &eof, &err, &bad);
	ck_assert_uint_eq(bad, 0);
	ck_assert_msg(err == ECONNRESET && got < sent,
	              "expected a reset losing data: err %d, %zu of %zu", err,
	              got, sent);
}
END_TEST

START_TEST(test_close_twice_and_shutdown_after)
{
	struct transport t;
	int a, b;
	char buf[8];

	tcp_pair(&a, &b);
	transport__tcp(&t, a);
	transport__close(&t, 1); /* nothing to drain: must not block */
	ck_assert_int_eq(t.fd, -1);
	ck_assert_int_eq(fcntl(a, F_GETFD), -1); /* descriptor closed */
	ck_assert_int_eq(errno, EBADF);
	transport__close(&t, 1); /* no-op */
	transport__shutdown(&t); /* no-op */
	ck_assert(wait_fd(b, POLLIN, DEADLINE_MS) & POLLIN);
	ck_assert_int_eq(read(b, buf, sizeof buf), 0);
	close(b);
}
END_TEST

/* ---- connect ------------------------------------------------------------- */

START_TEST(test_connected_ok)
{
	struct transport t;
	int port;
	int lfd = listener(16, &port);
	int fd = connect_to(port);

	transport__tcp(&t, fd);
	ck_assert(wait_fd(fd, POLLOUT, DEADLINE_MS) & POLLOUT);
	ck_assert_int_eq(t.ops->connected(&t), 0);
	int b = accept_one(lfd);
	struct iovec iov = {"hi", 2};
	ck_assert_int_eq(transport__writev(&t, &iov, 1), 2);
	char buf[2];
	raw_read_exact(b, buf, 2);
	ck_assert_int_eq(memcmp(buf, "hi", 2), 0);
	transport__close(&t, 0);
	close(b);
	close(lfd);
}
END_TEST

START_TEST(test_connected_refused)
{
	struct transport t;
	int port;
	/* A port that was just ours and is now closed. */
	int lfd = listener(16, &port);
	close(lfd);

	char s[64];
	union net_addr a;
	socklen_t len;
	int fd = -1;
	snprintf(s, sizeof s, "127.0.0.1:%d", port);
	addr_of(s, &a, &len);
	int rc = net__connect(&a, len, &fd);
	if (rc != 0) {
		/* Refused before the call returned: still the right code. */
		ck_assert_int_eq(rc, TCPCHAT_ESYS);
		ck_assert_int_eq(errno, ECONNREFUSED);
		return;
	}
	transport__tcp(&t, fd);
	ck_assert(wait_fd(fd, POLLOUT, DEADLINE_MS) != 0);
	errno = 0;
	ck_assert_int_eq(t.ops->connected(&t), TCPCHAT_ESYS);
	ck_assert_int_eq(errno, ECONNREFUSED);
	transport__close(&t, 0);
}
END_TEST

/* While the handshake has not completed, connected() says so. */
START_TEST(test_connected_in_progress)
{
	struct transport t;
	int port;
	/* Backlog 0: once one connection waits in the accept queue, the
	 * kernel drops further SYNs, so the next connect stays pending. */
	int lfd = listener(0, &port);
	int first = connect_to(port);
	ck_assert(wait_fd(first, POLLOUT, DEADLINE_MS) & POLLOUT);
	int fd = connect_to(port);

	struct tcp_info ti;
	socklen_t tl = sizeof ti;
	ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
	ck_assert_msg(ti.tcpi_state == 2 /* TCP_SYN_SENT */,
	              "precondition: connect not pending (state %u)",
	              ti.tcpi_state);
	ck_assert_int_eq(wait_fd(fd, POLLOUT, 0) & POLLOUT, 0);
	transport__tcp(&t, fd);
	int rc = t.ops->connected(&t);
	transport__close(&t, 0);
	close(first);
	close(lfd);
	ck_assert_msg(rc == TRANSPORT_AGAIN,
	              "connected() during the handshake returned %d", rc);
}
END_TEST

/* ---- refuse -------------------------------------------------------------- */

START_TEST(test_refuse)
{
	int a, b, port;
	char buf[64];
	int lfd = listener(16, &port);

	a = connect_to(port);
	b = accept_one(lfd);
	transport__refuse(b, "ERR full\n", 9);
	ck_assert_int_eq(fcntl(b, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	raw_read_exact(a, buf, 9);
	ck_assert_int_eq(memcmp(buf, "ERR full\n", 9), 0);
	ck_assert(wait_fd(a, POLLIN, DEADLINE_MS) & POLLIN);
	ck_assert_int_eq(read(a, buf, sizeof buf), 0);
	close(a);

	/* Nothing to say: just closed. */
	a = connect_to(port);
	b = accept_one(lfd);
	transport__refuse(b, NULL, 0);
	ck_assert_int_eq(fcntl(b, F_GETFD), -1);
	ck_assert(wait_fd(a, POLLIN, DEADLINE_MS) & POLLIN);
	ck_assert_int_eq(read(a, buf, sizeof buf), 0);
	close(a);
	close(lfd);
}
END_TEST

static Suite *transport_suite(void)
{
	Suite *s = suite_create("transport");
	TCase *tc;

	tc = tcase_create("io");
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_read_again_and_eof);
	tcase_add_test(tc, test_read_reset_is_esys);
	tcase_add_test(tc, test_writev_again_when_full);
	tcase_add_test(tc, test_writev_full_content);
	tcase_add_test(tc, test_writev_peer_gone_no_sigpipe);
	suite_add_tcase(s, tc);

	tc = tcase_create("close");
	tcase_add_test(tc, test_shutdown_peer_reads_eof);
	tcase_add_test(tc, test_close_drain_keeps_last_bytes);
	tcase_add_test(tc, test_close_nodrain_resets);
	tcase_add_test(tc, test_close_twice_and_shutdown_after);
	suite_add_tcase(s, tc);

	tc = tcase_create("connect");
	tcase_add_test(tc, test_connected_ok);
	tcase_add_test(tc, test_connected_refused);
	tcase_add_test(tc, test_connected_in_progress);
	tcase_add_test(tc, test_refuse);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(transport_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
