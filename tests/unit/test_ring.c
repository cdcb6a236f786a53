/* test_ring.c - tests for common/ring.c: record layout and wrap-around, the
 * producer and consumer contracts, waiting and wake-ups, and two processes
 * sharing one ring (a stress run, a ping-pong that must never lose a wake-up,
 * and a consumer killed mid-batch).
 *
 * Children of fork() never call cmocka's assertions (they longjmp into the
 * parent's state); they report through their exit status and a pipe.
 *
 * RING_STRESS_RECORDS overrides the record count of the stress test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"

#define SMALL_CAP 4096u
#define WAIT_MS 10000 /* a wait this long means a lost wake-up */

/* ---- helpers ---- */

/* Test bytes: record `seq` carries pattern(seq, i) at byte i, salted so that
 * key and payload differ. */
static uint8_t pattern(uint64_t seq, size_t i, unsigned salt)
{
	return (uint8_t)(seq * 131 + i * 7 + salt);
}

static void fill(char *buf, size_t len, uint64_t seq, unsigned salt)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)pattern(seq, i, salt);
}

static int matches(const char *buf, size_t len, uint64_t seq, unsigned salt)
{
	for (size_t i = 0; i < len; i++)
		if ((uint8_t)buf[i] != pattern(seq, i, salt))
			return 0;
	return 1;
}

/* Put one patterned record; returns what ring_put returned. */
static int put_rec(struct ring *r, uint64_t seq, size_t key_len, size_t payload_len)
{
	static char key[RING_KEY_MAX + 1];
	static char payload[1 << 20];

	assert_true(key_len <= sizeof(key) && payload_len <= sizeof(payload));
	fill(key, key_len, seq, 1);
	fill(payload, payload_len, seq, 2);
	return ring_put(r, seq, key, key_len, payload, payload_len);
}

static void check_rec(const struct ring_rec *rec, uint64_t seq, size_t key_len, size_t payload_len)
{
	assert_int_equal(rec->seq, seq);
	assert_int_equal(rec->key_len, key_len);
	assert_int_equal(rec->payload_len, payload_len);
	assert_true(matches(rec->key, key_len, seq, 1));
	assert_true(matches(rec->payload, payload_len, seq, 2));
	assert_int_equal((uintptr_t)rec->key % RING_ALIGN, 0);
}

static struct ring *make_ring(size_t capacity)
{
	struct ring *r = ring_create(capacity);

	assert_non_null(r);
	return r;
}

static struct ring_stats stats_of(struct ring *r)
{
	struct ring_stats st;

