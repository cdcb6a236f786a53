/* ring.c - single-producer, single-consumer ring of variable-length records
 * in memory shared across fork(). See ring.h for the contract.
 *
 * Layout of the shared mapping, one 128-byte block per group so that the two
 * sides never write to the same cache line (128 rather than 64 because
 * adjacent-line prefetchers pull lines in pairs):
 *
 *   consts    capacity, mask, limits: written once by ring_init
 *   prod      tail, closed, counters: the producer writes them to publish
 *   prod_priv the producer's write position and cached acked
 *   cons      acked, counters: the consumer writes them to ack
 *   cons_priv the consumer's read position and cached tail
 *   data_wq   futex word + waiter flag the consumer sleeps on (empty ring)
 *   space_wq  futex word + waiter flag the producer sleeps on (full ring)
 *   data      capacity bytes of records
 *
 * Each side keeps a private copy of the other side's position (acked_cache,
 * tail_cache) and reloads the shared one only when the ring looks full or
 * empty, so the common path reads no line the other side writes.
 */
#include "ring.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdalign.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RING_LINE 128
#define REC_PAD 1u /* flags: padding up to the end of the buffer */

/* Spin this many rounds (a pause each: about 30 us on a current x86), then
 * yield the CPU a few times, before paying for a futex sleep and for the
 * wake-up system call it costs the other side. */
#define SPIN_ROUNDS 1024
#define YIELD_ROUNDS 4

/* Record header. A padding record may be only 8 bytes long (when that is all
 * that is left before the end), so its meaning must fit in the first word:
 * len and flags, never seq. */
struct rec_hdr {
	uint32_t len; /* header + key + payload, before alignment */
	uint16_t key_len;
	uint16_t flags;
	uint64_t seq;
};

struct wait_q {
	uint32_t futex;	 /* bumped on every wake, so a sleeper never sees ABA */
	uint32_t waiter; /* 1 while the owner is (about to be) asleep */
};

struct ring {
	alignas(RING_LINE) struct {
		uint64_t capacity;
		uint64_t mask;
		uint64_t max_size; /* largest record size, header included */
		uint32_t mapped;   /* made by ring_create: ring_destroy unmaps */
	} consts;
	/* Written by the producer at publish time only: an idle consumer
	 * spins on tail, and must not steal the line ring_put writes. */
	alignas(RING_LINE) struct {
		uint64_t tail;
		uint32_t closed;
		uint64_t high_water; /* counters, for ring_stats */
		uint64_t records;
		uint64_t bytes;
		uint64_t waits;
	} prod;
	/* The producer's own, written on every ring_put. */
	alignas(RING_LINE) struct {
		uint64_t write;	      /* end of records put, not yet published */
		uint64_t acked_cache; /* last acked the producer loaded */
		uint64_t records;     /* prod's counters as of the last put */
		uint64_t bytes;
	} prod_priv;
	/* Written by the consumer once per ack; the producer reads acked
	 * when the ring looks full. */
	alignas(RING_LINE) struct {
		uint64_t acked;
		uint64_t waits;
	} cons;
	/* The consumer's own, written on every peek. */
	alignas(RING_LINE) struct {
		uint64_t read;
		uint64_t tail_cache; /* last tail the consumer loaded */
	} cons_priv;
	alignas(RING_LINE) struct wait_q data_wq;
	alignas(RING_LINE) struct wait_q space_wq;
	alignas(RING_LINE) char data[];
};

_Static_assert(sizeof(struct rec_hdr) == RING_HDR_SIZE, "header size");
_Static_assert(sizeof(struct ring) == 7 * RING_LINE, "one line per group");

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#else
	__asm__ volatile("" ::: "memory");
#endif
}

