/* pctool.c - the command-line half of the power-cut harness (the other half
 * is libpowercut.so, see powercut.c): it makes a shadow directory that
 * records what is durable under a tree ROOT, and after a simulated power
 * cut rebuilds ROOT as exactly that durable image.
 *
 *   pctool init ROOT SHADOW
 *	SHADOW (made if missing; emptied if it is an old shadow, refused if it
 *	is anything else that is not empty) records everything now under ROOT
 *	as durable: every directory's entries, every file's content.
 *   pctool restore ROOT SHADOW
 *	Run once every process that used ROOT is dead (kill -KILL -- -PGID).
 *	Everything under ROOT is removed and rebuilt from the shadow's entry
 *	lists, from ROOT's own on down, with the shadow's copies of the file
 *	contents (empty for a file that has none); then init runs again, so
 *	the next run starts from that durable baseline.
 *
 * Modes are kept (from the entry lists); owners and times are not. Symbolic
 * links, fifos and sockets are recreated as such, hard links as hard links;
 * device files are refused.
 *
 * Exit status: 0 done; 1 failed, with a message on stderr (after a failed
 * restore ROOT is half built: fix the cause and restore again, the shadow
 * is untouched); 2 usage.
 */
#include "pc_shadow.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2

/* An inode already rebuilt by restore: a second entry for it is a hard link. */
struct seen {
	char key[PC_KEY_MAX];
	char *rel; /* its path relative to ROOT */
};

struct tool {
	char root[PATH_MAX];   /* resolved */
	char shadow[PATH_MAX]; /* resolved */
	struct pc_shadow sh;
	int root_fd;	   /* restore */
	struct seen *seen; /* restore */
	size_t nseen, seen_cap;
};

/* Prints "pctool: <message>" and returns -1. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	va_list ap;
	fputs("pctool: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* a is b or below it. */
static int is_under(const char *a, const char *b)
{
	size_t n = strlen(b);
	if (n == 1)
		return 1;
	return strncmp(a, b, n) == 0 && (a[n] == '/' || a[n] == '\0');
}

/* "<base>/<name>" into buf, or just name if base is empty. */
static int join(char *buf, size_t size, const char *base, const char *name)
{
	int n = *base ? snprintf(buf, size, "%s/%s", base, name) : snprintf(buf, size, "%s", name);
	if (n < 0 || (size_t)n >= size)
		return fail("path too long: %s/%s", base, name);
	return 0;
}

/* ---- removing ---------------------------------------------------------------- */

static int remove_children(int fd, const char *path);

/* Removes the entry name of the directory fd (which is on device dev), and
 * all under it; sub is its path, for messages. */
static int remove_entry(int fd, dev_t dev, const char *name, const char *sub)
{
	struct stat st;
	int rc;

	if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW))
		return fail("%s: %s", sub, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		if (st.st_dev != dev)
			return fail("%s: a mount point; not removing what is under it", sub);
		int sub_fd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub_fd < 0)
			return fail("%s: %s", sub, strerror(errno));
		rc = remove_children(sub_fd, sub);
		close(sub_fd);
		if (rc)
			return rc;
	}
	if (unlinkat(fd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0))
		return fail("cannot remove %s: %s", sub, strerror(errno));
	return 0;
}

/* Removes everything in the directory fd (path is for messages), without
 * crossing into another file system. Passes until a pass finds nothing:
 * removing entries while reading a directory may make readdir skip some. */
static int remove_children(int fd, const char *path)
{
	struct stat st;
	struct dirent *e;
	char sub[PATH_MAX];
	int rc = 0, removed;

	if (fstat(fd, &st))
		return fail("%s: %s", path, strerror(errno));
	int dup_fd = dup(fd);
	if (dup_fd < 0)
		return fail("%s: %s", path, strerror(errno));
	DIR *d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return fail("%s: %s", path, strerror(errno));
	}
	do {
		removed = 0;
		rewinddir(d);
		while (!rc && (errno = 0, e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			rc = join(sub, sizeof sub, path, e->d_name);
			if (!rc)
				rc = remove_entry(fd, st.st_dev, e->d_name, sub);
			removed++;
		}
		if (!rc && errno)
			rc = fail("%s: %s", path, strerror(errno));
	} while (!rc && removed);
	closedir(d);
	return rc;
}

