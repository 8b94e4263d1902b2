/* libtcpchat - the TLS transport (OpenSSL over the socket).
 *
 * Writes: the frames of one flush go in one SSL_write (up to GATHER_MAX
 * bytes: records of up to 16 KiB written back to back), never a record
 * and a system call per frame.  When OpenSSL cannot send a record
 * now, it must later be given the same bytes again, but the connection's
 * queue may change meanwhile (a slow consumer's frames are dropped): so
 * the rest of that run is copied into `held` and counted as written, and
 * is pushed before anything else.  A server holds its output the same
 * way until the client's handshake is done.
 *
 * Reads: OpenSSL reads ahead (one read(2) for many records), and
 * SSL_read runs until the buffer is full or OpenSSL needs more from the
 * socket, so that a short read still means "drained"; `pending` tells
 * the connection what OpenSSL buffered beyond a full buffer. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "tls_int.h"

#define DRAIN_ROUNDS 16
/* Bytes of several frames gathered into one SSL_write (records of up to
 * 16 KiB each, written back to back). */
#define GATHER_MAX (64 * 1024)
#define TLS_HANDSHAKE_RECORD 0x16

enum wait { W_NONE, W_READ, W_WRITE };

struct tls_conn {
	SSL *ssl;
	struct tls_ctx *ctx;
	char *held; /* held bytes: held[off .. off + t->held) */
	size_t off;
	int server;
	int tcp_up;  /* client: the TCP connect completed */
	int peeked;  /* server: the first byte was seen to be TLS */
	int hs_done; /* handshake complete */
	int failed;  /* sticky error code, 0 while healthy */
	int failed_errno;
	int verify_failed;
	enum wait wr; /* what held output waits for */
	int rd_wants_write;
	int read_again; /* a read that wanted to write may go on now */
	char *subject;
	char why[200];
};

/* ---- errors --------------------------------------------------------- */

static int fail(struct tls_conn *tc, int rc)
{
	tc->failed = rc;
	tc->failed_errno = errno;
	return rc;
}

static int fail_why(struct tls_conn *tc, const char *why)
{
	snprintf(tc->why, sizeof tc->why, "%s", why);
	ERR_clear_error();
	return fail(tc, TCPCHAT_ETLS);
}

/* The error of an SSL call that returned r with SSL error e. */
static int ssl_failed(struct tls_conn *tc, int e)
{
	long v = SSL_get_verify_result(tc->ssl);
	unsigned long first = ERR_peek_error();
	if (e == SSL_ERROR_SYSCALL && first == 0) {
		if (errno && errno != EPIPE) {
			if (tc->hs_done)
				return fail(tc, TCPCHAT_ESYS);
			snprintf(tc->why, sizeof tc->why,
			         "connection lost during the TLS handshake: %s",
			         strerror(errno));
		} else if (tc->hs_done) {
			errno = ECONNRESET;
			return fail(tc, TCPCHAT_ESYS);
		} else {
			snprintf(tc->why, sizeof tc->why,
			         "connection closed during the TLS handshake");
		}
		return fail(tc, TCPCHAT_ETLS);
	}
	if (v != X509_V_OK &&
	    ERR_GET_REASON(first) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
		tc->verify_failed = 1;
		snprintf(tc->why, sizeof tc->why,
		         "certificate verify failed: %s",
		         X509_verify_cert_error_string(v));
		ERR_clear_error();
		return fail(tc, TCPCHAT_ETLS);
	}
	char r[160];
	tls__reason(r, sizeof r);
	int plain = strstr(r, "wrong version number") ||
	            strstr(r, "packet length too long") ||
	            strstr(r, "record layer failure");
	snprintf(tc->why, sizeof tc->why, "%s%s", r,
	         plain && !tc->hs_done ? " (is the peer speaking TLS?)" : "");
	return fail(tc, TCPCHAT_ETLS);
}

/* The sticky error again, errno included. */
static int failed(const struct tls_conn *tc)
{
	errno = tc->failed_errno;
	return tc->failed;
}

/* ---- wants ---------------------------------------------------------- */

static void update_wants(struct transport *t, struct tls_conn *tc)
{
	unsigned w = 0;
	if (tc->wr == W_WRITE || tc->rd_wants_write)
		w |= TRANSPORT_WANT_WRITE;
	if (tc->wr == W_READ)
		w |= TRANSPORT_WRITE_WAITS_READ;
	t->wants = w;
}

