/* test_proto.c - the control protocol's parser and renderers: every kind of
 * bad request gets its own message, good requests come out parsed, and the
 * three renderings (table, JSON, TSV) of one record agree. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

struct parsed {
	int rc;
	struct proto_request req;
	char err[PROTO_ERR_LEN];
};

static struct parsed parse_n(const char *frame, size_t len, unsigned partitions)
{
	struct parsed p;
	p.err[0] = '\0';
	p.rc = proto_parse(frame, len, partitions, &p.req, p.err, sizeof(p.err));
	return p;
}

static struct parsed parse(const char *frame)
{
	return parse_n(frame, strlen(frame), 4);
}

/* The request is refused with exactly `message`. */
static void refused(const char *frame, size_t len, const char *message)
{
	struct parsed p = parse_n(frame, len, 4);
	assert_int_equal(p.rc, -1);
	assert_string_equal(p.err, message);
}

/* savepoint DIR: a path argument, longer than other arguments may be. */
static void test_savepoint_path(void **unused)
{
	(void)unused;
	static char frame[PROTO_PATH_MAX + 64];
	struct parsed p = parse("savepoint /var/lib/sp-1");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.cmd->id, PROTO_CMD_SAVEPOINT);
	assert_string_equal(p.req.path, "/var/lib/sp-1");
	int n = snprintf(frame, sizeof(frame), "savepoint /");
	memset(frame + n, 'd', PROTO_PATH_MAX - 1);
	p = parse_n(frame, (size_t)n + PROTO_PATH_MAX - 1, 4);
	assert_int_equal(p.rc, 0);
	assert_int_equal(strlen(p.req.path), PROTO_PATH_MAX);
	frame[n + PROTO_PATH_MAX - 1] = 'd';
	refused(frame, (size_t)n + PROTO_PATH_MAX,
		"'savepoint': the path must be absolute and at most 4096 bytes");
	refused("savepoint sp", 12,
		"'savepoint': the path must be absolute and at most 4096 bytes");
	refused("savepoint", 9, "'savepoint' takes 1 argument (usage: savepoint DIR), got 0");
	refused("savepoint /a /b", 15,
		"'savepoint' takes 1 argument (usage: savepoint DIR), got 2");
	p = parse("savepoint-status --json");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.cmd->id, PROTO_CMD_SAVEPOINT_STATUS);
}

static void test_good_requests(void **unused)
{
	(void)unused;
	struct parsed p = parse("status");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.cmd->id, PROTO_CMD_STATUS);
	assert_int_equal(p.req.format, PROTO_FMT_TEXT);
	assert_int_equal(p.req.argc, 0);

	p = parse("\t workers   --json ");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.cmd->id, PROTO_CMD_WORKERS);
	assert_int_equal(p.req.format, PROTO_FMT_JSON);

	p = parse("--tsv status");
	assert_int_equal(p.rc, -1); /* the command comes first */

	p = parse("status --tsv --tsv");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.format, PROTO_FMT_TSV);

	p = parse("restart-worker 3");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.cmd->id, PROTO_CMD_RESTART_WORKER);
	assert_int_equal(p.req.argc, 1);
	assert_string_equal(p.req.argv[0], "3");
	assert_int_equal(p.req.value[0], 3);

	/* Not NUL-terminated: only len bytes count. */
	p = parse_n("stopXYZ", 4, 4);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.cmd->id, PROTO_CMD_STOP);

	const char *names[] = {"help", "ping", "metrics", "reload", "stop"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_int_equal(parse(names[i]).rc, 0);
}

static void test_empty_and_oversized(void **unused)
{
	(void)unused;
	refused("", 0, "empty request (try 'help')");
	refused("  \t ", 4, "empty request: only blanks (try 'help')");

	size_t big = PROTO_MAX_REQUEST + 1;
	char *frame = malloc(big);
	assert_non_null(frame);
	memset(frame, 'a', big);
	refused(frame, big, "request too large: 65537 bytes (at most 65536)");
	/* Exactly at the limit is not "too large": it is judged on its words. */
	memcpy(frame, "status ", 7);
	refused(frame, PROTO_MAX_REQUEST, "'status' takes no arguments, got 1");
	free(frame);
}

