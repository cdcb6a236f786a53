/* kafka_consume.c - the yardstick of `make bench-kafka`: a plain librdkafka
 * high-level consumer, one thread, that joins a fresh consumer group on a
 * topic and reads it to its end, doing nothing with the records but count
 * their bytes.
 *
 *   kafka_consume -b BOOTSTRAP -t TOPIC -g GROUP [-n MESSAGES] [-X NAME=VALUE ...]
 *
 * At its start it reads the high watermarks of the topic's partitions; it
 * stops when it has read MESSAGES records or, without -n, every record below
 * those watermarks. The clock runs from the start of main(), so it includes
 * the metadata and watermark requests and the group join, as ringmaster's
 * does in the benchmark. It prints, one per line,
 *
 *   messages=N
 *   bytes=N             (keys and values)
 *   first_seconds=S     (start to the first record: connect and group join)
 *   seconds=S           (start to the last record)
 *   per_second=R        (messages / seconds)
 *
 * The group is left (rd_kafka_consumer_close) after the clock stops. -X
 * sets a librdkafka property (auto.offset.reset is earliest unless set).
 * Exit status 0, or 1 with a message on stderr: among others when the topic
 * is empty or no record comes for 60 s.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define TIMEOUT_MS 60000
#define MAX_PROPS 32

struct opts {
	const char *bootstrap, *topic, *group;
	long long messages; /* 0: up to the watermarks */
	char *props[MAX_PROPS];
	int n_props;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
	fprintf(stderr, "usage: kafka_consume -b BOOTSTRAP -t TOPIC -g GROUP [-n MESSAGES] "
			"[-X NAME=VALUE ...]\n");
	return 1;
}

static int parse(int argc, char **argv, struct opts *o)
{
	int c;
	char *end;
	while ((c = getopt(argc, argv, "b:t:g:n:X:")) != -1) {
		switch (c) {
		case 'b':
			o->bootstrap = optarg;
			break;
		case 't':
			o->topic = optarg;
			break;
		case 'g':
			o->group = optarg;
			break;
		case 'n':
			o->messages = strtoll(optarg, &end, 10);
			if (*end || o->messages <= 0)
				return -1;
			break;
		case 'X':
			if (o->n_props == MAX_PROPS || !strchr(optarg, '='))
				return -1;
			o->props[o->n_props++] = optarg;
			break;
		default:
			return -1;
		}
	}
	return o->bootstrap && o->topic && o->group && optind == argc ? 0 : -1;
}

static int set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char err[512];
	if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) == RD_KAFKA_CONF_OK)
		return 0;
	fprintf(stderr, "kafka_consume: %s = %s: %s\n", name, value, err);
	return -1;
}

static rd_kafka_t *new_consumer(const struct opts *o)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (set(conf, "bootstrap.servers", o->bootstrap) != 0 ||
	    set(conf, "group.id", o->group) != 0 || set(conf, "auto.offset.reset", "earliest") != 0)
		goto fail;
	for (int i = 0; i < o->n_props; i++) {
		char *eq = strchr(o->props[i], '=');
		*eq = '\0';
		int rc = set(conf, o->props[i], eq + 1);
		*eq = '=';
		if (rc != 0)
			goto fail;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk)
		return rk;
	fprintf(stderr, "kafka_consume: cannot create a consumer: %s\n", err);
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* The number of records below the high watermarks of the topic's
 * partitions, or -1. */
static long long topic_records(rd_kafka_t *rk, const char *topic)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	long long n = -1;
	rd_kafka_resp_err_t e =
	    rkt ? rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS) : RD_KAFKA_RESP_ERR__FAIL;
	if (e || md->topic_cnt != 1 || md->topics[0].err) {
		fprintf(stderr, "kafka_consume: topic %s: %s\n", topic,
			rd_kafka_err2str(e		 ? e
					 : md->topic_cnt ? md->topics[0].err
							 : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
		goto out;
	}
	n = 0;
	for (int i = 0; i < md->topics[0].partition_cnt; i++) {
		int32_t p = md->topics[0].partitions[i].id;
		int64_t low, high;
		e = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, TIMEOUT_MS);
		if (e) {
			fprintf(stderr, "kafka_consume: %s partition %d: %s\n", topic, p,
				rd_kafka_err2str(e));
			n = -1;
			goto out;
		}
		n += high - low;
	}
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	return n;
}

static int subscribe(rd_kafka_t *rk, const char *topic)
{
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (e)
		fprintf(stderr, "kafka_consume: cannot subscribe to %s: %s\n", topic,
			rd_kafka_err2str(e));
	return e ? -1 : 0;
}

int main(int argc, char **argv)
{
	double start = now(), first = 0, last = 0;
	struct opts o = {0};
	if (parse(argc, argv, &o) != 0)
		return usage();
	rd_kafka_t *rk = new_consumer(&o);
	if (!rk)
		return 1;
	int status = 1;
	long long want = o.messages ? o.messages : topic_records(rk, o.topic);
	long long got = 0, bytes = 0;
	if (want == 0)
		fprintf(stderr, "kafka_consume: topic %s holds no records\n", o.topic);
	if (want <= 0 || rd_kafka_poll_set_consumer(rk) || subscribe(rk, o.topic) != 0)
		goto out;
	while (got < want) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, TIMEOUT_MS);
		if (!m) {
			fprintf(stderr,
				"kafka_consume: nothing for %d s after %lld of %lld records\n",
				TIMEOUT_MS / 1000, got, want);
			goto out;
		}
		if (m->err) {
			fprintf(stderr, "kafka_consume: %s\n", rd_kafka_message_errstr(m));
		} else {
			if (!got++)
				first = now();
			bytes += (long long)(m->key_len + m->len);
		}
		rd_kafka_message_destroy(m);
	}
	last = now();
	status = 0;
out:
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	if (status == 0) {
		double secs = last - start;
		printf("messages=%lld\nbytes=%lld\nfirst_seconds=%.3f\nseconds=%.3f\n"
		       "per_second=%.0f\n",
		       got, bytes, first - start, secs, secs > 0 ? (double)got / secs : 0);
		if (fflush(stdout) != 0)
			status = 1;
	}
	return status;
}
