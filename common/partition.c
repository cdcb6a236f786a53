/* partition.c - Kafka's default partitioner: MurmurHash2 exactly as
 * org.apache.kafka.common.utils.Utils.murmur2 computes it, so that a key gets
 * the same partition number here as in a Kafka topic with as many partitions.
 *
 * Java does the arithmetic on signed 32-bit ints with wrap-around and uses
 * `>>>` for shifts; unsigned 32-bit arithmetic in C gives the same bits. The
 * tail bytes are Java bytes masked with 0xff, i.e. plain unsigned bytes. */
#include "partition.h"

#define MURMUR2_SEED 0x9747b28cu
#define MURMUR2_M 0x5bd1e995u
#define MURMUR2_R 24

/* Little-endian load, byte by byte: no alignment or host-order assumption. */
static inline uint32_t load_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t murmur2(const void *data, size_t len)
{
	const unsigned char *p = data;
	/* Kafka xors the seed with the Java int length; keys are short. */
	uint32_t h = MURMUR2_SEED ^ (uint32_t)len;
	size_t blocks = len / 4;

	for (size_t i = 0; i < blocks; i++) {
		uint32_t k = load_le32(p + 4 * i);

		k *= MURMUR2_M;
		k ^= k >> MURMUR2_R;
		k *= MURMUR2_M;
		h *= MURMUR2_M;
		h ^= k;
	}

	const unsigned char *tail = p + 4 * blocks;

	switch (len & 3) {
	case 3:
		h ^= (uint32_t)tail[2] << 16;
		/* fall through */
	case 2:
		h ^= (uint32_t)tail[1] << 8;
		/* fall through */
	case 1:
		h ^= tail[0];
		h *= MURMUR2_M;
	}

	h ^= h >> 13;
	h *= MURMUR2_M;
	h ^= h >> 15;
	return h;
}

unsigned partition_of(const void *key, size_t len, unsigned partitions)
{
	/* Kafka's toPositive(): clear the sign bit rather than abs(), so that
	 * INT_MIN maps to 0 and not to a negative number. */
	return (murmur2(key, len) & 0x7fffffffu) % partitions;
}
