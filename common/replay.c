/* replay.c - replay seqs and records (see replay.h). */
#include "replay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store.h"

void replay_seqs_name(char name[REPLAY_NAME_LEN], uint64_t number)
{
	snprintf(name, REPLAY_NAME_LEN, "replay/%" PRIu64, number);
}

void replay_file_name(char name[REPLAY_NAME_LEN], uint64_t number)
{
	snprintf(name, REPLAY_NAME_LEN, "replay/%" PRIu64 "/file", number);
}

uint64_t replay_hash(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

int replay_orig_seq(struct store_txn *cfg_txn, uint64_t seq, uint64_t *orig)
{
	char name[REPLAY_NAME_LEN];
	struct store_val v;
	if (!replay_is(seq))
		return -ENOENT;
	replay_seqs_name(name, replay_number(seq));
	int rc = store_config_get_blob(cfg_txn, name, &v);
	if (rc)
		return rc;
	uint64_t at = replay_index(seq) * 8;
	if (at + 8 > v.len)
		return -ENOENT;
	const unsigned char *b = (const unsigned char *)v.data + at;
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--)
		x = x << 8 | b[i];
	if (x == REPLAY_NO_SEQ)
		return -ENOENT;
	*orig = x;
	return 0;
}
