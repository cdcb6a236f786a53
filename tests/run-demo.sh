#!/usr/bin/env bash
# run-demo.sh BINDIR - what `make run` does: the ledger demo on the shipped
# config (etc/ringmaster.ini), into var/. The demo starts from an empty var/
# each time: over a data_dir that has already applied these events, a run
# would (correctly) apply nothing.
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/bin}
rm -rf var/data var/out var/run var/dead_letter.tsv var/.dead_letter.tsv.owner
echo "ringmaster demo: 2,000,000 generated ledger events, 4 partitions (etc/ringmaster.ini)"
"$bin/ringmaster" -c etc/ringmaster.ini --summary var/summary.json
cat <<TXT

Output is in var/out/p*.tsv, rejected events in var/dead_letter.tsv, the run's
summary in var/summary.json. Look at the state with:

  $bin/ringctl -c etc/ringmaster.ini state acct00000042
  $bin/ringctl -c etc/ringmaster.ini dump-state | head
TXT
