/* test_cfg.c - tests for common/cfg.c: every accepted form of every kind of
 * value, defaults, path resolution, tables, free-form sections, overrides,
 * and every class of error with its exact message. The tests run inside a
 * fresh temporary directory, so messages name "demo.ini" as a user would. */
/* cmocka.h needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "scratch.h"

static char *root_path(const struct scratch *env, const char *rel, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", env->cwd, rel);
	return buf;
}

static void put_file(const char *name, const char *text)
{
	FILE *f = fopen(name, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

#define OV(...) (char *[]){__VA_ARGS__}, sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)
#define NO_OV NULL, 0

/* Write demo.ini and load it. */
static int load(const char *text, char *const *ov, size_t n, struct cfg *c, struct cfg_errors *e)
{
	put_file("demo.ini", text);
	return cfg_load("demo.ini", ov, n, c, e);
}

static void load_ok(const char *text, char *const *ov, size_t n, struct cfg *c)
{
	struct cfg_errors e = {0};
	int rc = load(text, ov, n, c, &e);

	if (rc != 0)
		print_error("unexpected errors:\n%s", e.text ? e.text : "");
	assert_int_equal(rc, 0);
	assert_null(e.text);
	assert_int_equal(e.count, 0);
}

/* Loading must fail with exactly `want` (messages joined by '\n') and
 * leave the struct it was given as it was. */
static void load_fails(const char *text, char *const *ov, size_t n, const char *want)
{
	struct cfg c, before;
	struct cfg_errors e = {0};
	unsigned lines = 0;

	memset(&c, 0xA5, sizeof(c));
	before = c;
	assert_int_equal(load(text, ov, n, &c, &e), -1);
	assert_non_null(e.text);
	assert_string_equal(e.text, want);
	for (const char *p = want; *p; p++)
		lines += *p == '\n';
	assert_int_equal(e.count, lines);
	assert_memory_equal(&c, &before, sizeof(c));
	cfg_errors_free(&e);
}

#define MINIMAL "[source]\npath = -\n"

/* ---- value parsers ---- */

static void test_parse_size_valid(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} cases[] = {
	    {"0", 0},
	    {"512", 512},
	    {"512B", 512},
	    {"64K", 64 << 10},
	    {"64k", 64 << 10},
	    {"64KB", 64 << 10},
	    {"64KiB", 64 << 10},
	    {"8M", 8 << 20},
	    {"8 M", 8 << 20},
	    {"1G", 1ULL << 30},
	    {"1g", 1ULL << 30},
	    {"2T", 2ULL << 40},
	    {"3MiB", 3ULL << 20},
	    {"16777215T", 16777215ULL << 40},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 1;
		const char *why = NULL;
		assert_int_equal(cfg_parse_size(cases[i].s, &v, &why), 0);
		assert_int_equal(v, cases[i].v);
	}
}

static void test_parse_size_invalid(void **state)
{
	static const struct {
		const char *s, *why;
	} cases[] = {
	    {"", "not a number"},
	    {"K", "not a number"},
	    {"-1", "not a number"},
	    {" 1K", "not a number"},
	    {"8X", "bad unit; use K, M, G or T"},
	    {"8KX", "bad unit; use K, M, G or T"},
	    {"8iB", "bad unit; use K, M, G or T"},
	    {"1.5G", "not a whole number"},
	    {"16777216T", "too large"},
	    {"18446744073709551616", "too large"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 7;
		const char *why = NULL;
		assert_int_equal(cfg_parse_size(cases[i].s, &v, &why), -1);
		assert_string_equal(why, cases[i].why);
		assert_int_equal(v, 7);
	}
}

static void test_parse_duration_valid(void **state)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} cases[] = {
	    {"250ms", 250}, {"5s", 5000}, {"1m", 60000}, {"1h", 3600000},
	    {"10", 10000},  {"0", 0},	  {"0ms", 0},	 {"2 s", 2000},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 1;
		const char *why = NULL;
		assert_int_equal(cfg_parse_duration_ms(cases[i].s, &v, &why), 0);
		assert_int_equal(v, cases[i].ms);
	}
}

