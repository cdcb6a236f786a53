/* partition.h - which partition a key belongs to: Kafka's default
 * partitioner, so a key lands on the same partition number here and in
 * Kafka: partition = (murmur2(key) & 0x7fffffff) % partitions. */
#ifndef RM_PARTITION_H
#define RM_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/* MurmurHash2, 32-bit, seed 0x9747b28c, as Kafka's Utils.murmur2 computes it
 * (little-endian 4-byte blocks, signed-byte tail handling as in Java). */
uint32_t murmur2(const void *data, size_t len);

/* The partition of `key` among `partitions` (>= 1). */
unsigned partition_of(const void *key, size_t len, unsigned partitions);

#endif
