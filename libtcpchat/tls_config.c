/* libtcpchat - TLS contexts: a tcpchat_tls_config loaded into an OpenSSL
 * SSL_CTX for a server or a client. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "internal.h"
#include "tls_int.h"

#define KNOWN_FLAGS (TCPCHAT_TLS_REQUIRE_CERT | TCPCHAT_TLS_NO_VERIFY)

TCPCHAT_API int tcpchat_tls_available(void)
{
	return 1;
}

/* The oldest OpenSSL error's reason, then clears the queue: "no such
 * file", "key values mismatch". */
const char *tls__reason(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
#ifdef ERR_SYSTEM_ERROR
	if (e && ERR_SYSTEM_ERROR(e)) /* "No such file or directory" */
		r = strerror(ERR_GET_REASON(e));
#endif
	if (!r && e) {
		ERR_error_string_n(e, buf, cap);
		r = buf;
	} else {
		snprintf(buf, cap, "%s", r ? r : "unknown error");
	}
	ERR_clear_error();
	return buf;
}

static int fail(char *err, size_t errlen, const char *what, const char *file)
{
	char why[160];
	tls__reason(why, sizeof why);
	if (err && errlen)
		snprintf(err, errlen, "cannot load %s %s: %s", what, file, why);
	return TCPCHAT_ETLS;
}

static int say(char *err, size_t errlen, int rc, const char *text)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", text);
	return rc;
}

static int load_files(SSL_CTX *ssl, const tcpchat_tls_config *cfg, int side,
                      char *err, size_t errlen)
{
	if (cfg->cert_file) {
		const char *key =
		        cfg->key_file ? cfg->key_file : cfg->cert_file;
		if (SSL_CTX_use_certificate_chain_file(ssl, cfg->cert_file) !=
		    1)
			return fail(err, errlen, "certificate", cfg->cert_file);
		if (SSL_CTX_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) !=
		    1)
			return fail(err, errlen, "key", key);
		if (SSL_CTX_check_private_key(ssl) != 1)
			return fail(err, errlen, "key", key);
	}
	if (cfg->ca_file) {
		if (SSL_CTX_load_verify_locations(ssl, cfg->ca_file, NULL) != 1)
			return fail(err, errlen, "CA file", cfg->ca_file);
		if (side == TLS_SERVER) {
			STACK_OF(X509_NAME) *names =
			        SSL_load_client_CA_file(cfg->ca_file);
			if (!names)
				return fail(err, errlen, "CA file",
				            cfg->ca_file);
			SSL_CTX_set_client_CA_list(ssl, names);
		}
	} else if (side == TLS_CLIENT &&
	           !(cfg->flags & TCPCHAT_TLS_NO_VERIFY) &&
	           SSL_CTX_set_default_verify_paths(ssl) != 1) {
		return fail(err, errlen, "the system's CA store", "");
	}
	return 0;
}

static void set_verify(SSL_CTX *ssl, const tcpchat_tls_config *cfg, int side)
{
	int mode = SSL_VERIFY_NONE;
	if (side == TLS_CLIENT && !(cfg->flags & TCPCHAT_TLS_NO_VERIFY))
		mode = SSL_VERIFY_PEER;
	if (side == TLS_SERVER && cfg->ca_file) {
		mode = SSL_VERIFY_PEER;
		if (cfg->flags & TCPCHAT_TLS_REQUIRE_CERT)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	}
	SSL_CTX_set_verify(ssl, mode, NULL);
}

int tls__ctx_new(const tcpchat_tls_config *cfg, int side, struct tls_ctx **out,
                 char *err, size_t errlen)
{
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!cfg || (cfg->flags & ~KNOWN_FLAGS))
		return say(err, errlen, TCPCHAT_EINVAL, "invalid TLS options");
	if (side == TLS_SERVER && !cfg->cert_file)
		return say(err, errlen, TCPCHAT_EINVAL,
		           "a TLS server needs a certificate");
	if (cfg->server_name &&
	    (!cfg->server_name[0] || strlen(cfg->server_name) > 253))
		return say(err, errlen, TCPCHAT_EINVAL, "invalid server name");
	struct tls_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx)
		return say(err, errlen, TCPCHAT_ENOMEM, "out of memory");
	atomic_init(&ctx->refs, 1);
	ctx->side = side;
	ctx->no_verify = (cfg->flags & TCPCHAT_TLS_NO_VERIFY) != 0;
	if (cfg->server_name) {
		ctx->server_name = strdup(cfg->server_name);
		if (!ctx->server_name) {
			free(ctx);
			return say(err, errlen, TCPCHAT_ENOMEM,
			           "out of memory");
		}
	}
	ERR_clear_error();
	ctx->ssl = SSL_CTX_new(side == TLS_SERVER ? TLS_server_method()
	                                          : TLS_client_method());
	if (!ctx->ssl) {
		tls__ctx_free(ctx);
		return say(err, errlen, TCPCHAT_ENOMEM,
		           "cannot make a TLS context");
	}
	SSL_CTX *ssl = ctx->ssl;
	SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ssl, TLS1_3_VERSION);
	/* Idle connections give their record buffers back; writes may
	 * resume from another copy of the same bytes. */
	SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS |
	                              SSL_MODE_ENABLE_PARTIAL_WRITE |
	                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* No renegotiation; no session tickets (no resumption: one less
	 * secret to keep); a peer that closes without close_notify is an
	 * end of stream (the framing tells a cut frame). */
	uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
	                SSL_OP_NO_COMPRESSION;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	opts |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
	SSL_CTX_set_options(ssl, opts);
	if (side == TLS_SERVER)
		SSL_CTX_set_num_tickets(ssl, 0);
	SSL_CTX_set_read_ahead(ssl, 1); /* one read(2) for many records */
	int rc = load_files(ssl, cfg, side, err, errlen);
	if (rc) {
		tls__ctx_free(ctx);
		return rc;
	}
	set_verify(ssl, cfg, side);
	*out = ctx;
	return 0;
}

void tls__ctx_free(struct tls_ctx *ctx)
{
	if (!ctx || atomic_fetch_sub(&ctx->refs, 1) != 1)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx->server_name);
	free(ctx);
}

struct tls_ctx *tls__ctx_ref(struct tls_ctx *ctx)
{
	atomic_fetch_add(&ctx->refs, 1);
	return ctx;
}

const char *tls__ctx_server_name(const struct tls_ctx *ctx)
{
	return ctx->server_name;
}

int tls__ctx_no_verify(const struct tls_ctx *ctx)
{
	return ctx->no_verify;
}

char *tls__host_of(const char *addr, char *buf, size_t cap)
{
	const char *start = addr, *end = strrchr(addr, ':');
	if (!end)
		end = addr + strlen(addr);
	if (*start == '[') {
		const char *close = strchr(start, ']');
		if (close && close < end) {
			start++;
			end = close;
		}
	}
	size_t n = (size_t)(end - start);
	if (cap) {
		n = TC_MIN(n, cap - 1);
		memcpy(buf, start, n);
		buf[n] = '\0';
	}
	return buf;
}