/* ---- init -------------------------------------------------------------------- */

/* Records the directory fd and everything below it as durable. */
static int record_tree(struct tool *t, int fd, const char *path)
{
	struct pc_key key;
	struct stat st;
	struct dirent *e;
	char sub[PATH_MAX];
	int rc;

	if ((rc = pc_key_of_fd(fd, &key)) || (rc = pc_save_dir(&t->sh, fd, &key)))
		return fail("cannot record the directory %s: %s", path, strerror(-rc));
	int dup_fd = dup(fd);
	if (dup_fd < 0)
		return fail("%s: %s", path, strerror(errno));
	DIR *d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return fail("%s: %s", path, strerror(errno));
	}
	while (!rc && (errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((rc = join(sub, sizeof sub, path, e->d_name)))
			break;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			rc = fail("%s: %s", sub, strerror(errno));
			break;
		}
		if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
			rc = fail("%s: device files are not supported under ROOT", sub);
			break;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
			continue; /* links, fifos, sockets: their entry says it all */
		int sub_fd = openat(fd, e->d_name,
				    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (sub_fd < 0) {
			rc = fail("%s: %s", sub, strerror(errno));
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			rc = record_tree(t, sub_fd, sub);
		} else if ((rc = pc_key_of_fd(sub_fd, &key)) ||
			   (rc = pc_save_file(&t->sh, sub_fd, &key))) {
			rc = fail("cannot record %s: %s", sub, strerror(-rc));
		}
		close(sub_fd);
	}
	if (!rc && errno)
		rc = fail("%s: %s", path, strerror(errno));
	closedir(d);
	return rc;
}

/* Writes the marker: just "powercut shadow" while init runs, then with
 * ROOT and its key, atomically, once the record is complete. */
static int write_marker(struct tool *t, const struct pc_key *root_key)
{
	char path[PATH_MAX], tmp[PATH_MAX], key[PC_KEY_MAX];
	FILE *f;

	if (pc_path(path, sizeof path, &t->sh, PC_MARKER, NULL) ||
	    pc_path(tmp, sizeof tmp, &t->sh, "tmp", NULL))
		return fail("%s: path too long", t->shadow);
	if (!(f = fopen(tmp, "w")))
		return fail("%s: %s", tmp, strerror(errno));
	fputs("powercut shadow\n", f);
	if (root_key) {
		pc_key_name(key, root_key);
		fprintf(f, "root %s\nid %s\n", t->root, key);
	}
	if (ferror(f) | fclose(f))
		return fail("cannot write %s: %s", tmp, strerror(errno));
	if (rename(tmp, path))
		return fail("%s: %s", path, strerror(errno));
	return 0;
}

/* Empties the shadow directory, if it is one (or is empty). */
static int clear_shadow(struct tool *t)
{
	struct dirent *e;
	int entries = 0, rc;

	int fd = open(t->shadow, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail("%s: %s", t->shadow, strerror(errno));
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return fail("%s: %s", t->shadow, strerror(errno));
	}
	while ((e = readdir(d)))
		entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (entries && faccessat(dirfd(d), PC_MARKER, F_OK, 0)) {
		closedir(d);
		return fail("%s is not empty and is not a shadow (no %s): not emptying it; "
			    "give a new or empty directory",
			    t->shadow, PC_MARKER);
	}
	rc = remove_children(dirfd(d), t->shadow);
	closedir(d);
	return rc;
}

