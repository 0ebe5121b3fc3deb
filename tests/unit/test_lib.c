/* lib/: UTF-8, UUIDs, time, URLs, tokens, JSON depth, the error catalogue, config, Redis URLs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/errors.h"
#include "lib/http.h"
#include "lib/ratelimit.h"
#include "lib/redis.h"
#include "lib/strbuf.h"
#include "lib/util.h"

static void test_utf8(void **state)
{
	assert_int_equal(util_utf8_length("abc", 3), 3);
	assert_int_equal(util_utf8_length("L\xe1\xbb\x87 ph\xc3\xad", 9), 6);
	assert_int_equal(util_utf8_length("\xf0\x9f\x98\x80", 4), 1);
	assert_int_equal(util_utf8_length("\xff", 1), -1);
	assert_int_equal(util_utf8_length("\xc3", 1), -1);          /* truncated */
	assert_int_equal(util_utf8_length("\xc0\xaf", 2), -1);      /* overlong '/' */
	assert_int_equal(util_utf8_length("\xed\xa0\x80", 3), -1);  /* surrogate */
	assert_int_equal(util_utf8_length("\xf4\x90\x80\x80", 4), -1); /* > U+10FFFF */
}

static void test_uuid(void **state)
{
	char a[37], b[37];
	util_uuid(a);
	util_uuid(b);
	assert_true(util_uuid_valid(a));
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '4');
	assert_false(util_uuid_valid("not-a-uuid"));
	assert_false(util_uuid_valid("693b1a3e-2cf3-422f-925d-5d158fff6f5"));
	assert_false(util_uuid_valid("693b1a3e-2cf3-422f-925d-5d158fff6f5g"));
	assert_true(util_uuid_valid("693B1A3E-2CF3-422F-925D-5D158FFF6F59"));
	char c[37], d[37];
	util_uuid7(c);
	usleep(2000);
	util_uuid7(d);
	assert_true(util_uuid_valid(c));
	assert_int_equal(c[14], '7');
	assert_true(strcmp(c, d) < 0); /* time-ordered */
}

