/* benchio.h - what the limit program and the peers of `make bench-peers`
 * (issue 19) share: reading an events file and a table file the way
 * ringmaster reads them, a byte-string hash map, splitting keys over
 * connections, and the clocks and the result line every program prints.
 *
 * Nothing here does I/O on its own but bio_events_load and bio_table_each;
 * every call that can fail returns 0 or -1 with a message on stderr that
 * names the file. */
#ifndef BENCHIO_H
#define BENCHIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringmaster.h"

#define BIO_KEY_MAX 255
#define BIO_LINE_MAX 65536 /* ringmaster's default max_event_size */

/* An events file read whole: one rm_event per line that is an event (key,
 * a tab, payload; key 1..BIO_KEY_MAX bytes; at most BIO_LINE_MAX bytes),
 * seq its byte offset as ringmaster's file source counts it. A trailing
 * CR is not part of the payload. Lines that are not events are counted in
 * `bad` (ringmaster's file source dead-letters them). */
struct bio_events {
	char *buf;
	size_t len;
	struct rm_event *ev;
	size_t n;
	uint64_t bad;
};

/* Read and split path. Returns 0 or -1 (message on stderr). */
int bio_events_load(const char *path, struct bio_events *e);
void bio_events_free(struct bio_events *e);

/* Call fn for each row of a table file as ringmaster reads it: the key up
 * to the first tab, the rest is the value; empty lines and '#' lines are
 * skipped, a trailing CR is dropped. A key of 0 or more than BIO_KEY_MAX
 * bytes is an error naming the line. fn returns 0, or -1 to stop (and
 * says why). Returns 0 or -1. */
typedef int (*bio_row_fn)(void *arg, const char *key, size_t klen, const char *val, size_t vlen);
int bio_table_each(const char *path, bio_row_fn fn, void *arg);

/* NAME=FILE, NAME 1..63 of [A-Za-z0-9_]: *name and *name_len point into
 * arg, *file after the '='. Returns 0, or -1 with a message. */
int bio_table_arg(const char *arg, const char **name, size_t *name_len, const char **file);

uint64_t bio_hash(const char *s, size_t n);

/* A map of byte strings to byte strings: open addressing, linear probing,
 * no deletes. Each entry is one 64-byte cache line in the table itself, key
 * and value inline when they are short (a lookup is one cache miss, not
 * three); longer ones are kept outside. Adding a key may move every entry:
 * a value found stays valid until the next bio_map_put of a new key. */
#define BIO_INLINE_KEY 16
#define BIO_INLINE_VAL 32

struct bio_entry {
	uint64_t hash; /* 0: an empty slot (bio_hash never gives 0) */
	uint32_t vlen;
	uint16_t klen;
	uint16_t pad;
	union {
		char k[BIO_INLINE_KEY];
		char *kext; /* klen > BIO_INLINE_KEY */
	};
	union {
		char v[BIO_INLINE_VAL];
		char *vext; /* vlen > BIO_INLINE_VAL: malloc'd, vlen bytes */
	};
} __attribute__((aligned(64)));

struct bio_map {
	struct bio_entry *tab;
	size_t n, mask;
};

static inline const char *bio_entry_key(const struct bio_entry *e)
{
	return e->klen > BIO_INLINE_KEY ? e->kext : e->k;
}

static inline const char *bio_entry_val(const struct bio_entry *e)
{
	return e->vlen > BIO_INLINE_VAL ? e->vext : e->v;
}

/* The entry of key, or NULL. */
struct bio_entry *bio_map_get(const struct bio_map *m, const char *k, size_t n);
/* Set key's value (adding the key). Returns 0 or -1 (out of memory). */
int bio_map_put(struct bio_map *m, const char *k, size_t kn, const void *v, size_t vn);
/* Set the value of an entry bio_map_get found. Returns 0 or -1. */
int bio_entry_set(struct bio_entry *e, const void *v, size_t vn);
/* Ask the CPU to bring in the line where a key of hash h starts its probe:
 * for a key that a lookup will want a few events from now. */
static inline void bio_map_prefetch(const struct bio_map *m, uint64_t h)
{
	if (m->tab)
		__builtin_prefetch(&m->tab[h & m->mask]);
}
/* Every entry, sorted by key as memcmp orders it (`ringctl dump-state`'s
 * order), written as key<TAB>value lines to path. Returns 0 or -1. */
int bio_map_dump(const struct bio_map *m, const char *path);
void bio_map_free(struct bio_map *m);

/* Which of n connections (or partitions) serves key: events of one key go
 * through one connection, in file order, so per-key order holds. */
unsigned bio_split(const char *key, size_t klen, unsigned n);

/* Seconds on the monotonic clock; CPU seconds (user + system) of this
 * process so far. */
double bio_now(void);
double bio_cpu(void);

/* CPU seconds (user + system) of process pid, of its children it has
 * reaped, and of the children it has now: a server's whole cost, its
 * threads, its background jobs and the connections it forked included.
 * -1 when /proc does not say. */
double bio_tree_cpu(long pid);

/* The one result line on stdout: `NAME: events=.. seconds=..
 * events_per_second=.. cpu_seconds=.. server_cpu_seconds=..
 * cpu_us_per_event=.. complete=yes|no`, where cpu_seconds is the program's
 * and the server's together (server_cpu: 0 when there is none). */
void bio_report(const char *name, uint64_t events, double secs, double cpu, double server_cpu,
		bool complete);

/* Write all of buf to fd. Returns 0 or a negative errno. */
int bio_write_all(int fd, const char *buf, size_t n);

/* A decimal in lo..hi for option what. Returns 0, or -1 with a message. */
int bio_parse_uint(const char *what, const char *s, unsigned long lo, unsigned long hi,
		   unsigned long *v);

#endif
