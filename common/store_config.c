/* store_config.c - the config environment of ringmaster's LMDB storage
 * (store.h): reference tables loaded from TSV files by the supervisor and
 * read by every worker, the generation, and the live settings a reload
 * hands to the workers. Its only writer is the supervisor.
 *
 * Choices worth knowing before reading on:
 *
 * - A reload parses every TSV file into memory first, sorts each table by
 *   key (LMDB's default order) and only then opens the write transaction, so
 *   a bad file never touches the environment and the rows go in with
 *   MDB_APPEND. A duplicate key is an error (found for free after the sort).
 * - Table DBI handles are opened lazily by the first store_table_get that
 *   names them, inside the caller's read transaction; such a transaction is
 *   ended with mdb_txn_commit so the handle outlives it. A handle stays
 *   valid across reloads in other processes: LMDB re-reads the table's
 *   record by name in each new transaction. A name that was not there is
 *   remembered only for the generation it was looked up in.
 * - The live settings go into "meta" in the load's transaction, as three
 *   values of "name\0value\0" pairs: "live.settings" (cfg_live_pack),
 *   "live.params" and "live.kafka".
 */
#include "store.h"

#include "cfg.h"
#include "log.h"
#include "store_lmdb.h"
#include "tsv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STORE_MAX_TABLES (STORE_MAX_DBS - 8) /* room for meta and spares */
/* Every worker and ringctl holds a reader slot in the config environment. */
#define CONFIG_MAX_READERS (2 * CFG_PARTITIONS_MAX + 64)
#define TABLE_PREFIX "t."
#define LIVE_SETTINGS "live.settings"
#define LIVE_PARAMS "live.params"
#define LIVE_KAFKA "live.kafka"

/* ---- opening ---- */

int store_config_open(const char *data_dir, uint64_t map_size, int readonly, struct store_env **out,
		      char err[STORE_ERR_LEN])
{
	static const char *const names[] = {"meta"};
	struct store_env *e = NULL;
	MDB_dbi *dbis[1];
	int rc;

	rc = store_env_new(ENV_CONFIG, readonly, &e, err, "%s/config", data_dir);
	if (rc)
		return rc;
	rc = store_env_dir(e, err);
	if (rc)
		goto out;
	rc = store_env_open(e, map_size, 0, CONFIG_MAX_READERS, err);
	if (rc)
		goto out;
	dbis[0] = &e->meta;
	rc = store_open_dbis(e, names, dbis, 1, NULL, NULL, err);
out:
	if (rc) {
		store_close(e);
		return rc;
	}
	*out = e;
	return 0;
}

/* ---- reading tables ---- */

int store_config_read(struct store_env *e, struct store_txn **out)
{
	struct store_txn *t;
	int rc;

	if (e->kind != ENV_CONFIG)
		return -EINVAL;
	rc = store_txn_start(e, 1, &t);
	if (rc)
		return rc;
	rc = store_get_u64(t->txn, e->meta, "generation", &t->generation);
	if (rc == MDB_NOTFOUND)
		rc = 0; /* nothing loaded yet */
	if (rc) {
		store_txn_abort(t);
		return store_map_err(rc);
	}
	*out = t;
	return 0;
}

uint64_t store_config_generation(struct store_txn *t)
{
	return t->generation;
}

static struct table_dbi *cache_find(struct store_env *e, const char *name)
{
	for (size_t i = 0; i < e->n_tables; i++)
		if (strcmp(e->tables[i].name, name) == 0)
			return &e->tables[i];
	return NULL;
}

static struct table_dbi *cache_add(struct store_env *e, const char *name)
{
	if (e->n_tables == e->cap_tables) {
		size_t cap = e->cap_tables ? e->cap_tables * 2 : 8;
		struct table_dbi *n = realloc(e->tables, cap * sizeof(*n));
		if (!n)
			return NULL;
		e->tables = n;
		e->cap_tables = cap;
	}
	struct table_dbi *c = &e->tables[e->n_tables];
	c->name = strdup(name);
	if (!c->name)
		return NULL;
	e->n_tables++;
	return c;
}

