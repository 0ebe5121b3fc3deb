#include "lib/ratelimit.h"

#include <event2/event.h>
#include <math.h>
#include <stdlib.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"
#include "lib/redis.h"

struct ratelimit {
	struct event_base *base;
	struct redis *redis;
	struct ratelimit_config c;
	int64_t local_until_us; /* Redis failed: local buckets alone until then */
	metric_id refused_redis, refused_local, fallbacks;
};

/* One request waiting for Redis. Redis answers every command exactly once (redis.h), so the
 * op is freed in that answer; when the wait ran out first, the local bucket has decided and
 * the answer only frees it. */
struct rl_op {
	struct ratelimit *rl;
	struct rl_bucket *bucket;
	ratelimit_fn fn;
	void *arg;
	struct event *timer;
	bool decided;
};

/* KEYS[1] the client's prefix, ARGV[1] the budget per window, ARGV[2] the window in ms.
 * Returns {1, 0} when allowed (and counted), {0, ms until a retry may pass} when not. The
 * window keys are derived here from Redis' TIME, so every gateway counts the same windows
 * whatever its own clock says (the keys are not declared: this is one Redis, not a cluster). */
static const char window_script[] =
	"local t = redis.call('TIME') "
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
	"local limit, w = tonumber(ARGV[1]), tonumber(ARGV[2]) "
	"local cur = math.floor(now / w) "
	"local into = now - cur * w "
	"local kc = KEYS[1] .. ':' .. cur "
	"local n = tonumber(redis.call('GET', kc) or '0') "
	"local p = tonumber(redis.call('GET', KEYS[1] .. ':' .. (cur - 1)) or '0') "
	"if p * (w - into) / w + n + 1 <= limit then "
	"  redis.call('INCR', kc) "
	"  redis.call('PEXPIRE', kc, 2 * w) "
	"  return {1, 0} "
	"end "
	"if n + 1 > limit then "
	"  return {0, w - into + math.ceil(w * (1 - (limit - 1) / n))} "
	"end "
	"return {0, math.ceil(w * (1 - (limit - 1 - n) / p)) - into}";

static double local_rate(const struct ratelimit_config *c)
{
	return (double)c->rps / (c->shares > 0 ? c->shares : 1);
}

static void refill(const struct ratelimit_config *c, struct rl_bucket *b, int64_t now_us)
{
	double rate = local_rate(c), cap = rate * c->window_s;
	if (b->refilled_us == 0)
		b->tokens = cap;
	else
		b->tokens += rate * (double)(now_us - b->refilled_us) / 1e6;
	if (b->tokens > cap)
		b->tokens = cap;
	b->refilled_us = now_us;
}

bool ratelimit_local(const struct ratelimit_config *c, struct rl_bucket *b, int64_t now_us, int *retry_after_s)
{
	refill(c, b, now_us);
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		*retry_after_s = 0;
		return true;
	}
	double s = ceil((1.0 - b->tokens) / local_rate(c));
	*retry_after_s = s < 1 ? 1 : s > 86400 ? 86400 : (int)s;
	return false;
}

/* Redis allowed it: the local bucket pays too, never below empty, so it knows the recent
 * rate when it has to take over. */
static void debit(const struct ratelimit_config *c, struct rl_bucket *b)
{
	refill(c, b, util_monotonic_us());
	b->tokens = b->tokens >= 1.0 ? b->tokens - 1.0 : 0.0;
}

static void decide_locally(struct ratelimit *rl, struct rl_bucket *b, ratelimit_fn fn, void *arg)
{
	int retry;
	bool ok = ratelimit_local(&rl->c, b, util_monotonic_us(), &retry);
	if (!ok)
		metrics_add(rl->refused_local, 1);
	fn(arg, ok, retry);
}

static void fall_back(struct ratelimit *rl, const char *why)
{
	int64_t now = util_monotonic_us();
	if (rl->local_until_us <= now) {
		log_warn(NULL, "rate limits: %s; local buckets decide for %d ms", why, rl->c.fallback_ms);
		metrics_add(rl->fallbacks, 1);
	}
	rl->local_until_us = now + (int64_t)rl->c.fallback_ms * 1000;
}

static void op_free(struct rl_op *op)
{
	event_free(op->timer);
	free(op);
}

static void op_waited(evutil_socket_t fd, short what, void *arg)
{
	struct rl_op *op = arg;
	op->decided = true;
	fall_back(op->rl, "Redis did not answer in time");
	decide_locally(op->rl, op->bucket, op->fn, op->arg);
	/* the op stays until Redis answers or the connection drops */
}

static void op_answered(void *arg, redisReply *reply)
{
	struct rl_op *op = arg;
	if (op->decided) {
		op_free(op);
		return;
	}
	evtimer_del(op->timer);
	struct ratelimit *rl = op->rl;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[1]->type != REDIS_REPLY_INTEGER) {
		fall_back(rl, reply ? "Redis answered an error" : "Redis is unavailable");
		decide_locally(rl, op->bucket, op->fn, op->arg);
		op_free(op);
		return;
	}
	bool ok = reply->element[0]->integer == 1;
	long long ms = reply->element[1]->integer;
	int retry = 0;
	if (ok) {
		debit(&rl->c, op->bucket);
	} else {
		metrics_add(rl->refused_redis, 1);
		long long s = (ms + 999) / 1000;
		retry = s < 1 ? 1 : s > 86400 ? 86400 : (int)s;
	}
	ratelimit_fn fn = op->fn;
	void *fn_arg = op->arg;
	op_free(op);
	fn(fn_arg, ok, retry);
}

struct ratelimit *ratelimit_new(struct event_base *base, struct redis *redis, const struct ratelimit_config *c)
{
	struct ratelimit *rl = xcalloc(1, sizeof *rl);
	rl->base = base;
	rl->redis = redis;
	rl->c = *c;
	if (rl->c.window_s < 1)
		rl->c.window_s = 1;
	const char *help = "Requests refused 429 by the per-client rate limit, by what decided.";
	rl->refused_redis = metrics_counter("feegate_rate_limited_total", "by=\"redis\"", help);
	rl->refused_local = metrics_counter("feegate_rate_limited_total", "by=\"local\"", help);
	rl->fallbacks = metrics_counter("feegate_rate_limit_fallbacks_total", NULL,
					"Times Redis failed the rate limit and the local buckets took over.");
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	free(rl);
}

void ratelimit_check(struct ratelimit *rl, const char *key, struct rl_bucket *b, ratelimit_fn fn, void *arg)
{
	if (rl->c.rps <= 0) {
		fn(arg, true, 0);
		return;
	}
	if (!rl->c.shared || !rl->redis || !redis_connected(rl->redis) || util_monotonic_us() < rl->local_until_us) {
		decide_locally(rl, b, fn, arg);
		return;
	}
	struct rl_op *op = xcalloc(1, sizeof *op);
	op->rl = rl;
	op->bucket = b;
	op->fn = fn;
	op->arg = arg;
	op->timer = evtimer_new(rl->base, op_waited, op);
	struct timeval tv = {.tv_sec = rl->c.wait_ms / 1000, .tv_usec = (rl->c.wait_ms % 1000) * 1000};
	evtimer_add(op->timer, &tv);
	long long limit = (long long)rl->c.rps * rl->c.window_s;
	redis_command(rl->redis, op_answered, op, "EVAL %s 1 rl:%s %lld %d", window_script, key, limit,
		      rl->c.window_s * 1000);
}