	ring_stats(r, &st);
	return st;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reap a child and return its exit status, or 128 + signal. */
static int reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* Busy-wait: unlike nanosleep, no timer slack, so short delays stay short. */
static void spin_us(unsigned us)
{
	double end = now_ms() + us / 1e3;

	while (now_ms() < end)
		;
}

/* xorshift64: the same sequence in producer and consumer. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- geometry ---- */

static void test_sizes_and_init(void **state)
{
	static char mem[8192 + 1024] __attribute__((aligned(128)));
	struct ring *r;

	(void)state;
	assert_int_equal(ring_footprint(0), 0);
	assert_int_equal(ring_footprint(2048), 0);
	assert_int_equal(ring_footprint(6000), 0);
	assert_int_equal(ring_footprint((size_t)RING_MAX_CAPACITY * 2), 0);
	assert_true(ring_footprint(4096) > 4096);
	assert_int_equal(ring_record_size(1, 0), 24);
	assert_int_equal(ring_record_size(1, 7), 24);
	assert_int_equal(ring_record_size(1, 8), 32);
	assert_int_equal(ring_record_size(8, 8), 32);

	errno = 0;
	assert_null(ring_init(mem + 8, 4096));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(ring_init(mem, 5000));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(ring_create(1000));
	assert_int_equal(errno, EINVAL);

	/* A ring in caller memory works, whatever the memory held. */
	memset(mem, 0xa5, sizeof(mem));
	assert_true(ring_footprint(8192) <= sizeof(mem));
	r = ring_init(mem, 8192);
	assert_non_null(r);
	assert_int_equal(ring_max_record(r), 8192 / 4 - RING_HDR_SIZE);
	assert_int_equal(stats_of(r).capacity, 8192);
	assert_int_equal(stats_of(r).tail, 0);
	assert_int_equal(put_rec(r, 7, 3, 5), 0);
	ring_publish(r);
	struct ring_rec rec;
	assert_int_equal(ring_peek(r, &rec, 1), 1);
	check_rec(&rec, 7, 3, 5);
	ring_destroy(r); /* not ours to unmap: must be a no-op */
	assert_int_equal(stats_of(r).records, 1);
}

/* Fill a fresh ring up to `offset` with consumed, acked records. */
static void advance_to(struct ring *r, uint64_t offset, uint64_t *seq)
{
	uint64_t max = ring_max_record(r) + RING_HDR_SIZE;
	uint64_t rem = offset;
	struct ring_rec rec;

	while (rem > 0) {
		uint64_t take = rem < max ? rem : max;

		if (rem - take > 0 && rem - take < 24)
			take = rem - 24; /* leave room for a minimal record */
		assert_int_equal(put_rec(r, *seq, 1, take - 17), 0);
		ring_publish(r);
		assert_int_equal(ring_peek(r, &rec, 1), 1);
		assert_int_equal(rec.seq, *seq);
		ring_ack(r, rec.end);
		(*seq)++;
		rem -= take;
	}
	assert_int_equal(stats_of(r).tail, offset);
}

/* For every 8-byte distance P from the write position to the end, a record of
 * size P fits exactly and one of P + 8 needs a P-byte padding record first
 * (P = 8 is the padding record that has room for its first word only). */
static void test_wrap_every_alignment(void **state)
{
	uint64_t max = SMALL_CAP / 4;

	(void)state;
	for (uint64_t pad = 8; pad < max; pad += 8) {
		for (int exact = 0; exact <= 1; exact++) {
			/* exact: fills the space to the end; else crosses it */
			uint64_t size = exact ? pad : (pad + 8 < 24 ? 24 : pad + 8);
			/* vary the key/payload split and the alignment slack */
			uint64_t body = size - 16 - (pad / 8) % 8;
			size_t key_len = 1 + (pad / 8) % (body < 40 ? body : 40);
			size_t payload_len = body - key_len;
			uint64_t end0 = exact ? SMALL_CAP : SMALL_CAP + size;
			struct ring *r;
			struct ring_rec rec[2];
			uint64_t seq = 0;

			if (size < 24)
				continue; /* no record is that small */
			r = make_ring(SMALL_CAP);
			advance_to(r, SMALL_CAP - pad, &seq);
			assert_int_equal(ring_record_size(key_len, payload_len), size);
			assert_int_equal(put_rec(r, 1000, key_len, payload_len), 0);
			/* and an ordinary one after it */
			assert_int_equal(put_rec(r, 1001, 2, 3), 0);
			ring_publish(r);
			assert_int_equal(ring_peek(r, rec, 2), 2);
			check_rec(&rec[0], 1000, key_len, payload_len);
			check_rec(&rec[1], 1001, 2, 3);
			assert_int_equal(rec[0].end, end0);
			assert_int_equal(rec[1].end, end0 + 24);
			assert_int_equal(stats_of(r).tail, end0 + 24);
			ring_ack(r, rec[1].end);
			assert_true(ring_drained(r));
			ring_destroy(r);
		}
	}
}

/* Random sizes through a small ring for many laps: contents survive every
 * wrap and the consumer sees every record in order. */
static void test_wrap_random_laps(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	uint64_t s = 42, next = 0, expect = 0;
	struct ring_rec rec[16];

	(void)state;
	while (expect < 20000) {
		uint64_t s2 = s;
		size_t key_len = 1 + rnd(&s) % 40;
		size_t payload_len = rnd(&s) % 900;
		int rc = put_rec(r, next, key_len, payload_len);

		if (rc == 0) {
			next++;
			continue;
		}
		assert_int_equal(rc, -EAGAIN);
		s = s2; /* retry the same sizes after draining */
		ring_publish(r);
		size_t n = ring_peek(r, rec, 16);
		assert_true(n > 0);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(rec[i].seq, expect);
			assert_true(matches(rec[i].key, rec[i].key_len, expect, 1));
			assert_true(matches(rec[i].payload, rec[i].payload_len, expect, 2));
			expect++;
		}
		ring_ack(r, rec[n - 1].end);
	}
	assert_true(stats_of(r).tail > 100 * SMALL_CAP);
	ring_destroy(r);
}

/* ---- producer contract ---- */

static void test_full_ring(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	size_t big = ring_max_record(r) - 1; /* key 1: 1024-byte records */
	struct ring_rec rec[8];
	struct ring_slot slot;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(put_rec(r, i, 1, big), 0);
	assert_int_equal(put_rec(r, 4, 1, big), -EAGAIN);
	assert_int_equal(put_rec(r, 4, 1, 0), -EAGAIN);
	assert_int_equal(ring_reserve(r, 4, 1, 0, &slot), -EAGAIN);
	assert_int_equal(ring_wait_space(r, 1, 0, 0), -ETIMEDOUT);
	ring_publish(r);
	assert_int_equal(stats_of(r).tail, SMALL_CAP);
	assert_int_equal(stats_of(r).records, 4);

	/* Nothing the refused puts did reached the buffer. */
	assert_int_equal(ring_peek(r, rec, 8), 4);
	for (int i = 0; i < 4; i++)
		check_rec(&rec[i], i, 1, big);

	/* Reading frees nothing; acking does. */
	assert_int_equal(put_rec(r, 4, 1, big), -EAGAIN);
	ring_ack(r, rec[0].end);
	assert_int_equal(ring_wait_space(r, 1, big, 0), 0);
	assert_int_equal(put_rec(r, 4, 1, big), 0);
	assert_int_equal(put_rec(r, 5, 1, 0), -EAGAIN);
	ring_publish(r);
	assert_int_equal(ring_peek(r, rec, 8), 1);
	check_rec(&rec[0], 4, 1, big);
	ring_destroy(r);
}

