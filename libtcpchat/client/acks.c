/* libtcpchat - texts with a ref: sending them, the texts the server has
 * not acknowledged yet (kept in the order sent, to be sent again on a
 * reconnect) and the ACK event that answers each exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

/* ---- sending (any thread) ------------------------------------------------ */

void cli__acks_make_ref(tcpchat_client *cli, char out[TCPCHAT_REF_MAX + 1])
{
	unsigned long long n = atomic_fetch_add(&cli->ref_count, 1) + 1;
	snprintf(out, TCPCHAT_REF_MAX + 1, "%s-%llu", cli->ref_prefix, n);
}

/* A ref the server takes: 1..TCPCHAT_REF_MAX bytes of UTF-8 without
 * control characters. */
static int ref_ok(const char *ref)
{
	size_t n = strlen(ref);
	if (n == 0 || n > TCPCHAT_REF_MAX || !util__text_ok(ref, n))
		return 0;
	return strchr(ref, '\t') == NULL;
}

int cli__post_text(tcpchat_client *cli, const char *room, const char *target,
                   const char *text, size_t len, const char *ref, char *ref_out,
                   int want_ack)
{
	int rc = cli__text_arg(cli, text, len);
	if (rc)
		return rc;
	if (ref && !ref_ok(ref))
		return TCPCHAT_EINVAL;
	struct ccmd meta;
	memset(&meta, 0, sizeof meta);
	meta.kind = CC_PLAIN;
	meta.v2 = room || target;
	if (room)
		snprintf(meta.room, sizeof meta.room, "%s", room);
	if (target)
		snprintf(meta.target, sizeof meta.target, "%s", target);
	if (ref) {
		snprintf(meta.ref, sizeof meta.ref, "%s", ref);
	} else if (want_ack || atomic_load(&cli->reconnect_pub)) {
		cli__acks_make_ref(cli, meta.ref);
		/* Without RECONNECT, a text sent without a ref has none. */
		meta.ref_auto = !want_ack;
	}
	tcpchat_msg m = {.type = TCPCHAT_MSG_TEXT};
	m.room = cli__str(room);
	m.target = cli__str(target);
	m.body.ptr = text;
	m.body.len = len;
	m.ref = cli__str(meta.ref[0] ? meta.ref : NULL);
	rc = cli__post_cmd(cli, &m, &meta);
	if (rc == 0 && ref_out)
		memcpy(ref_out, meta.ref, strlen(meta.ref) + 1);
	return rc;
}

TCPCHAT_API int tcpchat_client_send_ref(tcpchat_client *cli, const char *room,
                                        const char *target, const char *text,
                                        size_t len, const char *ref,
                                        char *ref_out)
{
	if (!cli || (room && target))
		return TCPCHAT_EINVAL;
	int rc = room ? cli__room_arg(room) : 0;
	if (rc)
		return rc;
	if (target && tcpchat_name_check(target, strlen(target)))
		return TCPCHAT_EBADNAME;
	return cli__post_text(cli, room, target, text, len, ref, ref_out, 1);
}

/* ---- the texts not yet acknowledged (loop thread) ------------------------ */

void cli__acks_sent(tcpchat_client *cli, const struct ccmd *c)
{
	/* A ref of the library's own, to a server that does not answer
	 * refs: nothing will come back. */
	if (c->ref_auto && !(atomic_load(&cli->srv_caps) & TCPCHAT_CAP_HISTORY))
		return;
	struct cunacked *u = calloc(1, sizeof *u);
	if (!u) {
		cli__log(cli, TCPCHAT_LOG_ERROR,
		         "out of memory: the text %s will not be sent again",
		         c->ref);
		return;
	}
	frame__ref(c->f);
	u->f = c->f;
	memcpy(u->ref, c->ref, sizeof u->ref);
	memcpy(u->room, c->room, sizeof u->room);
	memcpy(u->target, c->target, sizeof u->target);
	*cli->unacked_tail = u;
	cli->unacked_tail = &u->next;
	cli->unacked_n++;
	cli->unacked_bytes += c->f->len;
}

/* Unlinks and returns the oldest text with ref[0..n), or NULL. */
static struct cunacked *take(tcpchat_client *cli, const char *ref, size_t n)
{
	for (struct cunacked **p = &cli->unacked; *p; p = &(*p)->next) {
		struct cunacked *u = *p;
		if (strlen(u->ref) != n || memcmp(u->ref, ref, n) != 0)
			continue;
		*p = u->next;
		if (cli->unacked_tail == &u->next)
			cli->unacked_tail = p;
		cli->unacked_n--;
		cli->unacked_bytes -= u->f->len;
		return u;
	}
	return NULL;
}

static void emit_ack(tcpchat_client *cli, const tcpchat_msg *m, int err)
{
	tcpchat_client_event ev = {.type = TCPCHAT_CEV_ACK};
	ev.msg = m;
	ev.error = err;
	cli__emit(cli, &ev);
}

/* The ACK event of a text that the library refuses itself. */
static void refuse(tcpchat_client *cli, const char *ref, const char *room,
                   const char *target, int err, const char *why)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_ERROR};
	uint32_t wire = tcpchat_error_to_wire(err);
	m.code = tcpchat_error_from_wire(wire) == err ? wire : 0;
	m.ref = cli__str(ref);
	m.room = cli__str(room[0] ? room : NULL);
	m.target = cli__str(target[0] ? target : NULL);
	m.body = cli__str(why);
	m.timestamp = util__wall_ms();
	emit_ack(cli, &m, err);
}

void cli__acks_refuse_cmd(tcpchat_client *cli, const struct ccmd *c, int err,
                          const char *why)
{
	refuse(cli, c->ref, c->room, c->target, err, why);
}

int cli__acks_on_msg(tcpchat_client *cli, const tcpchat_msg *m)
{
	if (m->type != TCPCHAT_MSG_ACK &&
	    (m->type != TCPCHAT_MSG_ERROR || !m->ref.len))
		return 0;
	struct cunacked *u = take(cli, m->ref.ptr, m->ref.len);
	if (!u) {
		if (m->type == TCPCHAT_MSG_ERROR)
			return 0; /* not ours to answer: a MESSAGE */
		cli__log(cli, TCPCHAT_LOG_DEBUG,
		         "an ACK for a ref not waiting for one: %.*s",
		         (int)m->ref.len, m->ref.ptr);
		return 1;
	}
	frame__unref(u->f);
	free(u);
	emit_ack(cli, m,
	         m->type == TCPCHAT_MSG_ACK ? 0
	                                    : tcpchat_error_from_wire(m->code));
	return 1;
}

void cli__acks_resend(tcpchat_client *cli)
{
	for (struct cunacked *u = cli->unacked; u; u = u->next)
		if (cli__push_frame(cli, u->f) != 0)
			cli__log(cli, TCPCHAT_LOG_ERROR,
			         "could not queue the text %s again", u->ref);
}

void cli__acks_refuse_all(tcpchat_client *cli, int err, const char *why)
{
	while (cli->unacked) {
		struct cunacked *u = cli->unacked;
		cli->unacked = u->next;
		cli->unacked_n--;
		cli->unacked_bytes -= u->f->len;
		if (!cli->unacked)
			cli->unacked_tail = &cli->unacked;
		refuse(cli, u->ref, u->room, u->target, err, why);
		frame__unref(u->f);
		free(u);
	}
}

void cli__acks_free(tcpchat_client *cli)
{
	cli->handler = NULL;
	cli__acks_refuse_all(cli, TCPCHAT_ECLOSED, "destroyed");
}
