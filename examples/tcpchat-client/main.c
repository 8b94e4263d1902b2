/* tcpchat-client - a terminal chat client built on libtcpchat.
 * SPDX-License-Identifier: MIT
 *
 * With a terminal, a line editor (term.h) keeps the line being typed at
 * the bottom and incoming messages are printed above it.  Without one,
 * it reads lines from stdin, sends them, and prints messages as plain
 * lines, which makes it usable from scripts.  The library runs the
 * connection on its own thread; the main thread waits on stdin and on a
 * pipe through which that thread and the signal handlers wake it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "term.h"

#define SCRIPT_LINE_MAX (16u << 20) /* longer stdin lines are cut */

struct app G = {.out = PTHREAD_MUTEX_INITIALIZER, .wake = {-1, -1}};

static void on_signal(int sig)
{
	int saved = errno;
	char b = (char)sig;
	if (write(G.wake[1], &b, 1) < 0) {
		/* the pipe is full: the main thread is due to wake anyway */
	}
	errno = saved;
}

static void catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (G.tty) {
		sigaction(SIGWINCH, &sa, NULL);
		sigaction(SIGCONT, &sa, NULL);
	}
}

/* Empties the wake-up pipe.  Returns the signal that asks to leave
 * (SIGINT, SIGTERM, SIGHUP) or 0; redraws the terminal for the others. */
static int drain_wake(void)
{
	char b[64];
	int quit = 0;
	ssize_t n;
	while ((n = read(G.wake[0], b, sizeof b)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (b[i] == SIGINT || b[i] == SIGTERM || b[i] == SIGHUP)
				quit = quit ? quit : b[i];
			else if (b[i] == SIGWINCH)
				term_resize();
			else if (b[i] == SIGCONT)
				term_redraw();
		}
	}
	return quit;
}

static void make_prompt(char *buf, size_t size)
{
	char room[TCPCHAT_ROOM_MAX + 1] = "";
	tcpchat_client_current_room(G.cli, room, sizeof room);
	snprintf(buf, size, "%s%s> ", room, *room ? " " : "");
}

/* Interactive: the line editor.  Returns the signal that ended it, or
 * 0; -1 when the terminal cannot be used. */
static int run_tty(const char *history)
{
	char prompt[TCPCHAT_ROOM_MAX + 8];
	make_prompt(prompt, sizeof prompt);
	if (term_open(prompt, history) != 0)
		return -1;
	int quit = 0;
	while (!quit) {
		struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
		                      {.fd = G.wake[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN) {
			quit = drain_wake();
			view_flush();
			make_prompt(prompt, sizeof prompt);
			term_prompt(prompt);
			if (atomic_load(&G.done))
				break;
		}
		if (!quit && p[0].revents && term_input(input_line) != 0)
			break;
	}
	term_close();
	view_discard();
	return quit;
}

/* Handles the complete lines of buf[0..*len); keeps the rest. */
static int script_lines(char *buf, size_t *len, int at_end)
{
	size_t start = 0;
	for (;;) {
		char *nl = memchr(buf + start, '\n', *len - start);
		if (!nl && !(at_end && start < *len) &&
		    *len - start < SCRIPT_LINE_MAX)
			break;
		size_t end = nl ? (size_t)(nl - buf) : *len;
		size_t n = end - start;
		if (!nl && !at_end)
			view_error("a line of stdin longer than %u bytes was "
			           "cut",
			           SCRIPT_LINE_MAX);
		while (n && (buf[start + n - 1] == '\r'))
			n--;
		if (input_line(buf + start, n))
			return 1;
		start = nl ? end + 1 : end;
		if (start >= *len)
			break;
	}
	memmove(buf, buf + start, *len - start);
	*len -= start;
	return 0;
}

/* Script mode: one message per line of stdin, until its end.  Returns
 * the signal that ended it, or 0. */
static int run_script(void)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	int quit = 0;
	while (buf && !quit && !atomic_load(&G.done)) {
		struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
		                      {.fd = G.wake[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN)
			quit = drain_wake();
		if (quit || !p[0].revents)
			continue;
		if (cap - len < 4096 && cap < SCRIPT_LINE_MAX + 4096) {
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			script_lines(buf, &len, 1);
			break;
		}
		len += (size_t)n;
		if (script_lines(buf, &len, 0))
			break;
	}
	free(buf);
	return quit;
}

/* Listen-only: until --count messages, a signal or the end. */
static int run_listen(void)
{
	int quit = 0;
	while (!quit && !atomic_load(&G.done)) {
		struct pollfd p = {.fd = G.wake[0], .events = POLLIN};
		if (poll(&p, 1, -1) > 0)
			quit = drain_wake();
	}
	return quit;
}

/* $XDG_DATA_HOME/tcpchat/history, else ~/.local/share/tcpchat/history;
 * makes the directories (mode 0700).  NULL when there is no home. */
static char *default_history(void)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	char dir[4096];
	if (xdg && *xdg == '/')
		snprintf(dir, sizeof dir, "%s/tcpchat", xdg);
	else if (home && *home)
		snprintf(dir, sizeof dir, "%s/.local/share/tcpchat", home);
	else
		return NULL;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0700);
		*p = '/';
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return NULL;
	size_t n = strlen(dir) + sizeof "/history";
	char *path = malloc(n);
	if (path)
		snprintf(path, n, "%s/history", dir);
	return path;
}

