/* tcpchat-client - a terminal chat client built on libtcpchat.
 * SPDX-License-Identifier: MIT
 *
 * With a terminal, it edits the input line itself (no curses) so that
 * incoming messages are printed above the line being typed.  Without one,
 * it reads lines from stdin, sends them, and prints messages as plain
 * lines, which makes it usable from scripts. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <tcpchat/tcpchat.h>

#define PROG "tcpchat-client"
#define LINE_MAX_BYTES 4096

#define ROOMS_MAX 16 /* --room options */

static struct {
	int tty, color, listen_only, quiet;
	long long count; /* exit after this many TEXT messages; 0: never */
	const char *rooms[ROOMS_MAX]; /* --room, in order */
	int nrooms;
	const char *to; /* --to: script lines go to this user */
	char default_room[TCPCHAT_ROOM_MAX + 1]; /* from the WELCOME */
	atomic_llong received;
	atomic_int done, connected, result;
	pthread_mutex_t out; /* guards the screen and the input line */
	char line[LINE_MAX_BYTES];
	size_t len;
	struct termios saved;
	int raw;
	tcpchat_client *cli;
	char name[TCPCHAT_NAME_MAX + 1];
} G = {.out = PTHREAD_MUTEX_INITIALIZER};

static const char *const palette[] = {"31", "32", "33", "34", "35", "36"};

static const char *color_of(const char *s, size_t n)
{
	unsigned h = 5381;
	for (size_t i = 0; i < n; i++)
		h = h * 33 + (unsigned char)s[i];
	return palette[h % (sizeof palette / sizeof palette[0])];
}

/* The prompt shows the current room. */
static void redraw_locked(void)
{
	if (!G.tty)
		return;
	char room[TCPCHAT_ROOM_MAX + 1] = "";
	tcpchat_client_current_room(G.cli, room, sizeof room);
	fprintf(stdout, "\r\033[K%s%s> %.*s", room, *room ? " " : "",
	        (int)G.len, G.line);
	fflush(stdout);
}

/* 1 when room is empty or the default room: shown without a prefix. */
static int plain_room(tcpchat_str room, uint32_t flags)
{
	return room.len == 0 || (flags & TCPCHAT_MSGF_DEFAULT_ROOM) ||
	       (room.len == strlen(G.default_room) &&
	        !memcmp(room.ptr, G.default_room, room.len));
}

/* Prints one line above the input line: "[#room] " unless the room is
 * the default one, then "WHO: " when who is set, then the text. */
static void vshow(tcpchat_str room, uint32_t flags, const char *who,
                  size_t who_len, const char *fmt, va_list ap)
        __attribute__((format(printf, 5, 0)));
static void vshow(tcpchat_str room, uint32_t flags, const char *who,
                  size_t who_len, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&G.out);
	if (G.tty) {
		char stamp[16];
		time_t t = time(NULL);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(stamp, sizeof stamp, "%H:%M", &tm);
		fprintf(stdout, "\r\033[K%s ", stamp);
	}
	if (!plain_room(room, flags))
		fprintf(stdout, "[%.*s] ", (int)room.len, room.ptr);
	if (who) {
		if (G.color)
			fprintf(stdout, "\033[1;%sm%.*s\033[0m: ",
			        color_of(who, who_len), (int)who_len, who);
		else
			fprintf(stdout, "%.*s: ", (int)who_len, who);
	}
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	redraw_locked();
	fflush(stdout);
	pthread_mutex_unlock(&G.out);
}

