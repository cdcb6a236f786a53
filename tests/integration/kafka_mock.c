/* kafka_mock.c - a Kafka cluster for the tests, without a broker: librdkafka's
 * mock cluster, listening on loopback ports, with the test's topics, and a
 * file of events produced into the first one.
 *
 *   kafka_mock -p PARTITIONS [-n BROKERS] -t TOPIC [-t TOPIC ...] [-e EVENTS_FILE]
 *   kafka_mock -p PARTITIONS -d TOPIC -b BOOTSTRAP
 *
 * The cluster has BROKERS brokers (1).
 * Every topic gets PARTITIONS partitions. Each line of EVENTS_FILE
 * (key<TAB>payload, as `ringctl gen events` writes them) becomes one record,
 * key = the key, value = the payload, partitioned with murmur2 (Kafka's
 * default partitioner, which ringmaster's matches; librdkafka's own default
 * is CRC32, so it is set here). The program prints
 *
 *   bootstrap=HOST:PORT,...
 *   produced=N
 *   ready
 *
 * and serves the cluster until SIGTERM or SIGINT.
 *
 * With -d it is a client instead: it prints every record of TOPIC on the
 * cluster at BOOTSTRAP, one line each, partition<TAB>key<TAB>seq<TAB>value
 * (seq: the record's "seq" header, "-" if none), partition by partition in
 * offset order, and exits.
 *
 * Exit status 0, or 1 with a message on stderr.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_TOPICS 8
#define FLUSH_MS 60000

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

struct opts {
	int partitions, brokers;
	const char *topics[MAX_TOPICS];
	int n_topics;
	const char *events;
	const char *dump, *bootstrap;
};

static int usage(void)
{
	fprintf(stderr,
		"usage: kafka_mock -p PARTITIONS [-n BROKERS] -t TOPIC [-t TOPIC ...] [-e EVENTS]\n"
		"       kafka_mock -p PARTITIONS -d TOPIC -b BOOTSTRAP\n");
	return 1;
}

static int parse(int argc, char **argv, struct opts *o)
{
	int c;
	while ((c = getopt(argc, argv, "p:n:t:e:d:b:")) != -1) {
		switch (c) {
		case 'p':
			o->partitions = atoi(optarg);
			break;
		case 'n':
			o->brokers = atoi(optarg);
			break;
		case 't':
			if (o->n_topics == MAX_TOPICS)
				return -1;
			o->topics[o->n_topics++] = optarg;
			break;
		case 'e':
			o->events = optarg;
			break;
		case 'd':
			o->dump = optarg;
			break;
		case 'b':
			o->bootstrap = optarg;
			break;
		default:
			return -1;
		}
	}
	if (o->dump)
		return o->partitions > 0 && o->bootstrap && !o->n_topics && optind == argc ? 0 : -1;
	return o->partitions > 0 && o->n_topics > 0 && optind == argc ? 0 : -1;
}

static rd_kafka_t *new_producer(const char *bootstrap)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (bootstrap &&
	    (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)) !=
		 RD_KAFKA_CONF_OK ||
	     rd_kafka_conf_set(conf, "partitioner", "murmur2_random", err, sizeof(err)) !=
		 RD_KAFKA_CONF_OK ||
	     rd_kafka_conf_set(conf, "linger.ms", "20", err, sizeof(err)) != RD_KAFKA_CONF_OK)) {
		fprintf(stderr, "kafka_mock: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "kafka_mock: cannot create a producer: %s\n", err);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

/* One record per line: key before the first tab, payload after it. */
static int produce_line(rd_kafka_t *rk, const char *topic, char *line, size_t len)
{
	if (len && line[len - 1] == '\n')
		line[--len] = '\0';
	char *tab = memchr(line, '\t', len);
	if (!tab || tab == line) {
		fprintf(stderr, "kafka_mock: not key<TAB>payload: %s\n", line);
		return -1;
	}
	size_t key_len = (size_t)(tab - line);
	for (;;) {
		rd_kafka_resp_err_t e = rd_kafka_producev(
		    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_KEY(line, key_len), RD_KAFKA_V_VALUE(tab + 1, len - key_len - 1),
		    RD_KAFKA_V_END);
		if (!e)
			return 0;
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			fprintf(stderr, "kafka_mock: produce: %s\n", rd_kafka_err2str(e));
			return -1;
		}
		rd_kafka_poll(rk, 100);
	}
}

