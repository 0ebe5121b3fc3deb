#include "tools/banksim/banksim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum knob_type { KNOB_BOOL, KNOB_INT } knob_type;

static const struct knob {
	const char *name;
	knob_type type;
	size_t offset;
	int min, max;
} knobs[] = {
	{ "delay_ms", KNOB_INT, offsetof(sim_faults, delay_ms), 0, 3600000 },
	{ "drop", KNOB_BOOL, offsetof(sim_faults, drop), 0, 1 },
	{ "duplicate", KNOB_BOOL, offsetof(sim_faults, duplicate), 0, 1 },
	{ "reorder", KNOB_BOOL, offsetof(sim_faults, reorder), 0, 1 },
	{ "reorder_hold_ms", KNOB_INT, offsetof(sim_faults, reorder_hold_ms), 0, 3600000 },
	{ "wrong_amount", KNOB_BOOL, offsetof(sim_faults, wrong_amount), 0, 1 },
	{ "bad_signature", KNOB_BOOL, offsetof(sim_faults, bad_signature), 0, 1 },
	{ "stale_timestamp", KNOB_BOOL, offsetof(sim_faults, stale_timestamp), 0, 1 },
	{ "allow_expired", KNOB_BOOL, offsetof(sim_faults, allow_expired), 0, 1 },
	{ "api_status", KNOB_INT, offsetof(sim_faults, api_status), 0, 599 },
	{ "api_status_times", KNOB_INT, offsetof(sim_faults, api_status_times), 0, 1000000 },
	{ "api_delay_ms", KNOB_INT, offsetof(sim_faults, api_delay_ms), 0, 3600000 },
	{ "api_hang", KNOB_BOOL, offsetof(sim_faults, api_hang), 0, 1 },
	{ "fee_bps", KNOB_INT, offsetof(sim_faults, fee_bps), 0, 10000 },
	{ "retries", KNOB_INT, offsetof(sim_faults, retries), 0, 100 },
	{ "retry_delay_ms", KNOB_INT, offsetof(sim_faults, retry_delay_ms), 0, 3600000 },
	{ "timeout_ms", KNOB_INT, offsetof(sim_faults, timeout_ms), 1, 600000 },
};

#define N_KNOBS (sizeof(knobs) / sizeof(knobs[0]))

void sim_faults_default(sim_faults *f)
{
	memset(f, 0, sizeof(*f));
	f->reorder_hold_ms = 5000;
	f->retries = 2;
	f->retry_delay_ms = 1000;
	f->timeout_ms = 5000;
}

static const struct knob *knob_find(const char *name)
{
	for (size_t i = 0; i < N_KNOBS; i++)
		if (strcmp(knobs[i].name, name) == 0)
			return &knobs[i];
	return NULL;
}

json_t *sim_faults_json(const sim_faults *f)
{
	json_t *obj = json_object();
	for (size_t i = 0; obj && i < N_KNOBS; i++) {
		const char *field = (const char *)f + knobs[i].offset;
		if (knobs[i].type == KNOB_BOOL)
			json_object_set_new(obj, knobs[i].name, json_boolean(*(const bool *)field));
		else
			json_object_set_new(obj, knobs[i].name, json_integer(*(const int *)field));
	}
	return obj;
}

static bool knob_set(sim_faults *f, const struct knob *k, long long v, char *err, size_t err_cap)
{
	if (v < k->min || v > k->max) {
		snprintf(err, err_cap, "%s must be between %d and %d", k->name, k->min, k->max);
		return false;
	}
	char *field = (char *)f + k->offset;
	if (k->type == KNOB_BOOL)
		*(bool *)field = v != 0;
	else
		*(int *)field = (int)v;
	return true;
}

static bool listed(const char *const *skip, const char *name)
{
	for (size_t i = 0; skip && skip[i]; i++)
		if (strcmp(skip[i], name) == 0)
			return true;
	return false;
}

bool sim_faults_apply_json(sim_faults *f, const json_t *obj, const char *const *skip, char *err,
			   size_t err_cap)
{
	sim_faults copy = *f;
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)obj, name, v) {
		if (listed(skip, name))
			continue;
		const struct knob *k = knob_find(name);
		if (!k) {
			snprintf(err, err_cap, "unknown knob %s", name);
			return false;
		}
		long long n;
		if (json_is_boolean(v))
			n = json_is_true(v);
		else if (json_is_integer(v))
			n = json_integer_value(v);
		else if (json_is_null(v))
			n = 0;
		else {
			snprintf(err, err_cap, "%s must be a %s", name, k->type == KNOB_BOOL ? "boolean" : "integer");
			return false;
		}
		if (!knob_set(&copy, k, n, err, err_cap))
			return false;
	}
	*f = copy;
	return true;
}

bool sim_param_true(const char *v)
{
	return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
		     strcasecmp(v, "on") == 0);
}

bool sim_faults_apply_params(sim_faults *f, const params *p, char *err, size_t err_cap)
{
	sim_faults copy = *f;
	for (size_t i = 0; i < p->len; i++) {
		const struct knob *k = knob_find(p->items[i].name);
		if (!k)
			continue; /* other form fields */
		const char *v = p->items[i].value;
		long long n;
		if (k->type == KNOB_BOOL) {
			n = sim_param_true(v) || *v == '\0';
		} else {
			char *end = NULL;
			n = strtoll(v, &end, 10);
			if (!*v || *end) {
				snprintf(err, err_cap, "%s must be an integer", k->name);
				return false;
			}
		}
		if (!knob_set(&copy, k, n, err, err_cap))
			return false;
	}
	*f = copy;
	return true;
}
