/* src_file.c - the file source: a file (or stdin), one event per line,
 * whose seq is the byte position of the line in everything read from the
 * path (source.h): base + its offset in its file, where base is 0 for the
 * first file and, when following, grows by the length of each file
 * finished by a rotation.
 *
 * A seq means something only in the file it was read from. A file is
 * therefore known by what it is, as log shippers know theirs: device, inode
 * and a fingerprint (FNV-1a, 64 bits) of its first bytes, recorded with its
 * base in the data directory when it first reads the file. A start that
 * would resume in another file, or in this one cut shorter or rewritten, is
 * refused before any worker starts. While following, a rotation is followed
 * as `tail -F` does (watch_file): a file renamed away (or removed) is read to
 * its end, then the new file at the path from its start; a file truncated
 * (copy-truncate) is read again from its start as a new file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sysexits.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "source.h"
#include "src_reader.h"
#include "store.h"

#define FOLLOW_IDLE_MS 50
#define MISSING_POLLS 4 /* follow: a path missing this many polls was removed */

/* What a file is: see the top of this file. */
struct src_ident {
	uint64_t dev, ino;
	uint64_t head_len;  /* bytes of its start fingerprinted: min(size, SRC_HEAD_MAX) */
	uint64_t head_hash; /* FNV-1a of them */
	uint64_t base;	    /* the seq of its first byte */
};

/* follow: a rotation being finished (watch_file). */
enum rotation {
	ROT_NONE,
	ROT_RENAME,   /* another file at the path: read this one to its end, then that one */
	ROT_TRUNCATE, /* this one truncated: hand over what was read, then read it from 0 */
};

/* The file source (or stdin): opened and checked by src_file_open before any
 * worker starts, then read by src_file_run. */
struct src_file {
	struct src_reader r;	/* r.fd: the file; r.base: its seq base */
	int seekable;		/* a regular file: resume by seeking */
	int identified;		/* a regular file named by path: `ident` is what it is */
	struct src_ident ident; /* as recorded; the reader grows the fingerprint */
	int detached;		/* follow: the file cannot be looked at; not read */
	unsigned missing_polls; /* follow: polls in a row its path named nothing */
	enum rotation rotating; /* follow: finishing this file */
	int next_fd;		/* ROT_RENAME: the file now at the path */
	uint64_t size;		/* at open, for progress; 0 for a pipe */
	int started;		/* a pipe was read up to the watermark */
	int idle;		/* follow: at the end, waiting for more */
};

/* ---- what a file is ---- */

/* The identity lives in the config environment's "meta" database, one u64 a
 * name, written in one transaction. IDENT_SEAL, a hash of the others, was
 * written last by the versions that wrote them one by one: a record that a
 * crash cut short reads as no record, never as another file. The base is
 * sealed only when it is not 0, so a record without one (made before
 * rotations were followed) reads as base 0. */
static const char *const ident_names[] = {"source_dev", "source_ino", "source_head_len",
					  "source_head_hash", "source_base"};
#define IDENT_SEAL "source_ident"
#define IDENT_VALUES 5

static uint64_t ident_seal(const struct src_ident *id)
{
	const uint64_t v[] = {id->dev, id->ino, id->head_len, id->head_hash, id->base};
	return src_fnv1a(SRC_FNV_BASIS, v, id->base ? sizeof(v) : sizeof(v) - sizeof(v[0]));
}

/* 0, -ENOENT when there is no (whole) record, another negative errno on a
 * read error. */
static int ident_load(struct store_env *env, struct src_ident *id)
{
	uint64_t *v[] = {&id->dev, &id->ino, &id->head_len, &id->head_hash, &id->base}, seal;
	int rc;
	for (size_t i = 0; i < IDENT_VALUES; i++) {
		rc = store_meta_get_u64(env, ident_names[i], v[i]);
		if (rc == -ENOENT && v[i] == &id->base)
			id->base = 0;
		else if (rc != 0)
			return rc;
	}
	if ((rc = store_meta_get_u64(env, IDENT_SEAL, &seal)) != 0)
		return rc;
	return seal == ident_seal(id) ? 0 : -ENOENT;
}

static int ident_store(struct source *src, const struct src_ident *id)
{
	const char *names[IDENT_VALUES + 1];
	const uint64_t v[] = {id->dev,	     id->ino,  id->head_len,
			      id->head_hash, id->base, ident_seal(id)};
	memcpy(names, ident_names, sizeof(ident_names));
	names[IDENT_VALUES] = IDENT_SEAL;
	int rc = store_meta_put_u64s(src->config, names, v, IDENT_VALUES + 1);
	if (rc != 0)
		log_error("%s: cannot record the identity of the source file %s: %s",
			  src->cfg->data_dir, src->cfg->source_path, strerror(-rc));
	return rc;
}

