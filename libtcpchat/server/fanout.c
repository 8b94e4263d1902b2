/* libtcpchat - fan-out: a message is encoded once per codec in use and the
 * frame is shared by every recipient's queue; queues are flushed once, at
 * the end of the loop iteration, with one batched write each; the
 * slow-consumer policy decides what a full queue means. */
#include <errno.h>
#include <string.h>

#include "server_int.h"

struct frame *srv__encode(tcpchat_server *srv, const tcpchat_codec *codec,
                          const tcpchat_msg *m)
{
	srv->sh.enc.len = 0;
	if (codec->encode(codec->codec_data, m, TCPCHAT_FROM_SERVER,
	                  &srv->sh.enc) != 0)
		return NULL;
	return frame__new(srv->sh.enc.data, srv->sh.enc.len);
}

void srv__want_flush(tcpchat_server *srv, struct sconn *sc)
{
	if (!sc->in_flush) {
		sc->in_flush = 1;
		sc->fnext = srv->flush_head;
		srv->flush_head = sc;
	}
}

/* Closes sc because of a failed delivery (err: TCPCHAT_ESLOW or an
 * allocation failure).  Inside a fan-out the close waits until the
 * outermost one is over: closing fans out a LEAVE, which may close more
 * connections, and those must not be unlinked from the member list while
 * a fan-out is walking it. */
static void close_later(tcpchat_server *srv, struct sconn *sc, int err)
{
	if (sc->doomed)
		return;
	if (!srv->fanning) {
		srv__close(sc,
		           err == TCPCHAT_ESLOW ? TCPCHAT_REASON_SLOW
		                                : TCPCHAT_REASON_ERROR,
		           err,
		           err == TCPCHAT_ESLOW ? "too slow to keep up"
		                                : "out of memory");
		return;
	}
	sc->doomed = 1;
	sc->close_err = err;
	sc->cnext = srv->close_head;
	srv->close_head = sc;
}

/* Carries out the closes put off by close_later(). */
static void close_doomed(tcpchat_server *srv)
{
	if (srv->reaping)
		return; /* the loop below picks up new ones */
	srv->reaping = 1;
	while (srv->close_head) {
		struct sconn *sc = srv->close_head;
		srv->close_head = sc->cnext;
		sc->cnext = NULL;
		sc->doomed = 0;
		close_later(srv, sc, sc->close_err);
	}
	srv->reaping = 0;
}

static int push(tcpchat_server *srv, struct sconn *sc, struct frame *f)
{
	return conn__push(&sc->c, &srv->sh, f, (uint32_t)srv->queue_frames,
	                  (size_t)srv->queue_bytes);
}

void srv__deliver(tcpchat_server *srv, struct sconn *sc, struct frame *f)
{
	if (sc->doomed)
		return; /* closing: nothing more is queued */
	int rc = push(srv, sc, f);
	if (rc == TCPCHAT_EQUEUEFULL && !(sc->c.w.events & LOOP_WRITE)) {
		/* Output is flushed at the end of the iteration, so a fast
		 * reader's queue can fill within one burst of input.  It is
		 * only full if the socket takes nothing more either. */
		size_t bytes, frames;
		int frc = conn__flush(&sc->c, &srv->sh, &bytes, &frames);
		srv->st.bytes_out += bytes;
		if (frc < 0) {
			srv__want_flush(srv, sc); /* flush_all() closes it */
			return;
		}
		if (frc == 1)
			srv__set_events(srv, sc, LOOP_READ | LOOP_WRITE);
		rc = push(srv, sc, f);
	}
	if (rc == TCPCHAT_EQUEUEFULL) {
		sc->dropped++;
		srv->st.dropped++;
		if (srv->policy == TCPCHAT_SLOW_DISCONNECT) {
			close_later(srv, sc, TCPCHAT_ESLOW);
			return;
		}
		srv__want_flush(srv, sc); /* reports the drop */
		if (srv->policy == TCPCHAT_SLOW_DROP_OLDEST &&
		    conn__drop_oldest(&sc->c))
			rc = push(srv, sc, f);
		if (rc == TCPCHAT_EQUEUEFULL)
			return;
	}
	if (rc) {
		close_later(srv, sc, rc);
		return;
	}
	srv->st.out++;
	srv__want_flush(srv, sc);
}

