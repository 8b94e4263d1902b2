/* tcpchat-server - room authorization from a rules file: the parser (a
 * pure function over a buffer, fuzzed by tests/fuzz/fuzz_rules.c), the
 * decisions, and the table in force, swapped whole on SIGHUP.
 * SPDX-License-Identifier: MIT */
#include "tcpchat-server-rules.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tcpchat/tcpchat.h>

#define RULES_FILE_MAX (1 << 20) /* bytes of a rules file */
#define SHOWN_MAX 40             /* bytes of a bad word repeated */

/* Who may do something: names, and the two classes. */
struct who {
	char (*names)[TCPCHAT_NAME_MAX + 1];
	size_t n, cap;
	int any, registered, set;
};

struct section {
	char room[TCPCHAT_ROOM_MAX + 1]; /* "*": every other room */
	struct who join, speak, op;
	int topic_ops;
	unsigned line;
};

struct rules {
	struct section *s;
	size_t n, cap;
};

/* A word of a line: s[0..n). */
struct word {
	const char *s;
	size_t n;
};

static int word_is(struct word w, const char *lit)
{
	return w.n == strlen(lit) && memcmp(w.s, lit, w.n) == 0;
}

/* An error "FILE:LINE: what" in err; returns -1 for the caller. */
static int fail(char *err, size_t n, const char *file, unsigned line,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail(char *err, size_t n, const char *file, unsigned line,
                const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(err, n, "%s:%u: %s", file, line, what);
	return -1;
}

/* A word as it may be shown in an error: control bytes as '?', cut. */
static const char *shown(struct word w, char *buf, size_t cap)
{
	size_t k = w.n < cap - 4 ? w.n : cap - 4;
	for (size_t i = 0; i < k; i++) {
		unsigned char c = (unsigned char)w.s[i];
		buf[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
	}
	strcpy(buf + k, k < w.n ? "..." : "");
	return buf;
}

static void who_free(struct who *w)
{
	free(w->names);
	w->names = NULL;
	w->n = w->cap = 0;
}

void rules_free(struct rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		who_free(&r->s[i].join);
		who_free(&r->s[i].speak);
		who_free(&r->s[i].op);
	}
	free(r->s);
	free(r);
}

static int who_add_name(struct who *w, struct word x)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4;
		void *p = realloc(w->names, cap * sizeof *w->names);
		if (!p)
			return -1;
		w->names = p;
		w->cap = cap;
	}
	memcpy(w->names[w->n], x.s, x.n);
	w->names[w->n][x.n] = '\0';
	w->n++;
	return 0;
}

static struct section *find(const struct rules *r, const char *room, size_t len)
{
	for (size_t i = 0; i < r->n; i++)
		if (strlen(r->s[i].room) == len &&
		    memcmp(r->s[i].room, room, len) == 0)
			return &r->s[i];
	return NULL;
}

/* The words of line s[0..n), up to a comment: at most max, *count set.
 * Returns 0, or -1 when there are more. */
static int split(const char *s, size_t n, struct word *w, size_t max,
                 size_t *count)
{
	size_t k = 0, i = 0;
	for (;;) {
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i == n)
			break;
		size_t e = i;
		while (e < n && s[e] != ' ' && s[e] != '\t')
			e++;
		/* '#' begins a comment, but the room of "room #x" */
		if (s[i] == '#' && !(k == 1 && word_is(w[0], "room")))
			break;
		if (k == max)
			return -1;
		w[k].s = s + i;
		w[k].n = e - i;
		k++;
		i = e;
	}
	*count = k;
	return 0;
}

#define WORDS_MAX 4096 /* words on one line */

/* The names of a join, speak or op line w[1..k) into who.  Returns 0,
 * -1 for a bad word (shown in bad) or -2 without memory. */
static int add_who(struct who *who, const struct word *w, size_t k, int is_op,
                   char *bad, size_t cap)
{
	for (size_t i = 1; i < k; i++) {
		if (word_is(w[i], "*") && !is_op) {
			who->any = 1;
		} else if (word_is(w[i], "*")) {
			strcpy(bad, "*");
			return -1;
		} else if (word_is(w[i], "@registered")) {
			who->registered = 1;
		} else if (tcpchat_name_check(w[i].s, w[i].n) == 0 &&
		           w[i].s[0] != '@') {
			if (who_add_name(who, w[i]))
				return -2;
		} else {
			shown(w[i], bad, cap);
			return -1;
		}
	}
	who->set = 1;
	return 0;
}

