/* libtcpchat - each joined user's rate limits: a bucket of messages and
 * one of frame bytes (TCPCHAT_SOPT_RATE_*).
 *
 * A bucket is kept as its debt: the microseconds of refill it needs to
 * be full again, as of the user's last input (sc->last_ms).  A message
 * costs 1e6 / RATE_MSGS us, a frame of n bytes n * 1e6 / RATE_BYTES us;
 * a bucket holds BURST such costs.  Integers only: a message costs a few
 * multiplications and a division. */
#include <stdio.h>

#include "server_int.h"

#define US 1000000LL

/* The debt a bucket may hold: burst costs of rate per second, in us. */
static int64_t window_us(long long burst, long long rate)
{
	int64_t w = burst * US / rate;
	return w > UINT32_MAX ? UINT32_MAX : w;
}

static uint32_t clamp_u32(int64_t v)
{
	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* The time of the loop, in ms since sc was accepted, never 0. */
static uint32_t rel_ms(const tcpchat_server *srv, const struct sconn *sc)
{
	return (uint32_t)(srv->loop.now - sc->since_ms) | 1u;
}

/* Over the limit, wait_us before the message would pass.  The first
 * refusal of a burst is answered and logged; a burst that lasted
 * RATE_KICK ends the connection.  Returns 1. */
static int refuse(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m,
                  int64_t wait_us)
{
	char who[SRV_WHO_MAX];
	srv->st.limited++;
	uint32_t now = rel_ms(srv, sc);
	if (!sc->rate_over) {
		sc->rate_over = now;
		long long tenths = (wait_us + US / 10 - 1) / (US / 10);
		char why[64];
		snprintf(why, sizeof why, "too fast: retry in %lld.%lld s",
		         tenths / 10, tenths % 10);
		srv__log(srv, TCPCHAT_LOG_INFO, "%s: rate limited: %s",
		         srv__who(sc, who, sizeof who), why);
		srv__req_error(srv, sc, m, TCPCHAT_ERATE, why);
		return 1;
	}
	if (srv->rate_kick && (uint32_t)(now - sc->rate_over) >=
	                              (uint32_t)srv->rate_kick * 1000u) {
		srv__log(srv, TCPCHAT_LOG_INFO,
		         "%s: disconnected: over the rate limits for %lld s",
		         srv__who(sc, who, sizeof who), srv->rate_kick);
		srv__fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_ERATE, "flooding");
	}
	return 1;
}

int srv__rate_charge(tcpchat_server *srv, struct sconn *sc,
                     const tcpchat_msg *m, size_t fb)
{
	if (!srv->rate_msgs && !srv->rate_bytes)
		return 0;
	if (m->type == TCPCHAT_MSG_PONG || m->type == TCPCHAT_MSG_ERROR ||
	    m->type == TCPCHAT_MSG_LEAVE)
		return 0;
	int64_t elapsed = (srv->loop.now - sc->last_ms) * 1000;
	if (elapsed < 0)
		elapsed = 0;
	int64_t dm = sc->rate_dm > elapsed ? sc->rate_dm - elapsed : 0;
	int64_t db = sc->rate_db > elapsed ? sc->rate_db - elapsed : 0;
	int64_t nm = dm, nb = db, wm = 0, wb = 0;
	if (srv->rate_msgs) {
		nm += US / srv->rate_msgs;
		wm = window_us(srv->rate_burst, srv->rate_msgs);
	}
	if (srv->rate_bytes) {
		nb += (int64_t)fb * US / srv->rate_bytes;
		wb = window_us(srv->rate_bytes_burst, srv->rate_bytes);
	}
	/* A cost larger than the whole bucket passes when it is full. */
	int over_m = nm > wm && dm > 0;
	int over_b = nb > wb && db > 0;
	if (over_m || over_b) {
		sc->rate_dm = clamp_u32(dm);
		sc->rate_db = clamp_u32(db);
		int64_t wait = over_m ? nm - wm : 0;
		if (over_b && nb - wb > wait)
			wait = nb - wb;
		return refuse(srv, sc, m, wait);
	}
	sc->rate_dm = clamp_u32(nm);
	sc->rate_db = clamp_u32(nb);
	if (sc->rate_over && nm <= wm / 2 && nb <= wb / 2)
		sc->rate_over = 0; /* recovered: the burst is over */
	return 0;
}