/* "device 8:1 inode 1234" */
static const char *ident_name(const struct src_ident *id, char *buf, size_t len)
{
	snprintf(buf, len, "device %u:%u inode %llu", major((dev_t)id->dev), minor((dev_t)id->dev),
		 (unsigned long long)id->ino);
	return buf;
}

#define PUT_BACK                                                                                   \
	"Put the original file back at that path, or use a new data_dir to read this file from "   \
	"its start"

/* Shorter than the position processed, or than the start fingerprinted. */
static int refuse_shorter(const struct source *src, uint64_t size, uint64_t needed, int fingerprint)
{
	const char *path = src->cfg->source_path;
	int is_stdin = strcmp(path, "-") == 0;
	log_error("%s is shorter (%llu bytes) than the %s data_dir %s %s (%llu bytes): %s",
		  is_stdin ? "standard input" : path, (unsigned long long)size,
		  fingerprint ? "start" : "position", src->cfg->data_dir,
		  fingerprint ? "fingerprinted" : "has processed", (unsigned long long)needed,
		  is_stdin ? "it is not the input this data_dir read. Give it that input, or use a "
			     "new data_dir to read this one from its start"
			   : "it was truncated or replaced since. " PUT_BACK);
	return EX_CONFIG;
}

/* Another device or inode than the one this data directory read. */
static int refuse_moved(const struct source *src, int fd, const struct src_ident *was,
			const struct src_ident *now, uint64_t pos)
{
	char a[80], b[80], head[160];
	uint64_t hash;
	unsigned long long n = (unsigned long long)was->head_len;
	int rc = src_head_hash(fd, was->head_len, &hash);
	if (rc < 0)
		snprintf(head, sizeof(head), "its first bytes cannot be read: %s", strerror(errno));
	else if (rc > 0)
		snprintf(head, sizeof(head), "shorter than the %llu bytes fingerprinted", n);
	else if (hash == was->head_hash)
		snprintf(head, sizeof(head), "a copy? its first %llu bytes are the same", n);
	else
		snprintf(head, sizeof(head), "its first %llu bytes differ", n);
	char risk[96] = "the shards would skip its events as already applied";
	if (pos)
		snprintf(risk, sizeof(risk),
			 "resuming at byte %llu of it would skip or cut its events",
			 (unsigned long long)pos);
	log_error("%s is not the file data_dir %s read: that was %s, this is %s (another file, "
		  "%s); %s. " PUT_BACK "%s",
		  src->cfg->source_path, src->cfg->data_dir, ident_name(was, a, sizeof(a)),
		  ident_name(now, b, sizeof(b)), head, risk,
		  src->cfg->follow ? ". A rotation while ringmaster was stopped is not followed: "
				     "put the file it read back at that path, start ringmaster, "
				     "then rotate again (it finishes that file, then reads the "
				     "new one)"
				   : "");
	return EX_CONFIG;
}

/* At start: is the file on f->r.fd (its fstat in `st`) the one this data
 * directory read? A data directory that has read nothing yet takes any
 * file and records it; one that has read a file refuses another device or
 * inode, a file shorter than its watermark, and one whose first bytes
 * changed. The fingerprint is made again over more bytes while the file is
 * shorter than SRC_HEAD_MAX. Returns 0, or the exit status to refuse with. */
