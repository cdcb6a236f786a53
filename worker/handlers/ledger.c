/* ledger.c - the built-in `ledger` handler: the demo's business logic, and a
 * handler written against common/ringmaster.h alone, like any plugin.
 *
 * An event is `account -> type<TAB>amount`, the amount an integer in cents.
 * Two reference tables drive it:
 *
 *   rules     type -> sign<TAB>max_amount<TAB>fee_bps   (sign +1 or -1)
 *   accounts  account -> status<TAB>overdraft_limit      (active | frozen)
 *
 * and each account's state is the text `balance=<int> count=<int>`.
 *
 * A payload that is not exactly two fields, has an empty type, or whose
 * amount is not an integer (`-?[0-9]+`: "12x", "", "+5", "-" are not) is
 * malformed: rm_reject + RM_REJECT, before any other check. A payload may
 * also be a JSON object with the fields type, amount and to (ledger.h), so
 * that the demo runs on JSON lines too; yajl parses it. Otherwise the
 * checks run in this order and the first that fails names the rejection:
 *
 *   unknown_type         no rule for the type
 *   unknown_account      no row for the account
 *   frozen               the account is frozen
 *   amount_out_of_range  amount outside 1..max_amount (an integer too big
 *                        for int64 is out of range, not malformed: it is a
 *                        well-formed number, just not an acceptable one)
 *   insufficient_funds   a debit that would take the balance below
 *                        -overdraft_limit (exactly -overdraft_limit is fine)
 *   balance_overflow     the new balance would not fit in int64
 *
 * where fee = amount * fee_bps / 10000 (rounded down) and the balance moves
 * by sign * amount - fee. Only a change that lowers the balance can be
 * insufficient: a credit to an account that is already past its limit (its
 * limit was lowered by a reload) is still taken, as a bank would.
 *
 * A business rejection is an outcome, not a bad event: it returns RM_OK with
 * an output line and rm_count(reason). Output, one line per event:
 *
 *   seq<TAB>account<TAB>type<TAB>amount<TAB>accepted<TAB>new_balance
 *   seq<TAB>account<TAB>type<TAB>amount<TAB>rejected<TAB>reason
 *
 * with the amount as the payload wrote it. A table row or a state value
 * that does not parse is an error in our data, not in the event: rm_log and
 * RM_ERROR, so the batch is not committed on top of it.
 *
 * The per-event path does no allocation: numbers are parsed and formatted
 * by hand, and the output line is built in a buffer kept across events.
 * A table row whose text was parsed before is not parsed again (struct
 * memo).
 */
#include "ledger.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "bytes.h"
#include "json_arena.h"

/* Table values are bounded so that amount * fee_bps (< 10^18) and every
 * delta stay far inside int64: 10^14 cents is a trillion currency units. */
#define LEDGER_AMOUNT_MAX 100000000000000LL
#define LEDGER_FEE_BPS_MAX 10000

/* seq, "accepted"/"rejected", a balance or a reason, and the tabs. */
#define LEDGER_LINE_EXTRA 96
#define LEDGER_LINE_INITIAL 1024

struct rule {
	int sign;
	int64_t max_amount;
	int64_t fee_bps;
};

struct account {
	bool frozen;
	int64_t overdraft_limit;
};

/* Table rows parsed before, by their text: a row's text is all its parse
 * depends on, and texts repeat (thousands of accounts are "active<TAB>0",
 * every event of a type has the same rule). Direct-mapped: a slot taken by
 * another text only costs a parse. */
#define MEMO_SLOTS 64
#define MEMO_TEXT 40

struct memo {
	size_t len; /* 0: empty (no row parses from nothing) */
	char text[MEMO_TEXT];
	union {
		struct rule rule;
		struct account account;
	} parsed;
};

struct ledger {
	char *line; /* output line under construction */
	size_t cap;
	struct memo rules[MEMO_SLOTS], accounts[MEMO_SLOTS];
};