/* The handle was closed by mdb_drop: forget it whatever becomes of the txn. */
static void cache_forget(struct store_env *e, const char *name)
{
	struct table_dbi *c = cache_find(e, name);

	if (!c)
		return;
	free(c->name);
	*c = e->tables[--e->n_tables];
}

static int table_dbi(struct store_txn *t, const char *table, MDB_dbi *dbi)
{
	struct store_env *e = t->env;
	struct table_dbi *c = cache_find(e, table);
	char name[STORE_KEY_MAX + 1];
	int rc;

	if (c && c->found) {
		*dbi = c->dbi;
		return 0;
	}
	if (c && c->generation == t->generation)
		return -ENOENT;
	if ((size_t)snprintf(name, sizeof(name), TABLE_PREFIX "%s", table) >= sizeof(name))
		return -ENOENT;
	rc = mdb_dbi_open(t->txn, name, 0, dbi);
	if (rc && rc != MDB_NOTFOUND)
		return store_map_err(rc);
	if (!rc)
		t->opened_dbi = 1;
	if (!c && !(c = cache_add(e, table)))
		return rc ? -ENOENT : 0; /* uncached, still correct */
	c->found = !rc;
	c->dbi = rc ? 0 : *dbi;
	c->generation = t->generation;
	return rc ? -ENOENT : 0;
}

int store_table_get(struct store_txn *t, const char *table, const void *key, size_t key_len,
		    struct store_val *val)
{
	MDB_val k = {key_len, (void *)key}, d;
	MDB_dbi dbi;
	int rc;

	if (!t->active || t->env->kind != ENV_CONFIG)
		return -EINVAL;
	if (key_len == 0 || key_len > STORE_KEY_MAX)
		return -ENOENT; /* no such key can have been loaded */
	rc = table_dbi(t, table, &dbi);
	if (rc)
		return rc;
	rc = mdb_get(t->txn, dbi, &k, &d);
	if (rc)
		return store_map_err(rc);
	val->data = d.mv_data;
	val->len = d.mv_size;
	return 0;
}

/* ---- parsing TSV tables ---- */

/* Messages for people, appended one per line; what does not fit is counted
 * and summed up at the end rather than cut mid-line. */
struct errbuf {
	char *buf;
	size_t cap, len;
	unsigned count, dropped;
};

#define ERRBUF_TAIL 48 /* kept free for the "and N more" line */

static void errbuf_add(struct errbuf *eb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void errbuf_add(struct errbuf *eb, const char *fmt, ...)
{
	char *line;
	va_list ap;
	int n;

	eb->count++;
	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0 || !eb->buf || eb->len + (size_t)n + 2 + ERRBUF_TAIL > eb->cap) {
		eb->dropped++;
		if (n >= 0)
			free(line);
		return;
	}
	memcpy(eb->buf + eb->len, line, (size_t)n);
	free(line);
	eb->len += (size_t)n;
	eb->buf[eb->len++] = '\n';
	eb->buf[eb->len] = '\0';
}

static void errbuf_finish(struct errbuf *eb)
{
	if (!eb->dropped || !eb->buf || eb->cap <= eb->len)
		return;
	snprintf(eb->buf + eb->len, eb->cap - eb->len, "... and %u more\n", eb->dropped);
}

struct table_rows {
	const struct cfg_table *table;
	char *text;
	size_t text_len;
	struct tsv_rows rows; /* point into text */
};

static void table_rows_free(struct table_rows *tr, size_t n)
{
	for (size_t i = 0; tr && i < n; i++) {
		free(tr[i].text);
		tsv_rows_free(&tr[i].rows);
	}
	free(tr);
}

/* One table's problems, kept until the whole file has been looked at so
 * that they are given in line order (duplicates are found after a sort). */
