/* tcpchat-client - the input line, edited by libedit.
 * SPDX-License-Identifier: MIT
 *
 * libedit reads one key at a time (EL_UNBUFFERED), so the main loop can
 * wait on stdin and on the connection at once; this is how libedit's
 * readline-compatible callback interface works too.  Incoming lines are
 * printed above the input: the cursor goes up to the prompt's first row
 * (term_advance() says how many rows the prompt and the text before the
 * cursor take at the terminal's width), clears to the end of the screen,
 * prints the line and has libedit draw the prompt and the input again. */
#include <errno.h>
#include <histedit.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "app.h"
#include "term.h"

#define HISTORY_SIZE 1000

static EditLine *el;
static History *hist;
static HistEvent hev;
static char prompt_buf[TCPCHAT_ROOM_MAX + 8];
static char *hist_file;
static int eof_seen;

static char *get_prompt(EditLine *e)
{
	(void)e;
	return prompt_buf;
}

static int cols_of(void)
{
	int cols = 0;
	if (el_get(el, EL_GETTC, "co", &cols) != 0 || cols <= 0)
		cols = term_cols();
	return cols;
}

/* Rows from the prompt's first row down to where prompt and text[0..n)
 * end. */
static int rows_to(const char *text, size_t n)
{
	int cols = cols_of(), row = 0, col = 0;
	term_advance(prompt_buf, strlen(prompt_buf), cols, &row, &col);
	term_advance(text, n, cols, &row, &col);
	return row;
}

/* Moves the cursor to the prompt's first row and clears from there. */
static void erase_input(int rows_up)
{
	fputs("\r", stdout);
	if (rows_up > 0)
		fprintf(stdout, "\033[%dA", rows_up);
	fputs("\033[J", stdout);
}

static int cursor_row(void)
{
	const LineInfo *li = el_line(el);
	return rows_to(li->buffer, (size_t)(li->cursor - li->buffer));
}

/* Reads one character for libedit: waits for the first byte only as
 * long as poll() said one is there, and for the rest of a key sequence
 * (an arrow sends 3 bytes) at most 100 ms, so that a lone Escape does
 * not hold up the chat. */
static int getc_fn(EditLine *e, wchar_t *wc)
{
	(void)e;
	char b[8];
	size_t n = 0;
	for (;;) {
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		int r = poll(&p, 1, 100);
		if (r <= 0)
			return -1;
		ssize_t k = read(STDIN_FILENO, b + n, 1);
		if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
			eof_seen = 1;
			return k == 0 ? 0 : -1;
		}
		if (k < 0)
			return -1;
		n++;
		mbstate_t st;
		memset(&st, 0, sizeof st);
		size_t c = mbrtowc(wc, b, n, &st);
		if (c == (size_t)-2 && n < sizeof b)
			continue;
		if (c == (size_t)-1 || c == (size_t)-2) {
			n = 0; /* not a character: dropped */
			continue;
		}
		if (c == 0)
			*wc = L'\0';
		return 1;
	}
}

static unsigned char complete_fn(EditLine *e, int ch)
{
	(void)ch;
	const LineInfo *li = el_line(e);
	size_t cursor = (size_t)(li->cursor - li->buffer);
	char *line = strndup(li->buffer, cursor);
	if (!line)
		return CC_ERROR;
	struct completion c;
	size_t n = complete_word(line, cursor, &c);
	char *ins = complete_insert(&c, cursor - c.start);
	unsigned char rc = CC_REFRESH;
	if (ins) {
		el_insertstr(e, ins);
	} else if (n > 1) {
		char list[4096];
		complete_list(&c, list, sizeof list);
		term_print(list, strlen(list));
		rc = CC_NORM;
	} else {
		rc = CC_REFRESH_BEEP;
	}
	free(ins);
	complete_free(&c);
	free(line);
	return rc;
}

