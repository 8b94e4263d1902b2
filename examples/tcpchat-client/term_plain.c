/* tcpchat-client - the input line without libedit: a small editor.
 * SPDX-License-Identifier: MIT
 *
 * Keys: printable text and UTF-8; Left, Right, Home, End, Delete,
 * Backspace; Up and Down (and Ctrl-P, Ctrl-N) recall the lines of this
 * run; Ctrl-A, Ctrl-E, Ctrl-B, Ctrl-F, Ctrl-K, Ctrl-U, Ctrl-W, Ctrl-L;
 * Tab completes; Ctrl-D on an empty line ends the input.  Other escape
 * sequences are read whole and ignored, so no stray "[D" gets into the
 * line.  The prompt and the line are redrawn whole after each batch of
 * input, over as many rows as they take (term_advance()). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "app.h"
#include "term.h"

#define LINE_CAP_MAX (1u << 20) /* a longer typed line is refused */
#define HISTORY_N 200

static struct termios saved;
static int raw;
static char prompt_buf[TCPCHAT_ROOM_MAX + 8];
static char *buf;
static size_t len, cap, cur; /* the line, its size, the cursor (bytes) */
static int crow;             /* the cursor's row below the prompt's */
static char *hist[HISTORY_N];
static int hn, hpos;
static char *stash; /* the line being typed while browsing the history */
static char esc[16];
static size_t esc_len; /* an escape sequence being read */
static int eof_seen;

static int rows_to(size_t n, int *col)
{
	int cols = term_cols(), row = 0, c = 0;
	term_advance(prompt_buf, strlen(prompt_buf), cols, &row, &c);
	term_advance(buf, n, cols, &row, &c);
	if (col)
		*col = c;
	return row;
}

static void erase_input(void)
{
	fputs("\r", stdout);
	if (crow > 0)
		fprintf(stdout, "\033[%dA", crow);
	fputs("\033[J", stdout);
	crow = 0;
}

static void draw(void)
{
	erase_input();
	fputs(prompt_buf, stdout);
	fwrite(buf, 1, len, stdout);
	int ecol, erow = rows_to(len, &ecol);
	if (ecol == 0 && erow > 0)
		fputs("\r\n", stdout); /* leave the pending wrap */
	int ccol, row = rows_to(cur, &ccol);
	if (row != erow || ccol != ecol) { /* the cursor is not at the end */
		if (erow > row)
			fprintf(stdout, "\033[%dA", erow - row);
		fputs("\r", stdout);
		if (ccol > 0)
			fprintf(stdout, "\033[%dC", ccol);
	}
	crow = row;
	fflush(stdout);
}

static int reserve(size_t more)
{
	if (len + more + 1 <= cap)
		return 0;
	if (len + more + 1 > LINE_CAP_MAX)
		return -1;
	size_t ncap = cap ? cap : 256;
	while (ncap < len + more + 1)
		ncap *= 2;
	char *nb = realloc(buf, ncap);
	if (!nb)
		return -1;
	buf = nb;
	cap = ncap;
	return 0;
}

static void insert(const char *s, size_t n)
{
	if (reserve(n) != 0)
		return;
	memmove(buf + cur + n, buf + cur, len - cur);
	memcpy(buf + cur, s, n);
	len += n;
	cur += n;
}

static void set_line(const char *s)
{
	len = cur = 0;
	if (s)
		insert(s, strlen(s));
}

static size_t prev_char(size_t i)
{
	while (i > 0 && (buf[--i] & 0xC0) == 0x80)
		;
	return i;
}

static size_t next_char(size_t i)
{
	if (i < len)
		i++;
	while (i < len && (buf[i] & 0xC0) == 0x80)
		i++;
	return i;
}

static void delete_range(size_t from, size_t to)
{
	memmove(buf + from, buf + to, len - to);
	len -= to - from;
	cur = from;
}

static void history_move(int by)
{
	int to = hpos + by;
	if (to < 0 || to > hn)
		return;
	if (hpos == hn) {
		free(stash);
		stash = strndup(buf ? buf : "", len);
	}
	hpos = to;
	set_line(hpos == hn ? stash : hist[hpos]);
}

static void history_add(const char *s, size_t n)
{
	if (strspn(s, " \t") >= n)
		return;
	if (hn && strlen(hist[hn - 1]) == n && !memcmp(hist[hn - 1], s, n))
		return;
	if (hn == HISTORY_N) {
		free(hist[0]);
		memmove(hist, hist + 1, (HISTORY_N - 1) * sizeof *hist);
		hn--;
	}
	char *d = strndup(s, n);
	if (d)
		hist[hn++] = d;
}

static void complete(void)
{
	if (reserve(0) != 0)
		return;
	buf[len] = '\0';
	struct completion c;
	size_t n = complete_word(buf, cur, &c);
	char *ins = complete_insert(&c, cur - c.start);
	if (ins) {
		insert(ins, strlen(ins));
	} else if (n > 1) {
		char list[4096];
		complete_list(&c, list, sizeof list);
		term_print(list, strlen(list));
	} else {
		fputs("\a", stdout);
	}
	free(ins);
	complete_free(&c);
}

