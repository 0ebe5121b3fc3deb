#ifndef FEEGATE_MEM_H
#define FEEGATE_MEM_H
/*
 * Memory policy, in one place: allocation failure is not recoverable in a server whose every
 * request needs a few hundred bytes, so xmalloc and friends abort with a log line (as redis'
 * zmalloc does). Objects owned by a request are freed when the request's context is freed;
 * nothing is freed inside its own libevent callback while the library still refers to it.
 */
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