struct balance {
	int64_t balance;
	int64_t count;
};

/* One event: its payload, and the account's state after it. */
struct txn {
	struct ledger_payload in;
	struct balance after;
};

enum parse_result { PARSE_OK, PARSE_BAD, PARSE_RANGE };

/* ---- parsing and formatting ---------------------------------------------- */

/* A decimal integer, `-?[0-9]+` and nothing else. PARSE_RANGE when it is
 * well formed but does not fit in int64. */
static enum parse_result parse_i64(const char *s, size_t n, int64_t *v)
{
	bool neg = n > 0 && s[0] == '-', range = false;
	size_t i = neg ? 1 : 0;
	uint64_t acc = 0;

	if (i == n)
		return PARSE_BAD;
	/* Up to 18 digits cannot overflow: no check per digit (the common
	 * case: amounts, balances, counts). */
	if (n - i <= 18) {
		for (; i < n; i++) {
			unsigned d = (unsigned)((unsigned char)s[i] - '0');

			if (d > 9)
				return PARSE_BAD;
			acc = acc * 10 + d;
		}
		*v = neg ? -(int64_t)acc : (int64_t)acc;
		return PARSE_OK;
	}
	for (; i < n; i++) {
		unsigned d = (unsigned)((unsigned char)s[i] - '0');

		if (d > 9)
			return PARSE_BAD;
		/* Keep scanning after an overflow: "9...9x" is still malformed. */
		if (acc > (UINT64_MAX - d) / 10)
			range = true;
		else
			acc = acc * 10 + d;
	}
	if (range || acc > (uint64_t)INT64_MAX + (neg ? 1 : 0))
		return PARSE_RANGE;
	*v = neg ? -(int64_t)(acc - 1) - 1 : (int64_t)acc;
	return PARSE_OK;
}

/* An integer field in lo..hi. */
static bool field_i64(const struct rm_value *f, int64_t lo, int64_t hi, int64_t *v)
{
	return parse_i64(f->data, f->len, v) == PARSE_OK && *v >= lo && *v <= hi;
}

static bool field_is(const struct rm_value *f, const char *s)
{
	size_t n = strlen(s);

	return f->len == n && memcmp(f->data, s, n) == 0;
}

/* Split at tabs into at most `max` fields. Returns the number of fields, or
 * max + 1 if there are more. */
static int split_tabs(const char *s, size_t n, struct rm_value *f, int max)
{
	const char *end = s + n;

	for (int k = 0;; k++) {
		const char *tab = s < end ? memchr(s, '\t', (size_t)(end - s)) : NULL;

		if (k == max)
			return max + 1;
		f[k].data = s;
		f[k].len = (size_t)((tab ? tab : end) - s);
		if (!tab)
			return k + 1;
		s = tab + 1;
	}
}

/* Numbers and short fields straight into the line (bytes.h). */
static size_t put_u64(char *p, uint64_t v)
{
	return dec_u64(p, v);
}

static size_t put_i64(char *p, int64_t v)
{
	return dec_i64(p, v);
}

static char *put_bytes(char *p, const void *s, size_t n)
{
	return bytes_copy(p, s, n);
}

/* ---- tables and state ---------------------------------------------------- */

static int parse_rule(const struct rm_value *v, struct rule *r)
{
	struct rm_value f[3];

	if (split_tabs(v->data, v->len, f, 3) != 3)
		return -1;
	if (field_is(&f[0], "+1") || field_is(&f[0], "1"))
		r->sign = 1;
	else if (field_is(&f[0], "-1"))
		r->sign = -1;
	else
		return -1;
	if (!field_i64(&f[1], 1, LEDGER_AMOUNT_MAX, &r->max_amount) ||
	    !field_i64(&f[2], 0, LEDGER_FEE_BPS_MAX, &r->fee_bps))
		return -1;
	return 0;
}