/* An escape sequence is complete in esc[0..esc_len). */
static void do_escape(void)
{
	char fin = esc[esc_len - 1];
	int param = esc_len > 3 ? atoi(esc + 2) : 0;
	if (esc_len < 3 || (esc[1] != '[' && esc[1] != 'O'))
		return; /* Alt-key: not used */
	if (fin == 'A')
		history_move(-1);
	else if (fin == 'B')
		history_move(1);
	else if (fin == 'C')
		cur = next_char(cur);
	else if (fin == 'D')
		cur = prev_char(cur);
	else if (fin == 'H' || (fin == '~' && (param == 1 || param == 7)))
		cur = 0;
	else if (fin == 'F' || (fin == '~' && (param == 4 || param == 8)))
		cur = len;
	else if (fin == '~' && param == 3 && cur < len)
		delete_range(cur, next_char(cur));
}

/* Takes one byte of an escape sequence; 1 while the sequence goes on. */
static int escape_byte(unsigned char ch)
{
	if (esc_len < sizeof esc)
		esc[esc_len++] = (char)ch;
	if (esc_len == 2 && ch != '[' && ch != 'O') {
		esc_len = 0; /* ESC and one key */
		return 0;
	}
	if (esc_len > 2 && ch >= 0x40 && ch <= 0x7E) {
		do_escape();
		esc_len = 0;
		return 0;
	}
	return 1;
}

/* Handles one byte.  Returns 1 when a line is complete, -1 at EOF. */
static int key(unsigned char ch)
{
	if (esc_len)
		return escape_byte(ch), 0;
	switch (ch) {
	case 27:
		esc[0] = 27;
		esc_len = 1;
		break;
	case '\r':
	case '\n':
		return 1;
	case 127:
	case 8:
		if (cur)
			delete_range(prev_char(cur), cur);
		break;
	case 1:
		cur = 0;
		break;
	case 5:
		cur = len;
		break;
	case 2:
		cur = prev_char(cur);
		break;
	case 6:
		cur = next_char(cur);
		break;
	case 11:
		len = cur;
		break;
	case 21:
		delete_range(0, cur);
		break;
	case 23: {
		size_t i = cur;
		while (i && (buf[i - 1] == ' ' || buf[i - 1] == '\t'))
			i--;
		while (i && buf[i - 1] != ' ' && buf[i - 1] != '\t')
			i--;
		delete_range(i, cur);
		break;
	}
	case 4:
		if (len == 0)
			return -1;
		if (cur < len)
			delete_range(cur, next_char(cur));
		break;
	case 12:
		fputs("\033[H\033[2J", stdout);
		crow = 0;
		break;
	case 9:
		complete();
		break;
	case 16:
		history_move(-1);
		break;
	case 14:
		history_move(1);
		break;
	default:
		if (ch >= 0x20) {
			char c = (char)ch;
			insert(&c, 1);
		}
		break;
	}
	return 0;
}

int term_open(const char *prompt, const char *history)
{
	(void)history; /* this editor keeps lines for the run only */
	snprintf(prompt_buf, sizeof prompt_buf, "%s", prompt);
	if (tcgetattr(STDIN_FILENO, &saved) < 0)
		return -1;
	struct termios t = saved;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | IEXTEN);
	t.c_iflag &= ~(tcflag_t)IXON;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) != 0)
		return -1;
	raw = 1;
	if (reserve(0) != 0)
		return -1;
	draw();
	return 0;
}

void term_close(void)
{
	erase_input();
	fflush(stdout);
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	raw = 0;
	for (int i = 0; i < hn; i++)
		free(hist[i]);
	hn = hpos = 0;
	free(stash);
	free(buf);
	stash = buf = NULL;
	len = cap = cur = 0;
}

void term_prompt(const char *prompt)
{
	if (!strcmp(prompt, prompt_buf))
		return;
	erase_input();
	snprintf(prompt_buf, sizeof prompt_buf, "%s", prompt);
	draw();
}

int term_input(int (*on_line)(const char *s, size_t n))
{
	unsigned char in[512];
	ssize_t n = read(STDIN_FILENO, in, sizeof in);
	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
		eof_seen = 1;
	for (ssize_t i = 0; i < n; i++) {
		int k = key(in[i]);
		if (k < 0)
			return -1;
		if (k == 0)
			continue;
		char *line = strndup(buf, len);
		size_t ln = len;
		history_add(buf, len);
		hpos = hn;
		len = cur = 0;
		erase_input();
		draw();
		int quit = line ? on_line(line, ln) : 0;
		free(line);
		if (quit)
			return 1;
	}
	if (eof_seen)
		return -1;
	draw();
	return 0;
}

void term_print(const char *s, size_t n)
{
	erase_input();
	fwrite(s, 1, n, stdout);
	fputs("\r\n", stdout);
	draw();
}

void term_resize(void)
{
	/* terminals that rewrap moved the input to the rows it takes at
	 * the new width */
	crow = rows_to(cur, NULL);
	draw();
}

void term_redraw(void)
{
	struct termios t;
	if (raw && tcgetattr(STDIN_FILENO, &t) == 0) {
		t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | IEXTEN);
		t.c_iflag &= ~(tcflag_t)IXON;
		tcsetattr(STDIN_FILENO, TCSANOW, &t);
	}
	fputs("\r\n", stdout);
	crow = 0;
	draw();
}

const char *term_editor(void)
{
	return "built-in";
}