struct table_msg {
	unsigned line;
	size_t seq;
	char *text;
};

struct table_msgs {
	struct table_msg *v;
	size_t n, cap;
	const struct cfg_table *table;
	int oom;
};

static int table_msg_cmp(const void *a, const void *b)
{
	const struct table_msg *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* tsv_report_fn: "path:line: message (table NAME, ORIGIN)", ORIGIN being
 * the line of the INI file (or the -o override) that named the file. */
static void tsv_error(void *arg, unsigned line, const char *msg)
{
	struct table_msgs *tm = arg;
	const struct cfg_table *t = tm->table;
	char *text;
	int rc;

	if (tm->n == tm->cap) {
		size_t cap = tm->cap ? tm->cap * 2 : 16;
		struct table_msg *v = realloc(tm->v, cap * sizeof(*v));
		if (!v) {
			tm->oom = 1;
			return;
		}
		tm->v = v;
		tm->cap = cap;
	}
	if (t->origin)
		rc = asprintf(&text, "%s:%u: %s (table %s, %s)", t->path, line, msg, t->name,
			      t->origin);
	else
		rc = asprintf(&text, "%s:%u: %s (table %s)", t->path, line, msg, t->name);
	if (rc < 0) {
		tm->oom = 1;
		return;
	}
	tm->v[tm->n].line = line;
	tm->v[tm->n].seq = tm->n;
	tm->v[tm->n].text = text;
	tm->n++;
}

/* Hand a table's problems over in line order. */
static void table_msgs_flush(struct table_msgs *tm, struct errbuf *eb)
{
	if (tm->n > 1)
		qsort(tm->v, tm->n, sizeof(tm->v[0]), table_msg_cmp);
	for (size_t i = 0; i < tm->n; i++) {
		errbuf_add(eb, "%s", tm->v[i].text);
		free(tm->v[i].text);
	}
	if (tm->oom)
		errbuf_add(eb, "%s: out of memory", tm->table->path);
	free(tm->v);
}

/* A problem with a table's file as a whole: "ORIGIN: [table.NAME] path =
 * PATH: what". */
static void table_error(struct errbuf *eb, const struct cfg_table *t, const char *what, int err)
{
	errbuf_add(eb, "%s%s[table.%s] path = %s: %s%s%s", t->origin ? t->origin : "",
		   t->origin ? ": " : "", t->name, t->path, what, err ? ": " : "",
		   err ? strerror(err) : "");
}

/* Read the whole file: the rows point into it until the load is over. */
static int slurp(const struct cfg_table *t, char **text, size_t *len, struct errbuf *eb)
{
	size_t cap = 0, n = 0;
	char *buf = NULL;
	int fd, rc = 0;

	fd = open(t->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		table_error(eb, t, "cannot open", errno);
		return -1;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			char *b = realloc(buf, cap);
			if (!b) {
				table_error(eb, t, "out of memory", 0);
				rc = -1;
				goto out;
			}
			buf = b;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			table_error(eb, t, "cannot read", errno);
			rc = -1;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
out:
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	*text = buf;
	*len = n;
	return 0;
}

/* Table names become database names and are compared by the workers. */
static int check_table_names(const struct cfg *cfg, struct errbuf *eb)
{
	int bad = 0;

	if (cfg->n_tables > STORE_MAX_TABLES) {
		errbuf_add(eb, "%zu tables configured, at most %d are allowed", cfg->n_tables,
			   STORE_MAX_TABLES);
		bad = 1;
	}
	for (size_t i = 0; i < cfg->n_tables; i++) {
		const char *name = cfg->tables[i].name;
		if (!name || !*name || strlen(name) > STORE_KEY_MAX - strlen(TABLE_PREFIX)) {
			errbuf_add(eb, "table %zu: name must be 1..%zu bytes", i + 1,
				   STORE_KEY_MAX - strlen(TABLE_PREFIX));
			bad = 1;
			continue;
		}
		for (size_t j = 0; j < i; j++)
			if (cfg->tables[j].name && strcmp(cfg->tables[j].name, name) == 0) {
				errbuf_add(eb, "table '%s' is configured twice", name);
				bad = 1;
			}
	}
	return bad ? -1 : 0;
}

/* Parse every table of `cfg` into memory. Returns 0, or -1 with every
 * problem in `eb` (all files are read even after the first error). */
static int parse_tables(const struct cfg *cfg, struct table_rows **out, struct errbuf *eb)
{
	struct table_rows *tr;
	int bad = check_table_names(cfg, eb);

	tr = calloc(cfg->n_tables ? cfg->n_tables : 1, sizeof(*tr));
	if (!tr) {
		errbuf_add(eb, "out of memory");
		return -1;
	}
	/* The tables in the order of the configuration, each one's problems in
	 * line order. */
	for (size_t i = 0; i < cfg->n_tables; i++) {
		tr[i].table = &cfg->tables[i];
		if (!tr[i].table->path) {
			errbuf_add(eb, "table '%s': no path", tr[i].table->name);
			bad = 1;
			continue;
		}
		if (slurp(tr[i].table, &tr[i].text, &tr[i].text_len, eb) < 0) {
			bad = 1;
			continue;
		}
		struct table_msgs tm = {.table = tr[i].table};
		/* sort the good rows even after a bad one: duplicates are news too */
		if (tsv_parse(tr[i].text, tr[i].text_len, STORE_KEY_MAX, &tr[i].rows, tsv_error,
			      &tm) < 0)
			bad = 1;
		if (tsv_sort(&tr[i].rows, tsv_error, &tm) < 0)
			bad = 1;
		table_msgs_flush(&tm, eb);
	}
	if (bad) {
		table_rows_free(tr, cfg->n_tables);
		return -1;
	}
	*out = tr;
	return 0;
}

int store_config_check(const struct cfg *cfg, char *errs, size_t errs_len)
{
	struct errbuf eb = {errs, errs_len, 0, 0, 0};
	struct table_rows *tr = NULL;
	int rc;

	if (errs && errs_len)
		errs[0] = '\0';
	rc = parse_tables(cfg, &tr, &eb);
	errbuf_finish(&eb);
	if (rc)
		return -EINVAL;
	table_rows_free(tr, cfg->n_tables);
	return 0;
}

/* ---- the load transaction ---- */

struct load {
	struct store_env *env;
	struct table_rows *tables;
	size_t n_tables;
	uint64_t generation;
	size_t dropped;
	const char *failed; /* the table being written when an error struck */
	const struct cfg *cfg;
};

static int load_fill(MDB_txn *txn, struct table_rows *tr)
{
	char name[STORE_KEY_MAX + 1];
	MDB_dbi dbi;
	int rc;

	snprintf(name, sizeof(name), TABLE_PREFIX "%s", tr->table->name);
	rc = mdb_dbi_open(txn, name, MDB_CREATE, &dbi);
	if (!rc)
		rc = mdb_drop(txn, dbi, 0);
	for (size_t i = 0; !rc && i < tr->rows.n; i++) {
		MDB_val k = {tr->rows.v[i].key_len, (void *)tr->rows.v[i].key};
		MDB_val v = {tr->rows.v[i].val_len, (void *)tr->rows.v[i].val};
		rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND);
	}
	return rc;
}

static int is_configured(const struct load *ld, const char *name, size_t len)
{
	for (size_t i = 0; i < ld->n_tables; i++) {
		const char *t = ld->tables[i].table->name;
		if (strlen(t) == len && memcmp(t, name, len) == 0)
			return 1;
	}
	return 0;
}

/* Collect the "t.*" databases that no configured table names. The main
 * database cannot change under its own cursor, so drop them afterwards. */
static int load_stale(MDB_txn *txn, const struct load *ld, char ***out, size_t *n_out)
{
	const size_t plen = strlen(TABLE_PREFIX);
	MDB_val k = {plen, (void *)TABLE_PREFIX}, d;
	MDB_cursor *cur;
	char **names = NULL;
	size_t n = 0;
	int rc;

	rc = mdb_cursor_open(txn, 1 /* the main database */, &cur);
	if (rc)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); !rc;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (k.mv_size <= plen || memcmp(k.mv_data, TABLE_PREFIX, plen) != 0)
			break;
		if (is_configured(ld, (char *)k.mv_data + plen, k.mv_size - plen))
			continue;
		char **more = realloc(names, (n + 1) * sizeof(*names));
		if (!more) {
			rc = ENOMEM;
			break;
		}
		names = more;
		if (!(names[n] = strndup(k.mv_data, k.mv_size))) {
			rc = ENOMEM;
			break;
		}
		n++;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	*out = names;
	*n_out = n;
	return rc;
}

