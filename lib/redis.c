#include "lib/redis.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"
#include "lib/util.h"

#define SENTINELS_MAX 16

struct sentinel {
	char host[256];
	int port;
};

struct redis {
	struct event_base *base;
	struct redis_url url; /* with sentinels, host and port are the master they named last */
	int timeout_ms;
	redisAsyncContext *ac;
	bool ready; /* connected, AUTH and SELECT sent */
	bool closing;
	int backoff_ms;
	struct event *timer; /* reconnect backoff or connect timeout */
	bool connecting;
	metric_id m_up; /* feegate_redis_connected: this worker's 0 or 1 */
	/* Sentinel: the master is asked of them, and asked again after any doubt about it */
	struct sentinel sentinels[SENTINELS_MAX];
	int nsentinels;
	char master_name[128];
	bool have_master;     /* url.host:port is the master the sentinels named, not yet doubted */
	int next_sentinel;    /* the one to ask next */
	int asked_in_round;   /* sentinels asked since the last answer */
	redisAsyncContext *sc; /* asking a sentinel, then subscribed to its +switch-master */
	bool sc_asking;
	struct event *stimer; /* the sentinel question's deadline, or the next question */
	metric_id m_master_changes;
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
	/* with sentinels a failover is followed: ask them again at least every second */
	int cap = r->nsentinels ? 1000 : 5000;
	r->have_master = false;
	r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : 100;
	if (r->backoff_ms > cap)
		r->backoff_ms = cap;
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

/* ---- Sentinel ---- */

static void sentinel_drop(struct redis *r)
{
	redisAsyncContext *sc = r->sc;
	r->sc = NULL;
	r->sc_asking = false;
	if (sc)
		redisAsyncFree(sc); /* deferred by hiredis when inside one of sc's callbacks */
}

/* A sentinel did not answer, or answered nothing useful: the next one, at once; after a whole
 * round, after the backoff. */
static void sentinel_failed(struct redis *r, const char *why)
{
	struct sentinel *s = &r->sentinels[r->next_sentinel];
	log_warn(NULL, "redis sentinel %s:%d: %s", s->host, s->port, why);
	sentinel_drop(r);
	r->next_sentinel = (r->next_sentinel + 1) % r->nsentinels;
	if (++r->asked_in_round < r->nsentinels) {
		struct timeval zero = {0, 0};
		evtimer_add(r->stimer, &zero);
		return;
	}
	r->asked_in_round = 0;
	metrics_set(r->m_up, 0);
	schedule_reconnect(r); /* timer_cb asks the sentinels again */
}

/* Drops the master connection; the reconnect connects to url (have_master) or asks again. */
static void master_drop(struct redis *r)
{
	if (r->ac) {
		redisAsyncContext *ac = r->ac;
		redisAsyncFree(ac); /* on_disconnect reconnects (deferred inside ac's own callback) */
	}
}

static void on_switch_master(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis *r = priv;
	redisReply *rep = reply;
	if (!rep || ac != r->sc || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[2]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message") != 0)
		return;
	char name[128], oldh[256], newh[256];
	int oldp, newp;
	if (sscanf(rep->element[2]->str, "%127s %255s %d %255s %d", name, oldh, &oldp, newh, &newp) != 5 ||
	    strcmp(name, r->master_name) != 0 || newp < 1 || newp > 65535)
		return;
	log_warn(NULL, "redis sentinel: master %s switched from %s:%d to %s:%d", name, oldh, oldp, newh, newp);
	metrics_add(r->m_master_changes, 1);
	snprintf(r->url.host, sizeof r->url.host, "%s", newh);
	r->url.port = newp;
	r->backoff_ms = 0;
	master_drop(r);         /* its on_disconnect clears have_master: the new address is known */
	r->have_master = true; /* so the reconnect goes there (and ROLE checks it) */
}

static void on_master_addr(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis *r = priv;
	redisReply *rep = reply;
	if (ac != r->sc || !r->sc_asking)
		return;
	evtimer_del(r->stimer);
	if (!rep) {
		sentinel_failed(r, "no answer");
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_STRING) {
		sentinel_failed(r, rep->type == REDIS_REPLY_NIL ? "does not know the master name"
								: "unexpected answer to get-master-addr-by-name");
		return;
	}
	long port = strtol(rep->element[1]->str, NULL, 10);
	if (port < 1 || port > 65535 || strlen(rep->element[0]->str) >= sizeof r->url.host) {
		sentinel_failed(r, "named a master address that is not host:port");
		return;
	}
	bool changed = strcmp(r->url.host, rep->element[0]->str) != 0 || r->url.port != (int)port;
	snprintf(r->url.host, sizeof r->url.host, "%s", rep->element[0]->str);
	r->url.port = (int)port;
	if (changed) {
		log_info(NULL, "redis sentinel %s:%d: master %s is %s:%d", r->sentinels[r->next_sentinel].host,
			 r->sentinels[r->next_sentinel].port, r->master_name, r->url.host, r->url.port);
		metrics_add(r->m_master_changes, 1);
	}
	r->sc_asking = false;
	r->asked_in_round = 0;
	r->have_master = true;
	/* stay on this sentinel to hear of the next failover at once */
	redisAsyncCommand(ac, on_switch_master, r, "SUBSCRIBE +switch-master");
	struct timeval zero = {0, 0};
	evtimer_del(r->timer);
	evtimer_add(r->timer, &zero); /* timer_cb connects to the master, outside this callback */
}

static void on_sentinel_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;
	if (ac != r->sc)
		return;
	bool asking = r->sc_asking;
	r->sc = NULL;
	r->sc_asking = false;
	if (asking) {
		evtimer_del(r->stimer);
		sentinel_failed(r, "connection closed");
	}
}

static void sentinel_ask(struct redis *r)
{
	sentinel_drop(r);
	struct sentinel *s = &r->sentinels[r->next_sentinel];
	redisAsyncContext *sc = redisAsyncConnect(s->host, s->port);
	if (!sc || sc->err) {
		if (sc)
			redisAsyncFree(sc);
		sentinel_failed(r, "cannot connect");
		return;
	}
	sc->data = r;
	r->sc = sc;
	r->sc_asking = true;
	redisLibeventAttach(sc, r->base);
	redisAsyncSetDisconnectCallback(sc, on_sentinel_disconnect);
	redisAsyncCommand(sc, on_master_addr, r, "SENTINEL get-master-addr-by-name %s", r->master_name);
	struct timeval tv = {.tv_sec = r->timeout_ms * 5 / 1000, .tv_usec = (r->timeout_ms * 5 % 1000) * 1000};
	evtimer_add(r->stimer, &tv);
}

static void stimer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis *r = arg;
	if (r->sc_asking)
		sentinel_failed(r, "timed out");
	else
		sentinel_ask(r);
}

