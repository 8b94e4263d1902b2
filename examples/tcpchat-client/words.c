/* tcpchat-client - the names and rooms seen so far, and Tab completion.
 * SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

#define WORDS_MAX 4096 /* names, and rooms, remembered */

static const char *const commands[] = {
        "/ban",  "/help",  "/join",  "/kick",  "/msg", "/part",
        "/quit", "/rooms", "/topic", "/unban", "/who",
};

static struct wordset {
	char *w[WORDS_MAX];
	size_t n;
} sets[2];

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static long find(const struct wordset *ws, const char *s, size_t n)
{
	for (size_t i = 0; i < ws->n; i++)
		if (strlen(ws->w[i]) == n && !memcmp(ws->w[i], s, n))
			return (long)i;
	return -1;
}

void words_add(int kind, const char *s, size_t n)
{
	if (n == 0 || n > TCPCHAT_ROOM_MAX)
		return;
	struct wordset *ws = &sets[kind];
	pthread_mutex_lock(&mu);
	if (find(ws, s, n) < 0 && ws->n < WORDS_MAX) {
		char *w = strndup(s, n);
		if (w)
			ws->w[ws->n++] = w;
	}
	pthread_mutex_unlock(&mu);
}

void words_del(int kind, const char *s, size_t n)
{
	struct wordset *ws = &sets[kind];
	pthread_mutex_lock(&mu);
	long i = find(ws, s, n);
	if (i >= 0) {
		free(ws->w[i]);
		ws->w[i] = ws->w[--ws->n];
	}
	pthread_mutex_unlock(&mu);
}

void words_add_list(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && s[j] != ' ')
			j++;
		words_add(WORD_NAME, s + i, j - i);
		i = j + 1;
	}
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_cand(struct completion *c, const char *w, const char *word,
                     size_t len, size_t *cap)
{
	if (strncmp(w, word, len) != 0)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->cand[i], w))
			return;
	if (c->n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 16;
		char **p = realloc(c->cand, ncap * sizeof *p);
		if (!p)
			return;
		c->cand = p;
		*cap = ncap;
	}
	char *d = strdup(w);
	if (d)
		c->cand[c->n++] = d;
}

size_t complete_word(const char *line, size_t cursor, struct completion *c)
{
	memset(c, 0, sizeof *c);
	size_t s = cursor;
	while (s > 0 && line[s - 1] != ' ' && line[s - 1] != '\t')
		s--;
	c->start = s;
	const char *word = line + s;
	size_t len = cursor - s, cap = 0;
	if (s == 0 && len && word[0] == '/') {
		for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
			add_cand(c, commands[i], word, len, &cap);
	} else {
		int kind = len && word[0] == '#' ? WORD_ROOM : WORD_NAME;
		pthread_mutex_lock(&mu);
		for (size_t i = 0; i < sets[kind].n; i++)
			add_cand(c, sets[kind].w[i], word, len, &cap);
		pthread_mutex_unlock(&mu);
	}
	if (c->n == 0)
		return 0;
	qsort(c->cand, c->n, sizeof *c->cand, by_name);
	size_t common = strlen(c->cand[0]);
	for (size_t i = 1; i < c->n; i++) {
		size_t k = 0;
		while (k < common && c->cand[i][k] == c->cand[0][k])
			k++;
		common = k;
	}
	/* never stop inside a UTF-8 character */
	while (common > len && (c->cand[0][common] & 0xC0) == 0x80)
		common--;
	c->common = common;
	return c->n;
}

void complete_free(struct completion *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->cand[i]);
	free(c->cand);
	memset(c, 0, sizeof *c);
}

char *complete_insert(const struct completion *c, size_t typed)
{
	if (c->n == 0 || c->common < typed)
		return NULL;
	size_t add = c->common - typed;
	if (add == 0 && c->n > 1)
		return NULL;
	char *s = malloc(add + 2);
	if (!s)
		return NULL;
	memcpy(s, c->cand[0] + typed, add);
	if (c->n == 1)
		s[add++] = ' ';
	s[add] = '\0';
	return s;
}

void complete_list(const struct completion *c, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < c->n && o + 1 < size; i++) {
		int w = snprintf(buf + o, size - o, "%s%s", i ? " " : "",
		                 c->cand[i]);
		if (w < 0 || (size_t)w >= size - o) {
			buf[o] = '\0';
			break;
		}
		o += (size_t)w;
	}
}
