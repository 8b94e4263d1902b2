/* libtcpchat - protocol rules shared by server and client: message types
 * and the wire error code space. */
#include "internal.h"

/* Library code <-> wire code.  The wire numbers are the positive values
 * of the library codes of protocol 1, so that its peers understand them;
 * from now on the two spaces are separate and either may grow. */
static const struct {
	int err;
	uint32_t wire;
} wire_map[] = {
        {TCPCHAT_ENOMEM, TCPCHAT_WIRE_NOMEM},
        {TCPCHAT_ESYS, TCPCHAT_WIRE_SYS},
        {TCPCHAT_EPROTO, TCPCHAT_WIRE_PROTO},
        {TCPCHAT_EMSGSIZE, TCPCHAT_WIRE_MSGSIZE},
        {TCPCHAT_ETIMEDOUT, TCPCHAT_WIRE_TIMEDOUT},
        {TCPCHAT_ENAMEINUSE, TCPCHAT_WIRE_NAMEINUSE},
        {TCPCHAT_EBADNAME, TCPCHAT_WIRE_BADNAME},
        {TCPCHAT_EFULL, TCPCHAT_WIRE_FULL},
        {TCPCHAT_EREFUSED, TCPCHAT_WIRE_REFUSED},
        {TCPCHAT_EVERSION, TCPCHAT_WIRE_VERSION},
        {TCPCHAT_ENOTFOUND, TCPCHAT_WIRE_NOTFOUND},
        {TCPCHAT_ESHUTDOWN, TCPCHAT_WIRE_SHUTDOWN},
        {TCPCHAT_ENOTSUP, TCPCHAT_WIRE_NOTSUP},
        {TCPCHAT_EBADMSG, TCPCHAT_WIRE_BADMSG},
        {TCPCHAT_EKICKED, TCPCHAT_WIRE_KICKED},
        {TCPCHAT_EBADROOM, TCPCHAT_WIRE_BADROOM},
        {TCPCHAT_ENOTMEMBER, TCPCHAT_WIRE_NOTMEMBER},
        {TCPCHAT_ELIMIT, TCPCHAT_WIRE_LIMIT},
        {TCPCHAT_ERATE, TCPCHAT_WIRE_RATE},
        {TCPCHAT_ESLOW, TCPCHAT_WIRE_SLOW},
        {TCPCHAT_ENOTYPE, TCPCHAT_WIRE_NOTYPE},
        {TCPCHAT_EBUS, TCPCHAT_WIRE_UNAVAILABLE},
};

TCPCHAT_API uint32_t tcpchat_error_to_wire(int err)
{
	for (size_t i = 0; i < TC_ARRAY_LEN(wire_map); i++)
		if (wire_map[i].err == err)
			return wire_map[i].wire;
	return TCPCHAT_WIRE_PROTO;
}

TCPCHAT_API int tcpchat_error_from_wire(uint32_t code)
{
	for (size_t i = 0; i < TC_ARRAY_LEN(wire_map); i++)
		if (wire_map[i].wire == code)
			return wire_map[i].err;
	return TCPCHAT_EREMOTE;
}

int proto__known_type(uint32_t type)
{
	return type >= 1 && type <= TCPCHAT_MSG_TYPE_MAX;
}

int proto__legacy_fatal(uint32_t wire_code)
{
	switch (wire_code) {
	case TCPCHAT_WIRE_BADMSG:
	case TCPCHAT_WIRE_REFUSED:
	case TCPCHAT_WIRE_NOTFOUND:
	case TCPCHAT_WIRE_NOTSUP:
	case TCPCHAT_WIRE_NOTYPE:
	case TCPCHAT_WIRE_SYS:
	case TCPCHAT_WIRE_RATE:
	case TCPCHAT_WIRE_UNAVAILABLE:
		return 0;
	default:
		return 1;
	}
}
