/* libtcpchat - private messages: to one user, on whichever listener and
 * codec they are, with a copy (flag ECHO) to the sender. */
#include <stdio.h>

#include "server_int.h"

/* Finds the addressee of a private message.  Returns 0 with *out (NULL
 * for a user of another server of the cluster), or 1
 * after a non-fatal ERROR to sc (bad name, nobody of that name, or a
 * protocol-1 client, which cannot tell a private message from another). */
int srv__private_target(tcpchat_server *srv, struct sconn *sc,
                        const tcpchat_msg *m, struct sconn **out)
{
	const tcpchat_str *name = &m->target;
	char why[96];
	if (tcpchat_name_check(name->ptr, name->len) != 0) {
		srv__req_error(srv, sc, m, TCPCHAT_EBADNAME,
		               tcpchat_strerror(TCPCHAT_EBADNAME));
		return 1;
	}
	struct sconn *to = srv__name_find(srv, name->ptr, name->len);
	if (!to && srv->cl &&
	    srv__cluster_name_taken(srv, name->ptr, name->len)) {
		*out = NULL; /* on another server: srv__cluster_private() */
		return 0;
	}
	if (!to || to->state != S_JOINED) {
		snprintf(why, sizeof why, "no user called %.*s", (int)name->len,
		         name->ptr);
		srv__req_error(srv, sc, m, TCPCHAT_ENOTFOUND, why);
		return 1;
	}
	if (to->proto < 2) {
		snprintf(why, sizeof why,
		         "%s's client cannot receive private messages",
		         to->name);
		srv__req_error(srv, sc, m, TCPCHAT_ENOTSUP, why);
		return 1;
	}
	*out = to;
	return 0;
}

/* Delivers the stamped private message m (target set) to `to`, and its
 * ECHO to the sender; a message to oneself arrives once, as the echo. */
void srv__private_deliver(tcpchat_server *srv, struct sconn *from,
                          struct sconn *to, const tcpchat_msg *m)
{
	tcpchat_msg echo = *m;
	echo.flags |= TCPCHAT_MSGF_ECHO;
	if (to != from)
		srv__send_to(srv, to, m);
	srv->st.privates++;
	if (from->state != S_DEAD)
		srv__send_to(srv, from, &echo);
}
