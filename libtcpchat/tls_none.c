/* libtcpchat - a build without TLS: every TLS call says so. */
#include <stdio.h>

#include "internal.h"
#include "tls.h"

TCPCHAT_API int tcpchat_tls_available(void)
{
	return 0;
}

int tls__ctx_new(const tcpchat_tls_config *cfg, int side, struct tls_ctx **out,
                 char *err, size_t errlen)
{
	TC_UNUSED(cfg);
	TC_UNUSED(side);
	*out = NULL;
	if (err && errlen)
		snprintf(err, errlen, "libtcpchat was built without TLS");
	return TCPCHAT_ENOTSUP;
}

void tls__ctx_free(struct tls_ctx *ctx)
{
	TC_UNUSED(ctx);
}

const char *tls__ctx_server_name(const struct tls_ctx *ctx)
{
	TC_UNUSED(ctx);
	return NULL;
}

int tls__ctx_no_verify(const struct tls_ctx *ctx)
{
	TC_UNUSED(ctx);
	return 0;
}

int transport__tls(struct transport *t, int fd, struct tls_ctx *ctx,
                   const char *host)
{
	TC_UNUSED(t);
	TC_UNUSED(fd);
	TC_UNUSED(ctx);
	TC_UNUSED(host);
	return TCPCHAT_ENOTSUP;
}

int transport__tls_verify_failed(const struct transport *t)
{
	TC_UNUSED(t);
	return 0;
}

char *tls__host_of(const char *addr, char *buf, size_t cap)
{
	TC_UNUSED(addr);
	if (cap)
		buf[0] = '\0';
	return buf;
}
