/* host-loop - a server driven from the program's own poll() loop.
 * Usage: host-loop [ADDR]   (default 127.0.0.1:0; prints the port)
 * Each line typed on stdin is broadcast as a server notice; end of input
 * stops the server.  No thread is created: the library's work is done by
 * tcpchat_server_step() whenever its fd is readable or its timer is due. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <tcpchat/tcpchat.h>

int main(int argc, char **argv)
{
	tcpchat_server *srv;
	if (tcpchat_server_new(&srv) != 0)
		return 1;
	const char *addr = argc > 1 ? argv[1] : "127.0.0.1:0";
	int rc = tcpchat_server_listen(srv, addr, tcpchat_codec_line());
	if (rc) {
		fprintf(stderr, "host-loop: cannot listen on %s: %s\n", addr,
		        rc == TCPCHAT_ESYS ? strerror(errno)
		                           : tcpchat_strerror(rc));
		tcpchat_server_destroy(srv);
		return 1;
	}
	printf("port %d\n", tcpchat_server_port(srv, 0));
	fflush(stdout);

	int in_open = 1;
	while ((rc = tcpchat_server_step(srv)) == 0) {
		struct pollfd p[2] = {
		        {.fd = tcpchat_server_fd(srv), .events = POLLIN},
		        {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN},
		};
		int timeout = tcpchat_server_timeout_ms(srv);
		if (p[0].fd < 0) /* poll(2) backend: no single fd, so tick */
			timeout = timeout < 0 || timeout > 10 ? 10 : timeout;
		if (poll(p, 2, timeout) < 0)
			break;
		if (p[1].revents) {
			char line[1024];
			ssize_t n = read(STDIN_FILENO, line, sizeof line);
			if (n <= 0) {
				in_open = 0;
				tcpchat_server_stop(srv);
			} else {
				while (n && (line[n - 1] == '\n' ||
				             line[n - 1] == '\r'))
					n--;
				if (n)
					tcpchat_server_broadcast(srv, line,
					                         (size_t)n);
			}
		}
	}
	tcpchat_server_destroy(srv);
	return rc < 0 ? 1 : 0;
}
