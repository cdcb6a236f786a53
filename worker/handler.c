/* handler.c - resolve `[worker] handler` to a struct rm_handler. */
#include "handler.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "handlers/ledger.h"

static const struct {
	const char *name;
	const struct rm_handler *handler;
} builtins[] = {
    {"ledger", &ledger_handler},
};

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int validate(const char *spec, const struct rm_handler *h, char *err, size_t errlen)
{
	if (h->abi_version != RM_ABI_VERSION) {
		snprintf(err, errlen,
			 "%s: handler ABI version %d, this ringmaster speaks %d: rebuild it "
			 "against this ringmaster.h",
			 spec, h->abi_version, RM_ABI_VERSION);
		return -1;
	}
	if (!h->process || !h->name) {
		snprintf(err, errlen, "%s: handler has no %s", spec,
			 h->process ? "name" : "process callback");
		return -1;
	}
	return 0;
}

const struct rm_handler *handler_load(const char *spec, void **dl, char *err, size_t errlen)
{
	*dl = NULL;
	if (!ends_with(spec, ".so")) {
		for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
			if (strcmp(spec, builtins[i].name) == 0)
				return builtins[i].handler;
		snprintf(err, errlen,
			 "unknown handler '%s': use a built-in (ledger) or a path ending in .so",
			 spec);
		return NULL;
	}
	void *h = dlopen(spec, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "cannot load handler: %s", dlerror());
		return NULL;
	}
	const struct rm_handler *handler = dlsym(h, RM_HANDLER_SYMBOL);
	if (!handler) {
		snprintf(err, errlen,
			 "%s: no symbol '%s': a handler exports "
			 "const struct rm_handler %s",
			 spec, RM_HANDLER_SYMBOL, RM_HANDLER_SYMBOL);
		dlclose(h);
		return NULL;
	}
	if (validate(spec, handler, err, errlen) != 0) {
		dlclose(h);
		return NULL;
	}
	*dl = h;
	return handler;
}

void handler_unload(void *dl)
{
	if (dl)
		dlclose(dl);
}

int handler_check(const char *spec, char *err, size_t errlen)
{
	void *dl;
	if (!handler_load(spec, &dl, err, errlen))
		return -1;
	handler_unload(dl);
	return 0;
}
