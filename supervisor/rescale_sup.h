/* rescale_sup.h - the supervisor's side of a rescale (common/rescale.h):
 * at every start, put right a re-split a crash interrupted; with
 * --rescale, re-split a cleanly stopped data_dir for the configured
 * partition count; and take the output file generation from the shards.
 *
 * "Cleanly stopped" means the shards hold exactly the events before the
 * recorded resume position (the watermark): no shard applied an event at or
 * past it. A run that ended, or was stopped by SIGTERM, drained its rings and
 * recorded the watermark past everything applied; a crash, a kill -9 or a
 * failed partition leaves shards ahead of it, and their events after it
 * would be redone into new shards that already count them as applied. */
#ifndef RM_RESCALE_SUP_H
#define RM_RESCALE_SUP_H

struct sup;

/* With the config environment open, before any shard is opened: recover,
 * then re-split when s->rescale. Returns 0 or an exit status (logged). */
int rsc_prepare(struct sup *s);

/* After the shards were checked: s->cfg.output_layout from shard 0, kept
 * in the config environment's meta as "layout" too. 0 or an exit status. */
int rsc_layout(struct sup *s);

#endif