static void test_parse_duration_invalid(void **state)
{
	static const struct {
		const char *s, *why;
	} cases[] = {
	    {"", "not a number"},
	    {"ms", "not a number"},
	    {"-5s", "not a number"},
	    {"5x", "bad unit; use ms, s, m or h"},
	    {"5sec", "bad unit; use ms, s, m or h"},
	    {"5S", "bad unit; use ms, s, m or h"},
	    {"1.5s", "not a whole number"},
	    {"18446744073709551615h", "too large"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 7;
		const char *why = NULL;
		assert_int_equal(cfg_parse_duration_ms(cases[i].s, &v, &why), -1);
		assert_string_equal(why, cases[i].why);
		assert_int_equal(v, 7);
	}
}

static void test_parse_bool(void **state)
{
	static const char *const yes[] = {"yes", "true", "on", "1", "YES", "True"};
	static const char *const no[] = {"no", "false", "off", "0", "No", "OFF"};
	static const char *const bad[] = {"", "maybe", "2", "y", "yess"};
	const char *why = NULL;
	int v;

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		v = -1;
		assert_int_equal(cfg_parse_bool(yes[i], &v, &why), 0);
		assert_int_equal(v, 1);
		assert_int_equal(cfg_parse_bool(no[i], &v, &why), 0);
		assert_int_equal(v, 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		assert_int_equal(cfg_parse_bool(bad[i], &v, &why), -1);
		assert_string_equal(why, "not a boolean");
		assert_int_equal(v, 7);
	}
}

/* ---- loading valid files ---- */

static void test_defaults(void **state)
{
	struct scratch *env = *state;
	struct cfg c;
	char p[PATH_MAX];

	load_ok(MINIMAL, NO_OV, &c);
	assert_string_equal(c.file, root_path(env, "demo.ini", p, sizeof(p)));
	assert_string_equal(c.name, "ringmaster");
	assert_int_equal(c.partitions, 4);
	assert_string_equal(c.data_dir, root_path(env, "var/data", p, sizeof(p)));
	assert_string_equal(c.run_dir, root_path(env, "var/run", p, sizeof(p)));
	assert_int_equal(c.log_level, LOG_LEVEL_INFO);
	assert_null(c.log_file);
	assert_int_equal(c.stop_timeout_ms, 10000);
	assert_int_equal(c.batch_max, 4096);
	assert_int_equal(c.ring_size, 8 << 20);
	assert_string_equal(c.handler, "ledger");
	assert_int_equal(c.watchdog_ms, 30000);
	assert_int_equal(c.source_type, CFG_SOURCE_FILE);
	assert_string_equal(c.source_path, "-");
	assert_int_equal(c.delimiter, '\t');
	assert_int_equal(c.follow, 0);
	assert_int_equal(c.max_event_size, 64 << 10);
	assert_int_equal(c.gen_events, 1000000);
	assert_int_equal(c.gen_keys, 10000);
	assert_int_equal(c.gen_seed, 42);
	assert_true(c.gen_skew == 0.0);
	assert_null(c.zmq_bind);
	assert_null(c.kafka_brokers);
	assert_null(c.kafka_topic);
	assert_null(c.kafka_group);
	assert_int_equal(c.output_type, CFG_OUTPUT_FILE);
	assert_string_equal(c.output_dir, root_path(env, "var/out", p, sizeof(p)));
	assert_string_equal(c.dead_letter, root_path(env, "var/dead_letter.tsv", p, sizeof(p)));
	assert_null(c.output_connect);
	assert_null(c.output_topic);
	assert_int_equal(c.map_size, 1ULL << 30);
	assert_int_equal(c.sync, CFG_SYNC_PERIODIC);
	assert_int_equal(c.sync_interval_ms, 1000);
	assert_int_equal(c.backoff_initial_ms, 100);
	assert_int_equal(c.backoff_max_ms, 30000);
	assert_int_equal(c.backoff_reset_ms, 10000);
	assert_int_equal(c.poison_after, 3);
	assert_int_equal(c.n_params, 0);
	assert_null(c.params);
	assert_int_equal(c.n_kafka, 0);
	assert_int_equal(c.n_tables, 0);
	assert_null(cfg_param(&c, "anything"));
	cfg_free(&c);
}

static const char every_setting[] = "; every setting, none at its default\n"
				    "[ringmaster]\n"
				    "name = prod-1.eu_west\n"
				    "partitions = 16\n"
				    "data_dir = /srv/rm/data\n"
				    "run_dir = /run/rm\n"
				    "log_level = debug\n"
				    "log_file = /var/log/rm.log\n"
				    "stop_timeout = 2m\n"
				    "[worker]\n"
				    "batch_max = 1048576\n"
				    "ring_size = 1G\n"
				    "handler = /opt/h/my.so\n"
				    "watchdog = 0\n"
				    "[source]\n"
				    "type = kafka\n"
				    "path = /data/in.tsv\n"
				    "delimiter = |\n"
				    "follow = yes\n"
				    "max_event_size = 1M\n"
				    "events = 5000\n"
				    "keys = 7\n"
				    "seed = 18446744073709551615\n"
				    "skew = 1.25\n"
				    "bind = tcp://*:5555\n"
				    "brokers = k1:9092,k2:9092\n"
				    "topic = events\n"
				    "group = rm\n"
				    "[output]\n"
				    "type = none\n"
				    "dir = /srv/out\n"
				    "dead_letter = /srv/dead.tsv\n"
				    "connect = ipc:///tmp/out.sock\n"
				    "topic = results\n"
				    "[store]\n"
				    "map_size = 16T\n"
				    "sync = batch\n"
				    "sync_interval = 250ms\n"
				    "[restart]\n"
				    "backoff_initial = 1ms\n"
				    "backoff_max = 1h\n"
				    "backoff_reset = 1m\n"
				    "poison_after = 100\n";

static void test_every_setting(void **state)
{
	struct cfg c;

	(void)state;
	load_ok(every_setting, NO_OV, &c);
	assert_string_equal(c.name, "prod-1.eu_west");
	assert_int_equal(c.partitions, 16);
	assert_string_equal(c.data_dir, "/srv/rm/data");
	assert_string_equal(c.run_dir, "/run/rm");
	assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
	assert_string_equal(c.log_file, "/var/log/rm.log");
	assert_int_equal(c.stop_timeout_ms, 120000);
	assert_int_equal(c.batch_max, 1048576);
	assert_int_equal(c.ring_size, 1ULL << 30);
	assert_string_equal(c.handler, "/opt/h/my.so");
	assert_int_equal(c.watchdog_ms, 0);
	assert_int_equal(c.source_type, CFG_SOURCE_KAFKA);
	assert_string_equal(c.source_path, "/data/in.tsv");
	assert_int_equal(c.delimiter, '|');
	assert_int_equal(c.follow, 1);
	assert_int_equal(c.max_event_size, 1 << 20);
	assert_int_equal(c.gen_events, 5000);
	assert_int_equal(c.gen_keys, 7);
	assert_true(c.gen_seed == UINT64_MAX);
	assert_true(c.gen_skew == 1.25);
	assert_string_equal(c.zmq_bind, "tcp://*:5555");
	assert_string_equal(c.kafka_brokers, "k1:9092,k2:9092");
	assert_string_equal(c.kafka_topic, "events");
	assert_string_equal(c.kafka_group, "rm");
	assert_int_equal(c.output_type, CFG_OUTPUT_NONE);
	assert_string_equal(c.output_dir, "/srv/out");
	assert_string_equal(c.dead_letter, "/srv/dead.tsv");
	assert_string_equal(c.output_connect, "ipc:///tmp/out.sock");
	assert_string_equal(c.output_topic, "results");
	assert_int_equal(c.map_size, 16ULL << 40);
	assert_int_equal(c.sync, CFG_SYNC_BATCH);
	assert_int_equal(c.sync_interval_ms, 250);
	assert_int_equal(c.backoff_initial_ms, 1);
	assert_int_equal(c.backoff_max_ms, 3600000);
	assert_int_equal(c.backoff_reset_ms, 60000);
	assert_int_equal(c.poison_after, 100);
	cfg_free(&c);
}

static void test_enums_and_levels(void **state)
{
	static const struct {
		char *ov;
		size_t offset;
		int want;
	} cases[] = {
	    {"source.type=file", offsetof(struct cfg, source_type), CFG_SOURCE_FILE},
	    {"source.type=GENERATE", offsetof(struct cfg, source_type), CFG_SOURCE_GENERATE},
	    {"output.type=file", offsetof(struct cfg, output_type), CFG_OUTPUT_FILE},
	    {"output.type=none", offsetof(struct cfg, output_type), CFG_OUTPUT_NONE},
	    {"store.sync=none", offsetof(struct cfg, sync), CFG_SYNC_NONE},
	    {"store.sync=periodic", offsetof(struct cfg, sync), CFG_SYNC_PERIODIC},
	    {"store.sync=batch", offsetof(struct cfg, sync), CFG_SYNC_BATCH},
	    {"ringmaster.log_level=error", offsetof(struct cfg, log_level), LOG_LEVEL_ERROR},
	    {"ringmaster.log_level=warn", offsetof(struct cfg, log_level), LOG_LEVEL_WARN},
	    {"ringmaster.log_level=warning", offsetof(struct cfg, log_level), LOG_LEVEL_WARN},
	    {"ringmaster.log_level=info", offsetof(struct cfg, log_level), LOG_LEVEL_INFO},
	    {"ringmaster.log_level=DEBUG", offsetof(struct cfg, log_level), LOG_LEVEL_DEBUG},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg c;
		int v;
		load_ok(MINIMAL, OV(cases[i].ov), &c);
		memcpy(&v, (char *)&c + cases[i].offset, sizeof(v));
		assert_int_equal(v, cases[i].want);
		cfg_free(&c);
	}
}

static void test_units_in_file(void **state)
{
	struct cfg c;

	(void)state;
	load_ok("[worker]\nring_size = 64KiB\nwatchdog = 1h\n"
		"[source]\npath = -\nmax_event_size = 16\n"
		"[store]\nmap_size = 2 G\nsync_interval = 5\n"
		"[ringmaster]\nstop_timeout = 100ms\n",
		NO_OV, &c);
	assert_int_equal(c.ring_size, 65536);
	assert_int_equal(c.watchdog_ms, 3600000);
	assert_int_equal(c.max_event_size, 16);
	assert_int_equal(c.map_size, 2ULL << 30);
	assert_int_equal(c.sync_interval_ms, 5000);
	assert_int_equal(c.stop_timeout_ms, 100);
	cfg_free(&c);
}

static void test_booleans_in_file(void **state)
{
	static const struct {
		const char *word;
		int v;
	} cases[] = {{"yes", 1}, {"no", 0},  {"true", 1}, {"false", 0},
		     {"on", 1},	 {"off", 0}, {"1", 1},	  {"0", 0}};
	char text[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg c;
		snprintf(text, sizeof(text), MINIMAL "follow = %s\n", cases[i].word);
		load_ok(text, NO_OV, &c);
		assert_int_equal(c.follow, cases[i].v);
		cfg_free(&c);
	}
}

static void test_delimiters(void **state)
{
	static const struct {
		const char *word;
		char c;
	} cases[] = {{"tab", '\t'}, {"comma", ','},	{"space", ' '},
		     {"pipe", '|'}, {"semicolon", ';'}, {"TAB", '\t'},
		     {",", ','},    {":", ':'},		{"x", 'x'}};
	char text[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg c;
		snprintf(text, sizeof(text), MINIMAL "delimiter = %s\n", cases[i].word);
		load_ok(text, NO_OV, &c);
		assert_int_equal(c.delimiter, cases[i].c);
		cfg_free(&c);
	}
	load_fails(MINIMAL "delimiter = ab\n", NO_OV,
		   "demo.ini:3: [source] delimiter must be one character or tab, comma, space, "
		   "pipe, semicolon, got 'ab'\n");
	load_fails(MINIMAL "delimiter =\n", NO_OV,
		   "demo.ini:3: [source] delimiter must be one character or tab, comma, space, "
		   "pipe, semicolon, got ''\n");
}

static void test_comments_and_continuation(void **state)
{
	struct cfg c;

	(void)state;
	load_ok("\xEF\xBB\xBF; a comment\n# another\n\n"
		"[source] ; inline\n"
		"type = kafka ; inline comment\n"
		"brokers =\n"
		"  k1:9092,\n"
		"\n"
		"  ; a comment inside does not end the value\n"
		"  k2:9092\n"
		"topic: events\n"
		"group = g\n",
		NO_OV, &c);
	assert_int_equal(c.source_type, CFG_SOURCE_KAFKA);
	assert_string_equal(c.kafka_brokers, "k1:9092, k2:9092");
	assert_string_equal(c.kafka_topic, "events");
	cfg_free(&c);
}

static void test_relative_paths(void **state)
{
	struct scratch *env = *state;
	struct cfg c;
	struct cfg_errors e = {0};
	char p[PATH_MAX];

	assert_int_equal(mkdir("sub", 0700) == 0 || access("sub", F_OK) == 0, 1);
	put_file("sub/demo.ini", "[ringmaster]\n"
				 "data_dir = ./data//x/.\n"
				 "run_dir = ../../../../../../../../../..//run\n"
				 "log_file = logs/../rm.log\n"
				 "[worker]\nhandler = lib/h.so\n"
				 "[source]\npath = in/events.tsv\n"
				 "[output]\ndir = /abs/./out/\ndead_letter = ../dl.tsv\n"
				 "[table.rules]\npath = rules.tsv\n");
	assert_int_equal(cfg_load("sub/../sub/demo.ini", NULL, 0, &c, &e), 0);
	assert_string_equal(c.file, root_path(env, "sub/demo.ini", p, sizeof(p)));
	assert_string_equal(c.data_dir, root_path(env, "sub/data/x", p, sizeof(p)));
	assert_string_equal(c.run_dir, "/run");
	assert_string_equal(c.log_file, root_path(env, "sub/rm.log", p, sizeof(p)));
	assert_string_equal(c.handler, root_path(env, "sub/lib/h.so", p, sizeof(p)));
	assert_string_equal(c.source_path, root_path(env, "sub/in/events.tsv", p, sizeof(p)));
	assert_string_equal(c.output_dir, "/abs/out");
	assert_string_equal(c.dead_letter, root_path(env, "dl.tsv", p, sizeof(p)));
	assert_string_equal(c.tables[0].path, root_path(env, "sub/rules.tsv", p, sizeof(p)));
	cfg_free(&c);
	/* an absolute file name works the same */
	root_path(env, "sub/demo.ini", p, sizeof(p));
	assert_int_equal(cfg_load(p, NULL, 0, &c, &e), 0);
	assert_string_equal(c.data_dir, root_path(env, "sub/data/x", p, sizeof(p)));
	cfg_free(&c);
}

static void test_override_paths_use_cwd(void **state)
{
	struct scratch *env = *state;
	struct cfg c;
	struct cfg_errors e = {0};
	char p[PATH_MAX];

	assert_int_equal(mkdir("sub", 0700) == 0 || access("sub", F_OK) == 0, 1);
	put_file("sub/demo.ini", MINIMAL);
	assert_int_equal(cfg_load("sub/demo.ini",
				  OV("ringmaster.data_dir=mydata", "source.path=ev.tsv",
				     "table.t.path=./t.tsv", "worker.handler=x.so"),
				  &c, &e),
			 0);
	assert_string_equal(c.data_dir, root_path(env, "mydata", p, sizeof(p)));
	assert_string_equal(c.source_path, root_path(env, "ev.tsv", p, sizeof(p)));
	assert_string_equal(c.tables[0].path, root_path(env, "t.tsv", p, sizeof(p)));
	assert_string_equal(c.handler, root_path(env, "x.so", p, sizeof(p)));
	/* a default is still relative to the file */
	assert_string_equal(c.run_dir, root_path(env, "sub/var/run", p, sizeof(p)));
	cfg_free(&c);
}

static void test_tables(void **state)
{
	struct scratch *env = *state;
	struct cfg c;
	char p[PATH_MAX];
	static const char long_name[] =
	    "t23456789012345678901234567890123456789012345678901234567890123";

	(void)env;
	assert_int_equal(strlen(long_name), 63);
	load_ok(MINIMAL "[table.rules]\npath = rules.tsv\n"
			"[table.accounts] ; inline comment\npath = /data/acc.tsv\n"
			"[table.t23456789012345678901234567890123456789012345678901234567890123]\n"
			"path = long.tsv\n",
		NO_OV, &c);
	assert_int_equal(c.n_tables, 3);
	assert_string_equal(c.tables[0].name, "rules");
	assert_string_equal(c.tables[0].path, root_path(env, "rules.tsv", p, sizeof(p)));
	assert_string_equal(c.tables[1].name, "accounts");
	assert_string_equal(c.tables[1].path, "/data/acc.tsv");
	assert_string_equal(c.tables[2].name, long_name);
	assert_string_equal(c.tables[2].path, root_path(env, "long.tsv", p, sizeof(p)));
	cfg_free(&c);
}

/* Where each value came from, for the messages of other modules. */
static void test_origins_settings(void **state)
{
	struct cfg c;

	(void)state;
	load_ok("[ringmaster]\n"
		"partitions = 2\n"
		"\n"
		"[worker]\n"
		"handler = h.so\n"
		"[table.rules]\n"
		"path = rules.tsv\n"
		"[table.acc]\n"
		"path = acc.tsv\n"
		"[source]\n"
		"path = -\n",
		OV("worker.batch_max=8", "table.acc.path=/data/acc.tsv"), &c);
	assert_string_equal(cfg_origin(&c, "ringmaster", "partitions"), "demo.ini:2");
	assert_string_equal(cfg_origin(&c, "worker", "handler"), "demo.ini:5");
	assert_string_equal(cfg_origin(&c, "worker", "batch_max"), "-o worker.batch_max=8");
	assert_string_equal(cfg_origin(&c, "ringmaster", "run_dir"), "demo.ini (default)");
	assert_string_equal(cfg_origin(&c, "table.rules", "path"), "demo.ini:7");
	assert_string_equal(cfg_origin(&c, "table.acc", "path"), "-o table.acc.path=/data/acc.tsv");
	/* not a setting: never NULL */
	assert_string_equal(cfg_origin(&c, "worker", "nope"), "the configuration");
	assert_string_equal(cfg_origin(&c, "table.none", "path"), "the configuration");
	cfg_free(&c);
}

static void test_handler_params_and_kafka(void **state)
{
	struct cfg c;

	(void)state;
	load_ok(MINIMAL "[handler]\nfee_bps = 25\ncurrency = EUR\n"
			"note = two words\nempty =\n"
			"[kafka]\nsecurity.protocol = ssl\nsession.timeout.ms = 6000\n",
		NO_OV, &c);
	assert_int_equal(c.n_params, 4);
	assert_string_equal(c.params[0].key, "fee_bps");
	assert_string_equal(c.params[0].value, "25");
	assert_string_equal(cfg_param(&c, "fee_bps"), "25");
	assert_string_equal(cfg_param(&c, "currency"), "EUR");
	assert_string_equal(cfg_param(&c, "note"), "two words");
	assert_string_equal(cfg_param(&c, "empty"), "");
	assert_null(cfg_param(&c, "missing"));
	assert_null(cfg_param(&c, "FEE_BPS"));
	assert_int_equal(c.n_kafka, 2);
	assert_string_equal(c.kafka[0].key, "security.protocol");
	assert_string_equal(c.kafka[0].value, "ssl");
	assert_string_equal(c.kafka[1].key, "session.timeout.ms");
	assert_string_equal(c.kafka[1].value, "6000");
	cfg_free(&c);
}

static void test_overrides(void **state)
{
	struct scratch *env = *state;
	struct cfg c;
	char p[PATH_MAX];

	load_ok(MINIMAL "[worker]\nbatch_max = 10\n"
			"[handler]\nfee = 1\n"
			"[table.rules]\npath = rules.tsv\n",
		OV("worker.batch_max=20", "worker.batch_max = 30", "table.rules.path=/x/rules.tsv",
		   "table.extra.path=/x/e.tsv", "handler.fee=2", "handler.new=v=w",
		   "kafka.client.id=rm", "handler.a.b=dotted", " worker.watchdog = 1m ",
		   "source.path=", "source.type=generate"),
		&c);
	assert_int_equal(c.batch_max, 30);
	assert_int_equal(c.n_tables, 2);
	assert_string_equal(c.tables[0].name, "rules");
	assert_string_equal(c.tables[0].path, "/x/rules.tsv");
	assert_string_equal(c.tables[1].name, "extra");
	assert_string_equal(c.tables[1].path, "/x/e.tsv");
	assert_string_equal(cfg_param(&c, "fee"), "2");
	assert_string_equal(cfg_param(&c, "new"), "v=w");
	assert_string_equal(cfg_param(&c, "a.b"), "dotted");
	assert_int_equal(c.watchdog_ms, 60000);
	assert_int_equal(c.n_kafka, 1);
	assert_string_equal(c.kafka[0].key, "client.id");
	assert_string_equal(c.kafka[0].value, "rm");
	assert_null(c.source_path);
	assert_int_equal(c.source_type, CFG_SOURCE_GENERATE);
	(void)root_path(env, "", p, sizeof(p));
	cfg_free(&c);
}

/* ---- errors ---- */

static void test_missing_file(void **state)
{
	struct cfg c, before;
	struct cfg_errors e = {0};

	(void)state;
	memset(&c, 0x5A, sizeof(c));
	before = c;
	assert_int_equal(cfg_load("nope/demo.ini", NULL, 0, &c, &e), -1);
	assert_string_equal(e.text, "nope/demo.ini: cannot open: No such file or directory\n");
	assert_int_equal(e.count, 1);
	assert_memory_equal(&c, &before, sizeof(c));
	cfg_errors_free(&e);
	assert_null(e.text);
	/* a directory opens but cannot be read */
	assert_int_equal(cfg_load(".", NULL, 0, &c, &e), -1);
	assert_string_equal(e.text, ".: cannot read: Is a directory\n");
	cfg_errors_free(&e);
}

static void test_unknown_section_and_key(void **state)
{
	(void)state;
	load_fails(MINIMAL
		   "[workers]\nbatch_max = 1\nring_size = 1\n"
		   "[worker]\nbach_max = 1\n"
		   "[table]\npath = x\n"
		   "[table.a-b]\npath = x\n"
		   "[table.t234567890123456789012345678901234567890123456789012345678901234]\n"
		   "[table.ok]\npath = x\ncolumns = 3\n"
		   "[]\n",
		   NO_OV,
		   "demo.ini:3: unknown section [workers]\n"
		   "demo.ini:7: unknown key 'bach_max' in [worker]\n"
		   "demo.ini:8: unknown section [table]\n"
		   "demo.ini:10: bad table name 'a-b' in [table.a-b] (use 1..63 of A-Z a-z 0-9 _)\n"
		   "demo.ini:12: bad table name "
		   "'t234567890123456789012345678901234567890123456789012345678901234' in "
		   "[table.t234567890123456789012345678901234567890123456789012345678901234] (use "
		   "1..63 of A-Z a-z 0-9 _)\n"
		   "demo.ini:15: unknown key 'columns' in [table.ok]\n"
		   "demo.ini:16: unknown section []\n");
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	load_fails(MINIMAL "[worker]\nbatch_max = 1\nring_size = 1M\n"
			   "[handler]\nfee = 1\nfee = 2\n"
			   "[table.rules]\npath = a\n[table.rules]\npath = b\n"
			   "[worker]\nbatch_max = 2\n",
		   NO_OV,
		   "demo.ini:8: duplicate key 'fee' in [handler] (first set on line 7)\n"
		   "demo.ini:12: duplicate key 'path' in [table.rules] (first set on line 10)\n"
		   "demo.ini:14: duplicate key 'batch_max' in [worker] (first set on line 4)\n");
	/* overrides replace rather than duplicate */
	struct cfg c;
	load_ok(MINIMAL "[worker]\nbatch_max = 1\n", OV("worker.batch_max=2", "worker.batch_max=3"),
		&c);
	assert_int_equal(c.batch_max, 3);
	cfg_free(&c);
}

static void test_bad_values(void **state)
{
	(void)state;
	load_fails(
	    "[worker]\n"
	    "batch_max = 0\n"
	    "ring_size = 8X\n"
	    "watchdog = 5x\n"
	    "handler = my handler\n"
	    "[ringmaster]\n"
	    "partitions = four\n"
	    "name = a b\n"
	    "log_level = loud\n"
	    "data_dir =\n"
	    "stop_timeout = 1.5s\n"
	    "[source]\n"
	    "type = socket\n"
	    "follow = maybe\n"
	    "skew = x\n"
	    "bind = localhost\n"
	    "max_event_size = 1.5K\n"
	    "[store]\n"
	    "sync = always\n"
	    "[output]\n"
	    "connect = nowhere\n"
	    "type = printer\n"
	    "[table.rules]\npath =\n",
	    NO_OV,
	    "demo.ini:2: [worker] batch_max must be 1..1048576, got 0\n"
	    "demo.ini:3: [worker] ring_size must be a size like 64K, 8M or 1G, got '8X' (bad unit; "
	    "use K, M, G or T)\n"
	    "demo.ini:4: [worker] watchdog must be a duration like 250ms, 5s, 1m or 1h, got '5x' "
	    "(bad unit; use ms, s, m or h)\n"
	    "demo.ini:5: [worker] handler must be a built-in handler like ledger or a path ending "
	    "in .so or .lua, got 'my handler'\n"
	    "demo.ini:7: [ringmaster] partitions must be a whole number, got 'four' (digits only)\n"
	    "demo.ini:8: [ringmaster] name must be 1..63 characters of A-Z a-z 0-9 . _ -, got 'a "
	    "b'\n"
	    "demo.ini:9: [ringmaster] log_level must be one of error, warn, info, debug, got "
	    "'loud'\n"
	    "demo.ini:10: [ringmaster] data_dir must not be empty\n"
	    "demo.ini:11: [ringmaster] stop_timeout must be a duration like 250ms, 5s, 1m or 1h, "
	    "got '1.5s' (not a whole number)\n"
	    "demo.ini:13: [source] type must be one of file, generate, zmq, kafka, spool, got "
	    "'socket'\n"
	    "demo.ini:14: [source] follow must be yes/no, true/false, on/off or 1/0, got 'maybe'\n"
	    "demo.ini:15: [source] skew must be a number like 0.99, got 'x'\n"
	    "demo.ini:16: [source] bind must be a ZeroMQ endpoint like tcp://*:5555, got "
	    "'localhost'\n"
	    "demo.ini:17: [source] max_event_size must be a size like 64K, 8M or 1G, got '1.5K' "
	    "(not a whole number)\n"
	    "demo.ini:19: [store] sync must be one of none, periodic, batch, got 'always'\n"
	    "demo.ini:21: [output] connect must be a ZeroMQ endpoint like tcp://*:5555, got "
	    "'nowhere'\n"
	    "demo.ini:22: [output] type must be one of file, zmq, none, kafka, got 'printer'\n"
	    "demo.ini:24: [table.rules] path must not be empty\n");
}

static void test_handler_names(void **state)
{
	static const char *const ok[] = {"ledger", "my_handler-2", "h.so", "./lib/h.so"};
	char text[128];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct cfg c;
		snprintf(text, sizeof(text), MINIMAL "[worker]\nhandler = %s\n", ok[i]);
		load_ok(text, NO_OV, &c);
		assert_true(strcmp(c.handler, ok[i]) == 0 || c.handler[0] == '/');
		cfg_free(&c);
	}
	load_fails(MINIMAL "[worker]\nhandler = lib/handler\n", NO_OV,
		   "demo.ini:4: [worker] handler must be a built-in handler like ledger or a path "
		   "ending in .so or .lua, got 'lib/handler'\n");
	load_fails(MINIMAL "[worker]\nhandler =\n", NO_OV,
		   "demo.ini:4: [worker] handler must not be empty\n");
}