/* The sentinels' master may have become a replica since they named it (a failover they have
 * not finished telling): ROLE on every new connection. */
static void on_role(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis *r = priv;
	redisReply *rep = reply;
	if (!rep || ac != r->ac)
		return;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 && rep->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(rep->element[0]->str, "master") == 0)
		return;
	log_warn(NULL, "redis at %s:%d is not the master; asking the sentinels again", r->url.host, r->url.port);
	master_drop(r);
}

static void redis_connect(struct redis *r)
{
	if (r->nsentinels && !r->have_master) {
		sentinel_ask(r);
		return;
	}
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
	if (r->nsentinels)
		redisAsyncCommand(ac, on_role, r, "ROLE");
	struct timeval tv = {.tv_sec = r->timeout_ms * 5 / 1000, .tv_usec = (r->timeout_ms * 5 % 1000) * 1000};
	evtimer_add(r->timer, &tv);
}

static bool parse_sentinels(const char *list, struct redis *r)
{
	r->nsentinels = 0;
	const char *p = list;
	while (p && *p) {
		size_t len = strcspn(p, ",");
		if (r->nsentinels == SENTINELS_MAX)
			return false;
		struct sentinel *s = &r->sentinels[r->nsentinels];
		if (!config_parse_host_port(p, len, s->host, sizeof s->host, &s->port))
			return false;
		r->nsentinels++;
		p += len;
		if (*p == ',')
			p++;
	}
	return true;
}

struct redis *redis_new(struct event_base *base, const char *url, int timeout_ms, const char *sentinels,
			const char *master_name)
{
	(void)metrics_counter("feegate_redis_errors_total", NULL, "Redis commands that failed or timed out.");
	struct redis *r = xcalloc(1, sizeof *r);
	if (!redis_parse_url(url, &r->url) || !parse_sentinels(sentinels, r) ||
	    (master_name && strlen(master_name) >= sizeof r->master_name)) {
		free(r);
		return NULL;
	}
	snprintf(r->master_name, sizeof r->master_name, "%s", master_name ? master_name : "");
	r->m_master_changes = metrics_counter("feegate_redis_master_changes_total", NULL,
					      "Times the sentinels named a new Redis master to this worker.");
	r->stimer = evtimer_new(base, stimer_cb, r);
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
	evtimer_del(r->stimer);
	sentinel_drop(r);
	event_free(r->stimer);
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
		struct redis *r = op->r;
		if (rep && rep->type == REDIS_REPLY_ERROR && r->nsentinels && ac == r->ac &&
		    strncmp(rep->str, "READONLY", 8) == 0) {
			log_warn(NULL, "redis at %s:%d is read-only; asking the sentinels again", r->url.host, r->url.port);
			master_drop(r);
		}
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