static int wake_pipe(void)
{
	if (pipe(G.wake) != 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		fcntl(G.wake[i], F_SETFL,
		      fcntl(G.wake[i], F_GETFL) | O_NONBLOCK);
		fcntl(G.wake[i], F_SETFD, FD_CLOEXEC);
	}
	return 0;
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
	        "the last\n"
	        "                        one becomes the current room); "
	        "without a\n"
	        "                        terminal, lines go to the last one\n"
	        "      --to NAME         without a terminal, send lines "
	        "privately to NAME\n"
	        "      --history N       show the latest N texts (0..1000) of "
	        "each room\n"
	        "                        joined (default 0: none)\n"
	        "      --no-reconnect    exit when the connection is lost "
	        "instead of\n"
	        "                        reconnecting\n"
	        "      --history-file FILE  keep typed lines in FILE "
	        "(default\n"
	        "                        $XDG_DATA_HOME/tcpchat/history)\n"
	        "      --no-history-file  do not keep typed lines across "
	        "runs\n"
	        "      --password-file FILE  send the first line of FILE as "
	        "the\n"
	        "                        password (else $TCPCHAT_PASSWORD, "
	        "if set)\n"
	        "      --tls             speak TLS, checking the server's "
	        "certificate\n"
	        "                        against the system's CAs and its "
	        "name\n"
	        "      --tls-ca FILE     ... against the CAs in FILE instead\n"
	        "      --tls-cert FILE   present this certificate (and "
	        "--tls-key FILE)\n"
	        "      --tls-server-name NAME  the name the certificate must "
	        "carry\n"
	        "                        (default: the host of --server)\n"
	        "      --no-color        no colours even on a terminal\n"
	        "  -h, --help            show this help and exit\n"
	        "  -V, --version         show the version and exit\n"
	        "\n"
	        "Commands: /join #ROOM, /part [#ROOM] [REASON], /msg NAME "
	        "TEXT, /rooms,\n"
	        "/who [#ROOM], /topic #ROOM [TEXT], /history [#ROOM] [N], "
	        "/quit, /help;\n"
	        "operators: /kick #ROOM NAME [REASON], /ban #ROOM NAME "
	        "[REASON],\n"
	        "/unban #ROOM NAME;\n"
	        "'#ROOM TEXT' sends to ROOM, '//TEXT' sends '/TEXT', any other "
	        "line goes\n"
	        "to the current room.\n"
	        "On a terminal: Tab completes, Up and Down recall lines, "
	        "Ctrl-D quits.\n"
	        "Without a terminal, each line of stdin is handled so; at its "
	        "end the\n"
	        "client flushes and exits.\n"
	        "Exit status: 0 on a normal exit, 1 when the connection failed "
	        "or\n"
	        "was lost, 2 on bad arguments, 128+N after signal N (130 for "
	        "Ctrl-C).\n");
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

/* --password-file: the first line of file, without its line end, into
 * G.password.  0, or -1 with errno set (0: an empty first line). */
static int read_password(const char *file)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	errno = 0;
	ssize_t n = getline(&line, &cap, f);
	fclose(f);
	if (n > 0)
		line[strcspn(line, "\r\n")] = '\0';
	if (n <= 0 || !line[0]) {
		free(line);
		return -1;
	}
	free(G.password);
	G.password = line;
	return 0;
}

/* Parses the options into G; *history is the history file (NULL: none).
 * Returns -1 to go on, else the exit status. */
