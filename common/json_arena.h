/* json_arena.h - memory for yajl (the one JSON library) out of a fixed
 * buffer, reset for every parse, so that reading a JSON line costs no
 * malloc: yajl allocates its handle, stacks and buffers anew for each parse.
 * A block carries its size in front of it (for realloc). What does not fit
 * (a very long escaped string) goes to malloc, and yajl_free hands it back.
 * Used by common/event.c and the ledger handler. */
#ifndef RM_JSON_ARENA_H
#define RM_JSON_ARENA_H

#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_common.h>

#define JSON_ARENA_HDR 16

struct json_arena {
	size_t used;
	_Alignas(16) unsigned char mem[8192];
};

static inline int json_arena_has(const struct json_arena *a, const void *p)
{
	const unsigned char *b = p;

	return b >= a->mem && b < a->mem + sizeof(a->mem);
}

static inline void *json_arena_malloc(void *ctx, size_t n)
{
	struct json_arena *a = ctx;
	size_t need = JSON_ARENA_HDR + ((n + JSON_ARENA_HDR - 1) & ~(size_t)(JSON_ARENA_HDR - 1));
	unsigned char *b;

	if (need < n || need > sizeof(a->mem) - a->used)
		return malloc(n);
	b = a->mem + a->used;
	a->used += need;
	memcpy(b, &n, sizeof(n));
	return b + JSON_ARENA_HDR;
}

static inline void json_arena_free(void *ctx, void *p)
{
	if (p && !json_arena_has(ctx, p))
		free(p);
}

static inline void *json_arena_realloc(void *ctx, void *p, size_t n)
{
	size_t old;
	void *q;

	if (!p)
		return json_arena_malloc(ctx, n);
	if (!json_arena_has(ctx, p))
		return realloc(p, n);
	memcpy(&old, (unsigned char *)p - JSON_ARENA_HDR, sizeof(old));
	if (n <= old)
		return p;
	q = json_arena_malloc(ctx, n);
	if (q)
		memcpy(q, p, old);
	return q;
}

/* The arena emptied, as yajl_alloc's allocator: everything of the last
 * parse must have been yajl_free'd. */
static inline yajl_alloc_funcs json_arena_funcs(struct json_arena *a)
{
	a->used = 0;
	return (yajl_alloc_funcs){json_arena_malloc, json_arena_realloc, json_arena_free, a};
}

#endif
