#ifndef FEEGATE_WEBHOOKS_H
#define FEEGATE_WEBHOOKS_H
/*
 * The portal webhook relay (webhooks.c): sends the outbox rows that transactions write
 * (migrations/functions/webhooks.sql), signed with the client's secret, retrying with backoff
 * until they are delivered or dead-lettered; and the portal's routes over its deliveries.
 */
#include "lib/http.h"

void webhooks_init(void);  /* every worker: sends what webhooks_hand() gives it */
void webhooks_start(void); /* worker 0: also claims due rows from the outbox */
void webhooks_drain(void); /* shutting down: held rows back to the outbox */
void webhooks_stop(void);
int webhooks_busy(void);
/* A delivery row this worker's transaction wrote leased to it: sent when its portal has room. */
void webhooks_hand(const char *id, const char *client, const char *url, const char *secret, const char *payload);

void webhooks_list(struct http_req *req);      /* GET /v1/webhook-deliveries */
void webhooks_redeliver(struct http_req *req); /* POST /v1/webhook-deliveries/{id}/redeliver */

#endif
