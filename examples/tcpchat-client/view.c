/* tcpchat-client - what the user sees: each event as one line.
 * SPDX-License-Identifier: MIT
 *
 * The prefixes are those of the line codec (tcpchat-protocol(7)), so a
 * chat looks the same here and in nc: "NAME: TEXT", "[#ROOM] NAME: TEXT",
 * "*NAME* TEXT" (private), "-> *NAME* TEXT" (our private message),
 * "*** TEXT" (a notice), "--> " joins, "<-- " leaves, "=== " answers and
 * status, "-!- " errors.  With a terminal, each line starts with the time
 * and names are coloured. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "term.h"

#define S(v) (int)(v).len, (v).ptr /* a tcpchat_str for "%.*s" */

/* Lines the loop thread made, for the main thread to print (terminal). */
struct qline {
	struct qline *next;
	size_t n;
	char s[];
};
static struct qline *qhead, **qtail = &qhead;

static const char *const palette[] = {"31", "32", "33", "34", "35", "36"};

static const char *color_of(const char *s, size_t n)
{
	unsigned h = 5381;
	for (size_t i = 0; i < n; i++)
		h = h * 33 + (unsigned char)s[i];
	return palette[h % (sizeof palette / sizeof palette[0])];
}

/* Hands a finished line to the screen. */
static void emit(const char *s, size_t n)
{
	if (!G.tty) {
		pthread_mutex_lock(&G.out);
		fwrite(s, 1, n, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		pthread_mutex_unlock(&G.out);
		return;
	}
	struct qline *q = malloc(sizeof *q + n);
	if (!q)
		return;
	q->next = NULL;
	q->n = n;
	memcpy(q->s, s, n);
	pthread_mutex_lock(&G.out);
	*qtail = q;
	qtail = &q->next;
	pthread_mutex_unlock(&G.out);
	char b = 0; /* not a signal number */
	if (write(G.wake[1], &b, 1) < 0) {
		/* full: the main thread is already due to wake */
	}
}

/* Takes the queued lines. */
static struct qline *take_queue(void)
{
	pthread_mutex_lock(&G.out);
	struct qline *q = qhead;
	qhead = NULL;
	qtail = &qhead;
	pthread_mutex_unlock(&G.out);
	return q;
}

void view_flush(void)
{
	for (struct qline *q = take_queue(), *next; q; q = next) {
		next = q->next;
		term_print(q->s, q->n);
		free(q);
	}
}

void view_discard(void)
{
	for (struct qline *q = take_queue(), *next; q; q = next) {
		next = q->next;
		free(q);
	}
}

/* Formats a line: "HH:MM " with a terminal, then "[HH:MM] " with stamp
 * (milliseconds since the Unix epoch; -1: none), then "[#room] " unless
 * room is empty, then "WHO: " when who is set (coloured on a terminal), then
 * the text, of any length. */
static void vline(int64_t stamp, tcpchat_str room, tcpchat_str who,
                  const char *fmt, va_list ap)
        __attribute__((format(printf, 4, 0)));
static void vline(int64_t stamp, tcpchat_str room, tcpchat_str who,
                  const char *fmt, va_list ap)
{
	char head[TCPCHAT_ROOM_MAX + TCPCHAT_NAME_MAX + 64];
	size_t o = 0;
	struct tm tm;
	if (G.tty) {
		time_t t = time(NULL);
		localtime_r(&t, &tm);
		o += strftime(head, sizeof head, "%H:%M ", &tm);
	}
	if (stamp >= 0) {
		time_t t = (time_t)(stamp / 1000);
		localtime_r(&t, &tm);
		o += strftime(head + o, sizeof head - o, "[%H:%M] ", &tm);
	}
	if (room.len)
		o += (size_t)snprintf(head + o, sizeof head - o, "[%.*s] ",
		                      S(room));
	if (who.len && G.color)
		o += (size_t)snprintf(head + o, sizeof head - o,
		                      "\033[1;%sm%.*s\033[0m: ",
		                      color_of(who.ptr, who.len), S(who));
	else if (who.len)
		o += (size_t)snprintf(head + o, sizeof head - o,
		                      "%.*s: ", S(who));
	va_list ap2;
	va_copy(ap2, ap);
	int w = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (w < 0 || o >= sizeof head)
		return;
	char *buf = malloc(o + (size_t)w + 1);
	if (!buf)
		return;
	memcpy(buf, head, o);
	vsnprintf(buf + o, (size_t)w + 1, fmt, ap);
	emit(buf, o + (size_t)w);
	free(buf);
}

static void line_in(int64_t stamp, tcpchat_str room, tcpchat_str who,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void line_in(int64_t stamp, tcpchat_str room, tcpchat_str who,
                    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline(stamp, room, who, fmt, ap);
	va_end(ap);
}

static const tcpchat_str none = {NULL, 0};

static void line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void line(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline(-1, none, none, fmt, ap);
	va_end(ap);
}

static void vstatus(const char *pre, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));
static void vstatus(const char *pre, const char *fmt, va_list ap)
{
	char text[1024];
	vsnprintf(text, sizeof text, fmt, ap);
	line("%s%s", pre, text);
}

void view_status(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vstatus("=== ", fmt, ap);
	va_end(ap);
}

void view_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vstatus("-!- ", fmt, ap);
	va_end(ap);
}

