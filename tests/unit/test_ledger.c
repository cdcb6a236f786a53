/* test_ledger.c - the ledger handler's rules, in order, through a fake
 * worker: this file defines the rm_* calls of ringmaster.h over small
 * in-memory tables, so ledger.o (from libworker.a) links against them and
 * not against the real worker context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "handlers/ledger.h"
#include "ringmaster.h"

#define FAKE_ROWS 32
#define FAKE_KEYS 16
#define FAKE_LINES 16
#define FAKE_LINE_MAX 8192
#define FAKE_COUNTS 16

struct fake_row {
	const char *table, *key, *value;
};

struct fake_state {
	char key[64];
	char val[128];
	size_t key_len, val_len;
};

struct rm_ctx {
	struct fake_row rows[FAKE_ROWS];
	int nrows;
	struct fake_state state[FAKE_KEYS];
	int nstate;
	char out[FAKE_LINES][FAKE_LINE_MAX];
	int nout;
	char reason[32];
	struct {
		char name[32];
		int n;
	} counts[FAKE_COUNTS];
	int ncounts;
	char log[512];
	int fail_table, fail_state_get, fail_put, fail_emit; /* negative errors */
};

/* ---- the fake worker ----------------------------------------------------- */

int rm_table_get(rm_ctx *ctx, const char *table, const char *key, size_t key_len,
		 struct rm_value *val)
{
	if (ctx->fail_table)
		return ctx->fail_table;
	for (int i = 0; i < ctx->nrows; i++) {
		const struct fake_row *r = &ctx->rows[i];

		if (!strcmp(r->table, table) && strlen(r->key) == key_len &&
		    !memcmp(r->key, key, key_len)) {
			val->data = r->value;
			val->len = strlen(r->value);
			return RM_FOUND;
		}
	}
	return RM_NOTFOUND;
}

static struct fake_state *find_state(rm_ctx *ctx, const char *key, size_t key_len)
{
	for (int i = 0; i < ctx->nstate; i++)
		if (ctx->state[i].key_len == key_len && !memcmp(ctx->state[i].key, key, key_len))
			return &ctx->state[i];
	return NULL;
}

int rm_state_get(rm_ctx *ctx, const char *key, size_t key_len, struct rm_value *val)
{
	struct fake_state *s = find_state(ctx, key, key_len);

	if (ctx->fail_state_get)
		return ctx->fail_state_get;
	if (!s)
		return RM_NOTFOUND;
	val->data = s->val;
	val->len = s->val_len;
	return RM_FOUND;
}

int rm_state_put(rm_ctx *ctx, const char *key, size_t key_len, const void *val, size_t val_len)
{
	struct fake_state *s = find_state(ctx, key, key_len);

	if (ctx->fail_put)
		return ctx->fail_put;
	assert_true(key_len < sizeof(s->key) && val_len < sizeof(s->val));
	if (!s) {
		assert_true(ctx->nstate < FAKE_KEYS);
		s = &ctx->state[ctx->nstate++];
		memcpy(s->key, key, key_len);
		s->key_len = key_len;
	}
	memcpy(s->val, val, val_len);
	s->val_len = val_len;
	return 0;
}

int rm_state_del(rm_ctx *ctx, const char *key, size_t key_len)
{
	struct fake_state *s = find_state(ctx, key, key_len);

	if (s)
		*s = ctx->state[--ctx->nstate];
	return 0;
}

int rm_emit(rm_ctx *ctx, const char *line, size_t len)
{
	if (ctx->fail_emit)
		return ctx->fail_emit;
	assert_true(ctx->nout < FAKE_LINES && len < FAKE_LINE_MAX);
	assert_null(memchr(line, '\n', len));
	memcpy(ctx->out[ctx->nout], line, len);
	ctx->out[ctx->nout++][len] = 0;
	return 0;
}

void rm_reject(rm_ctx *ctx, const char *reason)
{
	snprintf(ctx->reason, sizeof(ctx->reason), "%s", reason);
}

