/* src_spool.c - the spool source: the files of a directory that match a
 * pattern, each read exactly once, one event per line, in the byte order of
 * their names, with per-key state carried from one file to the next. New
 * files are seen through inotify, with a rescan now and then in case it
 * misses one (a network file system).
 *
 * Files are put in the directory whole (written elsewhere, or under a name
 * the pattern does not match, then renamed in), as for Flume's spooling
 * directory: a file is done when it was read to its end. One that changes
 * after that, or shrinks while it is read, stops the run with an error that
 * names it: what was added would otherwise be lost without a word.
 *
 * Seqs (source.h): file number n (1, 2, ... in the order files are taken)
 * in bits 40..62, the byte offset of the line in its file in bits 0..39:
 * seq = n << 40 | offset. So a dead letter's seq names its file (seq >> 40,
 * in the log line "spool: file N ...") and byte; a file may hold up to 1 TiB
 * and a data_dir up to 2^23 - 1 files. Bit 63 is never a source's.
 *
 * Each file taken gets a record in the config environment ("spool.N": its
 * device, inode, a fingerprint of its first bytes, and once read to its end
 * its size and mtime, plus its name), written before any of its lines is
 * handed over, so a file is known by what it is, not by its name, and a
 * restart finds again, in number order, every file the watermark has not
 * passed: the one it points into is read from there, those after it from
 * their start (the shards skip what they applied). A file whose last event
 * is durable (under the watermark) is then left, moved to done_dir or
 * deleted ([source] after), the directories fsynced, and its record marked
 * removed: a crash before that redoes the move, never the file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sysexits.h>
#include <unistd.h>

#include "cfg.h"
#include "clock.h"
#include "log.h"
#include "source.h"
#include "src_reader.h"
#include "store.h"

#define OFF_BITS 40
#define OFF_MAX ((1ull << OFF_BITS) - 1)
#define FILE_MAX ((1ull << (63 - OFF_BITS)) - 1)
#define SEQ(n, off) ((uint64_t)(n) << OFF_BITS | (off))

#define RESCAN_MS 5000	      /* with inotify: in case it missed something */
#define RESCAN_BLIND_MS 1000  /* without it */
#define RESCAN_MIN_MS 100     /* inotify storms: at most this often */
#define NAME_MAX_STORED 4096u /* a record's name */
#define MS 1000000ull

enum spool_state { SF_READING = 1, SF_DONE = 2, SF_REMOVED = 3 };

/* A file taken: its record. */
struct spool_file {
	uint64_t num;
	uint64_t dev, ino, head_len, head_hash;
	uint64_t size, mtime_ns; /* SF_DONE: as it was read to its end */
	int state;
	int after_failed; /* a move or delete failed: logged once, left */
	char *name;
};

struct spool {
	int dirfd, donefd, infd;
	struct spool_file *files; /* not removed, ascending num */
	size_t n, cap;
	uint64_t next_num; /* the number the next file gets */
	uint64_t done;	   /* files read to their end */
	/* Records a restart reads again: files[redo..redo_end), the first
	 * from redo_at. */
	size_t redo, redo_end;
	uint64_t redo_at;
	char **waiting; /* new files, in name order */
	size_t n_waiting, next_waiting;
	struct src_reader r;
	struct spool_file *cur; /* being read (r.fd open), or NULL */
	uint64_t cur_size;	/* at open, for progress */
	char cur_name[256];	/* for status, cut */
	uint64_t next_seq;
	uint64_t last_scan_ns;
	int changed; /* inotify said something changed */
	int dirty;   /* time to look: next_file scans */
};

static const struct cfg *C(const struct source *src)
{
	return src->cfg;
}

static const char *ident_str(const struct spool_file *f, char *buf, size_t len)
{
	snprintf(buf, len, "device %u:%u inode %llu", major((dev_t)f->dev), minor((dev_t)f->dev),
		 (unsigned long long)f->ino);
	return buf;
}

