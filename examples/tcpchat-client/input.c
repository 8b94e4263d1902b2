/* tcpchat-client - what the user typed: commands and messages.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"

static void help(void)
{
	view_status("/join #room          join a room; it becomes the "
	            "current room");
	view_status("/part [#room] [why]  leave a room (the current one)");
	view_status("/msg NAME text       a private message");
	view_status("#room text           say text in a room you are in");
	view_status("/who [#room]  /rooms  /topic #room [text]");
	view_status("/history [#room] [N] the latest N texts of a room "
	            "(20)");
	view_status("/kick #room NAME [why]  /ban #room NAME [why]  "
	            "/unban #room NAME  (operators)");
	view_status("/quit or Ctrl-D      leave; //text sends \"/text\"");
	view_status("Tab completes commands, names and rooms; Up and Down "
	            "recall lines");
}

static void report(const char *what, int rc)
{
	if (rc)
		view_error("%s failed: %s", what, tcpchat_strerror(rc));
}

/* Queues one text.  From a pipe, waits for queue space rather than lose
 * lines (at most 10 s). */
static int send_one(const char *room, const char *to, const char *s, size_t n)
{
	int rc;
	for (int i = 0;; i++) {
		rc = to     ? tcpchat_client_send_private(G.cli, to, s, n)
		     : room ? tcpchat_client_send_room(G.cli, room, s, n)
		            : tcpchat_client_send(G.cli, s, n);
		if (rc != TCPCHAT_EQUEUEFULL || G.tty || i >= 10000)
			return rc;
		struct timespec ms = {0, 1000 * 1000};
		nanosleep(&ms, NULL);
	}
}

/* Where to cut s[0..n) so that s[0..*piece) is one message: at the
 * server's limit (a character boundary), or at the last blank in the
 * second half of what fits.  Returns the bytes consumed (the piece and
 * the blank it was cut at). */
static size_t cut(const char *room, const char *to, const char *s, size_t n,
                  size_t *piece)
{
	size_t k = tcpchat_client_text_fit(G.cli, room, to, s, n);
	*piece = k;
	if (k == 0 || k == n)
		return k;
	for (size_t j = k; j > k / 2; j--) {
		if (s[j] == ' ' || s[j] == '\t') {
			*piece = j;
			return j + 1;
		}
	}
	return k;
}

/* Sends a text to user to, else to room, else to the current room; one
 * longer than the server takes goes in several messages, and the user is
 * told.  On a terminal, shows what was sent (the server echoes only
 * private messages). */
static void say(const char *room, const char *to, const char *s, size_t n)
{
	size_t parts = 0;
	while (n) {
		size_t piece, used = cut(room, to, s, n, &piece);
		if (used == 0) {
			used = piece = n; /* let the library say why */
		}
		if (strspn(s, " \t") < piece) {
			int rc = send_one(room, to, s, piece);
			if (rc) {
				view_error("not sent: %s%s",
				           tcpchat_strerror(rc),
				           parts ? " (the start of the "
				                   "message was sent)"
				                 : "");
				return;
			}
			if (G.tty && !to)
				view_own(room, s, piece);
			parts++;
		}
		s += used;
		n -= used;
	}
	if (parts > 1) {
		tcpchat_server_info info;
		memset(&info, 0, sizeof info);
		info.size = sizeof info;
		tcpchat_client_server_info(G.cli, &info);
		view_status("sent in %zu messages: the server takes at most "
		            "%llu bytes in one",
		            parts, (unsigned long long)info.max_frame);
	}
}

/* Cuts the first blank-separated word off *s: returns it (NUL-terminated,
 * "" when none) and leaves *s at the next word. */
static char *word(char **s)
{
	char *w = *s + strspn(*s, " \t");
	char *e = w + strcspn(w, " \t");
	*s = e + strspn(e, " \t");
	if (*e)
		*e = '\0';
	return w;
}

/* "/history [#room] [N]": the latest N texts (20) of room (the current
 * one). */
