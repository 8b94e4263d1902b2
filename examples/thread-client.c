/* thread-client - a client whose loop runs in a thread of the library.
 * Usage: thread-client HOST:PORT NAME [COUNT]
 * Sends COUNT numbered messages (default 3) from the main thread while the
 * library's thread prints what arrives, then says goodbye and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tcpchat/tcpchat.h>

static int on_event(tcpchat_client *cli, const tcpchat_client_event *ev,
                    void *ud)
{
	(void)cli;
	(void)ud;
	if (ev->type == TCPCHAT_CEV_MESSAGE &&
	    ev->msg->type == TCPCHAT_MSG_TEXT)
		printf("%.*s: %.*s\n", (int)ev->msg->sender.len,
		       ev->msg->sender.ptr, (int)ev->msg->body.len,
		       ev->msg->body.ptr);
	else if (ev->type == TCPCHAT_CEV_DISCONNECTED && ev->error)
		fprintf(stderr, "thread-client: %s\n", ev->text);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr,
		        "usage: thread-client HOST:PORT NAME [COUNT]\n");
		return 2;
	}
	int count = argc > 3 ? atoi(argv[3]) : 3;
	tcpchat_client *cli;
	if (tcpchat_client_new(&cli) != 0)
		return 1;
	tcpchat_client_set_handler(cli, on_event, NULL);
	int rc = tcpchat_client_connect(cli, argv[1], argv[2]);
	if (rc == 0)
		rc = tcpchat_client_start(cli); /* the library's thread */
	for (int i = 1; rc == 0 && i <= count; i++) {
		char text[64];
		snprintf(text, sizeof text, "message %d of %d", i, count);
		rc = tcpchat_client_send(cli, text,
		                         strlen(text)); /* any thread */
	}
	tcpchat_client_stop(cli); /* goodbye after the queue is flushed */
	int end = tcpchat_client_join(cli);
	tcpchat_client_destroy(cli);
	if (rc || end) {
		fprintf(stderr, "thread-client: %s\n",
		        tcpchat_strerror(rc ? rc : end));
		return 1;
	}
	return 0;
}