static void test_oversized_record(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	size_t max = ring_max_record(r);
	struct ring_slot slot;
	struct ring_rec rec;

	(void)state;
	assert_int_equal(max, SMALL_CAP / 4 - RING_HDR_SIZE);
	assert_int_equal(put_rec(r, 1, 1, max), -EMSGSIZE);
	assert_int_equal(put_rec(r, 1, 10, max - 9), -EMSGSIZE);
	assert_int_equal(ring_reserve(r, 1, 1, max, &slot), -EMSGSIZE);
	assert_int_equal(ring_reserve(r, 1, 1, SIZE_MAX - 8, &slot), -EMSGSIZE);
	assert_int_equal(ring_wait_space(r, 1, max, -1), -EMSGSIZE);
	assert_int_equal(ring_push(r, 1, "k", 1, "", max), -EMSGSIZE);
	assert_int_equal(stats_of(r).records, 0);

	/* The largest allowed one goes through. */
	assert_int_equal(put_rec(r, 2, 10, max - 10), 0);
	ring_publish(r);
	assert_int_equal(ring_peek(r, &rec, 1), 1);
	check_rec(&rec, 2, 10, max - 10);
	assert_int_equal(rec.end, SMALL_CAP / 4);
	ring_destroy(r);
}

static void test_key_limits(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	struct ring_slot slot;
	struct ring_rec rec;

	(void)state;
	assert_int_equal(put_rec(r, 1, 0, 10), -EMSGSIZE);
	assert_int_equal(put_rec(r, 1, RING_KEY_MAX + 1, 10), -EMSGSIZE);
	assert_int_equal(ring_reserve(r, 1, 0, 10, &slot), -EMSGSIZE);
	assert_int_equal(ring_wait_space(r, 0, 10, 0), -EMSGSIZE);
	assert_int_equal(ring_push(r, 1, "", 0, "p", 1), -EMSGSIZE);
	assert_int_equal(put_rec(r, 2, RING_KEY_MAX, 0), 0);
	ring_publish(r);
	assert_int_equal(stats_of(r).records, 1);
	assert_int_equal(ring_peek(r, &rec, 1), 1);
	check_rec(&rec, 2, RING_KEY_MAX, 0);
	ring_destroy(r);
}

static void test_batch_publish(void **state)
{
	struct ring *r = make_ring(1 << 16);
	struct ring_rec rec[100];

	(void)state;
	for (int i = 0; i < 50; i++)
		assert_int_equal(put_rec(r, 100 + i, 1 + i % 9, i * 3), 0);
	/* Nothing is visible before the publish. */
	assert_int_equal(ring_peek(r, rec, 100), 0);
	assert_int_equal(ring_wait_data(r, 0), -ETIMEDOUT);
	assert_int_equal(stats_of(r).tail, 0);
	assert_int_equal(stats_of(r).records, 0);
	ring_publish(r);
	assert_int_equal(ring_wait_data(r, 0), 0);
	/* A batch is capped by max and continues where it stopped. */
	assert_int_equal(ring_peek(r, rec, 20), 20);
	assert_int_equal(ring_peek(r, rec + 20, 100), 30);
	assert_int_equal(ring_peek(r, rec, 100), 0);
	ring_rewind(r);
	assert_int_equal(ring_peek(r, rec, 100), 50);
	for (int i = 0; i < 50; i++)
		check_rec(&rec[i], 100 + i, 1 + i % 9, i * 3);
	ring_ack(r, rec[49].end);
	assert_true(ring_drained(r));
	ring_publish(r); /* nothing new: harmless */
	assert_int_equal(stats_of(r).records, 50);
	ring_destroy(r);
}

static void test_reserve_commit(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	struct ring_slot slot;
	struct ring_rec rec[4];

	(void)state;
	assert_int_equal(put_rec(r, 1, 4, 4), 0);
	assert_int_equal(ring_reserve(r, 2, 3, 11, &slot), 0);
	fill(slot.key, 3, 2, 1);
	fill(slot.payload, 11, 2, 2);
	assert_int_equal(ring_peek(r, rec, 4), 0);
	ring_commit(r, &slot); /* publishes the ring_put record too */
	assert_int_equal(ring_peek(r, rec, 4), 2);
	check_rec(&rec[0], 1, 4, 4);
	check_rec(&rec[1], 2, 3, 11);

	/* A reservation that is never committed is simply overwritten. */
	assert_int_equal(ring_reserve(r, 3, 5, 100, &slot), 0);
	memset(slot.key, 'x', 5);
	assert_int_equal(put_rec(r, 4, 2, 2), 0);
	ring_publish(r);
	assert_int_equal(ring_peek(r, rec, 4), 1);
	check_rec(&rec[0], 4, 2, 2);
	assert_int_equal(stats_of(r).records, 3);
	ring_destroy(r);
}

/* The producer's low watermark: oldest record not acked, published or not,
 * looking past a padding record at the wrap. */