static int push_section(struct rules *r, struct word room, unsigned line)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		void *p = realloc(r->s, cap * sizeof *r->s);
		if (!p)
			return -1;
		r->s = p;
		r->cap = cap;
	}
	struct section *sec = &r->s[r->n++];
	memset(sec, 0, sizeof *sec);
	memcpy(sec->room, room.s, room.n);
	sec->room[room.n] = '\0';
	sec->line = line;
	return 0;
}

/* One line with its words w[0..k) (k > 0), for the last section.
 * Returns 0, or -1 with the error in err. */
static int parse_line(struct rules *r, const struct word *w, size_t k,
                      const char *file, unsigned line, char *err, size_t n)
{
	char bad[SHOWN_MAX + 4];
	struct section *sec = r->n ? &r->s[r->n - 1] : NULL;
	if (word_is(w[0], "room")) {
		if (k != 2)
			return fail(err, n, file, line,
			            "'room' wants one room name or '*'");
		if (!word_is(w[1], "*") &&
		    tcpchat_room_check(w[1].s, w[1].n) != 0)
			return fail(err, n, file, line,
			            "'%s' is not a room name",
			            shown(w[1], bad, sizeof bad));
		const struct section *old = find(r, w[1].s, w[1].n);
		if (old)
			return fail(err, n, file, line,
			            "room %s has a section already (line %u)",
			            old->room, old->line);
		if (push_section(r, w[1], line))
			return fail(err, n, file, line, "out of memory");
		return 0;
	}
	int is_join = word_is(w[0], "join"), is_speak = word_is(w[0], "speak");
	int is_op = word_is(w[0], "op"), is_topic = word_is(w[0], "topic");
	if (!is_join && !is_speak && !is_op && !is_topic)
		return fail(err, n, file, line, "unknown keyword '%s'",
		            shown(w[0], bad, sizeof bad));
	if (!sec)
		return fail(err, n, file, line,
		            "'%.*s' before the first 'room' line", (int)w[0].n,
		            w[0].s);
	if (is_topic) {
		if (k != 2 || (!word_is(w[1], "ops") && !word_is(w[1], "*")))
			return fail(err, n, file, line,
			            "'topic' wants 'ops' or '*'");
		sec->topic_ops = word_is(w[1], "ops");
		return 0;
	}
	if (k < 2)
		return fail(
		        err, n, file, line, "'%.*s' wants at least one name%s",
		        (int)w[0].n, w[0].s,
		        is_op ? " or '@registered'" : ", '*' or '@registered'");
	struct who *who = is_join    ? &sec->join
	                  : is_speak ? &sec->speak
	                             : &sec->op;
	int rc = add_who(who, w, k, is_op, bad, sizeof bad);
	if (rc == -2)
		return fail(err, n, file, line, "out of memory");
	if (rc)
		return fail(err, n, file, line, "'%s' is not a user name%s",
		            bad,
		            is_op ? " or '@registered' (op * is not allowed)"
		                  : ", '*' or '@registered'");
	return 0;
}

struct rules *rules_parse(const char *buf, size_t len, const char *file,
                          char *err, size_t n)
{
	struct rules *r = calloc(1, sizeof *r);
	struct word *w = malloc(WORDS_MAX * sizeof *w);
	if (!r || !w) {
		free(r);
		free(w);
		snprintf(err, n, "%s: out of memory", file);
		return NULL;
	}
	unsigned line = 0;
	int rc = 0;
	size_t i = 0;
	while (i < len && rc == 0) {
		const char *s = buf + i;
		const char *nl = memchr(s, '\n', len - i);
		size_t ln = nl ? (size_t)(nl - s) : len - i, k = 0;
		i += ln + (nl != NULL);
		line++;
		if (ln && s[ln - 1] == '\r')
			ln--;
		if (memchr(s, '\0', ln))
			rc = fail(err, n, file, line, "a NUL byte");
		else if (split(s, ln, w, WORDS_MAX, &k))
			rc = fail(err, n, file, line, "more than %d words",
			          WORDS_MAX);
		else if (k)
			rc = parse_line(r, w, k, file, line, err, n);
	}
	free(w);
	if (rc) {
		rules_free(r);
		return NULL;
	}
	return r;
}

struct rules *rules_load(const char *file, char *err, size_t n)
{
	FILE *f = fopen(file, "rb");
	if (!f) {
		snprintf(err, n, "%s: %s", file, strerror(errno));
		return NULL;
	}
	char *buf = malloc(RULES_FILE_MAX + 1);
	size_t len = buf ? fread(buf, 1, RULES_FILE_MAX + 1, f) : 0;
	int rerr = ferror(f);
	fclose(f);
	struct rules *r = NULL;
	if (!buf)
		snprintf(err, n, "%s: out of memory", file);
	else if (rerr)
		snprintf(err, n, "%s: cannot read it", file);
	else if (len > RULES_FILE_MAX)
		snprintf(err, n, "%s: larger than 1 MiB", file);
	else
		r = rules_parse(buf, len, file, err, n);
	free(buf);
	return r;
}