static void show_in(tcpchat_str room, uint32_t flags, const char *who,
                    size_t who_len, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static void show_in(tcpchat_str room, uint32_t flags, const char *who,
                    size_t who_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vshow(room, flags, who, who_len, fmt, ap);
	va_end(ap);
}

static void show(const char *who, size_t who_len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void show(const char *who, size_t who_len, const char *fmt, ...)
{
	static const tcpchat_str none = {NULL, 0};
	va_list ap;
	va_start(ap, fmt);
	vshow(none, 0, who, who_len, fmt, ap);
	va_end(ap);
}

static void finish_with(int rc)
{
	atomic_store(&G.result, rc);
	atomic_store(&G.done, 1);
}

#define S(v) (int)(v).len, (v).ptr /* a tcpchat_str for "%.*s" */

/* " #room" for a room that is not the default one, else "". */
static void room_suffix(char *buf, size_t size, const tcpchat_msg *m)
{
	buf[0] = '\0';
	if (!plain_room(m->room, m->flags))
		snprintf(buf, size, " %.*s", S(m->room));
}

static void show_text(tcpchat_client *cli, const tcpchat_msg *m)
{
	if (m->target.len && (m->flags & TCPCHAT_MSGF_ECHO)) {
		show(NULL, 0, "-> *%.*s* %.*s", S(m->target), S(m->body));
		return; /* our own: not counted */
	}
	if (m->target.len)
		show(NULL, 0, "*%.*s* %.*s", S(m->sender), S(m->body));
	else if (m->sender.len)
		show_in(m->room, m->flags, m->sender.ptr, m->sender.len, "%.*s",
		        S(m->body));
	else
		show_in(m->room, m->flags, NULL, 0, "*** %.*s", S(m->body));
	long long n = atomic_fetch_add(&G.received, 1) + 1;
	if (G.count && n >= G.count)
		tcpchat_client_stop(cli);
}

static void show_msg(tcpchat_client *cli, const tcpchat_msg *m)
{
	char in[TCPCHAT_ROOM_MAX + 2];
	room_suffix(in, sizeof in, m);
	switch (m->type) {
	case TCPCHAT_MSG_TEXT:
		show_text(cli, m);
		break;
	case TCPCHAT_MSG_JOIN:
		if (!G.quiet)
			show(NULL, 0, "* %.*s joined%s", S(m->sender), in);
		break;
	case TCPCHAT_MSG_LEAVE:
		if (!G.quiet)
			show(NULL, 0, "* %.*s left%s (%s%s%.*s)", S(m->sender),
			     in, tcpchat_reason_name((int)m->code),
			     m->body.len ? ": " : "", S(m->body));
		break;
	case TCPCHAT_MSG_WHO:
		if (m->room.len)
			show(NULL, 0, "* %u in %.*s: %.*s", m->code, S(m->room),
			     S(m->body));
		else
			show(NULL, 0, "* %u online: %.*s", m->code, S(m->body));
		break;
	case TCPCHAT_MSG_TOPIC:
		if (!m->body.len)
			show(NULL, 0, "* topic %.*s cleared%s%.*s", S(m->room),
			     m->sender.len ? " by " : "", S(m->sender));
		else
			show(NULL, 0, "* topic %.*s%s%.*s: %.*s", S(m->room),
			     m->sender.len ? " by " : "", S(m->sender),
			     S(m->body));
		break;
	case TCPCHAT_MSG_ROOMS:
		if (!m->room.len)
			show(NULL, 0, "* %u rooms", m->code);
		else
			show(NULL, 0, "* %.*s %u%s%.*s", S(m->room), m->code,
			     m->body.len ? ": " : "", S(m->body));
		break;
	case TCPCHAT_MSG_ERROR:
		show(NULL, 0, "! %.*s", S(m->body));
		break;
	default:
		break;
	}
}

/* The server said its protocol: without rooms, --room and --to cannot
 * be honoured. */
static void connected(tcpchat_client *cli, tcpchat_str name)
{
	tcpchat_server_info info;
	memset(&info, 0, sizeof info);
	info.size = sizeof info;
	tcpchat_client_server_info(cli, &info);
	pthread_mutex_lock(&G.out);
	memcpy(G.default_room, info.default_room, sizeof G.default_room);
	pthread_mutex_unlock(&G.out);
	atomic_store(&G.connected, 1);
	if (info.protocol < 2 && (G.nrooms || G.to)) {
		fprintf(stderr,
		        PROG ": the server has no rooms nor private "
		             "messages (protocol %u)\n",
		        info.protocol);
		atomic_store(&G.result, 1);
		tcpchat_client_stop(cli);
		return;
	}
	if (!G.quiet)
		show(NULL, 0, "* connected as %.*s (type /help)", S(name));
}

static int on_event(tcpchat_client *cli, const tcpchat_client_event *ev,
                    void *ud)
{
	(void)ud;
	switch (ev->type) {
	case TCPCHAT_CEV_CONNECTED:
		connected(cli, ev->name);
		break;
	case TCPCHAT_CEV_MESSAGE:
		show_msg(cli, ev->msg);
		break;
	case TCPCHAT_CEV_DISCONNECTED:
		if (ev->reason != TCPCHAT_REASON_QUIT) {
			pthread_mutex_lock(&G.out);
			if (G.tty)
				fputs("\r\033[K", stdout);
			fflush(stdout);
			fprintf(stderr, PROG ": disconnected (%s): %s\n",
			        tcpchat_reason_name(ev->reason),
			        ev->text ? ev->text : "");
			pthread_mutex_unlock(&G.out);
		}
		finish_with(ev->reason == TCPCHAT_REASON_QUIT
		                    ? atomic_load(&G.result)
		                    : 1);
		break;
	default:
		break;
	}
	return 0;
}

static void help(void)
{
	show(NULL, 0,
	     "* /join #room, /part [#room] [reason], /msg NAME text, "
	     "#room text, /rooms, /who [#room], /topic #room [text], "
	     "/quit (or Ctrl-D), //text: a line starting with '/'");
}

static void report(const char *what, int rc)
{
	if (rc)
		show(NULL, 0, "! %s failed: %s", what, tcpchat_strerror(rc));
}

/* Sends a text to user to, else to room, else to the current room.
 * From a pipe, waits for queue space rather than lose lines (at most
 * 10 s).  On a terminal, shows what was sent (the server echoes only
 * private messages). */
static void say(const char *room, const char *to, const char *s, size_t n)
{
	int rc;
	for (int i = 0;; i++) {
		rc = to     ? tcpchat_client_send_private(G.cli, to, s, n)
		     : room ? tcpchat_client_send_room(G.cli, room, s, n)
		            : tcpchat_client_send(G.cli, s, n);
		if (rc != TCPCHAT_EQUEUEFULL || G.tty || i >= 10000)
			break;
		struct timespec ms = {0, 1000 * 1000};
		nanosleep(&ms, NULL);
	}
	if (rc) {
		show(NULL, 0, "! not sent: %s", tcpchat_strerror(rc));
	} else if (G.tty && !to) {
		char cur[TCPCHAT_ROOM_MAX + 1] = "";
		if (!room)
			tcpchat_client_current_room(G.cli, cur, sizeof cur);
		tcpchat_str r = {room ? room : cur, strlen(room ? room : cur)};
		show_in(r, 0, G.name, strlen(G.name), "%.*s", (int)n, s);
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
			show(NULL, 0, "! usage: /who [#room]");
		else
			report("/who",
			       *room ? tcpchat_client_who_room(G.cli, room)
			             : tcpchat_client_who(G.cli));
	} else if (!strcmp(cmd, "/rooms") && !*rest) {
		report("/rooms", tcpchat_client_rooms(G.cli));
	} else if (!strcmp(cmd, "/join")) {
		room = word(&rest);
		if (!*room || *rest)
			show(NULL, 0, "! usage: /join #room");
		else
			report("/join", tcpchat_client_room_join(G.cli, room));
	} else if (!strcmp(cmd, "/part")) {
		room = *rest == '#' ? word(&rest) : NULL;
		report("/part", tcpchat_client_room_part(G.cli, room,
		                                         *rest ? rest : NULL));
	} else if (!strcmp(cmd, "/msg")) {
		arg = word(&rest);
		if (!*arg || !*rest)
			show(NULL, 0, "! usage: /msg NAME text");
		else
			say(NULL, arg, rest, strlen(rest));
	} else if (!strcmp(cmd, "/topic")) {
		room = word(&rest);
		if (!*room)
			show(NULL, 0, "! usage: /topic #room [text]");
		else
			report("/topic",
			       tcpchat_client_set_topic(G.cli, room, rest));
	} else {
		show(NULL, 0, "! unknown command %s (try /help)", cmd);
	}
	return 0;
}

/* Handles one typed (or piped) line.  Returns 1 to quit. */
static int command(const char *s, size_t n)
{
	if (n == 0)
		return 0;
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

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void raw_on(void)
{
	struct termios t;
	if (tcgetattr(STDIN_FILENO, &G.saved) < 0)
		return;
	t = G.saved;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
		G.raw = 1;
}

static void raw_off(void)
{
	if (G.raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &G.saved);
	G.raw = 0;
}

/* Interactive input with a tiny line editor.  Returns at quit or EOF. */
static void read_tty(void)
{
	raw_on();
	pthread_mutex_lock(&G.out);
	redraw_locked();
	pthread_mutex_unlock(&G.out);
	/* Ctrl-C leaves like /quit, with the terminal restored. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!atomic_load(&G.done) && !interrupted) {
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		unsigned char ch;
		if (read(STDIN_FILENO, &ch, 1) != 1)
			break;
		pthread_mutex_lock(&G.out);
		if (ch == 4 && G.len == 0) { /* Ctrl-D on an empty line */
			pthread_mutex_unlock(&G.out);
			break;
		}
		if (ch == '\n' || ch == '\r') {
			char copy[LINE_MAX_BYTES];
			size_t n = G.len;
			memcpy(copy, G.line, n);
			G.len = 0;
			redraw_locked();
			pthread_mutex_unlock(&G.out);
			if (command(copy, n))
				break;
			continue;
		}
		if (ch == 127 || ch == 8) {
			/* erase one UTF-8 character */
			while (G.len && (G.line[G.len - 1] & 0xC0) == 0x80)
				G.len--;
			if (G.len)
				G.len--;
		} else if (ch == 21) { /* Ctrl-U */
			G.len = 0;
		} else if ((ch >= 0x20 || ch == '\t') &&
		           G.len < sizeof G.line - 1) {
			G.line[G.len++] = (char)ch;
		}
		redraw_locked();
		pthread_mutex_unlock(&G.out);
	}
	raw_off();
	pthread_mutex_lock(&G.out);
	fputs("\r\033[K", stdout);
	fflush(stdout);
	pthread_mutex_unlock(&G.out);
}

/* Script mode: one message per line of stdin. */
static void read_lines(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while (!atomic_load(&G.done) &&
	       (n = getline(&line, &cap, stdin)) >= 0) {
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (command(line, (size_t)n))
			break;
	}
	free(line);
}

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: " PROG " --name NAME [OPTION]...\n"
	        "Join a tcpchat server and chat.\n"
	        "\n"
	        "  -n, --name NAME       your name: 1-32 bytes, no spaces "
	        "(required)\n"
	        "  -s, --server HOST:PORT  server address (default "
	        "127.0.0.1:7070)\n"
	        "  -C, --codec NAME      binary (default), line or json; must "
	        "match\n"
	        "                        the server's listener\n"
	        "  -r, --listen-only     do not read stdin; just print "
	        "messages\n"
	        "  -c, --count N         exit after receiving N chat messages\n"
	        "  -q, --quiet           do not print joins, leaves and status "
	        "lines\n"
	        "      --room #ROOM      join ROOM at the start (repeatable; "
	        "the "
	        "last one\n"
	        "                        becomes the current room); without a "
	        "terminal,\n"
	        "                        lines go to the last one\n"
	        "      --to NAME         without a terminal, send lines "
	        "privately to NAME\n"
	        "      --no-color        no colours even on a terminal\n"
	        "  -h, --help            show this help and exit\n"
	        "  -V, --version         show the version and exit\n"
	        "\n"
	        "Commands: /join #ROOM, /part [#ROOM] [REASON], /msg NAME "
	        "TEXT, "
	        "/rooms,\n"
	        "/who [#ROOM], /topic #ROOM [TEXT], /quit, /help; '#ROOM TEXT' "
	        "sends to\n"
	        "ROOM, any other line to the current room.  Ctrl-D quits.  "
	        "Without a\n"
	        "terminal, each line of stdin is handled so; at its end the "
	        "client\n"
	        "flushes and exits.\n"
	        "Exit status: 0 on a normal exit, 1 when the connection failed "
	        "or\n"
	        "was lost, 2 on bad arguments.\n");
}

