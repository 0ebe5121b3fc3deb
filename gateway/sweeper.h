#ifndef FEEGATE_SWEEPER_H
#define FEEGATE_SWEEPER_H
/* The duty holder's background work (sweeper.c, started and stopped by duty.c): expiring orders,
 * asking banks about pending attempts,
 * dropping old idempotency records. */
void sweeper_start(void);
void sweeper_stop(void);
int sweeper_busy(void);
#endif