void rm_count(rm_ctx *ctx, const char *outcome)
{
	for (int i = 0; i < ctx->ncounts; i++) {
		if (!strcmp(ctx->counts[i].name, outcome)) {
			ctx->counts[i].n++;
			return;
		}
	}
	assert_true(ctx->ncounts < FAKE_COUNTS);
	snprintf(ctx->counts[ctx->ncounts].name, sizeof(ctx->counts[0].name), "%s", outcome);
	ctx->counts[ctx->ncounts++].n = 1;
}

const char *rm_param(rm_ctx *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return NULL;
}

unsigned rm_partition(rm_ctx *ctx)
{
	(void)ctx;
	return 0;
}

unsigned rm_partitions(rm_ctx *ctx)
{
	(void)ctx;
	return 1;
}

void rm_log(rm_ctx *ctx, int level, const char *fmt, ...)
{
	va_list ap;

	(void)level;
	va_start(ap, fmt);
	vsnprintf(ctx->log, sizeof(ctx->log), fmt, ap);
	va_end(ap);
}

/* ---- fixtures ------------------------------------------------------------ */

struct fixture {
	rm_ctx ctx;
	void *hstate;
};

static void add_row(rm_ctx *ctx, const char *table, const char *key, const char *value)
{
	assert_true(ctx->nrows < FAKE_ROWS);
	ctx->rows[ctx->nrows++] = (struct fake_row){table, key, value};
}

/* The generator's rules, and four accounts. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	add_row(&f->ctx, "rules", "deposit", "+1\t1000000\t0");
	add_row(&f->ctx, "rules", "withdrawal", "-1\t500000\t10");
	add_row(&f->ctx, "rules", "card_payment", "-1\t200000\t0");
	add_row(&f->ctx, "rules", "transfer_out", "-1\t5000000\t25");
	add_row(&f->ctx, "accounts", "acct1", "active\t0");
	add_row(&f->ctx, "accounts", "acct2", "active\t10000");
	add_row(&f->ctx, "accounts", "acct3", "frozen\t0");
	add_row(&f->ctx, "accounts", "acct4", "active\t50000");
	assert_int_equal(ledger_handler.init(&f->ctx, &f->hstate), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ledger_handler.fini(&f->ctx, f->hstate);
	free(f);
	return 0;
}

/* Run one event; returns the handler's result. */
static int run(struct fixture *f, uint64_t seq, const char *key, const char *payload)
{
	struct rm_event ev = {seq, key, strlen(key), payload, strlen(payload)};

	f->ctx.reason[0] = 0;
	return ledger_handler.process(&f->ctx, f->hstate, &ev);
}

static const char *last_line(struct fixture *f)
{
	assert_true(f->ctx.nout > 0);
	return f->ctx.out[f->ctx.nout - 1];
}

static int count_of(struct fixture *f, const char *name)
{
	for (int i = 0; i < f->ctx.ncounts; i++)
		if (!strcmp(f->ctx.counts[i].name, name))
			return f->ctx.counts[i].n;
	return 0;
}

/* The state text of `key`, or "" if none. */
static const char *state_of(struct fixture *f, const char *key)
{
	static char buf[128];
	struct fake_state *s = find_state(&f->ctx, key, strlen(key));

	if (!s)
		return "";
	memcpy(buf, s->val, s->val_len);
	buf[s->val_len] = 0;
	return buf;
}

static void set_state(struct fixture *f, const char *key, const char *val)
{
	assert_int_equal(rm_state_put(&f->ctx, key, strlen(key), val, strlen(val)), 0);
}

/* Expect an RM_OK outcome with exactly this output line. */
static void expect(struct fixture *f, uint64_t seq, const char *key, const char *payload,
		   const char *line)
{
	int before = f->ctx.nout;

	assert_int_equal(run(f, seq, key, payload), RM_OK);
	assert_int_equal(f->ctx.nout, before + 1);
	assert_string_equal(last_line(f), line);
	assert_string_equal(f->ctx.reason, "");
}

/* ---- tests --------------------------------------------------------------- */

