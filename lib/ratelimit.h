#ifndef FEEGATE_RATELIMIT_H
#define FEEGATE_RATELIMIT_H
/*
 * Request budgets per client, one budget shared by every worker and every gateway on the same
 * Redis: a sliding-window counter (this window's count plus the previous window's, weighted
 * by how much of it still lies inside the window) read and bumped by one script, on Redis'
 * own clock so that gateways with different clocks count the same windows. Only accepted
 * requests are counted.
 *
 * A request waits for Redis at most wait_ms. When Redis is disconnected, slow or answers an
 * error, the caller's local token bucket decides instead (its share of the budget: rps/shares
 * a second, a window's worth of burst), and Redis is left alone for fallback_ms. So the limit
 * never opens to unlimited, and no request fails because Redis is away. The local buckets are
 * debited on every request Redis allows too, so a fallback does not start with a free burst.
 */
#include <stdbool.h>
#include <stdint.h>

#include "lib/util.h"

struct event_base;
struct redis;

struct ratelimit_config {
	int rps;         /* budget per client a second; 0: no limit */
	int window_s;    /* the window; a client's budget per window is rps * window_s */
	int shares;      /* local buckets that split one budget between them (the workers) */
	bool shared;     /* counted in Redis; false: local buckets only */
	int wait_ms;     /* longest wait for Redis before the local bucket decides */
	int fallback_ms; /* after a Redis failure: local buckets alone for this long */
};

/* A client's local bucket, kept in the caller's per-client state; all zero is full. */
struct rl_bucket {
	double tokens;
	int64_t refilled_us;
};

/* allowed, or refused with the whole seconds after which a retry may pass (>= 1). */
typedef void (*ratelimit_fn)(void *arg, bool allowed, int retry_after_s);

struct ratelimit;
/* c is copied. redis may be NULL (local buckets only). */
struct ratelimit *ratelimit_new(struct event_base *base, struct redis *redis, const struct ratelimit_config *c);
/* After redis_free: answers still owed by Redis refer to nothing of rl by then. */
void ratelimit_free(struct ratelimit *rl);
/* Decides one request of client key (a short printable id). fn is called exactly once, maybe
 * before this returns; b must live until then, and is not touched afterwards. */
void ratelimit_check(struct ratelimit *rl, const char *key, struct rl_bucket *b, ratelimit_fn fn, void *arg);

/* The local bucket's decision at now_us (monotonic); exposed for the unit tests. */
bool ratelimit_local(const struct ratelimit_config *c, struct rl_bucket *b, int64_t now_us,
		     int *retry_after_s) WARN_UNUSED;

#endif
