/* libtcpchat - for people at a terminal (a codec with TCPCHAT_CODEC_GREET,
 * such as line): a greeting as soon as they connect, so that they know
 * the server is there and what to type, and answers that explain, for
 * "/help" and for the commands the line codec does not know. */
#include <stdlib.h>
#include <string.h>

#include "codec_line.h"
#include "server_int.h"

/* The codec writes it as "=== " and this text; it must start with a word
 * that ends in ':' (see tcpchat_codec_line()).  The application may set
 * another (tcpchat_server_set_greeting). */
#define GREETING "tcpchat: type your name (1-32 bytes, no spaces)"
#define ANSWER_MAX 160

TCPCHAT_API int tcpchat_server_set_greeting(tcpchat_server *srv,
                                            const char *text)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	size_t n = text ? strlen(text) : 0;
	if (text && (n > TCPCHAT_GREETING_MAX || !util__chat_text_ok(text, n) ||
	             !line_notice_word(text, n)))
		return TCPCHAT_EINVAL;
	char *copy = NULL;
	if (text) {
		copy = malloc(n + 1);
		if (!copy)
			return TCPCHAT_ENOMEM;
		memcpy(copy, text, n + 1);
	}
	free(srv->greeting);
	srv->greeting = copy;
	/* each listener encodes the new one when it next greets */
	for (int i = 0; i < srv->nlisteners; i++) {
		struct listener *l = srv->listeners[i];
		frame__unref(l->greet);
		l->greet = NULL;
		l->greet_bad = 0;
	}
	return 0;
}

/* The greeting frame of a listener, encoded once.  NULL when its codec
 * cannot write it, or memory ran out. */
static struct frame *greeting(tcpchat_server *srv, struct listener *l)
{
	if (l->greet || l->greet_bad)
		return l->greet;
	tcpchat_msg g = {.type = TCPCHAT_MSG_TEXT};
	g.body.ptr = srv->greeting ? srv->greeting : GREETING;
	g.body.len = strlen(g.body.ptr);
	srv->sh.enc.len = 0;
	int rc = l->codec->encode(l->codec->codec_data, &g,
	                          TCPCHAT_FROM_SERVER | TCPCHAT_HANDSHAKE,
	                          &srv->sh.enc);
	if (rc == TCPCHAT_EINVAL) {
		l->greet_bad = 1;
		srv__log(srv, TCPCHAT_LOG_WARN,
		         "codec %s cannot write the greeting: none is sent",
		         l->codec->name);
	} else if (rc == 0) {
		l->greet = frame__new(srv->sh.enc.data, srv->sh.enc.len);
	}
	return l->greet;
}

void srv__greet(tcpchat_server *srv, struct listener *l, struct sconn *sc)
{
	if (!(l->codec->flags & TCPCHAT_CODEC_GREET))
		return;
	struct frame *f = greeting(srv, l);
	if (f && conn__push(&sc->c, &srv->sh, f, UINT32_MAX, SIZE_MAX) == 0) {
		srv->st.out++;
		srv__want_flush(srv, sc);
	}
}

int srv__people_answer(tcpchat_server *srv, struct sconn *sc,
                       const tcpchat_msg *m)
{
	if (m->type != TCPCHAT_MSG_UNKNOWN ||
	    sc->c.codec != tcpchat_codec_line())
		return 0;
	char text[ANSWER_MAX];
	int err = line__answer(m->body.ptr, m->body.len, text, sizeof text);
	if (err) {
		srv__send_error(srv, sc, err, text, 0);
		return 1;
	}
	const char *line;
	for (size_t i = 0; (line = line__help_line(i)) != NULL; i++) {
		tcpchat_msg t = {.type = TCPCHAT_MSG_TEXT};
		t.timestamp = srv->wall_ms;
		t.body.ptr = line;
		t.body.len = strlen(line);
		srv__send_one(srv, sc, &t);
		if (sc->state == S_DEAD || sc->doomed)
			break;
	}
	return 1;
}