static void test_abi(void **state)
{
	(void)state;
	assert_int_equal(ledger_handler.abi_version, RM_ABI_VERSION);
	assert_string_equal(ledger_handler.name, "ledger");
	assert_non_null(ledger_handler.process);
}

/* Malformed payloads are RM_REJECT, checked before anything else (an
 * unknown type or account does not matter), with no output or state. */
static void test_malformed(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	    "deposit",	       /* no tab */
	    "deposit\t100\tx", /* three fields */
	    "deposit\t100\t",  /* three fields, the last empty */
	    "deposit\t",       /* empty amount */
	    "deposit\t12x",    /* not an integer */
	    "deposit\t+5",     /* no '+' in the grammar */
	    "deposit\t-",      /* a sign alone */
	    "deposit\t 5",     /* no blanks */
	    "deposit\t5.00",   /* cents are integers */
	    "\t100",	       /* empty type */
	    "",		       /* empty payload */
	    "nosuch\t12x",     /* malformed before unknown_type */
	    "deposit\t99999999999999999999x",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(run(f, i, "acct1", bad[i]), RM_REJECT);
		assert_string_equal(f->ctx.reason, "malformed");
		assert_int_equal(run(f, i, "nobody", bad[i]), RM_REJECT);
	}
	assert_int_equal(f->ctx.nout, 0);
	assert_int_equal(f->ctx.nstate, 0);
	assert_int_equal(f->ctx.ncounts, 0);
}

/* Each rule in order: an event that fails several checks is rejected for
 * the first. */
static void test_rule_order(void **state)
{
	struct fixture *f = *state;

	/* Unknown type beats unknown account, frozen and a bad amount. */
	expect(f, 1, "nobody", "chargeback\t0", "1\tnobody\tchargeback\t0\trejected\tunknown_type");
	expect(f, 2, "acct3", "chargeback\t5", "2\tacct3\tchargeback\t5\trejected\tunknown_type");
	/* Unknown account beats a bad amount. */
	expect(f, 3, "nobody", "deposit\t0", "3\tnobody\tdeposit\t0\trejected\tunknown_account");
	/* Frozen beats a bad amount. */
	expect(f, 4, "acct3", "deposit\t0", "4\tacct3\tdeposit\t0\trejected\tfrozen");
	expect(f, 5, "acct3", "deposit\t100", "5\tacct3\tdeposit\t100\trejected\tfrozen");
	/* Out of range beats insufficient funds. */
	expect(f, 6, "acct1", "withdrawal\t500001",
	       "6\tacct1\twithdrawal\t500001\trejected\tamount_out_of_range");
	expect(f, 7, "acct1", "withdrawal\t100",
	       "7\tacct1\twithdrawal\t100\trejected\tinsufficient_funds");

	assert_int_equal(count_of(f, "unknown_type"), 2);
	assert_int_equal(count_of(f, "unknown_account"), 1);
	assert_int_equal(count_of(f, "frozen"), 2);
	assert_int_equal(count_of(f, "amount_out_of_range"), 1);
	assert_int_equal(count_of(f, "insufficient_funds"), 1);
	assert_int_equal(count_of(f, "accepted"), 0);
	assert_int_equal(f->ctx.nstate, 0); /* rejections change no state */
}

/* 1..max_amount inclusive; zero, negatives and huge numbers are out of
 * range, and the amount is echoed as written. */
