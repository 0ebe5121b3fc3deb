#ifndef FEEGATE_CLI_H
#define FEEGATE_CLI_H
/* Operator commands: blocking libpq is fine here, no event loop runs. Each returns an exit code. */
int cli_migrate(int argc, char **argv);
int cli_agency(int argc, char **argv);
int cli_client(int argc, char **argv);
int cli_staff(int argc, char **argv);
int cli_ledger(int argc, char **argv);
int cli_statement(int argc, char **argv);
#endif
