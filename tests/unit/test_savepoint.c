/* test_savepoint.c - a savepoint's files (common/savepoint.c): the
 * checksum, the manifest written and read back, every malformed manifest
 * refused at its line, and --verify naming the file whose size or checksum
 * is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "savepoint.h"
#include "scratch.h"

static int setup(void **state)
{
	return scratch_enter(state, "test_savepoint");
}

static int teardown(void **state)
{
	return scratch_leave(state);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_fnv(void **unused)
{
	(void)unused;
	/* The FNV-1a 64 test vectors. */
	assert_true(savepoint_fnv(SAVEPOINT_FNV_SEED, "", 0) == 0xcbf29ce484222325ull);
	assert_true(savepoint_fnv(SAVEPOINT_FNV_SEED, "a", 1) == 0xaf63dc4c8601ec8cull);
	assert_true(savepoint_fnv(SAVEPOINT_FNV_SEED, "foobar", 6) == 0x85944171f73967e8ull);
	/* In pieces, the same. */
	uint64_t h = savepoint_fnv(SAVEPOINT_FNV_SEED, "foo", 3);
	assert_true(savepoint_fnv(h, "bar", 3) == 0x85944171f73967e8ull);
}

/* A savepoint of two partitions in sp/, with real files. */
static void make_savepoint(struct savepoint_manifest *m)
{
	assert_int_equal(mkdir("sp", 0700), 0);
	assert_int_equal(mkdir("sp/config", 0700), 0);
	assert_int_equal(mkdir("sp/state", 0700), 0);
	assert_int_equal(mkdir("sp/state/p0", 0700), 0);
	assert_int_equal(mkdir("sp/state/p1", 0700), 0);
	write_text("sp/config/data.mdb", "config bytes");
	write_text("sp/state/p0/data.mdb", "shard zero");
	write_text("sp/state/p1/data.mdb", "shard one, longer");
	assert_int_equal(savepoint_manifest_init(m, 2), 0);
	snprintf(m->source, sizeof(m->source), "file");
	snprintf(m->created, sizeof(m->created), "2026-11-30T08:00:00Z");
	m->source_identity = 0x0123456789abcdefull;
	m->position = 12345;
	m->generation = 3;
	m->handler = 0xfedcba9876543210ull;
	m->shards[0] = (struct savepoint_shard){100, 2000, 0, 1};
	m->shards[1] = (struct savepoint_shard){0, 0, (1ull << 63) + 5, 0};
	const char *rels[] = {"config/data.mdb", "state/p0/data.mdb", "state/p1/data.mdb"};
	for (size_t i = 0; i < 3; i++) {
		char path[128];
		snprintf(m->files[i].rel, sizeof(m->files[i].rel), "%s", rels[i]);
		snprintf(path, sizeof(path), "sp/%s", rels[i]);
		assert_int_equal(savepoint_file_sum(path, &m->files[i].size, &m->files[i].sum), 0);
	}
	m->n_files = 3;
	char err[SAVEPOINT_ERR_LEN];
	assert_int_equal(savepoint_manifest_write("sp", m, err, sizeof(err)), 0);
}

static void test_round_trip(void **unused)
{
	(void)unused;
	struct savepoint_manifest m, r;
	char err[SAVEPOINT_ERR_LEN];
	make_savepoint(&m);
	assert_int_equal(savepoint_verify("sp", &r, err, sizeof(err)), 0);
	assert_int_equal(r.partitions, 2);
	assert_string_equal(r.source, "file");
	assert_string_equal(r.created, "2026-11-30T08:00:00Z");
	assert_true(r.source_identity == m.source_identity);
	assert_true(r.position == 12345 && r.generation == 3 && r.handler == m.handler);
	assert_true(r.shards[0].applied_seq == 100 && r.shards[0].output_len == 2000);
	assert_true(r.shards[0].has_applied == 1 && r.shards[0].replay_applied == 0);
	assert_true(r.shards[1].has_applied == 0 && r.shards[1].replay_applied == (1ull << 63) + 5);
	assert_int_equal(r.n_files, 3);
	assert_string_equal(r.files[2].rel, "state/p1/data.mdb");
	assert_true(r.files[2].size == strlen("shard one, longer"));
	/* A manifest is never written over. */
	assert_int_not_equal(savepoint_manifest_write("sp", &m, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "sp/manifest: cannot create: File exists"));
	savepoint_manifest_free(&m);
	savepoint_manifest_free(&r);
}

static void test_verify_names_the_file(void **unused)
{
	(void)unused;
	struct savepoint_manifest m;
	char err[SAVEPOINT_ERR_LEN];
	make_savepoint(&m);
	write_text("sp/state/p0/data.mdb", "shard Zero"); /* same size, one byte */
	assert_int_equal(savepoint_verify("sp", NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "sp/state/p0/data.mdb: checksum "));
	assert_non_null(strstr(err, "the file is corrupt"));
	write_text("sp/state/p0/data.mdb", "shard");
	assert_int_equal(savepoint_verify("sp", NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "sp/state/p0/data.mdb: 5 bytes where the manifest says 10"));
	unlink("sp/state/p0/data.mdb");
	assert_int_equal(savepoint_verify("sp", NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "sp/state/p0/data.mdb: cannot read: No such file"));
	savepoint_manifest_free(&m);
}