static void test_amount_range(void **state)
{
	struct fixture *f = *state;

	expect(f, 10, "acct4", "deposit\t0",
	       "10\tacct4\tdeposit\t0\trejected\tamount_out_of_range");
	expect(f, 11, "acct4", "deposit\t-5",
	       "11\tacct4\tdeposit\t-5\trejected\tamount_out_of_range");
	expect(f, 12, "acct4", "deposit\t1000001",
	       "12\tacct4\tdeposit\t1000001\trejected\tamount_out_of_range");
	expect(f, 13, "acct4", "deposit\t99999999999999999999999",
	       "13\tacct4\tdeposit\t99999999999999999999999\trejected\tamount_out_of_range");
	expect(f, 14, "acct4", "deposit\t-9223372036854775808",
	       "14\tacct4\tdeposit\t-9223372036854775808\trejected\tamount_out_of_range");
	expect(f, 15, "acct4", "deposit\t1", "15\tacct4\tdeposit\t1\taccepted\t1");
	expect(f, 16, "acct4", "deposit\t1000000",
	       "16\tacct4\tdeposit\t1000000\taccepted\t1000001");
	expect(f, 17, "acct4", "deposit\t007", "17\tacct4\tdeposit\t007\taccepted\t1000008");
	assert_string_equal(state_of(f, "acct4"), "balance=1000008 count=3");
	assert_int_equal(count_of(f, "amount_out_of_range"), 5);
	assert_int_equal(count_of(f, "accepted"), 3);
}

/* fee = amount * fee_bps / 10000, rounded down; a debit moves the balance
 * by -(amount + fee). */
static void test_fees(void **state)
{
	struct fixture *f = *state;

	expect(f, 1, "acct1", "deposit\t1000000", "1\tacct1\tdeposit\t1000000\taccepted\t1000000");
	/* 500000 * 10 / 10000 = 500 */
	expect(f, 2, "acct1", "withdrawal\t500000",
	       "2\tacct1\twithdrawal\t500000\taccepted\t499500");
	/* 999 * 10 / 10000 = 0.999 -> 0 */
	expect(f, 3, "acct1", "withdrawal\t999", "3\tacct1\twithdrawal\t999\taccepted\t498501");
	/* 1000 * 10 / 10000 = 1 */
	expect(f, 4, "acct1", "withdrawal\t1000", "4\tacct1\twithdrawal\t1000\taccepted\t497500");
	/* 10000 * 25 / 10000 = 25 */
	expect(f, 5, "acct1", "transfer_out\t10000",
	       "5\tacct1\ttransfer_out\t10000\taccepted\t487475");
	assert_string_equal(state_of(f, "acct1"), "balance=487475 count=5");
}

/* The balance may reach -overdraft_limit exactly, not one cent below; the
 * fee counts. A rejected debit leaves the state alone. */
static void test_overdraft_boundary(void **state)
{
	struct fixture *f = *state;

	expect(f, 1, "acct2", "card_payment\t10000",
	       "1\tacct2\tcard_payment\t10000\taccepted\t-10000");
	expect(f, 2, "acct2", "card_payment\t1",
	       "2\tacct2\tcard_payment\t1\trejected\tinsufficient_funds");
	assert_string_equal(state_of(f, "acct2"), "balance=-10000 count=1");

	/* Limit 0: 1000 in, a 1000 withdrawal costs 1001 with its fee. */
	expect(f, 3, "acct1", "deposit\t1000", "3\tacct1\tdeposit\t1000\taccepted\t1000");
	expect(f, 4, "acct1", "withdrawal\t1000",
	       "4\tacct1\twithdrawal\t1000\trejected\tinsufficient_funds");
	expect(f, 5, "acct1", "withdrawal\t999", "5\tacct1\twithdrawal\t999\taccepted\t1");
	expect(f, 6, "acct1", "card_payment\t1", "6\tacct1\tcard_payment\t1\taccepted\t0");
	assert_string_equal(state_of(f, "acct1"), "balance=0 count=3");
}

/* A credit is taken even when the account is past its limit (say the limit
 * was lowered by a reload): only debits can be insufficient. */
static void test_credit_below_floor(void **state)
{
	struct fixture *f = *state;

	set_state(f, "acct1", "balance=-50000 count=7");
	expect(f, 1, "acct1", "deposit\t100", "1\tacct1\tdeposit\t100\taccepted\t-49900");
	assert_string_equal(state_of(f, "acct1"), "balance=-49900 count=8");
	expect(f, 2, "acct1", "card_payment\t1",
	       "2\tacct1\tcard_payment\t1\trejected\tinsufficient_funds");
}

/* Rows parsed before are found by their text, never by where they are: a
 * row rewritten in place (a reload) is parsed again, a text that stopped
 * parsing is an error again, and accounts sharing a text each get its
 * meaning. */