static void test_binary(void **unused)
{
	(void)unused;
	refused("status\0", 7, "binary data in request: NUL byte at offset 6");
	refused(
	    "st\x01tus", 6,
	    "binary data in request: byte 0x01 at offset 2 (a request is printable ASCII text)");
	refused(
	    "status\n", 7,
	    "binary data in request: byte 0x0a at offset 6 (a request is printable ASCII text)");
	refused(
	    "\xff\xfe", 2,
	    "binary data in request: byte 0xff at offset 0 (a request is printable ASCII text)");
	refused(
	    "ping\x7f", 5,
	    "binary data in request: byte 0x7f at offset 4 (a request is printable ASCII text)");
}

static void test_unknown_command_and_option(void **unused)
{
	(void)unused;
	refused("frobnicate", 10, "unknown command 'frobnicate' (try 'help')");
	refused("STATUS", 6, "unknown command 'STATUS' (try 'help')");
	/* A long name is quoted only in part. */
	char name[100];
	memset(name, 'x', sizeof(name));
	refused(name, sizeof(name),
		"unknown command 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' (try 'help')");
	refused("status --yaml", 13, "unknown option '--yaml' (options: --json, --tsv)");
	refused("status --json --tsv", 19, "give one of --json and --tsv, not both");
	refused("metrics --tsv", 13, "'metrics' has no --tsv form");
	refused("stop --tsv", 10, "'stop' has no --tsv form");
}

static void test_argument_count(void **unused)
{
	(void)unused;
	refused("status now", 10, "'status' takes no arguments, got 1");
	refused("restart-worker", 14,
		"'restart-worker' takes 1 argument (usage: restart-worker N), got 0");
	refused("restart-worker 1 2", 18,
		"'restart-worker' takes 1 argument (usage: restart-worker N), got 2");
	refused("restart-worker 1 2 3 4 5 6 7", 28,
		"'restart-worker' takes 1 argument (usage: restart-worker N), got 7");
}

static void test_bad_arguments(void **unused)
{
	(void)unused;
	refused("restart-worker x", 16, "'restart-worker': N must be a partition number, got 'x'");
	refused("restart-worker -1", 17,
		"'restart-worker': N must be a partition number, got '-1'");
	refused("restart-worker 1.5", 18,
		"'restart-worker': N must be a partition number, got '1.5'");
	refused("restart-worker 99999999999", 26,
		"'restart-worker': N must be a partition number, got '99999999999'");
	refused("restart-worker 4", 16, "'restart-worker': no partition 4 (partitions are 0..3)");
	char arg[100] = "restart-worker ";
	memset(arg + 15, '7', PROTO_TOKEN_MAX + 1);
	refused(arg, 15 + PROTO_TOKEN_MAX + 1,
		"'restart-worker': argument 1 is too long (65 bytes)");

	/* ringctl does not know the partition count: only the limit applies. */
	struct parsed p = parse_n("restart-worker 1023", 19, 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.value[0], 1023);
	p = parse_n("restart-worker 1024", 19, 0);
	assert_int_equal(p.rc, -1);
	assert_string_equal(p.err, "'restart-worker': no partition 1024 (there are at most 1024)");

	/* rescale N: a count, 1..1024, whatever the instance runs now. */
	p = parse("rescale 1024");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.cmd->id, PROTO_CMD_RESCALE);
	assert_int_equal(p.req.value[0], 1024);
	p = parse("rescale 7");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.value[0], 7);
	refused("rescale 0", 9, "'rescale': N must be 1..1024, got 0");
	refused("rescale 1025", 12, "'rescale': N must be 1..1024, got 1025");
	refused("rescale x", 9, "'rescale': N must be a partition count, got 'x'");
	refused("rescale -3", 10, "'rescale': N must be a partition count, got '-3'");
	refused("rescale", 7, "'rescale' takes 1 argument (usage: rescale N), got 0");
}

