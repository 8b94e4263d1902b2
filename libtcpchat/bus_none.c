/* libtcpchat - the buses this build has not: their constructors say so. */
#include <stdio.h>

#include "bus.h"
#include "internal.h"

#if !TCPCHAT_HAVE_REDIS || !TCPCHAT_HAVE_NATS
static int none(struct bus **out, const char *what, const char *feature,
                char *err, size_t errlen)
{
	*out = NULL;
	snprintf(err, errlen,
	         "this libtcpchat was built without %s (the '%s' feature)",
	         what, feature);
	return TCPCHAT_ENOTSUP;
}
#endif

#if !TCPCHAT_HAVE_REDIS
int bus_redis__new(struct bus **out, struct loop *loop, const char *url,
                   const char *node, uint64_t epoch, int timeout_ms,
                   const struct bus_events *ev, char *err, size_t errlen)
{
	TC_UNUSED(loop);
	TC_UNUSED(url);
	TC_UNUSED(node);
	TC_UNUSED(epoch);
	TC_UNUSED(timeout_ms);
	TC_UNUSED(ev);
	return none(out, "Redis", "redis", err, errlen);
}
#endif

#if !TCPCHAT_HAVE_NATS
int bus_nats__new(struct bus **out, struct loop *loop, const char *url,
                  const char *node, uint64_t epoch, int timeout_ms,
                  const struct bus_events *ev, char *err, size_t errlen)
{
	TC_UNUSED(loop);
	TC_UNUSED(url);
	TC_UNUSED(node);
	TC_UNUSED(epoch);
	TC_UNUSED(timeout_ms);
	TC_UNUSED(ev);
	return none(out, "NATS", "nats", err, errlen);
}
#endif