static void test_time(void **state)
{
	char out[32];
	util_format_time(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	util_format_time(1795900517123LL, out);
	assert_string_equal(out, "2026-11-28T21:15:17.123Z");
}

static void test_url(void **state)
{
	assert_true(util_is_http_url("https://a.example/x"));
	assert_true(util_is_http_url("HTTP://a.example"));
	assert_false(util_is_http_url("https://"));
	assert_false(util_is_http_url("https:///x"));
	assert_false(util_is_http_url("javascript:alert(1)"));
	assert_false(util_is_http_url("https://a.example/\x01"));
}

static void test_token(void **state)
{
	char *t = util_token("fgk_", 32);
	assert_int_equal(strlen(t), 4 + 43);
	assert_memory_equal(t, "fgk_", 4);
	for (const char *p = t + 4; *p; p++)
		assert_true(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p) != NULL);
	free(t);
	char hex[65];
	util_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_json_depth(void **state)
{
	char deep[80];
	memset(deep, '[', 33);
	memset(deep + 33, ']', 33);
	deep[66] = '\0';
	assert_false(http_json_depth_ok(deep, strlen(deep), 32));
	assert_true(http_json_depth_ok(deep + 1, strlen(deep) - 2, 32));
	/* brackets inside strings do not count */
	const char *s = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[\"}";
	assert_true(http_json_depth_ok(s, strlen(s), 2));
}

static void test_errors(void **state)
{
	assert_int_equal(err_lookup(ERR_VALIDATION)->status, 400);
	assert_string_equal(err_lookup(ERR_VALIDATION)->code, "validation_failed");
	assert_int_equal(err_lookup(ERR_IDEMPOTENCY_REUSED)->status, 422);
	assert_string_equal(err_lookup(ERR_IDEMPOTENCY_IN_USE)->code, "idempotency_key_in_use");
	assert_int_equal(err_lookup(ERR_UNAVAILABLE)->status, 503);
	assert_int_equal(err_lookup(ERR_PAYLOAD_TOO_LARGE)->status, 413);
	assert_int_equal(err_lookup((enum err)999)->status, 500);
	for (int e = 0; e < ERR__COUNT; e++) {
		const char *code = err_lookup((enum err)e)->code;
		assert_non_null(code);
		for (const char *p = code; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
	}
}

static const char *const *fake_env;
static const char *lookup(const char *name)
{
	for (int i = 0; fake_env[i]; i += 2) {
		if (strcmp(fake_env[i], name) == 0)
			return fake_env[i + 1];
	}
	return NULL;
}

static void test_config(void **state)
{
	char err[256];
	static const char *const ok[] = {"FEEGATE_PORT", "9000", "FEEGATE_WORKERS", "3", NULL};
	fake_env = ok;
	assert_true(config_load_from(lookup, err, sizeof err));
	assert_int_equal(cfg.port, 9000);
	assert_int_equal(cfg.workers, 3);
	assert_int_equal(cfg.max_body_bytes, 1048576);
	assert_string_equal(cfg.public_url, "http://127.0.0.1:9000");

	static const char *const bad_int[] = {"FEEGATE_WORKERS", "abc", NULL};
	fake_env = bad_int;
	assert_false(config_load_from(lookup, err, sizeof err));
	assert_non_null(strstr(err, "FEEGATE_WORKERS"));

	static const char *const range[] = {"FEEGATE_PORT", "70000", NULL};
	fake_env = range;
	assert_false(config_load_from(lookup, err, sizeof err));
	assert_non_null(strstr(err, "FEEGATE_PORT"));
	assert_non_null(strstr(err, "range"));

	static const char *const level[] = {"FEEGATE_LOG_LEVEL", "loud", NULL};
	fake_env = level;
	assert_false(config_load_from(lookup, err, sizeof err));
	assert_non_null(strstr(err, "FEEGATE_LOG_LEVEL"));

	static const char *const url[] = {"FEEGATE_PUBLIC_URL", "pay.example", NULL};
	fake_env = url;
	assert_false(config_load_from(lookup, err, sizeof err));
	assert_non_null(strstr(err, "FEEGATE_PUBLIC_URL"));

	static const char *const missing_file[] = {"FEEGATE_CONFIG", "/nonexistent/feegate.conf", NULL};
	fake_env = missing_file;
	assert_false(config_load_from(lookup, err, sizeof err));
	assert_non_null(strstr(err, "FEEGATE_CONFIG"));
}

static void test_config_ha_settings(void **state)
{
	char err[256];
	char host[64];
	int port;
	assert_true(config_parse_host_port("127.0.0.1:26379", 15, host, sizeof host, &port));
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 26379);
	assert_true(config_parse_host_port("[::1]:26379", 11, host, sizeof host, &port));
	assert_string_equal(host, "::1");
	assert_false(config_parse_host_port("127.0.0.1", 9, host, sizeof host, &port));
	assert_false(config_parse_host_port(":1", 2, host, sizeof host, &port));
	assert_false(config_parse_host_port("h:0", 3, host, sizeof host, &port));
	assert_false(config_parse_host_port("h:65536", 7, host, sizeof host, &port));
	assert_false(config_parse_host_port("a:b:1", 5, host, sizeof host, &port));

	static const char *const ok[] = {"DATABASE_URL",
					 "postgresql://u:secret@h1:5432,h2:5433/feegate?target_session_attrs=read-write",
					 "FEEGATE_REDIS_SENTINELS", "s1:26379,s2:26379", "FEEGATE_NODE_NAME", "gw-a", NULL};
	fake_env = ok;
	assert_true(config_load_from(lookup, err, sizeof err));
	assert_string_equal(cfg.node_name, "gw-a");
	assert_string_equal(cfg.redis_master_name, "feegate");
	assert_int_equal(cfg.duty_retry_ms, 1000);
	assert_int_equal(cfg.replica_max_lag_s, 30);

	static const char *const unnamed[] = {NULL};
	fake_env = unnamed;
	assert_true(config_load_from(lookup, err, sizeof err));
	assert_true(cfg.node_name[0] != '\0'); /* the host name */

	static const char *const ports[] = {"DATABASE_URL", "postgresql://u:secret@h1:5432,h2:x/feegate", NULL};
	fake_env = ports;
	assert_false(config_load_from(lookup, err, sizeof err));
	assert_non_null(strstr(err, "DATABASE_URL: "));
	assert_null(strstr(err, "secret"));

	static const char *const counts[] = {"FEEGATE_REPLICA_URL", "host=a,b,c port=1,2", NULL};
	fake_env = counts;
	assert_false(config_load_from(lookup, err, sizeof err));
	assert_non_null(strstr(err, "FEEGATE_REPLICA_URL: "));

	static const char *const sentinels[] = {"FEEGATE_REDIS_SENTINELS", "s1:26379,,s2:1", NULL};
	fake_env = sentinels;
	assert_false(config_load_from(lookup, err, sizeof err));
	assert_non_null(strstr(err, "FEEGATE_REDIS_SENTINELS"));
}

static void test_config_file(void **state)
{
	char path[] = "/tmp/feegate-conf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "# comment\nFEEGATE_WORKERS=5\nFEEGATE_PORT=9100\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	const char *env[] = {"FEEGATE_CONFIG", path, "FEEGATE_PORT", "9200", NULL};
	fake_env = env;
	char err[256];
	assert_true(config_load_from(lookup, err, sizeof err));
	assert_int_equal(cfg.workers, 5);
	assert_int_equal(cfg.port, 9200); /* the environment wins over the file */

	FILE *f = fopen(path, "w");
	fputs("FEEGATE_NOPE=1\n", f);
	fclose(f);
	assert_false(config_load_from(lookup, err, sizeof err));
	assert_non_null(strstr(err, "FEEGATE_NOPE"));
	unlink(path);
}

/* A module's own settings, registered before the load: read, validated, masked and taking
 * another setting's value when empty, as the table's rows are. */
static char *module_url, *module_secret;
static int module_limit;
static const struct config_setting module_settings[] = {
	{"FEEGATE_TESTMOD_URL", CONFIG_STR, &module_url, NULL, 0, 0, NULL, false, "BANKSIM_URL"},
	{"FEEGATE_TESTMOD_SECRET", CONFIG_STR, &module_secret, NULL, 0, 0, NULL, true, NULL},
	{"FEEGATE_TESTMOD_LIMIT", CONFIG_INT, &module_limit, "5", 1, 9, NULL, false, NULL},
};

static void dumped(const char *text, void *arg)
{
	if (strncmp(text, "FEEGATE_TESTMOD_SECRET=", 23) == 0)
		snprintf(arg, 64, "%s", text);
}

static void test_config_register(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(module_settings); i++)
		assert_true(config_register(&module_settings[i]));
	assert_false(config_register(&module_settings[0])); /* a name once */
	char err[256];
	static const char *const env[] = {"BANKSIM_URL", "http://sim:1", "FEEGATE_TESTMOD_SECRET", "s3cret", NULL};
	fake_env = env;
	assert_true(config_load_from(lookup, err, sizeof err));
	assert_string_equal(module_url, "http://sim:1");
	assert_string_equal(module_secret, "s3cret");
	assert_int_equal(module_limit, 5);
	assert_string_equal(config_string("FEEGATE_TESTMOD_SECRET"), "s3cret");
	char line[64] = "";
	config_dump(dumped, line);
	assert_string_equal(line, "FEEGATE_TESTMOD_SECRET=(set)");

	static const char *const own[] = {"BANKSIM_URL", "http://sim:1", "FEEGATE_TESTMOD_URL", "http://own:2", NULL};
	fake_env = own;
	assert_true(config_load_from(lookup, err, sizeof err));
	assert_string_equal(module_url, "http://own:2");

	static const char *const bad[] = {"FEEGATE_TESTMOD_LIMIT", "10", NULL};
	fake_env = bad;
	assert_false(config_load_from(lookup, err, sizeof err));
	assert_non_null(strstr(err, "FEEGATE_TESTMOD_LIMIT"));
}

static void test_utf8_and_strbuf(void **state)
{
	uint32_t cp;
	assert_int_equal(util_utf8_decode("\xC4\x90", 2, &cp), 2);
	assert_int_equal(cp, 0x110);                                    /* Đ */
	assert_int_equal(util_utf8_decode("\xC4\x90", 1, &cp), 0);      /* cut short */
	assert_int_equal(util_utf8_decode("\xC0\xAF", 2, &cp), 0);      /* overlong */
	assert_int_equal(util_utf8_decode("\xED\xA0\x80", 3, &cp), 0);  /* a surrogate */
	assert_int_equal(util_utf8_decode("\xF4\x90\x80\x80", 4, &cp), 0); /* above U+10FFFF */
	const char *s = "a\xFF\xE2\x82\xAB";
	assert_int_equal(util_utf8_next(&s), 'a');
	assert_int_equal(util_utf8_next(&s), 0xFFFD);
	assert_int_equal(util_utf8_next(&s), 0x20AB);                   /* ₫ */
	assert_int_equal(*s, '\0');
	assert_int_equal(util_utf8_length("\xE2\x82\xAB!", 4), 2);
	assert_int_equal(util_utf8_length("\xE2\x82", 2), -1);

	struct strbuf b;
	strbuf_init(&b);
	char *empty = strbuf_take(&b);
	assert_string_equal(empty, "");
	free(empty);
	for (int i = 0; i < 100; i++)
		strbuf_printf(&b, "%02d", i);
	strbuf_putc(&b, '.');
	assert_int_equal(b.len, 201);
	assert_int_equal(strncmp(b.data, "000102", 6), 0);
	strbuf_reset(&b);
	strbuf_puts(&b, "x");
	char *x = strbuf_take(&b);
	assert_string_equal(x, "x");
	assert_null(b.data);
	free(x);

	char hex[65];
	assert_true(util_sign_timestamped("key", "1700000000", "{}", 2, hex));
	char again[65];
	assert_true(util_hmac_hex("SHA256", "key", "1700000000.{}", 13, again, sizeof again));
	assert_string_equal(hex, again);
	assert_true(util_hex_equal(hex, hex));
	hex[0] = hex[0] == 'a' ? 'b' : 'a';
	assert_false(util_hex_equal(again, hex));
}

static void test_redis_url(void **state)
{
	struct redis_url u;
	assert_true(redis_parse_url("redis://127.0.0.1:6380/2", &u));
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 6380);
	assert_int_equal(u.db, 2);
	assert_true(redis_parse_url("redis://:s3cret@cache.local", &u));
	assert_string_equal(u.password, "s3cret");
	assert_int_equal(u.port, 6379);
	assert_false(redis_parse_url("http://x", &u));
	assert_false(redis_parse_url("redis://host:99999", &u));
	assert_false(redis_parse_url("redis://", &u));
}

