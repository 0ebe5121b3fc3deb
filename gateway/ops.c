/*
 * /healthz (the loop answers), /readyz, /metrics. Readiness is PostgreSQL alone: Redis holds only
 * what may be lost, so a Redis outage must not take every healthy gateway out of a load
 * balancer; the body still says whether Redis answers.
 */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/duty.h"
#include "gateway/gateway.h"
#include "lib/config.h"
#include "lib/mem.h"
#include "lib/metrics.h"

void ops_healthz(struct http_req *req)
{
	static const char body[] = "{\"status\":\"ok\"}";
	http_reply_raw(req, 200, "application/json", body, sizeof body - 1);
}

struct ready_state {
	int waiting;
	bool db_ok, redis_ok;
};

static void ready_answer(struct http_req *req)
{
	struct ready_state *s = req->state;
	if (--s->waiting > 0)
		return;
	const char *status = !s->db_ok ? "not_ready" : s->redis_ok ? "ready" : "degraded";
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "status", status, "postgres",
				 s->db_ok ? "ok" : "unavailable", "redis", s->redis_ok ? "ok" : "unavailable", "node",
				 cfg.node_name, "duties", duty_held() ? "held" : "standby");
	http_reply_json(req, s->db_ok ? 200 : 503, body);
}

static void ready_db(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	((struct ready_state *)req->state)->db_ok = st == PG_OK;
	ready_answer(req);
}

static void ready_redis(void *arg, redisReply *reply)
{
	struct http_req *req = arg;
	((struct ready_state *)req->state)->redis_ok = reply && reply->type == REDIS_REPLY_STATUS;
	ready_answer(req);
}

void ops_readyz(struct http_req *req)
{
	struct ready_state *s = xcalloc(1, sizeof *s);
	s->waiting = 2;
	req->state = s;
	req->state_free = free;
	pg_query(gw.db, "ping", 0, NULL, 1000, ready_db, req);
	redis_command(gw.redis, ready_redis, req, "PING");
}

void ops_metrics(struct http_req *req)
{
	struct evbuffer *b = evbuffer_new();
	metrics_render(b);
	size_t len = evbuffer_get_length(b);
	http_reply_raw(req, 200, "text/plain; version=0.0.4", (const char *)evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
}
