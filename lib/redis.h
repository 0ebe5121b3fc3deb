#ifndef FEEGATE_REDIS_H
#define FEEGATE_REDIS_H
/*
 * Redis through hiredis' libevent adapter. Redis holds only what may be lost (checkout
 * session cache, rate-limit buckets), so every caller must cope with "no answer": a command
 * issued while disconnected, or not answered within the timeout, gets reply == NULL. A command
 * that times out drops the connection (hiredis 0.14 has no command timeout of its own) and the
 * client reconnects with backoff.
 */
#include <hiredis/hiredis.h>
#include <stdbool.h>

struct event_base;
struct redis;

/* reply is NULL on error, timeout or disconnection; it is freed by hiredis after the call. */
typedef void (*redis_reply_fn)(void *arg, redisReply *reply);

/* sentinels: "" or "host:port,host:port": the master's address is asked of them (master_name)
 * instead of taken from url, whose password and db still apply; asked again whenever the
 * master disconnects, answers -READONLY, says ROLE is not master, or a sentinel publishes
 * +switch-master. NULL when url or sentinels do not parse. */
struct redis *redis_new(struct event_base *base, const char *url, int timeout_ms, const char *sentinels,
			const char *master_name);
void redis_free(struct redis *r);
bool redis_connected(const struct redis *r);
/* fn may be NULL (fire and forget); otherwise it is called exactly once, never before
 * redis_command returns. */
void redis_command(struct redis *r, redis_reply_fn fn, void *arg, const char *fmt, ...);

/* Parses redis://[user:password@]host[:port][/db]; exposed for the unit tests. */
struct redis_url {
	char host[256];
	int port;
	char password[256];
	int db;
};
bool redis_parse_url(const char *url, struct redis_url *out);

#endif
