/* test_partition.c - murmur2 and partition_of agree with Kafka's
 * Utils.murmur2 and its default partitioner, bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "partition.h"

static int32_t murmur2_str(const char *s)
{
	return (int32_t)murmur2(s, strlen(s));
}

/* The cases of Kafka's UtilsTest.testMurmur2, as signed Java ints. They cover
 * every tail length (len % 4 = 0, 1, 2, 3) and a multi-block key. */
static void test_kafka_known_values(void **unused)
{
	(void)unused;
	assert_int_equal(murmur2_str("21"), -973932308);
	assert_int_equal(murmur2_str("foobar"), -790332482);
	assert_int_equal(murmur2_str("a-little-bit-long-string"), -985981536);
	assert_int_equal(murmur2_str("a-little-bit-longer-string"), -1486304829);
	assert_int_equal(murmur2_str("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
			 -58897971);
	assert_int_equal(murmur2_str("abc"), 479470107);
}

/* Bytes >= 0x80 are negative Java bytes; Kafka masks them with 0xff in the
 * tail and the blocks, so they must hash like unsigned bytes, and the hash
 * must not depend on the buffer's alignment. */
static void test_high_bytes_and_alignment(void **unused)
{
	(void)unused;
	unsigned char buf[16] = {0};
	const unsigned char key[7] = {0xff, 0x80, 0x7f, 0x01, 0xfe, 0x81, 0x00};
	uint32_t h = murmur2(key, sizeof(key));

	for (size_t off = 1; off < 5; off++) {
		memcpy(buf + off, key, sizeof(key));
		assert_int_equal(murmur2(buf + off, sizeof(key)), h);
	}
	/* Changing one high byte in the tail must change the hash. */
	memcpy(buf, key, sizeof(key));
	buf[5] = 0x82;
	assert_int_not_equal(murmur2(buf, sizeof(key)), h);
}

/* partition = (murmur2 & 0x7fffffff) % partitions.
 * murmur2("acct00000042") = -187848341, so its partition among 8 is
 * (2^31 - 187848341) % 8 = 1959635307 % 8 = 3. */
static void test_partition_of(void **unused)
{
	(void)unused;
	assert_int_equal(murmur2_str("acct00000042"), -187848341);
	assert_int_equal(partition_of("acct00000042", 12, 8), 3);
	/* "21" = -973932308: (2^31 - 973932308) = 1173551340, % 8 = 4. */
	assert_int_equal(partition_of("21", 2, 8), 4);
	assert_int_equal(partition_of("21", 2, 1), 0);
	/* "abc" is positive: 479470107 % 10 = 7. */
	assert_int_equal(partition_of("abc", 3, 10), 7);
}

/* Every key lands in range, and keys spread over all partitions. */
static void test_partition_range_and_spread(void **unused)
{
	(void)unused;
	unsigned hits[16] = {0};
	char key[16];

	for (unsigned i = 0; i < 16000; i++) {
		int n = snprintf(key, sizeof(key), "acct%08u", i);
		unsigned p = partition_of(key, (size_t)n, 16);

		assert_true(p < 16);
		hits[p]++;
	}
	for (unsigned p = 0; p < 16; p++)
		assert_in_range(hits[p], 800, 1200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kafka_known_values),
	    cmocka_unit_test(test_high_bytes_and_alignment),
	    cmocka_unit_test(test_partition_of),
	    cmocka_unit_test(test_partition_range_and_spread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