/* Every numeric setting just below and just above its range, through -o. */
static void test_every_range(void **state)
{
	static const struct {
		char *ov;
		const char *want;
	} cases[] = {
	    {"ringmaster.partitions=0", "[ringmaster] partitions must be 1..1024, got 0"},
	    {"ringmaster.partitions=1025", "[ringmaster] partitions must be 1..1024, got 1025"},
	    {"ringmaster.stop_timeout=99ms",
	     "[ringmaster] stop_timeout must be 100ms..1h, got 99ms"},
	    {"ringmaster.stop_timeout=61m", "[ringmaster] stop_timeout must be 100ms..1h, got 61m"},
	    {"worker.batch_max=0", "[worker] batch_max must be 1..1048576, got 0"},
	    {"worker.batch_max=1048577", "[worker] batch_max must be 1..1048576, got 1048577"},
	    {"worker.ring_size=32K", "[worker] ring_size must be 64K..1G, got 32K"},
	    {"worker.ring_size=2G", "[worker] ring_size must be 64K..1G, got 2G"},
	    {"worker.ring_size=96K", "[worker] ring_size must be a power of two, got 96K"},
	    {"worker.watchdog=3601", "[worker] watchdog must be 0..1h, got 3601"},
	    {"source.max_event_size=15", "[source] max_event_size must be 16..16M, got 15"},
	    {"source.max_event_size=17M", "[source] max_event_size must be 16..16M, got 17M"},
	    {"source.events=0", "[source] events must be 1..1000000000000, got 0"},
	    {"source.events=1000000000001",
	     "[source] events must be 1..1000000000000, got 1000000000001"},
	    {"source.keys=0", "[source] keys must be 1..1000000000, got 0"},
	    {"source.keys=1000000001", "[source] keys must be 1..1000000000, got 1000000001"},
	    {"source.seed=18446744073709551616",
	     "[source] seed must be 0..18446744073709551615, got 18446744073709551616"},
	    {"source.skew=-0.5", "[source] skew must be 0..10, got -0.5"},
	    {"source.skew=10.01", "[source] skew must be 0..10, got 10.01"},
	    {"source.skew=nan", "[source] skew must be a number like 0.99, got 'nan'"},
	    {"store.map_size=512K", "[store] map_size must be 1M..16T, got 512K"},
	    {"store.map_size=17T", "[store] map_size must be 1M..16T, got 17T"},
	    {"store.map_size=99999999T", "[store] map_size must be 1M..16T, got 99999999T"},
	    {"store.sync_interval=0", "[store] sync_interval must be 1ms..1h, got 0"},
	    {"store.sync_interval=2h", "[store] sync_interval must be 1ms..1h, got 2h"},
	    {"restart.backoff_initial=0ms", "[restart] backoff_initial must be 1ms..1h, got 0ms"},
	    {"restart.backoff_max=0", "[restart] backoff_max must be 1ms..1h, got 0"},
	    {"restart.backoff_reset=3601s", "[restart] backoff_reset must be 1ms..1h, got 3601s"},
	    {"restart.poison_after=0", "[restart] poison_after must be 1..100, got 0"},
	    {"restart.poison_after=101", "[restart] poison_after must be 1..100, got 101"},
	};
	char want[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(want, sizeof(want), "-o %s: %s\n", cases[i].ov, cases[i].want);
		load_fails(MINIMAL, OV(cases[i].ov), want);
	}
}

