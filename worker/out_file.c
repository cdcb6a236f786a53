/* out_file.c - [output] type = file: each worker appends its lines to
 * <output dir>/pN.tsv (pN.gG.tsv once the state was re-split: rescale.h).
 * The shard records the file's length with every commit; at open, whatever
 * lies past it (a batch that never committed, written again when it is
 * redone) is cut, so each line lands exactly once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "log.h"
#include "output.h"
#include "rescale.h"

/* Ask the kernel to start writing the file out every this many bytes
 * (sync_file_range, which does not wait): the periodic fdatasync then finds
 * the interval's output mostly on disk already instead of writing all of it
 * while the worker waits. */
#define OUT_FILE_KICK (8u << 20)

struct out_file {
	int fd;
	uint64_t kicked; /* writing out was started below here */
	char path[4096];
};

static void out_file_close(void *state)
{
	struct out_file *f = state;
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

/* Cut the file to what the shard says was committed. */
static int out_file_cut(struct out_file *f, uint64_t *len)
{
	struct stat st;
	if (fstat(f->fd, &st) != 0) {
		log_error("%s: %s", f->path, strerror(errno));
		return -1;
	}
	if ((uint64_t)st.st_size > *len) {
		log_info("truncating output to the last commit path=%s from=%lld to=%llu", f->path,
			 (long long)st.st_size, (unsigned long long)*len);
		if (ftruncate(f->fd, (off_t)*len) != 0) {
			log_error("%s: cannot truncate: %s", f->path, strerror(errno));
			return -1;
		}
	} else if ((uint64_t)st.st_size < *len) {
		log_warn("%s is shorter than its last commit recorded (%lld < %llu bytes): "
			 "was it truncated by hand? continuing at its end",
			 f->path, (long long)st.st_size, (unsigned long long)*len);
		*len = (uint64_t)st.st_size;
	}
	return 0;
}

static int out_file_open(void **state, const struct output_env *env, uint64_t *len)
{
	struct out_file *f = calloc(1, sizeof(*f));
	*state = NULL;
	if (!f) {
		log_error("out of memory");
		return -1;
	}
	rescale_output_path(f->path, sizeof(f->path), env->cfg->output_dir, env->partition,
			    env->cfg->output_layout);
	f->fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (f->fd < 0) {
		log_error("%s: cannot open output: %s", f->path, strerror(errno));
		out_file_close(f);
		return -1;
	}
	if (out_file_cut(f, len) != 0) {
		out_file_close(f);
		return -1;
	}
	f->kicked = *len;
	*state = f;
	return 0;
}

static int write_all_at(int fd, const char *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Past the recorded length: a crash before the commit is undone by the
 * cut at the next open. */
static int out_file_write_batch(void *state, const struct rm_ctx *ctx, uint64_t at)
{
	struct out_file *f = state;
	if (!ctx->out_len)
		return 0;
	int rc = write_all_at(f->fd, ctx->out, ctx->out_len, at);
	if (rc != 0) {
		log_error("%s: cannot write output: %s", f->path, strerror(-rc));
		return -1;
	}
	uint64_t end = at + ctx->out_len;
	if (end < f->kicked) /* cut back at open, or redone */
		f->kicked = at;
	if (end - f->kicked >= OUT_FILE_KICK) {
		/* A hint: a failure here shows at the fdatasync. */
		(void)sync_file_range(f->fd, (off_t)f->kicked, (off_t)(end - f->kicked),
				      SYNC_FILE_RANGE_WRITE);
		f->kicked = end;
	}
	return 0;
}

static int out_file_sync(void *state, const char **what)
{
	struct out_file *f = state;
	*what = f->path;
	return fdatasync(f->fd) != 0 ? -errno : 0;
}

const struct output_ops output_file = {
    .name = "file",
    .open = out_file_open,
    .write_batch = out_file_write_batch,
    .sync = out_file_sync,
    .close = out_file_close,
};
