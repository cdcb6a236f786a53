/* pc_shadow.h - the shadow directory of the power-cut harness: a record of
 * what a power cut would leave of the files under ROOT. Written by
 * libpowercut.so (inside fsync() and O_DSYNC writes of the process under
 * test) and by pctool init; read by pctool restore.
 *
 * Layout of SHADOW:
 *
 *   .powercut-shadow  marker: "powercut shadow\n", then, once init has
 *                     finished, "root <ROOT>\nid <key>\n" (ROOT resolved)
 *   lock              flock()ed around every update, by every process
 *   tmp               scratch file renamed into place (under the lock)
 *   ino/<key>         durable content of the regular file <key>
 *   dir/<key>         durable entry list of the directory <key>
 *   errors            what libpowercut.so failed to record; restore refuses
 *
 * <key> names an inode: <dev>-<ino>-<gen>. <gen> tells apart two files
 * that had the same inode number one after the other (ext4 hands a freed
 * number out again at once, and a stale copy must not become the content
 * of a new file): the inode generation (FS_IOC_GETVERSION) where the file
 * system has one, else the birth time in nanoseconds, else 0.
 *
 * An entry list has one line per entry: "<type> <perm> <key> <name>" and,
 * for a symbolic link, " <target>". <type> is f (regular), d, l, p (fifo),
 * s (socket), c or b (devices: restore refuses them); <perm> is the mode's
 * 07777 bits in octal; <name> and <target> are escaped: bytes up to ' ',
 * '%' and from 0x7f up are written %XX.
 *
 * Nothing here allocates memory or uses stdio: libpowercut.so calls it from
 * inside write() and fsync() of any process, in forked children and maybe
 * in signal handlers. Functions return 0 or a negative errno.
 */
#ifndef PC_SHADOW_H
#define PC_SHADOW_H

#include <sys/types.h>
#include <sys/uio.h>

#define PC_MARKER ".powercut-shadow"
#define PC_KEY_MAX 64 /* "<dev>-<ino>-<gen>" and its NUL, with room to spare */

/* One inode, as the shadow names it. */
struct pc_key {
	unsigned long long dev, ino, gen;
};

/* A shadow directory and the primitives to write into it. libpowercut.so
 * passes the real write and pwrite (found with dlsym), so that recording
 * never goes through its own interposed ones; pctool passes libc's. */
struct pc_shadow {
	const char *dir; /* SHADOW, absolute */
	ssize_t (*write)(int fd, const void *buf, size_t len);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
};

/* pc_key_of_fd: the key of the inode open on fd (any fd but O_PATH). */
int pc_key_of_fd(int fd, struct pc_key *key);

/* pc_key_name: writes "<dev>-<ino>-<gen>" into buf (PC_KEY_MAX bytes). */
void pc_key_name(char *buf, const struct pc_key *key);

/* pc_path: "<SHADOW>/<sub>" or, with key, "<SHADOW>/<sub>/<key>" into buf.
 * -ENAMETOOLONG if it does not fit in size bytes. */
int pc_path(char *buf, size_t size, const struct pc_shadow *sh, const char *sub,
	    const struct pc_key *key);

/* pc_lock: takes the shadow's lock (flock, exclusive, waits). Returns the
 * lock's fd, to give to pc_unlock, or a negative errno. */
int pc_lock(const struct pc_shadow *sh);
void pc_unlock(int lock_fd);

/* pc_copy_fd: copies all of from (from its offset 0, which is left alone)
 * to out at out's offset 0 on; copy_file_range, else pread and pwrite. */
int pc_copy_fd(const struct pc_shadow *sh, int from, int out);

/* pc_save_file: ino/<key> becomes a copy of the whole file readable on fd,
 * atomically (tmp, then rename). Call with the lock held. */
int pc_save_file(const struct pc_shadow *sh, int fd, const struct pc_key *key);

/* pc_save_dir: dir/<key> becomes the entry list of the directory open on
 * fd (any fd on it; its offset is left alone), atomically. Call with the
 * lock held. */
int pc_save_dir(const struct pc_shadow *sh, int fd, const struct pc_key *key);

/* pc_save_range: writes the first len bytes of iov at offset off of
 * ino/<key>, creating it empty first if there is none (an O_DSYNC write to
 * a file never fsynced). Call with the lock held. */
int pc_save_range(const struct pc_shadow *sh, const struct pc_key *key, const struct iovec *iov,
		  int iovcnt, size_t len, off_t off);

/* pc_note_error: says on stderr and in SHADOW/errors that the durable
 * image is incomplete: "powercut: <what> <path>: <error name>", so that
 * restore refuses instead of building a wrong image. err is an errno. */
void pc_note_error(const struct pc_shadow *sh, const char *what, const char *path, int err);

#endif