static int parse_account(const struct rm_value *v, struct account *a)
{
	struct rm_value f[2];

	if (split_tabs(v->data, v->len, f, 2) != 2)
		return -1;
	if (field_is(&f[0], "frozen"))
		a->frozen = true;
	else if (field_is(&f[0], "active"))
		a->frozen = false;
	else
		return -1;
	return field_i64(&f[1], 0, LEDGER_AMOUNT_MAX, &a->overdraft_limit) ? 0 : -1;
}

/* "balance=<int> count=<int>", exactly. */
static int parse_state(const struct rm_value *v, struct balance *b)
{
	static const char bal[] = "balance=", cnt[] = " count=";
	const char *s = v->data, *end = s + v->len, *sp;

	if (v->len < sizeof(bal) - 1 || memcmp(s, bal, sizeof(bal) - 1) != 0)
		return -1;
	s += sizeof(bal) - 1;
	sp = memchr(s, ' ', (size_t)(end - s));
	if (!sp || parse_i64(s, (size_t)(sp - s), &b->balance) != PARSE_OK)
		return -1;
	if ((size_t)(end - sp) < sizeof(cnt) - 1 || memcmp(sp, cnt, sizeof(cnt) - 1) != 0)
		return -1;
	s = sp + sizeof(cnt) - 1;
	if (parse_i64(s, (size_t)(end - s), &b->count) != PARSE_OK || b->count < 0)
		return -1;
	return 0;
}

static size_t format_state(char *buf, const struct balance *b)
{
	char *p = put_bytes(buf, "balance=", 8);

	p += put_i64(p, b->balance);
	p = put_bytes(p, " count=", 7);
	p += put_i64(p, b->count);
	return (size_t)(p - buf);
}

static int parse_rule_v(const struct rm_value *v, void *out)
{
	return parse_rule(v, out);
}

static int parse_account_v(const struct rm_value *v, void *out)
{
	return parse_account(v, out);
}

/* A row's slot in a memo: from its length and its first and last bytes. */
static struct memo *memo_slot(struct memo *memo, const struct rm_value *v)
{
	uint64_t a = 0, b = 0;

	if (v->len >= 8) {
		memcpy(&a, v->data, 8);
		memcpy(&b, v->data + v->len - 8, 8);
	} else {
		for (size_t i = 0; i < v->len; i++)
			a = a << 8 | (unsigned char)v->data[i];
	}
	uint64_t h = (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^ v->len;

	h *= 0xff51afd7ed558ccdull;
	return &memo[h >> 58]; /* MEMO_SLOTS = 64 */
}

/* Look up a table row and parse it (or find it parsed in `memo`). Returns
 * 1 found, 0 not found, -1 error (logged). */
static inline int lookup(rm_ctx *ctx, const char *table, const struct rm_value *key,
			 int (*parse)(const struct rm_value *, void *), void *out, size_t out_size,
			 struct memo *memo)
{
	struct rm_value v;
	struct memo *m = NULL;
	int rc = rm_table_get(ctx, table, key->data, key->len, &v);

