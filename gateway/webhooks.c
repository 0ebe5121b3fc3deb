/*
 * Portal webhooks: the outbox relay and the client's delivery API. Rows are written by the
 * transaction that changes the order (feegate_emit), so no status change is lost. Worker 0's
 * relay leases due rows (the claim); every worker also sends the rows its own notification
 * batches wrote already leased to it (webhooks_hand: no claim needed). Either way a row is
 * POSTed signed (Feegate-Signature: v1=HMAC-SHA256(secret, timestamp + "." + body)), and
 * failures are rescheduled with exponential backoff and jitter until FEEGATE_WEBHOOK_MAX_AGE_S,
 * when they are dead-lettered.
 */
#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "adapters/adapter.h"
#include "gateway/gateway.h"
#include "gateway/webhooks.h"
#include "lib/config.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/query.h"
#include "lib/mem.h"
#include "lib/pgrow.h"
#include "lib/metrics.h"

static struct event *timer;   /* the relay's pulse */
static bool claiming;         /* a claim query is in flight */
static bool more_due;         /* the last claim came back full: more rows may be waiting */
static int calls;             /* deliveries waiting for the portal's answer */

/* The relay's records in the outbox, each saved by one statement per batch, one batch at a time:
 * what arrives meanwhile makes the next batch bigger. */
struct saver {
	const char *stmt;  /* takes one JSON array */
	size_t max;        /* elements per statement */
	const char *what;  /* for the log */
	const char *then;  /* what happens when a save fails */
	json_t *pending;   /* not yet sent */
	json_t *inflight;  /* sent, not yet answered; NULL when idle */
};
/* answers, one object per delivery */
static struct saver results = {"delivery_results", 200, "webhook results", "they will be sent again", NULL, NULL};
/* ids of held rows given back to the outbox, due at once, their attempt not counted */
static struct saver releases = {"delivery_release", 500, "held webhooks given back to the outbox",
				"the relay sends them when their lease ends", NULL, NULL};
static bool relaying;         /* this worker claims (worker 0) */

#define CLAIM_MAX 100   /* rows per claim */

/* Rows handed over by this worker's notification batches, waiting for room (their portal at its
 * share, or every slot taken). Held at most a third of their lease, and at most HELD_MAX of them:
 * beyond either they are released to the outbox, due at once, for the relay's claim. */
struct held {
	TAILQ_ENTRY(held) link;
	char id[37];
	int portal;
	char *url, *secret, *payload;
	int64_t since_us;
};
static TAILQ_HEAD(, held) held_rows = TAILQ_HEAD_INITIALIZER(held_rows);
static int nheld;
#define HELD_MAX (cfg.webhook_concurrency * 4)

/* Calls in flight per portal (client), so that one slow portal cannot hold every slot. */
struct portal {
	char client[37];
	int calls;
	bool skipped; /* left out of the last claim, being at its share: claim again when it is not */
};
static struct portal *portals;
static int nportals;

struct delivery {
	char id[37];
	int portal; /* index in portals */
	int attempts;
	int64_t age_s;
};

static int portal_index(const char *client)
{
	for (int i = 0; i < nportals; i++)
		if (strcmp(portals[i].client, client) == 0)
			return i;
	portals = xrealloc(portals, sizeof *portals * (size_t)(nportals + 1));
	snprintf(portals[nportals].client, sizeof portals[nportals].client, "%s", client);
	portals[nportals].calls = 0;
	portals[nportals].skipped = false;
	return nportals++;
}

static void pump(void);

static void saved(void *arg, PGresult *res, enum pg_status st)
{
	struct saver *sv = arg;
	/* A failed save leaves the rows as they were (pending, with their lease): a portal hears of
	 * an event at least once. */
	if (st != PG_OK)
		log_warn(NULL, "could not save %zu %s (status %d); %s", json_array_size(sv->inflight), sv->what, (int)st,
			 sv->then);
	json_decref(sv->inflight);
	sv->inflight = NULL;
	pump();
}

