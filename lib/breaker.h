#ifndef FEEGATE_BREAKER_H
#define FEEGATE_BREAKER_H
/*
 * Circuit breakers per bank, in shared memory made by the master before it forks, so every
 * worker sees the same state. After `failures` consecutive failed calls a bank is open
 * (hidden from checkout) for `cooldown_ms`; then one call is let through as a trial
 * (half-open): success closes the breaker, failure opens it again.
 */
#include <stdbool.h>

bool breaker_init(int failures, int cooldown_ms);
bool breaker_allow(const char *bank); /* may a call go to this bank now? */
void breaker_record(const char *bank, bool ok);
bool breaker_is_open(const char *bank);
/* Shows this bank in feegate_bank_breaker_state before its first call (master, after init). */
void breaker_watch(const char *bank);

#endif
