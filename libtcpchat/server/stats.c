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
	if (srv->cl) {
		srv__cluster_count(srv);
		PUB(cl_up);
		PUB(cl_servers);
		PUB(cl_users);
		PUB(bus_sent);
		PUB(bus_sent_bytes);
		PUB(bus_recv);
		PUB(bus_recv_bytes);
		PUB(bus_losses);
		PUB(bus_held);
		PUB(bus_refused);
		PUB(bus_gaps);
		PUB(bus_bad);
	}
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
	s.cluster_up = LD(cl_up);
	s.cluster_servers = LD(cl_servers);
	s.cluster_users = LD(cl_users);
	s.bus_sent = LD(bus_sent);
	s.bus_sent_bytes = LD(bus_sent_bytes);
	s.bus_recv = LD(bus_recv);
	s.bus_recv_bytes = LD(bus_recv_bytes);
	s.bus_losses = LD(bus_losses);
	s.bus_held = LD(bus_held);
	s.bus_refused = LD(bus_refused);
	s.bus_gaps = LD(bus_gaps);
	s.bus_bad = LD(bus_bad);
	memcpy(out, &s, s.size);
	return 0;
}
