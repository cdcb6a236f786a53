/* src_line.c - what the text sources share: a line, or a message in two
 * parts, turned into an event or a dead letter (see source.h), by
 * [source] format: key<delimiter>payload (tsv) or a JSON object (jsonl). */
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "event.h"
#include "log.h"
#include "source.h"
#include "stage.h"

static int src_json(struct source *src, int partition, uint64_t seq, const char *line, size_t len,
		    uint64_t total)
{
	/* Per thread, as a source runs in one: yajl's scratch memory. */
	static _Thread_local struct event_json_parser jp;
	struct event_json ev;
	uint64_t t0 = stage_sampled(seq) ? shm_now_ns() : 0;
	const char *reason =
	    event_parse_json(&jp, line, len, src->cfg->source_key, src->cfg->max_event_size, &ev);
	if (t0)
		sup_note_parse(src->sup, shm_now_ns() - t0);

	if (reason && total > len) /* as below: a line cut short is too long */
		return sup_dead_letter(src->sup, seq, reason, line, len, total);
	if (reason)
		return sup_dead_letter(src->sup, seq, reason, line, ev.len, ev.len);
	return sup_dispatch(src->sup, partition, seq, ev.key, ev.key_len, ev.payload,
			    ev.payload_len, line, ev.len);
}

int src_line(struct source *src, int partition, uint64_t seq, const char *line, size_t len,
	     uint64_t total)
{
	if (src->cfg->source_format == CFG_FORMAT_JSONL)
		return src_json(src, partition, seq, line, len, total);

	struct event_line ev;
	uint64_t t0 = stage_sampled(seq) ? shm_now_ns() : 0;
	const char *reason =
	    event_parse_line(line, len, src->cfg->delimiter, src->cfg->max_event_size, &ev);
	if (t0)
		sup_note_parse(src->sup, shm_now_ns() - t0);

	if (reason && total > len) /* all that was kept: a CR at the cut is not the end */
		return sup_dead_letter(src->sup, seq, reason, line, len, total);
	if (reason)
		return sup_dead_letter(src->sup, seq, reason, line, ev.len, ev.len);
	return sup_dispatch(src->sup, partition, seq, line, ev.key_len, ev.payload, ev.payload_len,
			    line, ev.len);
}

size_t src_line_limit(const struct source *src)
{
	return (size_t)src->cfg->max_event_size + 2;
}

int src_pair(struct source *src, struct src_joined *j, int partition, uint64_t seq, const char *key,
	     size_t key_len, const char *val, size_t val_len)
{
	/* A JSON value carries its own key: the message's key only chose
	 * where the message went, and the value alone is the line. */
	if (src->cfg->source_format == CFG_FORMAT_JSONL) {
		size_t keep = val_len < src_line_limit(src) ? val_len : src_line_limit(src);

		return src_line(src, partition, seq, val, keep, val_len);
	}

	char delim = src->cfg->delimiter;
	size_t want = key_len + 1 + val_len;
	size_t len = want < src_line_limit(src) ? want : src_line_limit(src);
	if (len > j->cap) {
		char *p = realloc(j->buf, len);
		if (!p) {
			log_error("%s: out of memory for a message of %zu bytes", src->ops->name,
				  want);
			return -1;
		}
		j->buf = p;
		j->cap = len;
	}
	size_t k = key_len < len ? key_len : len;
	memcpy(j->buf, key, k);
	if (k < len)
		j->buf[k] = delim;
	if (k + 1 < len)
		memcpy(j->buf + k + 1, val, len - k - 1);
	if (memchr(key, delim, key_len) || memchr(key, '\n', key_len))
		return sup_dead_letter(src->sup, seq, "bad_key", j->buf, len, want);
	return src_line(src, partition, seq, j->buf, len, want);
}
