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
/* A command's options, one table: `--name value` fills a text field, a flag sets a bool, a list
 * option may repeat (at most CLI_LIST_MAX values, counted in an int field). */
#include <stddef.h>
#define CLI_LIST_MAX 32
enum cli_option_kind { CLI_TEXT, CLI_FLAG, CLI_LIST };
struct cli_option {
	const char *name; /* "--code" */
	enum cli_option_kind kind;
	size_t field;     /* offset of the const char * (CLI_TEXT), bool (CLI_FLAG), or const char *[CLI_LIST_MAX] */
	size_t count;     /* CLI_LIST: offset of its int count */
};
#define CLI_OPT(type, name, field) {name, CLI_TEXT, offsetof(type, field), 0}
#define CLI_FLAG_OPT(type, name, field) {name, CLI_FLAG, offsetof(type, field), 0}
#define CLI_LIST_OPT(type, name, field, count) {name, CLI_LIST, offsetof(type, field), offsetof(type, count)}
/* Zeroes out[size], then fills it from argv; false (the reason and usage printed) on an unknown
 * option or a missing value. */
bool cli_parse_options(int argc, char **argv, const struct cli_option *opts, size_t n, void *out, size_t size,
		       const char *usage);
/* receipt_cli.c */
int cli_receipt(int argc, char **argv);
int cli_agency_receipts(int argc, char **argv);

#endif