static void test_row_memo(void **state)
{
	struct fixture *f = *state;
	char rule[32] = "+1\t1000000\t0", acct[32] = "active\t0";

	f->ctx.nrows = 0;
	add_row(&f->ctx, "rules", "deposit", rule);
	add_row(&f->ctx, "accounts", "a1", acct);
	add_row(&f->ctx, "accounts", "a2", "active\t0");
	add_row(&f->ctx, "accounts", "a3", "frozen\t0");
	expect(f, 1, "a1", "deposit\t100", "1\ta1\tdeposit\t100\taccepted\t100");
	expect(f, 2, "a2", "deposit\t100", "2\ta2\tdeposit\t100\taccepted\t100");
	expect(f, 3, "a3", "deposit\t100", "3\ta3\tdeposit\t100\trejected\tfrozen");

	/* the same addresses, other texts */
	snprintf(rule, sizeof(rule), "+1\t1000000\t100"); /* a 1% fee */
	snprintf(acct, sizeof(acct), "frozen\t0");
	expect(f, 4, "a1", "deposit\t100", "4\ta1\tdeposit\t100\trejected\tfrozen");
	expect(f, 5, "a2", "deposit\t100", "5\ta2\tdeposit\t100\taccepted\t199");
	snprintf(rule, sizeof(rule), "+1\t50\t0");
	expect(f, 6, "a2", "deposit\t100", "6\ta2\tdeposit\t100\trejected\tamount_out_of_range");

	/* a text that does not parse is an error each time, then fine again */
	snprintf(acct, sizeof(acct), "open\t0");
	for (int i = 0; i < 2; i++) {
		f->ctx.log[0] = 0;
		assert_int_equal(run(f, 7, "a1", "deposit\t5"), RM_ERROR);
		assert_non_null(strstr(f->ctx.log, "accounts"));
	}
	snprintf(acct, sizeof(acct), "active\t0");
	expect(f, 8, "a1", "deposit\t5", "8\ta1\tdeposit\t5\taccepted\t105");

	/* rows longer than what is kept parse every time, rightly */
	char long_acct[64] = "active\t000000000000000000000000000000000000000000007";
	add_row(&f->ctx, "accounts", "a4", long_acct);
	expect(f, 9, "a4", "card_payment\t7", "9\ta4\tcard_payment\t7\trejected\tunknown_type");
	expect(f, 10, "a4", "deposit\t7", "10\ta4\tdeposit\t7\taccepted\t7");
}

/* Existing state is read and rewritten in the same format; a huge balance
 * refuses to overflow. */
static void test_state_format(void **state)
{
	struct fixture *f = *state;

	set_state(f, "acct4", "balance=-123 count=41");
	expect(f, 18446744073709551615ull, "acct4", "deposit\t200",
	       "18446744073709551615\tacct4\tdeposit\t200\taccepted\t77");
	assert_string_equal(state_of(f, "acct4"), "balance=77 count=42");

	set_state(f, "acct1", "balance=9223372036854775000 count=1");
	expect(f, 2, "acct1", "deposit\t1000",
	       "2\tacct1\tdeposit\t1000\trejected\tbalance_overflow");
	assert_string_equal(state_of(f, "acct1"), "balance=9223372036854775000 count=1");
	assert_int_equal(count_of(f, "balance_overflow"), 1);
}

/* Rows or state that do not parse are errors of our data: RM_ERROR, logged,
 * with no output. */
