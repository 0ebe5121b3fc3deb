/* lib/workpool: work runs off the loop, each result comes back on the loop once, and the
 * queue's bound is kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>

#include "lib/workpool.h"

struct job {
	pthread_t worker, loop;
	int value, result, done_calls;
	pthread_mutex_t *gate; /* held by the test to keep jobs waiting */
};

static struct event_base *base;
static int finished;

static void work(void *p)
{
	struct job *j = p;
	if (j->gate) {
		pthread_mutex_lock(j->gate);
		pthread_mutex_unlock(j->gate);
	}
	j->worker = pthread_self();
	j->result = j->value * j->value;
}

static void done(void *p)
{
	struct job *j = p;
	j->loop = pthread_self();
	j->done_calls++;
	if (++finished == 8)
		event_base_loopbreak(base);
}

static void test_results_come_back_on_the_loop(void **state)
{
	base = event_base_new();
	struct workpool *wp = workpool_new(base, 2, 8);
	struct job jobs[8] = {{0}};
	finished = 0;
	for (int i = 0; i < 8; i++) {
		jobs[i].value = i + 1;
		assert_true(workpool_submit(wp, work, done, &jobs[i]));
	}
	event_base_dispatch(base);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(jobs[i].result, (i + 1) * (i + 1));
		assert_int_equal(jobs[i].done_calls, 1);
		assert_true(pthread_equal(jobs[i].loop, pthread_self()));
		assert_false(pthread_equal(jobs[i].worker, pthread_self()));
	}
	workpool_free(wp);
	event_base_free(base);
}

static void test_queue_is_bounded(void **state)
{
	base = event_base_new();
	pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&gate);
	struct workpool *wp = workpool_new(base, 1, 3);
	struct job jobs[4] = {{0}};
	finished = 5; /* done() breaks the loop at 8: after these three */
	for (int i = 0; i < 3; i++) {
		jobs[i].gate = &gate;
		assert_true(workpool_submit(wp, work, done, &jobs[i]));
	}
	assert_false(workpool_submit(wp, work, done, &jobs[3])); /* full: refused, never run */
	pthread_mutex_unlock(&gate);
	event_base_dispatch(base);
	for (int i = 0; i < 3; i++)
		assert_int_equal(jobs[i].done_calls, 1);
	assert_int_equal(jobs[3].done_calls, 0);
	assert_true(workpool_submit(wp, work, done, &jobs[3])); /* room again */
	workpool_free(wp); /* finishes it and hands the result back */
	assert_int_equal(jobs[3].done_calls, 1);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results_come_back_on_the_loop),
		cmocka_unit_test(test_queue_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