static inline uint64_t align_up(uint64_t n)
{
	return (n + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

static int valid_capacity(size_t capacity)
{
	return capacity >= RING_MIN_CAPACITY && capacity <= RING_MAX_CAPACITY &&
	       (capacity & (capacity - 1)) == 0;
}

size_t ring_footprint(size_t capacity)
{
	if (!valid_capacity(capacity))
		return 0;
	return sizeof(struct ring) + capacity;
}

struct ring *ring_init(void *mem, size_t capacity)
{
	struct ring *r = mem;

	if (!mem || !valid_capacity(capacity) || ((uintptr_t)mem & (RING_LINE - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	memset(r, 0, sizeof(*r));
	r->consts.capacity = capacity;
	r->consts.mask = capacity - 1;
	r->consts.max_size = capacity / 4;
	/* Publish the zeroed positions before the ring is handed to anyone. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return r;
}

struct ring *ring_create(size_t capacity)
{
	size_t size = ring_footprint(capacity);
	struct ring *r;
	void *mem;

	if (size == 0) {
		errno = EINVAL;
		return NULL;
	}
	/* Populated now, so the first lap does not pay for page faults. */
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE,
		   -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	r = ring_init(mem, capacity);
	if (!r) {
		int saved = errno;

		munmap(mem, size);
		errno = saved;
		return NULL;
	}
	r->consts.mapped = 1;
	return r;
}

void ring_destroy(struct ring *r)
{
	/* Memory the caller gave ring_init is the caller's to free. */
	if (r && r->consts.mapped)
		munmap(r, ring_footprint(r->consts.capacity));
}

size_t ring_max_record(const struct ring *r)
{
	return r->consts.max_size - RING_HDR_SIZE;
}

size_t ring_record_size(size_t key_len, size_t payload_len)
{
	return align_up((uint64_t)RING_HDR_SIZE + key_len + payload_len);
}

/* ---- waiting ---- */

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	/* Not FUTEX_PRIVATE_FLAG: producer and consumer are other processes. */
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

/* The side that made progress calls this after its release store. The fence
 * pairs with the one in ring_sleep (Dekker): either the sleeper sees our
 * store when it re-checks, or we see its waiter flag here. */
static void ring_wake(struct wait_q *q)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (LOAD(&q->waiter) == 0)
		return;
	__atomic_fetch_add(&q->futex, 1, __ATOMIC_SEQ_CST);
	futex(&q->futex, FUTEX_WAKE, INT_MAX, NULL);
}

/* Milliseconds left before `deadline`, as a timespec; 0 when it is past. */
static int time_left(const struct timespec *deadline, struct timespec *left)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left->tv_sec = deadline->tv_sec - now.tv_sec;
	left->tv_nsec = deadline->tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_nsec += 1000000000L;
		left->tv_sec--;
	}
	return left->tv_sec > 0 || (left->tv_sec == 0 && left->tv_nsec > 0);
}

typedef int (*ready_fn)(struct ring *r, uint64_t arg);

/* Sleep on `q` until ready() says yes (> 0) or gives an error (< 0). */
static int ring_sleep(struct ring *r, struct wait_q *q, ready_fn ready, uint64_t arg,
		      int timeout_ms, uint64_t *waits)
{
	struct timespec deadline, left, *ts = NULL;
	int rc;

	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_nsec -= 1000000000L;
			deadline.tv_sec++;
		}
	}
	for (;;) {
		/* Read the word before the re-check: a wake between the
		 * re-check and FUTEX_WAIT changes it, and the wait returns. */
		uint32_t word = LOAD_ACQ(&q->futex);

		STORE(&q->waiter, 1);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		rc = ready(r, arg);
		if (rc != 0)
			break;
		if (timeout_ms >= 0) {
			if (!time_left(&deadline, &left)) {
				rc = -ETIMEDOUT;
				break;
			}
			ts = &left;
		}
		STORE(waits, LOAD(waits) + 1);
		/* Woken, timed out, or the word had moved: check again. */
		if (futex(&q->futex, FUTEX_WAIT, word, ts) == 0 || errno == EAGAIN ||
		    errno == ETIMEDOUT)
			continue;
		rc = -errno; /* EINTR: a signal; the caller looks at flags */
		break;
	}
	STORE(&q->waiter, 0);
	return rc < 0 ? rc : 0;
}

