#ifndef FEEGATE_BANKS_H
#define FEEGATE_BANKS_H
/*
 * The banks this gateway is configured for: each adapter in the registry, with its credentials
 * read from the settings it names (adapter->env_*), which banks_register_settings() adds to the
 * settings table. A bank whose credentials are missing is
 * disabled with a warning at start-up. Nothing here names a bank.
 */
#include "adapters/adapter.h"
#include "lib/httpc.h"
#include "lib/util.h"

struct bank {
	const adapter *adapter;
	adapter_config config;
	bool enabled;
};

/* Declares every adapter's settings to lib/config; before config_load. */
bool banks_register_settings(void) WARN_UNUSED;
void banks_init(void);
/* The enabled bank called name, or NULL. */
const struct bank *bank_find(const char *name);
size_t bank_count(void);
const struct bank *bank_at(size_t i);
/* Sends a request an adapter built, with the bank call deadline (FEEGATE_BANK_TIMEOUT_MS). */
void bank_send(const adapter_request *r, httpc_done_fn done, void *arg);

#endif