static void test_bad_data(void **state)
{
	struct fixture *f = *state;
	static const char *const bad_rules[] = {
	    "2\t100\t0",      "+1\t0\t0", "+1\t100",	 "+1\t100\t0\tx",
	    "+1\t100\t10001", "+1\tx\t0", "-1\t100\t-1",
	};

	for (size_t i = 0; i < sizeof(bad_rules) / sizeof(bad_rules[0]); i++) {
		f->ctx.nrows = 0;
		add_row(&f->ctx, "rules", "deposit", bad_rules[i]);
		add_row(&f->ctx, "accounts", "acct1", "active\t0");
		f->ctx.log[0] = 0;
		assert_int_equal(run(f, 1, "acct1", "deposit\t5"), RM_ERROR);
		assert_non_null(strstr(f->ctx.log, "rules"));
	}

	static const char *const bad_accounts[] = {"open\t0", "active", "active\t-1", "frozen\t1x",
						   "active\t0\t0"};

	for (size_t i = 0; i < sizeof(bad_accounts) / sizeof(bad_accounts[0]); i++) {
		f->ctx.nrows = 0;
		add_row(&f->ctx, "rules", "deposit", "+1\t100\t0");
		add_row(&f->ctx, "accounts", "acct1", bad_accounts[i]);
		assert_int_equal(run(f, 1, "acct1", "deposit\t5"), RM_ERROR);
		assert_non_null(strstr(f->ctx.log, "accounts"));
	}

	static const char *const bad_states[] = {"",
						 "balance=1",
						 "balance=1 count=",
						 "balance=x count=1",
						 "balance=1 count=-1",
						 "balance=1  count=1",
						 "balance=1 count=1 "};

	f->ctx.nrows = 0;
	add_row(&f->ctx, "rules", "deposit", "+1\t100\t0");
	add_row(&f->ctx, "accounts", "acct1", "active\t0");
	for (size_t i = 0; i < sizeof(bad_states) / sizeof(bad_states[0]); i++) {
		set_state(f, "acct1", bad_states[i]);
		assert_int_equal(run(f, 1, "acct1", "deposit\t5"), RM_ERROR);
		assert_non_null(strstr(f->ctx.log, "state"));
	}
	assert_int_equal(f->ctx.nout, 0);
}

/* Errors from the worker's calls become RM_ERROR. */
static void test_call_errors(void **state)
{
	struct fixture *f = *state;

	f->ctx.fail_table = -5;
	assert_int_equal(run(f, 1, "acct1", "deposit\t5"), RM_ERROR);
	f->ctx.fail_table = 0;
	f->ctx.fail_state_get = -5;
	assert_int_equal(run(f, 1, "acct1", "deposit\t5"), RM_ERROR);
	f->ctx.fail_state_get = 0;
	f->ctx.fail_put = -12;
	assert_int_equal(run(f, 1, "acct1", "deposit\t5"), RM_ERROR);
	f->ctx.fail_put = 0;
	f->ctx.fail_emit = -28;
	assert_int_equal(run(f, 1, "acct1", "chargeback\t5"), RM_ERROR);
	f->ctx.fail_emit = 0;
	assert_int_equal(f->ctx.nout, 0);
	assert_int_equal(f->ctx.ncounts, 0);
	expect(f, 2, "acct1", "deposit\t5", "2\tacct1\tdeposit\t5\taccepted\t5");
}

/* An output line longer than the handler's initial buffer comes out whole. */
static void test_long_line(void **state)
{
	struct fixture *f = *state;
	size_t n = 5000;
	char *payload = malloc(n + 8), *line = malloc(n + 64);

	assert_non_null(payload);
	assert_non_null(line);
	memset(payload, 'z', n);
	memcpy(payload + n, "\t1", 3);
	snprintf(line, n + 64, "9\tacct1\t%s\trejected\tunknown_type", payload);
	expect(f, 9, "acct1", payload, line);
	free(payload);
	free(line);
}

/* The payload parser alone (ledger.h): what it splits, what it refuses,
 * and the int64 boundary between a value and "out of range". */
