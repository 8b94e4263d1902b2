/* The public headers must compile on their own as strict C99.  Built
 * with -Wsign-conversion too: the naming functions take the types of the
 * message fields they name. */
#include <string.h>

#include <tcpchat/tcpchat.h>

int main(void)
{
	tcpchat_msg m;
	memset(&m, 0, sizeof m);
	m.type = TCPCHAT_MSG_LEAVE;
	m.code = TCPCHAT_REASON_QUIT;
	if (!tcpchat_msg_type_name(m.type) || !tcpchat_reason_name(m.code))
		return 1;
	return tcpchat_strerror(TCPCHAT_OK) ? 0 : 1;
}
