/* fuzz_cfg_value.c - libFuzzer target for the value parsers of
 * common/cfg.c: any bytes, as a size, a duration and a boolean, must be
 * parsed or refused with a reason, never crash, and a value that parses must
 * mean what its text says.
 *
 * The checks are written from cfg.h's contract, not from cfg.c: a bare
 * number of bytes or seconds is that number (strtoull is the reference),
 * and a number with a unit is that number times the unit, or refused as too
 * large. A broken property calls abort(). */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_VALUE_MAX 256 /* a longer value adds nothing a shorter one lacks */

static void check(int ok)
{
	if (!ok)
		abort();
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* strtoull without its sign, space and base quirks: all_digits only. */
static int reference_number(const char *s, uint64_t *v)
{
	errno = 0;
	*v = strtoull(s, NULL, 10);
	return errno == ERANGE ? -1 : 0;
}

/* "<digits><suffix>" parses to n * unit, or is refused when that does not
 * fit in 64 bits. */
static void check_scaled(int (*parse)(const char *, uint64_t *, const char **), const char *digits,
			 const char *suffix, uint64_t unit)
{
	char text[FUZZ_VALUE_MAX + 8];
	const char *why = NULL;
	uint64_t n, v = 0, expect;
	int rc;

	if (reference_number(digits, &n) < 0)
		return;
	strcpy(text, digits);
	strcat(text, suffix);
	rc = parse(text, &v, &why);
	if (__builtin_mul_overflow(n, unit, &expect)) {
		check(rc == -1 && why && *why);
		return;
	}
	check(rc == 0 && v == expect);
}

static void check_size(const char *s)
{
	const char *why = NULL;
	uint64_t v = 0, ref;
	int rc = cfg_parse_size(s, &v, &why);

	if (rc != 0) {
		check(rc == -1 && why && *why);
		return;
	}
	check(isdigit((unsigned char)s[0])); /* nothing before the number */
	if (all_digits(s))
		check(reference_number(s, &ref) == 0 && v == ref);
	if (all_digits(s) && strlen(s) <= FUZZ_VALUE_MAX) {
		check_scaled(cfg_parse_size, s, "k", 1ULL << 10);
		check_scaled(cfg_parse_size, s, "MiB", 1ULL << 20);
		check_scaled(cfg_parse_size, s, " G", 1ULL << 30);
		check_scaled(cfg_parse_size, s, "TB", 1ULL << 40);
	}
}

static void check_duration(const char *s)
{
	const char *why = NULL;
	uint64_t v = 0, ref;
	int rc = cfg_parse_duration_ms(s, &v, &why);

	if (rc != 0) {
		check(rc == -1 && why && *why);
		return;
	}
	check(isdigit((unsigned char)s[0]));
	if (all_digits(s))
		check(reference_number(s, &ref) == 0 && v / 1000 == ref && v % 1000 == 0);
	if (all_digits(s) && strlen(s) <= FUZZ_VALUE_MAX) {
		check_scaled(cfg_parse_duration_ms, s, "ms", 1);
		check_scaled(cfg_parse_duration_ms, s, "s", 1000);
		check_scaled(cfg_parse_duration_ms, s, " m", 60000);
		check_scaled(cfg_parse_duration_ms, s, "h", 3600000);
	}
}

static void check_bool(const char *s)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	const char *why = NULL;
	int v = -1, expect = -1;
	int rc = cfg_parse_bool(s, &v, &why);

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			expect = 1;
		if (strcasecmp(s, no[i]) == 0)
			expect = 0;
	}
	if (expect < 0)
		check(rc == -1 && why && *why);
	else
		check(rc == 0 && v == expect);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1); /* a value is a C string: up to the first NUL */

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_size(s);
	check_duration(s);
	check_bool(s);
	free(s);
	return 0;
}