static void test_parse_payload(void **state)
{
	static const char *const malformed[] = {"",
						"deposit",
						"\t5",
						"deposit\t",
						"deposit\t12x",
						"deposit\t+5",
						"deposit\t-",
						"deposit\t 5",
						"deposit\t5\t",
						"deposit\t5\tx",
						"deposit\t--5"};
	struct ledger_payload p;
	const char *s;

	(void)state;
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		assert_int_equal(ledger_parse_payload(malformed[i], strlen(malformed[i]), &p), -1);

	s = "card_payment\t-0042";
	assert_int_equal(ledger_parse_payload(s, strlen(s), &p), 0);
	assert_ptr_equal(p.type.data, s);
	assert_int_equal(p.type.len, 12);
	assert_ptr_equal(p.amount_text.data, s + 13);
	assert_int_equal(p.amount_text.len, 5);
	assert_true(p.amount_fits);
	assert_int_equal(p.amount, -42);

	s = "d\t-9223372036854775808";
	assert_int_equal(ledger_parse_payload(s, strlen(s), &p), 0);
	assert_true(p.amount_fits);
	assert_true(p.amount == INT64_MIN);
	s = "d\t9223372036854775808";
	assert_int_equal(ledger_parse_payload(s, strlen(s), &p), 0);
	assert_false(p.amount_fits);
	assert_int_equal(p.amount, 0);
	s = "d\t99999999999999999999999x"; /* digits past int64, then junk */
	assert_int_equal(ledger_parse_payload(s, strlen(s), &p), -1);
	/* 18 digits (the unchecked fast path) and 19, either sign */
	s = "d\t-999999999999999999";
	assert_int_equal(ledger_parse_payload(s, strlen(s), &p), 0);
	assert_true(p.amount_fits);
	assert_true(p.amount == -999999999999999999LL);
	s = "d\t9223372036854775807";
	assert_int_equal(ledger_parse_payload(s, strlen(s), &p), 0);
	assert_true(p.amount_fits);
	assert_true(p.amount == INT64_MAX);
	s = "d\t00000000000000000000000000007"; /* many digits, a small value */
	assert_int_equal(ledger_parse_payload(s, strlen(s), &p), 0);
	assert_true(p.amount_fits);
	assert_int_equal(p.amount, 7);
	s = "d\t12345678901234567x"; /* junk after 17 digits */
	assert_int_equal(ledger_parse_payload(s, strlen(s), &p), -1);
	/* a payload of nothing, and a lone tab */
	assert_int_equal(ledger_parse_payload(NULL, 0, &p), -1);
	assert_int_equal(ledger_parse_payload("\t", 1, &p), -1);
	/* Only len bytes are read. */
	assert_int_equal(ledger_parse_payload("d\t12x", 4, &p), 0);
	assert_int_equal(p.amount, 12);
}

/* A JSON payload means what the same TSV payload means: the same output
 * line, the same state, the same rejections. */