/* ---- handshake ------------------------------------------------------ */

static void note_subject(struct tls_conn *tc)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	X509 *peer = SSL_get1_peer_certificate(tc->ssl);
#else
	X509 *peer = SSL_get_peer_certificate(tc->ssl);
#endif
	if (!peer)
		return;
	if (SSL_get_verify_result(tc->ssl) == X509_V_OK) {
		BIO *b = BIO_new(BIO_s_mem());
		if (b && X509_NAME_print_ex(b, X509_get_subject_name(peer), 0,
		                            XN_FLAG_RFC2253) >= 0) {
			char *data;
			long n = BIO_get_mem_data(b, &data);
			tc->subject = malloc((size_t)n + 1);
			if (tc->subject) {
				memcpy(tc->subject, data, (size_t)n);
				tc->subject[n] = '\0';
			}
		}
		BIO_free(b);
	}
	X509_free(peer);
}

/* Moves the handshake on: 0 once done, TRANSPORT_AGAIN, or an error. */
static int handshake(struct transport *t, struct tls_conn *tc)
{
	ERR_clear_error();
	int r = SSL_do_handshake(tc->ssl);
	if (r == 1) {
		tc->hs_done = 1;
		note_subject(tc);
		if (t->held)
			tc->wr = W_WRITE; /* output waited: move it now */
		update_wants(t, tc);
		return 0;
	}
	int e = SSL_get_error(tc->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		t->wants = e == SSL_ERROR_WANT_READ ? TRANSPORT_WANT_READ
		                                    : TRANSPORT_WANT_WRITE;
		if (t->held)
			t->wants |= TRANSPORT_WRITE_WAITS_READ;
		return TRANSPORT_AGAIN;
	}
	return ssl_failed(tc, e);
}

/* A server's first look at a connection: a TLS handshake starts with a
 * handshake record; anything else is a plaintext client, told so in
 * plain text. */
static int peek_first(struct transport *t, struct tls_conn *tc)
{
	static const char notice[] = "error: this port needs TLS\r\n";
	unsigned char b;
	ssize_t n;
	do
		n = recv(t->fd, &b, 1, MSG_PEEK);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return TRANSPORT_AGAIN;
		return TCPCHAT_ESYS;
	}
	if (n == 0)
		return TCPCHAT_ECLOSED;
	if (b != TLS_HANDSHAKE_RECORD) {
		ssize_t w =
		        send(t->fd, notice, sizeof notice - 1, MSG_NOSIGNAL);
		TC_UNUSED(w);
		return fail_why(tc,
		                "not TLS: a plaintext client on a TLS port");
	}
	tc->peeked = 1;
	return 0;
}

/* ---- the transport ---------------------------------------------------- */

static int tls_connected(struct transport *t)
{
	struct tls_conn *tc = t->impl;
	if (tc->failed)
		return failed(tc);
	if (!tc->tcp_up) {
		int rc = transport__tcp_connected(t->fd);
		if (rc)
			return rc;
		tc->tcp_up = 1;
	}
	return tc->hs_done ? 0 : handshake(t, tc);
}

/* Copies data[0..len) behind the held bytes. */
static int hold(struct transport *t, struct tls_conn *tc, const char *data,
                size_t len)
{
	if (tc->off && t->held == 0)
		tc->off = 0;
	char *p = realloc(tc->held, tc->off + t->held + len);
	if (!p)
		return fail(tc, TCPCHAT_ENOMEM);
	memcpy(p + tc->off + t->held, data, len);
	tc->held = p;
	t->held += len;
	return 0;
}

/* One SSL_write: the count, TRANSPORT_AGAIN (tc->wr says for what), or
 * an error. */
static int write_some(struct tls_conn *tc, const char *p, size_t len)
{
	ERR_clear_error();
	int n = SSL_write(tc->ssl, p, (int)TC_MIN(len, (size_t)INT_MAX));
	if (n > 0) {
		tc->wr = W_NONE;
		return n;
	}
	int e = SSL_get_error(tc->ssl, n);
	if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
		tc->wr = e == SSL_ERROR_WANT_WRITE ? W_WRITE : W_READ;
		return TRANSPORT_AGAIN;
	}
	return ssl_failed(tc, e);
}

