/* libtcpchat - the line codec's help for the people who type it: what a
 * server answers to "/help", to a command with bad arguments and to an
 * unknown command (all three decode as TCPCHAT_MSG_UNKNOWN, whose body
 * is the line).  The forms are those listed in codec_line.c.
 */
#include <stdio.h>
#include <string.h>

#include "codec_line.h"

#define LINE_WORD_SHOWN 32 /* bytes of an unknown command word repeated */

/* The commands whose arguments can be wrong, and their usage. */
static const struct {
	const char *word;
	const char *usage;
} line_usages[] = {
        {"join", "usage: /join #room"},
        {"part", "usage: /part [#room] [reason]"},
        {"msg", "usage: /msg NAME TEXT"},
        {"who", "usage: /who [#room]"},
        {"rooms", "usage: /rooms"},
        {"topic", "usage: /topic #room [TEXT]"},
        {"history", "usage: /history [ROOM] [N]"},
        {"kick", "usage: /kick #room NAME [reason]"},
        {"ban", "usage: /ban #room NAME [reason]"},
        {"unban", "usage: /unban #room NAME"},
};

/* The answer to "/help", one notice per line. */
static const char *const line_help[] = {
        "commands (any other line is said in your current room):",
        "  #room TEXT              say TEXT in #room (you must be in it)",
        "  /join #room             join #room (made if new) and talk there",
        "  /part [#room] [reason]  leave #room, or your current room",
        "  /msg NAME TEXT          a private message to NAME",
        "  /who [#room]            who is online, or in #room",
        "  /rooms                  the rooms, with their sizes and topics",
        "  /topic #room [TEXT]     set the topic of #room (no TEXT: clear it)",
        ("  /history [#room] [N]    the last N texts of #room, or your "
         "current room"),
        "  /kick #room NAME [why]  take NAME out of #room (operators)",
        "  /ban #room NAME [why]   kick NAME and keep them out of #room",
        "  /unban #room NAME       let NAME join #room again",
        "  //TEXT                  say a line that starts with '/'",
        "  /quit                   leave the chat",
        "  /help                   this list",
};

const char *line__help_line(size_t i)
{
	return i < TC_ARRAY_LEN(line_help) ? line_help[i] : NULL;
}

int line__answer(const char *s, size_t n, char *out, size_t cap)
{
	size_t w = 1;
	size_t i;

	if (n < 2 || s[0] != '/') {
		snprintf(out, cap, "unknown command");
		return TCPCHAT_ENOTYPE;
	}
	while (w < n && !line_is_blank(s[w]))
		w++;
	if (line_is_exactly(s + 1, w - 1, "help"))
		return 0;
	for (i = 0; i < TC_ARRAY_LEN(line_usages); i++) {
		if (line_is_exactly(s + 1, w - 1, line_usages[i].word)) {
			snprintf(out, cap, "%s", line_usages[i].usage);
			return TCPCHAT_ENOTYPE;
		}
	}
	snprintf(out, cap,
	         "unknown command %.*s%s: //text sends a line starting "
	         "with '/', /help lists the commands",
	         (int)TC_MIN(w, LINE_WORD_SHOWN), s,
	         w > LINE_WORD_SHOWN ? "..." : "");
	return TCPCHAT_ENOTYPE;
}