static int check_identity(struct source *src, struct src_file *f, const struct stat *st)
{
	const char *path = src->cfg->source_path;
	uint64_t size = (uint64_t)st->st_size, hash;
	struct src_ident was, now = {.dev = (uint64_t)st->st_dev, .ino = (uint64_t)st->st_ino};
	char name[80];
	int rc = ident_load(src->config, &was);
	if (rc != 0 && rc != -ENOENT) {
		log_error("%s: cannot read the identity of the source file: %s", src->cfg->data_dir,
			  strerror(-rc));
		return EX_CONFIG;
	}
	int have = rc == 0;
	/* The watermark can be 0 while the shards have applied events (a run
	 * that stopped before it first recorded one): they count too. */
	int has_read = src->resume_seq > 0 || (have && sup_next_unapplied(src->sup) > 0);
	/* The watermark is a seq: base + a byte offset in the recorded file. */
	uint64_t base = have && has_read ? was.base : 0;
	if (src->resume_seq < base) {
		log_error("%s: data_dir %s resumes at seq=%llu, before the file it records (%s, "
			  "from seq=%llu): the file before it was rotated away before all its "
			  "events were durable (ringmaster was killed during a rotation), and the "
			  "rest of that file cannot be found. Use a new data_dir",
			  path, src->cfg->data_dir, (unsigned long long)src->resume_seq,
			  ident_name(&was, name, sizeof(name)), (unsigned long long)base);
		return EX_CONFIG;
	}
	uint64_t pos = src->resume_seq - base;
	if (have && has_read && (was.dev != now.dev || was.ino != now.ino))
		return refuse_moved(src, f->r.fd, &was, &now, pos);
	if (size < pos)
		return refuse_shorter(src, size, pos, 0);
	if (have && has_read) {
		if ((rc = src_head_hash(f->r.fd, was.head_len, &hash)) < 0)
			goto read_error;
		if (rc > 0)
			return refuse_shorter(src, size, was.head_len, 1);
		if (hash != was.head_hash) {
			log_error(
			    "%s: its first %llu bytes differ from what data_dir %s read (same "
			    "%s: it was rewritten in place). " PUT_BACK,
			    path, (unsigned long long)was.head_len, src->cfg->data_dir,
			    ident_name(&now, name, sizeof(name)));
			return EX_CONFIG;
		}
	}
	now.head_len = size < SRC_HEAD_MAX ? size : SRC_HEAD_MAX;
	now.base = base;
	if (have && has_read && now.head_len == was.head_len) {
		f->ident = was;
		return 0;
	}
	if ((rc = src_head_hash(f->r.fd, now.head_len, &now.head_hash)) < 0)
		goto read_error;
	if (rc > 0) {
		log_error("%s shrank while it was being opened: start again when nothing "
			  "else writes it",
			  path);
		return 1;
	}
	if (ident_store(src, &now) != 0)
		return EX_CONFIG;
	f->ident = now;
	if (!(have && has_read))
		log_info("%s: recorded as the source of data_dir %s: %s, first %llu bytes "
			 "fingerprinted",
			 path, src->cfg->data_dir, ident_name(&now, name, sizeof(name)),
			 (unsigned long long)now.head_len);
	return 0;
read_error:
	log_error("%s: cannot read the source file: %s", path, strerror(errno));
	return 1;
}

/* What fd holds now, for a file to be read from its start. 0, or -1 on a
 * read error (errno). */
static int fingerprint(int fd, const struct stat *st, struct src_ident *id)
{
	uint64_t size = (uint64_t)st->st_size;
	id->dev = (uint64_t)st->st_dev;
	id->ino = (uint64_t)st->st_ino;
	id->head_len = size < SRC_HEAD_MAX ? size : SRC_HEAD_MAX;
	int rc = src_head_hash(fd, id->head_len, &id->head_hash);
	if (rc > 0) { /* shorter already: fingerprint nothing rather than guess */
		id->head_len = 0;
		id->head_hash = SRC_FNV_BASIS;
	}
	return rc < 0 ? -1 : 0;
}

/* follow, at each idle poll: what became of the file and of its path, as
 * `tail -F` sees it. A file shorter than what was read, or whose first bytes
 * changed (truncated, then written past what was read before this look),
 * was truncated: warned, then read again from its start as a new file
 * (ROT_TRUNCATE). Another regular file at the path is a rotation
 * (ROT_RENAME): this one is read to its end, then that one from its start.
 * A path that names nothing is warned about once it did for MISSING_POLLS
 * polls (a rename then a create pass through that state); the file is
 * still open and still read. A file or path that cannot be looked at is
 * not read until it can (detached), with one warning. */