static int tls_flush(struct transport *t)
{
	struct tls_conn *tc = t->impl;
	if (tc->failed)
		return failed(tc);
	if (!tc->hs_done) /* the handshake moves on reads */
		return t->held ? TRANSPORT_AGAIN : 0;
	if (tc->rd_wants_write) { /* writable now: SSL_read may go on */
		tc->rd_wants_write = 0;
		tc->read_again = 1;
	}
	int rc = 0;
	while (t->held) {
		rc = write_some(tc, tc->held + tc->off, t->held);
		if (rc < 0)
			break;
		tc->off += (size_t)rc;
		t->held -= (size_t)rc;
		rc = 0;
	}
	if (!t->held) {
		free(tc->held);
		tc->held = NULL;
		tc->off = 0;
	}
	update_wants(t, tc);
	return rc;
}

static ssize_t tls_writev(struct transport *t, const struct iovec *iov, int cnt)
{
	struct tls_conn *tc = t->impl;
	if (tc->failed)
		return failed(tc);
	size_t taken = 0;
	if (!tc->hs_done) { /* a server's greeting waits for the client */
		if (t->held)
			return TRANSPORT_AGAIN;
		for (int i = 0; i < cnt; i++) {
			int rc = hold(t, tc, iov[i].iov_base, iov[i].iov_len);
			if (rc)
				return rc;
			taken += iov[i].iov_len;
		}
		tc->wr = W_READ;
		update_wants(t, tc);
		return (ssize_t)taken;
	}
	if (t->held) {
		int rc = tls_flush(t);
		if (rc)
			return rc;
	}
	if (cnt > 1) { /* one run of records for the whole flush */
		for (int i = 0; i < cnt; i++) {
			if (taken && taken + iov[i].iov_len > GATHER_MAX)
				break;
			int rc = hold(t, tc, iov[i].iov_base, iov[i].iov_len);
			if (rc)
				return taken ? (ssize_t)taken : rc;
			taken += iov[i].iov_len;
		}
		int rc = tls_flush(t);
		return rc && rc != TRANSPORT_AGAIN ? rc : (ssize_t)taken;
	}
	for (int i = 0; i < cnt; i++) {
		const char *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		while (len) {
			int n = write_some(tc, p, len);
			if (n == TRANSPORT_AGAIN) {
				/* OpenSSL may hold a record of p: the same
				 * bytes must come back, whatever the queue
				 * does meanwhile. */
				int rc = hold(t, tc, p, len);
				update_wants(t, tc);
				if (rc)
					return taken ? (ssize_t)taken : rc;
				return (ssize_t)(taken + len);
			}
			if (n < 0)
				return taken ? (ssize_t)taken : n;
			p += n;
			len -= (size_t)n;
			taken += (size_t)n;
		}
	}
	update_wants(t, tc);
	return (ssize_t)taken;
}

