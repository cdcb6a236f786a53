/* proctitle.h - set what `ps` shows for this process ("ringmaster: worker 3
 * (demo)"). proctitle_init, called first thing in main, moves the
 * environment out of the way so the whole argv+environ area can hold the
 * title; proctitle_set also sets the short name (comm). */
#ifndef RM_PROCTITLE_H
#define RM_PROCTITLE_H

void proctitle_init(int argc, char **argv);
/* `comm` is the short name (top, pgrep; 15 bytes kept), the rest the title. */
void proctitle_set(const char *comm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
