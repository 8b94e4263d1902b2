/* The public headers must compile on their own as strict C99. */
#include <tcpchat/tcpchat.h>

int main(void)
{
	return tcpchat_strerror(TCPCHAT_OK) ? 0 : 1;
}
