#ifndef FEEGATE_PGROW_H
#define FEEGATE_PGROW_H
/*
 * The typed side of the C-SQL seam. Each statement's result columns are named once, in a table
 * of struct pg_col: the SQL's column name, its type, and the field of the caller's row struct it
 * fills (PG_COL takes the name from the field, so the two cannot drift apart). pg_row() decodes
 * one result row into that struct and checks the result's column names against the table first:
 * a column renamed, dropped or moved in the SQL fails loudly (logged, false), never read as
 * another. The words the SQL answers with (outcomes, verdicts) decode through a word table
 * (struct pg_word) into the caller's enum, so no caller compares them as strings.
 */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

enum pg_col_type {
	PG_TEXT,      /* const char *: the text, "" for SQL NULL (as PQgetvalue) */
	PG_TEXT_NULL, /* const char *: the text, NULL for SQL NULL */
	PG_INT64,     /* int64_t: 0 for SQL NULL */
	PG_DOUBLE,    /* double: 0 for SQL NULL */
	PG_BOOL,      /* bool: the SQL's true */
	PG_WORD,      /* int: the word's value in the column's word table */
};

/* A word table ends with {NULL, value}: the value of a word it does not list (and of NULL). */
struct pg_word {
	const char *word;
	int value;
};

struct pg_col {
	const char *name; /* the result column's name in the statement's SQL */
	enum pg_col_type type;
	size_t offset;    /* of its field in the row struct */
	const struct pg_word *words; /* PG_WORD only */
};

#define PG_COL(row_type, field, type) {#field, type, offsetof(row_type, field), NULL}
#define PG_COL_WORD(row_type, field, words) {#field, PG_WORD, offsetof(row_type, field), words}

/* A statement that answers one text column `name`: declares struct name##_row {const char *name}
 * and its table name##_cols. */
#define PG_TEXT_ROW(name)                                                                          \
	struct name##_row {                                                                        \
		const char *name;                                                                  \
	};                                                                                         \
	static const struct pg_col name##_cols[] = {PG_COL(struct name##_row, name, PG_TEXT)}

/* Fills *out from row `row` of res by the n columns of cols (the statement's first n, in its
 * order); texts point into res. False, logged naming the column, when res's columns are not
 * these. */
bool pg_row(const PGresult *res, int row, const struct pg_col *cols, size_t n, void *out) WARN_UNUSED;
#define PG_ROW(res, row, cols, out) pg_row((res), (row), (cols), ARRAY_LEN(cols), (out))
/* The same for the columns from `first` on (a group that several statements share). */
bool pg_row_from(const PGresult *res, int row, int first, const struct pg_col *cols, size_t n,
		 void *out) WARN_UNUSED;
#define PG_ROW_FROM(res, row, first, cols, out) pg_row_from((res), (row), (first), (cols), ARRAY_LEN(cols), (out))

/* The value of word in words (the table's last value when it is not listed, or NULL). */
int pg_word_value(const struct pg_word *words, const char *word);
/* The word of value in words, or "?" (for log lines). */
const char *pg_word_name(const struct pg_word *words, int value);

#endif
