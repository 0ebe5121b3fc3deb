/*
 * Portal webhooks: the outbox relay (worker 0) and the client's delivery API. Rows are written
 * by the transaction that changes the order (feegate_emit), so no status change is lost; the
 * relay leases due rows, POSTs them signed (Feegate-Signature: v1=HMAC-SHA256(secret,
 * timestamp + "." + body)), and reschedules failures with exponential backoff and jitter until
 * FEEGATE_WEBHOOK_MAX_AGE_S, when they are dead-lettered.
 */
#include <event2/event.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gateway.h"
#include "gateway/sweeper.h"
#include "lib/config.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"

static struct event *timer;
static int busy;

struct delivery {
	char id[37];
	int attempts;
	int64_t age_s;
};

static void result_saved(void *arg, PGresult *res, enum pg_status st)
{
	busy--;
}

static void delivered(void *arg, int status, const char *body, size_t len, const char *err)
{
	struct delivery *d = arg;
	bool ok = status >= 200 && status < 300;
	/* backoff: base * 2^(attempts-1), at most an hour, with +-25 % jitter */
	double delay = (double)cfg.webhook_backoff_ms;
	for (int i = 1; i < d->attempts && delay < 3600000.0; i++)
		delay *= 2;
	if (delay > 3600000.0)
		delay = 3600000.0;
	unsigned char r;
	util_random(&r, 1);
	delay *= 0.75 + 0.5 * (double)r / 255.0;
	bool dead = !ok && d->age_s + (int64_t)(delay / 1000) >= cfg.webhook_max_age_s;
	metrics_count(ok ? "webhooks_delivered" : "webhooks_failed");
	if (!ok)
		log_warn(NULL, "webhook %s attempt %d failed: %s%s", d->id, d->attempts, status ? "HTTP status" : err,
			 dead ? "; dead-lettered" : "");
	char st[16], ms[32], msg[128];
	snprintf(st, sizeof st, "%d", status);
	snprintf(ms, sizeof ms, "%.0f", delay);
	if (status)
		snprintf(msg, sizeof msg, "HTTP %d", status);
	else
		snprintf(msg, sizeof msg, "%s", err ? err : "no answer");
	const char *params[6] = {d->id, ok ? "true" : "false", status ? st : NULL, ok ? NULL : msg,
				 dead ? "true" : "false", ms};
	pg_query(gw.db, "delivery_result", 6, params, cfg.db_timeout_ms, result_saved, NULL);
	free(d);
}

static void claimed(void *arg, PGresult *res, enum pg_status st)
{
	busy--;
	if (st != PG_OK)
		return;
	for (int r = 0; r < PQntuples(res); r++) {
		struct delivery *d = xcalloc(1, sizeof *d);
		snprintf(d->id, sizeof d->id, "%s", PQgetvalue(res, r, 0));
		const char *url = PQgetvalue(res, r, 1);
		const char *secret = PQgetvalue(res, r, 2);
		const char *payload = PQgetvalue(res, r, 3);
		d->attempts = atoi(PQgetvalue(res, r, 4));
		d->age_s = strtoll(PQgetvalue(res, r, 5), NULL, 10);
		char ts[24];
		snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
		char *signed_text = xasprintf("%s.%s", ts, payload);
		unsigned char mac[32];
		unsigned int maclen = 0;
		HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)signed_text, strlen(signed_text), mac,
		     &maclen);
		char hex[65], sig[70];
		util_hex(mac, maclen, hex);
		snprintf(sig, sizeof sig, "v1=%s", hex);
		free(signed_text);
		struct httpc_header h[4] = {{"Content-Type", "application/json"},
					    {"Feegate-Timestamp", ts},
					    {"Feegate-Signature", sig},
					    {"Feegate-Delivery", d->id}};
		busy += 2; /* the call, then saving its result */
		httpc_send("POST", url, h, 4, payload, strlen(payload), cfg.webhook_timeout_ms, delivered, d);
		busy--;
	}
}

static void relay(evutil_socket_t fd, short what, void *arg)
{
	if (!gw.draining && busy == 0 && pg_pool_connected(gw.db)) {
		char lease[16];
		snprintf(lease, sizeof lease, "%d", cfg.webhook_timeout_ms / 1000 + 30);
		const char *params[2] = {"50", lease};
		busy++;
		pg_query(gw.db, "claim_deliveries", 2, params, cfg.db_timeout_ms, claimed, NULL);
	}
	struct timeval tv = {0, 250000};
	evtimer_add(timer, &tv);
}

void webhooks_start(void)
{
	timer = evtimer_new(gw.base, relay, NULL);
	struct timeval tv = {0, 300000};
	evtimer_add(timer, &tv);
}

void webhooks_stop(void)
{
	if (timer) {
		event_free(timer);
		timer = NULL;
	}
}

int webhooks_busy(void)
{
	return busy;
}

/* ---- the client's API ---- */

/* One row, one column of JSON text: a list is answered as {"data": [...]}, an object as it is. */
static void json_text_reply(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such webhook delivery");
		return;
	}
	json_t *data = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, NULL);
	if (json_is_array(data)) {
		json_t *body = json_object();
		json_object_set_new(body, "data", data);
		http_reply_json(req, 200, body);
		return;
	}
	http_reply_json(req, 202, data);
}

void webhooks_list(struct http_req *req)
{
	char *status = http_query_param(req, "status");
	char *order = http_query_param(req, "order_id");
	if (status && strcmp(status, "pending") && strcmp(status, "delivered") && strcmp(status, "dead")) {
		free(status);
		free(order);
		http_reply_error(req, ERR_VALIDATION, "status", "status must be pending, delivered or dead");
		return;
	}
	const char *params[3] = {req_principal(req)->id, status ? status : "", order ? order : ""};
	pg_query(gw.db, "deliveries_list", 3, params, cfg.db_timeout_ms, json_text_reply, req);
	free(status);
	free(order);
}

void webhooks_redeliver(struct http_req *req)
{
	if (!util_uuid_valid(req->params[0])) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such webhook delivery");
		return;
	}
	const char *params[2] = {req->params[0], req_principal(req)->id};
	pg_query(gw.db, "delivery_redeliver", 2, params, cfg.db_timeout_ms, json_text_reply, req);
}

void exceptions_list(struct http_req *req)
{
	const struct principal *p = req_principal(req);
	char agency[24];
	snprintf(agency, sizeof agency, "%lld", (long long)p->agency_id);
	const char *params[1] = {strcmp(p->role, "agency") == 0 ? agency : NULL};
	pg_query(gw.db, "exceptions_list", 1, params, cfg.db_timeout_ms, json_text_reply, req);
}
