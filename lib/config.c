#include "lib/config.h"

#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/mem.h"

struct config cfg;

/* The gateway's own settings; the other modules' are registered (config_register). */
static const struct config_setting table[] = {
	{"FEEGATE_LISTEN", CONFIG_STR, &cfg.listen_addr, "127.0.0.1", 0, 0, NULL, false, NULL},
	{"FEEGATE_PORT", CONFIG_INT, &cfg.port, "8080", 1, 65535, NULL, false, NULL},
	{"FEEGATE_WORKERS", CONFIG_INT, &cfg.workers, "2", 1, 64, NULL, false, NULL},
	{"FEEGATE_PUBLIC_URL", CONFIG_STR, &cfg.public_url, NULL, 0, 0, NULL, false, NULL},
	{"DATABASE_URL", CONFIG_STR, &cfg.database_url, NULL, 0, 0, NULL, true, NULL},
	{"REDIS_URL", CONFIG_URL, &cfg.redis_url, "redis://127.0.0.1:6379/0", 0, 0, NULL, true, NULL},
	{"FEEGATE_DB_POOL_SIZE", CONFIG_INT, &cfg.db_pool_size, "4", 1, 64, NULL, false, NULL},
	{"FEEGATE_DB_TIMEOUT_MS", CONFIG_INT, &cfg.db_timeout_ms, "3000", 50, 120000, NULL, false, NULL},
	{"FEEGATE_DB_CONNECT_TIMEOUT_MS", CONFIG_INT, &cfg.db_connect_timeout_ms, "2000", 50, 60000, NULL, false, NULL},
	{"FEEGATE_IDEMPOTENCY_WAIT_MS", CONFIG_INT, &cfg.idempotency_wait_ms, "10000", 100, 60000, NULL, false, NULL},
	{"FEEGATE_REDIS_TIMEOUT_MS", CONFIG_INT, &cfg.redis_timeout_ms, "200", 10, 10000, NULL, false, NULL},
	{"FEEGATE_MAX_BODY_BYTES", CONFIG_INT, &cfg.max_body_bytes, "1048576", 1024, 67108864, NULL, false, NULL},
	{"FEEGATE_MAX_STATEMENT_BYTES", CONFIG_INT, &cfg.max_statement_bytes, "268435456", 1024, 2147483647, NULL, false, NULL},
	{"FEEGATE_MAX_JSON_DEPTH", CONFIG_INT, &cfg.max_json_depth, "32", 2, 256, NULL, false, NULL},
	{"FEEGATE_BATCH_WINDOW_US", CONFIG_INT, &cfg.batch_window_us, "1000", 0, 100000, NULL, false, NULL},
	{"FEEGATE_BATCH_MAX", CONFIG_INT, &cfg.batch_max, "256", 1, 5000, NULL, false, NULL},
	{"FEEGATE_BATCH_INFLIGHT", CONFIG_INT, &cfg.batch_inflight, "2", 1, 64, NULL, false, NULL},
	{"FEEGATE_HTTP_IDLE_TIMEOUT_S", CONFIG_INT, &cfg.http_idle_timeout_s, "60", 1, 3600, NULL, false, NULL},
	{"FEEGATE_SHUTDOWN_TIMEOUT_MS", CONFIG_INT, &cfg.shutdown_timeout_ms, "15000", 100, 600000, NULL, false, NULL},
	{"FEEGATE_AUTH_CACHE_TTL_S", CONFIG_INT, &cfg.auth_cache_ttl_s, "30", 0, 3600, NULL, false, NULL},
	{"FEEGATE_RATE_LIMIT_RPS", CONFIG_INT, &cfg.rate_limit_rps, "2000", 0, 10000000, NULL, false, NULL},
	{"FEEGATE_RATE_LIMIT_WINDOW_S", CONFIG_INT, &cfg.rate_limit_window_s, "1", 1, 3600, NULL, false, NULL},
	{"FEEGATE_RATE_LIMIT_STORE", CONFIG_ENUM, &cfg.rate_limit_store, "redis", 0, 0, "redis,local", false, NULL},
	{"FEEGATE_RATE_LIMIT_WAIT_MS", CONFIG_INT, &cfg.rate_limit_wait_ms, "50", 1, 10000, NULL, false, NULL},
	{"FEEGATE_RATE_LIMIT_FALLBACK_MS", CONFIG_INT, &cfg.rate_limit_fallback_ms, "2000", 10, 600000, NULL, false, NULL},
	{"FEEGATE_SESSION_IDLE_S", CONFIG_INT, &cfg.session_idle_s, "1800", 1, 86400, NULL, false, NULL},
	{"FEEGATE_SESSION_MAX_S", CONFIG_INT, &cfg.session_max_s, "28800", 10, 604800, NULL, false, NULL},
	{"FEEGATE_LOGIN_RATE_PER_IP", CONFIG_INT, &cfg.login_rate_per_ip, "120", 1, 100000, NULL, false, NULL},
	{"FEEGATE_LOGIN_RATE_PER_ACCOUNT", CONFIG_INT, &cfg.login_rate_per_account, "10", 1, 100000, NULL, false, NULL},
	{"FEEGATE_HASH_THREADS", CONFIG_INT, &cfg.hash_threads, "2", 1, 16, NULL, false, NULL},
	{"FEEGATE_PASSWORD_LOG_N", CONFIG_INT, &cfg.password_log_n, "15", 10, 20, NULL, false, NULL},
	{"FEEGATE_REFUND_APPROVAL_VND", CONFIG_INT, &cfg.refund_approval_vnd, "50000000", 1, 2000000000, NULL, false, NULL},
	{"FEEGATE_LOG_LEVEL", CONFIG_ENUM, &cfg.log_level, "info", 0, 0, "debug,info,warn,error", false, NULL},
	{"FEEGATE_MIGRATIONS", CONFIG_STR, &cfg.migrations_dir, "migrations", 0, 0, NULL, false, NULL},
	{"BANKSIM_URL", CONFIG_STR, &cfg.banksim_url, NULL, 0, 0, NULL, false, NULL},
	{"FEEGATE_BANK_TIMEOUT_MS", CONFIG_INT, &cfg.bank_timeout_ms, "5000", 100, 120000, NULL, false, NULL},
	{"FEEGATE_BREAKER_FAILURES", CONFIG_INT, &cfg.breaker_failures, "3", 1, 1000, NULL, false, NULL},
	{"FEEGATE_BREAKER_COOLDOWN_MS", CONFIG_INT, &cfg.breaker_cooldown_ms, "5000", 100, 3600000, NULL, false, NULL},
	{"FEEGATE_SWEEP_INTERVAL_MS", CONFIG_INT, &cfg.sweep_interval_ms, "1000", 100, 600000, NULL, false, NULL},
	{"FEEGATE_QUERY_AFTER_S", CONFIG_INT, &cfg.query_after_s, "60", 1, 86400, NULL, false, NULL},
	{"FEEGATE_QUERY_GRACE_S", CONFIG_INT, &cfg.query_grace_s, "900", 0, 86400, NULL, false, NULL},
	{"FEEGATE_WEBHOOK_BACKOFF_MS", CONFIG_INT, &cfg.webhook_backoff_ms, "1000", 10, 3600000, NULL, false, NULL},
	{"FEEGATE_WEBHOOK_MAX_AGE_S", CONFIG_INT, &cfg.webhook_max_age_s, "90000", 1, 2592000, NULL, false, NULL},
	{"FEEGATE_WEBHOOK_TIMEOUT_MS", CONFIG_INT, &cfg.webhook_timeout_ms, "5000", 100, 120000, NULL, false, NULL},
	{"FEEGATE_WEBHOOK_CONCURRENCY", CONFIG_INT, &cfg.webhook_concurrency, "100", 1, 10000, NULL, false, NULL},
	{"FEEGATE_WEBHOOK_PER_PORTAL", CONFIG_INT, &cfg.webhook_per_portal, "32", 1, 10000, NULL, false, NULL},
	/* HTTP edge */
	{"FEEGATE_HTTP_HEAD_TIMEOUT_MS", CONFIG_INT, &cfg.http_head_timeout_ms, "5000", 100, 120000, NULL, false, NULL},
	{"FEEGATE_HTTP_BODY_MIN_RATE", CONFIG_INT, &cfg.http_body_min_rate, "1024", 1, 1073741824, NULL, false, NULL},
	{"FEEGATE_MAX_CONNECTIONS", CONFIG_INT, &cfg.max_connections, "16384", 1, 1000000, NULL, false, NULL},
	{"FEEGATE_TLS_PORT", CONFIG_INT, &cfg.tls_port, "0", 0, 65535, NULL, false, NULL},
	{"FEEGATE_TLS_CERT", CONFIG_STR, &cfg.tls_cert, NULL, 0, 0, NULL, false, NULL},
	{"FEEGATE_TLS_KEY", CONFIG_STR, &cfg.tls_key, NULL, 0, 0, NULL, false, NULL},
	{"FEEGATE_TEST_SINK", CONFIG_INT, &cfg.test_sink, "0", 0, 1, NULL, false, NULL},
	{"FEEGATE_RECEIPT_KEY", CONFIG_STR, &cfg.receipt_key, NULL, 0, 0, NULL, false, NULL},
	{"FEEGATE_RECEIPT_INTERVAL_MS", CONFIG_INT, &cfg.receipt_interval_ms, "500", 20, 60000, NULL, false, NULL},
	/* several gateways */
	{"FEEGATE_NODE_NAME", CONFIG_STR, &cfg.node_name, NULL, 0, 0, NULL, false, NULL},
	{"FEEGATE_DUTY_LOCK_ID", CONFIG_INT, &cfg.duty_lock_id, "48515", 1, 2147483647, NULL, false, NULL},
	{"FEEGATE_DUTY_RETRY_MS", CONFIG_INT, &cfg.duty_retry_ms, "1000", 100, 30000, NULL, false, NULL},
	{"FEEGATE_REPLICA_URL", CONFIG_STR, &cfg.replica_url, NULL, 0, 0, NULL, true, NULL},
	{"FEEGATE_REPLICA_MAX_LAG_S", CONFIG_INT, &cfg.replica_max_lag_s, "30", 0, 86400, NULL, false, NULL},
	{"FEEGATE_REDIS_SENTINELS", CONFIG_STR, &cfg.redis_sentinels, NULL, 0, 0, NULL, false, NULL},
	{"FEEGATE_REDIS_MASTER_NAME", CONFIG_STR, &cfg.redis_master_name, "feegate", 0, 0, NULL, false, NULL},
};