static void test_override_errors(void **state)
{
	(void)state;
	load_fails(MINIMAL,
		   OV("worker.batch_max=0", "worker", "batch_max=1", ".x=1", "worker.=1",
		      "nosuch.key=1", "worker.bach_max=1", "table.a-b.path=x", "table.t.columns=1",
		      "table.t.path="),
		   "-o worker.batch_max=0: [worker] batch_max must be 1..1048576, got 0\n"
		   "-o worker: expected section.key=value\n"
		   "-o batch_max=1: expected section.key=value\n"
		   "-o .x=1: expected section.key=value\n"
		   "-o worker.=1: expected section.key=value\n"
		   "-o nosuch.key=1: unknown section [nosuch]\n"
		   "-o worker.bach_max=1: unknown key 'bach_max' in [worker]\n"
		   "-o table.a-b.path=x: bad table name 'a-b' in [table.a-b] (use 1..63 of A-Z a-z "
		   "0-9 _)\n"
		   "-o table.t.columns=1: unknown key 'columns' in [table.t]\n"
		   "-o table.t.path=: [table.t] path must not be empty\n");
}

static void test_syntax_errors(void **state)
{
	char text[1024];
	char long_value[300];

	(void)state;
	load_fails("[worker\nbatch_max = 0\n", NO_OV,
		   "demo.ini:1: syntax error\n"
		   "demo.ini:2: key 'batch_max' is outside any section\n");
	/* inih reports only its first syntax error, but our handler still
	 * sees every other line */
	load_fails(MINIMAL "just words\n[worker]\nbatch_max = 0\nmore words\n"
			   "= nokey\n",
		   NO_OV,
		   "demo.ini:3: syntax error\n"
		   "demo.ini:5: [worker] batch_max must be 1..1048576, got 0\n"
		   "demo.ini:7: syntax error: no key before '='\n");
	/* a line longer than inih's buffer does not shift the line numbers
	 * after it */
	memset(long_value, 'y', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	snprintf(text, sizeof(text), MINIMAL "[handler]\nlong = %s\nok = 1\nbroken line\n",
		 long_value);
	load_fails(text, NO_OV, "demo.ini:6: syntax error\n");
}

/* A string of n copies of `unit`, for long lines; free it. */
static char *repeat(const char *unit, size_t n)
{
	size_t len = strlen(unit);
	char *s = malloc(n * len + 1);

	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * len, unit, len);
	s[n * len] = '\0';
	return s;
}

