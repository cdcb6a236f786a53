/* rescale_sup.h - the supervisor's side of a rescale (common/rescale.h):
 * at every start, put right a re-split a crash interrupted; with
 * --rescale, re-split a cleanly stopped data_dir for the configured
 * partition count; and take the output file generation from the shards.
 *
 * "Cleanly stopped" means the shards hold exactly the events before the
 * recorded resume position (the watermark): no shard applied an event at or
 * past it. A run that ended, or was stopped by SIGTERM, drained its rings and
 * recorded the watermark past everything applied; a rescale's cut recorded
 * its position, which every worker stopped at; a crash, a kill -9 or a
 * failed partition leaves shards ahead of it, and their events after it
 * would be redone into new shards that already count them as applied. */
#ifndef RM_RESCALE_SUP_H
#define RM_RESCALE_SUP_H

struct proto_buf;
struct sup;

/* With the config environment open, before any shard is opened: recover,
 * then re-split when s->rescale. Returns 0 or an exit status (logged). */
int rsc_prepare(struct sup *s);

/* After the shards were checked: s->cfg.output_layout from shard 0, kept
 * in the config environment's meta as "layout" too. 0 or an exit status. */
int rsc_layout(struct sup *s);

/* ringctl rescale N on a running instance: refused (-1, the reason in b)
 * for a Kafka source, the count it has, a failed partition or held events,
 * a handler swap or a barrier going on, or an instance not running. Else,
 * in this turn of the loop, the cut is asked for: the source is read no
 * further, and a stop barrier (SHM_BARRIER_STOP), its position still to be
 * chosen (see rsc_cut_place), goes to every partition; each worker commits
 * and syncs what is before its barrier and exits 0, leaving the rest in its
 * ring (read again from P after the restart). A zmq source, whose events cannot be read
 * again, has its rings drained instead. sup_run returns with
 * s->rescale_to = n: main() execs ringmaster again with the same
 * arguments plus -o ringmaster.partitions=N --rescale (the same pid; the
 * source resumes from its position once the state is re-split). */
int rsc_request(struct sup *s, unsigned n, struct proto_buf *b);

/* The cut's barriers are placed once every worker reported where it is
 * (rsc_cut_ready: 1 then, or when the cut is to be given up: a worker
 * died, a partition failed, stop_timeout passed). rsc_cut_place picks the
 * cut P: past every seq a shard applied or the source dead-lettered, at
 * the earliest event still in a ring past that (else the source's
 * position); each ring's barrier goes before its first event at or past P.
 * Given up, every barrier goes to the end of its ring (a drain) and
 * rsc_cut_end abandons the rescale. */
int rsc_cut_ready(struct sup *s);
void rsc_cut_place(struct sup *s);

/* After the workers stopped at a cut (s->cut): when each one stopped
 * cleanly at its barrier with no worker dying meanwhile, record P as the
 * resume position (durably) and return 0; else the rescale is abandoned
 * (s->cut_failed, logged) and -1 returned: the caller records the
 * watermark as at any stop. */
int rsc_cut_end(struct sup *s);

/* After sup_run, with s->rescale_to set: exec ringmaster with `argv`
 * (the command line as it was given, copied before proctitle_init), plus
 * the new count and --rescale when the stop was clean (`status` 0), else
 * as it was (logged: the rescale is abandoned, the instance goes on at
 * its old count). Returns only when the exec failed (logged), with the
 * exit status to give. */
int rsc_exec(struct sup *s, int status, int argc, char **argv);

#endif
