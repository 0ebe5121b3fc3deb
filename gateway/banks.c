#include "gateway/banks.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"

#define MAX_BANKS 16

static struct bank banks[MAX_BANKS];
static size_t nbanks;

static const char *setting(const char *name)
{
	if (!name)
		return NULL;
	const char *v = config_string(name);
	return v && *v ? v : NULL;
}

void banks_init(void)
{
	nbanks = 0;
	for (size_t i = 0; i < adapter_count() && nbanks < MAX_BANKS; i++) {
		const adapter *a = adapter_at(i);
		struct bank *b = &banks[nbanks++];
		b->adapter = a;
		char url_key[64];
		int n = snprintf(url_key, sizeof url_key, "FEEGATE_");
		for (const char *p = a->name; *p && n < 50; p++)
			url_key[n++] = (char)toupper((unsigned char)*p);
		snprintf(url_key + n, sizeof url_key - (size_t)n, "_URL");
		const char *url = setting(url_key);
		b->config.bank_url = xstrdup(url ? url : cfg.banksim_url);
		b->config.merchant_id = setting(a->env_merchant_id);
		b->config.access_key = setting(a->env_access_key);
		b->config.secret = setting(a->env_secret);
		b->config.ipn_url = xasprintf("%s/ipn/%s", cfg.public_url, a->name);
		b->config.return_url = xasprintf("%s/return/%s", cfg.public_url, a->name);
		b->enabled = (!a->env_merchant_id || b->config.merchant_id) && (!a->env_access_key || b->config.access_key) &&
			     (!a->env_secret || b->config.secret);
		if (!b->enabled)
			log_warn(NULL, "bank %s disabled: its credentials (%s%s%s) are not configured", a->name,
				 a->env_merchant_id ? a->env_merchant_id : "", a->env_secret ? " " : "",
				 a->env_secret ? a->env_secret : "");
	}
}

const struct bank *bank_find(const char *name)
{
	for (size_t i = 0; i < nbanks; i++) {
		if (banks[i].enabled && strcmp(banks[i].adapter->name, name) == 0)
			return &banks[i];
	}
	return NULL;
}

size_t bank_count(void)
{
	return nbanks;
}

const struct bank *bank_at(size_t i)
{
	return i < nbanks ? &banks[i] : NULL;
}

void bank_send(const adapter_request *r, httpc_done_fn done, void *arg)
{
	struct httpc_header h[ADAPTER_MAX_HEADERS];
	for (size_t i = 0; i < r->n_headers; i++)
		h[i] = (struct httpc_header){r->headers[i].name, r->headers[i].value};
	httpc_send(r->method, r->url, h, r->n_headers, r->body, r->body_len, cfg.bank_timeout_ms, done, arg);
}