/* room as shown: empty for the default room (or none). */
static tcpchat_str shown_room(tcpchat_str room, uint32_t flags)
{
	if (room.len == 0 || (flags & TCPCHAT_MSGF_DEFAULT_ROOM))
		return none;
	pthread_mutex_lock(&G.out);
	int dflt = room.len == strlen(G.default_room) &&
	           !memcmp(room.ptr, G.default_room, room.len);
	pthread_mutex_unlock(&G.out);
	return dflt ? none : room;
}

void view_own(const char *room, const char *text, size_t n)
{
	char cur[TCPCHAT_ROOM_MAX + 1] = "";
	if (!room) {
		tcpchat_client_current_room(G.cli, cur, sizeof cur);
		room = cur;
	}
	tcpchat_str r = {room, strlen(room)};
	tcpchat_str me = {G.name, strlen(G.name)};
	line_in(-1, shown_room(r, 0), me, "%.*s", (int)n, text);
}

static void show_text(tcpchat_client *cli, const tcpchat_msg *m)
{
	if (m->target.len && (m->flags & TCPCHAT_MSGF_ECHO)) {
		line("-> *%.*s* %.*s", S(m->target), S(m->body));
		return; /* our own: not counted */
	}
	int64_t stamp = -1;
	if (m->flags & TCPCHAT_MSGF_HISTORY)
		stamp = m->timestamp > 0 ? m->timestamp : 0;
	else if (m->room.len && m->seq) {
		uint64_t missed = seq_text(m->room, m->epoch, m->seq);
		if (missed)
			line("-!- %.*s: %llu texts missed", S(m->room),
			     (unsigned long long)missed);
	}
	if (m->target.len)
		line_in(stamp, none, none, "*%.*s* %.*s", S(m->sender),
		        S(m->body));
	else if (m->sender.len)
		line_in(stamp, shown_room(m->room, m->flags), m->sender, "%.*s",
		        S(m->body));
	else
		line_in(stamp, shown_room(m->room, m->flags), none, "*** %.*s",
		        S(m->body));
	long long n = atomic_fetch_add(&G.received, 1) + 1;
	if (G.count && n >= G.count)
		tcpchat_client_stop(cli);
}

/* " #room" for a room other than the default one, else "". */
static void room_suffix(char *buf, size_t size, const tcpchat_msg *m)
{
	tcpchat_str r = shown_room(m->room, m->flags);
	buf[0] = '\0';
	if (r.len)
		snprintf(buf, size, " %.*s", S(r));
}

static int is_me(tcpchat_str who)
{
	return who.len == strlen(G.name) && !memcmp(who.ptr, G.name, who.len);
}

/* Keeps the names and rooms that Tab completes up to date. */
static void note_words(const tcpchat_msg *m)
{
	switch (m->type) {
	case TCPCHAT_MSG_JOIN:
		words_add(WORD_NAME, m->sender.ptr, m->sender.len);
		words_add(WORD_ROOM, m->room.ptr, m->room.len);
		break;
	case TCPCHAT_MSG_LEAVE:
		if (!m->room.len && !is_me(m->sender))
			words_del(WORD_NAME, m->sender.ptr, m->sender.len);
		break;
	case TCPCHAT_MSG_WHO:
		words_add_list(m->body.ptr, m->body.len);
		break;
	case TCPCHAT_MSG_ROOMS:
	case TCPCHAT_MSG_TOPIC:
		words_add(WORD_ROOM, m->room.ptr, m->room.len);
		break;
	default:
		break;
	}
}