static int load_drop_stale(MDB_txn *txn, struct load *ld)
{
	char **names = NULL;
	size_t n = 0;
	MDB_dbi dbi;
	int rc;

	rc = load_stale(txn, ld, &names, &n);
	for (size_t i = 0; !rc && i < n; i++) {
		rc = mdb_dbi_open(txn, names[i], 0, &dbi);
		if (!rc)
			rc = mdb_drop(txn, dbi, 1);
		/* mdb_drop closed the handle, even if this txn aborts later */
		cache_forget(ld->env, names[i] + strlen(TABLE_PREFIX));
	}
	ld->dropped = n;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* Key/value pairs as one value, "name\0value\0" each. */
static int put_pairs(MDB_txn *txn, MDB_dbi meta, const char *name, const struct cfg_kv *kv,
		     size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(kv[i].key) + strlen(kv[i].value) + 2;
	char *buf = malloc(len + 1);
	if (!buf)
		return ENOMEM;
	char *p = buf;
	for (size_t i = 0; i < n; i++) {
		p = stpcpy(p, kv[i].key) + 1;
		p = stpcpy(p, kv[i].value) + 1;
	}
	MDB_val k = {strlen(name), (void *)name}, d = {len, buf};
	int rc = mdb_put(txn, meta, &k, &d, 0);
	free(buf);
	return rc;
}

static int get_pairs(MDB_txn *txn, MDB_dbi meta, const char *name, const char **pairs, size_t *len)
{
	MDB_val k = {strlen(name), (void *)name}, d;
	int rc = mdb_get(txn, meta, &k, &d);
	if (rc)
		return rc;
	*pairs = d.mv_data;
	*len = d.mv_size;
	return 0;
}

/* The live settings (cfg.c's table says which), the [handler] params and the
 * [kafka] properties, for the workers: a worker is forked from a copy of the
 * configuration made at start (forksrv.h), so it takes what a reload
 * changed from here, with the generation they belong to. */
static int put_live(MDB_txn *txn, MDB_dbi meta, const struct cfg *cfg)
{
	char *settings;
	size_t len;
	int rc;

	if (cfg_live_pack(cfg, &settings, &len) != 0)
		return ENOMEM;
	MDB_val k = {strlen(LIVE_SETTINGS), (void *)LIVE_SETTINGS}, d = {len, settings};
	rc = mdb_put(txn, meta, &k, &d, 0);
	free(settings);
	if (!rc)
		rc = put_pairs(txn, meta, LIVE_PARAMS, cfg->params, cfg->n_params);
	if (!rc)
		rc = put_pairs(txn, meta, LIVE_KAFKA, cfg->kafka, cfg->n_kafka);
	return rc;
}

int store_config_live(struct store_txn *t, struct store_live *out)
{
	struct store_env *e = t->env;
	struct cfg some = {0};
	int rc = get_pairs(t->txn, e->meta, LIVE_SETTINGS, &out->settings, &out->settings_len);

	if (!rc)
		rc = get_pairs(t->txn, e->meta, LIVE_PARAMS, &out->params, &out->params_len);
	if (!rc)
		rc = get_pairs(t->txn, e->meta, LIVE_KAFKA, &out->kafka, &out->kafka_len);
	if (rc)
		return store_map_err(rc);
	if (cfg_live_unpack(&some, out->settings, out->settings_len) != 0)
		return -EIO; /* not what put_live wrote */
	out->batch_max = some.batch_max;
	out->log_level = some.log_level;
	out->stop_timeout_ms = some.stop_timeout_ms;
	out->watchdog_ms = some.watchdog_ms;
	return 0;
}

static int load_fn(MDB_txn *txn, void *arg)
{
	struct load *ld = arg;
	uint64_t gen = 0;
	int rc;

	ld->failed = NULL;
	rc = load_drop_stale(txn, ld);
	for (size_t i = 0; !rc && i < ld->n_tables; i++) {
		rc = load_fill(txn, &ld->tables[i]);
		if (rc)
			ld->failed = ld->tables[i].table->name;
	}
	if (!rc) {
		rc = store_get_u64(txn, ld->env->meta, "generation", &gen);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (!rc)
		rc = store_put_u64(txn, ld->env->meta, "generation", ld->generation = gen + 1);
	if (!rc)
		rc = put_live(txn, ld->env->meta, ld->cfg);
	return rc;
}

int store_config_load(struct store_env *e, const struct cfg *cfg, uint64_t *generation, char *errs,
		      size_t errs_len)
{
	struct errbuf eb = {errs, errs_len, 0, 0, 0};
	struct load ld = {e, NULL, cfg->n_tables, 0, 0, NULL, cfg};
	char err[STORE_ERR_LEN] = "";
	int rc;

	if (errs && errs_len)
		errs[0] = '\0';
	if (e->kind != ENV_CONFIG || e->readonly) {
		errbuf_add(&eb, "%s: opened read-only, cannot load", e->path);
		rc = -EROFS;
		goto out;
	}
	if (parse_tables(cfg, &ld.tables, &eb) < 0) {
		rc = -EINVAL;
		goto out;
	}
	rc = store_with_write(e, load_fn, &ld, err);
	if (rc) {
		errbuf_add(&eb, "%s: loading%s%s: %s%s%s", e->path, ld.failed ? " table " : "",
			   ld.failed ? ld.failed : "", mdb_strerror(rc), *err ? ": " : "", err);
		rc = store_map_err(rc);
		goto out;
	}
	log_info("%s: generation %llu: %zu tables loaded, %zu dropped", e->path,
		 (unsigned long long)ld.generation, ld.n_tables, ld.dropped);
	if (generation)
		*generation = ld.generation;
out:
	errbuf_finish(&eb);
	table_rows_free(ld.tables, cfg->n_tables);
	return rc;
}

/* ---- handler versions ------------------------------------------------------ */

struct blob_op {
	MDB_dbi dbi;
	const char *name;
	const void *data;
	size_t len;
};

static int blob_put_fn(MDB_txn *txn, void *arg)
{
	struct blob_op *op = arg;
	MDB_val k = {strlen(op->name), (void *)op->name}, d = {op->len, (void *)op->data};
	return mdb_put(txn, op->dbi, &k, &d, 0);
}

int store_config_put_blob(struct store_env *e, const char *name, const void *data, size_t len)
{
	struct blob_op op = {e->meta, name, data, len};
	if (e->readonly)
		return -EROFS;
	return store_map_err(store_with_write(e, blob_put_fn, &op, NULL));
}

int store_config_get_blob(struct store_txn *t, const char *name, struct store_val *val)
{
	const char *data;
	size_t len;
	int rc = get_pairs(t->txn, t->env->meta, name, &data, &len);
	if (rc)
		return store_map_err(rc);
	*val = (struct store_val){data, len};
	return 0;
}
