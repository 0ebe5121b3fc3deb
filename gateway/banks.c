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

/* Each adapter's settings: the credentials it names (adapter->env_*) and FEEGATE_<NAME>_URL,
 * its base URL (banksim's when unset). */
enum bank_setting { BANK_URL, BANK_MERCHANT_ID, BANK_ACCESS_KEY, BANK_SECRET, BANK_NSETTINGS };
static struct config_setting settings[MAX_BANKS][BANK_NSETTINGS];
static char *values[MAX_BANKS][BANK_NSETTINGS];
static char url_names[MAX_BANKS][64];

bool banks_register_settings(void)
{
	for (size_t i = 0; i < adapter_count() && i < MAX_BANKS; i++) {
		const adapter *a = adapter_at(i);
		int n = snprintf(url_names[i], sizeof url_names[i], "FEEGATE_");
		for (const char *p = a->name; *p && n < 50; p++)
			url_names[i][n++] = (char)toupper((unsigned char)*p);
		snprintf(url_names[i] + n, sizeof url_names[i] - (size_t)n, "_URL");
		const char *names[BANK_NSETTINGS] = {url_names[i], a->env_merchant_id, a->env_access_key, a->env_secret};
		for (int k = 0; k < BANK_NSETTINGS; k++) {
			if (!names[k])
				continue;
			settings[i][k] = (struct config_setting){
				.name = names[k],
				.type = CONFIG_STR,
				.value = &values[i][k],
				.secret = k == BANK_ACCESS_KEY || k == BANK_SECRET,
				.fallback = k == BANK_URL ? "BANKSIM_URL" : NULL,
			};
			if (!config_register(&settings[i][k])) {
				log_error(NULL, "bank %s: setting %s cannot be registered", a->name, names[k]);
				return false;
			}
		}
	}
	return true;
}

static const char *setting(size_t bank, enum bank_setting k)
{
	const char *v = values[bank][k];
	return v && *v ? v : NULL;
}

void banks_init(void)
{
	nbanks = 0;
	for (size_t i = 0; i < adapter_count() && nbanks < MAX_BANKS; i++) {
		const adapter *a = adapter_at(i);
		struct bank *b = &banks[nbanks++];
		b->adapter = a;
		const char *url = setting(i, BANK_URL);
		b->config.bank_url = xstrdup(url ? url : cfg.banksim_url);
		b->config.merchant_id = setting(i, BANK_MERCHANT_ID);
		b->config.access_key = setting(i, BANK_ACCESS_KEY);
		b->config.secret = setting(i, BANK_SECRET);
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
