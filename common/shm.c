/* shm.c - lay out the shared mapping described in shm.h. */
#include "shm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SHM_ALIGN 4096u

static size_t align_up(size_t n, size_t a)
{
	return (n + a - 1) & ~(a - 1);
}

int shm_create(struct shm *s, unsigned partitions, size_t ring_size)
{
	size_t ring_bytes = ring_footprint(ring_size);
	if (partitions == 0 || ring_bytes == 0)
		return -EINVAL;
	size_t sup_bytes = align_up(sizeof(struct shm_sup), SHM_ALIGN);
	size_t workers_bytes = align_up(sizeof(struct shm_worker) * partitions, SHM_ALIGN);
	ring_bytes = align_up(ring_bytes, SHM_ALIGN);
	size_t size = sup_bytes + workers_bytes + ring_bytes * partitions;

	memset(s, 0, sizeof(*s));
	s->rings = calloc(partitions, sizeof(*s->rings));
	if (!s->rings)
		return -ENOMEM;
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		int err = -errno;
		free(s->rings);
		s->rings = NULL;
		return err;
	}
	s->base = base;
	s->size = size;
	s->partitions = partitions;
	s->sup = base;
	s->workers = (void *)((char *)base + sup_bytes);
	for (unsigned p = 0; p < partitions; p++) {
		void *mem = (char *)base + sup_bytes + workers_bytes + ring_bytes * p;
		s->rings[p] = ring_init(mem, ring_size);
		if (!s->rings[p]) {
			shm_destroy(s);
			return -EINVAL;
		}
	}
	return 0;
}

void shm_destroy(struct shm *s)
{
	if (s->base)
		munmap(s->base, s->size);
	free(s->rings);
	memset(s, 0, sizeof(*s));
}

/* Only this partition's worker adds names: fill the slot, then publish it. */
static struct shm_outcome *add_outcome(struct shm_worker *w, uint32_t n, const char *name)
{
	struct shm_outcome *o = &w->outcomes[n];
	strncpy(o->name, name, SHM_OUTCOME_NAME - 1);
	o->name[SHM_OUTCOME_NAME - 1] = '\0';
	atomic_store_explicit(&o->count, 0, memory_order_relaxed);
	atomic_store_explicit(&w->n_outcomes, n + 1, memory_order_release);
	return o;
}

void shm_count_outcome(struct shm_worker *w, const char *name, uint64_t n)
{
	uint32_t have = atomic_load_explicit(&w->n_outcomes, memory_order_acquire);
	struct shm_outcome *o = NULL;
	for (uint32_t i = 0; i < have && !o; i++)
		if (strncmp(w->outcomes[i].name, name, SHM_OUTCOME_NAME - 1) == 0)
			o = &w->outcomes[i];
	/* The last slot is kept for "other", so a handler with too many names
	 * still has every event counted somewhere. */
	if (!o && have < SHM_OUTCOMES - 1)
		o = add_outcome(w, have, name);
	else if (!o && have == SHM_OUTCOMES - 1)
		o = add_outcome(w, have, "other");
	else if (!o)
		o = &w->outcomes[SHM_OUTCOMES - 1];
	atomic_fetch_add_explicit(&o->count, n, memory_order_relaxed);
}

void shm_hist_add(_Atomic uint64_t *hist, uint64_t value)
{
	shm_hist_add_n(hist, value, 1);
}

void shm_hist_add_n(_Atomic uint64_t *hist, uint64_t value, uint64_t n)
{
	unsigned b = value ? 64u - (unsigned)__builtin_clzll(value) : 0;
	if (b >= SHM_HIST_BUCKETS)
		b = SHM_HIST_BUCKETS - 1;
	atomic_fetch_add_explicit(&hist[b], n, memory_order_relaxed);
}

uint64_t shm_hist_bound(unsigned i)
{
	return i == 0 ? 0 : (1ull << i) - 1;
}

uint64_t shm_hist_quantile(const _Atomic uint64_t *hist, double q)
{
	uint64_t total = 0, seen = 0;
	for (unsigned b = 0; b < SHM_HIST_BUCKETS; b++)
		total += atomic_load_explicit(&hist[b], memory_order_relaxed);
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)(q * (double)total);
	if (want == 0)
		want = 1;
	for (unsigned b = 0; b < SHM_HIST_BUCKETS; b++) {
		seen += atomic_load_explicit(&hist[b], memory_order_relaxed);
		if (seen >= want)
			return b == 0 ? 0 : (1ull << b) - 1;
	}
	return (1ull << (SHM_HIST_BUCKETS - 1)) - 1;
}