/* The local bucket: a window's worth of burst per share, refilled at rps/shares a second,
 * Retry-After the seconds until one token is back. */
static void test_ratelimit_local(void **state)
{
	struct ratelimit_config c = {.rps = 10, .window_s = 3, .shares = 2};
	struct rl_bucket b = {0};
	int64_t t = 1000000;
	int retry = -1, allowed = 0;
	for (int i = 0; i < 100; i++)
		allowed += ratelimit_local(&c, &b, t, &retry);
	assert_int_equal(allowed, 15); /* 10/2 a second, 3 s of burst */
	assert_int_equal(retry, 1);
	assert_false(ratelimit_local(&c, &b, t + 100000, &retry)); /* 0.5 token back */
	assert_true(ratelimit_local(&c, &b, t + 200000, &retry));  /* 1 token */
	assert_false(ratelimit_local(&c, &b, t + 200000, &retry));
	/* a slow budget: one request every 10 s per share */
	struct ratelimit_config slow = {.rps = 1, .window_s = 10, .shares = 10};
	struct rl_bucket s = {0};
	assert_true(ratelimit_local(&slow, &s, t, &retry));
	assert_false(ratelimit_local(&slow, &s, t, &retry));
	assert_int_equal(retry, 10);
	assert_false(ratelimit_local(&slow, &s, t + 4000000, &retry));
	assert_int_equal(retry, 6);
}

