/* libtcpchat - TLS (OpenSSL): contexts made from a tcpchat_tls_config and
 * the TLS transport.  Without the `tls` feature these calls fail with
 * TCPCHAT_ENOTSUP (tls_none.c).  Not installed. */
#ifndef TCPCHAT_TLS_H
#define TCPCHAT_TLS_H

#include <stddef.h>

#include <tcpchat/core.h>

#include "transport.h"

/* A loaded configuration: an OpenSSL context with the certificates, keys
 * and checks of one tcpchat_tls_config, reference-counted (a connection
 * keeps the one it started with). */
struct tls_ctx;

#define TLS_SERVER 0
#define TLS_CLIENT 1

/* Loads cfg for a side (TLS_SERVER or TLS_CLIENT).  Returns 0 and
 * *out, or TCPCHAT_ETLS / TCPCHAT_EINVAL / TCPCHAT_ENOMEM /
 * TCPCHAT_ENOTSUP with a sentence in err (cut to errlen, may be NULL).
 * Any thread. */
int tls__ctx_new(const tcpchat_tls_config *cfg, int side, struct tls_ctx **out,
                 char *err, size_t errlen);
void tls__ctx_free(struct tls_ctx *ctx); /* one reference; NULL is fine */
/* The name a client checks and sends as SNI, copied from the config
 * (NULL: the host connected to). */
const char *tls__ctx_server_name(const struct tls_ctx *ctx);
/* 1 when the client verifies nothing (TCPCHAT_TLS_NO_VERIFY). */
int tls__ctx_no_verify(const struct tls_ctx *ctx);

/* A TLS transport over the open, non-blocking socket fd, in the role of
 * ctx's side; host: the name or address a client checks (NULL on a
 * server).  The transport keeps a reference to ctx.  Returns 0, or
 * TCPCHAT_ENOMEM / TCPCHAT_ETLS (fd is then not taken: the caller closes
 * it). */
int transport__tls(struct transport *t, int fd, struct tls_ctx *ctx,
                   const char *host);

/* 1 when the last TCPCHAT_ETLS of t came from the peer's certificate
 * (its check failed): retrying will not help. */
int transport__tls_verify_failed(const struct transport *t);

/* The host part of "host:port" or "[v6]:port" into buf (cut to cap).
 * Returns buf. */
char *tls__host_of(const char *addr, char *buf, size_t cap);

#endif