static long produce_file(const char *bootstrap, const char *topic, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "kafka_mock: %s: %s\n", path, strerror(errno));
		return -1;
	}
	rd_kafka_t *rk = new_producer(bootstrap);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long n = 0;
	while (rk && (len = getline(&line, &cap, f)) > 0) {
		if (produce_line(rk, topic, line, (size_t)len) != 0) {
			n = -1;
			break;
		}
		n++;
	}
	if (rk && n >= 0 && rd_kafka_flush(rk, FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafka_mock: the events were not all delivered\n");
		n = -1;
	}
	free(line);
	fclose(f);
	if (rk)
		rd_kafka_destroy(rk);
	return rk ? n : -1;
}

static void print_record(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *h;
	const void *seq = NULL;
	size_t seq_len = 0;
	if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_header_get_last(h, "seq", &seq, &seq_len);
	printf("%d\t%.*s\t%.*s\t%.*s\n", (int)m->partition, (int)m->key_len,
	       m->key ? (const char *)m->key : "", seq ? (int)seq_len : 1,
	       seq ? (const char *)seq : "-", (int)m->len,
	       m->payload ? (const char *)m->payload : "");
}

/* Print partition p of the topic from its start to its end. */
static int dump_partition(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int32_t p)
{
	int64_t low, high;
	rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, rd_kafka_topic_name(rkt), p,
								 &low, &high, FLUSH_MS);
	if (e) {
		fprintf(stderr, "kafka_mock: partition %d: %s\n", p, rd_kafka_err2str(e));
		return -1;
	}
	if (low >= high)
		return 0;
	if (rd_kafka_consume_start(rkt, p, low) != 0) {
		fprintf(stderr, "kafka_mock: partition %d: cannot read\n", p);
		return -1;
	}
	int64_t at = low;
	int rc = 0;
	while (at < high && rc == 0) {
		rd_kafka_message_t *m = rd_kafka_consume(rkt, p, FLUSH_MS);
		if (!m) {
			fprintf(stderr, "kafka_mock: partition %d: nothing at %lld\n", p,
				(long long)at);
			rc = -1;
			break;
		}
		if (!m->err && m->offset >= at) {
			print_record(m);
			at = m->offset + 1;
		} else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			fprintf(stderr, "kafka_mock: %s\n", rd_kafka_message_errstr(m));
			rc = -1;
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consume_stop(rkt, p);
	return rc;
}

static int dump(const struct opts *o)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", o->bootstrap, err, sizeof(err)) !=
	    RD_KAFKA_CONF_OK) {
		fprintf(stderr, "kafka_mock: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "kafka_mock: cannot create a consumer: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->dump, NULL);
	int rc = rkt ? 0 : -1;
	for (int32_t p = 0; p < o->partitions && rc == 0; p++)
		rc = dump_partition(rk, rkt, p);
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return rc == 0 && fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	if (parse(argc, argv, &o) != 0)
		return usage();
	if (o.dump)
		return dump(&o);
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
		return 1;
	rd_kafka_t *host = new_producer(NULL);
	rd_kafka_mock_cluster_t *mc =
	    host ? rd_kafka_mock_cluster_new(host, o.brokers > 0 ? o.brokers : 1) : NULL;
	if (!mc) {
		fprintf(stderr, "kafka_mock: cannot start a mock cluster\n");
		return 1;
	}
	const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
	int status = 1;
	for (int i = 0; i < o.n_topics; i++) {
		rd_kafka_resp_err_t e =
		    rd_kafka_mock_topic_create(mc, o.topics[i], o.partitions, 1);
		if (e) {
			fprintf(stderr, "kafka_mock: topic %s: %s\n", o.topics[i],
				rd_kafka_err2str(e));
			goto out;
		}
	}
	long produced = o.events ? produce_file(bootstrap, o.topics[0], o.events) : 0;
	if (produced < 0)
		goto out;
	printf("bootstrap=%s\nproduced=%ld\nready\n", bootstrap, produced);
	fflush(stdout);
	while (!stop)
		pause();
	status = 0;
out:
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(host);
	return status;
}
