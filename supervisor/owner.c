/* owner.c - one owner for a data_dir and its files (see owner.h). */
#include "owner.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sysexits.h>
#include <unistd.h>

#include "durable.h"
#include "log.h"
#include "rescale.h"
#include "store.h"
#include "supervisor.h"

#define ORPHAN_POLL_US 50000
#define ORPHAN_LOG_EVERY_NS 5000000000ull

int own_lock_data_dir(struct sup *s)
{
	char path[4200], err[DUR_ERR_LEN];
	pid_t holder;
	snprintf(path, sizeof(path), "%s/lock", s->cfg.data_dir);
	int rc = dur_lock(path, &s->data_lock_fd, &holder, err);
	if (rc == -EWOULDBLOCK) {
		log_error("another ringmaster (pid %ld) is running on data_dir %s (it holds %s): "
			  "a data_dir has one owner; stop that one, or give this one another "
			  "data_dir",
			  (long)holder, s->cfg.data_dir, path);
		return -1;
	}
	if (rc) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

int own_wait_for_orphans(struct sup *s)
{
	char path[4200];
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		snprintf(path, sizeof(path), "%s/state/p%u/owner.lock", s->cfg.data_dir, p);
		pid_t logged = 0;
		uint64_t next_log = 0;
		for (;;) {
			pid_t holder = dur_lock_holder(path);
			if (holder == 0)
				break;
			if (holder < 0) {
				log_error("%s: cannot read the lock: %s", path, strerror(-holder));
				return -1;
			}
			uint64_t now = shm_now_ns();
			if (holder != logged || now >= next_log) {
				log_info(
				    "waiting for worker pid %ld of a previous instance to exit "
				    "(it still writes partition %u)",
				    (long)holder, p);
				logged = holder;
				next_log = now + ORPHAN_LOG_EVERY_NS;
			}
			if (sup_stop)
				return -1;
			usleep(ORPHAN_POLL_US);
		}
	}
	return 0;
}

/* sync = none keeps nothing across an OS crash, and nothing says whether
 * the last reboot was clean: a data_dir it left dirty under another boot
 * is refused, unless the operator says to go on. */
static int check_boot(struct sup *s)
{
	uint64_t now = dur_boot_id(), dirty = 0;
	int rc = store_meta_get_u64(s->config, "dirty_boot", &dirty);
	if (rc && rc != -ENOENT) {
		log_error("%s: cannot read the data_dir's boot mark: %s", s->cfg.data_dir,
			  strerror(-rc));
		return -1;
	}
	if (dirty && dirty != now) {
		if (!s->force_recover) {
			log_error("%s was being written with sync = none when the machine went "
				  "down (it has rebooted since, without a clean stop of "
				  "ringmaster): what the OS had not written yet is lost, so its "
				  "state, outputs and resume position may disagree or be corrupt. "
				  "Start with an empty data_dir and output directory, or pass "
				  "--force-recover to resume from it anyway",
				  s->cfg.data_dir);
			return -1;
		}
		log_warn("%s was left by sync = none across a reboot: resuming anyway "
			 "(--force-recover); state and outputs may have lost recent events",
			 s->cfg.data_dir);
	}
	if (s->cfg.sync == CFG_SYNC_NONE && dirty != now &&
	    store_meta_put_u64(s->config, "dirty_boot", now) != 0) {
		log_error("%s: cannot record the boot mark", s->cfg.data_dir);
		return -1;
	}
	return 0;
}

static int data_dir_id(struct sup *s)
{
	uint64_t id;
	if (store_meta_get_u64(s->config, "data_dir_id", &id) == 0) {
		s->data_dir_id = id;
		return 0;
	}
	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
		log_error("cannot make a data_dir id: %s", strerror(errno));
		return -1;
	}
	id = id ? id : 1;
	if (store_meta_put_u64(s->config, "data_dir_id", id) != 0) {
		log_error("%s: cannot record the data_dir id", s->cfg.data_dir);
		return -1;
	}
	s->data_dir_id = id;
	return 0;
}

static int own_one(struct sup *s, const char *path, mode_t mode, const char *data_dir)
{
	char err[DUR_ERR_LEN];
	if (dur_own_file(path, mode, s->data_dir_id, data_dir, err) != 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

int own_files(struct sup *s)
{
	const struct cfg *c = &s->cfg;
	char data_dir[PATH_MAX], path[4200];
	if (data_dir_id(s) != 0)
		return EX_CANTCREAT;
	if (check_boot(s) != 0)
		return EX_DATAERR;
	if (!realpath(c->data_dir, data_dir))
		snprintf(data_dir, sizeof(data_dir), "%s", c->data_dir);
	if (c->output_type == CFG_OUTPUT_FILE) {
		for (unsigned p = 0; p < c->partitions; p++) {
			rescale_output_path(path, sizeof(path), c->output_dir, p, c->output_layout);
			if (own_one(s, path, 0644, data_dir) != 0)
				return EX_CANTCREAT;
		}
	}
	return own_one(s, c->dead_letter, 0640, data_dir) ? EX_CANTCREAT : 0;
}

void own_clean_exit(struct sup *s)
{
	uint64_t dirty = 0;
	if (store_meta_get_u64(s->config, "dirty_boot", &dirty) != 0 || !dirty)
		return;
	if (store_meta_put_u64(s->config, "dirty_boot", 0) != 0)
		log_warn("%s: cannot record the clean stop", s->cfg.data_dir);
}
