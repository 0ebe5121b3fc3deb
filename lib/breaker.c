#include "lib/breaker.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <event2/buffer.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"

#define SLOTS 16

struct slot {
	char name[24];
	int32_t consecutive_failures;
	int64_t open_until_us; /* 0: closed */
	int32_t trial_in_flight;
};

static struct slot *slots;
static void render_metrics(struct evbuffer *out);
static int max_failures = 3;
static int cooldown_us = 5000000;

bool breaker_init(int failures, int cooldown_ms)
{
	void *p = mmap(NULL, sizeof(struct slot) * SLOTS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return false;
	memset(p, 0, sizeof(struct slot) * SLOTS);
	slots = p;
	max_failures = failures;
	cooldown_us = cooldown_ms * 1000;
	metrics_collector(render_metrics);
	return true;
}

/* Slots are claimed by name on first use; a race between workers claims one slot each for
 * the same name only if both write at once, which the compare-and-swap on name[0] prevents. */
static struct slot *find(const char *bank)
{
	if (!slots)
		return NULL;
	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &slots[i];
		if (s->name[0] == '\0') {
			char expected = '\0';
			if (__atomic_compare_exchange_n(&s->name[0], &expected, '#', false, __ATOMIC_ACQ_REL,
							__ATOMIC_ACQUIRE)) {
				snprintf(s->name + 1, sizeof s->name - 1, "%s", bank + 1);
				__atomic_store_n(&s->name[0], bank[0], __ATOMIC_RELEASE);
				return s;
			}
		}
		while (__atomic_load_n(&s->name[0], __ATOMIC_ACQUIRE) == '#')
			;
		if (strcmp(s->name, bank) == 0)
			return s;
	}
	return NULL;
}

bool breaker_is_open(const char *bank)
{
	struct slot *s = find(bank);
	if (!s)
		return false;
	int64_t until = __atomic_load_n(&s->open_until_us, __ATOMIC_ACQUIRE);
	return until != 0 && util_monotonic_us() < until;
}

bool breaker_allow(const char *bank)
{
	struct slot *s = find(bank);
	if (!s)
		return true;
	int64_t until = __atomic_load_n(&s->open_until_us, __ATOMIC_ACQUIRE);
	if (until == 0)
		return true;
	if (util_monotonic_us() < until)
		return false;
	/* half-open: one trial at a time */
	int32_t zero = 0;
	return __atomic_compare_exchange_n(&s->trial_in_flight, &zero, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

void breaker_record(const char *bank, bool ok)
{
	struct slot *s = find(bank);
	if (!s)
		return;
	__atomic_store_n(&s->trial_in_flight, 0, __ATOMIC_RELEASE);
	if (ok) {
		if (__atomic_exchange_n(&s->open_until_us, 0, __ATOMIC_ACQ_REL) != 0)
			log_info(NULL, "bank %s answers again; circuit closed", bank);
		__atomic_store_n(&s->consecutive_failures, 0, __ATOMIC_RELEASE);
		return;
	}
	int32_t n = __atomic_add_fetch(&s->consecutive_failures, 1, __ATOMIC_ACQ_REL);
	int64_t until = __atomic_load_n(&s->open_until_us, __ATOMIC_ACQUIRE);
	if (n >= max_failures || until != 0) {
		__atomic_store_n(&s->open_until_us, util_monotonic_us() + cooldown_us, __ATOMIC_RELEASE);
		if (until == 0)
			log_warn(NULL, "bank %s failed %d calls in a row; circuit open, hidden from checkout", bank, n);
	}
}

void breaker_watch(const char *bank)
{
	(void)find(bank);
}

/* Computed at scrape time: the half-open state is a matter of the clock, not of an event. */
static void render_metrics(struct evbuffer *out)
{
	evbuffer_add_printf(out, "# HELP feegate_bank_breaker_state Circuit breaker per bank: 0 closed, 1 open (hidden "
				 "from checkout), 2 half-open (one trial call allowed).\n"
				 "# TYPE feegate_bank_breaker_state gauge\n");
	for (int i = 0; i < SLOTS; i++) {
		const struct slot *s = &slots[i];
		char c = __atomic_load_n(&s->name[0], __ATOMIC_ACQUIRE);
		if (c == '\0' || c == '#')
			continue;
		int64_t until = __atomic_load_n(&s->open_until_us, __ATOMIC_ACQUIRE);
		int state = until == 0 ? 0 : util_monotonic_us() < until ? 1 : 2;
		evbuffer_add_printf(out, "feegate_bank_breaker_state{bank=\"%s\"} %d\n", s->name, state);
	}
	evbuffer_add_printf(out, "# HELP feegate_bank_consecutive_failures Failed calls in a row per bank (reset by a success).\n"
				 "# TYPE feegate_bank_consecutive_failures gauge\n");
	for (int i = 0; i < SLOTS; i++) {
		const struct slot *s = &slots[i];
		char c = __atomic_load_n(&s->name[0], __ATOMIC_ACQUIRE);
		if (c == '\0' || c == '#')
			continue;
		evbuffer_add_printf(out, "feegate_bank_consecutive_failures{bank=\"%s\"} %d\n", s->name,
				    (int)__atomic_load_n(&s->consecutive_failures, __ATOMIC_ACQUIRE));
	}
}