static char *join(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *join(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(rc >= 0);
	return s;
}

/* inih holds 198 characters of a line; lines of any length are taken, split
 * the way inih splits a short one: inline comments, ':' for '=', keys,
 * continuation lines, section headers, comments, CRLF. */
static void test_long_lines(void **state)
{
	struct scratch *env = *state;
	char *dirs = repeat("d123456789/", 500); /* a 5,500-character path */
	char *jaas = repeat("org.apache.kafka.common.security.plain.PlainLoginModule ", 60);
	char *more = repeat("m", 250);
	char *key = repeat("k", 300);
	char *comment = repeat("; comment ", 40);
	char *pad = repeat(" ", 250);
	char *dots = repeat("./", 2500);
	char *want, *text, p[PATH_MAX];
	struct cfg c;

	jaas[strlen(jaas) - 1] = '\0'; /* inih strips the trailing blank too */
	text = join("%s\n[source]\npath = /%s   %s\r\n"
		    "[output]\ndir = %sout\n"
		    "[kafka]\nsasl.jaas.config = %s\n    %s\n"
		    "client.id: %s\n"
		    "[table.rules]%s; a comment of its own %s\npath = rules.tsv\n"
		    "[handler]\n%s = v\nsmall = 1\n"
		    "[worker]\nbatch_max = 7\n",
		    comment, dirs, comment, dots, jaas, more, more, pad, comment, key);
	load_ok(text, NO_OV, &c);
	want = join("/%s", dirs);
	want[strlen(want) - 1] = '\0'; /* normalised: no trailing '/' */
	assert_int_equal(strlen(want), 5500);
	assert_string_equal(c.source_path, want);
	free(want);
	assert_string_equal(c.output_dir, root_path(env, "out", p, sizeof(p)));
	assert_int_equal(c.n_kafka, 2);
	want = join("%s %s", jaas, more);
	assert_string_equal(c.kafka[0].key, "sasl.jaas.config");
	assert_string_equal(c.kafka[0].value, want);
	free(want);
	assert_string_equal(c.kafka[1].key, "client.id");
	assert_string_equal(c.kafka[1].value, more);
	assert_int_equal(c.n_tables, 1);
	assert_string_equal(c.tables[0].path, root_path(env, "rules.tsv", p, sizeof(p)));
	assert_string_equal(cfg_param(&c, key), "v");
	assert_string_equal(cfg_param(&c, "small"), "1");
	assert_int_equal(c.batch_max, 7);
	/* and the lines are where they were */
	assert_string_equal(cfg_origin(&c, "source", "path"), "demo.ini:3");
	assert_string_equal(cfg_origin(&c, "kafka", "client.id"), "demo.ini:9");
	assert_string_equal(cfg_origin(&c, "worker", "batch_max"), "demo.ini:16");
	cfg_free(&c);
	free(text);

	/* long lines that are errors are the same errors as short ones, at
	 * their lines */
	char *nines = repeat("9", 250);
	text = join(MINIMAL "[handler]\n= %s\nnot a pair %s\n[worker]\nbatch_max = %s\n", more,
		    more, nines);
	want = join("demo.ini:4: syntax error: no key before '='\n"
		    "demo.ini:5: syntax error\n"
		    "demo.ini:7: [worker] batch_max must be 1..1048576, got %s\n",
		    nines);
	free(nines);
	load_fails(text, NO_OV, want);
	free(want);
	free(text);
	text = join(MINIMAL "[table.%s\n[worker]\nbatch_max = 0\n", more);
	load_fails(text, NO_OV,
		   "demo.ini:3: syntax error\n"
		   "demo.ini:5: [worker] batch_max must be 1..1048576, got 0\n");
	free(text);
	text = join(MINIMAL "[%s]\nx = 1\n", more);
	want = join("demo.ini:3: unknown section [%s]\n", more);
	load_fails(text, NO_OV, want);
	free(want);
	free(text);
	free(dirs);
	free(jaas);
	free(more);
	free(key);
	free(comment);
	free(pad);
	free(dots);
}

/* A NUL byte would end the line for inih without a word: it is an error
 * at its line, and the lines after it keep their numbers. */
static void test_nul_byte(void **state)
{
	static const char text[] = "[source]\npath = /tmp/a\0b\n[worker]\nbatch_max = 0\n";
	struct cfg c, before;
	struct cfg_errors e = {0};
	FILE *f = fopen("demo.ini", "w");

	(void)state;
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, sizeof(text) - 1, f), sizeof(text) - 1);
	assert_int_equal(fclose(f), 0);
	memset(&c, 0x5A, sizeof(c));
	before = c;
	assert_int_equal(cfg_load("demo.ini", NULL, 0, &c, &e), -1);
	assert_string_equal(e.text, "demo.ini:2: NUL byte in line\n"
				    "demo.ini:4: [worker] batch_max must be 1..1048576, got 0\n");
	assert_int_equal(e.count, 2);
	assert_memory_equal(&c, &before, sizeof(c));
	cfg_errors_free(&e);
}

