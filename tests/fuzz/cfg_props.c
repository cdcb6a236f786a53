/* cfg_props.c - the checks shared by the two cfg_load fuzz targets (see
 * cfg_props.h). The file lives in a memfd, so a run makes no disk I/O. */
#include "cfg_props.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cfg.h"

static void check(int ok)
{
	if (!ok)
		abort();
}

/* Absolute, no empty, "." or ".." component, no trailing slash. */
static void check_path(const char *p, int optional)
{
	if (!p) {
		check(optional);
		return;
	}
	check(p[0] == '/');
	if (strcmp(p, "/") == 0)
		return;
	for (const char *c = p + 1;; c++) {
		const char *end = strchrnul(c, '/');
		size_t n = (size_t)(end - c);

		check(n > 0 && !(n == 1 && c[0] == '.') && !(n == 2 && c[0] == '.' && c[1] == '.'));
		if (!*end)
			break;
		c = end;
	}
}

static void check_loaded(const struct cfg *c)
{
	check(c->name && *c->name && c->handler && *c->handler);
	check_path(c->file, 0);
	check_path(c->data_dir, 0);
	check_path(c->run_dir, 0);
	check_path(c->log_file, 1);
	check_path(c->output_dir, 0);
	check_path(c->dead_letter, 0);
	if (c->source_path && strcmp(c->source_path, "-") != 0)
		check_path(c->source_path, 0);
	check(strlen(c->run_dir) + sizeof("/control.sock") <= 108);
	check(c->partitions >= 1 && c->partitions <= CFG_PARTITIONS_MAX);
	check(c->batch_max >= 1 && c->batch_max <= CFG_BATCH_MAX_MAX);
	check(c->ring_size >= 65536 && c->ring_size <= (1ULL << 30));
	check((c->ring_size & (c->ring_size - 1)) == 0);
	check(c->max_event_size >= 16 && c->max_event_size <= c->ring_size / 4);
	check(c->backoff_initial_ms >= 1 && c->backoff_initial_ms <= c->backoff_max_ms);
	check(c->log_level >= 0 && c->log_level <= 3);
	check(c->gen_skew >= 0 && c->gen_skew <= 10);
	check(c->source_type != CFG_SOURCE_FILE || c->source_path);
	check(c->source_type != CFG_SOURCE_ZMQ || c->zmq_bind);
	check(c->output_type != CFG_OUTPUT_ZMQ || c->output_connect);
	for (size_t i = 0; i < c->n_tables; i++) {
		check(c->tables[i].name && *c->tables[i].name);
		check_path(c->tables[i].path, 0);
		check(c->tables[i].origin && *c->tables[i].origin);
		for (size_t j = 0; j < i; j++)
			check(strcmp(c->tables[i].name, c->tables[j].name) != 0);
	}
	for (size_t i = 0; i < c->n_params; i++)
		check(c->params[i].key && c->params[i].value && c->params[i].origin);
	for (size_t i = 0; i < c->n_kafka; i++)
		check(c->kafka[i].key && c->kafka[i].value && c->kafka[i].origin);
	/* every setting knows where its value came from */
	check(c->origins && c->n_origins > 0);
	for (size_t i = 0; i < c->n_origins; i++)
		check(c->origins[i] && *c->origins[i]);
}

/* Every message on a line of its own, naming where it came from. */
static void check_errors(const struct cfg_errors *e, const char *path)
{
	size_t plen = strlen(path);
	unsigned lines = 0;

	check(e->count > 0 && e->text && e->len == strlen(e->text));
	check(e->text[e->len - 1] == '\n');
	for (const char *l = e->text; *l; l = strchr(l, '\n') + 1) {
		check(strncmp(l, "-o ", 3) == 0 || (strncmp(l, path, plen) == 0 && l[plen] == ':'));
		lines++;
	}
	check(lines == e->count);
}

void cfg_props_load(const void *text, size_t len, char *const *overrides, size_t n_overrides)
{
	char path[64];
	struct cfg c, before;
	struct cfg_errors e = {0};
	int fd = memfd_create("fuzz.ini", MFD_CLOEXEC);

	check(fd >= 0);
	check(write(fd, text, len) == (ssize_t)len);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	memset(&c, 0xA5, sizeof(c));
	before = c;
	if (cfg_load(path, overrides, n_overrides, &c, &e) == 0) {
		check(e.count == 0 && !e.text);
		check_loaded(&c);
		cfg_free(&c);
	} else {
		check(memcmp(&c, &before, sizeof(c)) == 0);
		check_errors(&e, path);
		cfg_errors_free(&e);
	}
	close(fd);
}
