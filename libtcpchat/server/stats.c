/* libtcpchat - server statistics.  The loop counts in plain integers (no
 * atomic operation per delivery) and publishes them once per iteration;
 * stats_get() reads the published copy from any thread. */
#include <string.h>

#include "server_int.h"

#define PUB(f)                                                                 \
	atomic_store_explicit(&srv->pub.f, srv->st.f, memory_order_relaxed)
#define LD(f) atomic_load_explicit(&srv->pub.f, memory_order_relaxed)

void srv__stats_publish(tcpchat_server *srv)
{
	PUB(clients);
	PUB(users);
	PUB(accepted);
	PUB(in);
	PUB(out);
	PUB(bytes_in);
	PUB(bytes_out);
	PUB(dropped);
	PUB(proto);
	PUB(refused);
	PUB(rooms);
	PUB(privates);
	PUB(saved);
	PUB(unsaved);
	PUB(refused_addr);
	PUB(limited);
	PUB(tls_failed);
}

TCPCHAT_API int tcpchat_server_stats_get(tcpchat_server *srv,
                                         tcpchat_server_stats *out)
{
	if (!srv || !out || out->size < sizeof(size_t))
		return TCPCHAT_EINVAL;
	tcpchat_server_stats s;
	memset(&s, 0, sizeof s);
	s.size = TC_MIN(out->size, sizeof s);
	s.clients = LD(clients);
	s.users = LD(users);
	s.accepted = LD(accepted);
	s.msgs_in = LD(in);
	s.msgs_out = LD(out);
	s.bytes_in = LD(bytes_in);
	s.bytes_out = LD(bytes_out);
	s.dropped = LD(dropped);
	s.proto_errors = LD(proto);
	s.refused = LD(refused);
	s.rooms = LD(rooms);
	s.private_msgs = LD(privates);
	s.saved = LD(saved);
	s.unsaved = LD(unsaved);
	s.refused_addr = LD(refused_addr);
	s.limited = LD(limited);
	s.tls_failed = LD(tls_failed);
	memcpy(out, &s, s.size);
	return 0;
}
