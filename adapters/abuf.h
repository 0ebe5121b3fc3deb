/* Growable text buffer for building signed strings, URLs and bodies.
 * Errors are sticky: after an allocation failure every append is a no-op and
 * abuf_failed() is true, so a builder checks once at the end. */
#ifndef FEEGATE_ADAPTERS_ABUF_H
#define FEEGATE_ADAPTERS_ABUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct abuf {
	char *data;   /* always NUL-terminated when len > 0 or after abuf_take */
	size_t len;
	size_t cap;
	bool failed;  /* an allocation failed; contents are incomplete */
} abuf;

void abuf_init(abuf *b);
void abuf_free(abuf *b);
void abuf_reset(abuf *b);
void abuf_append(abuf *b, const void *data, size_t len);
void abuf_puts(abuf *b, const char *s);
void abuf_putc(abuf *b, char c);
void abuf_printf(abuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool abuf_failed(const abuf *b);
/* Hands the NUL-terminated contents to the caller (who frees them) and empties b.
 * NULL when the buffer failed. */
char *abuf_take(abuf *b) __attribute__((warn_unused_result));

#endif
