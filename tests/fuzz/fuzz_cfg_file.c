/* fuzz_cfg_file.c - libFuzzer target for cfg_load (common/cfg.c): any bytes,
 * as a whole INI file, go through our line reader, inih and validation, and
 * must load into a sound struct cfg or fail with one message per line and
 * the caller's struct untouched (cfg_props.c). The seed corpus holds small
 * valid and invalid files: sections, continuations, tables, every kind of
 * value. */
#include <stddef.h>
#include <stdint.h>

#include "cfg_props.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cfg_props_load(data, size, NULL, 0);
	return 0;
}
