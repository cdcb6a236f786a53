/* cfg_props.h - what every cfg_load must give, whatever the input: the
 * properties fuzz_cfg_file and fuzz_cfg_override check after each load.
 * Each calls abort() when broken, which libFuzzer reports as a crash. */
#ifndef RM_FUZZ_CFG_PROPS_H
#define RM_FUZZ_CFG_PROPS_H

#include <stddef.h>

/* Write `text` (len bytes) to a fresh memory file and cfg_load it with the
 * overrides, then check the result against cfg.h's promises: on success
 * every setting in range and every path absolute and normalised; on failure
 * the struct untouched and one message per line, each naming the file or
 * the override. */
void cfg_props_load(const void *text, size_t len, char *const *overrides, size_t n_overrides);

#endif
