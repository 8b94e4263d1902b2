/* libtcpchat - the durable store, written off the loop thread. */
#include "server_int.h"

void srv__durable_post(tcpchat_server *srv, struct room *r, tcpchat_msg *m,
                       struct sconn *from, tcpchat_str ref)
{
	(void)srv, (void)r, (void)m, (void)from, (void)ref;
}

void srv__durable_close(tcpchat_server *srv)
{
	(void)srv;
}
