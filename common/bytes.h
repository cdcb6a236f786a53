/* bytes.h - the short byte work of every event, inline: integers written
 * in decimal two digits a step straight into place (the ledger's output
 * and state and the generate source's events write several a line), and
 * copies and compares of a few dozen bytes (keys, names, fields, values)
 * as words rather than calls into the C library, whose setup costs more
 * than such a string. */
#ifndef RM_BYTES_H
#define RM_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const char dec_pairs[201] = "00010203040506070809101112131415161718192021222324"
				   "25262728293031323334353637383940414243444546474849"
				   "50515253545556575859606162636465666768697071727374"
				   "75767778798081828384858687888990919293949596979899";

/* Exactly `n` digits of v (its lowest, zero padded) at p: in 32 bits as
 * soon as what is left fits, where dividing by 100 is cheaper. */
static inline void dec_fixed(char *p, uint64_t v, size_t n)
{
	char *q = p + n;
	for (; q - p >= 2 && v > UINT32_MAX; v /= 100) {
		q -= 2;
		memcpy(q, dec_pairs + 2 * (v % 100), 2);
	}
	uint32_t u = (uint32_t)(v % 10000000000ull); /* all that is left to write */
	for (; q - p >= 2; u /= 100) {
		q -= 2;
		memcpy(q, dec_pairs + 2 * (u % 100), 2);
	}
	if (q > p)
		*p = (char)('0' + u % 10);
}

/* How many digits v has (1 to 20): log10 from the bit length (1233 / 4096
 * is just over log10(2)), then one comparison. */
static inline size_t dec_count(uint64_t v)
{
	static const uint64_t pow10[20] = {1ull,
					   10ull,
					   100ull,
					   1000ull,
					   10000ull,
					   100000ull,
					   1000000ull,
					   10000000ull,
					   100000000ull,
					   1000000000ull,
					   10000000000ull,
					   100000000000ull,
					   1000000000000ull,
					   10000000000000ull,
					   100000000000000ull,
					   1000000000000000ull,
					   10000000000000000ull,
					   100000000000000000ull,
					   1000000000000000000ull,
					   10000000000000000000ull};
	unsigned t = (unsigned)(64 - __builtin_clzll(v | 1)) * 1233 >> 12; /* 0..19 */
	/* v | 1: 0 has one digit; no other answer changes (10^t is even). */
	return t + ((v | 1) >= pow10[t]);
}

/* v in decimal at p (room for 20 bytes); returns the length. */
static inline size_t dec_u64(char *p, uint64_t v)
{
	size_t n = dec_count(v);
	dec_fixed(p, v, n);
	return n;
}

/* The same for a signed value (at most 20 bytes: "-" and 19 digits). */
static inline size_t dec_i64(char *p, int64_t v)
{
	if (v >= 0)
		return dec_u64(p, (uint64_t)v);
	/* Negate in unsigned so that INT64_MIN needs no special case. */
	*p = '-';
	return 1 + dec_u64(p + 1, 0 - (uint64_t)v);
}

/* Copy n bytes: the short ones (keys, names, numbers, small values) as two
 * overlapping words, no call. */
static inline char *bytes_copy(char *p, const void *s, size_t n)
{
	const char *src = s;
	if (n > 16 && n <= 32) {
		char a[16], b[16];
		memcpy(a, src, 16);
		memcpy(b, src + n - 16, 16);
		memcpy(p, a, 16);
		memcpy(p + n - 16, b, 16);
	} else if (n >= 8 && n <= 16) {
		uint64_t a, b;
		memcpy(&a, src, 8);
		memcpy(&b, src + n - 8, 8);
		memcpy(p, &a, 8);
		memcpy(p + n - 8, &b, 8);
	} else if (n >= 4 && n < 8) {
		uint32_t a, b;
		memcpy(&a, src, 4);
		memcpy(&b, src + n - 4, 4);
		memcpy(p, &a, 4);
		memcpy(p + n - 4, &b, 4);
	} else {
		memcpy(p, src, n);
	}
	return p + n;
}

/* Equal n bytes: the short ones as two overlapping words, no call. */
static inline int bytes_eq(const void *x, const void *y, size_t n)
{
	const char *a = x, *b = y;
	if (n >= 8 && n <= 16) {
		uint64_t a0, a1, b0, b1;
		memcpy(&a0, a, 8);
		memcpy(&b0, b, 8);
		memcpy(&a1, a + n - 8, 8);
		memcpy(&b1, b + n - 8, 8);
		return a0 == b0 && a1 == b1;
	}
	return memcmp(a, b, n) == 0;
}

#endif