static void test_oldest_seq(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	struct ring_rec rec[4];
	uint64_t seq = 0, oldest = 0;

	(void)state;
	assert_int_equal(ring_oldest_seq(r, &oldest), -ENOENT);
	advance_to(r, SMALL_CAP - 16, &seq);
	assert_int_equal(ring_oldest_seq(r, &oldest), -ENOENT);
	assert_int_equal(put_rec(r, 500, 1, 15), 0); /* behind 16 bytes of pad */
	assert_int_equal(ring_oldest_seq(r, &oldest), 0);
	assert_int_equal(oldest, 500);
	assert_int_equal(put_rec(r, 501, 1, 1), 0);
	ring_publish(r);
	assert_int_equal(ring_peek(r, rec, 4), 2);
	ring_ack(r, rec[0].end);
	assert_int_equal(ring_oldest_seq(r, &oldest), 0);
	assert_int_equal(oldest, 501);
	ring_ack(r, rec[1].end);
	assert_int_equal(ring_oldest_seq(r, &oldest), -ENOENT);
	ring_destroy(r);
}

/* ring_seq_at: the seq of the first published record at a position, past
 * padding; nothing there until it is published. ring_write_pos and
 * ring_acked_pos follow put and ack. */
static void test_seq_at(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	struct ring_rec rec[4];
	uint64_t seq = 0, at = 0;

	(void)state;
	advance_to(r, SMALL_CAP - 16, &seq);
	uint64_t pos = ring_write_pos(r);
	assert_int_equal(ring_acked_pos(r), pos);
	assert_int_equal(ring_seq_at(r, pos, &at), -ENOENT);
	assert_int_equal(put_rec(r, 700, 1, 15), 0);	     /* behind 16 bytes of pad */
	assert_int_equal(ring_seq_at(r, pos, &at), -ENOENT); /* not published */
	assert_int_equal(put_rec(r, 701, 1, 1), 0);
	ring_publish(r);
	assert_int_equal(ring_seq_at(r, pos, &at), 0);
	assert_int_equal(at, 700);
	assert_int_equal(ring_peek(r, rec, 4), 2);
	assert_int_equal(ring_write_pos(r), rec[1].end);
	assert_int_equal(ring_seq_at(r, rec[0].end, &at), 0);
	assert_int_equal(at, 701);
	assert_int_equal(ring_seq_at(r, rec[1].end, &at), -ENOENT);
	ring_ack(r, rec[0].end);
	assert_int_equal(ring_acked_pos(r), rec[0].end);
	ring_destroy(r);
}

/* ring_find_seq: the start of the first record at or after a position
 * whose seq is at least the one asked for, past padding (a rescale's cut
 * places its barrier there); -ENOENT and the write position when none. */
static void test_find_seq(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	struct ring_rec rec[4];
	uint64_t seq = 0, at = 0, pos = 0;

	(void)state;
	advance_to(r, SMALL_CAP - 16, &seq);
	uint64_t from = ring_write_pos(r);
	assert_int_equal(put_rec(r, 800, 1, 15), 0); /* behind 16 bytes of pad */
	assert_int_equal(put_rec(r, 805, 1, 1), 0);
	assert_int_equal(put_rec(r, 809, 1, 1), 0);
	ring_publish(r);
	assert_int_equal(ring_peek(r, rec, 4), 3);
	assert_int_equal(ring_find_seq(r, from, 0, &pos, &at), 0);
	assert_int_equal(at, 800);
	assert_int_equal(pos, from + 16); /* the record's start, not the pad's */
	assert_int_equal(ring_find_seq(r, from, 801, &pos, &at), 0);
	assert_int_equal(at, 805);
	assert_int_equal(pos, rec[0].end);
	assert_int_equal(ring_find_seq(r, rec[1].end, 805, &pos, &at), 0);
	assert_int_equal(at, 809);
	assert_int_equal(pos, rec[1].end);
	assert_int_equal(ring_find_seq(r, from, 810, &pos, &at), -ENOENT);
	assert_int_equal(pos, ring_write_pos(r));
	assert_int_equal(pos, rec[2].end);
	ring_destroy(r);
}

/* ---- consumer contract ---- */

static void test_rewind_redelivers(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	struct ring_rec rec[10];

	(void)state;
	for (int i = 0; i < 10; i++)
		assert_int_equal(put_rec(r, i, 2, 10), 0);
	ring_publish(r);
	assert_int_equal(ring_peek(r, rec, 10), 10);
	ring_ack(r, rec[3].end);
	ring_ack(r, rec[1].end); /* backwards: ignored */
	assert_int_equal(stats_of(r).acked, rec[3].end);
	ring_rewind(r);
	assert_int_equal(ring_peek(r, rec, 10), 6);
	for (int i = 0; i < 6; i++)
		check_rec(&rec[i], 4 + i, 2, 10);
	/* Acking past what was read is refused. */
	ring_rewind(r);
	ring_ack(r, rec[5].end);
	assert_int_equal(stats_of(r).acked, rec[5].end - 6 * 32);
	assert_int_equal(ring_peek(r, rec, 10), 6);
	ring_ack(r, rec[5].end);
	assert_true(ring_drained(r));
	ring_rewind(r);
	assert_int_equal(ring_peek(r, rec, 10), 0);
	ring_destroy(r);
}

