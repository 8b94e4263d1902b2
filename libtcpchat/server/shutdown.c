/* libtcpchat - graceful shutdown: stop accepting, tell everyone, flush
 * for a bounded time, close. */
#include "server_int.h"

void srv__on_stop_timer(struct loop_timer *t)
{
	TC_UNUSED(t); /* finish_shutdown() sees the deadline has passed */
}

void srv__begin_shutdown(tcpchat_server *srv)
{
	srv->stopping = 1;
	/* What was accepted is committed, and acknowledged, first. */
	srv__durable_drain(srv);
	loop__timer_start(&srv->loop, &srv->stop_timer,
	                  srv->abort_stop ? 0 : srv->shutdown_timeout, 0);
	srv__close_listeners(srv);
	srv__log(srv, TCPCHAT_LOG_INFO, "shutting down (%llu users)",
	         (unsigned long long)srv->nusers);
	/* Connections not joined yet go at once. */
	while (!dl_empty(&srv->pending)) {
		struct sconn *sc =
		        CONTAINER(srv->pending.next, struct sconn, member);
		srv__fail(sc, TCPCHAT_REASON_SHUTDOWN, TCPCHAT_ESHUTDOWN,
		          "server shutting down");
	}
	struct dlist *it;
	for (it = srv->members.next; it != &srv->members; it = it->next) {
		struct sconn *sc = CONTAINER(it, struct sconn, member);
		srv__send_error(srv, sc, TCPCHAT_ESHUTDOWN,
		                "server shutting down", 1);
		sc->state = S_DRAINING;
		loop__timer_stop(&srv->loop, &sc->timer);
	}
}

/* Closes the remaining users once their queues are empty or time is up
 * (they are freed, and counted out, by the next flush). */
void srv__finish_shutdown(tcpchat_server *srv)
{
	int late = !loop__timer_armed(&srv->stop_timer);
	struct dlist *it = srv->members.next;
	while (it != &srv->members) {
		struct sconn *sc = CONTAINER(it, struct sconn, member);
		it = it->next;
		if (late || conn__drained(&sc->c))
			srv__close(sc, TCPCHAT_REASON_SHUTDOWN,
			           TCPCHAT_ESHUTDOWN, "server shutting down");
	}
}
