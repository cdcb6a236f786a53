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

/* Longest type a JSON payload may give (its text is copied out of the
 * parse); far beyond any rule's name. */
#define LEDGER_TYPE_MAX 255

/* An event's payload, `type<TAB>amount` or a JSON object, parsed. For TSV,
 * type and amount_text point into the payload; for JSON, into type_buf and
 * amount_buf (so the struct is used where it was filled, not copied). */
struct ledger_payload {
	struct rm_value type;	     /* 1 or more bytes, no tab */
	struct rm_value amount_text; /* as written: `-?[0-9]+` */
	int64_t amount;		     /* the amount in cents when amount_fits, else 0 */
	bool amount_fits;	     /* false: well formed, but beyond int64 */
	char type_buf[LEDGER_TYPE_MAX];
	char amount_buf[32];
};

/* Parse a payload of len bytes. Returns 0, or -1 when it is malformed.
 *
 * TSV: malformed is not exactly two tab-separated fields, an empty type, or
 * an amount that is not `-?[0-9]+` ("12x", "", "+5" and "-" are not). A
 * well-formed amount too big for int64 is not malformed: it is out of
 * range, which the handler tells apart (ledger.c).
 *
 * JSON, tried first when the payload starts with '{' (after JSON white
 * space, if any): a TSV payload ends in a digit, a JSON object in '}' or
 * white space, so no payload is both. It must be exactly one valid JSON
 * object (yajl reads the whole payload: nothing but white space after it),
 * with "type", a string of 1..LEDGER_TYPE_MAX bytes
 * without a tab, and "amount", an integer; "to", if present, a string
 * (the ledger moves only the event's account: a transfer is a
 * transfer_out event and a transfer_in event). Other fields are ignored.
 * amount_text is the integer as written; one beyond int64 is out of range,
 * as for TSV; one of more than sizeof(amount_buf) characters is malformed. A payload starting with
 * '{' that is not such an object is parsed as TSV, so every TSV payload means what it always did.
 *
 * Pure: no handler context, no malloc (yajl's memory is on the stack,
 * json_arena.h). */
int ledger_parse_payload(const char *payload, size_t len, struct ledger_payload *out);

#endif