static void test_close_epipe(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	struct ring_rec rec[4];

	(void)state;
	assert_int_equal(ring_wait_data(r, 0), -ETIMEDOUT);
	for (int i = 0; i < 3; i++)
		assert_int_equal(put_rec(r, i, 1, 1), 0);
	ring_close(r); /* publishes the pending three */
	assert_int_equal(ring_wait_data(r, -1), 0);
	assert_int_equal(ring_peek(r, rec, 2), 2);
	assert_int_equal(ring_wait_data(r, -1), 0);
	assert_int_equal(ring_peek(r, rec + 2, 2), 1);
	/* All read (not yet acked): end of stream, without waiting. */
	assert_int_equal(ring_wait_data(r, -1), -EPIPE);
	assert_false(ring_drained(r));
	/* A consumer that restarts gets the unacked records again first. */
	ring_ack(r, rec[0].end);
	ring_rewind(r);
	assert_int_equal(ring_wait_data(r, 0), 0);
	assert_int_equal(ring_peek(r, rec, 4), 2);
	check_rec(&rec[0], 1, 1, 1);
	ring_ack(r, rec[1].end);
	assert_int_equal(ring_wait_data(r, 100), -EPIPE);
	assert_true(ring_drained(r));
	ring_destroy(r);
}

static void test_stats(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	struct ring_stats st;
	struct ring_rec rec[8];

	(void)state;
	st = stats_of(r);
	assert_int_equal(st.capacity, SMALL_CAP);
	assert_int_equal(st.depth + st.high_water + st.records + st.bytes, 0);
	assert_int_equal(st.producer_waits + st.consumer_waits, 0);

	assert_int_equal(put_rec(r, 1, 1, 7), 0);   /* 24 bytes */
	assert_int_equal(put_rec(r, 2, 8, 100), 0); /* 128 bytes */
	assert_int_equal(put_rec(r, 3, 3, 5), 0);   /* 24 bytes */
	ring_publish(r);
	st = stats_of(r);
	assert_int_equal(st.records, 3);
	assert_int_equal(st.bytes, 176);
	assert_int_equal(st.tail, 176);
	assert_int_equal(st.depth, 176);
	assert_int_equal(st.high_water, 176);
	assert_int_equal(st.acked, 0);

	assert_int_equal(ring_peek(r, rec, 8), 3);
	ring_ack(r, rec[1].end);
	st = stats_of(r);
	assert_int_equal(st.acked, 152);
	assert_int_equal(st.depth, 24);
	assert_int_equal(st.high_water, 176);

	ring_destroy(r);
}

/* Padding at the wrap is not counted as record bytes, but it moves tail. */
static void test_stats_padding(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	struct ring_stats st;
	uint64_t seq = 0;

	(void)state;
	advance_to(r, SMALL_CAP - 16, &seq);
	assert_int_equal(stats_of(r).bytes, SMALL_CAP - 16);
	assert_int_equal(put_rec(r, 99, 1, 15), 0); /* 32 bytes, 16 of pad */
	ring_publish(r);
	st = stats_of(r);
	assert_int_equal(st.bytes, SMALL_CAP - 16 + 32);
	assert_int_equal(st.records, seq + 1);
	assert_int_equal(st.tail, SMALL_CAP + 32);
	assert_int_equal(st.depth, 48);
	ring_destroy(r);
}

/* ---- waiting ---- */

static void test_wait_timeouts(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	size_t big = ring_max_record(r) - 1;
	double t0;

	(void)state;
	t0 = now_ms();
	assert_int_equal(ring_wait_data(r, 60), -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 59.0);
	assert_true(stats_of(r).consumer_waits >= 1);

	for (int i = 0; i < 4; i++)
		assert_int_equal(put_rec(r, i, 1, big), 0);
	t0 = now_ms();
	assert_int_equal(ring_wait_space(r, 1, 0, 60), -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 59.0);
	assert_true(stats_of(r).producer_waits >= 1);
	/* It published what was pending, so a consumer could make room. */
	assert_int_equal(stats_of(r).records, 4);
	ring_destroy(r);
}

static volatile sig_atomic_t got_alarm;

static void on_alarm(int sig)
{
	(void)sig;
	got_alarm = 1;
}

/* A signal wakes a sleeper with -EINTR so the caller can look at its flags
 * (the handler must be installed without SA_RESTART). */
static void test_wait_eintr(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	struct sigaction sa, old;
	/* Repeating: a signal that lands while the waiter still spins is
	 * noticed only in the sleep (ring.h), so keep signalling until one
	 * finds it asleep; a loaded machine can stretch the spin. */
	struct itimerval it = {.it_value = {.tv_usec = 30000}, .it_interval = {.tv_usec = 30000}};
	struct itimerval off = {{0, 0}, {0, 0}};

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	got_alarm = 0;
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	assert_int_equal(ring_wait_data(r, -1), -EINTR);
	assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
	assert_true(got_alarm);

	for (int i = 0; i < 4; i++)
		assert_int_equal(put_rec(r, i, 1, ring_max_record(r) - 1), 0);
	got_alarm = 0;
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	assert_int_equal(ring_push(r, 9, "k", 1, "p", 1), -EINTR);
	assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
	assert_true(got_alarm);
	assert_int_equal(stats_of(r).records, 4); /* nothing was written */
	assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
	ring_destroy(r);
}