static uint64_t mtime_ns(const struct stat *st)
{
	return (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
}

/* ---- records ---- */

#define REC_U64S 8 /* num, dev, ino, head_len, head_hash, size, mtime, state */

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Record f, and the next number, in one transaction. */
static int rec_store(struct source *src, struct spool *sp, const struct spool_file *f)
{
	size_t nlen = strlen(f->name);
	unsigned char rec[REC_U64S * 8 + NAME_MAX_STORED], next[8];
	const uint64_t v[REC_U64S] = {f->num,	    f->dev,  f->ino,	  f->head_len,
				      f->head_hash, f->size, f->mtime_ns, (uint64_t)f->state};
	char key[32];
	if (nlen > NAME_MAX_STORED)
		nlen = NAME_MAX_STORED;
	for (int i = 0; i < REC_U64S; i++)
		put_u64(rec + 8 * i, v[i]);
	memcpy(rec + REC_U64S * 8, f->name, nlen);
	put_u64(next, sp->next_num);
	snprintf(key, sizeof(key), "spool.%llu", (unsigned long long)f->num);
	const char *names[] = {key, "spool.next"};
	const void *vals[] = {rec, next};
	const size_t lens[] = {REC_U64S * 8 + nlen, 8};
	int rc = store_meta_put(src->config, 2, names, vals, lens);
	if (rc != 0)
		log_error("%s: cannot record spool file %llu (%s): %s", C(src)->data_dir,
			  (unsigned long long)f->num, f->name, strerror(-rc));
	return rc;
}

static int add_file(struct spool *sp, const struct spool_file *f)
{
	if (sp->n == sp->cap) {
		size_t cap = sp->cap ? 2 * sp->cap : 16;
		struct spool_file *n = realloc(sp->files, cap * sizeof(*n));
		if (!n)
			return -1;
		if (sp->cur)
			sp->cur = n + (sp->cur - sp->files);
		sp->files = n;
		sp->cap = cap;
	}
	sp->files[sp->n++] = *f;
	return 0;
}

/* The records of every file not removed, in number order. 0, or an exit
 * status (logged). */
static int rec_load(struct source *src, struct spool *sp)
{
	unsigned char buf[REC_U64S * 8 + NAME_MAX_STORED];
	size_t len;
	int rc = store_meta_get(src->config, "spool.next", buf, 8, &len);
	sp->next_num = 1;
	if (rc == 0 && len == 8)
		sp->next_num = get_u64(buf);
	else if (rc != -ENOENT)
		goto bad;
	for (uint64_t n = 1; n < sp->next_num; n++) {
		char key[32];
		snprintf(key, sizeof(key), "spool.%llu", (unsigned long long)n);
		rc = store_meta_get(src->config, key, buf, sizeof(buf), &len);
		if (rc == -ENOENT)
			continue; /* removed and forgotten */
		if (rc != 0 || len < REC_U64S * 8 || len > sizeof(buf))
			goto bad;
		struct spool_file f = {0};
		uint64_t *v[REC_U64S] = {&f.num,       &f.dev,	&f.ino,	     &f.head_len,
					 &f.head_hash, &f.size, &f.mtime_ns, NULL};
		for (int i = 0; i < REC_U64S - 1; i++)
			*v[i] = get_u64(buf + 8 * i);
		f.state = (int)get_u64(buf + 8 * (REC_U64S - 1));
		if (f.num != n)
			goto bad;
		if (f.state == SF_REMOVED)
			continue;
		f.name = strndup((const char *)buf + REC_U64S * 8, len - REC_U64S * 8);
		if (!f.name || add_file(sp, &f) != 0) {
			free(f.name);
			log_error("out of memory for the spool's records");
			return EX_OSERR;
		}
	}
	return 0;
bad:
	log_error("%s: the spool's records cannot be read (%s): use a new data_dir",
		  C(src)->data_dir, rc ? strerror(-rc) : "bad record");
	return EX_CONFIG;
}

/* Forget the removed records in memory (never the current file's). */
static void drop_removed(struct spool *sp)
{
	size_t w = 0;
	for (size_t i = 0; i < sp->n; i++) {
		if (sp->cur == &sp->files[i])
			sp->cur = &sp->files[w];
		if (sp->files[i].state == SF_REMOVED) {
			free(sp->files[i].name);
			sp->redo -= i < sp->redo;
			sp->redo_end -= i < sp->redo_end;
			continue;
		}
		sp->files[w++] = sp->files[i];
	}
	sp->n = w;
}

/* ---- the directory ---- */

struct entry {
	char *name;
	struct stat st;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

struct by_ino {
	uint64_t dev, ino;
	struct spool_file *f;
};

static int cmp_ino(const void *a, const void *b)
{
	const struct by_ino *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void free_entries(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

/* The regular files of the directory whose names match, sorted by name.
 * 0, or -1 (logged). */
static int list_dir(struct source *src, struct spool *sp, struct entry **out, size_t *count)
{
	int fd = dup(sp->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct entry *e = NULL;
	size_t n = 0, cap = 0;
	if (!d) {
		if (fd >= 0)
			close(fd);
		log_error("%s: cannot read the spool directory: %s", C(src)->spool_dir,
			  strerror(errno));
		return -1;
	}
	rewinddir(d);
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		struct stat st;
		/* FNM_PERIOD: names starting with a dot (rsync's and many
		 * tools' files in progress) are never taken. */
		if (fnmatch(C(src)->spool_pattern, de->d_name, FNM_PERIOD) != 0)
			continue;
		if (fstatat(sp->dirfd, de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
			continue; /* gone already, or not a file */
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			struct entry *ne = realloc(e, cap * sizeof(*e));
			if (!ne)
				goto oom;
			e = ne;
		}
		e[n].name = strdup(de->d_name);
		if (!e[n].name)
			goto oom;
		e[n++].st = st;
	}
	int err = errno;
	closedir(d);
	if (err) {
		log_error("%s: cannot read the spool directory: %s", C(src)->spool_dir,
			  strerror(err));
		free_entries(e, n);
		return -1;
	}
	if (n) /* qsort wants an array, even of none */
		qsort(e, n, sizeof(*e), by_name);
	*out = e;
	*count = n;
	return 0;
oom:
	closedir(d);
	free_entries(e, n);
	log_error("out of memory listing the spool directory");
	return -1;
}

/* Is the file in the directory as `e` the one record f names? Its device
 * and inode say so, unless a file of another name with other first bytes
 * took the inode of one that was deleted. */
static int same_file(struct spool *sp, const struct spool_file *f, const struct entry *e)
{
	uint64_t hash;
	if (strcmp(f->name, e->name) == 0)
		return 1;
	int fd = openat(sp->dirfd, e->name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int rc = src_head_hash(fd, f->head_len, &hash);
	close(fd);
	return rc == 0 && hash == f->head_hash;
}

/* A file read to its end looks the same now, or the run stops: what was
 * added or changed would not be read. */
static int check_done(struct source *src, const struct spool_file *f, const struct entry *e)
{
	char id[80];
	uint64_t size = (uint64_t)e->st.st_size;
	if (size == f->size && mtime_ns(&e->st) == f->mtime_ns)
		return 0;
	log_error("%s/%s %s after it was read to its end as spool file %llu (%s): it had %llu "
		  "bytes, it has %llu. %s",
		  C(src)->spool_dir, e->name,
		  size > f->size   ? "grew"
		  : size < f->size ? "was cut"
				   : "was modified",
		  (unsigned long long)f->num, ident_str(f, id, sizeof(id)),
		  (unsigned long long)f->size, (unsigned long long)size,
		  size > f->size
		      ? "Its new bytes are not read: a spool's files are put in the directory "
			"whole and never written again. Put what was added in a new file "
			"(restore this one as it was, or remove it from the directory), then "
			"start ringmaster again"
		      : "A spool's files are never written again: restore it as it was (or "
			"remove it from the directory), then start ringmaster again");
	return -1;
}

static void free_waiting(struct spool *sp)
{
	for (size_t i = 0; i < sp->n_waiting; i++)
		free(sp->waiting[i]);
	sp->n_waiting = sp->next_waiting = 0;
}

/* Look at the directory: files read to their end must be unchanged, the
 * file being read must not have shrunk, and what matches no record waits
 * to be read, in name order. `missing` (at start) is set to the first
 * record a restart reads again that is not there. 0, or -1 (logged): the
 * run stops. */
static int scan(struct source *src, struct spool *sp, const struct spool_file **missing)
{
	struct entry *e;
	size_t n;
	sp->last_scan_ns = shm_now_ns();
	sp->dirty = sp->changed = 0;
	if (list_dir(src, sp, &e, &n) != 0)
		return -1;
	struct by_ino *idx = calloc(sp->n + 1, sizeof(*idx));
	char **waiting = calloc(n + 1, sizeof(*waiting));
	char *found = calloc(sp->n + 1, 1);
	size_t nw = 0;
	int rc = -1;
	if (!idx || !waiting || !found) {
		log_error("out of memory scanning the spool directory");
		goto out;
	}
	for (size_t i = 0; i < sp->n; i++)
		idx[i] = (struct by_ino){sp->files[i].dev, sp->files[i].ino, &sp->files[i]};
	qsort(idx, sp->n, sizeof(*idx), cmp_ino);
	for (size_t i = 0; i < n; i++) {
		struct by_ino key = {(uint64_t)e[i].st.st_dev, (uint64_t)e[i].st.st_ino, NULL};
		struct by_ino *hit = bsearch(&key, idx, sp->n, sizeof(*idx), cmp_ino);
		struct spool_file *f = hit ? hit->f : NULL;
		if (f && same_file(sp, f, &e[i])) {
			found[f - sp->files] = 1;
			if (f == sp->cur && (uint64_t)e[i].st.st_size < sp->r.read_pos) {
				log_error(
				    "%s/%s shrank to %llu bytes while it was read as spool file "
				    "%llu (%llu bytes read): a spool's files are never written "
				    "again. Restore it, then start ringmaster again",
				    C(src)->spool_dir, e[i].name,
				    (unsigned long long)e[i].st.st_size, (unsigned long long)f->num,
				    (unsigned long long)sp->r.read_pos);
				goto out;
			}
			if (f->state == SF_DONE && f != sp->cur && check_done(src, f, &e[i]) != 0)
				goto out;
			continue;
		}
		waiting[nw++] = e[i].name;
		e[i].name = NULL;
	}
	if (missing) {
		*missing = NULL;
		for (size_t i = sp->redo; i < sp->redo_end && !*missing; i++)
			if (!found[i])
				*missing = &sp->files[i];
	}
	free_waiting(sp);
	free(sp->waiting);
	sp->waiting = waiting;
	sp->n_waiting = nw;
	waiting = NULL;
	rc = 0;
out:
	free(waiting);
	free(idx);
	free(found);
	free_entries(e, n);
	return rc;
}

/* ---- after a file is durable ---- */

static int fsync_fd(int fd)
{
	return fsync(fd) == 0 || errno == EINVAL ? 0 : -1;
}

/* Move or delete f, whose every event is durable, and forget it. A failure
 * is logged once; the file stays, known by its record. */
static void finish_file(struct source *src, struct spool *sp, struct spool_file *f)
{
	const struct cfg *c = C(src);
	struct stat st;
	int rc;
	if (f->after_failed)
		return;
	/* Still the file read? A file of its name that is not is left alone. */
	if (fstatat(sp->dirfd, f->name, &st, 0) != 0 || (uint64_t)st.st_dev != f->dev ||
	    (uint64_t)st.st_ino != f->ino) {
		log_info("spool: %s/%s (file %llu) is no longer in the directory: nothing to %s",
			 c->spool_dir, f->name, (unsigned long long)f->num,
			 c->spool_after == CFG_AFTER_MOVE ? "move" : "delete");
		goto forget;
	}
	if (c->spool_after == CFG_AFTER_MOVE)
		rc = renameat2(sp->dirfd, f->name, sp->donefd, f->name, RENAME_NOREPLACE);
	else
		rc = unlinkat(sp->dirfd, f->name, 0);
	/* The directories reach the disk before the record says so: a power
	 * cut must not bring back, as a new file, one whose events are in. */
	if (rc == 0 && (fsync_fd(sp->dirfd) != 0 ||
			(c->spool_after == CFG_AFTER_MOVE && fsync_fd(sp->donefd) != 0)))
		rc = -1;
	if (rc != 0) {
		log_error("spool: cannot %s %s/%s (file %llu, done): %s; it stays where it is, "
			  "known as done",
			  c->spool_after == CFG_AFTER_MOVE ? "move to done_dir" : "delete",
			  c->spool_dir, f->name, (unsigned long long)f->num,
			  errno == EEXIST ? "done_dir already holds a file of that name"
					  : strerror(errno));
		f->after_failed = 1;
		return;
	}
	log_info("spool: %s %s/%s (file %llu): its events are durable",
		 c->spool_after == CFG_AFTER_MOVE ? "moved to done_dir" : "deleted", c->spool_dir,
		 f->name, (unsigned long long)f->num);
forget:
	f->state = SF_REMOVED;
	if (rec_store(src, sp, f) != 0)
		f->state = SF_DONE;
}

static void spool_durable(struct source *src, uint64_t watermark)
{
	struct spool *sp = src->priv;
	int any = 0;
	if (C(src)->spool_after == CFG_AFTER_KEEP)
		return;
	for (size_t i = 0; i < sp->n; i++) {
		struct spool_file *f = &sp->files[i];
		if (f->state != SF_DONE || f == sp->cur || SEQ(f->num, f->size) > watermark)
			continue;
		finish_file(src, sp, f);
		any |= f->state == SF_REMOVED;
	}
	if (any)
		drop_removed(sp);
}

/* ---- reading ---- */

static uint64_t rescan_ms(const struct spool *sp)
{
	return sp->infd >= 0 ? RESCAN_MS : RESCAN_BLIND_MS;
}

static int open_at(struct source *src, struct spool *sp, struct spool_file *f, uint64_t at)
{
	char id[80];
	struct stat st;
	uint64_t hash;
	int fd = openat(sp->dirfd, f->name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		log_error("%s/%s: cannot open spool file %llu: %s", C(src)->spool_dir, f->name,
			  (unsigned long long)f->num, strerror(errno));
		goto bad;
	}
	if ((uint64_t)st.st_dev != f->dev || (uint64_t)st.st_ino != f->ino ||
	    src_head_hash(fd, f->head_len, &hash) != 0 || hash != f->head_hash ||
	    (uint64_t)st.st_size < at) {
		log_error("%s/%s is not spool file %llu as it was read (%s, %llu bytes read): it "
			  "was replaced, rewritten or cut. Put it back as it was, or use a new "
			  "data_dir",
			  C(src)->spool_dir, f->name, (unsigned long long)f->num,
			  ident_str(f, id, sizeof(id)), (unsigned long long)at);
		goto bad;
	}
	if (at && lseek(fd, (off_t)at, SEEK_SET) < 0) {
		log_error("%s/%s: cannot seek: %s", C(src)->spool_dir, f->name, strerror(errno));
		goto bad;
	}
	sp->r.fd = fd;
	src_reader_reset(&sp->r, SEQ(f->num, 0), at);
	sp->cur = f;
	sp->cur_size = (uint64_t)st.st_size;
	snprintf(sp->cur_name, sizeof(sp->cur_name), "%s", f->name);
	sp->next_seq = SEQ(f->num, at);
	return 0;
bad:
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Take the waiting file `name`: give it the next number and record it.
 * 1 when taken, 0 when it is gone (or was never a file), -1 (logged). */
static int take_new(struct source *src, struct spool *sp, const char *name)
{
	char id[80];
	struct stat st;
	struct spool_file f = {0};
	int fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (sp->next_num > FILE_MAX || (uint64_t)st.st_size > OFF_MAX) {
		log_error("%s/%s: %s: a spool's seq holds a file number up to %llu and a byte "
			  "offset up to %llu. Use a new data_dir",
			  C(src)->spool_dir, name,
			  sp->next_num > FILE_MAX ? "this data_dir has read that many files"
						  : "the file is larger than 1 TiB",
			  (unsigned long long)FILE_MAX, (unsigned long long)OFF_MAX);
		close(fd);
		return -1;
	}
	f.num = sp->next_num++;
	f.dev = (uint64_t)st.st_dev;
	f.ino = (uint64_t)st.st_ino;
	f.head_len = (uint64_t)st.st_size < SRC_HEAD_MAX ? (uint64_t)st.st_size : SRC_HEAD_MAX;
	f.state = SF_READING;
	f.name = strdup(name);
	if (!f.name || src_head_hash(fd, f.head_len, &f.head_hash) < 0 || add_file(sp, &f) != 0) {
		log_error("%s/%s: cannot take spool file: %s", C(src)->spool_dir, name,
			  f.name ? strerror(errno) : "out of memory");
		free(f.name);
		close(fd);
		return -1;
	}
	struct spool_file *rec = &sp->files[sp->n - 1];
	close(fd);
	if (rec_store(src, sp, rec) != 0)
		return -1;
	log_info("spool: file %llu is %s/%s (%s, %llu bytes), seq=%llu..",
		 (unsigned long long)rec->num, C(src)->spool_dir, name,
		 ident_str(rec, id, sizeof(id)), (unsigned long long)st.st_size,
		 (unsigned long long)SEQ(rec->num, 0));
	return open_at(src, sp, rec, 0) == 0 ? 1 : -1;
}

/* Open the next file: one a restart reads again, else the first waiting
 * (looking at the directory first when it may have changed). 1 when one is
 * open, 0 when there is none, -1 (logged). */
static int next_file(struct source *src, struct spool *sp)
{
	if (sp->redo < sp->redo_end) {
		struct spool_file *f = &sp->files[sp->redo++];
		uint64_t at = sp->redo_at;
		sp->redo_at = 0;
		log_info("spool: reading file %llu, %s/%s, again from byte %llu",
			 (unsigned long long)f->num, C(src)->spool_dir, f->name,
			 (unsigned long long)at);
		return open_at(src, sp, f, at) == 0 ? 1 : -1;
	}
	/* Nothing left to take: look unless waiting for what was seen to
	 * settle (spool_pollfd). A finite run looks before it ends, so what
	 * came meanwhile is read. Else now and then, for the checks. */
	uint64_t now = shm_now_ns();
	int look =
	    sp->next_waiting >= sp->n_waiting
		? !C(src)->follow || sp->dirty || now - sp->last_scan_ns >= rescan_ms(sp) * MS
		: now - sp->last_scan_ns >= RESCAN_MS * MS;
	if (look && scan(src, sp, NULL) != 0)
		return -1;
	while (sp->next_waiting < sp->n_waiting) {
		int rc = take_new(src, sp, sp->waiting[sp->next_waiting++]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The file was read to its end and every line handed over: record its
 * size and mtime, which it must keep. 0, or -1 (logged). */
static int end_file(struct source *src, struct spool *sp)
{
	struct spool_file *f = sp->cur;
	struct stat st;
	if (fstat(sp->r.fd, &st) != 0) {
		log_error("%s/%s: cannot stat: %s", C(src)->spool_dir, f->name, strerror(errno));
		return -1;
	}
	if ((uint64_t)st.st_size != sp->r.read_pos) {
		log_error("%s/%s %s while it was read as spool file %llu (%llu bytes read, it has "
			  "%llu): a spool's files are put in the directory whole and never "
			  "written again. Restore it, then start ringmaster again",
			  C(src)->spool_dir, f->name,
			  (uint64_t)st.st_size < sp->r.read_pos ? "shrank" : "grew",
			  (unsigned long long)f->num, (unsigned long long)sp->r.read_pos,
			  (unsigned long long)st.st_size);
		return -1;
	}
	uint64_t was_size = f->size, was_mtime = f->mtime_ns;
	int was = f->state;
	f->size = sp->r.read_pos;
	f->mtime_ns = mtime_ns(&st);
	f->state = SF_DONE;
	/* Read again after a restart: already recorded as done, the same. */
	if (was == SF_DONE && (was_size != f->size || was_mtime != f->mtime_ns)) {
		log_error("%s/%s changed since it was read to its end as spool file %llu (%llu "
			  "bytes then, %llu now): restore it as it was, or use a new data_dir",
			  C(src)->spool_dir, f->name, (unsigned long long)f->num,
			  (unsigned long long)was_size, (unsigned long long)f->size);
		return -1;
	}
	if (was != SF_DONE && rec_store(src, sp, f) != 0)
		return -1;
	close(sp->r.fd);
	sp->r.fd = -1;
	sp->cur = NULL;
	sp->cur_name[0] = '\0';
	sp->done = f->num;
	sp->next_seq = SEQ(f->num, f->size);
	return 0;
}

static enum src_result spool_read(struct source *src, unsigned budget)
{
	struct spool *sp = src->priv;
	unsigned handed = 0;
	for (;;) {
		if (!sp->cur) {
			int rc = next_file(src, sp);
			if (rc < 0)
				return SRC_ERROR;
			if (rc == 0) {
				if (handed)
					return SRC_MORE;
				return C(src)->follow ? SRC_IDLE : SRC_END;
			}
		}
		int rc = src_reader_drain(src, &sp->r, sp->r.eof, budget, &handed);
		sp->next_seq = sp->r.next_seq;
		if (rc == -EAGAIN)
			return SRC_FULL;
		if (rc != 0)
			return SRC_ERROR;
		if (handed >= budget)
			return SRC_MORE;
		if (sp->r.eof && sp->r.start == sp->r.end && !sp->r.in_long) {
			if (end_file(src, sp) != 0)
				return SRC_ERROR;
			continue;
		}
		if (sp->r.read_pos > OFF_MAX) {
			log_error("%s/%s grew past 1 TiB while it was read: a spool's seq cannot "
				  "hold that offset",
				  C(src)->spool_dir, sp->cur->name);
			return SRC_ERROR;
		}
		if (src_reader_fill(src, &sp->r) != 0) {
			log_error("%s/%s: read error: %s", C(src)->spool_dir, sp->cur->name,
				  strerror(errno));
			return SRC_ERROR;
		}
	}
}

/* ---- open, close ---- */

/* The directories: dir must exist; done_dir is made if it does not, and
 * must be on dir's file system (a move is a rename). */
static int open_dirs(struct source *src, struct spool *sp)
{
	const struct cfg *c = C(src);
	struct stat a, b;
	sp->dirfd = open(c->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd < 0) {
		log_error("%s: [source] dir = %s: cannot open the spool directory: %s",
			  cfg_origin(c, "source", "dir"), c->spool_dir, strerror(errno));
		return EX_CONFIG;
	}
	if (c->spool_after != CFG_AFTER_MOVE)
		return 0;
	if (mkdir(c->spool_done_dir, 0755) == 0)
		log_info("%s: made the spool's done_dir", c->spool_done_dir);
	sp->donefd = open(c->spool_done_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->donefd < 0) {
		log_error("%s: [source] done_dir = %s: cannot open: %s",
			  cfg_origin(c, "source", "done_dir"), c->spool_done_dir, strerror(errno));
		return EX_CONFIG;
	}
	if (fstat(sp->dirfd, &a) != 0 || fstat(sp->donefd, &b) != 0 || a.st_dev != b.st_dev) {
		log_error("%s: [source] done_dir = %s is not on the file system of dir %s: files "
			  "are moved there by rename, which cannot cross file systems",
			  cfg_origin(c, "source", "done_dir"), c->spool_done_dir, c->spool_dir);
		return EX_CONFIG;
	}
	return 0;
}

/* Where a restart starts: the files the watermark has not passed are read
 * again, in number order; those it passed are done (and moved or deleted
 * now, if a crash came first). Every one to read again must be there. */
static int resume(struct source *src, struct spool *sp)
{
	uint64_t wm = src->resume_seq, wm_file = wm >> OFF_BITS, wm_off = wm & OFF_MAX;
	const struct spool_file *missing;
	char id[80];
	sp->redo = sp->redo_end = sp->n;
	for (size_t i = 0; i < sp->n; i++) {
		const struct spool_file *f = &sp->files[i];
		if (f->num < wm_file ||
		    (f->num == wm_file && f->state == SF_DONE && wm_off >= f->size))
			continue; /* durable */
		sp->redo = i;
		sp->redo_at = f->num == wm_file ? wm_off : 0;
		break;
	}
	/* Files are read to their end in number order. */
	sp->done = (sp->redo < sp->n ? sp->files[sp->redo].num : sp->next_num) - 1;
	spool_durable(src, wm);
	if (scan(src, sp, &missing) != 0)
		return EX_CONFIG;
	if (missing) {
		log_error(
		    "%s/%s, spool file %llu (%s), is not in the spool directory, and data_dir "
		    "%s has not finished it (it resumes at seq=%llu): put it back as it was, or "
		    "use a new data_dir",
		    C(src)->spool_dir, missing->name, (unsigned long long)missing->num,
		    ident_str(missing, id, sizeof(id)), C(src)->data_dir, (unsigned long long)wm);
		return EX_CONFIG;
	}
	/* The file the shards applied events of last must still hold them. */
	uint64_t hi = sup_next_unapplied(src->sup), hi_off = hi & OFF_MAX;
	for (size_t i = sp->redo; i < sp->redo_end && hi; i++) {
		const struct spool_file *f = &sp->files[i];
		struct stat st;
		if (f->num != hi >> OFF_BITS || fstatat(sp->dirfd, f->name, &st, 0) != 0 ||
		    (uint64_t)st.st_size >= hi_off)
			continue;
		log_error(
		    "%s/%s is shorter (%llu bytes) than what data_dir %s applied of it as spool "
		    "file %llu (a line at byte %llu): it was cut since. Put it back as it was, "
		    "or use a new data_dir",
		    C(src)->spool_dir, f->name, (unsigned long long)st.st_size, C(src)->data_dir,
		    (unsigned long long)f->num, (unsigned long long)(hi_off - 1));
		return EX_CONFIG;
	}
	sp->next_seq = wm;
	if (sp->redo < sp->redo_end || sp->n_waiting)
		log_info("spool: %zu files to read again, %zu new, %llu done",
			 sp->redo_end - sp->redo, sp->n_waiting, (unsigned long long)sp->done);
	return 0;
}

static int spool_open(struct source *src)
{
	struct spool *sp = calloc(1, sizeof(*sp));
	if (!sp) {
		log_error("out of memory for the source");
		return EX_OSERR;
	}
	src->priv = sp;
	sp->dirfd = sp->donefd = sp->infd = -1;
	if (src_reader_init(&sp->r, C(src)->max_event_size) != 0) {
		log_error("out of memory for the read buffer");
		return EX_OSERR;
	}
	int rc = open_dirs(src, sp);
	if (rc == 0)
		rc = rec_load(src, sp);
	if (rc != 0)
		return rc;
	sp->infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (sp->infd >= 0 &&
	    inotify_add_watch(sp->infd, C(src)->spool_dir,
			      IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB |
				  IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR) < 0) {
		close(sp->infd);
		sp->infd = -1;
	}
	if (sp->infd < 0)
		log_warn("%s: cannot watch the spool directory with inotify (%s): looking at it "
			 "every %d ms instead",
			 C(src)->spool_dir, strerror(errno), RESCAN_BLIND_MS);
	return resume(src, sp);
}

/* Stop reading; the records stay for spool_durable at the very end. */
static int spool_close(struct source *src)
{
	struct spool *sp = src->priv;
	if (!sp)
		return 0;
	if (sp->r.fd >= 0)
		close(sp->r.fd);
	sp->r.fd = -1;
	sp->cur = NULL; /* what was read of it is all there will be */
	if (sp->infd >= 0)
		close(sp->infd);
	sp->infd = -1;
	return 0;
}

static void spool_release(struct source *src)
{
	struct spool *sp = src->priv;
	if (!sp)
		return;
	spool_close(src);
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	if (sp->donefd >= 0)
		close(sp->donefd);
	for (size_t i = 0; i < sp->n; i++)
		free(sp->files[i].name);
	free(sp->files);
	free_waiting(sp);
	free(sp->waiting);
	src_reader_free(&sp->r);
	free(sp);
	src->priv = NULL;
}

static int spool_pollfd(struct source *src, int *idle_ms)
{
	struct spool *sp = src->priv;
	uint64_t now = shm_now_ns();
	if (sp->infd >= 0) {
		char buf[4096];
		while (read(sp->infd, buf, sizeof(buf)) > 0)
			sp->changed = 1;
	}
	/* Something changed: look once it has been RESCAN_MIN_MS since the
	 * last look (a file being written is many events); else now and then. */
	uint64_t due = sp->last_scan_ns + (sp->changed ? RESCAN_MIN_MS : rescan_ms(sp)) * MS;
	*idle_ms = due > now ? (int)((due - now + MS - 1) / MS) : 0;
	if (due <= now)
		sp->dirty = 1; /* next_file looks */
	return sp->changed ? -1 : sp->infd;
}

static void spool_position(const struct source *src, struct src_pos *pos)
{
	const struct spool *sp = src->priv;
	pos->next_seq = sp->next_seq;
	pos->read = sp->cur ? sp->r.offset : 0;
	pos->size = sp->cur ? sp->cur_size : 0;
	pos->file = sp->cur_name;
	pos->files = 1;
	pos->files_done = sp->done;
	pos->files_waiting = (sp->redo_end - sp->redo) + (sp->n_waiting - sp->next_waiting);
}

const struct source_ops src_spool_ops = {
    .name = "spool",
    .open = spool_open,
    .pollfd = spool_pollfd,
    .read = spool_read,
    .position = spool_position,
    .close = spool_close,
    .durable = spool_durable,
    .release = spool_release,
};