static void history(char *rest)
{
	const char *room = *rest == '#' ? word(&rest) : NULL;
	const char *num = word(&rest);
	long n = 20;
	if (*num) {
		char *end;
		n = strtol(num, &end, 10);
		if (*end || n < 1 || n > 1000)
			n = -1;
	}
	if (n < 0 || *rest) {
		view_error("usage: /history [#room] [N] (N: 1..1000)");
		return;
	}
	report("/history",
	       tcpchat_client_history(G.cli, room, TCPCHAT_HISTORY_LATEST, 0,
	                              (uint32_t)n));
}

/* A line starting with '/' (not "//").  Returns 1 to quit. */
static int slash(char *line)
{
	char *rest = line;
	const char *cmd = word(&rest);
	const char *room, *arg;
	if (!strcmp(cmd, "/quit") && !*rest)
		return 1;
	if (!strcmp(cmd, "/help") && !*rest) {
		help();
	} else if (!strcmp(cmd, "/who")) {
		room = word(&rest);
		if (*rest)
			view_error("usage: /who [#room]");
		else
			report("/who",
			       *room ? tcpchat_client_who_room(G.cli, room)
			             : tcpchat_client_who(G.cli));
	} else if (!strcmp(cmd, "/rooms") && !*rest) {
		report("/rooms", tcpchat_client_rooms(G.cli));
	} else if (!strcmp(cmd, "/join")) {
		room = word(&rest);
		if (!*room || *rest)
			view_error("usage: /join #room");
		else {
			seq_want_history(room);
			report("/join", tcpchat_client_room_join(G.cli, room));
		}
	} else if (!strcmp(cmd, "/part")) {
		room = *rest == '#' ? word(&rest) : NULL;
		report("/part", tcpchat_client_room_part(G.cli, room,
		                                         *rest ? rest : NULL));
	} else if (!strcmp(cmd, "/msg")) {
		arg = word(&rest);
		if (!*arg || !*rest)
			view_error("usage: /msg NAME text");
		else
			say(NULL, arg, rest, strlen(rest));
	} else if (!strcmp(cmd, "/history")) {
		history(rest);
	} else if (!strcmp(cmd, "/kick") || !strcmp(cmd, "/ban") ||
	           !strcmp(cmd, "/unban")) {
		unsigned f = cmd[1] == 'k'   ? 0
		             : cmd[1] == 'b' ? TCPCHAT_MSGF_BAN
		                             : TCPCHAT_MSGF_UNBAN;
		room = word(&rest);
		arg = word(&rest);
		if (!*room || !*arg || (f == TCPCHAT_MSGF_UNBAN && *rest))
			view_error("usage: %s #room NAME%s", cmd,
			           f == TCPCHAT_MSGF_UNBAN ? "" : " [reason]");
		else
			report(cmd,
			       tcpchat_client_kick(G.cli, room, arg,
			                           *rest ? rest : NULL, f));
	} else if (!strcmp(cmd, "/topic")) {
		room = word(&rest);
		if (!*room)
			view_error("usage: /topic #room [text]");
		else
			report("/topic",
			       tcpchat_client_set_topic(G.cli, room, rest));
	} else {
		view_error("unknown command %s: /help lists the commands, "
		           "//text sends a line that starts with '/'",
		           cmd);
	}
	return 0;
}

int input_line(const char *s, size_t n)
{
	if (strspn(s, " \t") >= n)
		return 0; /* nothing to say */
	if (s[0] == '/' && !(n > 1 && s[1] == '/')) {
		char *line = strndup(s, n);
		int quit = line ? slash(line) : 0;
		free(line);
		return quit;
	}
	if (s[0] == '/') {
		s++;
		n--;
	}
	/* "#room text": to that room, without making it current */
	size_t w = 0;
	while (w < n && s[w] != ' ' && s[w] != '\t')
		w++;
	if (s[0] == '#' && w + 1 < n && w <= TCPCHAT_ROOM_MAX &&
	    tcpchat_room_check(s, w) == 0) {
		char room[TCPCHAT_ROOM_MAX + 1];
		memcpy(room, s, w);
		room[w] = '\0';
		say(room, NULL, s + w + 1, n - w - 1);
		return 0;
	}
	/* a plain line: to --to or the last --room from a script, else to
	 * the current room */
	if (!G.tty && G.to)
		say(NULL, G.to, s, n);
	else if (!G.tty && G.nrooms)
		say(G.rooms[G.nrooms - 1], NULL, s, n);
	else
		say(NULL, NULL, s, n);
	return 0;
}
