#include "adapters/abuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void abuf_init(abuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = false;
}

void abuf_free(abuf *b)
{
	free(b->data);
	abuf_init(b);
}

void abuf_reset(abuf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data)
		b->data[0] = '\0';
}

static bool abuf_reserve(abuf *b, size_t extra)
{
	if (b->failed)
		return false;
	if (extra > (size_t)-1 / 2 - b->len) {
		b->failed = true;
		return false;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void abuf_append(abuf *b, const void *data, size_t len)
{
	if (!abuf_reserve(b, len))
		return;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void abuf_puts(abuf *b, const char *s)
{
	abuf_append(b, s, strlen(s));
}

void abuf_putc(abuf *b, char c)
{
	abuf_append(b, &c, 1);
}

void abuf_printf(abuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!abuf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

bool abuf_failed(const abuf *b)
{
	return b->failed;
}

char *abuf_take(abuf *b)
{
	if (b->failed) {
		abuf_free(b);
		return NULL;
	}
	if (!b->data && !abuf_reserve(b, 0))
		return NULL;
	if (b->len == 0)
		b->data[0] = '\0';
	char *out = b->data;
	abuf_init(b);
	return out;
}
