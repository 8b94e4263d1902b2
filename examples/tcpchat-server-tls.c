/* tcpchat-server - TLS listeners' files (see tcpchat-server-tls.h).
 * SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "tcpchat-server-auth.h"
#include "tcpchat-server-tls.h"

int tls_load(tcpchat_server *srv, const struct tls_files *f, int reload)
{
	tcpchat_tls_config cfg = {
	        .cert_file = f->cert,
	        .key_file = f->key,
	        .ca_file = f->ca,
	        .flags = f->require_cert ? TCPCHAT_TLS_REQUIRE_CERT : 0,
	};
	char err[512];
	int rc = tcpchat_server_set_tls(srv, &cfg, err, sizeof err);
	if (rc) {
		const char *why = err[0] ? err : tcpchat_strerror(rc);
		if (reload)
			log_at(TCPCHAT_LOG_WARN,
			       "TLS files not reloaded, the old ones stay: %s",
			       why);
		else
			fprintf(stderr, "tcpchat-server: %s\n", why);
		return -1;
	}
	if (reload)
		log_at(TCPCHAT_LOG_INFO, "TLS files reloaded: %s", f->cert);
	return 0;
}

const char *tls_check(const struct tls_files *f, int any_tls)
{
	if (!any_tls && (f->cert || f->key || f->ca || f->require_cert))
		return "--tls-* options need a tls+CODEC@HOST:PORT listener";
	if (any_tls && !tcpchat_tls_available())
		return "TLS: libtcpchat was built without TLS";
	if (any_tls && !f->cert)
		return "a tls+ listener needs --tls-cert FILE";
	if (f->require_cert && !f->ca)
		return "--tls-require-cert needs --tls-ca FILE";
	return NULL;
}
