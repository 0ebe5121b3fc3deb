#include "lib/redis.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"
#include "lib/util.h"

struct redis {
	struct event_base *base;
	struct redis_url url;
	int timeout_ms;
	redisAsyncContext *ac;
	bool ready; /* connected, AUTH and SELECT sent */
	bool closing;
	int backoff_ms;
	struct event *timer; /* reconnect backoff or connect timeout */
	bool connecting;
	metric_id m_up; /* feegate_redis_connected: this worker's 0 or 1 */
};

struct redis_op {
	struct redis *r;
	redis_reply_fn fn;
	void *arg;
	struct event *timer;
	bool answered; /* fn already called (timed out); the op waits for hiredis to let go */
};

static void redis_connect(struct redis *r);

bool redis_parse_url(const char *url, struct redis_url *out)
{
	memset(out, 0, sizeof *out);
	out->port = 6379;
	if (strncmp(url, "redis://", 8) != 0)
		return false;
	const char *p = url + 8;
	const char *at = strchr(p, '@');
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		const char *pw = colon ? colon + 1 : p;
		size_t n = (size_t)(at - pw);
		if (n >= sizeof out->password)
			return false;
		memcpy(out->password, pw, n);
		p = at + 1;
	}
	size_t hlen = strcspn(p, ":/");
	if (hlen == 0 || hlen >= sizeof out->host)
		return false;
	memcpy(out->host, p, hlen);
	p += hlen;
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535)
			return false;
		out->port = (int)port;
		p = end;
	}
	if (*p == '/' && p[1]) {
		char *end;
		long db = strtol(p + 1, &end, 10);
		if (*end || db < 0 || db > 1000)
			return false;
		out->db = (int)db;
	} else if (*p && strcmp(p, "/") != 0) {
		return false;
	}
	return true;
}

static void schedule_reconnect(struct redis *r)
{
	if (r->closing)
		return;
	r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : 100;
	if (r->backoff_ms > 5000)
		r->backoff_ms = 5000;
	struct timeval tv = {.tv_sec = r->backoff_ms / 1000, .tv_usec = (r->backoff_ms % 1000) * 1000};
	evtimer_add(r->timer, &tv);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;
	r->connecting = false;
	evtimer_del(r->timer);
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback */
		r->ac = NULL;
		r->ready = false;
		metrics_set(r->m_up, 0);
		schedule_reconnect(r);
		return;
	}
	r->ready = true;
	r->backoff_ms = 0;
	metrics_set(r->m_up, 1);
	log_info(NULL, "redis connected");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;
	r->ac = NULL;
	r->ready = false;
	r->connecting = false;
	metrics_set(r->m_up, 0);
	if (!r->closing) {
		log_warn(NULL, "redis disconnected; reconnecting");
		schedule_reconnect(r);
	}
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis *r = arg;
	if (r->connecting && r->ac) {
		/* Connect timed out: no disconnect callback fires for an unconnected context. */
		redisAsyncContext *ac = r->ac;
		r->ac = NULL;
		r->connecting = false;
		redisAsyncFree(ac);
		schedule_reconnect(r);
		return;
	}
	redis_connect(r);
}

static void redis_connect(struct redis *r)
{
	redisAsyncContext *ac = redisAsyncConnect(r->url.host, r->url.port);
	if (!ac || ac->err) {
		if (ac)
			redisAsyncFree(ac);
		schedule_reconnect(r);
		return;
	}
	ac->data = r;
	r->ac = ac;
	r->connecting = true;
	redisLibeventAttach(ac, r->base);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	/* Commands queue until connected; AUTH and SELECT go first. */
	if (r->url.password[0])
		redisAsyncCommand(ac, NULL, NULL, "AUTH %s", r->url.password);
	if (r->url.db)
		redisAsyncCommand(ac, NULL, NULL, "SELECT %d", r->url.db);
	struct timeval tv = {.tv_sec = r->timeout_ms * 5 / 1000, .tv_usec = (r->timeout_ms * 5 % 1000) * 1000};
	evtimer_add(r->timer, &tv);
}

struct redis *redis_new(struct event_base *base, const char *url, int timeout_ms)
{
	(void)metrics_counter("feegate_redis_errors_total", NULL, "Redis commands that failed or timed out.");
	struct redis *r = xcalloc(1, sizeof *r);
	if (!redis_parse_url(url, &r->url)) {
		free(r);
		return NULL;
	}
	r->m_up = metrics_gauge("feegate_redis_connected", NULL, "Workers connected to Redis.", METRICS_SUM);
	r->base = base;
	r->timeout_ms = timeout_ms;
	r->timer = evtimer_new(base, timer_cb, r);
	redis_connect(r);
	return r;
}

void redis_free(struct redis *r)
{
	if (!r)
		return;
	r->closing = true;
	evtimer_del(r->timer);
	if (r->ac) {
		redisAsyncContext *ac = r->ac;
		r->ac = NULL;
		redisAsyncFree(ac);
	}
	event_free(r->timer);
	free(r);
}

bool redis_connected(const struct redis *r)
{
	return r && r->ready;
}

static void op_free(struct redis_op *op)
{
	if (op->timer)
		event_free(op->timer);
	free(op);
}

static void op_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis_op *op = priv;
	if (!op->answered) {
		redisReply *rep = reply;
		if (rep && rep->type == REDIS_REPLY_ERROR)
			metrics_count("redis_errors");
		if (op->fn)
			op->fn(op->arg, rep);
	}
	op_free(op);
}

static void op_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct redis_op *op = arg;
	struct redis *r = op->r;
	if (op->answered) {
		/* deferred "not connected" answer: hiredis never saw this op */
		if (op->fn)
			op->fn(op->arg, NULL);
		op_free(op);
		return;
	}
	op->answered = true;
	metrics_count("redis_errors");
	if (op->fn)
		op->fn(op->arg, NULL);
	/* Redis is not answering: drop the connection at once (a graceful disconnect would wait
	 * for the replies); hiredis then calls op_reply with NULL for every pending op. */
	if (r->ac && r->ready) {
		log_warn(NULL, "redis command timed out; dropping the connection");
		redisAsyncContext *ac = r->ac;
		redisAsyncFree(ac); /* calls on_disconnect, which clears r->ac and reconnects */
	}
}

void redis_command(struct redis *r, redis_reply_fn fn, void *arg, const char *fmt, ...)
{
	struct redis_op *op = xcalloc(1, sizeof *op);
	op->r = r;
	op->fn = fn;
	op->arg = arg;
	op->timer = evtimer_new(r->base, op_timeout, op);
	int rc = REDIS_ERR;
	if (r->ac && r->ready) {
		va_list ap;
		va_start(ap, fmt);
		rc = redisvAsyncCommand(r->ac, op_reply, op, fmt, ap);
		va_end(ap);
	}
	if (rc != REDIS_OK) {
		op->answered = true; /* see op_timeout: answered NULL on the next loop turn */
		struct timeval zero = {0, 0};
		evtimer_add(op->timer, &zero);
		return;
	}
	struct timeval tv = {.tv_sec = r->timeout_ms / 1000, .tv_usec = (r->timeout_ms % 1000) * 1000};
	evtimer_add(op->timer, &tv);
}