/* Sends one control message to one connection: no queue limit, so an
 * ERROR or a WELCOME is never lost to the slow-consumer policy. */
void srv__send_one(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m)
{
	struct frame *f = srv__encode(srv, sc->c.codec, m);
	int rc = f ? conn__push(&sc->c, &srv->sh, f, UINT32_MAX, SIZE_MAX)
	           : TCPCHAT_ENOMEM;
	frame__unref(f);
	if (rc == 0) {
		srv->st.out++;
		srv__want_flush(srv, sc);
		return;
	}
	srv__log(srv, TCPCHAT_LOG_ERROR, "conn %llu: cannot queue a %s: %s",
	         (unsigned long long)sc->id,
	         tcpchat_msg_type_name((int)m->type), tcpchat_strerror(rc));
	if (sc->state != S_DEAD)
		close_later(srv, sc, TCPCHAT_ENOMEM);
}

void srv__fanout(tcpchat_server *srv, const tcpchat_msg *m,
                 const struct sconn *except)
{
	struct frame *cache[MAX_CODECS] = {0};
	int bad[MAX_CODECS] = {0};
	struct dlist *it = srv->members.next;
	srv->fanning++; /* nobody leaves the list during the walk */
	while (it != &srv->members) {
		struct sconn *sc = CONTAINER(it, struct sconn, member);
		it = it->next;
		if (sc == except)
			continue;
		int slot = sc->codec_slot;
		if (!cache[slot] && !bad[slot]) {
			cache[slot] = srv__encode(srv, sc->c.codec, m);
			bad[slot] = cache[slot] == NULL;
			if (bad[slot])
				srv__log(srv, TCPCHAT_LOG_ERROR,
				         "codec %s cannot encode a %s message",
				         sc->c.codec->name,
				         tcpchat_msg_type_name((int)m->type));
		}
		if (cache[slot])
			srv__deliver(srv, sc, cache[slot]);
		else
			srv->st.dropped++; /* counted: nothing goes silently */
	}
	srv->fanning--;
	for (int i = 0; i < srv->ncodecs; i++)
		frame__unref(cache[i]);
	if (!srv->fanning)
		close_doomed(srv);
}

void srv__do_flush(tcpchat_server *srv, struct sconn *sc)
{
	size_t bytes, frames;
	int rc = conn__flush(&sc->c, &srv->sh, &bytes, &frames);
	srv->st.bytes_out += bytes;
	if (frames)
		srv__note_freed(srv, bytes); /* written frames go back */
	if (rc < 0) {
		if (sc->state != S_DEAD)
			srv__close(sc, TCPCHAT_REASON_ERROR, rc,
			           strerror(errno));
		return;
	}
	srv__set_events(srv, sc, LOOP_READ | (rc == 1 ? LOOP_WRITE : 0));
}

/* End of an iteration: flush every connection that got output, report
 * drops, free closed connections. */
void srv__flush_all(tcpchat_server *srv)
{
	while (srv->flush_head) {
		struct sconn *list = srv->flush_head;
		srv->flush_head = NULL;
		while (list) {
			struct sconn *sc = list;
			list = sc->fnext;
			sc->in_flush = 0;
			sc->fnext = NULL;
			if (sc->state == S_DEAD) {
				size_t b, f;
				if (sc->c.qcount) {
					conn__flush(&sc->c, &srv->sh, &b, &f);
					srv->st.bytes_out += b;
				}
				sc->fnext = srv->dead_head;
				srv->dead_head = sc;
				continue;
			}
			if (!(sc->c.w.events & LOOP_WRITE))
				srv__do_flush(srv, sc);
			if (sc->dropped != sc->dropped_told &&
			    sc->state != S_DEAD) {
				sc->dropped_told = sc->dropped;
				tcpchat_server_event ev;
				srv__conn_event(sc, &ev, TCPCHAT_SEV_DROP);
				ev.dropped = sc->dropped;
				srv__emit(srv, &ev);
			}
		}
	}
	while (srv->dead_head) {
		struct sconn *sc = srv->dead_head;
		srv->dead_head = sc->fnext;
		srv__free(srv, sc);
	}
}
