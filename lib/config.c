#include "lib/config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

struct config cfg;

enum cfg_type { CFG_INT, CFG_STR, CFG_URL, CFG_ENUM };

struct cfg_entry {
	const char *name;
	enum cfg_type type;
	size_t offset;
	const char *def; /* NULL: empty */
	long min, max;   /* CFG_INT bounds */
	const char *choices; /* CFG_ENUM: comma-separated */
	bool secret;
};

#define F(field) offsetof(struct config, field)
static const struct cfg_entry table[] = {
	{"FEEGATE_LISTEN", CFG_STR, F(listen_addr), "127.0.0.1", 0, 0, NULL, false},
	{"FEEGATE_PORT", CFG_INT, F(port), "8080", 1, 65535, NULL, false},
	{"FEEGATE_WORKERS", CFG_INT, F(workers), "2", 1, 64, NULL, false},
	{"FEEGATE_PUBLIC_URL", CFG_STR, F(public_url), NULL, 0, 0, NULL, false},
	{"DATABASE_URL", CFG_STR, F(database_url), NULL, 0, 0, NULL, true},
	{"REDIS_URL", CFG_URL, F(redis_url), "redis://127.0.0.1:6379/0", 0, 0, NULL, true},
	{"FEEGATE_DB_POOL_SIZE", CFG_INT, F(db_pool_size), "4", 1, 64, NULL, false},
	{"FEEGATE_DB_TIMEOUT_MS", CFG_INT, F(db_timeout_ms), "3000", 50, 120000, NULL, false},
	{"FEEGATE_DB_CONNECT_TIMEOUT_MS", CFG_INT, F(db_connect_timeout_ms), "2000", 50, 60000, NULL, false},
	{"FEEGATE_IDEMPOTENCY_WAIT_MS", CFG_INT, F(idempotency_wait_ms), "10000", 100, 60000, NULL, false},
	{"FEEGATE_REDIS_TIMEOUT_MS", CFG_INT, F(redis_timeout_ms), "200", 10, 10000, NULL, false},
	{"FEEGATE_MAX_BODY_BYTES", CFG_INT, F(max_body_bytes), "1048576", 1024, 67108864, NULL, false},
	{"FEEGATE_MAX_STATEMENT_BYTES", CFG_INT, F(max_statement_bytes), "268435456", 1024, 2147483647, NULL, false},
	{"FEEGATE_MAX_JSON_DEPTH", CFG_INT, F(max_json_depth), "32", 2, 256, NULL, false},
	{"FEEGATE_BATCH_WINDOW_US", CFG_INT, F(batch_window_us), "1000", 0, 100000, NULL, false},
	{"FEEGATE_BATCH_MAX", CFG_INT, F(batch_max), "256", 1, 5000, NULL, false},
	{"FEEGATE_BATCH_INFLIGHT", CFG_INT, F(batch_inflight), "2", 1, 64, NULL, false},
	{"FEEGATE_HTTP_IDLE_TIMEOUT_S", CFG_INT, F(http_idle_timeout_s), "60", 1, 3600, NULL, false},
	{"FEEGATE_SHUTDOWN_TIMEOUT_MS", CFG_INT, F(shutdown_timeout_ms), "15000", 100, 600000, NULL, false},
	{"FEEGATE_AUTH_CACHE_TTL_S", CFG_INT, F(auth_cache_ttl_s), "30", 0, 3600, NULL, false},
	{"FEEGATE_RATE_LIMIT_RPS", CFG_INT, F(rate_limit_rps), "2000", 0, 10000000, NULL, false},
	{"FEEGATE_RATE_LIMIT_WINDOW_S", CFG_INT, F(rate_limit_window_s), "1", 1, 3600, NULL, false},
	{"FEEGATE_RATE_LIMIT_STORE", CFG_ENUM, F(rate_limit_store), "redis", 0, 0, "redis,local", false},
	{"FEEGATE_RATE_LIMIT_WAIT_MS", CFG_INT, F(rate_limit_wait_ms), "50", 1, 10000, NULL, false},
	{"FEEGATE_RATE_LIMIT_FALLBACK_MS", CFG_INT, F(rate_limit_fallback_ms), "2000", 10, 600000, NULL, false},
	{"FEEGATE_SESSION_IDLE_S", CFG_INT, F(session_idle_s), "1800", 1, 86400, NULL, false},
	{"FEEGATE_SESSION_MAX_S", CFG_INT, F(session_max_s), "28800", 10, 604800, NULL, false},
	{"FEEGATE_LOGIN_RATE_PER_IP", CFG_INT, F(login_rate_per_ip), "120", 1, 100000, NULL, false},
	{"FEEGATE_LOGIN_RATE_PER_ACCOUNT", CFG_INT, F(login_rate_per_account), "10", 1, 100000, NULL, false},
	{"FEEGATE_HASH_THREADS", CFG_INT, F(hash_threads), "2", 1, 16, NULL, false},
	{"FEEGATE_PASSWORD_LOG_N", CFG_INT, F(password_log_n), "15", 10, 20, NULL, false},
	{"FEEGATE_REFUND_APPROVAL_VND", CFG_INT, F(refund_approval_vnd), "50000000", 1, 2000000000, NULL, false},
	{"FEEGATE_LOG_LEVEL", CFG_ENUM, F(log_level), "info", 0, 0, "debug,info,warn,error", false},
	{"FEEGATE_MIGRATIONS", CFG_STR, F(migrations_dir), "migrations", 0, 0, NULL, false},
	{"FEEGATE_VNPAY_TMN_CODE", CFG_STR, F(vnpay_tmn_code), NULL, 0, 0, NULL, false},
	{"FEEGATE_VNPAY_HASH_SECRET", CFG_STR, F(vnpay_hash_secret), NULL, 0, 0, NULL, true},
	{"FEEGATE_VNPAY_URL", CFG_STR, F(vnpay_url), NULL, 0, 0, NULL, false},
	{"FEEGATE_MOMO_PARTNER_CODE", CFG_STR, F(momo_partner_code), NULL, 0, 0, NULL, false},
	{"FEEGATE_MOMO_ACCESS_KEY", CFG_STR, F(momo_access_key), NULL, 0, 0, NULL, true},
	{"FEEGATE_MOMO_SECRET_KEY", CFG_STR, F(momo_secret_key), NULL, 0, 0, NULL, true},
	{"FEEGATE_MOMO_URL", CFG_STR, F(momo_url), NULL, 0, 0, NULL, false},
	{"FEEGATE_VIETQR_WEBHOOK_SECRET", CFG_STR, F(vietqr_webhook_secret), NULL, 0, 0, NULL, true},
	{"BANKSIM_URL", CFG_STR, F(banksim_url), NULL, 0, 0, NULL, false},
	{"FEEGATE_BANK_TIMEOUT_MS", CFG_INT, F(bank_timeout_ms), "5000", 100, 120000, NULL, false},
	{"FEEGATE_BREAKER_FAILURES", CFG_INT, F(breaker_failures), "3", 1, 1000, NULL, false},
	{"FEEGATE_BREAKER_COOLDOWN_MS", CFG_INT, F(breaker_cooldown_ms), "5000", 100, 3600000, NULL, false},
	{"FEEGATE_SWEEP_INTERVAL_MS", CFG_INT, F(sweep_interval_ms), "1000", 100, 600000, NULL, false},
	{"FEEGATE_QUERY_AFTER_S", CFG_INT, F(query_after_s), "60", 1, 86400, NULL, false},
	{"FEEGATE_QUERY_GRACE_S", CFG_INT, F(query_grace_s), "900", 0, 86400, NULL, false},
	{"FEEGATE_WEBHOOK_BACKOFF_MS", CFG_INT, F(webhook_backoff_ms), "1000", 10, 3600000, NULL, false},
	{"FEEGATE_WEBHOOK_MAX_AGE_S", CFG_INT, F(webhook_max_age_s), "90000", 1, 2592000, NULL, false},
	{"FEEGATE_WEBHOOK_TIMEOUT_MS", CFG_INT, F(webhook_timeout_ms), "5000", 100, 120000, NULL, false},
	{"FEEGATE_WEBHOOK_CONCURRENCY", CFG_INT, F(webhook_concurrency), "100", 1, 10000, NULL, false},
	{"FEEGATE_WEBHOOK_PER_PORTAL", CFG_INT, F(webhook_per_portal), "32", 1, 10000, NULL, false},
	/* HTTP edge */
	{"FEEGATE_HTTP_HEAD_TIMEOUT_MS", CFG_INT, F(http_head_timeout_ms), "5000", 100, 120000, NULL, false},
	{"FEEGATE_HTTP_BODY_MIN_RATE", CFG_INT, F(http_body_min_rate), "1024", 1, 1073741824, NULL, false},
	{"FEEGATE_MAX_CONNECTIONS", CFG_INT, F(max_connections), "16384", 1, 1000000, NULL, false},
	{"FEEGATE_TLS_PORT", CFG_INT, F(tls_port), "0", 0, 65535, NULL, false},
	{"FEEGATE_TLS_CERT", CFG_STR, F(tls_cert), NULL, 0, 0, NULL, false},
	{"FEEGATE_TLS_KEY", CFG_STR, F(tls_key), NULL, 0, 0, NULL, false},
	{"FEEGATE_TEST_SINK", CFG_INT, F(test_sink), "0", 0, 1, NULL, false},
	{"FEEGATE_RECEIPT_KEY", CFG_STR, F(receipt_key), NULL, 0, 0, NULL, false},
	{"FEEGATE_RECEIPT_INTERVAL_MS", CFG_INT, F(receipt_interval_ms), "500", 20, 60000, NULL, false},
};
#undef F

