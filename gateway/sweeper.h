#ifndef FEEGATE_SWEEPER_H
#define FEEGATE_SWEEPER_H
/* Worker 0's background work (sweeper.c): expiring orders, asking banks about pending attempts,
 * dropping old idempotency records. */
void sweeper_start(void);
void sweeper_stop(void);
int sweeper_busy(void);
#endif