/* Each bad manifest is refused, and the message names its line. */
static void test_bad_manifests(void **unused)
{
	(void)unused;
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"", "manifest:1: no end line"},
	    {"ringmaster-savepoint 2\n",
	     "manifest:1: not a ringmaster savepoint manifest of version 1"},
	    {"ringmaster-savepoint 1\nsource file\n", "manifest:2: partitions must come first"},
	    {"ringmaster-savepoint 1\npartitions 0\n", "manifest:2: partitions: want one count"},
	    {"ringmaster-savepoint 1\npartitions 1\npartitions 1\n", "manifest:3: partitions"},
	    {"ringmaster-savepoint 1\npartitions 1\nposition -1\n", "manifest:3: want a number"},
	    {"ringmaster-savepoint 1\npartitions 1\nhandler xyz\n", "manifest:3: want 16 hex"},
	    {"ringmaster-savepoint 1\npartitions 1\nshard 1 0 0 0 0\n",
	     "manifest:3: shard: a partition"},
	    {"ringmaster-savepoint 1\npartitions 1\nshard 0 0 2 0 0\n",
	     "manifest:3: shard: a partition"},
	    {"ringmaster-savepoint 1\npartitions 1\nshard 0 0 0 0\n", "manifest:3: shard: want P"},
	    {"ringmaster-savepoint 1\npartitions 1\nfile state/p1/data.mdb 1 0000000000000000\n",
	     "manifest:3: file: want config/data.mdb or state/pP/data.mdb"},
	    {"ringmaster-savepoint 1\npartitions 1\nfile ../etc/passwd 1 0000000000000000\n",
	     "manifest:3: file: want"},
	    {"ringmaster-savepoint 1\npartitions 1\nfile config/data.mdb 1 00\n",
	     "manifest:3: file: SIZE must be a number, CHECKSUM 16 hex digits"},
	    {"ringmaster-savepoint 1\npartitions 1\nfrobnicate 1\n", "manifest:3: unknown line"},
	    {"ringmaster-savepoint 1\npartitions 1\n\n", "manifest:3: empty line"},
	    {"ringmaster-savepoint 1\npartitions 1\nend\nsource file\n",
	     "manifest:4: text after the end line"},
	    {"ringmaster-savepoint 1\npartitions 1\nsource file\ncreated x\nend\n",
	     "no shard line for partition 0"},
	    {"ringmaster-savepoint 1\npartitions 1\nsource file\ncreated x\nshard 0 0 0 0 0\nend\n",
	     "no file line for partition 0"},
	    {"ringmaster-savepoint 1\npartitions 1\nsource file\ncreated x\nshard 0 0 0 0 0\n"
	     "file state/p0/data.mdb 1 0000000000000000\nend\n",
	     "no file line for the config"},
	    {"ringmaster-savepoint 1\npartitions 1\nsource file\ncreated x\nshard 0 0 0 0 0\n"
	     "file state/p0/data.mdb 1 0000000000000000\n"
	     "file config/data.mdb 1 0000000000000000\nend", /* no newline: cut */
	     "manifest:8: a line too long or without its newline"},
	};
	char err[SAVEPOINT_ERR_LEN];
	struct savepoint_manifest m;
	assert_int_equal(mkdir("bad", 0700), 0);
	assert_int_equal(savepoint_manifest_read("bad", &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad/manifest: cannot open: No such file"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_text("bad/manifest", cases[i].text);
		assert_int_equal(savepoint_manifest_read("bad", &m, err, sizeof(err)), -1);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: got '%s', want '%s'", i, err, cases[i].want);
	}
	/* The last case with its newline reads. */
	write_text("bad/manifest", "ringmaster-savepoint 1\npartitions 1\nsource file\ncreated x\n"
				   "shard 0 0 0 0 0\nfile state/p0/data.mdb 1 0000000000000000\n"
				   "file config/data.mdb 1 0000000000000000\nend\n");
	assert_int_equal(savepoint_manifest_read("bad", &m, err, sizeof(err)), 0);
	savepoint_manifest_free(&m);
}

static void test_remove(void **unused)
{
	(void)unused;
	struct savepoint_manifest m;
	struct stat st;
	make_savepoint(&m);
	savepoint_remove("sp", 2);
	assert_int_equal(stat("sp", &st), -1);
	/* A file it does not know keeps the directory. */
	assert_int_equal(mkdir("other", 0700), 0);
	write_text("other/mine", "x");
	savepoint_remove("other", 2);
	assert_int_equal(stat("other/mine", &st), 0);
	savepoint_manifest_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fnv),
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_names_the_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_manifests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