/* Reports a usage error; returns the exit status for it. */
static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"name", required_argument, NULL, 'n'},
	        {"server", required_argument, NULL, 's'},
	        {"codec", required_argument, NULL, 'C'},
	        {"listen-only", no_argument, NULL, 'r'},
	        {"count", required_argument, NULL, 'c'},
	        {"quiet", no_argument, NULL, 'q'},
	        {"no-color", no_argument, NULL, 'N'},
	        {"room", required_argument, NULL, 'R'},
	        {"to", required_argument, NULL, 'T'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	const char *name = NULL, *server = "127.0.0.1:7070";
	const tcpchat_codec *codec = tcpchat_codec_binary();
	int no_color = 0, c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:s:C:rc:qhV", opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 's':
			server = optarg;
			break;
		case 'C':
			codec = tcpchat_codec_find(optarg);
			if (!codec)
				return bad(
				        "unknown codec '%s' (binary, line or "
				        "json)",
				        optarg);
			break;
		case 'r':
			G.listen_only = 1;
			break;
		case 'c': {
			char *end;
			errno = 0;
			G.count = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end || G.count < 1 ||
			    G.count > 1000000000)
				return bad(
				        "invalid --count '%s' (1..1000000000)",
				        optarg);
			break;
		}
		case 'q':
			G.quiet = 1;
			break;
		case 'N':
			no_color = 1;
			break;
		case 'R':
			if (tcpchat_room_check(optarg, strlen(optarg)))
				return bad("invalid --room '%s': use '#' and "
				           "1-63 bytes without spaces, commas "
				           "or colons",
				           optarg);
			if (G.nrooms == ROOMS_MAX)
				return bad("at most %d --room options",
				           ROOMS_MAX);
			G.rooms[G.nrooms++] = optarg;
			break;
		case 'T':
			if (tcpchat_name_check(optarg, strlen(optarg)))
				return bad("invalid --to '%s': use 1-32 bytes "
				           "of printable UTF-8 without spaces",
				           optarg);
			G.to = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s (protocol %d)\n",
			       tcpchat_version(NULL), TCPCHAT_PROTOCOL_VERSION);
			return 0;
		case ':':
			return bad("option '%s' needs a value",
			           argv[optind - 1]);
		default:
			return bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (!name)
		return bad("%s", "--name is required");
	if (tcpchat_name_check(name, strlen(name)))
		return bad("invalid name '%s': use 1-32 bytes of printable "
		           "UTF-8 without spaces",
		           name);
	snprintf(G.name, sizeof G.name, "%s", name);
	G.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && !G.listen_only;
	G.color = G.tty && !no_color && !getenv("NO_COLOR");
	signal(SIGPIPE, SIG_IGN);

	int rc = tcpchat_client_new(&G.cli);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", tcpchat_strerror(rc));
		return 1;
	}
	tcpchat_client_set_codec(G.cli, codec);
	tcpchat_client_set_handler(G.cli, on_event, NULL);
	rc = tcpchat_client_connect(G.cli, server, name);
	/* queued now, sent right after the handshake, before any line */
	for (int i = 0; rc == 0 && i < G.nrooms; i++) {
		rc = tcpchat_client_room_join(G.cli, G.rooms[i]);
		if (rc) {
			fprintf(stderr, PROG ": cannot join %s: %s\n",
			        G.rooms[i], tcpchat_strerror(rc));
			tcpchat_client_destroy(G.cli);
			return 1;
		}
	}
	if (rc == 0)
		rc = tcpchat_client_start(G.cli);
	if (rc) {
		fprintf(stderr, PROG ": cannot connect to %s: %s\n", server,
		        rc == TCPCHAT_ESYS ? strerror(errno)
		                           : tcpchat_strerror(rc));
		tcpchat_client_destroy(G.cli);
		return rc == TCPCHAT_EADDR ? 2 : 1;
	}

	if (G.listen_only) {
		/* wait for --count messages, a signal or the end */
		sigset_t sigs;
		sigemptyset(&sigs);
		sigaddset(&sigs, SIGINT);
		sigaddset(&sigs, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &sigs, NULL);
		while (!atomic_load(&G.done)) {
			struct timespec t = {0, 100 * 1000 * 1000};
			int sig = sigtimedwait(&sigs, NULL, &t);
			if (sig == SIGINT || sig == SIGTERM)
				break;
		}
	} else if (G.tty) {
		read_tty();
	} else {
		read_lines();
	}
	tcpchat_client_stop(G.cli);
	rc = tcpchat_client_join(G.cli);
	tcpchat_client_destroy(G.cli);
	if (atomic_load(&G.done))
		return atomic_load(&G.result);
	return rc == 0 ? 0 : 1;
}