static int matches(const struct who *w, const char *name, size_t nlen,
                   int registered)
{
	if (w->any || (w->registered && registered))
		return 1;
	for (size_t i = 0; i < w->n; i++)
		if (strlen(w->names[i]) == nlen &&
		    memcmp(w->names[i], name, nlen) == 0)
			return 1;
	return 0;
}

int rules_allow(const struct rules *r, const char *room, size_t rlen,
                const char *name, size_t nlen, int registered, int act)
{
	const struct section *sec = find(r, room, rlen);
	if (!sec)
		sec = find(r, "*", 1);
	if (!sec)
		return act != RULES_KICK;
	if (matches(&sec->op, name, nlen, registered))
		return 1;
	switch (act) {
	case RULES_JOIN:
		return !sec->join.set ||
		       matches(&sec->join, name, nlen, registered);
	case RULES_SPEAK:
		return !sec->speak.set ||
		       matches(&sec->speak, name, nlen, registered);
	case RULES_TOPIC:
		return !sec->topic_ops;
	default:
		return 0;
	}
}

struct rules_live {
	pthread_mutex_t mu; /* guards cur */
	struct rules *cur;
	char *file;
};

struct rules_live *rules_live_new(const char *file, char *err, size_t n)
{
	struct rules_live *lv = calloc(1, sizeof *lv);
	if (!lv || !(lv->file = strdup(file))) {
		free(lv);
		snprintf(err, n, "%s: out of memory", file);
		return NULL;
	}
	lv->cur = rules_load(file, err, n);
	if (!lv->cur) {
		free(lv->file);
		free(lv);
		return NULL;
	}
	pthread_mutex_init(&lv->mu, NULL);
	return lv;
}

int rules_live_reload(struct rules_live *lv, char *err, size_t n)
{
	struct rules *r = rules_load(lv->file, err, n);
	if (!r)
		return -1;
	pthread_mutex_lock(&lv->mu);
	struct rules *old = lv->cur;
	lv->cur = r;
	pthread_mutex_unlock(&lv->mu);
	rules_free(old);
	return 0;
}

int rules_live_allow(struct rules_live *lv, const char *room, size_t rlen,
                     const char *name, size_t nlen, int registered, int act)
{
	pthread_mutex_lock(&lv->mu);
	int ok = rules_allow(lv->cur, room, rlen, name, nlen, registered, act);
	pthread_mutex_unlock(&lv->mu);
	return ok;
}

void rules_live_free(struct rules_live *lv)
{
	if (!lv)
		return;
	rules_free(lv->cur);
	pthread_mutex_destroy(&lv->mu);
	free(lv->file);
	free(lv);
}

int rules_live_verdict(struct rules_live *lv, tcpchat_server_event *ev,
                       int registered)
{
	static char why[160]; /* read by the library once the handler returns */
	tcpchat_str room = ev->room;
	int act = RULES_KICK;
	if (ev->type == TCPCHAT_SEV_MESSAGE) {
		if (!ev->msg->room.len || ev->msg->target.len)
			return TCPCHAT_ACCEPT; /* private: not moderated */
		room = ev->msg->room;
		act = RULES_SPEAK;
	} else if (ev->type == TCPCHAT_SEV_ROOM_JOIN) {
		act = RULES_JOIN;
	} else if (ev->type == TCPCHAT_SEV_TOPIC) {
		act = RULES_TOPIC;
	}
	if (lv ? rules_live_allow(lv, room.ptr, room.len, ev->name.ptr,
	                          ev->name.len, registered, act)
	       : act != RULES_KICK) {
		ev->allow = 1;
		return TCPCHAT_ACCEPT;
	}
	int n = (int)room.len;
	if (act == RULES_JOIN)
		snprintf(why, sizeof why, "you may not join %.*s", n, room.ptr);
	else if (act == RULES_SPEAK)
		snprintf(why, sizeof why,
		         "%.*s is moderated: you may not speak there", n,
		         room.ptr);
	else if (act == RULES_TOPIC)
		snprintf(why, sizeof why,
		         "only operators set the topic of %.*s", n, room.ptr);
	else
		snprintf(why, sizeof why, "not an operator of %.*s", n,
		         room.ptr);
	ev->refuse_reason = why;
	return TCPCHAT_REFUSE;
}
