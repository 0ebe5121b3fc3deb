#ifndef FEEGATE_CONFIG_H
#define FEEGATE_CONFIG_H
/*
 * All settings in one table (config.c): name, type, default, bounds, whether it is a secret.
 * Modules with settings of their own (the banks: gateway/banks.c, from each adapter's
 * declaration) add rows of the same shape with config_register before the load; nothing here
 * names them. Values come from an optional file named by FEEGATE_CONFIG (KEY=value lines) and
 * then from the environment, which wins. A bad value stops start-up with its name and the reason.
 */
#include <stdbool.h>

#include "lib/util.h"

struct config {
	char *listen_addr;
	int port;
	int workers;
	char *public_url; /* base of checkout_url; derived from the port when empty */
	char *database_url;
	char *redis_url;
	int db_pool_size;
	int db_timeout_ms;
	int db_connect_timeout_ms;
	int idempotency_wait_ms;
	int redis_timeout_ms;
	int max_body_bytes;
	int max_statement_bytes; /* imported bank files and statements */
	int max_json_depth;
	int batch_window_us;
	int batch_max;
	int batch_inflight;
	int http_idle_timeout_s;
	int shutdown_timeout_ms;
	int auth_cache_ttl_s;
	int rate_limit_rps;         /* per client: budget a second, shared through Redis (lib/ratelimit.h) */
	int rate_limit_window_s;    /* the counting window; budget per window = rps * window */
	char *rate_limit_store;     /* "redis" (one budget for every worker and gateway) or "local" */
	int rate_limit_wait_ms;     /* longest wait for Redis before the worker's own bucket decides */
	int rate_limit_fallback_ms; /* after Redis failed, the workers' buckets decide alone this long */
	char *log_level;
	char *migrations_dir;
	char *banksim_url; /* every bank's URL when its own is not set */
	int bank_timeout_ms;
	int breaker_failures;
	int breaker_cooldown_ms;
	int sweep_interval_ms;
	int query_after_s;
	int query_grace_s;
	int webhook_backoff_ms;
	int webhook_max_age_s;
	int webhook_timeout_ms;
	int webhook_concurrency;
	int webhook_per_portal;
	/* HTTP edge */
	int http_head_timeout_ms;
	int http_body_min_rate;
	int max_connections;
	int tls_port; /* 0: no TLS listener */
	char *tls_cert;
	char *tls_key;
	int test_sink; /* 1: POST /v1/_test/sink streams and counts a body (tests only) */
	int session_idle_s;      /* a console session ends after this long without a request */
	int session_max_s;       /* and this long after sign-in, whatever happens */
	int login_rate_per_ip;   /* sign-in attempts per minute from one address */
	int login_rate_per_account; /* sign-in attempts per minute for one e-mail */
	int hash_threads;        /* password-hashing threads per worker */
	int password_log_n;      /* scrypt cost of new password hashes: N = 2^this */
	int refund_approval_vnd; /* refunds above this wait for a second finance member */
	char *receipt_key;         /* Ed25519 private key (PEM) that signs receipts; none: receipts wait unsigned */
	int receipt_interval_ms;   /* the numberer's tick (worker 0) */
	/* several gateways (docs/ha.md) */
	char *node_name;      /* this gateway in logs and /readyz; the host name when unset */
	int duty_lock_id;     /* the advisory lock whose holder runs the sweeper and the relay */
	int duty_retry_ms;    /* how often the lock is tried, and its holder's connection checked */
	char *replica_url;    /* a hot standby the reports read from; empty: the primary */
	int replica_max_lag_s; /* a replica further behind than this is not read */
	char *redis_sentinels; /* "host:port,host:port": the master comes from them, not REDIS_URL's host */
	char *redis_master_name;
};

extern struct config cfg;

enum config_type { CONFIG_INT, CONFIG_STR, CONFIG_URL, CONFIG_ENUM };

/* One row of the settings table. */
struct config_setting {
	const char *name;
	enum config_type type;
	void *value;         /* int * for CONFIG_INT, else char ** (malloc'ed, "" when unset) */
	const char *def;     /* NULL: empty */
	long min, max;       /* CONFIG_INT bounds */
	const char *choices; /* CONFIG_ENUM: comma-separated */
	bool secret;         /* masked by config_dump */
	const char *fallback; /* a string setting whose value this one takes when it is empty */
};

/* Adds a module's setting, kept by pointer; before config_load. False when the name is taken or
 * the registry is full. */
bool config_register(const struct config_setting *s) WARN_UNUSED;
/* Loads defaults, the file and the environment into cfg. On failure writes "NAME: reason" to
 * err and returns false. */
bool config_load(char *err, size_t errlen) WARN_UNUSED;
/* Like config_load but from explicit sources, for tests: env_lookup returns NULL when unset. */
bool config_load_from(const char *(*env_lookup)(const char *name), char *err, size_t errlen) WARN_UNUSED;
/* The value of a string setting by name ("" when unset), or NULL for an unknown name. */
const char *config_string(const char *name);
/* How long a worker holds the webhook rows it claims or is handed, in seconds: as long as one
 * delivery can take (the call's timeout) and time to save its answer. */
int cfg_webhook_lease_s(void);
/* Parses "host:port" (a bracketed IPv6 host allowed); false when it is not one. */
bool config_parse_host_port(const char *s, size_t len, char *host, size_t hostcap, int *port) WARN_UNUSED;
/* Writes the effective settings as "NAME=value" lines, secrets masked. */
void config_dump(void (*line)(const char *text, void *arg), void *arg);

#endif
