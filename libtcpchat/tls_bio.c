/* libtcpchat - the socket under OpenSSL: a BIO over a non-blocking socket
 * that writes with MSG_NOSIGNAL, so that a peer gone away is an error,
 * never a SIGPIPE in the application's process. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/bio.h>

#include "internal.h"
#include "tls_int.h"

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static int again(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

static int bio_write(BIO *b, const char *data, int len)
{
	BIO_clear_retry_flags(b);
	ssize_t n = send(BIO_get_fd(b, NULL), data, (size_t)len, MSG_NOSIGNAL);
	if (n < 0 && again(errno))
		BIO_set_retry_write(b);
	return (int)n;
}

static int bio_read(BIO *b, char *data, int len)
{
	BIO_clear_retry_flags(b);
	ssize_t n = recv(BIO_get_fd(b, NULL), data, (size_t)len, 0);
	if (n < 0 && again(errno))
		BIO_set_retry_read(b);
	return (int)n;
}

static int bio_puts(BIO *b, const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return bio_write(b, s, (int)n);
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	switch (cmd) {
	case BIO_C_SET_FD:
		BIO_set_data(b, (void *)(intptr_t)(*(int *)ptr));
		BIO_set_init(b, 1);
		BIO_set_shutdown(b, (int)num);
		return 1;
	case BIO_C_GET_FD: {
		int fd = BIO_get_init(b) ? (int)(intptr_t)BIO_get_data(b) : -1;
		if (ptr)
			*(int *)ptr = fd;
		return fd;
	}
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 0);
	BIO_set_data(b, (void *)(intptr_t)-1);
	return 1;
}

static int bio_destroy(BIO *b)
{
	TC_UNUSED(b); /* the socket is the transport's to close */
	return 1;
}

static void make_method(void)
{
	BIO_METHOD *m =
	        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
	                             BIO_TYPE_DESCRIPTOR,
	                     "tcpchat socket");
	if (!m)
		return;
	if (!BIO_meth_set_write(m, bio_write) ||
	    !BIO_meth_set_read(m, bio_read) ||
	    !BIO_meth_set_puts(m, bio_puts) ||
	    !BIO_meth_set_ctrl(m, bio_ctrl) ||
	    !BIO_meth_set_create(m, bio_create) ||
	    !BIO_meth_set_destroy(m, bio_destroy)) {
		BIO_meth_free(m);
		return;
	}
	method = m;
}

BIO *tls__socket_bio(int fd)
{
	pthread_once(&method_once, make_method);
	if (!method)
		return NULL;
	BIO *b = BIO_new(method);
	if (b)
		BIO_set_fd(b, fd, BIO_NOCLOSE);
	return b;
}