static void test_command_table(void **unused)
{
	(void)unused;
	size_t n;
	const struct proto_command *cmds = proto_commands(&n);
	assert_true(n >= 7);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(proto_find(cmds[i].name, strlen(cmds[i].name)), &cmds[i]);
		assert_true(cmds[i].min_args <= cmds[i].max_args);
		assert_true(cmds[i].max_args <= PROTO_MAX_ARGS);
	}
	assert_null(proto_find("stat", 4));
	struct proto_buf b;
	proto_buf_init(&b);
	proto_render_help(&b);
	assert_false(b.failed);
	assert_non_null(strstr(b.data, "restart-worker N"));
	assert_non_null(strstr(b.data, "status [--json|--tsv]"));
	proto_buf_free(&b);
}

static const char *json_of(struct proto_buf *b, const char *s, size_t len)
{
	proto_buf_free(b);
	proto_json_string(b, s, len);
	assert_false(b->failed);
	return b->data;
}

static void test_json_strings(void **unused)
{
	(void)unused;
	struct proto_buf b;
	proto_buf_init(&b);
	assert_string_equal(json_of(&b, "plain", 5), "\"plain\"");
	assert_string_equal(json_of(&b, "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
	assert_string_equal(json_of(&b, "t\tn\n\x01", 5), "\"t\\u0009n\\u000a\\u0001\"");
	assert_string_equal(json_of(&b, "caf\xc3\xa9", 5), "\"caf\xc3\xa9\""); /* UTF-8 kept */
	assert_string_equal(json_of(&b, "x\xffy", 3), "\"x\\ufffdy\"");
	assert_string_equal(json_of(&b, "\xc0\x80", 2), "\"\\ufffd\\ufffd\""); /* overlong */
	assert_string_equal(json_of(&b, "\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\"");
	assert_string_equal(json_of(&b, "\xe2\x82", 2), "\"\\ufffd\\ufffd\""); /* cut short */
	assert_string_equal(json_of(&b, "nul\0x", 5), "\"nul\\u0000x\"");
	proto_buf_free(&b);
}

static const struct proto_column cols[] = {
    {"name", "NAME"},	{"count", "COUNT"}, {"rate", "RATE"}, {"uptime_seconds", "UPTIME"},
    {"depth", "DEPTH"},
};

static void rows(struct proto_value v[10])
{
	const struct proto_value r[10] = {
	    {.type = PROTO_T_STR, .s = "alpha"},   {.type = PROTO_T_U64, .u = 7},
	    {.type = PROTO_T_F64, .f = 2.25},	   {.type = PROTO_T_SECS, .f = 125},
	    {.type = PROTO_T_BYTES, .u = 3 << 20}, {.type = PROTO_T_STR, .s = ""},
	    {.type = PROTO_T_U64, .u = 12345},	   {.type = PROTO_T_F64, .f = NAN},
	    {.type = PROTO_T_SECS, .f = 7500},	   {.type = PROTO_T_BYTES, .u = 512},
	};
	memcpy(v, r, sizeof(r));
}

static void test_table_renderings(void **unused)
{
	(void)unused;
	struct proto_value v[10];
	struct proto_buf b;
	rows(v);
	proto_buf_init(&b);
	proto_render_table(&b, PROTO_FMT_TEXT, cols, 5, v, 2);
	assert_string_equal(b.data, "NAME   COUNT  RATE  UPTIME  DEPTH\n"
				    "alpha      7   2.2   2m05s   3.0M\n"
				    "-      12345     -   2h05m    512\n");
	proto_buf_free(&b);
	proto_render_table(&b, PROTO_FMT_JSON, cols, 5, v, 2);
	assert_string_equal(
	    b.data, "[{\"name\":\"alpha\",\"count\":7,\"rate\":2.250,\"uptime_seconds\":125.000,"
		    "\"depth\":3145728},{\"name\":\"\",\"count\":12345,\"rate\":null,"
		    "\"uptime_seconds\":7500.000,\"depth\":512}]\n");
	proto_buf_free(&b);
	proto_render_table(&b, PROTO_FMT_TSV, cols, 5, v, 2);
	assert_string_equal(b.data, "name\tcount\trate\tuptime_seconds\tdepth\n"
				    "alpha\t7\t2.250\t125.000\t3145728\n"
				    "-\t12345\t-\t7500.000\t512\n");
	proto_buf_free(&b);
	proto_render_table(&b, PROTO_FMT_JSON, cols, 5, v, 0);
	assert_string_equal(b.data, "[]\n");
	proto_buf_free(&b);
}

static void test_object_renderings(void **unused)
{
	(void)unused;
	struct proto_value v[10];
	struct proto_buf b;
	rows(v);
	v[0].s = "tab\there";
	proto_buf_init(&b);
	proto_render_object(&b, PROTO_FMT_TEXT, cols, v, 3);
	assert_string_equal(b.data, "NAME:   tab\there\nCOUNT:  7\nRATE:   2.2\n");
	proto_buf_free(&b);
	proto_render_object(&b, PROTO_FMT_JSON, cols, v, 2);
	assert_string_equal(b.data, "{\"name\":\"tab\\u0009here\",\"count\":7}\n");
	proto_buf_free(&b);
	proto_render_object(&b, PROTO_FMT_TSV, cols, v, 2);
	assert_string_equal(b.data, "name\tcount\ntab here\t7\n");
	proto_buf_free(&b);
}

static void test_human_units(void **unused)
{
	(void)unused;
	char out[32];
	proto_human_secs(4.25, out, sizeof(out));
	assert_string_equal(out, "4.2s");
	proto_human_secs(3 * 86400 + 5 * 3600, out, sizeof(out));
	assert_string_equal(out, "3d05h");
	proto_human_secs(-1, out, sizeof(out));
	assert_string_equal(out, "-");
	proto_human_bytes(1023, out, sizeof(out));
	assert_string_equal(out, "1023");
	proto_human_bytes(1536, out, sizeof(out));
	assert_string_equal(out, "1.5K");
	proto_human_bytes(UINT64_MAX, out, sizeof(out));
	assert_string_equal(out, "16.0E");
}

static void test_buf_grows(void **unused)
{
	(void)unused;
	struct proto_buf b;
	proto_buf_init(&b);
	for (int i = 0; i < 10000; i++)
		proto_buf_printf(&b, "%05d,", i);
	assert_false(b.failed);
	assert_int_equal(b.len, 60000);
	assert_int_equal(strlen(b.data), 60000);
	assert_memory_equal(b.data + 59994, "09999,", 6);
	proto_buf_free(&b);
	assert_null(b.data);
}

/* replay FILE: an absolute path, longer than other arguments may be, kept
 * in req.path. */
static void test_path_argument(void **state)
{
	(void)state;
	char frame[PROTO_PATH_MAX + 32];
	struct parsed p = parse("replay /var/lib/ringmaster/dead_letter.tsv --json");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.req.cmd->id, PROTO_CMD_REPLAY);
	assert_int_equal(p.req.argc, 1);
	assert_string_equal(p.req.path, "/var/lib/ringmaster/dead_letter.tsv");
	assert_int_equal(p.req.format, PROTO_FMT_JSON);

	memcpy(frame, "replay /", 8);
	memset(frame + 8, 'd', PROTO_PATH_MAX);
	p = parse_n(frame, 8 + PROTO_PATH_MAX - 1, 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(strlen(p.req.path), PROTO_PATH_MAX);

	refused(frame, 8 + PROTO_PATH_MAX,
		"'replay': the path must be absolute and at most 4096 bytes");
	refused("replay dead.tsv", 15,
		"'replay': the path must be absolute and at most 4096 bytes");
	refused("replay", 6, "'replay' takes 1 argument (usage: replay FILE), got 0");
	refused("replay /a /b", 12, "'replay' takes 1 argument (usage: replay FILE), got 2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_requests),
	    cmocka_unit_test(test_empty_and_oversized),
	    cmocka_unit_test(test_binary),
	    cmocka_unit_test(test_unknown_command_and_option),
	    cmocka_unit_test(test_argument_count),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_command_table),
	    cmocka_unit_test(test_json_strings),
	    cmocka_unit_test(test_table_renderings),
	    cmocka_unit_test(test_object_renderings),
	    cmocka_unit_test(test_human_units),
	    cmocka_unit_test(test_buf_grows),
	    cmocka_unit_test(test_path_argument),
	    cmocka_unit_test(test_savepoint_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
