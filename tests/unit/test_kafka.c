/* test_kafka.c - reading the consumer-group generation (common/kafka.c), on
 * which the changelog's fencing rests: this librdkafka's serialized group
 * metadata has the layout kafka_group_generation reads, and a client that
 * is not in a group yet has no generation to give. No broker is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kafka.h"

static void test_layout_is_known(void **unused)
{
	(void)unused;
	char err[KAFKA_ERR_LEN] = "";
	assert_int_equal(kafka_generation_check(err), 0);
	assert_string_equal(err, "");
}

/* A client made here, with nothing to connect to and its logs silenced. */
static rd_kafka_t *client(rd_kafka_type_t type, const char *group)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	assert_non_null(conf);
	assert_int_equal(rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err)),
			 RD_KAFKA_CONF_OK);
	if (group)
		assert_int_equal(rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)),
				 RD_KAFKA_CONF_OK);
	rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
	assert_non_null(rk);
	return rk;
}

static void test_no_generation_before_joining(void **unused)
{
	(void)unused;
	char err[KAFKA_ERR_LEN] = "";
	int32_t generation = 12345;
	rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, "grp");
	assert_int_equal(kafka_group_generation(rk, &generation, err), -1);
	assert_non_null(strstr(err, "no group generation yet"));
	rd_kafka_destroy(rk);
}

static void test_a_producer_has_no_group(void **unused)
{
	(void)unused;
	char err[KAFKA_ERR_LEN] = "";
	int32_t generation;
	rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, NULL);
	assert_int_equal(kafka_group_generation(rk, &generation, err), -1);
	assert_non_null(strstr(err, "not a group consumer"));
	rd_kafka_destroy(rk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout_is_known),
	    cmocka_unit_test(test_no_generation_before_joining),
	    cmocka_unit_test(test_a_producer_has_no_group),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