/* Asks for the latest --history texts of room, when the server keeps
 * any. */
static void ask_history(tcpchat_client *cli, tcpchat_str room)
{
	char r[TCPCHAT_ROOM_MAX + 1];
	if (!G.history || !room.len || room.len >= sizeof r)
		return;
	memcpy(r, room.ptr, room.len);
	r[room.len] = '\0';
	int rc = tcpchat_client_history(cli, r, TCPCHAT_HISTORY_LATEST, 0,
	                                (uint32_t)G.history);
	if (rc && rc != TCPCHAT_ENOTSUP)
		view_error("history of %s: %s", r, tcpchat_strerror(rc));
}

/* Our join of room is confirmed. */
static void own_join(tcpchat_client *cli, tcpchat_str room)
{
	seq_mark(cli, room);
	if (seq_take_history(room))
		ask_history(cli, room);
}

/* The end of a history answer. */
static void history_end(const tcpchat_msg *m)
{
	char gap[64] = "";
	if (m->flags & TCPCHAT_MSGF_GAP)
		snprintf(gap, sizeof gap, ", before %llu gone",
		         (unsigned long long)m->oldest);
	if (m->code)
		line("-!- %.*s: %u texts (%llu-%llu)%s", S(m->room), m->code,
		     (unsigned long long)m->first, (unsigned long long)m->last,
		     gap);
	else
		line("-!- %.*s: 0 texts%s", S(m->room), gap);
}

