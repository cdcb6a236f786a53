/* test_cfg_live.c - tests for the reload half of common/cfg.c: which
 * settings a reload applies (cfg_take_live) and which it reports as needing
 * a restart (cfg_restart_notes, with the exact words), and the live
 * settings as the supervisor hands them to its workers (cfg_live_pack,
 * cfg_live_unpack). Each test loads INI files in a fresh temporary
 * directory. */
/* cmocka.h needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "scratch.h"

#define BASE "[source]\npath = -\n"

static void load_ok(const char *text, struct cfg *c)
{
	struct cfg_errors e = {0};
	FILE *f = fopen("demo.ini", "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	if (cfg_load("demo.ini", NULL, 0, c, &e) != 0)
		fail_msg("unexpected errors:\n%s", e.text ? e.text : "");
}

/* ---- what a reload reports ---- */

static void test_nothing_changed(void **state)
{
	struct cfg a, b;
	char msg[256] = "";

	(void)state;
	load_ok(BASE, &a);
	load_ok(BASE, &b);
	cfg_restart_notes(&a, &b, msg, sizeof(msg));
	assert_string_equal(msg, "");
	cfg_free(&a);
	cfg_free(&b);
}

/* Settings that need a restart are named in table order; [source],
 * [output] and [store] once as a whole; live ones not at all. */
static void test_restart_notes(void **state)
{
	struct cfg a, b;
	char msg[1024] = "earlier line\n";

	(void)state;
	load_ok(BASE, &a);
	load_ok("[ringmaster]\nname = other\npartitions = 8\nlog_level = debug\n"
		"stop_timeout = 5s\nstrict_modes = no\n"
		"[worker]\nbatch_max = 7\nhandler = /x/h.so\nwatchdog = 0\n"
		"[source]\npath = -\ndelimiter = comma\nfollow = yes\non_data_loss = continue\n"
		"[output]\ndir = elsewhere\n"
		"[store]\nsync = batch\nsync_interval = 5s\n"
		"[restart]\npoison_after = 9\nfail_after = 2\n"
		"[handler]\nfee = 3\n",
		&b);
	cfg_restart_notes(&a, &b, msg, sizeof(msg));
	assert_string_equal(msg, "earlier line\n"
				 "[ringmaster] partitions: needs restart, not applied\n"
				 "[ringmaster] name: needs restart, not applied\n"
				 "[worker] handler: needs restart, not applied\n"
				 "[source]: needs restart, not applied\n"
				 "[output]: needs restart, not applied\n"
				 "[store]: needs restart, not applied\n");
	cfg_free(&a);
	cfg_free(&b);
}

/* Every kind of field is compared: a double, a char, a string set and
 * unset, a size. */
static void test_restart_notes_kinds(void **state)
{
	static const char *const changes[] = {
	    "[source]\ntype = generate\nskew = 0.5\n",
	    "[source]\ntype = generate\nkeys = 7\n",
	    "[source]\npath = -\ndelimiter = |\n",
	    "[source]\npath = -\nbrokers = b:9092\n",
	    "[source]\npath = other\n",
	};
	struct cfg a, b;
	char msg[256];

	(void)state;
	load_ok("[source]\ntype = generate\n", &a);
	for (size_t i = 0; i < 2; i++) {
		msg[0] = '\0';
		load_ok(changes[i], &b);
		cfg_restart_notes(&a, &b, msg, sizeof(msg));
		assert_string_equal(msg, "[source]: needs restart, not applied\n");
		cfg_free(&b);
	}
	cfg_free(&a);
	load_ok(BASE, &a);
	for (size_t i = 2; i < sizeof(changes) / sizeof(changes[0]); i++) {
		msg[0] = '\0';
		load_ok(changes[i], &b);
		cfg_restart_notes(&a, &b, msg, sizeof(msg));
		assert_string_equal(msg, "[source]: needs restart, not applied\n");
		cfg_free(&b);
	}
	msg[0] = '\0';
	load_ok(BASE "[worker]\nring_size = 16M\n", &b);
	cfg_restart_notes(&a, &b, msg, sizeof(msg));
	assert_string_equal(msg, "[worker] ring_size: needs restart, not applied\n");
	cfg_free(&b);
	cfg_free(&a);
}

/* A buffer too small keeps what fits, NUL-terminated, and nothing past it. */
static void test_restart_notes_cut(void **state)
{
	struct cfg a, b;
	char msg[40];

	(void)state;
	memset(msg, 'x', sizeof(msg));
	msg[0] = '\0';
	load_ok(BASE, &a);
	load_ok("[ringmaster]\npartitions = 8\nname = other\n" BASE, &b);
	cfg_restart_notes(&a, &b, msg, 20);
	assert_string_equal(msg, "[ringmaster] partit");
	assert_int_equal(msg[20], 'x');
	cfg_free(&a);
	cfg_free(&b);
}

/* ---- what a reload applies ---- */