/* Sends what sv gathered so far (at most sv->max of it) in one statement. */
static void save(struct saver *sv)
{
	if (sv->inflight || json_array_size(sv->pending) == 0)
		return;
	json_t *batch = sv->pending;
	sv->pending = json_array();
	for (size_t i = sv->max; i < json_array_size(batch); i++) /* the rest: next time */
		json_array_append(sv->pending, json_array_get(batch, i));
	while (json_array_size(batch) > sv->max)
		json_array_remove(batch, json_array_size(batch) - 1);
	char *text = json_dumps(batch, JSON_COMPACT);
	const char *params[1] = {text};
	sv->inflight = batch;
	pg_query(gw.db, sv->stmt, 1, params, cfg.db_timeout_ms, saved, sv);
	free(text);
}

static int save_backlog(const struct saver *sv)
{
	return (sv->pending ? (int)json_array_size(sv->pending) : 0) + (sv->inflight ? 1 : 0);
}

static void delivered(void *arg, int status, const char *body, size_t len, const char *err)
{
	struct delivery *d = arg;
	calls--;
	portals[d->portal].calls--;
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
	char msg[128];
	if (status)
		snprintf(msg, sizeof msg, "HTTP %d", status);
	else
		snprintf(msg, sizeof msg, "%s", err ? err : "no answer");
	json_array_append_new(results.pending, json_pack("{s:s, s:b, s:o, s:o, s:b, s:I}", "id", d->id, "ok", ok, "status",
						 status ? json_integer(status) : json_null(), "error",
						 ok ? json_null() : json_string(msg), "dead", dead, "delay_ms",
						 (json_int_t)delay));
	free(d);
	pump();
}

/* POSTs one leased row to its portal; the answer is saved with the others (results). */
static void send_delivery(const char *id, int portal, const char *url, const char *secret, const char *payload,
			  int attempts, int64_t age_s)
{
	struct delivery *d = xcalloc(1, sizeof *d);
	snprintf(d->id, sizeof d->id, "%s", id);
	d->portal = portal;
	portals[d->portal].calls++;
	d->attempts = attempts;
	d->age_s = age_s;
	char ts[24];
	snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
	char hex[65], sig[70];
	if (!util_sign_timestamped(secret, ts, payload, strlen(payload), hex)) {
		log_error(NULL, "webhook %s: out of memory while signing", id); /* lib/mem.h's policy */
		abort();
	}
	snprintf(sig, sizeof sig, "v1=%s", hex);
	struct httpc_header h[4] = {{"Content-Type", "application/json"},
				    {"Feegate-Timestamp", ts},
				    {"Feegate-Signature", sig},
				    {"Feegate-Delivery", d->id}};
	calls++;
	httpc_send_reusing("POST", url, h, 4, payload, strlen(payload), cfg.webhook_timeout_ms, delivered, d);
}

/* claim_deliveries (feegate_claim_deliveries) */
struct claimed_row {
	const char *r_id, *r_url, *r_secret, *r_payload;
	int64_t r_attempts, r_age_s;
	const char *r_client;
};
static const struct pg_col claimed_cols[] = {
	PG_COL(struct claimed_row, r_id, PG_TEXT),
	PG_COL(struct claimed_row, r_url, PG_TEXT),
	PG_COL(struct claimed_row, r_secret, PG_TEXT),
	PG_COL(struct claimed_row, r_payload, PG_TEXT),
	PG_COL(struct claimed_row, r_attempts, PG_INT64),
	PG_COL(struct claimed_row, r_age_s, PG_INT64),
	PG_COL(struct claimed_row, r_client, PG_TEXT),
};

static bool send_one(PGresult *res, int r)
{
	struct claimed_row d;
	if (!PG_ROW(res, r, claimed_cols, &d))
		return false;
	send_delivery(d.r_id, portal_index(d.r_client), d.r_url, d.r_secret, d.r_payload, (int)d.r_attempts,
		      d.r_age_s);
	return true;
}

static bool room_for(int portal)
{
	return calls < cfg.webhook_concurrency && portals[portal].calls < cfg.webhook_per_portal;
}

static void held_free(struct held *h)
{
	TAILQ_REMOVE(&held_rows, h, link);
	nheld--;
	free(h->url);
	free(h->secret);
	free(h->payload);
	free(h);
}