static void watch_file(struct source *src, struct src_file *f)
{
	const char *path = src->cfg->source_path;
	char what[1024], a[80], b[80];
	struct stat st;
	uint64_t hash;
	int rc, fd;
	if (f->rotating)
		return;
	if (fstat(f->r.fd, &st) != 0) {
		snprintf(what, sizeof(what), "%s cannot be looked at (fstat: %s)", path,
			 strerror(errno));
		goto detach;
	}
	if ((uint64_t)st.st_size < f->r.read_pos) {
		log_warn("%s was truncated from %llu to %llu bytes while followed: reading it "
			 "from its start as a new file at seq=%llu",
			 path, (unsigned long long)f->r.read_pos, (unsigned long long)st.st_size,
			 (unsigned long long)(f->r.base + f->r.read_pos));
		goto truncated;
	}
	if ((rc = src_head_hash(f->r.fd, f->r.head_len, &hash)) < 0) {
		snprintf(what, sizeof(what), "%s cannot be read (%s)", path, strerror(errno));
		goto detach;
	}
	if (rc > 0 || hash != f->r.head_hash) {
		log_warn("%s was truncated while followed and written again past the %llu bytes "
			 "read (its first %llu bytes changed): reading it from its start as a new "
			 "file at seq=%llu",
			 path, (unsigned long long)f->r.read_pos, (unsigned long long)f->r.head_len,
			 (unsigned long long)(f->r.base + f->r.read_pos));
		goto truncated;
	}
	if (stat(path, &st) != 0) {
		if (errno != ENOENT) {
			snprintf(what, sizeof(what), "%s cannot be looked at (%s)", path,
				 strerror(errno));
			goto detach;
		}
		if (++f->missing_polls == MISSING_POLLS)
			log_warn("%s was removed while followed: reading what it still holds, "
				 "then a new file at that path from its start",
				 path);
		goto fine;
	}
	f->missing_polls = 0;
	if (((uint64_t)st.st_dev == f->ident.dev && (uint64_t)st.st_ino == f->ident.ino) ||
	    !S_ISREG(st.st_mode))
		goto fine;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto fine; /* gone again, or not yet readable: look again next time */
	struct src_ident now;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    ((uint64_t)st.st_dev == f->ident.dev && (uint64_t)st.st_ino == f->ident.ino)) {
		close(fd);
		goto fine;
	}
	now.dev = (uint64_t)st.st_dev;
	now.ino = (uint64_t)st.st_ino;
	log_info("%s: another file at that path (%s, was %s): reading the one it replaced to "
		 "its end, then the new one from its start",
		 path, ident_name(&now, a, sizeof(a)), ident_name(&f->ident, b, sizeof(b)));
	f->next_fd = fd;
	f->rotating = ROT_RENAME;
	goto fine;
truncated:
	f->rotating = ROT_TRUNCATE;
	f->r.eof = 1; /* what it held past read_pos is gone: read nothing more of it */
fine:
	if (f->detached)
		log_info("%s can be read again: reading it from byte %llu", path,
			 (unsigned long long)f->r.read_pos);
	f->detached = 0;
	return;
detach:
	if (!f->detached)
		log_warn("%s while followed: not reading it until it can be (ringmaster keeps "
			 "running and its workers finish what they have)",
			 what);
	f->detached = 1;
}

/* follow: the file being finished was read to its end and every line of it
 * handed over (the last one even without a newline): go on with the next
 * one, the new file at the path or this one truncated, from its start. Its
 * seqs start where this one's end: its identity and that base are recorded
 * together (one transaction) before any line of it is handed over. 0, or -1
 * (logged) when the run must stop. */
static int switch_file(struct source *src, struct src_file *f)
{
	const char *path = src->cfg->source_path;
	uint64_t done = f->r.offset; /* == read_pos: all of it is handed over */
	struct src_ident id;
	struct stat st;
	char name[80];
	if (f->rotating == ROT_RENAME) {
		close(f->r.fd);
		f->r.fd = f->next_fd;
		f->next_fd = -1;
	} else if (lseek(f->r.fd, 0, SEEK_SET) < 0) {
		log_error("%s: cannot seek: %s", path, strerror(errno));
		return -1;
	}
	f->rotating = ROT_NONE;
	if (fstat(f->r.fd, &st) != 0 || fingerprint(f->r.fd, &st, &id) != 0) {
		log_error("%s: cannot read the source file: %s", path, strerror(errno));
		return -1;
	}
	id.base = f->r.base + done;
	if (ident_store(src, &id) != 0)
		return -1;
	f->ident = id;
	src_reader_reset(&f->r, id.base, 0);
	/* Watched by what is read of it (fill): nothing yet. */
	f->r.head_len = 0;
	f->r.head_hash = SRC_FNV_BASIS;
	f->missing_polls = 0;
	f->size = (uint64_t)st.st_size;
	log_info("%s: reading %s from its start at seq=%llu (the file before ended at byte %llu)",
		 path, ident_name(&id, name, sizeof(name)), (unsigned long long)id.base,
		 (unsigned long long)done);
	return 0;
}

/* ---- reading lines ---- */

/* No more bytes will come: the end of the input, or of a rotated file. */
static int drain_lines(struct source *src, struct src_file *f, unsigned budget, unsigned *handed)
{
	int at_end = f->r.eof && (!src->cfg->follow || f->rotating);
	return src_reader_drain(src, &f->r, at_end, budget, handed);
}

