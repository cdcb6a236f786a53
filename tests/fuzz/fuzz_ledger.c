/* fuzz_ledger.c - libFuzzer target for ledger_parse_payload
 * (worker/handlers/ledger.c): any payload must be parsed into a type and an
 * amount that lie inside it, or refused as malformed, exactly as ledger.h
 * describes; strtoll is the reference for the amount's value and range.
 * A JSON payload (yajl parses it) is only checked for its shape.
 *
 * The payload parser calls nothing of the handler API; the rest of ledger.c
 * does, so the calls are defined here to abort: if the parser ever reached
 * one, the fuzzer would say so. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

/* ---- the handler API, which the payload parser must not use ---- */

int rm_table_get(rm_ctx *ctx, const char *table, const char *key, size_t key_len,
		 struct rm_value *val)
{
	(void)ctx, (void)table, (void)key, (void)key_len, (void)val;
	abort();
}

int rm_state_get(rm_ctx *ctx, const char *key, size_t key_len, struct rm_value *val)
{
	(void)ctx, (void)key, (void)key_len, (void)val;
	abort();
}

int rm_state_put(rm_ctx *ctx, const char *key, size_t key_len, const void *val, size_t val_len)
{
	(void)ctx, (void)key, (void)key_len, (void)val, (void)val_len;
	abort();
}

int rm_emit(rm_ctx *ctx, const char *line, size_t len)
{
	(void)ctx, (void)line, (void)len;
	abort();
}

void rm_reject(rm_ctx *ctx, const char *reason)
{
	(void)ctx, (void)reason;
	abort();
}

void rm_count(rm_ctx *ctx, const char *outcome)
{
	(void)ctx, (void)outcome;
	abort();
}

void rm_log(rm_ctx *ctx, int level, const char *fmt, ...)
{
	(void)ctx, (void)level, (void)fmt;
	abort();
}

/* ---- the properties ---- */

/* `-?[0-9]+` and nothing else. */
static int is_integer(const char *s, size_t n)
{
	size_t i = n && s[0] == '-';

	if (i == n)
		return 0;
	for (; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ledger_payload p;
	char *payload = malloc(size ? size : 1), *amount;
	const char *tab;
	size_t type_len;
	int rc, valid;

	if (!payload)
		return 0;
	memcpy(payload, data, size);
	tab = memchr(payload, '\t', size);
	type_len = tab ? (size_t)(tab - payload) : 0;
	valid = tab && type_len > 0 && !memchr(tab + 1, '\t', size - type_len - 1) &&
		is_integer(tab + 1, size - type_len - 1);
	rc = ledger_parse_payload(payload, size, &p);
	/* A JSON object is the other form (ledger.h): never a valid TSV
	 * payload, its fields copied into p. */
	if (rc == 0 && !valid) {
		check(memchr(payload, '{', size) && p.type.data == p.type_buf &&
		      p.amount_text.data == p.amount_buf && p.type.len > 0);
		free(payload);
		return 0;
	}
	check(rc == (valid ? 0 : -1));
	if (rc == 0) {
		check(p.type.data == payload && p.type.len == type_len);
		check(p.amount_text.data == tab + 1 && p.amount_text.len == size - type_len - 1);
		amount = strndup(p.amount_text.data, p.amount_text.len);
		check(amount != NULL);
		errno = 0;
		long long ref = strtoll(amount, NULL, 10);
		check(p.amount_fits == (errno != ERANGE));
		check(p.amount == (p.amount_fits ? ref : 0));
		free(amount);
	}
	free(payload);
	return 0;
}
