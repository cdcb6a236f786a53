/* kafka.h - what the supervisor's consumer and the workers' producers share:
 * librdkafka clients configured from the INI file, the changelog topic's
 * name, the headers ringmaster puts on the records it writes, and a topic's
 * partition count.
 *
 * Every librdkafka handle belongs to the process that created it: the
 * supervisor's consumer is never used by a worker, and each worker creates
 * its own producer after fork (ringmaster(8), KAFKA).
 */
#ifndef RM_KAFKA_H
#define RM_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

struct cfg;

/* Headers of the records ringmaster produces. Values are decimal text, so
 * that kcat and friends show them as they are. */
#define KAFKA_H_SEQ                                                                                \
	"seq"		   /* changelog: the batch's highest input offset;                         \
			      output: the input offset of the event */
#define KAFKA_H_COUNT "n"  /* changelog: records in the batch */
#define KAFKA_H_INDEX "i"  /* changelog: this record's place in it, 0..n-1 */
#define KAFKA_H_WRITER "w" /* changelog: the shard that wrote it (a random id) */
/* changelog: the consumer-group generation its writer was assigned the
 * partition under; and "1" on a fence record (which has no seq, n, i) */
#define KAFKA_H_GENERATION "g"
#define KAFKA_H_FENCE "fence"

#define KAFKA_ERR_LEN 512

/* The callbacks a client is made with, each optional, and the opaque
 * they (and librdkafka's other callbacks) are given. */
struct kafka_hooks {
	void *opaque;
	/* producer: a record was delivered, or could not be */
	void (*delivered)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
	/* group consumer: partitions assigned or revoked */
	void (*rebalance)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			  rd_kafka_topic_partition_list_t *parts, void *opaque);
	/* group consumer: the result of an offset commit */
	void (*committed)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			  rd_kafka_topic_partition_list_t *offsets, void *opaque);
};

/* A librdkafka client of `type`, for every handle ringmaster makes. Its
 * configuration: bootstrap.servers from [source] brokers when set, then
 * the `defaults` (NULL-terminated name, value pairs), then every [kafka]
 * property, so the INI file may change a default, then `forced` (same
 * form), which it may not; librdkafka's logs go to ringmaster's log; then
 * `hooks` (or NULL). Returns the handle, or NULL with a message in err:
 * the property that was refused, or the message `fmt` makes (what could
 * not be created, say "cannot create the kafka consumer") followed by ": "
 * and librdkafka's reason. */
rd_kafka_t *kafka_client_new(rd_kafka_type_t type, const struct cfg *c, const char *const *defaults,
			     const char *const *forced, const struct kafka_hooks *hooks,
			     char err[KAFKA_ERR_LEN], const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* The changelog topic: "<group>-<name>-changelog". Returns 0, or -1 when it
 * does not fit in len. */
int kafka_changelog_topic(const struct cfg *c, char *buf, size_t len);

/* The number of partitions of `topic`, asked from the cluster. Returns 0;
 * -ENOENT when the topic does not exist; -EIO (and a message) when the
 * cluster could not be asked within timeout_ms. */
int kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *count,
			  char err[KAFKA_ERR_LEN]);

/* Create `topic` with `partitions` partitions (the cluster's default
 * replication) and `configs` (NULL-terminated name, value pairs), with the
 * Admin API. Returns 0 when created; -EEXIST when it exists already;
 * -ENOTSUP when the cluster does not implement CreateTopics (librdkafka's
 * mock cluster); -ETIMEDOUT or -EIO otherwise; err says why. */
int kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions,
		       const char *const *configs, int timeout_ms, char err[KAFKA_ERR_LEN]);

/* The value of topic setting `name` (DescribeConfigs) into value. Returns
 * 0; -ENOTSUP when the cluster does not implement DescribeConfigs;
 * -ETIMEDOUT when it did not answer (librdkafka's mock cluster, which has
 * no controller, never does); -ENOENT or -EIO otherwise, err saying why.
 * kafka_create_topic's errors are the same. */
int kafka_topic_config(rd_kafka_t *rk, const char *topic, const char *name, char *value, size_t len,
		       int timeout_ms, char err[KAFKA_ERR_LEN]);

/* The generation of the consumer group `rk` is a member of, as the group
 * coordinator numbered it at the last rebalance: it grows by one at every
 * rebalance, so an assignment made later has a higher one. librdkafka 2.0
 * has no getter for it: it is read from the serialized group metadata,
 * whose layout kafka_generation_check verifies at start. Returns 0,
 * or -1 with a message in err (not a member yet, or an unknown layout). */
int kafka_group_generation(rd_kafka_t *rk, int32_t *generation, char err[KAFKA_ERR_LEN]);

/* Whether this librdkafka lays the group metadata out as
 * kafka_group_generation reads it. Returns 0, or -1 with a message. */
int kafka_generation_check(char err[KAFKA_ERR_LEN]);

/* The header `name` of a message as an unsigned decimal number. Returns 0,
 * or -1 when it is missing or not a number. */
int kafka_header_u64(rd_kafka_message_t *m, const char *name, uint64_t *v);

#endif
