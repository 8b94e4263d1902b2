/* tcpchat-server - TLS listeners: the certificate, key and CA files of
 * --tls-cert, --tls-key and --tls-ca, loaded at start and again on
 * SIGHUP.
 * SPDX-License-Identifier: MIT */
#ifndef TCPCHAT_SERVER_TLS_H
#define TCPCHAT_SERVER_TLS_H

#include <tcpchat/tcpchat.h>

struct tls_files {
	const char *cert, *key, *ca; /* NULL: not given */
	int require_cert;            /* --tls-require-cert */
};

/* Loads the files into srv.  At start (reload 0) an error is printed on
 * stderr; on SIGHUP (reload 1) it is logged as a warning and the files
 * loaded before stay in use, else an info line says they were read
 * again.  Returns 0 or -1.  Main thread. */
int tls_load(tcpchat_server *srv, const struct tls_files *f, int reload);

/* Checks the TLS options together: a message for stderr, or NULL.
 * any_tls: a tls+ listener was asked for. */
const char *tls_check(const struct tls_files *f, int any_tls);

#endif
