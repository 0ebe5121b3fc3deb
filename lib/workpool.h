#ifndef FEEGATE_WORKPOOL_H
#define FEEGATE_WORKPOOL_H
/*
 * A small bounded pool of threads for slow synchronous work (scrypt) that must not run on the
 * event loop. work(arg) runs on a pool thread and must touch nothing the loop owns; done(arg)
 * then runs on the loop. The queue is bounded: when it is full, submit refuses and the caller
 * answers 503 rather than letting memory and latency grow.
 */
#include <stdbool.h>

#include "lib/util.h"

struct event_base;
struct workpool;

typedef void (*workpool_fn)(void *arg);

struct workpool *workpool_new(struct event_base *base, int threads, int max_queued);
/* Finishes every queued job, then hands each result to its done() before returning. */
void workpool_free(struct workpool *wp);
bool workpool_submit(struct workpool *wp, workpool_fn work, workpool_fn done, void *arg) WARN_UNUSED;

#endif
