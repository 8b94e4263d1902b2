/* tcpchat-client - how much room text takes on the terminal.
 * SPDX-License-Identifier: MIT */
#define _XOPEN_SOURCE 700 /* wcwidth */
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

#include "term.h"

static void step(int w, int cols, int *row, int *col)
{
	if (w <= 0)
		return;
	if (*col + w > cols && *col > 0) {
		(*row)++;
		*col = 0;
	}
	*col += w;
	if (*col >= cols) {
		(*row)++;
		*col = 0;
	}
}

void term_advance(const char *s, size_t n, int cols, int *row, int *col)
{
	mbstate_t st;
	memset(&st, 0, sizeof st);
	if (cols < 1)
		cols = 1;
	size_t i = 0;
	while (i < n) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s + i, n - i, &st);
		if (k == (size_t)-1 || k == (size_t)-2) {
			memset(&st, 0, sizeof st);
			step(1, cols, row, col); /* shown as one cell */
			i++;
			continue;
		}
		if (k == 0)
			k = 1;
		if (wc == L'\t') {
			do
				step(1, cols, row, col);
			while (*col % 8 != 0);
		} else if (wc < 0x20 || wc == 0x7F) {
			step(1, cols, row, col);
			step(1, cols, row, col);
		} else {
			int w = wcwidth(wc);
			step(w < 0 ? 1 : w, cols, row, col);
		}
		i += k;
	}
}

int term_cols(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}
