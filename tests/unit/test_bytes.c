/* test_bytes.c - bytes.h writes what printf writes, copies and compares as
 * memcpy and memcmp do, at every length the short paths take. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bytes.h"

static void check_u64(uint64_t v)
{
	char got[32], want[32];
	size_t n = dec_u64(got, v);
	got[n] = '\0';
	snprintf(want, sizeof(want), "%" PRIu64, v);
	assert_string_equal(got, want);
	assert_int_equal(dec_count(v), strlen(want));
}

static void check_i64(int64_t v)
{
	char got[32], want[32];
	size_t n = dec_i64(got, v);
	got[n] = '\0';
	snprintf(want, sizeof(want), "%" PRId64, v);
	assert_string_equal(got, want);
}

/* Around every power of two and of ten, the ends of the range, and a few
 * million values of every bit length. */
static void test_numbers(void **unused)
{
	(void)unused;
	for (int k = 0; k < 64; k++)
		for (int d = -2; d <= 2; d++)
			check_u64((1ull << k) + (uint64_t)(int64_t)d);
	uint64_t p = 1;
	for (int k = 0; k < 20; k++, p *= 10)
		for (int d = -1; d <= 1; d++)
			check_u64(p + (uint64_t)(int64_t)d);
	check_u64(0);
	check_u64(UINT64_MAX);
	check_i64(0);
	check_i64(-1);
	check_i64(INT64_MIN);
	check_i64(INT64_MAX);
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 2000000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		check_u64(x >> (x & 63));
		check_i64((int64_t)(x >> (x >> 58)) * ((x & 1) ? -1 : 1));
	}
}

/* Zero padded, to the width asked (the generator's account numbers). */
static void test_fixed(void **unused)
{
	(void)unused;
	char got[16];
	dec_fixed(got, 42, 8);
	assert_memory_equal(got, "00000042", 8);
	dec_fixed(got, 12345678, 8);
	assert_memory_equal(got, "12345678", 8);
	dec_fixed(got, 7, 1);
	assert_memory_equal(got, "7", 1);
	dec_fixed(got, 123, 3);
	assert_memory_equal(got, "123", 3);
}

/* Every length from 0 to 40, at every offset, against memcpy and memcmp;
 * nothing written past the end. */
static void test_copy_eq(void **unused)
{
	(void)unused;
	char src[64], dst[80], ref[80];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (char)('a' + i % 26);
	for (size_t n = 0; n <= 40; n++)
		for (size_t off = 0; off < 8; off++) {
			memset(dst, '#', sizeof(dst));
			memset(ref, '#', sizeof(ref));
			memcpy(ref + off, src + off, n);
			assert_ptr_equal(bytes_copy(dst + off, src + off, n), dst + off + n);
			assert_memory_equal(dst, ref, sizeof(dst));
			assert_true(bytes_eq(dst + off, src + off, n));
			if (n) {
				dst[off + n - 1] ^= 1;
				assert_false(bytes_eq(dst + off, src + off, n));
				dst[off + n - 1] ^= 1;
				dst[off] ^= 1;
				assert_false(bytes_eq(dst + off, src + off, n));
			}
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_fixed),
	    cmocka_unit_test(test_copy_eq),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