static void test_json_payload(void **state)
{
	struct fixture *f = *state;

	expect(f, 1, "acct1", "{\"type\":\"deposit\",\"amount\":1000}",
	       "1\tacct1\tdeposit\t1000\taccepted\t1000");
	expect(f, 2, "acct1", "deposit\t1000", "2\tacct1\tdeposit\t1000\taccepted\t2000");
	assert_string_equal(state_of(f, "acct1"), "balance=2000 count=2");
	/* The key field, other fields and "to" are there and ignored. */
	expect(f, 3, "acct1",
	       " {\"account\":\"acct1\",\"to\":\"acct2\",\"amount\":200,\"type\":"
	       "\"with\\u0064rawal\"} ",
	       "3\tacct1\twithdrawal\t200\taccepted\t1800");
	expect(f, 4, "acct1", "{\"type\":\"chargeback\",\"amount\":5}",
	       "4\tacct1\tchargeback\t5\trejected\tunknown_type");
	expect(f, 5, "acct1", "{\"type\":\"deposit\",\"amount\":-5}",
	       "5\tacct1\tdeposit\t-5\trejected\tamount_out_of_range");
	expect(f, 6, "acct1", "{\"type\":\"deposit\",\"amount\":9223372036854775808}",
	       "6\tacct1\tdeposit\t9223372036854775808\trejected\tamount_out_of_range");
	assert_int_equal(count_of(f, "accepted"), 3);

	static const char *const bad[] = {
	    "{}",
	    "{\"type\":\"deposit\"}",		       /* no amount */
	    "{\"amount\":5}",			       /* no type */
	    "{\"type\":\"deposit\",\"amount\":\"5\"}", /* a string amount */
	    "{\"type\":\"deposit\",\"amount\":5.0}",   /* cents are integers */
	    "{\"type\":\"deposit\",\"amount\":1e3}",
	    "{\"type\":\"\",\"amount\":5}",	 /* empty type */
	    "{\"type\":\"a\\tb\",\"amount\":5}", /* a tab in the type */
	    "{\"type\":5,\"amount\":5}",
	    "{\"type\":\"deposit\",\"amount\":5,\"to\":7}", /* to, not a string */
	    "{\"type\":\"deposit\",\"amount\":5",	    /* not JSON */
	    "{\"type\":\"deposit\",\"amount\":5}x",
	    /* Lines the supervisor let through, broken after their key. */
	    "{\"account\":\"acct1\",\"type\":\"deposit\",\"amount\":5",
	    "{\"account\":\"acct1\",\"type\":\"deposit\",\"amount\":5} {}",
	    "{\"account\":\"acct1\",\"type\":\"deposit\",\"amount\":5,}",
	    "{\"account\":\"acct1\",\"type\":\"dep\xffosit\",\"amount\":5}",
	    "{\"type\":\"deposit\",\"amount\":100000000000000000000000000000000}",
	    "[{\"type\":\"deposit\",\"amount\":5}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int before = f->ctx.nout;

		assert_int_equal(run(f, 10 + i, "acct1", bad[i]), RM_REJECT);
		assert_string_equal(f->ctx.reason, "malformed");
		assert_int_equal(f->ctx.nout, before);
	}
	assert_string_equal(state_of(f, "acct1"), "balance=1800 count=3");
}

/* ledger_parse_payload on JSON: type and amount copied out, a type at the
 * limit, and a '{' payload that is TSV still read as TSV. */
static void test_parse_json_payload(void **state)
{
	char s[LEDGER_TYPE_MAX + 64];
	struct ledger_payload p;

	(void)state;
	strcpy(s, "{\"type\":\"");
	memset(s + 9, 't', LEDGER_TYPE_MAX);
	strcpy(s + 9 + LEDGER_TYPE_MAX, "\",\"amount\":-42}");
	assert_int_equal(ledger_parse_payload(s, strlen(s), &p), 0);
	assert_int_equal(p.type.len, LEDGER_TYPE_MAX);
	assert_int_equal(p.amount_text.len, 3);
	assert_memory_equal(p.amount_text.data, "-42", 3);
	assert_true(p.amount_fits);
	assert_int_equal(p.amount, -42);
	memset(s + 9, 't', LEDGER_TYPE_MAX + 1);
	strcpy(s + 10 + LEDGER_TYPE_MAX, "\",\"amount\":-42}");
	assert_int_equal(ledger_parse_payload(s, strlen(s), &p), -1);

	/* A long escaped string: yajl's buffer outgrows its arena. */
	static char big[3000 * 6 + 64];
	char *b = big;

	b += sprintf(b, "{\"note\":\"");
	for (int i = 0; i < 3000; i++)
		b += sprintf(b, "\\u0041");
	sprintf(b, "\",\"type\":\"deposit\",\"amount\":7}");
	assert_int_equal(ledger_parse_payload(big, strlen(big), &p), 0);
	assert_int_equal(p.amount, 7);

	strcpy(s, "{\t5");
	assert_int_equal(ledger_parse_payload(s, strlen(s), &p), 0);
	assert_ptr_equal(p.type.data, s);
	assert_int_equal(p.type.len, 1);
	assert_int_equal(p.amount, 5);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_abi),
	    T(test_malformed),
	    T(test_rule_order),
	    T(test_amount_range),
	    T(test_fees),
	    T(test_overdraft_boundary),
	    T(test_credit_below_floor),
	    T(test_row_memo),
	    T(test_state_format),
	    T(test_bad_data),
	    T(test_call_errors),
	    T(test_long_line),
	    T(test_parse_payload),
	    T(test_json_payload),
	    T(test_parse_json_payload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