#define MAX_REGISTERED 64
#define MAX_SETTINGS (ARRAY_LEN(table) + MAX_REGISTERED)

static const struct config_setting *registered[MAX_REGISTERED];
static size_t nregistered;
static char *file_values[MAX_SETTINGS];

static size_t setting_count(void)
{
	return ARRAY_LEN(table) + nregistered;
}

static const struct config_setting *setting_at(size_t i)
{
	return i < ARRAY_LEN(table) ? &table[i] : registered[i - ARRAY_LEN(table)];
}

static const struct config_setting *setting_named(const char *name)
{
	for (size_t i = 0; i < setting_count(); i++) {
		if (strcmp(setting_at(i)->name, name) == 0)
			return setting_at(i);
	}
	return NULL;
}

bool config_register(const struct config_setting *s)
{
	if (nregistered == MAX_REGISTERED || setting_named(s->name))
		return false;
	registered[nregistered++] = s;
	return true;
}

static const char *real_env(const char *name)
{
	return getenv(name);
}

static bool set_value(const struct config_setting *e, const char *val, char *err, size_t errlen)
{
	void *dst = e->value;
	switch (e->type) {
	case CONFIG_INT: {
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
	case CONFIG_URL:
		if (*val && strstr(val, "://") == NULL) {
			snprintf(err, errlen, "%s: not a URL (scheme://host...)", e->name);
			return false;
		}
		break;
	case CONFIG_ENUM: {
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
	case CONFIG_STR:
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
		for (i = 0; i < setting_count(); i++) {
			if (strcmp(setting_at(i)->name, p) == 0)
				break;
		}
		if (i == setting_count()) {
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

bool config_parse_host_port(const char *s, size_t len, char *host, size_t hostcap, int *port)
{
	const char *colon = NULL;
	const char *h = s;
	size_t hlen;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close || (size_t)(close - s) + 1 >= len || close[1] != ':')
			return false;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		for (size_t i = 0; i < len; i++)
			if (s[i] == ':')
				colon = s + i;
		if (!colon)
			return false;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= hostcap)
		return false;
	for (size_t i = 0; i < hlen; i++)
		if (h[i] == ' ' || h[i] == '/' || h[i] == '@' || (h[i] == ':' && s[0] != '['))
			return false;
	const char *p = colon + 1;
	size_t plen = len - (size_t)(p - s);
	if (plen == 0 || plen > 5)
		return false;
	int v = 0;
	for (size_t i = 0; i < plen; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > 65535)
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = v;
	return true;
}

/* libpq's own parser, so a URI it would refuse stops start-up rather than every connect; its
 * message names the fault, never the password. */
static bool check_libpq_url(const char *name, const char *url, char *err, size_t errlen)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &msg);
	if (!opts) {
		size_t n = msg ? strcspn(msg, "\n") : 0;
		snprintf(err, errlen, "%s: not a valid libpq URI or connection string: %.*s", name, (int)n,
			 msg ? msg : "out of memory");
		PQfreemem(msg);
		return false;
	}
	/* libpq checks the ports of a multi-host list only when it connects: a start-up error is
	 * clearer than a pool that never connects */
	int hosts = 1, ports = 1;
	const char *bad = NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) {
			int n = 1;
			for (const char *c = o->val; *c; c++)
				n += *c == ',';
			hosts = n > hosts ? n : hosts;
		} else if (strcmp(o->keyword, "port") == 0) {
			ports = 1;
			const char *c = o->val;
			while (!bad) {
				size_t len = strcspn(c, ",");
				long v = 0;
				for (size_t i = 0; i < len && !bad; i++) {
					if (c[i] < '0' || c[i] > '9' || v > 65535)
						bad = "a port is not a number 1-65535";
					v = v * 10 + (c[i] - '0');
				}
				if (len && (v < 1 || v > 65535))
					bad = "a port is not a number 1-65535";
				if (!c[len])
					break;
				c += len + 1;
				ports++;
			}
		}
	}
	PQconninfoFree(opts);
	if (!bad && ports > 1 && ports != hosts)
		bad = "as many ports as hosts, or one port for all";
	if (bad) {
		snprintf(err, errlen, "%s: not a valid libpq URI or connection string: %s", name, bad);
		return false;
	}
	return true;
}