static void test_take_live(void **state)
{
	struct cfg run, fresh;

	(void)state;
	load_ok(BASE "[ringmaster]\nlog_file = old.log\n[table.rules]\npath = r.tsv\n", &run);
	load_ok("[ringmaster]\npartitions = 8\nlog_file = new.log\nlog_level = debug\n"
		"stop_timeout = 5s\nstrict_modes = no\n"
		"[worker]\nbatch_max = 7\nring_size = 16M\nwatchdog = 0\n"
		"[source]\npath = other\non_data_loss = continue\n"
		"[restart]\nbackoff_initial = 1s\nbackoff_max = 2s\nbackoff_reset = 3s\n"
		"poison_after = 9\nfail_after = 2\n"
		"[handler]\nfee = 3\n[kafka]\nacks = all\n"
		"[table.accounts]\npath = a.tsv\n",
		&fresh);
	cfg_take_live(&run, &fresh);
	/* live */
	assert_non_null(strstr(run.log_file, "/new.log"));
	assert_int_equal(run.log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(run.stop_timeout_ms, 5000);
	assert_int_equal(run.strict_modes, 0);
	assert_int_equal(run.batch_max, 7);
	assert_int_equal(run.watchdog_ms, 0);
	assert_int_equal(run.on_data_loss, CFG_DATA_LOSS_CONTINUE);
	assert_int_equal(run.backoff_initial_ms, 1000);
	assert_int_equal(run.backoff_max_ms, 2000);
	assert_int_equal(run.backoff_reset_ms, 3000);
	assert_int_equal(run.poison_after, 9);
	assert_int_equal(run.fail_after, 2);
	assert_string_equal(cfg_param(&run, "fee"), "3");
	assert_int_equal(run.n_kafka, 1);
	assert_string_equal(run.kafka[0].key, "acks");
	assert_int_equal(run.n_tables, 1);
	assert_string_equal(run.tables[0].name, "accounts");
	assert_string_equal(cfg_origin(&run, "worker", "batch_max"), "demo.ini:8");
	/* needs a restart: as it was */
	assert_int_equal(run.partitions, 4);
	assert_int_equal(run.ring_size, 8 << 20);
	assert_string_equal(run.source_path, "-");
	/* the old values went to fresh, freed with it */
	assert_non_null(strstr(fresh.log_file, "/old.log"));
	assert_int_equal(fresh.n_tables, 1);
	assert_string_equal(fresh.tables[0].name, "rules");
	assert_null(fresh.params);
	cfg_free(&fresh);
	cfg_free(&run);
}

/* ---- what the workers are handed ---- */

static void test_pack_unpack(void **state)
{
	struct cfg c, got = {0};
	char *buf;
	size_t len;

	(void)state;
	load_ok(BASE "[ringmaster]\nlog_level = debug\nlog_file = x.log\nstop_timeout = 2s\n"
		     "[worker]\nbatch_max = 77\nwatchdog = 0\n"
		     "[source]\non_data_loss = continue\n"
		     "[restart]\nfail_after = 5\n",
		&c);
	assert_int_equal(cfg_live_pack(&c, &buf, &len), 0);
	assert_non_null(memmem(buf, len, "worker.batch_max\00077\0", 20));
	assert_null(memmem(buf, len, "partitions", 10)); /* needs a restart */
	assert_int_equal(cfg_live_unpack(&got, buf, len), 0);
	assert_int_equal(got.log_level, c.log_level);
	assert_string_equal(got.log_file, c.log_file);
	assert_true(got.log_file >= buf && got.log_file < buf + len); /* points into it */
	assert_int_equal(got.stop_timeout_ms, 2000);
	assert_int_equal(got.batch_max, 77);
	assert_int_equal(got.watchdog_ms, 0);
	assert_int_equal(got.on_data_loss, CFG_DATA_LOSS_CONTINUE);
	assert_int_equal(got.fail_after, 5);
	assert_int_equal(got.strict_modes, 1);
	assert_int_equal(got.partitions, 0); /* not live: untouched */
	free(buf);
	cfg_free(&c);
}

/* A live string left unset is published as absent and unpacked as NULL;
 * names not known are skipped; malformed pairs change nothing. */
static void test_unpack_edges(void **state)
{
	static const char unknown[] = "no.such\0001\0worker.batch_max\0009\0";
	static const char *const bad[] = {"worker.batch_max\0", "worker.batch_max\0x",
					  "worker.batch_max\0nine", "worker.batch_max\0-",
					  "worker.batch_max"};
	static const size_t bad_len[] = {17, 18, 22, 19, 16};
	struct cfg c, got;
	char *buf;
	size_t len;

	(void)state;
	load_ok(BASE, &c);
	assert_int_equal(cfg_live_pack(&c, &buf, &len), 0);
	assert_null(memmem(buf, len, "log_file", 8));
	got = (struct cfg){.log_file = "stale", .batch_max = 1};
	assert_int_equal(cfg_live_unpack(&got, buf, len), 0);
	assert_null(got.log_file);
	assert_int_equal(got.batch_max, 4096);
	free(buf);

	assert_int_equal(cfg_live_unpack(&got, unknown, sizeof(unknown) - 1), 0);
	assert_int_equal(got.batch_max, 9);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cfg before;

		got.log_file = "kept";
		before = got;
		assert_int_equal(cfg_live_unpack(&got, bad[i], bad_len[i]), -1);
		assert_memory_equal(&got, &before, sizeof(got));
	}
	cfg_free(&c);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	return scratch_enter(state, "test_cfg_live");
}

static int teardown(void **state)
{
	return scratch_leave(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nothing_changed),	cmocka_unit_test(test_restart_notes),
	    cmocka_unit_test(test_restart_notes_kinds), cmocka_unit_test(test_restart_notes_cut),
	    cmocka_unit_test(test_take_live),		cmocka_unit_test(test_pack_unpack),
	    cmocka_unit_test(test_unpack_edges),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
