#ifndef FEEGATE_STRBUF_H
#define FEEGATE_STRBUF_H
/*
 * A growable text buffer, for building signed strings, URLs, bodies and files in memory (the
 * adapters, banksim, the audit chain). It allocates as lib/mem.h says: running out of memory
 * aborts, so appending cannot fail and a builder has nothing to check.
 */
#include <stddef.h>

struct strbuf {
	char *data; /* NUL-terminated once anything was appended; NULL before */
	size_t len;
	size_t cap;
};

void strbuf_init(struct strbuf *b);
void strbuf_free(struct strbuf *b);
void strbuf_reset(struct strbuf *b); /* empties b, keeping its memory */
void strbuf_append(struct strbuf *b, const void *data, size_t len);
void strbuf_puts(struct strbuf *b, const char *s);
void strbuf_putc(struct strbuf *b, char c);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the NUL-terminated contents (never NULL) to the caller, who frees them, and empties b. */
char *strbuf_take(struct strbuf *b) __attribute__((warn_unused_result));

#endif
