/* tcpchat-client - the terminal's input line.
 * SPDX-License-Identifier: MIT
 *
 * Two editors implement it: libedit's (term_edit.c), when the program is
 * built with libedit, else a small one of the program's own
 * (term_plain.c).  Both keep the line being typed at the bottom and print
 * incoming lines above it, and both know where the cursor is in a line
 * that wraps over several rows.  Main thread only. */
#ifndef TCPCHAT_CLIENT_TERM_H
#define TCPCHAT_CLIENT_TERM_H

#include <stddef.h>

/* Puts the terminal in the editor's mode and shows the prompt.  history
 * is the file that keeps the typed lines across runs (NULL: none; the
 * small editor keeps them only for the run).  Returns 0 or -1. */
int term_open(const char *prompt, const char *history);

/* Restores the terminal (the input line is erased) and saves the
 * history. */
void term_close(void);

/* Changes the prompt; it is redrawn at once. */
void term_prompt(const char *prompt);

/* Handles the input that is ready on stdin; calls on_line for each line
 * entered (without its newline).  Returns 0, 1 when on_line returned 1,
 * or -1 at the end of the input (Ctrl-D on an empty line, or stdin
 * closed). */
int term_input(int (*on_line)(const char *s, size_t n));

/* Prints s[0..n) as a line above the input line, which is redrawn. */
void term_print(const char *s, size_t n);

/* The terminal changed size (SIGWINCH): redraws the input line for it. */
void term_resize(void);

/* Redraws the input line (after SIGCONT). */
void term_redraw(void);

/* "libedit" or "built-in". */
const char *term_editor(void);

/* ---- term_width.c ------------------------------------------------------- */

/* Moves (*row, *col) over s[0..n) as a terminal cols wide shows it: a
 * character that does not fit at the end of a row goes to the next one,
 * and a row that is filled up moves the cursor to the next row, as
 * libedit counts.  Wide characters count 2, a tab moves to the next
 * multiple of 8, a control character counts 2 ("^X"). */
void term_advance(const char *s, size_t n, int cols, int *row, int *col);

/* The terminal's width in columns (80 when it cannot be told). */
int term_cols(void);

#endif