/* cfg_origin: the line, the override or the default behind each value. */
static void test_origins(void **state)
{
	struct cfg c;

	(void)state;
	load_ok(MINIMAL "[worker]\nbatch_max = 10\n"
			"[handler]\nfee = 1\n"
			"[kafka]\nclient.id = a\n"
			"[table.rules]\npath = rules.tsv\n"
			"[table.other]\npath = other.tsv\n",
		OV("worker.batch_max=20", "table.other.path=/x/o.tsv", "table.new.path=n.tsv",
		   "handler.new=1"),
		&c);
	assert_string_equal(cfg_origin(&c, "source", "path"), "demo.ini:2");
	assert_string_equal(cfg_origin(&c, "worker", "batch_max"), "-o worker.batch_max=20");
	assert_string_equal(cfg_origin(&c, "ringmaster", "data_dir"), "demo.ini (default)");
	assert_string_equal(cfg_origin(&c, "handler", "fee"), "demo.ini:6");
	assert_string_equal(cfg_origin(&c, "handler", "new"), "-o handler.new=1");
	assert_string_equal(cfg_origin(&c, "kafka", "client.id"), "demo.ini:8");
	assert_string_equal(cfg_origin(&c, "table.rules", "path"), "demo.ini:10");
	assert_string_equal(cfg_origin(&c, "table.other", "path"), "-o table.other.path=/x/o.tsv");
	assert_string_equal(cfg_origin(&c, "table.new", "path"), "-o table.new.path=n.tsv");
	assert_string_equal(c.tables[0].origin, "demo.ini:10");
	assert_string_equal(c.tables[2].origin, "-o table.new.path=n.tsv");
	assert_string_equal(c.params[0].origin, "demo.ini:6");
	assert_string_equal(c.kafka[0].origin, "demo.ini:8");
	assert_string_equal(cfg_origin(&c, "worker", "nosuch"), "the configuration");
	assert_string_equal(cfg_origin(&c, "table.nosuch", "path"), "the configuration");
	assert_string_equal(cfg_origin(&c, "handler", "nosuch"), "the configuration");
	cfg_free(&c);
	/* a struct cfg made by hand has no origins */
	memset(&c, 0, sizeof(c));
	assert_string_equal(cfg_origin(&c, "source", "path"), "the configuration");
}