int term_open(const char *prompt, const char *hist_path)
{
	snprintf(prompt_buf, sizeof prompt_buf, "%s", prompt);
	el = el_init(PROG, stdin, stdout, stderr);
	hist = history_init();
	if (!el || !hist)
		return -1;
	history(hist, &hev, H_SETSIZE, HISTORY_SIZE);
	history(hist, &hev, H_SETUNIQUE, 1);
	if (hist_path) {
		hist_file = strdup(hist_path);
		history(hist, &hev, H_LOAD, hist_path); /* none yet: fine */
	}
	el_set(el, EL_EDITOR, "emacs");
	el_set(el, EL_SIGNAL, 0); /* the program handles its signals */
	el_set(el, EL_PROMPT, get_prompt);
	el_set(el, EL_HIST, history, hist);
	el_set(el, EL_GETCFN, getc_fn);
	/* wide strings: libedit keeps these pointers (it would leak copies
	 * of narrow ones) */
	el_wset(el, EL_ADDFN, L"tcpchat-complete",
	        L"Complete a command, a user name or a room", complete_fn);
	el_set(el, EL_BIND, "^I", "tcpchat-complete", NULL);
	/* as in readline: Ctrl-W deletes the word before the cursor,
	 * Ctrl-U the line, Ctrl-Left and Ctrl-Right move by words */
	el_set(el, EL_BIND, "^W", "ed-delete-prev-word", NULL);
	el_set(el, EL_BIND, "^U", "em-kill-line", NULL);
	el_set(el, EL_BIND, "\033[1;5D", "ed-prev-word", NULL);
	el_set(el, EL_BIND, "\033[1;5C", "em-next-word", NULL);
	el_source(el, NULL);          /* the user's ~/.editrc */
	el_set(el, EL_UNBUFFERED, 1); /* raw mode; draws the prompt */
	fflush(stdout);
	return 0;
}

void term_close(void)
{
	if (!el)
		return;
	erase_input(cursor_row());
	fflush(stdout);
	el_set(el, EL_UNBUFFERED, 0); /* the terminal as it was */
	if (hist_file && history(hist, &hev, H_SAVE, hist_file) < 0)
		fprintf(stderr, PROG ": cannot save the history in %s\n",
		        hist_file);
	el_end(el);
	history_end(hist);
	el = NULL;
	hist = NULL;
	free(hist_file);
	hist_file = NULL;
}

void term_prompt(const char *prompt)
{
	if (!strcmp(prompt, prompt_buf))
		return;
	erase_input(cursor_row());
	snprintf(prompt_buf, sizeof prompt_buf, "%s", prompt);
	el_set(el, EL_REFRESH);
}

/* A line was entered: libedit left it on the screen and went below it.
 * Erases it (what was said shows in the chat) and starts a new one. */
static void entered(const char *s, size_t n)
{
	erase_input(rows_to(s, n) + 1);
	el_set(el, EL_UNBUFFERED, 0);
	el_set(el, EL_UNBUFFERED, 1); /* an empty line, the prompt drawn */
	if (n && strspn(s, " \t") < n)
		history(hist, &hev, H_ENTER, s);
}

int term_input(int (*on_line)(const char *s, size_t n))
{
	for (;;) {
		int n = 0;
		const char *buf = el_gets(el, &n);
		fflush(stdout);
		if (eof_seen)
			return -1;
		if (buf && n == 1 && buf[0] == '\004')
			return -1; /* Ctrl-D on an empty line */
		if (buf && n > 0 && buf[n - 1] == '\n') {
			char *line = strndup(buf, (size_t)n - 1);
			if (!line)
				return 0;
			size_t len = (size_t)n - 1;
			entered(line, len);
			int quit = on_line(line, len);
			free(line);
			if (quit)
				return 1;
		}
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		if (poll(&p, 1, 0) <= 0)
			return 0; /* all that was ready is handled */
		if (p.revents & (POLLHUP | POLLERR | POLLNVAL) &&
		    !(p.revents & POLLIN))
			return -1;
	}
}

void term_print(const char *s, size_t n)
{
	erase_input(cursor_row());
	fwrite(s, 1, n, stdout);
	fputs("\r\n", stdout);
	el_set(el, EL_REFRESH); /* prompt and input, below */
}

void term_resize(void)
{
	el_resize(el);
	/* Terminals that rewrap (tmux, VTE, kitty) moved the input to
	 * the rows it takes at the new width. */
	erase_input(cursor_row());
	el_set(el, EL_REFRESH);
}

void term_redraw(void)
{
	el_set(el, EL_PREP_TERM, 1);
	fputs("\r\n", stdout);
	el_set(el, EL_REFRESH);
}

const char *term_editor(void)
{
	return "libedit";
}
