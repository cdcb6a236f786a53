/* src_generate.c - the deterministic generator as a source: the same
 * events, with the same seqs, as the TSV file it would write (gen.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "gen.h"
#include "log.h"
#include "source.h"

struct src_gen {
	struct gen *g;
	uint64_t next_seq, size;
	/* The event made but not taken (its ring was full). */
	int pending;
	uint64_t seq;
	size_t key_len, payload_len;
	char key[GEN_KEY_MAX], payload[GEN_PAYLOAD_MAX];
};

static int gen_open(struct source *src)
{
	const struct cfg *c = src->cfg;
	struct gen_params p = {c->gen_events, c->gen_keys, c->gen_seed, c->gen_skew};
	struct src_gen *sg = calloc(1, sizeof(*sg));
	if (!sg || !(sg->g = gen_new(&p))) {
		log_error("cannot start the generator: %s", strerror(errno));
		free(sg);
		return 1;
	}
	src->priv = sg;
	sg->size = p.events;
	sg->next_seq = src->resume_seq;
	gen_seek(sg->g, src->resume_seq);
	return 0;
}

static int gen_pollfd(struct source *src, int *idle_ms)
{
	(void)src;
	*idle_ms = 0; /* never idle: it ends */
	return -1;
}

static enum src_result gen_read(struct source *src, unsigned budget)
{
	struct src_gen *sg = src->priv;
	for (unsigned n = 0; n < budget; n++) {
		if (!sg->pending && !gen_next(sg->g, sg->key, &sg->key_len, sg->payload,
					      &sg->payload_len, &sg->seq))
			return SRC_END;
		sg->pending = 1;
		int rc = sup_dispatch(src->sup, -1, sg->seq, sg->key, sg->key_len, sg->payload,
				      sg->payload_len, NULL, 0);
		if (rc == -EAGAIN)
			return SRC_FULL;
		if (rc != 0)
			return SRC_ERROR;
		sg->pending = 0;
		sg->next_seq = sg->seq + sg->key_len + sg->payload_len + 2; /* as in the TSV file */
	}
	return SRC_MORE;
}

static void gen_position(const struct source *src, struct src_pos *pos)
{
	const struct src_gen *sg = src->priv;
	pos->next_seq = sg->next_seq;
	pos->read = gen_produced(sg->g) - (uint64_t)sg->pending;
	pos->size = sg->size;
}

static int gen_close(struct source *src)
{
	struct src_gen *sg = src->priv;
	if (sg) {
		gen_free(sg->g);
		free(sg);
		src->priv = NULL;
	}
	return 0;
}

const struct source_ops src_generate_ops = {
    .name = "generate",
    .open = gen_open,
    .pollfd = gen_pollfd,
    .read = gen_read,
    .position = gen_position,
    .close = gen_close,
};
