#include "lib/workpool.h"

#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/mem.h"

struct job {
	workpool_fn work, done;
	void *arg;
	struct job *next;
};

struct workpool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *todo_head, *todo_tail; /* waiting for a thread */
	struct job *done_head;             /* finished, waiting for the loop */
	int queued, max_queued, nthreads;
	bool stopping;
	pthread_t *threads;
	int wake[2]; /* pipe: a thread writes a byte when it finishes a job */
	struct event *ev;
};

static void *thread_main(void *p)
{
	struct workpool *wp = p;
	pthread_mutex_lock(&wp->mu);
	for (;;) {
		while (!wp->todo_head && !wp->stopping)
			pthread_cond_wait(&wp->cv, &wp->mu);
		if (!wp->todo_head)
			break;
		struct job *j = wp->todo_head;
		wp->todo_head = j->next;
		if (!wp->todo_head)
			wp->todo_tail = NULL;
		pthread_mutex_unlock(&wp->mu);
		j->work(j->arg);
		pthread_mutex_lock(&wp->mu);
		j->next = wp->done_head;
		wp->done_head = j;
		char b = 1;
		ssize_t w = write(wp->wake[1], &b, 1); /* the pipe being full is fine: a wake-up is pending */
		(void)w;
	}
	pthread_mutex_unlock(&wp->mu);
	return NULL;
}

static void drain(evutil_socket_t fd, short what, void *arg)
{
	struct workpool *wp = arg;
	char buf[64];
	while (read(wp->wake[0], buf, sizeof buf) > 0)
		;
	pthread_mutex_lock(&wp->mu);
	struct job *list = wp->done_head;
	wp->done_head = NULL;
	pthread_mutex_unlock(&wp->mu);
	while (list) {
		struct job *j = list;
		list = j->next;
		pthread_mutex_lock(&wp->mu);
		wp->queued--;
		pthread_mutex_unlock(&wp->mu);
		j->done(j->arg);
		free(j);
	}
}

struct workpool *workpool_new(struct event_base *base, int threads, int max_queued)
{
	struct workpool *wp = xcalloc(1, sizeof *wp);
	pthread_mutex_init(&wp->mu, NULL);
	pthread_cond_init(&wp->cv, NULL);
	wp->max_queued = max_queued;
	if (pipe2(wp->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		free(wp);
		return NULL;
	}
	wp->ev = event_new(base, wp->wake[0], EV_READ | EV_PERSIST, drain, wp);
	event_add(wp->ev, NULL);
	wp->threads = xcalloc((size_t)threads, sizeof(pthread_t));
	for (int i = 0; i < threads; i++)
		if (pthread_create(&wp->threads[wp->nthreads], NULL, thread_main, wp) == 0)
			wp->nthreads++;
	return wp;
}

bool workpool_submit(struct workpool *wp, workpool_fn work, workpool_fn done, void *arg)
{
	if (!wp || wp->nthreads == 0)
		return false;
	pthread_mutex_lock(&wp->mu);
	if (wp->stopping || wp->queued >= wp->max_queued) {
		pthread_mutex_unlock(&wp->mu);
		return false;
	}
	struct job *j = xcalloc(1, sizeof *j);
	j->work = work;
	j->done = done;
	j->arg = arg;
	if (wp->todo_tail)
		wp->todo_tail->next = j;
	else
		wp->todo_head = j;
	wp->todo_tail = j;
	wp->queued++;
	pthread_cond_signal(&wp->cv);
	pthread_mutex_unlock(&wp->mu);
	return true;
}

void workpool_free(struct workpool *wp)
{
	if (!wp)
		return;
	pthread_mutex_lock(&wp->mu);
	wp->stopping = true;
	pthread_cond_broadcast(&wp->cv);
	pthread_mutex_unlock(&wp->mu);
	for (int i = 0; i < wp->nthreads; i++)
		pthread_join(wp->threads[i], NULL);
	/* the threads have emptied the queue; hand the results back */
	drain(wp->wake[0], EV_READ, wp);
	event_free(wp->ev);
	close(wp->wake[0]);
	close(wp->wake[1]);
	pthread_mutex_destroy(&wp->mu);
	pthread_cond_destroy(&wp->cv);
	free(wp->threads);
	free(wp);
}
