/* kafka.c - see kafka.h. */
#include "kafka.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"

/* librdkafka logs from its own threads; log_write is one write(2) per
 * line, so that is safe. Its syslog levels map onto ours. A property that
 * does not apply to this kind of client (a consumer's, set on a producer:
 * the [kafka] section serves both) is not worth a warning. */
static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	int ours = level <= 3	? LOG_LEVEL_ERROR
		   : level == 4 ? LOG_LEVEL_WARN
		   : level <= 6 ? LOG_LEVEL_INFO
				: LOG_LEVEL_DEBUG;
	if (strcmp(fac, "CONFWARN") == 0)
		ours = LOG_LEVEL_DEBUG;
	log_write(ours, "kafka %s: %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

static int set_pairs(rd_kafka_conf_t *conf, const char *const *kv, char *err)
{
	char why[256];
	for (; kv && kv[0]; kv += 2) {
		if (rd_kafka_conf_set(conf, kv[0], kv[1], why, sizeof(why)) != RD_KAFKA_CONF_OK) {
			snprintf(err, KAFKA_ERR_LEN, "kafka property %s = %s: %s", kv[0], kv[1],
				 why);
			return -1;
		}
	}
	return 0;
}

static rd_kafka_conf_t *kafka_conf_new(const struct cfg *c, const char *const *defaults,
				       const char *const *forced, char err[KAFKA_ERR_LEN])
{
	char why[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (!conf) {
		snprintf(err, KAFKA_ERR_LEN, "out of memory for a kafka configuration");
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, kafka_log);
	if (c->kafka_brokers && rd_kafka_conf_set(conf, "bootstrap.servers", c->kafka_brokers, why,
						  sizeof(why)) != RD_KAFKA_CONF_OK) {
		snprintf(err, KAFKA_ERR_LEN, "%s: [source] brokers = %s: %s",
			 cfg_origin(c, "source", "brokers"), c->kafka_brokers, why);
		goto fail;
	}
	if (set_pairs(conf, defaults, err) != 0)
		goto fail;
	for (size_t i = 0; i < c->n_kafka; i++) {
		const struct cfg_kv *kv = &c->kafka[i];
		if (rd_kafka_conf_set(conf, kv->key, kv->value, why, sizeof(why)) !=
		    RD_KAFKA_CONF_OK) {
			snprintf(err, KAFKA_ERR_LEN, "%s: [kafka] %s = %s: %s",
				 kv->origin ? kv->origin : cfg_origin(c, "kafka", kv->key), kv->key,
				 kv->value, why);
			goto fail;
		}
	}
	if (set_pairs(conf, forced, err) != 0)
		goto fail;
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

rd_kafka_t *kafka_client_new(rd_kafka_type_t type, const struct cfg *c, const char *const *defaults,
			     const char *const *forced, const struct kafka_hooks *hooks,
			     char err[KAFKA_ERR_LEN], const char *fmt, ...)
{
	char why[256];
	rd_kafka_conf_t *conf = kafka_conf_new(c, defaults, forced, err);
	if (!conf)
		return NULL;
	if (hooks) {
		rd_kafka_conf_set_opaque(conf, hooks->opaque);
		if (hooks->delivered)
			rd_kafka_conf_set_dr_msg_cb(conf, hooks->delivered);
		if (hooks->rebalance)
			rd_kafka_conf_set_rebalance_cb(conf, hooks->rebalance);
		if (hooks->committed)
			rd_kafka_conf_set_offset_commit_cb(conf, hooks->committed);
	}
	rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof(why));
	if (rk)
		return rk; /* it owns conf now */
	rd_kafka_conf_destroy(conf);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err, KAFKA_ERR_LEN, fmt, ap);
	va_end(ap);
	if (n >= 0 && n < KAFKA_ERR_LEN)
		snprintf(err + n, KAFKA_ERR_LEN - (size_t)n, ": %s", why);
	return NULL;
}

int kafka_changelog_topic(const struct cfg *c, char *buf, size_t len)
{
	int n =
	    snprintf(buf, len, "%s-%s-changelog", c->kafka_group ? c->kafka_group : "", c->name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *count,
			  char err[KAFKA_ERR_LEN])
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	int rc = -EIO;
	if (!rkt) {
		snprintf(err, KAFKA_ERR_LEN, "topic %s: %s", topic,
			 rd_kafka_err2str(rd_kafka_last_error()));
		return -EIO;
	}
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
	if (e) {
		snprintf(err, KAFKA_ERR_LEN, "cannot get the metadata of topic %s: %s", topic,
			 rd_kafka_err2str(e));
		goto out;
	}
	if (md->topic_cnt != 1) {
		snprintf(err, KAFKA_ERR_LEN, "topic %s: the cluster described %d topics", topic,
			 md->topic_cnt);
		goto out;
	}
	e = md->topics[0].err;
	if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
	    (!e && md->topics[0].partition_cnt == 0)) {
		snprintf(err, KAFKA_ERR_LEN, "topic %s does not exist", topic);
		rc = -ENOENT;
		goto out;
	}
	if (e) {
		snprintf(err, KAFKA_ERR_LEN, "topic %s: %s", topic, rd_kafka_err2str(e));
		goto out;
	}
	*count = md->topics[0].partition_cnt;
	rc = 0;
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return rc;
}