/* ---- two processes ---- */

/* The stress test's record sizes: mostly small, now and then large. */
struct stress_gen {
	uint64_t rng;
	const char *src; /* record bytes are copied from here */
};

#define STRESS_SRC (1u << 16)
#define STRESS_MAX_PAYLOAD 6000u

static void stress_shape(struct stress_gen *g, uint64_t seq, size_t *key_len, size_t *payload_len,
			 const char **key, const char **payload)
{
	uint64_t x = rnd(&g->rng);

	*key_len = 1 + x % 48;
	*payload_len = (x >> 8) % 128;
	if ((x >> 20) % 64 == 0)
		*payload_len = (x >> 26) % STRESS_MAX_PAYLOAD;
	*key = g->src + (seq * 2654435761u) % STRESS_SRC;
	*payload = g->src + (seq * 40503u + 977) % STRESS_SRC;
}

static uint64_t sum_bytes(uint64_t sum, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		sum += (uint8_t)p[i];
	return sum;
}

static char *stress_source(void)
{
	char *src = malloc(STRESS_SRC + STRESS_MAX_PAYLOAD + RING_KEY_MAX);
	uint64_t s = 7;

	assert_non_null(src);
	for (size_t i = 0; i < STRESS_SRC + STRESS_MAX_PAYLOAD + RING_KEY_MAX; i++)
		src[i] = (char)rnd(&s);
	return src;
}

/* Consumer side: every seq once, in order, with the expected sizes and
 * bytes. Exit status: 0 ok, 1 wait failed, 2 order, 3 shape, 4 bytes,
 * 5 count, 6 report. */
static int stress_consume(struct ring *r, const char *src, uint64_t total, int report_fd)
{
	static struct ring_rec rec[4096];
	struct stress_gen g = {99, src};
	uint64_t expect = 0, sum = 0, batch_rng = 5;
	int rc;

	while ((rc = ring_wait_data(r, WAIT_MS)) == 0) {
		size_t n = ring_peek(r, rec, 1 + rnd(&batch_rng) % 4096);

		for (size_t i = 0; i < n; i++) {
			size_t kl, pl;
			const char *k, *p;

			if (rec[i].seq != expect)
				return 2;
			stress_shape(&g, expect, &kl, &pl, &k, &p);
			if (rec[i].key_len != kl || rec[i].payload_len != pl)
				return 3;
			if (memcmp(rec[i].key, k, kl) || memcmp(rec[i].payload, p, pl))
				return 4;
			sum = sum_bytes(sum_bytes(sum, rec[i].key, kl), rec[i].payload, pl);
			expect++;
			if (i == n / 2 && rnd(&batch_rng) % 8 == 0)
				ring_ack(r, rec[i].end); /* mid-batch now and then */
		}
		if (n)
			ring_ack(r, rec[n - 1].end);
	}
	if (rc != -EPIPE)
		return 1;
	if (expect != total)
		return 5;
	if (write(report_fd, &sum, sizeof(sum)) != sizeof(sum))
		return 6;
	return 0;
}

/* Producer side: batches of ring_put, single ring_push, and reserve/commit,
 * mixed at random. Returns the checksum of everything sent. */
static uint64_t stress_produce(struct ring *r, const char *src, uint64_t total)
{
	struct stress_gen g = {99, src};
	uint64_t seq = 0, sum = 0, mode_rng = 3;

	while (seq < total) {
		uint64_t mode = rnd(&mode_rng);
		uint64_t batch = 1 + (mode >> 4) % 256;

		for (; batch > 0 && seq < total; batch--, seq++) {
			size_t kl, pl;
			const char *k, *p;
			struct ring_slot slot;

			stress_shape(&g, seq, &kl, &pl, &k, &p);
			sum = sum_bytes(sum_bytes(sum, k, kl), p, pl);
			if (mode % 4 == 0) {
				assert_int_equal(ring_push(r, seq, k, kl, p, pl), 0);
				continue;
			}
			if (mode % 4 == 1) {
				while (ring_reserve(r, seq, kl, pl, &slot) == -EAGAIN)
					assert_int_equal(ring_wait_space(r, kl, pl, WAIT_MS), 0);
				memcpy(slot.key, k, kl);
				memcpy(slot.payload, p, pl);
				ring_commit(r, &slot);
				continue;
			}
			while (ring_put(r, seq, k, kl, p, pl) == -EAGAIN)
				assert_int_equal(ring_wait_space(r, kl, pl, WAIT_MS), 0);
		}
		ring_publish(r);
	}
	ring_close(r);
	return sum;
}