static char *file_values[ARRAY_LEN(table)];

static const char *real_env(const char *name)
{
	return getenv(name);
}

static bool set_value(const struct cfg_entry *e, const char *val, char *err, size_t errlen)
{
	void *dst = (char *)&cfg + e->offset;
	switch (e->type) {
	case CFG_INT: {
		char *end;
		errno = 0;
		long v = strtol(val, &end, 10);
		if (*val == '\0' || *end != '\0' || errno) {
			snprintf(err, errlen, "%s: not an integer: \"%.40s\"", e->name, val);
			return false;
		}
		if (v < e->min || v > e->max) {
			snprintf(err, errlen, "%s: %ld is out of range %ld..%ld", e->name, v, e->min, e->max);
			return false;
		}
		*(int *)dst = (int)v;
		return true;
	}
	case CFG_URL:
		if (*val && strstr(val, "://") == NULL) {
			snprintf(err, errlen, "%s: not a URL (scheme://host...)", e->name);
			return false;
		}
		break;
	case CFG_ENUM: {
		size_t n = strlen(val);
		const char *c = e->choices;
		bool ok = false;
		while (*c) {
			const char *comma = strchr(c, ',');
			size_t len = comma ? (size_t)(comma - c) : strlen(c);
			if (len == n && strncmp(c, val, n) == 0)
				ok = true;
			c += len + (comma ? 1 : 0);
		}
		if (!ok) {
			snprintf(err, errlen, "%s: \"%.40s\" is not one of %s", e->name, val, e->choices);
			return false;
		}
		break;
	}
	case CFG_STR:
		break;
	}
	char **sp = dst;
	free(*sp);
	*sp = xstrdup(val);
	return true;
}

