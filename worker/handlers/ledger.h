/* ledger.h - the built-in `ledger` handler: applies deposits, payments and
 * transfers to per-account balances under the `rules` and `accounts`
 * reference tables, and writes one outcome line per event. See ledger.c for
 * the rules it enforces and the formats it reads and writes. */
#ifndef RM_LEDGER_H
#define RM_LEDGER_H

#include "ringmaster.h"

extern const struct rm_handler ledger_handler;

#endif
