/* libtcpchat - reconnecting after a lost connection: which losses are
 * retried, the backoff (exponential, full jitter), and on success the
 * resume of every room and the texts sent again. */
#include <stdio.h>
#include <string.h>

#include "client_int.h"

int cli__reconnect_wanted(tcpchat_client *cli, int err)
{
	if (!cli->reconnect || cli->stop_seen || atomic_load(&cli->abort_req) ||
	    cli->state == C_CLOSING)
		return 0;
	/* a connection that was up, or an attempt of a reconnect */
	if (!cli->reconnecting && cli->state != C_CONNECTED)
		return 0;
	switch (err) {
	case 0:
	case TCPCHAT_EKICKED:
	case TCPCHAT_EBADNAME:
	case TCPCHAT_EREFUSED:
	case TCPCHAT_EVERSION:
	case TCPCHAT_ENOMEM:
		return 0;
	case TCPCHAT_ETLS:
		if (cli->tls_fatal) /* the same certificate fails again */
			return 0;
		break;
	default:
		break;
	}
	return !cli->reconnect_tries ||
	       cli->attempt < (uint64_t)cli->reconnect_tries;
}

static uint64_t next_random(tcpchat_client *cli)
{
	/* xorshift64* */
	uint64_t x = cli->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	cli->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* The delay before attempt (from 1): random in [0, min(max, min *
 * 2^(attempt - 1))]. */
static uint32_t backoff(tcpchat_client *cli, uint32_t attempt)
{
	uint64_t cap = (uint64_t)cli->reconnect_min;
	for (uint32_t i = 1; i < attempt && cap < (uint64_t)cli->reconnect_max;
	     i++)
		cap *= 2;
	if (cap > (uint64_t)cli->reconnect_max)
		cap = (uint64_t)cli->reconnect_max;
	return (uint32_t)(next_random(cli) % (cap + 1));
}

/* Remembers, as the connection is lost, the rooms to join again. */
static void save_rooms(tcpchat_client *cli)
{
	if (cli__list_copy(&cli->rejoin, &cli->joined) ||
	    cli__list_copy(&cli->rejoin_pending, &cli->pending))
		cli__log(cli, TCPCHAT_LOG_ERROR, "out of memory: room list");
	pthread_mutex_lock(&cli->room_mu);
	memcpy(cli->rejoin_current, cli->current_room,
	       sizeof cli->rejoin_current);
	pthread_mutex_unlock(&cli->room_mu);
	cli->had_history =
	        (atomic_load(&cli->srv_caps) & TCPCHAT_CAP_HISTORY) != 0;
	/* positions of rooms we are no longer in are of no use */
	for (size_t i = cli->pos.n; i-- > 0;) {
		const char *r = cli->pos.v[i].room;
		if (cli__list_find(&cli->rejoin, r, strlen(r)) < 0) {
			memmove(&cli->pos.v[i], &cli->pos.v[i + 1],
			        (cli->pos.n - i - 1) * sizeof *cli->pos.v);
			cli->pos.n--;
		}
	}
}

void cli__reconnect_lost(tcpchat_client *cli, int err, int reason,
                         const char *why)
{
	if (cli->state == C_CONNECTED)
		save_rooms(cli);
	cli__drop_connection(cli);
	loop__timer_stop(&cli->loop, &cli->timer);
	cli->reconnecting = 1;
	cli->attempt++;
	cli->state = C_WAITING;
	atomic_store(&cli->connected, 0);
	cli__rooms_reset(cli, 1);
	/* What waits to be sent again counts against the queue limits. */
	atomic_store(&cli->q_frames, cli->unacked_n);
	atomic_store(&cli->q_bytes, cli->unacked_bytes);
	uint32_t delay = backoff(cli, cli->attempt);
	loop__update_now(&cli->loop);
	cli->deadline = cli->loop.now + delay;
	cli__arm_timer(cli);
	cli__log(cli, TCPCHAT_LOG_WARN,
	         "connection lost (%s): reconnecting in %u ms (attempt %u)",
	         why, delay, cli->attempt);
	tcpchat_client_event ev = {.type = TCPCHAT_CEV_RECONNECTING};
	ev.reason = reason;
	ev.error = err;
	ev.text = why;
	ev.attempt = cli->attempt;
	ev.delay_ms = delay;
	cli__emit(cli, &ev);
}

void cli__reconnect_hello(tcpchat_client *cli, tcpchat_msg *hello)
{
	cli->hello_resume = 0;
	if (!cli->reconnecting || !cli->had_history)
		return;
	size_t n = strlen(cli->default_room);
	struct cpos *p = n ? cli__pos_find(cli, cli->default_room, n) : NULL;
	if (!p || !p->epoch)
		return;
	hello->flags |= TCPCHAT_MSGF_AFTER;
	hello->seq = p->seq;
	hello->epoch = p->epoch;
	p->resuming = 1;
	cli->hello_resume = 1;
}

/* Joins room again: with a resume from its position when the server
 * keeps history and we have one, else plainly.  request: a join request
 * (the room becomes the current room when confirmed). */
static void rejoin(tcpchat_client *cli, const char *room, int history,
                   int request)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_JOIN};
	m.room = cli__str(room);
	struct cpos *p = cli__pos_find(cli, room, strlen(room));
	if (history && p && p->epoch) {
		m.flags = TCPCHAT_MSGF_AFTER;
		m.seq = p->seq;
		m.epoch = p->epoch;
		p->resuming = 1;
	}
	if (cli__push_msg(cli, &m) != 0) {
		cli__log(cli, TCPCHAT_LOG_ERROR, "could not join %s again",
		         room);
		return;
	}
	if (request)
		cli__rooms_requested(cli, room);
}