/* A pipe starts at the watermark by reading past the bytes before it. */
static int skip_input(struct source *src, struct src_file *f)
{
	for (uint64_t left = src->resume_seq; left;) {
		size_t n = left < f->r.cap ? (size_t)left : f->r.cap;
		ssize_t got = read(f->r.fd, f->r.buf, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			log_error("%s ended before the position this data_dir has processed (%llu)",
				  src->cfg->source_path, (unsigned long long)src->resume_seq);
			return -1;
		}
		left -= (uint64_t)got;
	}
	return 0;
}

static int file_open(struct source *src)
{
	const char *path = src->cfg->source_path;
	struct src_file *f = calloc(1, sizeof(*f));
	if (!f) {
		log_error("out of memory for the source");
		return EX_OSERR;
	}
	src->priv = f;
	f->next_fd = -1;
	if (src_reader_init(&f->r, src->cfg->max_event_size) != 0) {
		log_error("out of memory for the read buffer");
		return EX_OSERR;
	}
	/* A pipe: its first read reads past the watermark. */
	src_reader_reset(&f->r, 0, src->resume_seq);
	if (strcmp(path, "-") == 0) {
		f->r.fd = STDIN_FILENO;
	} else if ((f->r.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		log_error("%s: [source] path = %s: cannot open the source file: %s",
			  cfg_origin(src->cfg, "source", "path"), path, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(f->r.fd, &st) != 0) {
		log_error("%s: [source] path = %s: cannot stat the source file: %s",
			  cfg_origin(src->cfg, "source", "path"), path, strerror(errno));
		return 1;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	f->size = (uint64_t)st.st_size;
	f->seekable = 1;
	/* stdin cannot be identified: nothing names what it was. */
	f->identified = f->r.fd != STDIN_FILENO;
	int rc = 0;
	if (f->identified)
		rc = check_identity(src, f, &st);
	else if (f->size < src->resume_seq)
		rc = refuse_shorter(src, f->size, src->resume_seq, 0);
	if (rc != 0)
		return rc;
	/* The watermark in this file (base 0 for stdin). */
	src_reader_reset(&f->r, f->ident.base, src->resume_seq - f->ident.base);
	f->r.track_head = f->identified;
	f->r.head_len = f->ident.head_len;
	f->r.head_hash = f->ident.head_hash;
	if (f->r.offset && lseek(f->r.fd, (off_t)f->r.offset, SEEK_SET) < 0) {
		log_error("%s: cannot seek: %s", path, strerror(errno));
		return 1;
	}
	return 0;
}

static int file_close(struct source *src)
{
	struct src_file *f = src->priv;
	if (!f)
		return 0;
	if (f->r.fd > STDIN_FILENO)
		close(f->r.fd);
	if (f->next_fd >= 0)
		close(f->next_fd);
	src_reader_free(&f->r);
	free(f);
	src->priv = NULL;
	return 0;
}

static int file_pollfd(struct source *src, int *idle_ms)
{
	(void)src;
	*idle_ms = FOLLOW_IDLE_MS; /* a file never polls readable at its end: look again */
	return -1;
}

static enum src_result file_read(struct source *src, unsigned budget)
{
	struct src_file *f = src->priv;
	unsigned handed = 0;
	if (!f->started) {
		if (!f->seekable && skip_input(src, f) != 0)
			return SRC_ERROR;
		f->started = 1;
	}
	if (f->idle) {
		/* follow: back from a wait; first a look at the file. */
		f->idle = 0;
		if (f->identified)
			watch_file(src, f);
	}
	if (f->detached) {
		f->idle = 1;
		return SRC_IDLE;
	}
	for (;;) {
		int rc = drain_lines(src, f, budget, &handed);
		if (rc == -EAGAIN)
			return SRC_FULL;
		if (rc != 0)
			return SRC_ERROR;
		if (handed >= budget)
			return SRC_MORE;
		if (f->r.eof) {
			if (f->rotating) {
				if (switch_file(src, f) != 0)
					return SRC_ERROR;
				continue;
			}
			if (!src->cfg->follow)
				return SRC_END;
			f->r.eof = 0;
			if (handed)
				return SRC_MORE;
			f->idle = 1;
			return SRC_IDLE;
		}
		if (src_reader_fill(src, &f->r) != 0) {
			log_error("%s: read error: %s", src->cfg->source_path, strerror(errno));
			return SRC_ERROR;
		}
	}
}

static void file_position(const struct source *src, struct src_pos *pos)
{
	const struct src_file *f = src->priv;
	pos->next_seq = f->r.next_seq;
	pos->read = f->r.offset;
	pos->size = f->size;
}

const struct source_ops src_file_ops = {
    .name = "file",
    .open = file_open,
    .pollfd = file_pollfd,
    .read = file_read,
    .position = file_position,
    .close = file_close,
};