static void release_held(struct held *h)
{
	json_array_append_new(releases.pending, json_string(h->id));
	held_free(h);
}

/* Sends held rows whose portal has room, oldest first; releases those held too long. */
static void send_held(void)
{
	int64_t now = util_monotonic_us();
	int64_t max_hold_us = (int64_t)(cfg.webhook_timeout_ms / 1000 + 30) * 1000000 / 3;
	struct held *h, *next;
	for (h = TAILQ_FIRST(&held_rows); h; h = next) {
		next = TAILQ_NEXT(h, link);
		if (gw.draining || now - h->since_us > max_hold_us) {
			release_held(h);
		} else if (room_for(h->portal)) {
			send_delivery(h->id, h->portal, h->url, h->secret, h->payload, 1, 0);
			held_free(h);
		}
	}
	save(&releases);
}

void webhooks_hand(const char *id, const char *client, const char *url, const char *secret, const char *payload)
{
	metrics_count("webhooks_handed");
	int portal = portal_index(client);
	if (!gw.draining && TAILQ_EMPTY(&held_rows) && room_for(portal)) {
		send_delivery(id, portal, url, secret, payload, 1, 0);
		return;
	}
	struct held *h = xcalloc(1, sizeof *h);
	snprintf(h->id, sizeof h->id, "%s", id);
	h->portal = portal;
	h->url = xstrdup(url);
	h->secret = xstrdup(secret);
	h->payload = xstrdup(payload);
	h->since_us = util_monotonic_us();
	TAILQ_INSERT_TAIL(&held_rows, h, link);
	nheld++;
	if (nheld > HELD_MAX)
		release_held(TAILQ_FIRST(&held_rows));
	send_held();
}

static void claimed(void *arg, PGresult *res, enum pg_status st)
{
	int asked = (int)(intptr_t)arg;
	claiming = false;
	if (st != PG_OK) {
		more_due = false;
		return;
	}
	int n = PQntuples(res), r = 0;
	while (r < n && send_one(res, r))
		r++;
	more_due = n == asked;
	pump();
}

/* Claims due rows while there is room for more calls to the portals. */
static void claim(void)
{
	int room = cfg.webhook_concurrency - calls;
	if (!relaying || gw.draining || claiming || room <= 0 || nheld > 0 || !pg_pool_connected(gw.db))
		return;
	/* at most one portal's share per claim, and none for portals already at their share: a
	 * portal has at most about twice its share in flight */
	int n = room < CLAIM_MAX ? room : CLAIM_MAX;
	if (n > cfg.webhook_per_portal)
		n = cfg.webhook_per_portal;
	char *skip = xmalloc((size_t)nportals * 37 + 3);
	size_t len = 0;
	skip[len++] = '{';
	for (int i = 0; i < nportals; i++) {
		portals[i].skipped = portals[i].calls >= cfg.webhook_per_portal;
		if (portals[i].skipped) {
			if (len > 1)
				skip[len++] = ',';
			memcpy(skip + len, portals[i].client, strlen(portals[i].client));
			len += strlen(portals[i].client);
		}
	}
	skip[len++] = '}';
	skip[len] = '\0';
	char limit[16], lease[16];
	snprintf(limit, sizeof limit, "%d", n);
	snprintf(lease, sizeof lease, "%d", cfg_webhook_lease_s());
	const char *params[3] = {limit, lease, skip};
	claiming = true;
	pg_query(gw.db, "claim_deliveries", 3, params, cfg.db_timeout_ms, claimed, (void *)(intptr_t)n);
	free(skip);
}

/* Called whenever something finished: saves answers (one save at a time, so answers arriving
 * meanwhile make the next save larger) and keeps the calls going while there is a backlog. */
static void pump(void)
{
	save(&results);
	send_held();
	/* A full claim means a backlog: claim again once half the room is free. So may a portal
	 * left out of the last claim, once it is below its share again (not before: the claim
	 * would leave it out again and come back empty). */
	if (calls > cfg.webhook_concurrency / 2)
		return;
	bool want = more_due;
	for (int i = 0; i < nportals && !want; i++)
		want = portals[i].skipped && portals[i].calls < cfg.webhook_per_portal;
	if (want)
		claim();
}

