#ifndef FEEGATE_DUTY_H
#define FEEGATE_DUTY_H
/*
 * The duty lock (duty.c): the sweeper and the webhook relay run on one gateway at a time,
 * whichever holds the PostgreSQL advisory lock FEEGATE_DUTY_LOCK_ID on a connection of its own.
 * Worker 0 of every gateway runs duty_start; the others only read duty_held.
 */
#include <stdbool.h>

void duty_init(void);  /* every worker: registers feegate_duty_held */
void duty_start(void); /* worker 0: connect, try the lock every FEEGATE_DUTY_RETRY_MS */
/* Stops the duties and closes the lock's connection, so another gateway takes over at once. */
void duty_stop(void);
/* Whether this gateway (any of its workers) holds the duties now. */
bool duty_held(void);

#endif
