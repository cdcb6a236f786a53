/* test_benchio.c - tests for tests/bench/peers/benchio.c, what the limit
 * program and the peers of `make bench-peers` share: the hash map (growth,
 * long keys and values, values rewritten in place, dump order), reading an
 * events file and a table file as ringmaster reads them, NAME=FILE
 * arguments, and splitting keys over connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bench/peers/benchio.h"

/* A scratch file holding text; its path in a static buffer. */
static const char *scratch(const char *text, size_t len)
{
	static char path[64];

	snprintf(path, sizeof(path), "/tmp/test_benchio.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

/* The whole of a file, NUL-terminated, malloc'd. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 16);

	assert_non_null(f);
	assert_non_null(buf);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);

	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void map_grows_and_finds_every_key(void **unused)
{
	struct bio_map m = {0};
	char k[32], v[32];

	(void)unused;
	assert_null(bio_map_get(&m, "x", 1));
	for (int i = 0; i < 5000; i++) {
		int kn = snprintf(k, sizeof(k), "acct%08d", i),
		    vn = snprintf(v, sizeof(v), "v%d", i);

		assert_int_equal(bio_map_put(&m, k, (size_t)kn, v, (size_t)vn), 0);
	}
	assert_int_equal(m.n, 5000);
	for (int i = 0; i < 5000; i++) {
		int kn = snprintf(k, sizeof(k), "acct%08d", i),
		    vn = snprintf(v, sizeof(v), "v%d", i);
		const struct bio_entry *e = bio_map_get(&m, k, (size_t)kn);

		assert_non_null(e);
		assert_int_equal(e->vlen, vn);
		assert_memory_equal(bio_entry_val(e), v, (size_t)vn);
	}
	assert_null(bio_map_get(&m, "acct00005000", 12));
	assert_null(bio_map_get(&m, "acct0000000", 11)); /* a prefix of a key */
	/* A put of a key there already replaces its value, adds nothing. */
	assert_int_equal(bio_map_put(&m, "acct00000007", 12, "new", 3), 0);
	assert_int_equal(m.n, 5000);
	assert_memory_equal(bio_entry_val(bio_map_get(&m, "acct00000007", 12)), "new", 3);
	bio_map_free(&m);
	assert_int_equal(m.n, 0);
}

static void map_keeps_long_keys_and_values_outside(void **unused)
{
	struct bio_map m = {0};
	char key[200], big[300], small[] = "balance=1 count=1";

	(void)unused;
	memset(key, 'k', sizeof(key));
	memset(big, 'v', sizeof(big));
	big[299] = 'z';
	assert_int_equal(bio_map_put(&m, key, sizeof(key), big, sizeof(big)), 0);
	struct bio_entry *e = bio_map_get(&m, key, sizeof(key));

	assert_non_null(e);
	assert_memory_equal(bio_entry_key(e), key, sizeof(key));
	assert_int_equal(e->vlen, sizeof(big));
	assert_memory_equal(bio_entry_val(e), big, sizeof(big));
	/* Shorter again: back inline; then long again. */
	assert_int_equal(bio_entry_set(e, small, strlen(small)), 0);
	assert_int_equal(e->vlen, strlen(small));
	assert_memory_equal(bio_entry_val(e), small, strlen(small));
	assert_int_equal(bio_entry_set(e, big, 40), 0);
	assert_int_equal(bio_entry_set(e, big, sizeof(big)), 0);
	assert_memory_equal(bio_entry_val(e), big, sizeof(big));
	/* An empty value is a value. */
	assert_int_equal(bio_map_put(&m, "e", 1, "", 0), 0);
	assert_int_equal(bio_map_get(&m, "e", 1)->vlen, 0);
	bio_map_free(&m);
}

static void map_dumps_in_memcmp_order(void **unused)
{
	struct bio_map m = {0};
	const char *keys[] = {"b", "ab", "a", "B", "a0"};

	(void)unused;
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(bio_map_put(&m, keys[i], strlen(keys[i]), keys[i], 1), 0);
	const char *path = scratch("", 0);

	assert_int_equal(bio_map_dump(&m, path), 0);
	char *text = slurp(path);

	assert_string_equal(text, "B\tB\na\ta\na0\ta\nab\ta\nb\tb\n");
	free(text);
	unlink(path);
	assert_int_equal(bio_map_dump(&m, "/nonexistent/dir/state"), -1);
	bio_map_free(&m);
}

static void events_are_read_as_ringmaster_reads_them(void **unused)
{
	static const char text[] = "a\tdeposit\t1\r\n" /* seq 0, CR dropped */
				   "nodelim\n"	       /* 13: not an event */
				   "\tdeposit\t5\n"    /* 21: empty key */
				   "b\t\n"	       /* 32: empty payload is fine */
				   "c\twithdrawal\t2"; /* 35: no final newline */
	struct bio_events e;
	const char *path = scratch(text, sizeof(text) - 1);

	(void)unused;
	assert_int_equal(bio_events_load(path, &e), 0);
	assert_int_equal(e.n, 3);
	assert_int_equal(e.bad, 2);
	assert_int_equal(e.ev[0].seq, 0);
	assert_int_equal(e.ev[0].key_len, 1);
	assert_int_equal(e.ev[0].payload_len, strlen("deposit\t1"));
	assert_memory_equal(e.ev[0].payload, "deposit\t1", e.ev[0].payload_len);
	assert_int_equal(e.ev[1].seq, 32);
	assert_int_equal(e.ev[1].payload_len, 0);
	assert_int_equal(e.ev[2].seq, 35);
	assert_memory_equal(e.ev[2].payload, "withdrawal\t2", e.ev[2].payload_len);
	bio_events_free(&e);
	unlink(path);
	assert_int_equal(bio_events_load("/nonexistent/events.tsv", &e), -1);
	assert_int_equal(bio_events_load("/tmp", &e), -1); /* a directory */
}

static int count_row(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct bio_map *m = arg;

	return bio_map_put(m, key, klen, val, vlen);
}

static void tables_skip_comments_and_refuse_empty_keys(void **unused)
{
	static const char good[] = "# a comment\n\ndeposit\t1\t10\t0\r\nbare\n";
	static const char bad[] = "deposit\t1\n\tnokey\n";
	struct bio_map m = {0};
	const char *path = scratch(good, sizeof(good) - 1);

	(void)unused;
	assert_int_equal(bio_table_each(path, count_row, &m), 0);
	assert_int_equal(m.n, 2);
	assert_memory_equal(bio_entry_val(bio_map_get(&m, "deposit", 7)), "1\t10\t0", 6);
	assert_int_equal(bio_map_get(&m, "bare", 4)->vlen, 0);
	unlink(path);
	path = scratch(bad, sizeof(bad) - 1);
	assert_int_equal(bio_table_each(path, count_row, &m), -1);
	unlink(path);
	bio_map_free(&m);
}

static void table_arguments_are_name_equals_file(void **unused)
{
	const char *name, *file;
	size_t n;

	(void)unused;
	assert_int_equal(bio_table_arg("rules=/x/r.tsv", &name, &n, &file), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(name, "rules", 5);
	assert_string_equal(file, "/x/r.tsv");
	assert_int_equal(bio_table_arg("rules", &name, &n, &file), -1);
	assert_int_equal(bio_table_arg("=f", &name, &n, &file), -1);
	assert_int_equal(bio_table_arg("rules=", &name, &n, &file), -1);
	assert_int_equal(bio_table_arg("ru-les=f", &name, &n, &file), -1);
}

static void keys_split_evenly_and_the_same_way_each_time(void **unused)
{
	unsigned count[4] = {0};
	char k[32];

	(void)unused;
	for (int i = 0; i < 4000; i++) {
		int kn = snprintf(k, sizeof(k), "acct%08d", i);
		unsigned to = bio_split(k, (size_t)kn, 4);

		assert_true(to < 4);
		assert_int_equal(to, bio_split(k, (size_t)kn, 4));
		count[to]++;
	}
	for (int i = 0; i < 4; i++)
		assert_in_range(count[i], 800, 1200);
	assert_int_equal(bio_split("x", 1, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(map_grows_and_finds_every_key),
	    cmocka_unit_test(map_keeps_long_keys_and_values_outside),
	    cmocka_unit_test(map_dumps_in_memcmp_order),
	    cmocka_unit_test(events_are_read_as_ringmaster_reads_them),
	    cmocka_unit_test(tables_skip_comments_and_refuse_empty_keys),
	    cmocka_unit_test(table_arguments_are_name_equals_file),
	    cmocka_unit_test(keys_split_evenly_and_the_same_way_each_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
