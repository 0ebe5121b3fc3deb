#ifndef FEEGATE_DB_H
#define FEEGATE_DB_H
/* Every SQL statement the gateway runs, prepared on each pooled connection by name. */
#include "lib/pgpool.h"

extern const struct pg_statement db_statements[];
extern const int db_statement_count;

#endif
