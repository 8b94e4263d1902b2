/* bot - a client that answers commands in the chat.
 * Usage: bot HOST:PORT [NAME]
 * Answers "!ping" with "pong", "!time" with the time, "!echo TEXT" with
 * TEXT, and "!quit" by leaving.  Runs the loop in the calling thread
 * (tcpchat_client_run) and replies from inside the callback. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tcpchat/tcpchat.h>

static int starts(const tcpchat_str *s, const char *word)
{
	size_t n = strlen(word);
	return s->len >= n && memcmp(s->ptr, word, n) == 0;
}

static int on_event(tcpchat_client *cli, const tcpchat_client_event *ev,
                    void *ud)
{
	char reply[512];
	(void)ud;
	if (ev->type != TCPCHAT_CEV_MESSAGE ||
	    ev->msg->type != TCPCHAT_MSG_TEXT)
		return 0;
	const tcpchat_str *body = &ev->msg->body;
	if (starts(body, "!ping")) {
		snprintf(reply, sizeof reply, "pong");
	} else if (starts(body, "!time")) {
		time_t t = time(NULL);
		strftime(reply, sizeof reply, "%Y-%m-%d %H:%M:%S",
		         localtime(&t));
	} else if (starts(body, "!echo ") && body->len > 6) {
		snprintf(reply, sizeof reply, "%.*s", (int)(body->len - 6),
		         body->ptr + 6);
	} else if (starts(body, "!quit")) {
		tcpchat_client_stop(cli); /* thread-safe, fine in a callback */
		return 0;
	} else {
		return 0;
	}
	tcpchat_client_send(cli, reply, strlen(reply));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bot HOST:PORT [NAME]\n");
		return 2;
	}
	tcpchat_client *cli;
	if (tcpchat_client_new(&cli) != 0)
		return 1;
	tcpchat_client_set_handler(cli, on_event, NULL);
	int rc = tcpchat_client_connect(cli, argv[1],
	                                argc > 2 ? argv[2] : "bot");
	if (rc == 0)
		rc = tcpchat_client_run(cli); /* until !quit or disconnect */
	if (rc)
		fprintf(stderr, "bot: %s\n", tcpchat_strerror(rc));
	tcpchat_client_destroy(cli);
	return rc ? 1 : 0;
}