static int cmd_init(struct tool *t)
{
	char path[PATH_MAX];
	struct pc_key root_key;
	int rc;

	if ((rc = clear_shadow(t)) || (rc = write_marker(t, NULL)))
		return rc;
	const char *subs[] = {"ino", "dir"};
	for (size_t i = 0; i < 2; i++) {
		if (pc_path(path, sizeof path, &t->sh, subs[i], NULL))
			return fail("%s/%s: path too long", t->shadow, subs[i]);
		if (mkdir(path, 0700))
			return fail("%s: %s", path, strerror(errno));
	}
	int fd = open(t->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail("%s: %s", t->root, strerror(errno));
	rc = record_tree(t, fd, t->root);
	if (!rc && (rc = pc_key_of_fd(fd, &root_key)))
		rc = fail("%s: %s", t->root, strerror(-rc));
	close(fd);
	return rc ? rc : write_marker(t, &root_key);
}

/* ---- restore ------------------------------------------------------------------- */

/* The whole of a small file, NUL-terminated, in *text (to free); -ENOENT
 * if there is none, -1 after a message. */
static int slurp(const char *path, char **text)
{
	struct stat st;
	int rc = 0;

	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : fail("%s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		rc = fail("%s: %s", path, strerror(errno));
		goto out;
	}
	*text = malloc((size_t)st.st_size + 1);
	if (!*text) {
		rc = fail("%s: out of memory", path);
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, *text + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = fail("%s: %s", path, n ? strerror(errno) : "shorter than its size");
			free(*text);
			goto out;
		}
		got += (size_t)n;
	}
	(*text)[got] = '\0';
out:
	close(fd);
	return rc;
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Undoes the %XX escaping in place; -1 if malformed or if s holds a NUL. */
static int unescape(char *s)
{
	char *out = s;
	for (; *s; s++) {
		if (*s != '%') {
			*out++ = *s;
			continue;
		}
		int hi = hex(s[1]), lo = hi < 0 ? -1 : hex(s[2]);
		if (lo < 0 || (hi == 0 && lo == 0))
			return -1;
		*out++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*out = '\0';
	return 0;
}

static struct seen *find_seen(struct tool *t, const char *key)
{
	for (size_t i = 0; i < t->nseen; i++)
		if (!strcmp(t->seen[i].key, key))
			return &t->seen[i];
	return NULL;
}

static int add_seen(struct tool *t, const char *key, const char *rel)
{
	if (t->nseen == t->seen_cap) {
		size_t cap = t->seen_cap ? 2 * t->seen_cap : 64;
		struct seen *s = realloc(t->seen, cap * sizeof *s);
		if (!s)
			return fail("out of memory");
		t->seen = s;
		t->seen_cap = cap;
	}
	struct seen *s = &t->seen[t->nseen];
	snprintf(s->key, sizeof s->key, "%s", key);
	if (!(s->rel = strdup(rel)))
		return fail("out of memory");
	t->nseen++;
	return 0;
}

/* One entry of a durable list, parsed. */
struct entry {
	char type;
	mode_t perm;
	char *key, *name, *target;
};

/* Splits line into an entry; -1 if it is not one. */
static int parse_entry(char *line, struct entry *e)
{
	char *f[5] = {NULL};
	int n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(line, " ", &save); tok && n < 5; tok = strtok_r(NULL, " ", &save))
		f[n++] = tok;
	if (n < 4 || strlen(f[0]) != 1 || strlen(f[2]) >= PC_KEY_MAX)
		return -1;
	char *end;
	unsigned long perm = strtoul(f[1], &end, 8);
	if (*end || perm > 07777 || unescape(f[3]) || (f[4] && unescape(f[4])))
		return -1;
	e->type = f[0][0];
	e->perm = (mode_t)perm;
	e->key = f[2];
	e->name = f[3];
	e->target = f[4];
	if (!*e->name || strchr(e->name, '/') || !strcmp(e->name, ".") || !strcmp(e->name, ".."))
		return -1;
	if ((e->type == 'l') != (e->target != NULL))
		return -1; /* a target, and only for a link */
	return 0;
}

static int restore_dir(struct tool *t, int fd, const char *key, const char *rel);

/* A regular file: its durable content, or a hard link to its first name. */
static int restore_file(struct tool *t, int fd, const struct entry *e, const char *rel)
{
	char path[PATH_MAX];
	struct seen *s = find_seen(t, e->key);
	int rc = 0;

	if (s) {
		if (linkat(t->root_fd, s->rel, fd, e->name, 0))
			return fail("cannot link %s to %s: %s", rel, s->rel, strerror(errno));
		return 0;
	}
	int out = openat(fd, e->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return fail("cannot create %s: %s", rel, strerror(errno));
	if (snprintf(path, sizeof path, "%s/ino/%s", t->shadow, e->key) >= (int)sizeof path) {
		rc = fail("%s/ino/%s: path too long", t->shadow, e->key);
		goto out;
	}
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0 && errno != ENOENT) {
		rc = fail("%s: %s", path, strerror(errno));
		goto out;
	}
	if (in >= 0) {
		if ((rc = pc_copy_fd(&t->sh, in, out)))
			rc = fail("cannot copy %s to %s: %s", path, rel, strerror(-rc));
		close(in);
	}
	if (!rc && fchmod(out, e->perm))
		rc = fail("%s: %s", rel, strerror(errno));
	if (!rc)
		rc = add_seen(t, e->key, rel);
out:
	if (close(out) && !rc)
		rc = fail("%s: %s", rel, strerror(errno));
	return rc;
}

/* A directory: created, filled from its own list, then given its mode. A
 * directory met a second time (stale lists after a directory was moved)
 * is left empty the second time. */
static int restore_subdir(struct tool *t, int fd, const struct entry *e, const char *rel)
{
	struct seen *s = find_seen(t, e->key);
	int rc;

	if (mkdirat(fd, e->name, 0700))
		return fail("cannot create %s: %s", rel, strerror(errno));
	int sub = openat(fd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return fail("%s: %s", rel, strerror(errno));
	if (s) {
		fprintf(stderr, "pctool: %s is the directory already restored at %s: left empty\n",
			rel, s->rel);
		rc = 0;
	} else if (!(rc = add_seen(t, e->key, rel))) {
		rc = restore_dir(t, sub, e->key, rel);
	}
	if (!rc && fchmod(sub, e->perm))
		rc = fail("%s: %s", rel, strerror(errno));
	close(sub);
	return rc;
}

static int restore_entry(struct tool *t, int fd, const struct entry *e, const char *rel)
{
	switch (e->type) {
	case 'f':
		return restore_file(t, fd, e, rel);
	case 'd':
		return restore_subdir(t, fd, e, rel);
	case 'l':
		if (symlinkat(e->target, fd, e->name))
			return fail("cannot create the link %s: %s", rel, strerror(errno));
		return 0;
	case 'p':
	case 's':
		if (mknodat(fd, e->name, (e->type == 'p' ? S_IFIFO : S_IFSOCK) | 0600, 0) ||
		    fchmodat(fd, e->name, e->perm, 0))
			return fail("cannot create %s: %s", rel, strerror(errno));
		return 0;
	default:
		return fail("%s: entries of type '%c' (devices) are not supported", rel, e->type);
	}
}

/* Fills the directory fd (ROOT/rel) from the durable list dir/<key>; no
 * list means that the directory was never fsynced: it is durably empty. */
static int restore_dir(struct tool *t, int fd, const char *key, const char *rel)
{
	char path[PATH_MAX], sub[PATH_MAX];
	char *text = NULL, *save = NULL;
	int rc;

	if (snprintf(path, sizeof path, "%s/dir/%s", t->shadow, key) >= (int)sizeof path)
		return fail("%s/dir/%s: path too long", t->shadow, key);
	rc = slurp(path, &text);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	int lineno = 0;
	for (char *line = strtok_r(text, "\n", &save); line && !rc;
	     line = strtok_r(NULL, "\n", &save)) {
		struct entry e;
		lineno++;
		if (parse_entry(line, &e))
			rc = fail("%s:%d: not an entry of a durable list", path, lineno);
		else if (!(rc = join(sub, sizeof sub, rel, e.name)))
			rc = restore_entry(t, fd, &e, sub);
	}
	free(text);
	return rc;
}

/* The ROOT key from the marker, checking it was made for this ROOT and
 * that the library recorded everything it was asked to. */
static int read_marker(struct tool *t, char *key)
{
	char path[PATH_MAX], *text = NULL, want[PATH_MAX + 16];
	int rc;

	if (pc_path(path, sizeof path, &t->sh, "errors", NULL) == 0 &&
	    (rc = slurp(path, &text)) != -ENOENT) {
		if (!rc) {
			fputs(text, stderr);
			free(text);
			rc = fail("%s: the shadow missed some of what was made durable (above); "
				  "cannot restore",
				  path);
		}
		return rc;
	}
	if (pc_path(path, sizeof path, &t->sh, PC_MARKER, NULL))
		return fail("%s: path too long", t->shadow);
	if ((rc = slurp(path, &text)))
		return rc == -ENOENT ? fail("%s is not a shadow: run pctool init first", t->shadow)
				     : rc;
	snprintf(want, sizeof want, "\nroot %s\nid ", t->root);
	char *at = strstr(text, want);
	if (!at) {
		rc = fail("%s was not made by pctool init for %s (an init did not finish, or "
			  "another ROOT)",
			  t->shadow, t->root);
	} else {
		at += strlen(want);
		size_t n = strcspn(at, "\n");
		if (n == 0 || n >= PC_KEY_MAX) {
			rc = fail("%s: no ROOT id", path);
		} else {
			memcpy(key, at, n);
			key[n] = '\0';
		}
	}
	free(text);
	return rc;
}

/* Fails if a process is in the middle of recording into the shadow. */
static int check_idle(struct tool *t)
{
	char path[PATH_MAX];
	if (pc_path(path, sizeof path, &t->sh, "lock", NULL))
		return fail("%s: path too long", t->shadow);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail("%s: %s", path, strerror(errno));
	int rc = 0;
	if (flock(fd, LOCK_EX | LOCK_NB))
		rc = fail("%s: %s", path,
			  errno == EWOULDBLOCK ? "a process is still recording into the shadow; "
						 "kill every process using ROOT before restore"
					       : strerror(errno));
	close(fd);
	return rc;
}

static int cmd_restore(struct tool *t)
{
	char key[PC_KEY_MAX];
	int rc;

	if ((rc = read_marker(t, key)) || (rc = check_idle(t)))
		return rc;
	t->root_fd = open(t->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->root_fd < 0)
		return fail("%s: %s", t->root, strerror(errno));
	rc = remove_children(t->root_fd, t->root);
	if (!rc)
		rc = restore_dir(t, t->root_fd, key, "");
	close(t->root_fd);
	for (size_t i = 0; i < t->nseen; i++)
		free(t->seen[i].rel);
	free(t->seen);
	t->seen = NULL;
	t->nseen = t->seen_cap = 0;
	return rc ? rc : cmd_init(t);
}

/* ---- main ---------------------------------------------------------------------- */

/* Resolves ROOT and SHADOW (made first if make_shadow) and checks them. */
static int resolve(struct tool *t, const char *root, const char *shadow, int make_shadow)
{
	struct stat st;

	if (!realpath(root, t->root))
		return fail("ROOT %s: %s", root, strerror(errno));
	if (stat(t->root, &st) || !S_ISDIR(st.st_mode))
		return fail("ROOT %s is not a directory", root);
	if (!strcmp(t->root, "/") || strchr(t->root, '\n'))
		return fail("ROOT %s: not that one", root);
	if (make_shadow && mkdir(shadow, 0700) && errno != EEXIST)
		return fail("SHADOW %s: %s", shadow, strerror(errno));
	if (!realpath(shadow, t->shadow))
		return fail("SHADOW %s: %s", shadow, strerror(errno));
	if (is_under(t->shadow, t->root) || is_under(t->root, t->shadow))
		return fail("SHADOW %s and ROOT %s must not be one inside the other", t->shadow,
			    t->root);
	t->sh.dir = t->shadow;
	t->sh.write = write;
	t->sh.pwrite = pwrite;
	return 0;
}

int main(int argc, char **argv)
{
	static struct tool t;

	if (argc != 4 || (strcmp(argv[1], "init") && strcmp(argv[1], "restore"))) {
		fprintf(stderr, "usage: pctool init ROOT SHADOW\n"
				"       pctool restore ROOT SHADOW\n");
		return EXIT_USAGE;
	}
	int init = !strcmp(argv[1], "init");
	if (resolve(&t, argv[2], argv[3], init))
		return EXIT_FAILURE;
	int rc = init ? cmd_init(&t) : cmd_restore(&t);
	return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
