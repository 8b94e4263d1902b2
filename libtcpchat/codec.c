/* libtcpchat - codec registry. */
#include <string.h>

#include "internal.h"

TCPCHAT_API const tcpchat_codec *tcpchat_codec_find(const char *name)
{
	if (!name)
		return NULL;
	if (strcmp(name, "binary") == 0)
		return tcpchat_codec_binary();
	if (strcmp(name, "line") == 0)
		return tcpchat_codec_line();
	if (strcmp(name, "json") == 0)
		return tcpchat_codec_json();
	return NULL;
}
