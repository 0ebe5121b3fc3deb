#include "tools/banksim/banksim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static const char *const service_names[SIM_SERVICE_COUNT] = { "vnpay", "momo", "vietqr", "portal" };

const char *sim_service_name(sim_service svc)
{
	return svc < SIM_SERVICE_COUNT ? service_names[svc] : "?";
}

bool sim_service_from_name(const char *name, sim_service *out)
{
	for (int i = 0; name && i < SIM_SERVICE_COUNT; i++) {
		if (strcmp(service_names[i], name) == 0) {
			*out = (sim_service)i;
			return true;
		}
	}
	return false;
}

const char *sim_status_name(sim_status st)
{
	switch (st) {
	case SIM_PENDING: return "pending";
	case SIM_SUCCEEDED: return "succeeded";
	case SIM_FAILED: return "failed";
	case SIM_EXPIRED: return "expired";
	}
	return "?";
}

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

void *sim_map_get(const sim_map *m, const char *key)
{
	if (!m->n_buckets)
		return NULL;
	for (sim_map_entry *e = m->buckets[hash_key(key) % m->n_buckets]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e->value;
	return NULL;
}

static bool map_grow(sim_map *m)
{
	size_t n = m->n_buckets ? m->n_buckets * 2 : 64;
	sim_map_entry **b = calloc(n, sizeof(*b));
	if (!b)
		return false;
	for (size_t i = 0; i < m->n_buckets; i++) {
		sim_map_entry *e = m->buckets[i];
		while (e) {
			sim_map_entry *next = e->next;
			size_t slot = hash_key(e->key) % n;
			e->next = b[slot];
			b[slot] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = n;
	return true;
}

bool sim_map_put(sim_map *m, const char *key, void *value)
{
	if (m->count + 1 > m->n_buckets && !map_grow(m))
		return false;
	size_t slot = hash_key(key) % m->n_buckets;
	for (sim_map_entry *e = m->buckets[slot]; e; e = e->next) {
		if (strcmp(e->key, key) == 0) {
			e->value = value;
			return true;
		}
	}
	sim_map_entry *e = malloc(sizeof(*e));
	if (!e)
		return false;
	e->key = strdup(key);
	if (!e->key) {
		free(e);
		return false;
	}
	e->value = value;
	e->next = m->buckets[slot];
	m->buckets[slot] = e;
	m->count++;
	return true;
}

void sim_map_clear(sim_map *m)
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		sim_map_entry *e = m->buckets[i];
		while (e) {
			sim_map_entry *next = e->next;
			free(e->key);
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	memset(m, 0, sizeof(*m));
}

bool sim_strset(char **dst, const char *src)
{
	char *copy = strdup(src ? src : "");
	if (!copy)
		return false;
	free(*dst);
	*dst = copy;
	return true;
}

void sim_store_init(sim_store *st)
{
	memset(st, 0, sizeof(*st));
}

static void payment_free(sim_payment *p)
{
	free(p->ref);
	free(p->request_id);
	free(p->txn_id);
	free(p->order_info);
	free(p->return_url);
	free(p->ipn_url);
	free(p->extra_data);
	free(p->create_date);
	free(p->client_ip);
	free(p->token);
	free(p->pay_url);
	free(p->result_code);
	free(p->account_no);
	free(p->content);
	free(p->refunds);
	sim_notice_free(&p->last_notice);
	free(p);
}

void sim_store_clear(sim_store *st)
{
	int64_t last = st->last_txn;
	for (size_t i = 0; i < st->n_all; i++)
		payment_free(st->all[i]);
	for (size_t i = 0; i < st->n_refunds; i++) {
		free(st->all_refunds[i]->ref);
		free(st->all_refunds[i]->txn_id);
		free(st->all_refunds[i]->answer);
		free(st->all_refunds[i]);
	}
	free(st->all);
	free(st->all_refunds);
	sim_map_clear(&st->payments);
	sim_map_clear(&st->by_txn);
	sim_map_clear(&st->refunds);
	sim_store_init(st);
	st->last_txn = last;
}

static void store_key(char *out, size_t cap, sim_service bank, const char *ref)
{
	snprintf(out, cap, "%s:%s", sim_service_name(bank), ref ? ref : "");
}

sim_payment *sim_store_find(sim_store *st, sim_service bank, const char *ref)
{
	char key[256];
	store_key(key, sizeof(key), bank, ref);
	return sim_map_get(&st->payments, key);
}

sim_payment *sim_store_find_txn(sim_store *st, sim_service bank, const char *txn_id)
{
	char key[256];
	store_key(key, sizeof(key), bank, txn_id);
	return sim_map_get(&st->by_txn, key);
}

sim_refund *sim_store_find_refund(sim_store *st, sim_service bank, const char *ref)
{
	char key[256];
	store_key(key, sizeof(key), bank, ref);
	return sim_map_get(&st->refunds, key);
}

static bool grow(void ***items, size_t n, size_t *cap)
{
	if (n < *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 64;
	void **p = realloc(*items, c * sizeof(void *));
	if (!p)
		return false;
	*items = p;
	*cap = c;
	return true;
}

sim_payment *sim_store_add(sim_store *st, sim_service bank, const char *ref)
{
	char key[256];
	if (!ref || strlen(ref) > 200 || sim_store_find(st, bank, ref))
		return NULL;
	store_key(key, sizeof(key), bank, ref);
	sim_payment *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->bank = bank;
	p->ref = strdup(ref);
	if (!p->ref || !grow((void ***)&st->all, st->n_all, &st->cap_all) ||
	    !sim_map_put(&st->payments, key, p)) {
		payment_free(p);
		return NULL;
	}
	st->all[st->n_all++] = p;
	return p;
}

bool sim_store_set_txn(sim_store *st, sim_payment *p, const char *txn_id)
{
	char key[256];
	store_key(key, sizeof(key), p->bank, txn_id);
	return sim_strset(&p->txn_id, txn_id) && sim_map_put(&st->by_txn, key, p);
}

sim_refund *sim_store_add_refund(sim_store *st, sim_payment *p, const char *ref, const char *txn_id,
				 int64_t amount, time_t at)
{
	char key[256];
	store_key(key, sizeof(key), p->bank, ref);
	if (strlen(ref) > 200 || sim_map_get(&st->refunds, key))
		return NULL;
	sim_refund *r = calloc(1, sizeof(*r));
	sim_refund **list = realloc(p->refunds, (p->n_refunds + 1) * sizeof(*list));
	if (!r || !list) {
		free(r);
		return NULL;
	}
	p->refunds = list;
	r->ref = strdup(ref);
	r->txn_id = strdup(txn_id);
	r->amount = amount;
	r->at = at;
	r->payment = p;
	if (!r->ref || !r->txn_id ||
	    !grow((void ***)&st->all_refunds, st->n_refunds, &st->cap_refunds) ||
	    !sim_map_put(&st->refunds, key, r)) {
		free(r->ref);
		free(r->txn_id);
		free(r);
		return NULL;
	}
	p->refunds[p->n_refunds++] = r;
	st->all_refunds[st->n_refunds++] = r;
	p->refunded += amount;
	return r;
}

int64_t sim_store_next_txn(sim_store *st)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	int64_t now_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	st->last_txn = now_ms > st->last_txn ? now_ms : st->last_txn + 1;
	return st->last_txn;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *sim_payment_json(const sim_payment *p)
{
	json_t *refunds = json_array();
	for (size_t i = 0; i < p->n_refunds; i++)
		json_array_append_new(refunds, json_pack("{s:s, s:s, s:I, s:I}", "ref", p->refunds[i]->ref,
							 "txn_id", p->refunds[i]->txn_id, "amount",
							 (json_int_t)p->refunds[i]->amount, "at",
							 (json_int_t)p->refunds[i]->at));
	return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:o}",
			 "bank", sim_service_name(p->bank), "ref", p->ref, "amount", (json_int_t)p->amount,
			 "status", sim_status_name(p->status), "txn_id", str_or_null(p->txn_id),
			 "result_code", str_or_null(p->result_code), "order_info", str_or_null(p->order_info),
			 "account_no", str_or_null(p->account_no), "content", str_or_null(p->content),
			 "pay_url", str_or_null(p->pay_url), "created_at", (json_int_t)p->created_at,
			 "expires_at", (json_int_t)p->expires_at, "paid_at", (json_int_t)p->paid_at,
			 "refunded", (json_int_t)p->refunded, "refunds", refunds);
}
