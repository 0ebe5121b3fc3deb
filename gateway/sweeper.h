#ifndef FEEGATE_SWEEPER_H
#define FEEGATE_SWEEPER_H
void sweeper_start(void);
void sweeper_stop(void);
int sweeper_busy(void);
void webhooks_start(void);
void webhooks_stop(void);
int webhooks_busy(void);
#endif
