/* handler.h - find the handler a config names: a built-in by name, or a
 * shared object (a path ending in .so) loaded with dlopen. */
#ifndef RM_HANDLER_H
#define RM_HANDLER_H

#include <stddef.h>

#include "ringmaster.h"

/* Returns the handler, or NULL with a message in err ("handler.so: ABI
 * version 2, this ringmaster speaks 1: rebuild it against ringmaster.h").
 * *dl is the dlopen handle to pass to handler_unload (NULL for built-ins). */
const struct rm_handler *handler_load(const char *spec, void **dl, char *err, size_t errlen);
void handler_unload(void *dl);

/* Check that a handler spec can be loaded, without keeping it (ringmaster -t
 * and the supervisor before it forks). Returns 0 or -1 with err filled. */
int handler_check(const char *spec, char *err, size_t errlen);

#endif