/* Spin, then yield, then sleep until ready() is non-zero. */
static int ring_wait(struct ring *r, struct wait_q *q, ready_fn ready, uint64_t arg, int timeout_ms,
		     uint64_t *waits)
{
	int rc = ready(r, arg);
	int i;

	if (rc != 0 || timeout_ms == 0)
		return rc < 0 ? rc : (rc > 0 ? 0 : -ETIMEDOUT);
	for (i = 0; i < SPIN_ROUNDS; i++) {
		cpu_relax();
		rc = ready(r, arg);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	for (i = 0; i < YIELD_ROUNDS; i++) {
		sched_yield();
		rc = ready(r, arg);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	return ring_sleep(r, q, ready, arg, timeout_ms, waits);
}

/* ---- producer ---- */

/* Size of a record of key_len + payload_len, or 0 if it may not be written. */
static uint64_t checked_size(const struct ring *r, size_t key_len, size_t payload_len)
{
	uint64_t size;

	if (key_len == 0 || key_len > RING_KEY_MAX || payload_len > r->consts.max_size)
		return 0;
	size = ring_record_size(key_len, payload_len);
	return size <= r->consts.max_size ? size : 0;
}

/* Bytes from `pos` to the end of the buffer when a record of `size` would
 * cross it (that much padding goes first), else 0. */
static inline uint64_t pad_before(const struct ring *r, uint64_t pos, uint64_t size)
{
	uint64_t to_end = r->consts.capacity - (pos & r->consts.mask);

	return size > to_end ? to_end : 0;
}

/* Room for `size` bytes (and any padding) at the write position? Reload
 * acked only when the cached copy says no. */
static int has_room(struct ring *r, uint64_t size)
{
	uint64_t need = pad_before(r, r->prod_priv.write, size) + size;
	uint64_t limit = r->consts.capacity - need;

	if (r->prod_priv.write - r->prod_priv.acked_cache <= limit)
		return 1;
	r->prod_priv.acked_cache = LOAD_ACQ(&r->cons.acked);
	return r->prod_priv.write - r->prod_priv.acked_cache <= limit;
}

/* Write padding if needed and the header of a record of `size` at the write
 * position, without moving it. Returns the record's position. */
static uint64_t place(struct ring *r, uint64_t seq, size_t key_len, size_t payload_len,
		      uint64_t size)
{
	uint64_t pos = r->prod_priv.write;
	uint64_t pad = pad_before(r, pos, size);
	struct rec_hdr *h;

	if (pad) {
		h = (struct rec_hdr *)(r->data + (pos & r->consts.mask));
		h->len = (uint32_t)pad;
		h->key_len = 0;
		h->flags = REC_PAD;
		pos += pad;
	}
	h = (struct rec_hdr *)(r->data + (pos & r->consts.mask));
	h->len = (uint32_t)(RING_HDR_SIZE + key_len + payload_len);
	h->key_len = (uint16_t)key_len;
	h->flags = 0;
	h->seq = seq;
	return pos;
}

/* Move the write position past a placed record and count it. */
static inline void advance(struct ring *r, uint64_t pos, uint64_t size)
{
	r->prod_priv.write = pos + size;
	r->prod_priv.records++;
	r->prod_priv.bytes += size;
}

int ring_put(struct ring *r, uint64_t seq, const void *key, size_t key_len, const void *payload,
	     size_t payload_len)
{
	uint64_t size = checked_size(r, key_len, payload_len);
	uint64_t pos;
	char *p;

	if (size == 0)
		return -EMSGSIZE;
	if (!has_room(r, size))
		return -EAGAIN;
	pos = place(r, seq, key_len, payload_len, size);
	p = r->data + (pos & r->consts.mask) + RING_HDR_SIZE;
	memcpy(p, key, key_len);
	if (payload_len)
		memcpy(p + key_len, payload, payload_len);
	advance(r, pos, size);
	return 0;
}

void ring_publish(struct ring *r)
{
	uint64_t write = r->prod_priv.write;
	uint64_t depth;

	if (write == LOAD(&r->prod.tail))
		return;
	/* Depth as the producer knows it (acked may be further on). */
	depth = write - r->prod_priv.acked_cache;
	if (depth > r->prod.high_water)
		STORE(&r->prod.high_water, depth);
	STORE(&r->prod.records, r->prod_priv.records);
	STORE(&r->prod.bytes, r->prod_priv.bytes);
	STORE_REL(&r->prod.tail, write);
	ring_wake(&r->data_wq);
}

int ring_reserve(struct ring *r, uint64_t seq, size_t key_len, size_t payload_len,
		 struct ring_slot *slot)
{
	uint64_t size = checked_size(r, key_len, payload_len);
	uint64_t pos;

	if (size == 0)
		return -EMSGSIZE;
	if (!has_room(r, size))
		return -EAGAIN;
	pos = place(r, seq, key_len, payload_len, size);
	slot->pos = pos;
	slot->key = r->data + (pos & r->consts.mask) + RING_HDR_SIZE;
	slot->payload = slot->key + key_len;
	return 0;
}

void ring_commit(struct ring *r, const struct ring_slot *slot)
{
	const struct rec_hdr *h = (const struct rec_hdr *)(r->data + (slot->pos & r->consts.mask));

	advance(r, slot->pos, align_up(h->len));
	ring_publish(r);
}

static int space_ready(struct ring *r, uint64_t size)
{
	return has_room(r, size);
}

int ring_wait_space(struct ring *r, size_t key_len, size_t payload_len, int timeout_ms)
{
	uint64_t size = checked_size(r, key_len, payload_len);

	if (size == 0)
		return -EMSGSIZE;
	if (has_room(r, size))
		return 0;
	/* The consumer can only free what it can see. */
	ring_publish(r);
	return ring_wait(r, &r->space_wq, space_ready, size, timeout_ms, &r->prod.waits);
}

int ring_push(struct ring *r, uint64_t seq, const void *key, size_t key_len, const void *payload,
	      size_t payload_len)
{
	int rc;

	while ((rc = ring_put(r, seq, key, key_len, payload, payload_len)) == -EAGAIN) {
		rc = ring_wait_space(r, key_len, payload_len, -1);
		if (rc < 0)
			return rc;
	}
	if (rc == 0)
		ring_publish(r);
	return rc;
}

void ring_close(struct ring *r)
{
	ring_publish(r);
	STORE_REL(&r->prod.closed, 1);
	ring_wake(&r->data_wq);
}

int ring_drained(const struct ring *r)
{
	uint64_t acked = LOAD_ACQ(&r->cons.acked);

	return acked == LOAD_ACQ(&r->prod.tail);
}

/* ---- consumer ---- */

size_t ring_peek(struct ring *r, struct ring_rec *out, size_t max)
{
	uint64_t read = r->cons_priv.read;
	uint64_t tail = r->cons_priv.tail_cache;
	int reloaded = 0;
	size_t n = 0;

	while (n < max) {
		const struct rec_hdr *h;

		if (read == tail) {
			/* Look at the shared tail once per call, and only
			 * when what we knew of is used up. */
			if (reloaded)
				break;
			tail = LOAD_ACQ(&r->prod.tail);
			r->cons_priv.tail_cache = tail;
			reloaded = 1;
			continue;
		}
		h = (const struct rec_hdr *)(r->data + (read & r->consts.mask));
		if (h->flags & REC_PAD) {
			read += h->len;
			continue;
		}
		out[n].seq = h->seq;
		out[n].key = (const char *)(h + 1);
		out[n].payload = out[n].key + h->key_len;
		out[n].key_len = h->key_len;
		out[n].payload_len = h->len - RING_HDR_SIZE - h->key_len;
		read += align_up(h->len);
		out[n].end = read;
		n++;
	}
	r->cons_priv.read = read;
	return n;
}

/* 1 when a record is readable, -EPIPE when closed and all read, else 0. */
static int data_ready(struct ring *r, uint64_t unused)
{
	uint32_t closed;

	(void)unused;
	if (r->cons_priv.read != r->cons_priv.tail_cache)
		return 1;
	/* closed first: once it is set, the tail loaded after it is final. */
	closed = LOAD_ACQ(&r->prod.closed);
	r->cons_priv.tail_cache = LOAD_ACQ(&r->prod.tail);
	if (r->cons_priv.read != r->cons_priv.tail_cache)
		return 1;
	return closed ? -EPIPE : 0;
}

int ring_wait_data(struct ring *r, int timeout_ms)
{
	return ring_wait(r, &r->data_wq, data_ready, 0, timeout_ms, &r->cons.waits);
}

void ring_ack(struct ring *r, uint64_t up_to)
{
	/* Never backwards, never past what was read. */
	if (up_to <= LOAD(&r->cons.acked) || up_to > r->cons_priv.read)
		return;
	STORE_REL(&r->cons.acked, up_to);
	ring_wake(&r->space_wq);
}

void ring_rewind(struct ring *r)
{
	r->cons_priv.read = LOAD_ACQ(&r->cons.acked);
	r->cons_priv.tail_cache = LOAD_ACQ(&r->prod.tail);
}

/* ---- anyone ---- */

void ring_stats(const struct ring *r, struct ring_stats *st)
{
	/* acked before tail, so that depth can never come out negative. */
	st->acked = LOAD_ACQ(&r->cons.acked);
	st->tail = LOAD_ACQ(&r->prod.tail);
	st->capacity = r->consts.capacity;
	st->depth = st->tail - st->acked;
	st->high_water = LOAD(&r->prod.high_water);
	st->records = LOAD(&r->prod.records);
	st->bytes = LOAD(&r->prod.bytes);
	st->producer_waits = LOAD(&r->prod.waits);
	st->consumer_waits = LOAD(&r->cons.waits);
}

/* ---- producer: the watermark ---- */

/* The seq of the first record in [pos, end), past padding. */
static int first_seq(const struct ring *r, uint64_t pos, uint64_t end, uint64_t *seq)
{
	while (pos < end) {
		const struct rec_hdr *h =
		    (const struct rec_hdr *)(r->data + (pos & r->consts.mask));
		if (h->flags & REC_PAD) {
			pos += h->len;
			continue;
		}
		*seq = h->seq;
		return 0;
	}
	return -ENOENT;
}

int ring_seq_at(const struct ring *r, uint64_t pos, uint64_t *seq)
{
	return first_seq(r, pos, LOAD_ACQ(&r->prod.tail), seq);
}

int ring_find_seq(const struct ring *r, uint64_t from, uint64_t min_seq, uint64_t *pos,
		  uint64_t *seq)
{
	uint64_t at = from, end = r->prod_priv.write;
	while (at < end) {
		const struct rec_hdr *h = (const struct rec_hdr *)(r->data + (at & r->consts.mask));
		if (!(h->flags & REC_PAD) && h->seq >= min_seq) {
			*pos = at;
			*seq = h->seq;
			return 0;
		}
		at += h->flags & REC_PAD ? h->len : align_up(h->len);
	}
	*pos = end;
	return -ENOENT;
}

uint64_t ring_write_pos(const struct ring *r)
{
	return r->prod_priv.write;
}

uint64_t ring_acked_pos(const struct ring *r)
{
	return LOAD_ACQ(&r->cons.acked);
}

int ring_oldest_seq(const struct ring *r, uint64_t *seq)
{
	/* Published or not: both are ours. */
	return first_seq(r, LOAD_ACQ(&r->cons.acked), r->prod_priv.write, seq);
}
