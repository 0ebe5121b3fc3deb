#ifndef FEEGATE_CLI_H
#define FEEGATE_CLI_H
/* Operator commands: blocking libpq is fine here, no event loop runs. Each returns an exit code. */
int cli_migrate(int argc, char **argv);
int cli_agency(int argc, char **argv);
int cli_client(int argc, char **argv);
int cli_staff(int argc, char **argv);
int cli_ledger(int argc, char **argv);
/* receipt_cli.c */
int cli_receipt(int argc, char **argv);
int cli_agency_receipts(int argc, char **argv);

#include <libpq-fe.h>
/* DATABASE_URL's connection, or NULL (the reason printed). */
PGconn *cli_connect_db(void);
#endif
