/* libtcpchat - the client's TLS: its configuration and the transport of
 * each connection it makes. */
#include <stdio.h>

#include "../tls.h"
#include "client_int.h"

TCPCHAT_API int tcpchat_client_set_tls(tcpchat_client *cli,
                                       const tcpchat_tls_config *cfg, char *err,
                                       size_t errlen)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	if (util__in_callback(cli))
		return TCPCHAT_ERECURSIVE;
	if (cli->state != C_IDLE && cli->state != C_DONE)
		return TCPCHAT_ESTATE;
	struct tls_ctx *ctx = NULL;
	if (cfg) {
		int rc = tls__ctx_new(cfg, TLS_CLIENT, &ctx, err, errlen);
		if (rc)
			return rc;
	}
	tls__ctx_free(cli->tls);
	cli->tls = ctx;
	return 0;
}

void cli__tls_free(tcpchat_client *cli)
{
	tls__ctx_free(cli->tls);
	cli->tls = NULL;
}

int cli__transport(tcpchat_client *cli, int fd)
{
	cli->tls_fatal = 0;
	if (!cli->tls) {
		transport__tcp(&cli->c.tp, fd);
		return 0;
	}
	return transport__tls(&cli->c.tp, fd, cli->tls, cli->tls_host);
}

void cli__tls_failed(tcpchat_client *cli)
{
	cli->tls_fatal = transport__tls_verify_failed(&cli->c.tp);
	char why[256];
	snprintf(why, sizeof why, "TLS: %s", transport__error(&cli->c.tp));
	cli__finish(cli, TCPCHAT_ETLS, TCPCHAT_REASON_ERROR, why);
}