static void test_two_process_stress(void **state)
{
	const char *env = getenv("RING_STRESS_RECORDS");
	uint64_t total = 5000000; /* about a second, under ASan too */
	struct ring *r = make_ring(1 << 16);
	char *src = stress_source();
	uint64_t sent_sum, got_sum = 0;
	int fds[2];
	pid_t pid;

	(void)state;
	if (env)
		total = strtoull(env, NULL, 10);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		_exit(stress_consume(r, src, total, fds[1]));
	}
	close(fds[1]);
	sent_sum = stress_produce(r, src, total);
	assert_int_equal(reap(pid), 0);
	assert_int_equal(read(fds[0], &got_sum, sizeof(got_sum)), sizeof(got_sum));
	assert_int_equal(got_sum, sent_sum);
	assert_true(ring_drained(r));
	assert_int_equal(stats_of(r).records, total);
	close(fds[0]);
	free(src);
	ring_destroy(r);
}

/* Ping-pong over two tiny rings, with delays chosen so that each side often
 * has to sleep: sometimes on an empty ring, sometimes (the parent) on a full
 * one. A lost wake-up turns into a WAIT_MS timeout and a failure, and alarm()
 * is the last resort against a hang. */
#define PP_ROUNDS 2000
#define PP_MAX_BURST 7 /* 1008-byte records: four fill a 4096-byte ring */

static void pp_delay(uint64_t *s)
{
	uint64_t x = rnd(s) % 64;

	if (x == 0)
		spin_us(2000); /* far past the spin phase: must sleep */
	else if (x < 48)
		spin_us(x * 2); /* around the spin phase: races the sleep */
}

/* Child: answer each burst on `down` with one record on `up`. */
static int pp_child(struct ring *down, struct ring *up)
{
	uint64_t s = 11;
	struct ring_rec rec;

	for (uint64_t round = 0; round < PP_ROUNDS; round++) {
		uint64_t burst = 1, got = 0;

		while (got < burst) {
			pp_delay(&s);
			if (ring_wait_data(down, WAIT_MS) != 0)
				return 1;
			if (ring_peek(down, &rec, 1) != 1)
				return 2;
			if (rec.seq != round * PP_MAX_BURST + got)
				return 3;
			burst = (uint8_t)rec.payload[0];
			got++;
			ring_ack(down, rec.end);
		}
		pp_delay(&s);
		if (ring_push(up, round, "r", 1, "", 0) != 0)
			return 4;
	}
	return 0;
}

static void test_lost_wakeup(void **state)
{
	struct ring *down = make_ring(SMALL_CAP), *up = make_ring(SMALL_CAP);
	static char payload[SMALL_CAP];
	size_t big = ring_max_record(down) - 1;
	uint64_t s = 23;
	struct ring_rec rec;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(120);
		_exit(pp_child(down, up));
	}
	alarm(120);
	for (uint64_t round = 0; round < PP_ROUNDS; round++) {
		uint64_t burst = 1 + rnd(&s) % PP_MAX_BURST;

		payload[0] = (char)burst;
		for (uint64_t i = 0; i < burst; i++) {
			while (ring_put(down, round * PP_MAX_BURST + i, "k", 1, payload, big) ==
			       -EAGAIN)
				assert_int_equal(ring_wait_space(down, 1, big, WAIT_MS), 0);
			if (rnd(&s) % 2)
				ring_publish(down);
		}
		ring_publish(down);
		pp_delay(&s);
		assert_int_equal(ring_wait_data(up, WAIT_MS), 0);
		assert_int_equal(ring_peek(up, &rec, 1), 1);
		assert_int_equal(rec.seq, round);
		ring_ack(up, rec.end);
	}
	alarm(0);
	assert_int_equal(reap(pid), 0);
	/* How often each side slept depends on the scheduler (a loaded machine
	 * may never let a spin run out); test_sleep_paths proves that both
	 * sleeps happen and are woken. */
	ring_destroy(down);
	ring_destroy(up);
}

/* Each side sleeps on the futex for sure (the other waits 200 ms, far past
 * the spin phase, with usleep rather than a spin) and is woken in time. */
static void test_sleep_paths(void **state)
{
	struct ring *r = make_ring(SMALL_CAP);
	static char payload[SMALL_CAP];
	size_t big = ring_max_record(r) - 1;
	struct ring_rec rec[8];
	pid_t pid;

	(void)state;
	/* consumer sleeps on an empty ring */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(30);
		_exit(ring_wait_data(r, 10000) == 0 && ring_peek(r, rec, 8) == 1 ? 0 : 1);
	}
	usleep(200000);
	assert_int_equal(ring_push(r, 1, "k", 1, "v", 1), 0);
	assert_int_equal(reap(pid), 0);
	assert_true(stats_of(r).consumer_waits > 0);
	ring_ack(r, stats_of(r).tail);

	/* producer sleeps on a full ring */
	while (ring_put(r, 2, "k", 1, payload, big) == 0)
		;
	ring_publish(r);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(30);
		usleep(200000);
		size_t n = ring_peek(r, rec, 8);
		ring_ack(r, rec[n - 1].end);
		_exit(n > 0 ? 0 : 1);
	}
	assert_int_equal(ring_wait_space(r, 1, big, 10000), 0);
	assert_int_equal(reap(pid), 0);
	assert_true(stats_of(r).producer_waits > 0);
	ring_destroy(r);
}

