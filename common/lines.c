/* lines.c - whole lines into messages of bounded size (see lines.h). */
#include "lines.h"

#include <string.h>

size_t sink_chunk_len(const char *lines, size_t len, size_t max)
{
	size_t window = len < max ? len : max;
	const char *nl = window ? memrchr(lines, '\n', window) : NULL;
	if (!nl && len > window)
		nl = memchr(lines + window, '\n', len - window);
	return nl ? (size_t)(nl - lines) + 1 : 0;
}
