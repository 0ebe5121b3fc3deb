#ifndef FEEGATE_SWEEPER_H
#define FEEGATE_SWEEPER_H
void sweeper_start(void);
void sweeper_stop(void);
int sweeper_busy(void);
void webhooks_init(void);  /* every worker: sends what webhooks_hand() gives it */
void webhooks_start(void); /* worker 0: also claims due rows from the outbox */
void webhooks_drain(void); /* shutting down: held rows back to the outbox */
void webhooks_stop(void);
int webhooks_busy(void);
/* A delivery row this worker's transaction wrote leased to it: sent when its portal has room. */
void webhooks_hand(const char *id, const char *client, const char *url, const char *secret, const char *payload);
#endif