static void show_msg(tcpchat_client *cli, const tcpchat_msg *m)
{
	char in[TCPCHAT_ROOM_MAX + 2];
	room_suffix(in, sizeof in, m);
	note_words(m);
	switch (m->type) {
	case TCPCHAT_MSG_TEXT:
		show_text(cli, m);
		break;
	case TCPCHAT_MSG_JOIN:
		if (is_me(m->sender) && m->room.len)
			own_join(cli, m->room);
		if (!G.quiet)
			line("--> %.*s joined%s", S(m->sender), in);
		break;
	case TCPCHAT_MSG_LEAVE:
		if (is_me(m->sender) && m->room.len)
			seq_forget(m->room);
		if (!G.quiet)
			line("<-- %.*s left%s (%s%s%.*s)", S(m->sender), in,
			     tcpchat_reason_name(m->code),
			     m->body.len ? ": " : "", S(m->body));
		break;
	case TCPCHAT_MSG_WHO:
		if (!m->room.len && atomic_load(&G.silent_who) > 0) {
			atomic_fetch_sub(&G.silent_who, 1);
			break; /* asked at login, for completion */
		}
		if (m->room.len)
			line("=== %u in %.*s%s%.*s", m->code, S(m->room),
			     m->body.len ? ": " : "", S(m->body));
		else
			line("=== %u online%s%.*s", m->code,
			     m->body.len ? ": " : "", S(m->body));
		break;
	case TCPCHAT_MSG_TOPIC:
		if (!m->body.len)
			line("=== topic %.*s cleared%s%.*s", S(m->room),
			     m->sender.len ? " by " : "", S(m->sender));
		else
			line("=== topic %.*s%s%.*s: %.*s", S(m->room),
			     m->sender.len ? " by " : "", S(m->sender),
			     S(m->body));
		break;
	case TCPCHAT_MSG_ROOMS:
		if (!m->room.len)
			line("=== %u rooms", m->code);
		else
			line("=== %.*s %u%s%.*s", S(m->room), m->code,
			     m->body.len ? ": " : "", S(m->body));
		break;
	case TCPCHAT_MSG_HISTORY:
		history_end(m);
		break;
	case TCPCHAT_MSG_KICK: /* what we asked was done */
		line("=== %s %.*s from %.*s%s%.*s",
		     m->flags & TCPCHAT_MSGF_UNBAN ? "unbanned"
		     : m->flags & TCPCHAT_MSGF_BAN ? "banned"
		                                   : "kicked",
		     S(m->target), S(m->room), m->body.len ? ": " : "",
		     S(m->body));
		break;
	case TCPCHAT_MSG_ERROR:
		if (!(m->flags & TCPCHAT_MSGF_CLOSING))
			line("-!- %.*s", S(m->body));
		break; /* a closing one: DISCONNECTED says it */
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
	atomic_store(&G.ever_connected, 1);
	tcpchat_str dflt = {info.default_room, strlen(info.default_room)};
	seq_mark(cli, dflt);
	if (info.caps & TCPCHAT_CAP_HISTORY)
		ask_history(cli, dflt);
	if (info.protocol < 2 && (G.nrooms || G.to)) {
		fprintf(stderr,
		        PROG ": the server has no rooms nor private "
		             "messages (protocol %u)\n",
		        info.protocol);
		atomic_store(&G.result, 1);
		tcpchat_client_stop(cli);
		return;
	}
	if (G.tty) {
		/* names for Tab, without showing the answer */
		atomic_fetch_add(&G.silent_who, 1);
		if (tcpchat_client_who(cli) != 0)
			atomic_fetch_sub(&G.silent_who, 1);
		words_add(WORD_ROOM, info.default_room,
		          strlen(info.default_room));
	}
	if (G.quiet)
		return;
	if (G.tty)
		view_status("connected to %s as %.*s (type /help)", G.server,
		            S(name));
	else
		view_status("connected to %s as %.*s", G.server, S(name));
}

static void disconnected(const tcpchat_client_event *ev)
{
	if (ev->reason != TCPCHAT_REASON_QUIT) {
		const char *text = ev->text ? ev->text : "";
		char why[sizeof G.bye];
		if (!atomic_load(&G.ever_connected))
			snprintf(why, sizeof why, "cannot connect to %s: %s%s",
			         G.server, text,
			         strstr(text, " codec")
			                 ? "; --codec chooses binary, line or "
			                   "json"
			                 : "");
		else
			snprintf(why, sizeof why, "disconnected (%s): %s",
			         tcpchat_reason_name((uint32_t)ev->reason),
			         text);
		/* The main thread prints it once the terminal is restored. */
		pthread_mutex_lock(&G.out);
		memcpy(G.bye, why, sizeof G.bye);
		pthread_mutex_unlock(&G.out);
		atomic_store(&G.result, 1);
	}
	atomic_store(&G.connected, 0);
	atomic_store(&G.done, 1);
	char b = 0;
	if (write(G.wake[1], &b, 1) < 0) {
		/* the main thread is already due to wake */
	}
}

/* The answer to one of our texts: the room moves past it; a refusal is
 * shown as the server's error was before texts had refs. */
static void acked(const tcpchat_client_event *ev)
{
	const tcpchat_msg *m = ev->msg;
	if (!m)
		return;
	if (ev->error == 0 && m->room.len)
		seq_set(m->room, m->epoch, m->seq);
	else if (ev->error < 0 && m->body.len)
		line("-!- %.*s", S(m->body));
	else if (ev->error < 0)
		view_error("not sent: %s", tcpchat_strerror(ev->error));
}

/* A room resumed after a reconnect: where it stands now, and whether
 * texts were lost meanwhile. */
static void resumed(const tcpchat_client_event *ev)
{
	const tcpchat_msg *m = ev->msg;
	if (!m)
		return;
	seq_set(ev->room, m->epoch, m->seq);
	if (m->flags & TCPCHAT_MSGF_GAP)
		view_error("%.*s: texts before seq %llu are gone", S(ev->room),
		           (unsigned long long)m->oldest);
}

int view_on_event(tcpchat_client *cli, const tcpchat_client_event *ev, void *ud)
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
		disconnected(ev);
		break;
	case TCPCHAT_CEV_ACK:
		acked(ev);
		break;
	case TCPCHAT_CEV_RECONNECTING:
		atomic_store(&G.connected, 0);
		/* the first attempt follows the loss, the others a failed
		 * attempt */
		view_error("%s (%s); reconnecting in %.1f s (attempt %u)",
		           ev->attempt > 1 ? "cannot reconnect"
		                           : "connection lost",
		           ev->text ? ev->text : tcpchat_strerror(ev->error),
		           ev->delay_ms / 1000.0, ev->attempt);
		break;
	case TCPCHAT_CEV_RECONNECTED:
		atomic_store(&G.connected, 1);
		view_error("reconnected");
		break;
	case TCPCHAT_CEV_RESUMED:
		resumed(ev);
		break;
	case TCPCHAT_CEV_GAVE_UP:
		view_error("gave up reconnecting: %s",
		           ev->text ? ev->text : tcpchat_strerror(ev->error));
		break;
	default:
		break;
	}
	return 0;
}
