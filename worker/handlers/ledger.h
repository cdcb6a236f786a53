/* ledger.h - the built-in `ledger` handler: applies deposits, payments and
 * transfers to per-account balances under the `rules` and `accounts`
 * reference tables, and writes one outcome line per event. See ledger.c for
 * the rules it enforces and the formats it reads and writes. */
#ifndef RM_LEDGER_H
#define RM_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringmaster.h"

extern const struct rm_handler ledger_handler;

/* An event's payload, `type<TAB>amount`, split and parsed. type and
 * amount_text point into the payload. */
struct ledger_payload {
	struct rm_value type;	     /* 1 or more bytes, no tab */
	struct rm_value amount_text; /* as written: `-?[0-9]+` */
	int64_t amount;		     /* the amount in cents when amount_fits, else 0 */
	bool amount_fits;	     /* false: well formed, but beyond int64 */
};

/* Parse a payload of len bytes. Returns 0, or -1 when it is malformed: not
 * exactly two tab-separated fields, an empty type, or an amount that is not
 * `-?[0-9]+` ("12x", "", "+5" and "-" are not). A well-formed amount too big
 * for int64 is not malformed: it is out of range, which the handler tells
 * apart (ledger.c). Pure: no handler context, no allocation. */
int ledger_parse_payload(const char *payload, size_t len, struct ledger_payload *out);

#endif
