/* libtcpchat - the server's TLS: its loaded configuration, replaced from
 * any thread, and the TLS listeners that use it. */
#include <stdlib.h>

#include "../tls.h"
#include "server_int.h"

void srv__tls_init(tcpchat_server *srv)
{
	pthread_mutex_init(&srv->tls_lock, NULL);
	srv->tls = NULL;
}

void srv__tls_fini(tcpchat_server *srv)
{
	tls__ctx_free(srv->tls);
	srv->tls = NULL;
	pthread_mutex_destroy(&srv->tls_lock);
}

TCPCHAT_API int tcpchat_server_set_tls(tcpchat_server *srv,
                                       const tcpchat_tls_config *cfg, char *err,
                                       size_t errlen)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	struct tls_ctx *ctx;
	int rc = tls__ctx_new(cfg, TLS_SERVER, &ctx, err, errlen);
	if (rc)
		return rc;
	pthread_mutex_lock(&srv->tls_lock);
	struct tls_ctx *old = srv->tls;
	srv->tls = ctx;
	pthread_mutex_unlock(&srv->tls_lock);
	tls__ctx_free(old); /* its connections keep their reference */
	return 0;
}

TCPCHAT_API int tcpchat_server_listen_tls(tcpchat_server *srv, const char *addr,
                                          const tcpchat_codec *codec)
{
	if (!srv || !addr)
		return TCPCHAT_EINVAL;
	if (!tcpchat_tls_available())
		return TCPCHAT_ENOTSUP;
	pthread_mutex_lock(&srv->tls_lock);
	int ready = srv->tls != NULL;
	pthread_mutex_unlock(&srv->tls_lock);
	if (!ready)
		return TCPCHAT_ESTATE;
	return srv__add_listener(srv, addr, codec, 1);
}

int srv__tls_transport(tcpchat_server *srv, struct transport *t, int fd)
{
	pthread_mutex_lock(&srv->tls_lock);
	int rc = srv->tls ? transport__tls(t, fd, srv->tls, NULL)
	                  : TCPCHAT_ESTATE;
	pthread_mutex_unlock(&srv->tls_lock);
	return rc;
}

void srv__tls_failed(struct sconn *sc)
{
	tcpchat_server *srv = sc->srv;
	const char *why = transport__error(&sc->c.tp);
	char who[SRV_WHO_MAX];
	srv->st.tls_failed++;
	srv__log(srv, TCPCHAT_LOG_INFO, "%s: TLS %s failed: %s",
	         srv__who(sc, who, sizeof who),
	         sc->state == S_HANDSHAKE ? "handshake" : "connection", why);
	srv__close(sc, TCPCHAT_REASON_ERROR, TCPCHAT_ETLS, why);
}
