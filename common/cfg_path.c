/* cfg_path.c - where the configuration is when no -c names it. Kept out of
 * cfg.c so that only this file is rebuilt when the installed path
 * (RM_SYSCONFDIR, from the Makefile's sysconfdir) changes. */
#include "cfg.h"

#include <unistd.h>

#ifndef RM_SYSCONFDIR
#define RM_SYSCONFDIR "/usr/local/etc"
#endif

#define SOURCE_TREE_CONFIG "etc/ringmaster.ini"

const char *cfg_installed_path(void)
{
	return RM_SYSCONFDIR "/ringmaster/ringmaster.ini";
}

/* A source tree's own configuration wins, so that the README's tour and
 * the tests work on the demo from a checkout on a machine that also has
 * ringmaster installed. */
const char *cfg_default_path(void)
{
	if (access(SOURCE_TREE_CONFIG, F_OK) == 0)
		return SOURCE_TREE_CONFIG;
	return cfg_installed_path();
}
