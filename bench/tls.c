/* tcpchat-bench: TLS under the connections (OpenSSL, client side), non
 * blocking and driven by the one epoll loop of tcpchat-bench.c.  Built
 * when BENCH_TLS is defined (bench/meson.build, when OpenSSL is found);
 * without it, --tls exits with status 2.
 * SPDX-License-Identifier: MIT
 */
#include "bench.h"

#ifdef BENCH_TLS

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static SSL_CTX *ctx;
static const char *peer_host;
static int peer_is_ip;
static char last_error[256];

/* Sets last_error from the OpenSSL error queue (emptied), or from errno
 * for SSL_ERROR_SYSCALL. */
static const char *note_error(SSL *ssl, int err)
{
	unsigned long e = ERR_get_error();
	if (e) {
		char buf[200];
		ERR_error_string_n(e, buf, sizeof buf);
		snprintf(last_error, sizeof last_error, "TLS: %s", buf);
		if (err == SSL_ERROR_SSL && ssl &&
		    SSL_get_verify_result(ssl) != X509_V_OK) {
			size_t n = strlen(last_error);
			snprintf(last_error + n, sizeof last_error - n, " (%s)",
			         X509_verify_cert_error_string(
			                 SSL_get_verify_result(ssl)));
		}
		ERR_clear_error();
	} else if (err == SSL_ERROR_SYSCALL && errno) {
		snprintf(last_error, sizeof last_error, "TLS: %s",
		         strerror(errno));
	} else if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN) {
		snprintf(last_error, sizeof last_error,
		         "TLS: closed by the server");
	} else {
		snprintf(last_error, sizeof last_error, "TLS: error %d", err);
	}
	return last_error;
}

const int tls_built = 1;

void tls_setup(const char *ca_file, const char *host)
{
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		die("%s", note_error(NULL, SSL_ERROR_SSL));
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* SSL_write may write part of the buffer, and a retry after
	 * WANT_WRITE may pass the same bytes at another address (the
	 * output buffer grows by realloc) and with more appended. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
	/* Read what the socket has, not each record header and body in two
	 * reads; then tls_pending must count the records buffered too. */
	SSL_CTX_set_read_ahead(ctx, 1);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* A server that closes without close_notify has closed. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	peer_host = host;
	struct in6_addr a6;
	struct in_addr a4;
	peer_is_ip = inet_pton(AF_INET, host, &a4) == 1 ||
	             inet_pton(AF_INET6, host, &a6) == 1;
	if (ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
			die("cannot load --tls-ca '%s': %s", ca_file,
			    note_error(NULL, SSL_ERROR_SSL));
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
}

void tls_start(struct conn *c)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl || SSL_set_fd(ssl, c->fd) != 1)
		die("%s", note_error(NULL, SSL_ERROR_SSL));
	if (!peer_is_ip)
		SSL_set_tlsext_host_name(ssl, peer_host);
	if (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
		int ok =
		        peer_is_ip
		                ? X509_VERIFY_PARAM_set1_ip_asc(vp, peer_host)
		                : X509_VERIFY_PARAM_set1_host(vp, peer_host, 0);
		if (ok != 1)
			die("%s", note_error(NULL, SSL_ERROR_SSL));
	}
	SSL_set_connect_state(ssl);
	c->ssl = ssl;
}

int tls_handshake(struct conn *c, int *want_write, const char **why)
{
	ERR_clear_error();
	int rc = SSL_do_handshake(c->ssl);
	if (rc == 1)
		return 1;
	int err = SSL_get_error(c->ssl, rc);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		*want_write = err == SSL_ERROR_WANT_WRITE;
		return 0;
	}
	*why = note_error(c->ssl, err);
	return -1;
}

const char *tls_describe(const struct conn *c, char *buf, size_t n)
{
	snprintf(buf, n, "%s, %s", SSL_get_version(c->ssl),
	         SSL_get_cipher_name(c->ssl));
	return buf;
}

/* Reads records until buf is full or the socket has nothing more, so
 * that a return shorter than n means the same as for recv: drained. */
ssize_t tls_recv(struct conn *c, char *buf, size_t n)
{
	size_t got = 0;
	c->tls_rwant = 0;
	while (got < n) {
		size_t want = n - got < INT_MAX ? n - got : INT_MAX;
		ERR_clear_error();
		errno = 0;
		int k = SSL_read(c->ssl, buf + got, (int)want);
		if (k > 0) {
			got += (size_t)k;
			continue;
		}
		int err = SSL_get_error(c->ssl, k);
		if (got)
			break; /* the error again on the next call */
		switch (err) {
		case SSL_ERROR_WANT_WRITE:
			c->tls_rwant = 1; /* wait for EPOLLOUT */
			                  /* fall through */
		case SSL_ERROR_WANT_READ:
			errno = EAGAIN;
			return -1;
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		case SSL_ERROR_SYSCALL:
			if (!ERR_peek_error() && !errno)
				return 0; /* end of stream without close_notify */
			                  /* fall through */
		default:
			note_error(c->ssl, err);
			errno = EPROTO;
			return -1;
		}
	}
	return (ssize_t)got;
}

ssize_t tls_send(struct conn *c, const char *buf, size_t n)
{
	size_t want = n < INT_MAX ? n : INT_MAX;
	ERR_clear_error();
	errno = 0;
	int k = SSL_write(c->ssl, buf, (int)want);
	if (k > 0)
		return k;
	int err = SSL_get_error(c->ssl, k);
	/* WANT_READ (a renegotiation; TLS 1.3 has none): the loop polls
	 * for output until the read that unblocks it comes in. */
	if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
		errno = EAGAIN;
		return -1;
	}
	note_error(c->ssl, err);
	errno = EPROTO;
	return -1;
}

int tls_pending(const struct conn *c)
{
	return SSL_has_pending(c->ssl);
}

const char *tls_error(void)
{
	return last_error;
}

void tls_free(struct conn *c)
{
	SSL_free(c->ssl);
	c->ssl = NULL;
}

#else /* !BENCH_TLS */

const int tls_built = 0;

void tls_setup(const char *ca_file, const char *host)
{
	(void)ca_file;
	(void)host;
	usage_error("--tls: this " PROG " was built without TLS (OpenSSL)");
}

void tls_start(struct conn *c)
{
	(void)c;
}

int tls_handshake(struct conn *c, int *want_write, const char **why)
{
	(void)c;
	*want_write = 0;
	*why = "built without TLS";
	return -1;
}

const char *tls_describe(const struct conn *c, char *buf, size_t n)
{
	(void)c;
	snprintf(buf, n, "none");
	return buf;
}

ssize_t tls_recv(struct conn *c, char *buf, size_t n)
{
	(void)c;
	(void)buf;
	(void)n;
	errno = ENOTSUP;
	return -1;
}

ssize_t tls_send(struct conn *c, const char *buf, size_t n)
{
	(void)c;
	(void)buf;
	(void)n;
	errno = ENOTSUP;
	return -1;
}

int tls_pending(const struct conn *c)
{
	(void)c;
	return 0;
}

const char *tls_error(void)
{
	return "built without TLS";
}

void tls_free(struct conn *c)
{
	c->ssl = NULL;
}

#endif