static bool read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "FEEGATE_CONFIG: cannot open %s: %s", path, strerror(errno));
		return false;
	}
	char line[4096];
	int lineno = 0;
	bool ok = true;
	while (ok && fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\0')
			continue;
		char *eq = strchr(p, '=');
		if (!eq) {
			snprintf(err, errlen, "FEEGATE_CONFIG: %s line %d: expected NAME=value", path, lineno);
			ok = false;
			break;
		}
		*eq = '\0';
		size_t i;
		for (i = 0; i < ARRAY_LEN(table); i++) {
			if (strcmp(table[i].name, p) == 0)
				break;
		}
		if (i == ARRAY_LEN(table)) {
			snprintf(err, errlen, "FEEGATE_CONFIG: %s line %d: unknown setting %.60s", path, lineno, p);
			ok = false;
			break;
		}
		free(file_values[i]);
		file_values[i] = xstrdup(eq + 1);
	}
	fclose(f);
	return ok;
}

bool config_load_from(const char *(*env_lookup)(const char *name), char *err, size_t errlen)
{
	const char *path = env_lookup("FEEGATE_CONFIG");
	if (path && *path && !read_file(path, err, errlen))
		return false;
	for (size_t i = 0; i < ARRAY_LEN(table); i++) {
		const struct cfg_entry *e = &table[i];
		const char *v = env_lookup(e->name);
		if (!v)
			v = file_values[i];
		if (!v)
			v = e->def ? e->def : "";
		if (!set_value(e, v, err, errlen))
			return false;
	}
	if (!*cfg.public_url) {
		/* FEEGATE_URL (as .run/env has it) is where clients reach us */
		const char *url = env_lookup("FEEGATE_URL");
		free(cfg.public_url);
		cfg.public_url = url && *url ? xstrdup(url) : xasprintf("http://127.0.0.1:%d", cfg.port);
	}
	size_t n = strlen(cfg.public_url);
	if (n && cfg.public_url[n - 1] == '/')
		cfg.public_url[n - 1] = '\0';
	if (!util_is_http_url(cfg.public_url)) {
		snprintf(err, errlen, "FEEGATE_PUBLIC_URL: must be an absolute http(s) URL");
		return false;
	}
	if (!*cfg.vnpay_url && *cfg.banksim_url) {
		free(cfg.vnpay_url);
		cfg.vnpay_url = xstrdup(cfg.banksim_url);
	}
	if (!*cfg.momo_url && *cfg.banksim_url) {
		free(cfg.momo_url);
		cfg.momo_url = xstrdup(cfg.banksim_url);
	}
	return true;
}

bool config_load(char *err, size_t errlen)
{
	return config_load_from(real_env, err, errlen);
}

const char *config_string(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(table); i++) {
		if (strcmp(table[i].name, name) == 0 && table[i].type != CFG_INT)
			return *(char *const *)((const char *)&cfg + table[i].offset);
	}
	return NULL;
}

void config_dump(void (*line)(const char *text, void *arg), void *arg)
{
	char buf[512];
	for (size_t i = 0; i < ARRAY_LEN(table); i++) {
		const struct cfg_entry *e = &table[i];
		const void *src = (const char *)&cfg + e->offset;
		if (e->type == CFG_INT)
			snprintf(buf, sizeof buf, "%s=%d", e->name, *(const int *)src);
		else if (e->secret)
			snprintf(buf, sizeof buf, "%s=%s", e->name, **(char *const *)src ? "(set)" : "");
		else
			snprintf(buf, sizeof buf, "%s=%s", e->name, *(char *const *)src);
		line(buf, arg);
	}
}

int cfg_webhook_lease_s(void)
{
	return cfg.webhook_timeout_ms / 1000 + 30;
}
