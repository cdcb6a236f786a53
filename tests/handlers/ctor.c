/* ctor.c - a handler whose constructor does what RM_TEST_CTOR says, for the
 * tests of foreign code (test_foreign_code.sh):
 *
 *   exit        exit(0) while being loaded
 *   hang        never return from being loaded
 *   mark:FILE   create FILE: shows that this object was loaded at all
 *   (unset)     nothing
 *
 * Its process callback writes "ctor KEY" for every event.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringmaster.h"

__attribute__((constructor)) static void misbehave(void)
{
	const char *what = getenv("RM_TEST_CTOR");
	if (!what)
		return;
	if (strcmp(what, "exit") == 0)
		exit(0);
	if (strcmp(what, "hang") == 0)
		for (;;)
			pause();
	if (strncmp(what, "mark:", 5) == 0) {
		int fd = open(what + 5, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
}

static int ctor_process(rm_ctx *ctx, void *state, const struct rm_event *ev)
{
	char line[300] = "ctor ";
	size_t n = ev->key_len < 255 ? ev->key_len : 255;
	(void)state;
	memcpy(line + 5, ev->key, n);
	return rm_emit(ctx, line, 5 + n);
}

const struct rm_handler rm_handler_entry = {
    .abi_version = RM_ABI_VERSION,
    .name = "ctor",
    .process = ctor_process,
};