static bool check_ha_settings(char *err, size_t errlen)
{
	if (*cfg.database_url && !check_libpq_url("DATABASE_URL", cfg.database_url, err, errlen))
		return false;
	if (*cfg.replica_url && !check_libpq_url("FEEGATE_REPLICA_URL", cfg.replica_url, err, errlen))
		return false;
	const char *s = cfg.redis_sentinels;
	int n = 0;
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		char host[256];
		int port;
		if (!config_parse_host_port(s, len, host, sizeof host, &port)) {
			snprintf(err, errlen, "FEEGATE_REDIS_SENTINELS: \"%.*s\" is not host:port (a comma-separated list)",
				 (int)(len > 60 ? 60 : len), s);
			return false;
		}
		if (++n > 16) {
			snprintf(err, errlen, "FEEGATE_REDIS_SENTINELS: at most 16 sentinels");
			return false;
		}
		s += len + (comma ? 1 : 0);
		if (comma && !*s) {
			snprintf(err, errlen, "FEEGATE_REDIS_SENTINELS: ends with a comma");
			return false;
		}
	}
	if (n && !*cfg.redis_master_name) {
		snprintf(err, errlen, "FEEGATE_REDIS_MASTER_NAME: empty, but sentinels are set");
		return false;
	}
	for (const char *c = cfg.redis_master_name; *c; c++) {
		if (*c <= ' ' || *c > '~') {
			snprintf(err, errlen, "FEEGATE_REDIS_MASTER_NAME: only printable ASCII without spaces");
			return false;
		}
	}
	if (!*cfg.node_name) {
		char host[256] = "";
		if (gethostname(host, sizeof host - 1) != 0 || !*host)
			snprintf(host, sizeof host, "feegate");
		free(cfg.node_name);
		cfg.node_name = xstrdup(host);
	}
	for (const char *c = cfg.node_name; *c; c++) {
		if (*c < ' ' || *c == '"' || *c == '\\' || c - cfg.node_name > 63) {
			snprintf(err, errlen, "FEEGATE_NODE_NAME: at most 64 printable characters, no quotes");
			return false;
		}
	}
	return true;
}