int kafka_header_u64(rd_kafka_message_t *m, const char *name, uint64_t *v)
{
	rd_kafka_headers_t *hdrs;
	const void *val;
	size_t len;
	char buf[24], *end;
	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    rd_kafka_header_get_last(hdrs, name, &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    !val || len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, val, len);
	buf[len] = '\0';
	if (buf[0] < '0' || buf[0] > '9')
		return -1;
	errno = 0;
	unsigned long long n = strtoull(buf, &end, 10);
	if (errno || *end)
		return -1;
	*v = n;
	return 0;
}

/* rd_kafka_consumer_group_metadata_write's layout (private to librdkafka,
 * hence kafka_generation_check): this magic, then the generation id as a
 * native int32, then the group id and the member id. */
#define CGMD_MAGIC "CGMDv2:"
#define CGMD_MAGIC_LEN (sizeof(CGMD_MAGIC) - 1)

static int cgmd_generation(const rd_kafka_consumer_group_metadata_t *md, int32_t *generation,
			   char err[KAFKA_ERR_LEN])
{
	void *buf = NULL;
	size_t len = 0;
	rd_kafka_error_t *e = rd_kafka_consumer_group_metadata_write(md, &buf, &len);
	if (e) {
		snprintf(err, KAFKA_ERR_LEN, "cannot serialize the consumer group metadata: %s",
			 rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
		return -1;
	}
	int rc = -1;
	if (len < CGMD_MAGIC_LEN + sizeof(*generation) || memcmp(buf, CGMD_MAGIC, CGMD_MAGIC_LEN)) {
		snprintf(err, KAFKA_ERR_LEN,
			 "librdkafka %s serializes consumer group metadata in "
			 "a layout ringmaster does not know: it cannot read the group generation "
			 "its changelog fencing needs",
			 rd_kafka_version_str());
	} else {
		memcpy(generation, (const char *)buf + CGMD_MAGIC_LEN, sizeof(*generation));
		rc = 0;
	}
	rd_kafka_mem_free(NULL, buf);
	return rc;
}

int kafka_generation_check(char err[KAFKA_ERR_LEN])
{
	const int32_t want = 0x5eed1234;
	int32_t got = 0;
	rd_kafka_consumer_group_metadata_t *md =
	    rd_kafka_consumer_group_metadata_new_with_genid("ringmaster-check", want, "m", NULL);
	if (!md) {
		snprintf(err, KAFKA_ERR_LEN, "out of memory for consumer group metadata");
		return -1;
	}
	int rc = cgmd_generation(md, &got, err);
	rd_kafka_consumer_group_metadata_destroy(md);
	if (rc == 0 && got != want) {
		snprintf(err, KAFKA_ERR_LEN,
			 "librdkafka %s serializes consumer group metadata in "
			 "a layout ringmaster does not know (generation %d read back as %d): it "
			 "cannot read the group generation its changelog fencing needs",
			 rd_kafka_version_str(), (int)want, (int)got);
		rc = -1;
	}
	return rc;
}

int kafka_group_generation(rd_kafka_t *rk, int32_t *generation, char err[KAFKA_ERR_LEN])
{
	rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(rk);
	if (!md) {
		snprintf(err, KAFKA_ERR_LEN, "%s is not a group consumer", rd_kafka_name(rk));
		return -1;
	}
	int rc = cgmd_generation(md, generation, err);
	rd_kafka_consumer_group_metadata_destroy(md);
	if (rc == 0 && *generation < 0) {
		snprintf(err, KAFKA_ERR_LEN, "%s has no group generation yet (generation %d)",
			 rd_kafka_name(rk), (int)*generation);
		rc = -1;
	}
	return rc;
}

static int admin_unsupported(rd_kafka_resp_err_t e)
{
	return e == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
	       e == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION || e == RD_KAFKA_RESP_ERR_INVALID_REQUEST;
}

/* An admin request's result from q within timeout_ms: 0 with *ev, or
 * -ETIMEDOUT, -ENOTSUP or -EIO with a message in err (and no event). */
static int admin_wait(rd_kafka_queue_t *q, int timeout_ms, rd_kafka_event_t **ev,
		      char err[KAFKA_ERR_LEN])
{
	*ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
	if (!*ev) {
		snprintf(err, KAFKA_ERR_LEN, "no answer within %d ms", timeout_ms);
		return -ETIMEDOUT;
	}
	rd_kafka_resp_err_t e = rd_kafka_event_error(*ev);
	if (!e)
		return 0;
	snprintf(err, KAFKA_ERR_LEN, "%s", rd_kafka_event_error_string(*ev));
	rd_kafka_event_destroy(*ev);
	*ev = NULL;
	return e == RD_KAFKA_RESP_ERR__TIMED_OUT ? -ETIMEDOUT
	       : admin_unsupported(e)		 ? -ENOTSUP
						 : -EIO;
}

static int admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op, int timeout_ms,
			 rd_kafka_AdminOptions_t **out, char err[KAFKA_ERR_LEN])
{
	*out = rd_kafka_AdminOptions_new(rk, op);
	if (!*out || rd_kafka_AdminOptions_set_request_timeout(
			 *out, timeout_ms, err, KAFKA_ERR_LEN) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (*out)
			rd_kafka_AdminOptions_destroy(*out);
		return -EINVAL;
	}
	return 0;
}

int kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions,
		       const char *const *configs, int timeout_ms, char err[KAFKA_ERR_LEN])
{
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, -1, err, KAFKA_ERR_LEN);
	if (!nt)
		return -EINVAL;
	for (size_t i = 0; configs && configs[i]; i += 2)
		rd_kafka_NewTopic_set_config(nt, configs[i], configs[i + 1]);
	rd_kafka_AdminOptions_t *opt;
	if (admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms, &opt, err) != 0) {
		rd_kafka_NewTopic_destroy(nt);
		return -EINVAL;
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
	rd_kafka_event_t *ev;
	int rc = admin_wait(q, timeout_ms, &ev, err);
	if (rc == 0) {
		size_t n = 0;
		const rd_kafka_topic_result_t **res =
		    rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
		rd_kafka_resp_err_t e = n ? rd_kafka_topic_result_error(res[0]) : 0;
		const char *msg = n ? rd_kafka_topic_result_error_string(res[0]) : NULL;
		snprintf(err, KAFKA_ERR_LEN, "%s", msg ? msg : rd_kafka_err2str(e));
		rc = e == RD_KAFKA_RESP_ERR_NO_ERROR		   ? 0
		     : e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS ? -EEXIST
		     : admin_unsupported(e)			   ? -ENOTSUP
								   : -EIO;
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_AdminOptions_destroy(opt);
	rd_kafka_NewTopic_destroy(nt);
	return rc;
}

int kafka_topic_config(rd_kafka_t *rk, const char *topic, const char *name, char *value, size_t len,
		       int timeout_ms, char err[KAFKA_ERR_LEN])
{
	rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	rd_kafka_AdminOptions_t *opt;
	if (!cr)
		return -ENOMEM;
	if (admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms, &opt, err) != 0) {
		rd_kafka_ConfigResource_destroy(cr);
		return -EINVAL;
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_DescribeConfigs(rk, &cr, 1, opt, q);
	rd_kafka_event_t *ev;
	int rc = admin_wait(q, timeout_ms, &ev, err);
	if (rc == 0) {
		rc = -ENOENT;
		size_t n = 0, nc = 0;
		const rd_kafka_ConfigResource_t **res = rd_kafka_DescribeConfigs_result_resources(
		    rd_kafka_event_DescribeConfigs_result(ev), &n);
		rd_kafka_resp_err_t e = n ? rd_kafka_ConfigResource_error(res[0]) : 0;
		if (e) {
			snprintf(err, KAFKA_ERR_LEN, "%s", rd_kafka_err2str(e));
			rc = admin_unsupported(e) ? -ENOTSUP : -EIO;
		}
		const rd_kafka_ConfigEntry_t **ce =
		    n && !e ? rd_kafka_ConfigResource_configs(res[0], &nc) : NULL;
		for (size_t i = 0; i < nc; i++) {
			if (strcmp(rd_kafka_ConfigEntry_name(ce[i]), name) != 0)
				continue;
			const char *v = rd_kafka_ConfigEntry_value(ce[i]);
			snprintf(value, len, "%s", v ? v : "");
			rc = 0;
			break;
		}
		if (rc == -ENOENT)
			snprintf(err, KAFKA_ERR_LEN, "%s: no setting %s", topic, name);
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_AdminOptions_destroy(opt);
	rd_kafka_ConfigResource_destroy(cr);
	return rc;
}