static void test_collects_all_errors(void **state)
{
	(void)state;
	load_fails("top = 1\n"
		   "[worker]\n"
		   "batch_max = 0\n"
		   "bach_max = 1\n"
		   "[nope]\n"
		   "x = 1\n"
		   "[worker]\n"
		   "batch_max = 5\n",
		   OV("store.map_size=1K", "junk"),
		   "demo.ini:1: key 'top' is outside any section\n"
		   "demo.ini:3: [worker] batch_max must be 1..1048576, got 0\n"
		   "demo.ini:4: unknown key 'bach_max' in [worker]\n"
		   "demo.ini:5: unknown section [nope]\n"
		   "demo.ini:8: duplicate key 'batch_max' in [worker] (first set on line 3)\n"
		   "-o store.map_size=1K: [store] map_size must be 1M..16T, got 1K\n"
		   "-o junk: expected section.key=value\n");
}

static void test_cross_field(void **state)
{
	(void)state;
	load_fails(
	    "[source]\ntype = file\n", NO_OV,
	    "demo.ini:2: [source] type file needs a path (a file, or - for standard input)\n");
	load_fails("[ringmaster]\n", NO_OV,
		   "demo.ini: [source] type file needs a path (a file, or - for standard input)\n");
	load_fails("[source]\ntype = zmq\n", NO_OV, "demo.ini:2: [source] type zmq needs bind\n");
	load_fails("[source]\ntype = kafka\ntopic = t\n", NO_OV,
		   "demo.ini:2: [source] type kafka needs brokers\n"
		   "demo.ini:2: [source] type kafka needs group\n");
	load_fails(MINIMAL "[output]\ntype = zmq\n", NO_OV,
		   "demo.ini:4: [output] type zmq needs connect\n");
	load_fails(MINIMAL "[output]\ntype = kafka\n", NO_OV,
		   "demo.ini:4: [output] type kafka needs topic\n"
		   "demo.ini:4: [output] type kafka needs brokers ([source] brokers or [kafka] "
		   "bootstrap.servers)\n");
	load_fails(
	    MINIMAL "[restart]\nbackoff_initial = 1m\nbackoff_max = 30s\n", NO_OV,
	    "demo.ini:4: [restart] backoff_initial (1m) must not exceed backoff_max (30s)\n");
	load_fails(MINIMAL, OV("restart.backoff_max=50ms"),
		   "-o restart.backoff_max=50ms: [restart] backoff_initial (100ms) must not exceed "
		   "backoff_max (50ms)\n");
	load_fails(MINIMAL "max_event_size = 4M\n", NO_OV,
		   "demo.ini:3: [source] max_event_size (4M) must be at most a quarter of [worker] "
		   "ring_size (8M)\n");
	char text[256], dir[128];
	memset(dir, 'r', sizeof(dir));
	dir[0] = '/';
	dir[95] = '\0'; /* 94 fit, with "/control.sock", in sun_path */
	snprintf(text, sizeof(text), MINIMAL "[ringmaster]\nrun_dir = %s\n", dir);
	load_fails(text, NO_OV,
		   "demo.ini:4: [ringmaster] run_dir must be at most 94 characters (it holds the "
		   "control socket), got 95\n");
	dir[94] = '\0';
	struct cfg c;
	snprintf(text, sizeof(text), MINIMAL "[ringmaster]\nrun_dir = %s\n", dir);
	load_ok(text, NO_OV, &c);
	cfg_free(&c);
	load_fails(MINIMAL "[table.rules]\n; no path here\n[table.empty]\n", NO_OV,
		   "demo.ini:3: [table.rules] needs a path\n"
		   "demo.ini:5: [table.empty] needs a path\n");

	load_ok("[source]\ntype = kafka\nbrokers = b\ntopic = t\ngroup = g\n"
		"[output]\ntype = kafka\ntopic = out\n",
		NO_OV, &c);
	cfg_free(&c);
	load_ok(MINIMAL "[output]\ntype = kafka\ntopic = out\n"
			"[kafka]\nbootstrap.servers = b:9092\n",
		NO_OV, &c);
	cfg_free(&c);
	load_ok("[source]\ntype = zmq\nbind = tcp://*:5555\n"
		"[output]\ntype = zmq\nconnect = tcp://h:5556\n",
		NO_OV, &c);
	cfg_free(&c);
	load_ok("[source]\ntype = generate\n[worker]\nring_size = 64K\n"
		"[source]\nmax_event_size = 16K\n",
		NO_OV, &c);
	cfg_free(&c);
}

