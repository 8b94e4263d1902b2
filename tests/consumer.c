/* A program built against the installed library with pkg-config only:
 * a server and a client in one process exchange one message. */
#include <stdio.h>
#include <string.h>

#include <tcpchat/tcpchat.h>

static int got;

static int on_client(tcpchat_client *cli, const tcpchat_client_event *ev,
                     void *ud)
{
	(void)ud;
	if (ev->type == TCPCHAT_CEV_CONNECTED)
		tcpchat_client_send(cli, "ping", 4);
	return 0;
}

static int on_server(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	tcpchat_client *cli = ud;
	(void)srv;
	if (ev->type == TCPCHAT_SEV_MESSAGE && ev->msg->body.len == 4 &&
	    memcmp(ev->msg->body.ptr, "ping", 4) == 0) {
		got = 1;
		tcpchat_client_stop(cli);
	}
	return 0;
}

int main(void)
{
	tcpchat_server *srv;
	tcpchat_client *cli;
	char addr[64];
	if (strcmp(tcpchat_version(NULL), TCPCHAT_VERSION_STRING) != 0 ||
	    tcpchat_server_new(&srv) || tcpchat_client_new(&cli))
		return 1;
	tcpchat_server_set_handler(srv, on_server, cli);
	tcpchat_client_set_handler(cli, on_client, NULL);
	if (tcpchat_server_listen(srv, "127.0.0.1:0", NULL) ||
	    tcpchat_server_start(srv))
		return 1;
	snprintf(addr, sizeof addr, "127.0.0.1:%d",
	         tcpchat_server_port(srv, 0));
	if (tcpchat_client_connect(cli, addr, "consumer"))
		return 1;
	int rc = tcpchat_client_run(cli); /* until the server saw "ping" */
	tcpchat_server_stop(srv);
	tcpchat_server_join(srv);
	tcpchat_client_destroy(cli);
	tcpchat_server_destroy(srv);
	printf("consumer: libtcpchat %s, message %s\n", tcpchat_version(NULL),
	       got ? "delivered" : "lost");
	return rc == 0 && got ? 0 : 1;
}
