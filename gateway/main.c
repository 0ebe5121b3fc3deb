/* feegate: `serve` runs the gateway; the other commands are for operators. */
#include <stdio.h>
#include <string.h>

#include "gateway/banks.h"
#include "gateway/cli.h"
#include "gateway/reports.h"
#include "gateway/server.h"
#include "lib/config.h"
#include "lib/log.h"

static void usage(void)
{
	fprintf(stderr, "usage: feegate serve | migrate | agency create|receipts|budget-codes ... | client create ... | "
			"staff create|disable ... | token create|revoke ... | audit verify | ledger check | "
			"statement import ... | report settlement ... | receipt keygen|verify|backfill|export ...\n"
			"       feegate config   (prints the effective settings, secrets masked)\n");
}

static void print_line(const char *text, void *arg)
{
	printf("%s\n", text);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "serve";
	char err[256];
	if (strcmp(cmd, "migrate") == 0)
		return cli_migrate(argc - 2, argv + 2);
	if (strcmp(cmd, "agency") == 0)
		return cli_agency(argc - 2, argv + 2);
	if (strcmp(cmd, "client") == 0)
		return cli_client(argc - 2, argv + 2);
	if (strcmp(cmd, "staff") == 0)
		return cli_staff(argc - 2, argv + 2);
	if (strcmp(cmd, "report") == 0)
		return reports_cli(argc - 2, argv + 2);
	if (strcmp(cmd, "ledger") == 0)
		return cli_ledger(argc - 2, argv + 2);
	if (strcmp(cmd, "statement") == 0)
		return cli_statement(argc - 2, argv + 2);
	if (strcmp(cmd, "token") == 0)
		return cli_token(argc - 2, argv + 2);
	if (strcmp(cmd, "audit") == 0)
		return cli_audit(argc - 2, argv + 2);
	if (strcmp(cmd, "receipt") == 0)
		return cli_receipt(argc - 2, argv + 2);
	if (strcmp(cmd, "serve") == 0 || strcmp(cmd, "config") == 0) {
		if (!banks_register_settings())
			return 1;
		if (!config_load(err, sizeof err)) {
			fprintf(stderr, "configuration error: %s\n", err);
			return 1;
		}
		if (strcmp(cmd, "config") == 0) {
			config_dump(print_line, NULL);
			return 0;
		}
		static const char *const levels[] = {"debug", "info", "warn", "error"};
		for (int i = 0; i < 4; i++) {
			if (strcmp(cfg.log_level, levels[i]) == 0)
				log_set_level((enum log_level)i);
		}
		return server_run();
	}
	usage();
	return 2;
}