static void test_errors_append(void **state)
{
	struct cfg c;
	struct cfg_errors e = {0};

	(void)state;
	put_file("demo.ini", "[worker]\nbatch_max = 0\n");
	assert_int_equal(cfg_load("demo.ini", NULL, 0, &c, &e), -1);
	assert_int_equal(cfg_load("missing.ini", NULL, 0, &c, &e), -1);
	assert_string_equal(e.text, "demo.ini:2: [worker] batch_max must be 1..1048576, got 0\n"
				    "missing.ini: cannot open: No such file or directory\n");
	assert_int_equal(e.count, 2);
	assert_int_equal(e.len, strlen(e.text));
	cfg_errors_free(&e);
	assert_null(e.text);
	assert_int_equal(e.count, 0);
}

static void test_reload_keeps_old(void **state)
{
	struct cfg c;
	struct cfg_errors e = {0};

	(void)state;
	load_ok(MINIMAL "[worker]\nbatch_max = 7\n", NO_OV, &c);
	put_file("demo.ini", MINIMAL "[worker]\nbatch_max = 0\n");
	assert_int_equal(cfg_load("demo.ini", NULL, 0, &c, &e), -1);
	assert_int_equal(c.batch_max, 7);
	assert_string_equal(c.source_path, "-");
	cfg_errors_free(&e);
	cfg_free(&c);
	cfg_free(&c); /* freeing twice is harmless: cfg_free clears */
}

/* ---- the shipped sample ---- */

static const char *const all_keys[] = {
    "ringmaster.name",
    "ringmaster.partitions",
    "ringmaster.data_dir",
    "ringmaster.run_dir",
    "ringmaster.log_level",
    "ringmaster.log_file",
    "ringmaster.stop_timeout",
    "worker.batch_max",
    "worker.ring_size",
    "worker.handler",
    "worker.watchdog",
    "source.type",
    "source.path",
    "source.delimiter",
    "source.follow",
    "source.max_event_size",
    "source.events",
    "source.keys",
    "source.seed",
    "source.skew",
    "source.bind",
    "source.brokers",
    "source.topic",
    "source.group",
    "output.type",
    "output.dir",
    "output.dead_letter",
    "output.connect",
    "output.topic",
    "store.map_size",
    "store.sync",
    "store.sync_interval",
    "restart.backoff_initial",
    "restart.backoff_max",
    "restart.backoff_reset",
    "restart.poison_after",
};
#define N_KEYS (sizeof(all_keys) / sizeof(all_keys[0]))

static int seen_key(void *user, const char *section, const char *name, const char *value)
{
	int *seen = user;
	char k[128];

	(void)value;
	snprintf(k, sizeof(k), "%s.%s", section, name);
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(all_keys[i], k) == 0)
			seen[i]++;
	return 1;
}

/* The repository: $TOP (tests/run.sh sets it), else found from where this
 * file was compiled, relative to where the tests were started. */
static void sample_path(const struct scratch *env, char *buf, size_t n)
{
	const char *me = __FILE__, *tail = strstr(me, "tests/unit/test_cfg.c");
	const char *top = getenv("TOP");

	if (top && *top) {
		snprintf(buf, n, "%s/etc/ringmaster.ini", top);
		return;
	}
	assert_non_null(tail);
	snprintf(buf, n, "%s%s%.*setc/ringmaster.ini", me[0] == '/' ? "" : env->old_cwd,
		 me[0] == '/' ? "" : "/", (int)(tail - me), me);
}

static void test_sample_config(void **state)
{
	struct scratch *env = *state;
	struct cfg c;
	struct cfg_errors e = {0};
	char path[PATH_MAX], dir[PATH_MAX], want[PATH_MAX + 64];
	int seen[N_KEYS] = {0};

	sample_path(env, path, sizeof(path));
	assert_int_equal(ini_parse(path, seen_key, seen), 0);
	for (size_t i = 0; i < N_KEYS; i++) {
		if (seen[i] != 1)
			print_error("%s appears %d times in the sample\n", all_keys[i], seen[i]);
		assert_int_equal(seen[i], 1);
	}
	if (cfg_load(path, NULL, 0, &c, &e) != 0)
		print_error("%s", e.text);
	assert_null(e.text);
	assert_int_equal(c.source_type, CFG_SOURCE_GENERATE);
	assert_int_equal(c.gen_events, 2000000);
	assert_int_equal(c.gen_keys, 10000);
	assert_int_equal(c.partitions, 4);
	assert_string_equal(c.handler, "ledger");
	assert_int_equal(c.output_type, CFG_OUTPUT_FILE);
	/* paths relative to etc/, so ../var/... is beside etc/ */
	assert_string_equal(c.file, path[0] == '/' ? path : c.file);
	snprintf(dir, sizeof(dir), "%s", c.file);
	*strrchr(dir, '/') = '\0';
	*strrchr(dir, '/') = '\0';
	snprintf(want, sizeof(want), "%s/var/data", dir);
	assert_string_equal(c.data_dir, want);
	snprintf(want, sizeof(want), "%s/var/run", dir);
	assert_string_equal(c.run_dir, want);
	snprintf(want, sizeof(want), "%s/var/out", dir);
	assert_string_equal(c.output_dir, want);
	snprintf(want, sizeof(want), "%s/var/dead_letter.tsv", dir);
	assert_string_equal(c.dead_letter, want);
	assert_int_equal(c.n_tables, 2);
	assert_string_equal(c.tables[0].name, "rules");
	snprintf(want, sizeof(want), "%s/etc/rules.tsv", dir);
	assert_string_equal(c.tables[0].path, want);
	assert_string_equal(c.tables[1].name, "accounts");
	snprintf(want, sizeof(want), "%s/etc/accounts.tsv", dir);
	assert_string_equal(c.tables[1].path, want);
	cfg_free(&c);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	return scratch_enter(state, "test_cfg");
}

static int teardown(void **state)
{
	return scratch_leave(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_size_valid),
	    cmocka_unit_test(test_parse_size_invalid),
	    cmocka_unit_test(test_parse_duration_valid),
	    cmocka_unit_test(test_parse_duration_invalid),
	    cmocka_unit_test(test_parse_bool),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_setting),
	    cmocka_unit_test(test_enums_and_levels),
	    cmocka_unit_test(test_units_in_file),
	    cmocka_unit_test(test_booleans_in_file),
	    cmocka_unit_test(test_delimiters),
	    cmocka_unit_test(test_comments_and_continuation),
	    cmocka_unit_test(test_relative_paths),
	    cmocka_unit_test(test_override_paths_use_cwd),
	    cmocka_unit_test(test_tables),
	    cmocka_unit_test(test_handler_params_and_kafka),
	    cmocka_unit_test(test_overrides),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_unknown_section_and_key),
	    cmocka_unit_test(test_duplicate_keys),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_handler_names),
	    cmocka_unit_test(test_every_range),
	    cmocka_unit_test(test_override_errors),
	    cmocka_unit_test(test_syntax_errors),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_nul_byte),
	    cmocka_unit_test(test_origins_settings),
	    cmocka_unit_test(test_collects_all_errors),
	    cmocka_unit_test(test_cross_field),
	    cmocka_unit_test(test_origins),
	    cmocka_unit_test(test_errors_append),
	    cmocka_unit_test(test_reload_keeps_old),
	    cmocka_unit_test(test_sample_config),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