static void rejoin_all(tcpchat_client *cli, int history)
{
	const char *def = cli->default_room, *cur = cli->rejoin_current;
	int others = 0;
	for (size_t i = 0; i < cli->rejoin.n; i++) {
		const char *r = cli->rejoin.v[i];
		if (strcmp(r, def) == 0 || strcmp(r, cur) == 0)
			continue;
		rejoin(cli, r, history, 0);
		others = 1;
	}
	if (cur[0] && strcmp(cur, def) != 0)
		rejoin(cli, cur, history, 1);
	else if (cur[0] && others)
		rejoin(cli, cur, 0, 1); /* to make it current again */
	for (size_t i = 0; i < cli->rejoin_pending.n; i++) {
		const char *r = cli->rejoin_pending.v[i];
		if (cli__list_find(&cli->rejoin, r, strlen(r)) < 0)
			rejoin(cli, r, 0, 1);
	}
}

void cli__reconnect_welcome(tcpchat_client *cli)
{
	int history = (atomic_load(&cli->srv_caps) & TCPCHAT_CAP_HISTORY) != 0;
	if (!history)
		for (size_t i = 0; i < cli->pos.n; i++)
			cli->pos.v[i].resuming = 0;
	tcpchat_client_event ev = {.type = TCPCHAT_CEV_RECONNECTED};
	ev.name.ptr = cli->name;
	ev.name.len = cli->name_len;
	ev.attempt = cli->attempt;
	cli__log(cli, TCPCHAT_LOG_INFO, "reconnected as %s (attempt %u)",
	         cli->name, cli->attempt);
	cli->reconnecting = 0;
	cli->attempt = 0;
	rejoin_all(cli, history);
	cli->rejoin.n = 0;
	cli->rejoin_pending.n = 0;
	if (history)
		cli__acks_resend(cli);
	else
		cli__acks_refuse_all(cli, TCPCHAT_ENOTSUP,
		                     "the server keeps no history");
	cli__emit(cli, &ev);
}

void cli__reconnect_end(tcpchat_client *cli, int err, const char *why)
{
	int was = cli->reconnecting;
	cli->reconnecting = 0;
	cli->rejoin.n = 0;
	cli->rejoin_pending.n = 0;
	if (!was || cli->stop_seen || atomic_load(&cli->abort_req))
		return;
	tcpchat_client_event ev = {.type = TCPCHAT_CEV_GAVE_UP};
	ev.error = err;
	ev.text = why;
	ev.attempt = cli->attempt;
	cli__log(cli, TCPCHAT_LOG_WARN,
	         "gave up reconnecting after %u "
	         "attempts: %s",
	         cli->attempt, why);
	cli__emit(cli, &ev);
}