static ssize_t tls_read(struct transport *t, void *buf, size_t len)
{
	struct tls_conn *tc = t->impl;
	if (tc->failed)
		return failed(tc);
	if (!tc->hs_done) {
		int rc = tc->server && !tc->peeked ? peek_first(t, tc) : 0;
		if (rc == TCPCHAT_ECLOSED)
			return 0;
		if (rc == 0)
			rc = handshake(t, tc);
		if (rc)
			return rc;
	}
	tc->rd_wants_write = 0;
	tc->read_again = 0;
	size_t got = 0;
	int end = 0, rc = 0;
	while (got < len) {
		ERR_clear_error();
		int n = SSL_read(tc->ssl, (char *)buf + got,
		                 (int)TC_MIN(len - got, (size_t)INT_MAX));
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		int e = SSL_get_error(tc->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			break;
		if (e == SSL_ERROR_WANT_WRITE) {
			tc->rd_wants_write = 1;
			break;
		}
		if (e == SSL_ERROR_ZERO_RETURN ||
		    (e == SSL_ERROR_SYSCALL && !ERR_peek_error() && !errno))
			end = 1;
		else
			rc = ssl_failed(tc, e);
		break;
	}
	update_wants(t, tc);
	if (got)
		return (ssize_t)got; /* an error waits for the next call */
	if (rc)
		return failed(tc);
	return end ? 0 : TRANSPORT_AGAIN;
}

static void tls_shutdown(struct transport *t)
{
	struct tls_conn *tc = t->impl;
	if (tc->hs_done && !tc->failed) {
		ERR_clear_error();
		SSL_shutdown(tc->ssl); /* close_notify, once */
		ERR_clear_error();
	}
	shutdown(t->fd, SHUT_WR);
}

static void tls_close(struct transport *t, int drain)
{
	struct tls_conn *tc = t->impl;
	if (tc->hs_done && !tc->failed) {
		if (t->held)
			tls_flush(t); /* one last try */
		if (!t->held &&
		    !(SSL_get_shutdown(tc->ssl) & SSL_SENT_SHUTDOWN)) {
			ERR_clear_error();
			SSL_shutdown(tc->ssl);
		}
		ERR_clear_error();
	}
	if (drain) {
		char junk[4096];
		for (int i = 0; i < DRAIN_ROUNDS; i++)
			if (read(t->fd, junk, sizeof junk) <= 0)
				break;
	}
	close(t->fd);
	t->fd = -1;
	t->held = 0;
	SSL_free(tc->ssl);
	tls__ctx_free(tc->ctx);
	free(tc->held);
	free(tc->subject);
	free(tc);
	t->impl = NULL;
}

static size_t tls_pending(const struct transport *t)
{
	const struct tls_conn *tc = t->impl;
	if (!tc || !tc->hs_done || tc->failed)
		return 0;
	/* records read ahead, decrypted or not */
	return (size_t)SSL_has_pending(tc->ssl) + (size_t)tc->read_again;
}

static const char *tls_subject(const struct transport *t)
{
	const struct tls_conn *tc = t->impl;
	return tc ? tc->subject : NULL;
}

static const char *tls_error(const struct transport *t)
{
	const struct tls_conn *tc = t->impl;
	return tc && tc->why[0] ? tc->why : NULL;
}

static const struct transport_ops tls_ops = {
        .name = "tls",
        .connected = tls_connected,
        .read = tls_read,
        .writev = tls_writev,
        .shutdown = tls_shutdown,
        .close = tls_close,
        .flush = tls_flush,
        .pending = tls_pending,
        .peer_subject = tls_subject,
        .error = tls_error,
};

/* A client checks host: a name (also sent as SNI) or an IP address. */
static int set_host(struct tls_conn *tc, const char *host)
{
	if (tc->ctx->no_verify || !host || !*host)
		return 0;
	X509_VERIFY_PARAM *vp = SSL_get0_param(tc->ssl);
	if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1)
		return 0;
	if (SSL_set1_host(tc->ssl, host) != 1 ||
	    SSL_set_tlsext_host_name(tc->ssl, host) != 1)
		return TCPCHAT_ETLS;
	return 0;
}

int transport__tls(struct transport *t, int fd, struct tls_ctx *ctx,
                   const char *host)
{
	struct tls_conn *tc = calloc(1, sizeof *tc);
	if (!tc)
		return TCPCHAT_ENOMEM;
	ERR_clear_error();
	tc->ssl = SSL_new(ctx->ssl);
	BIO *bio = tc->ssl ? tls__socket_bio(fd) : NULL;
	if (!bio) {
		SSL_free(tc->ssl);
		free(tc);
		ERR_clear_error();
		return TCPCHAT_ENOMEM;
	}
	SSL_set_bio(tc->ssl, bio, bio); /* the SSL owns it */
	tc->ctx = tls__ctx_ref(ctx);
	tc->server = ctx->side == TLS_SERVER;
	if (tc->server) {
		SSL_set_accept_state(tc->ssl);
	} else {
		const char *name = ctx->server_name ? ctx->server_name : host;
		if (set_host(tc, name) != 0) {
			SSL_free(tc->ssl);
			tls__ctx_free(tc->ctx);
			free(tc);
			ERR_clear_error();
			return TCPCHAT_ETLS;
		}
		SSL_set_connect_state(tc->ssl);
	}
	t->ops = &tls_ops;
	t->fd = fd;
	t->wants = 0;
	t->held = 0;
	t->impl = tc;
	return 0;
}

int transport__tls_verify_failed(const struct transport *t)
{
	const struct tls_conn *tc = t->ops == &tls_ops ? t->impl : NULL;
	return tc && tc->verify_failed;
}
