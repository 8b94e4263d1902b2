/* libtcpchat - what the two TLS files share.  Not installed. */
#ifndef TCPCHAT_TLS_INT_H
#define TCPCHAT_TLS_INT_H

#include <stdatomic.h>

#include <openssl/ssl.h>

#include "tls.h"

struct tls_ctx {
	atomic_uint refs;
	int side; /* TLS_SERVER, TLS_CLIENT */
	int no_verify;
	char *server_name;
	SSL_CTX *ssl;
};

struct tls_ctx *tls__ctx_ref(struct tls_ctx *ctx);
/* A BIO over the socket fd that never raises SIGPIPE (the fd stays
 * open when the BIO is freed).  NULL when out of memory. */
BIO *tls__socket_bio(int fd);
/* The reason of the oldest error OpenSSL has queued ("no such file"),
 * into buf; clears the queue.  Returns buf. */
const char *tls__reason(char *buf, size_t cap);

#endif
