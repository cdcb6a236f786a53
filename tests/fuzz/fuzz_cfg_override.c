/* fuzz_cfg_override.c - libFuzzer target for the -o overrides of cfg_load
 * (common/cfg.c): the input is a list of overrides, one per line, applied
 * in order over a small valid file; the result must be a sound struct cfg
 * or one message per line, each naming its override (cfg_props.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_props.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_OVERRIDES_MAX 64

/* Valid as it is, so that an override that is right leaves it valid. */
static const char base_ini[] = "[ringmaster]\n"
			       "partitions = 2\n"
			       "[source]\n"
			       "path = events.tsv\n"
			       "[table.rules]\n"
			       "path = rules.tsv\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *overrides[FUZZ_OVERRIDES_MAX];
	size_t n = 0;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* Lines, up to the first NUL (an argv string cannot hold one). */
	for (char *line = text, *next; line && n < FUZZ_OVERRIDES_MAX; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		overrides[n++] = line;
	}
	cfg_props_load(base_ini, sizeof(base_ini) - 1, overrides, n);
	free(text);
	return 0;
}
