#ifndef FEEGATE_CLI_H
#define FEEGATE_CLI_H
/* Operator commands: blocking libpq is fine here, no event loop runs. Each returns an exit code. */
int cli_migrate(int argc, char **argv);
int cli_agency(int argc, char **argv);
int cli_client(int argc, char **argv);
int cli_staff(int argc, char **argv);
int cli_ledger(int argc, char **argv);
int cli_statement(int argc, char **argv);
int cli_token(int argc, char **argv);
int cli_audit(int argc, char **argv);

#include <libpq-fe.h>
#include <stdbool.h>

#include "lib/pgrow.h"
/* DATABASE_URL's connection, or NULL (the reason printed). */
PGconn *cli_connect(void);
/* A parameterized statement; prints the error (what: the thing being written) and returns NULL
 * on failure. */
PGresult *cli_run(PGconn *c, const char *sql, int n, const char *const *params, const char *what);
bool cli_exec(PGconn *c, const char *sql);
/* A statement that answers one text column "id" (RETURNING id, a lookup). */
struct cli_id_row {
	const char *id;
};
extern const struct pg_col cli_id_cols[1];
/* receipt_cli.c */
int cli_receipt(int argc, char **argv);
int cli_agency_receipts(int argc, char **argv);

#endif
