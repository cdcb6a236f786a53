/* fuzz_proto.c - libFuzzer target for common/proto.c: any bytes, as a
 * request frame, must be parsed or refused with a printable one-line
 * message, never crash; and the same bytes, as a string in a reply, must
 * render as well-formed JSON and TSV.
 *
 *   make fuzz                       FUZZ_SECONDS per target (default 60)
 *   build/fuzz/fuzz_proto CORPUS    by hand
 *
 * A broken property calls abort(), which libFuzzer reports as a crash with
 * the input that caused it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_parsed(const struct proto_request *req, unsigned partitions)
{
	check(req->cmd != NULL);
	check(proto_find(req->cmd->name, strlen(req->cmd->name)) == req->cmd);
	check(req->argc >= req->cmd->min_args && req->argc <= req->cmd->max_args);
	check((req->cmd->formats >> req->format) & 1u);
	for (unsigned i = 0; i < req->argc; i++) {
		if (req->cmd->arg == PROTO_ARG_PATH) {
			check(req->path[0] == '/' && strlen(req->path) <= PROTO_PATH_MAX);
			continue;
		}
		check(strlen(req->argv[i]) > 0 && strlen(req->argv[i]) <= PROTO_TOKEN_MAX);
		if (req->cmd->arg == PROTO_ARG_PARTITION && partitions)
			check(req->value[i] < partitions);
	}
}

/* An error message is one line of printable ASCII. */
static void check_message(const char *err)
{
	size_t len = strlen(err);
	check(len > 0 && len < PROTO_ERR_LEN);
	for (size_t i = 0; i < len; i++)
		check(err[i] >= 0x20 && err[i] < 0x7f);
}

/* JSON: quoted, no raw control byte, no unescaped quote inside. */
static void check_json_string(const struct proto_buf *b)
{
	check(!b->failed && b->len >= 2);
	check(b->data[0] == '"' && b->data[b->len - 1] == '"');
	for (size_t i = 1; i + 1 < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];
		check(c >= 0x20 && c != 0x7f);
		if (c == '\\')
			i++; /* the escaped character */
		else
			check(c != '"');
	}
}

static void check_renderings(const uint8_t *data, size_t size)
{
	struct proto_buf b;
	proto_buf_init(&b);
	proto_json_string(&b, (const char *)data, size);
	check_json_string(&b);
	proto_buf_free(&b);

	char *s = malloc(size + 1); /* a report's string values are C strings */
	if (!s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	static const struct proto_column cols[] = {{"s", "S"}, {"n", "N"}};
	struct proto_value v[2] = {{.type = PROTO_T_STR, .s = s}, {.type = PROTO_T_U64, .u = size}};
	proto_render_table(&b, PROTO_FMT_TSV, cols, 2, v, 1);
	check(!b.failed);
	size_t tabs = 0, lines = 0;
	for (size_t i = 0; i < b.len; i++) {
		tabs += b.data[i] == '\t';
		lines += b.data[i] == '\n';
	}
	check(tabs == 2 && lines == 2); /* the value cannot break the table */
	proto_buf_free(&b);
	proto_render_table(&b, PROTO_FMT_TEXT, cols, 2, v, 1);
	check(!b.failed);
	proto_buf_free(&b);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_request req;
	char err[PROTO_ERR_LEN];
	for (unsigned partitions = 0; partitions <= 4; partitions += 4) {
		err[0] = '\0';
		if (proto_parse(data, size, partitions, &req, err, sizeof(err)) == 0)
			check_parsed(&req, partitions);
		else
			check_message(err);
	}
	check_renderings(data, size);
	return 0;
}