/* The pulse: saves answers, retries releases, sends held rows, and (worker 0) claims. */
static void relay(evutil_socket_t fd, short what, void *arg)
{
	save(&results);
	send_held();
	claim();
	struct timeval tv = {0, 250000};
	evtimer_add(timer, &tv);
}

void webhooks_init(void)
{
	(void)metrics_counter("feegate_webhooks_delivered_total", NULL, "Portal webhook calls answered 2xx.");
	(void)metrics_counter("feegate_webhooks_failed_total", NULL,
			      "Portal webhook calls that failed (non-2xx, timeout, connection error); retried later.");
	(void)metrics_counter("feegate_webhooks_handed_total", NULL,
			      "Webhook rows a notification batch handed straight to its worker (no claim needed).");
	results.pending = json_array();
	releases.pending = json_array();
	timer = evtimer_new(gw.base, relay, NULL);
	struct timeval tv = {0, 300000};
	evtimer_add(timer, &tv);
}

void webhooks_start(void)
{
	relaying = true;
}

/* Shutting down: no more claims; held rows go back to the outbox now rather than at the end of
 * their lease. Calls in flight finish and their answers are saved while the worker drains. */
void webhooks_drain(void)
{
	relaying = false;
	if (results.pending)
		send_held();
}

void webhooks_stop(void)
{
	relaying = false;
	if (timer) {
		event_free(timer);
		timer = NULL;
	}
}

int webhooks_busy(void)
{
	return calls + nheld + (claiming ? 1 : 0) + save_backlog(&results) + save_backlog(&releases);
}

/* ---- the client's API ---- */

/* delivery_redeliver and deliveries_list: one row, one column of JSON text */
struct json_row {
	const char *doc;
};
static const struct pg_col json_cols[] = {PG_COL(struct json_row, doc, PG_TEXT)};

/* A list is answered as {"data": [...]}, an object as it is. */
static void json_text_reply(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct json_row r;
	if (st == PG_OK && PQntuples(res) == 1 && !PG_ROW(res, 0, json_cols, &r))
		st = PG_SQL_ERROR;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such webhook delivery");
		return;
	}
	json_t *data = json_loads(r.doc, JSON_DECODE_ANY, NULL);
	if (json_is_array(data)) {
		json_t *body = json_object();
		json_object_set_new(body, "data", data);
		http_reply_json(req, 200, body);
		return;
	}
	http_reply_json(req, 202, data);
}

static const struct query_field deliveries_query[] = {
	{"status", Q_CHOICE, "pending|delivered|dead", 0, 0},
	{"order_id", Q_UUID, NULL, 0, 0},
	QUERY_LIST,
};

/* The list's cursor: "<created_at in microseconds>.<id>" of the last row shown. */
static bool delivery_cursor_ok(const char *c)
{
	size_t digits = strspn(c, "0123456789");
	return digits >= 1 && digits <= 19 && c[digits] == '.' && util_uuid_valid(c + digits + 1);
}

static void deliveries_page(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct json_row r;
	if (st == PG_OK && !PG_ROW(res, 0, json_cols, &r))
		st = PG_SQL_ERROR;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	http_reply_json(req, 200, json_loads(r.doc, 0, NULL));
}

void webhooks_list(struct http_req *req)
{
	struct query q;
	if (!query_parse(req, deliveries_query, (int)ARRAY_LEN(deliveries_query), &q)) {
		query_free(&q);
		return;
	}
	const char *status = query_get(&q, "status");
	const char *order = query_get(&q, "order_id");
	const char *cursor = query_get(&q, "cursor");
	if (cursor && !delivery_cursor_ok(cursor)) {
		query_free(&q);
		query_reply_bad_cursor(req);
		return;
	}
	char limit[16];
	snprintf(limit, sizeof limit, "%lld", (long long)query_num(&q, "limit"));
	const char *params[5] = {req_principal(req)->id, status ? status : "", order ? order : "", cursor ? cursor : "",
				 limit};
	pg_query(gw.db, "deliveries_list", 5, params, cfg.db_timeout_ms, deliveries_page, req);
	query_free(&q);
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