static int options(int argc, char **argv, const tcpchat_codec **codec,
                   char **history)
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
	        {"history", required_argument, NULL, 'Y'},
	        {"history-file", required_argument, NULL, 'H'},
	        {"no-history-file", no_argument, NULL, 'X'},
	        {"no-reconnect", no_argument, NULL, 'Z'},
	        {"password-file", required_argument, NULL, 'P'},
	        {"tls", no_argument, NULL, 'S'},
	        {"tls-ca", required_argument, NULL, 'A'},
	        {"tls-cert", required_argument, NULL, 'E'},
	        {"tls-key", required_argument, NULL, 'K'},
	        {"tls-server-name", required_argument, NULL, 'W'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	const char *name = NULL, *hist = NULL;
	int no_color = 0, no_history = 0, c;
	G.server = "127.0.0.1:7070";
	G.reconnect = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:s:C:rc:qhV", opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 's':
			G.server = optarg;
			break;
		case 'C':
			*codec = tcpchat_codec_find(optarg);
			if (!*codec)
				return bad("unknown codec '%s' (binary, line "
				           "or json)",
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
				return bad("invalid --count '%s' "
				           "(1..1000000000)",
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
		case 'Y': {
			char *end;
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 0 || v > 1000)
				return bad(
				        "invalid --history '%s' (a number of "
				        "texts, 0..1000; the file of typed "
				        "lines is --history-file)",
				        optarg);
			G.history = (int)v;
			break;
		}
		case 'Z':
			G.reconnect = 0;
			break;
		case 'P':
			if (read_password(optarg) != 0)
				return bad("cannot read --password-file '%s': "
				           "%s",
				           optarg,
				           errno ? strerror(errno) : "empty");
			break;
		case 'S':
			G.tls = 1;
			break;
		case 'A':
		case 'E':
		case 'K':
		case 'W': {
			const char **v = c == 'A'   ? &G.tls_cfg.ca_file
			                 : c == 'E' ? &G.tls_cfg.cert_file
			                 : c == 'K' ? &G.tls_cfg.key_file
			                            : &G.tls_cfg.server_name;
			if (!*optarg)
				return bad("option '%s' needs a value",
				           argv[optind - 1]);
			*v = optarg;
			G.tls = 1;
			break;
		}
		case 'H':
			if (!*optarg)
				return bad("%s",
				           "--history-file needs a file name");
			hist = optarg;
			break;
		case 'X':
			no_history = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s (protocol %d, %s line editor)\n",
			       tcpchat_version(NULL), TCPCHAT_PROTOCOL_VERSION,
			       term_editor());
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
	const char *env = getenv("TCPCHAT_PASSWORD");
	if (!G.password && env && *env && !(G.password = strdup(env)))
		return bad("%s", strerror(errno));
	G.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && !G.listen_only;
	G.color = G.tty && !no_color && !getenv("NO_COLOR");
	*history = NULL;
	if (G.tty && !no_history)
		*history = hist ? strdup(hist) : default_history();
	return -1;
}

/* Creates the client and starts connecting.  Returns 0 or the exit
 * status. */
static int start(const tcpchat_codec *codec)
{
	int rc = tcpchat_client_new(&G.cli);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", tcpchat_strerror(rc));
		return 1;
	}
	tcpchat_client_set_codec(G.cli, codec);
	tcpchat_client_set_handler(G.cli, view_on_event, NULL);
	tcpchat_client_set_option(G.cli, TCPCHAT_COPT_RECONNECT, G.reconnect);
	if (G.password) {
		rc = tcpchat_client_set_credential(G.cli, G.password);
		/* the library keeps its own copy */
		memset(G.password, 0, strlen(G.password));
		free(G.password);
		G.password = NULL;
		if (rc) {
			fprintf(stderr,
			        PROG ": unusable password: %s (at most %d "
			             "bytes of UTF-8 without control "
			             "characters)\n",
			        tcpchat_strerror(rc), TCPCHAT_CREDENTIAL_MAX);
			return 2;
		}
	}
	if (G.tls) {
		char err[512];
		rc = tcpchat_client_set_tls(G.cli, &G.tls_cfg, err, sizeof err);
		if (rc) {
			fprintf(stderr, PROG ": %s\n",
			        err[0] ? err : tcpchat_strerror(rc));
			return rc == TCPCHAT_ENOTSUP ? 2 : 1;
		}
	}
	rc = tcpchat_client_connect(G.cli, G.server, G.name);
	/* queued now, sent right after the handshake, before any line */
	for (int i = 0; rc == 0 && i < G.nrooms; i++) {
		seq_want_history(G.rooms[i]);
		rc = tcpchat_client_room_join(G.cli, G.rooms[i]);
		if (rc) {
			fprintf(stderr, PROG ": cannot join %s: %s\n",
			        G.rooms[i], tcpchat_strerror(rc));
			return 1;
		}
	}
	if (rc == 0)
		rc = tcpchat_client_start(G.cli);
	if (rc) {
		fprintf(stderr, PROG ": cannot connect to %s: %s\n", G.server,
		        rc == TCPCHAT_ESYS ? strerror(errno)
		                           : tcpchat_strerror(rc));
		return rc == TCPCHAT_EADDR ? 2 : 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const tcpchat_codec *codec = tcpchat_codec_binary();
	char *history = NULL;
	int rc = options(argc, argv, &codec, &history);
	if (rc >= 0)
		return rc;
	setlocale(LC_CTYPE, ""); /* the terminal's character set */
	signal(SIGPIPE, SIG_IGN);
	if (wake_pipe() != 0) {
		fprintf(stderr, PROG ": pipe: %s\n", strerror(errno));
		return 1;
	}
	catch_signals();
	int status = start(codec);
	if (status) {
		tcpchat_client_destroy(G.cli);
		free(history);
		return status;
	}
	int quit;
	if (G.listen_only)
		quit = run_listen();
	else if (G.tty)
		quit = run_tty(history);
	else
		quit = run_script();
	if (quit < 0) {
		fprintf(stderr, PROG ": cannot use the terminal\n");
		quit = 0;
		atomic_store(&G.result, 1);
	}
	tcpchat_client_stop(G.cli);
	rc = tcpchat_client_join(G.cli);
	tcpchat_client_destroy(G.cli);
	free(history);
	if (G.bye[0])
		fprintf(stderr, PROG ": %s\n", G.bye);
	if (quit)
		return 128 + quit; /* as a shell reports a signal */
	if (atomic_load(&G.done))
		return atomic_load(&G.result);
	return rc == 0 ? 0 : 1;
}