	if (rc == RM_NOTFOUND)
		return 0;
	if (rc < 0) {
		rm_log(ctx, RM_LOG_ERROR, "ledger: reading table %s for '%.*s' failed (error %d)",
		       table, (int)key->len, key->data, rc);
		return -1;
	}
	if (v.len > 0 && v.len <= MEMO_TEXT) {
		m = memo_slot(memo, &v);
		if (m->len == v.len && bytes_eq(m->text, v.data, v.len)) {
			memcpy(out, &m->parsed, out_size);
			return 1;
		}
	}
	if (parse(&v, out) < 0) {
		rm_log(ctx, RM_LOG_ERROR, "ledger: table %s: row '%.*s' does not parse: '%.*s'",
		       table, (int)key->len, key->data, (int)v.len, v.data);
		return -1;
	}
	if (m) {
		m->len = v.len;
		memcpy(m->text, v.data, v.len);
		memcpy(&m->parsed, out, out_size);
	}
	return 1;
}

/* The account's balance before this event (none yet: 0 and 0). */
static int load_balance(rm_ctx *ctx, const struct rm_value *account, struct balance *b)
{
	struct rm_value v;
	int rc = rm_state_get(ctx, account->data, account->len, &v);

	b->balance = 0;
	b->count = 0;
	if (rc == RM_NOTFOUND)
		return 0;
	if (rc < 0) {
		rm_log(ctx, RM_LOG_ERROR, "ledger: reading state of '%.*s' failed (error %d)",
		       (int)account->len, account->data, rc);
		return -1;
	}
	if (parse_state(&v, b) < 0) {
		rm_log(ctx, RM_LOG_ERROR, "ledger: state of '%.*s' does not parse: '%.*s'",
		       (int)account->len, account->data, (int)v.len, v.data);
		return -1;
	}
	return 0;
}

/* ---- the rules ----------------------------------------------------------- */

/* Record a business rejection; for `return reject_as(reason, "...")`. */
static int reject_as(const char **reason, const char *why)
{
	*reason = why;
	return 0;
}

/* Apply the checks in order. Returns 0 and sets *reason (NULL = accepted,
 * with t->after the new state), or -1 on an error (logged). */
static int decide(rm_ctx *ctx, struct ledger *l, const struct rm_value *account, struct txn *t,
		  const char **reason)
{
	struct rule rule;
	struct account acct;
	int rc;

	rc = lookup(ctx, "rules", &t->in.type, parse_rule_v, &rule, sizeof(rule), l->rules);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return reject_as(reason, "unknown_type");
	rc = lookup(ctx, "accounts", account, parse_account_v, &acct, sizeof(acct), l->accounts);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return reject_as(reason, "unknown_account");
	if (acct.frozen)
		return reject_as(reason, "frozen");
	if (!t->in.amount_fits || t->in.amount < 1 || t->in.amount > rule.max_amount)
		return reject_as(reason, "amount_out_of_range");

	/* Both bounded by the table limits: no overflow here. */
	int64_t fee = t->in.amount * rule.fee_bps / 10000;
	int64_t delta = rule.sign * t->in.amount - fee;
	struct balance *b = &t->after;

	if (load_balance(ctx, account, b) < 0)
		return -1;
	int64_t next;

	if (__builtin_add_overflow(b->balance, delta, &next) || b->count == INT64_MAX)
		return reject_as(reason, "balance_overflow");
	if (delta < 0 && next < -acct.overdraft_limit)
		return reject_as(reason, "insufficient_funds");
	b->balance = next;
	b->count++;
	*reason = NULL;
	return 0;
}

/* ---- output -------------------------------------------------------------- */

/* Grow the line buffer when an event is bigger than any before; the common
 * case is no allocation at all. */
static int reserve_line(rm_ctx *ctx, struct ledger *l, size_t need)
{
	if (need <= l->cap)
		return 0;
	char *p = realloc(l->line, need);

	if (!p) {
		rm_log(ctx, RM_LOG_ERROR, "ledger: out of memory for a %zu-byte output line", need);
		return -1;
	}
	l->line = p;
	l->cap = need;
	return 0;
}

/* seq, account, type, amount, then "accepted<TAB>balance" or
 * "rejected<TAB>reason". */
static int emit_outcome(rm_ctx *ctx, struct ledger *l, const struct rm_event *ev,
			const struct txn *t, const char *reason)
{
	size_t need = ev->key_len + t->in.type.len + t->in.amount_text.len + LEDGER_LINE_EXTRA;

	if (reserve_line(ctx, l, need) < 0)
		return -1;
	char *p = l->line;

	p += put_u64(p, ev->seq);
	*p++ = '\t';
	p = put_bytes(p, ev->key, ev->key_len);
	*p++ = '\t';
	p = put_bytes(p, t->in.type.data, t->in.type.len);
	*p++ = '\t';
	p = put_bytes(p, t->in.amount_text.data, t->in.amount_text.len);
	if (reason) {
		p = put_bytes(p, "\trejected\t", 10);
		p = put_bytes(p, reason, strlen(reason));
	} else {
		p = put_bytes(p, "\taccepted\t", 10);
		p += put_i64(p, t->after.balance);
	}
	int rc = rm_emit(ctx, l->line, (size_t)(p - l->line));

	if (rc < 0) {
		rm_log(ctx, RM_LOG_ERROR, "ledger: emitting output failed (error %d)", rc);
		return -1;
	}
	return 0;
}

/* A JSON payload read with yajl's callbacks: the top-level fields type,
 * amount and to; anything else is skipped. */
struct json_fields {
	struct ledger_payload *out;
	unsigned depth; /* maps and arrays open */
	int field;	/* the top-level field whose value comes next */
	int have_type;
	int have_amount;
};

enum { F_OTHER, F_TYPE, F_AMOUNT, F_TO };

/* A value of the wrong kind for its field (or a top level that is not an
 * object) stops the parse: the payload is malformed. */
static int json_other(void *ctx)
{
	struct json_fields *j = ctx;

	return j->depth > 1 || (j->depth == 1 && j->field == F_OTHER);
}

static int json_bool(void *ctx, int b)
{
	(void)b;
	return json_other(ctx);
}

static int json_number(void *ctx, const char *s, size_t n)
{
	struct json_fields *j = ctx;
	struct ledger_payload *out = j->out;

	if (j->depth != 1 || j->field != F_AMOUNT)
		return json_other(ctx);
	/* Cents are integers; the text is kept as written, as for TSV. */
	if (n > sizeof(out->amount_buf) || memchr(s, '.', n) || memchr(s, 'e', n) ||
	    memchr(s, 'E', n))
		return 0;
	memcpy(out->amount_buf, s, n);
	out->amount_text = (struct rm_value){out->amount_buf, n};
	out->amount = 0;
	switch (parse_i64(out->amount_buf, n, &out->amount)) {
	case PARSE_OK:
		out->amount_fits = true;
		break;
	case PARSE_RANGE:
		out->amount_fits = false;
		out->amount = 0;
		break;
	default:
		return 0;
	}
	j->have_amount = 1;
	return 1;
}

static int json_string(void *ctx, const unsigned char *s, size_t n)
{
	struct json_fields *j = ctx;

	if (j->depth != 1 || (j->field != F_TYPE && j->field != F_TO))
		return json_other(ctx);
	if (j->field == F_TO)
		return 1;
	if (n == 0 || n > LEDGER_TYPE_MAX || memchr(s, '\t', n))
		return 0;
	memcpy(j->out->type_buf, s, n);
	j->out->type = (struct rm_value){j->out->type_buf, n};
	j->have_type = 1;
	return 1;
}

static int json_start_map(void *ctx)
{
	struct json_fields *j = ctx;

	if (j->depth && !json_other(ctx))
		return 0;
	j->depth++;
	return 1;
}

static int json_start_array(void *ctx)
{
	struct json_fields *j = ctx;

	if (!json_other(ctx))
		return 0;
	j->depth++;
	return 1;
}

static int json_end(void *ctx)
{
	((struct json_fields *)ctx)->depth--;
	return 1;
}

static int json_key(void *ctx, const unsigned char *s, size_t n)
{
	struct json_fields *j = ctx;

	if (j->depth == 1)
		j->field = n == 4 && !memcmp(s, "type", 4)     ? F_TYPE
			   : n == 6 && !memcmp(s, "amount", 6) ? F_AMOUNT
			   : n == 2 && !memcmp(s, "to", 2)     ? F_TO
							       : F_OTHER;
	return 1;
}

static const yajl_callbacks json_callbacks = {
    .yajl_null = json_other,
    .yajl_boolean = json_bool,
    .yajl_number = json_number,
    .yajl_string = json_string,
    .yajl_start_map = json_start_map,
    .yajl_map_key = json_key,
    .yajl_end_map = json_end,
    .yajl_start_array = json_start_array,
    .yajl_end_array = json_end,
};

/* A JSON payload; -1 when it is not one valid JSON object of the right
 * shape (the whole payload is parsed). */
static int parse_json_payload(const char *payload, size_t len, struct ledger_payload *out)
{
	struct json_arena arena;
	yajl_alloc_funcs af = json_arena_funcs(&arena);
	struct json_fields j = {.out = out};
	yajl_handle h = yajl_alloc(&json_callbacks, &af, &j);
	int ok;

	if (!h)
		return -1;
	ok = yajl_parse(h, (const unsigned char *)payload, len) == yajl_status_ok &&
	     yajl_complete_parse(h) == yajl_status_ok && j.have_type && j.have_amount;
	yajl_free(h);
	return ok ? 0 : -1;
}

int ledger_parse_payload(const char *payload, size_t len, struct ledger_payload *out)
{
	struct rm_value f[2];

	size_t lead = 0;

	/* JSON's white space: a JSON line may start with some. */
	while (lead < len && (payload[lead] == ' ' || payload[lead] == '\t' ||
			      payload[lead] == '\r' || payload[lead] == '\n'))
		lead++;
	if (lead < len && payload[lead] == '{' && parse_json_payload(payload, len, out) == 0)
		return 0;

	if (split_tabs(payload, len, f, 2) != 2 || f[0].len == 0)
		return -1;
	out->type = f[0];
	out->amount_text = f[1];
	out->amount = 0;
	switch (parse_i64(f[1].data, f[1].len, &out->amount)) {
	case PARSE_OK:
		out->amount_fits = true;
		return 0;
	case PARSE_RANGE:
		out->amount_fits = false;
		return 0;
	default:
		return -1;
	}
}

static int ledger_process(rm_ctx *ctx, void *state, const struct rm_event *ev)
{
	struct ledger *l = state;
	struct rm_value account = {ev->key, ev->key_len};
	struct txn t;
	const char *reason;

	if (ledger_parse_payload(ev->payload, ev->payload_len, &t.in) < 0) {
		rm_reject(ctx, "malformed");
		return RM_REJECT;
	}
	if (decide(ctx, l, &account, &t, &reason) < 0)
		return RM_ERROR;
	if (!reason) {
		char buf[64];
		size_t n = format_state(buf, &t.after);
		int rc = rm_state_put(ctx, ev->key, ev->key_len, buf, n);

		if (rc < 0) {
			rm_log(ctx, RM_LOG_ERROR,
			       "ledger: storing state of '%.*s' failed (error %d)",
			       (int)ev->key_len, ev->key, rc);
			return RM_ERROR;
		}
	}
	if (emit_outcome(ctx, l, ev, &t, reason) < 0)
		return RM_ERROR;
	rm_count(ctx, reason ? reason : "accepted");
	return RM_OK;
}

/* ---- lifecycle ----------------------------------------------------------- */

static int ledger_init(rm_ctx *ctx, void **state)
{
	struct ledger *l = calloc(1, sizeof(*l));

	if (l)
		l->line = malloc(LEDGER_LINE_INITIAL);
	if (!l || !l->line) {
		rm_log(ctx, RM_LOG_ERROR, "ledger: out of memory at start");
		free(l);
		return -1;
	}
	l->cap = LEDGER_LINE_INITIAL;
	*state = l;
	return 0;
}

static void ledger_fini(rm_ctx *ctx, void *state)
{
	struct ledger *l = state;

	(void)ctx;
	if (l)
		free(l->line);
	free(l);
}

const struct rm_handler ledger_handler = {
    .abi_version = RM_ABI_VERSION,
    .name = "ledger",
    .init = ledger_init,
    .process = ledger_process,
    .fini = ledger_fini,
    .on_reload = NULL,
};