/* Shared between the crash test's processes. */
#define CRASH_RECORDS 30000u
#define CRASH_FIRST_ACKS 8000u

struct crash_board {
	uint64_t unacked_first, unacked_last; /* what the victim held */
	uint64_t rewound_first;		      /* first seq after rewind */
	uint8_t seen[CRASH_RECORDS];
};

static int crash_producer(struct ring *r)
{
	char payload[64];

	for (uint64_t seq = 0; seq < CRASH_RECORDS; seq++) {
		size_t len = seq % sizeof(payload);

		memset(payload, (int)seq, len);
		if (ring_push(r, seq, "key", 3, payload, len) != 0)
			return 1;
	}
	ring_close(r);
	return 0;
}

/* Victim: ack about CRASH_FIRST_ACKS records, then peek a batch, say so, and
 * wait to be killed without acking it. */
static int crash_victim(struct ring *r, struct crash_board *b, int fd)
{
	struct ring_rec rec[100];
	uint64_t acked = 0;
	size_t n;

	for (;;) {
		if (ring_wait_data(r, WAIT_MS) != 0)
			return 1;
		n = ring_peek(r, rec, acked < CRASH_FIRST_ACKS ? 100 : 50);
		for (size_t i = 0; i < n; i++)
			b->seen[rec[i].seq]++;
		if (acked >= CRASH_FIRST_ACKS)
			break;
		ring_ack(r, rec[n - 1].end);
		acked += n;
	}
	b->unacked_first = rec[0].seq;
	b->unacked_last = rec[n - 1].seq;
	if (write(fd, "x", 1) != 1)
		return 2;
	for (;;)
		pause();
}

static int crash_successor(struct ring *r, struct crash_board *b)
{
	struct ring_rec rec[256];
	int first = 1, rc;

	ring_rewind(r);
	while ((rc = ring_wait_data(r, WAIT_MS)) == 0) {
		size_t n = ring_peek(r, rec, 256);

		if (n && first)
			b->rewound_first = rec[0].seq;
		first = 0;
		for (size_t i = 0; i < n; i++)
			b->seen[rec[i].seq]++;
		if (n)
			ring_ack(r, rec[n - 1].end);
	}
	return rc == -EPIPE ? 0 : 1;
}

static pid_t fork_or_fail(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		alarm(60);
	return pid;
}

static void test_consumer_crash(void **state)
{
	struct ring *r = make_ring(1 << 16);
	struct crash_board *b;
	pid_t producer, victim, successor;
	int fds[2];
	char c;

	(void)state;
	b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(b != MAP_FAILED);
	assert_int_equal(pipe(fds), 0);
	if ((producer = fork_or_fail()) == 0)
		_exit(crash_producer(r));
	if ((victim = fork_or_fail()) == 0)
		_exit(crash_victim(r, b, fds[1]));
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(kill(victim, SIGKILL), 0);
	assert_int_equal(reap(victim), 128 + SIGKILL);
	if ((successor = fork_or_fail()) == 0)
		_exit(crash_successor(r, b));
	assert_int_equal(reap(successor), 0);
	assert_int_equal(reap(producer), 0);

	/* Nothing missing; only what the victim held came twice. */
	assert_true(b->unacked_first >= CRASH_FIRST_ACKS);
	assert_true(b->unacked_last >= b->unacked_first);
	assert_int_equal(b->rewound_first, b->unacked_first);
	for (uint64_t seq = 0; seq < CRASH_RECORDS; seq++) {
		int held = seq >= b->unacked_first && seq <= b->unacked_last;

		assert_int_equal(b->seen[seq], held ? 2 : 1);
	}
	assert_true(ring_drained(r));
	assert_int_equal(stats_of(r).records, CRASH_RECORDS);
	close(fds[0]);
	close(fds[1]);
	munmap(b, sizeof(*b));
	ring_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sizes_and_init),   cmocka_unit_test(test_seq_at),
	    cmocka_unit_test(test_find_seq),	     cmocka_unit_test(test_wrap_every_alignment),
	    cmocka_unit_test(test_wrap_random_laps), cmocka_unit_test(test_full_ring),
	    cmocka_unit_test(test_oversized_record), cmocka_unit_test(test_key_limits),
	    cmocka_unit_test(test_batch_publish),    cmocka_unit_test(test_reserve_commit),
	    cmocka_unit_test(test_oldest_seq),	     cmocka_unit_test(test_rewind_redelivers),
	    cmocka_unit_test(test_close_epipe),	     cmocka_unit_test(test_stats),
	    cmocka_unit_test(test_stats_padding),    cmocka_unit_test(test_wait_timeouts),
	    cmocka_unit_test(test_wait_eintr),	     cmocka_unit_test(test_two_process_stress),
	    cmocka_unit_test(test_lost_wakeup),	     cmocka_unit_test(test_sleep_paths),
	    cmocka_unit_test(test_consumer_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