static int decided_ok, decided_no, last_retry;
static void decided(void *arg, bool allowed, int retry_after_s)
{
	(void)arg;
	if (allowed)
		decided_ok++;
	else
		decided_no++;
	last_retry = retry_after_s;
}

/* Without Redis (none, or "local"), ratelimit_check answers at once from the bucket; rps 0 is
 * no limit. */
static void test_ratelimit_without_redis(void **state)
{
	struct ratelimit *rl = ratelimit_new(NULL, NULL, &(struct ratelimit_config){.rps = 4, .window_s = 1, .shares = 1,
										     .shared = true, .wait_ms = 50,
										     .fallback_ms = 1000});
	struct rl_bucket b = {0};
	for (int i = 0; i < 10; i++)
		ratelimit_check(rl, "c:x", &b, decided, NULL);
	assert_int_equal(decided_ok, 4);
	assert_int_equal(decided_no, 6);
	assert_int_equal(last_retry, 1);
	ratelimit_free(rl);
	decided_ok = decided_no = 0;
	rl = ratelimit_new(NULL, NULL, &(struct ratelimit_config){.rps = 0, .window_s = 1, .shares = 1});
	for (int i = 0; i < 10; i++)
		ratelimit_check(rl, "c:x", &b, decided, NULL);
	assert_int_equal(decided_ok, 10);
	ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8),   cmocka_unit_test(test_uuid),       cmocka_unit_test(test_time),
		cmocka_unit_test(test_url),    cmocka_unit_test(test_token),      cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_errors), cmocka_unit_test(test_config), cmocka_unit_test(test_config_ha_settings),     cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_config_register),
		cmocka_unit_test(test_utf8_and_strbuf),
		cmocka_unit_test(test_redis_url), cmocka_unit_test(test_ratelimit_local),
		cmocka_unit_test(test_ratelimit_without_redis),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