bool config_load_from(const char *(*env_lookup)(const char *name), char *err, size_t errlen)
{
	const char *path = env_lookup("FEEGATE_CONFIG");
	if (path && *path && !read_file(path, err, errlen))
		return false;
	for (size_t i = 0; i < setting_count(); i++) {
		const struct config_setting *e = setting_at(i);
		const char *v = env_lookup(e->name);
		if (!v)
			v = file_values[i];
		if (!v)
			v = e->def ? e->def : "";
		if (!set_value(e, v, err, errlen))
			return false;
	}
	/* after every value is read, so a fallback may name any setting (not one with a fallback) */
	for (size_t i = 0; i < setting_count(); i++) {
		const struct config_setting *e = setting_at(i);
		const struct config_setting *from = e->fallback ? setting_named(e->fallback) : NULL;
		char **sp = e->value;
		if (from && e->type != CONFIG_INT && from->type != CONFIG_INT && !**sp) {
			free(*sp);
			*sp = xstrdup(*(char **)from->value);
		}
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
	return check_ha_settings(err, errlen);
}

bool config_load(char *err, size_t errlen)
{
	return config_load_from(real_env, err, errlen);
}

const char *config_string(const char *name)
{
	const struct config_setting *e = setting_named(name);
	return e && e->type != CONFIG_INT ? *(char *const *)e->value : NULL;
}

void config_dump(void (*line)(const char *text, void *arg), void *arg)
{
	char buf[512];
	for (size_t i = 0; i < setting_count(); i++) {
		const struct config_setting *e = setting_at(i);
		const void *src = e->value;
		if (e->type == CONFIG_INT)
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
