#ifndef FEEGATE_MULTIPART_H
#define FEEGATE_MULTIPART_H
/*
 * A multipart/form-data body (RFC 7578, the delimiters of RFC 2046) read as it arrives: what a
 * browser sends for a form with a file. The body is fed in chunks of any size; each part's
 * name and filename are given when its headers are whole, then its bytes as they come, so a
 * file streams through without ever being held in memory (a part's headers are capped at
 * MULTIPART_HEAD_MAX bytes; the only other memory is the delimiter).
 */
#include <stdbool.h>
#include <stddef.h>

#include "lib/util.h"

#define MULTIPART_HEAD_MAX 4096

struct multipart_handler {
	/* A part begins; filename is NULL for a plain field. false stops the body (MULTIPART_STOPPED). */
	bool (*part)(void *arg, const char *name, const char *filename);
	/* The next bytes of the current part. */
	bool (*data)(void *arg, const char *data, size_t len);
	/* The current part is whole. */
	bool (*part_end)(void *arg);
};

enum multipart_rc {
	MULTIPART_MORE,    /* fine so far: feed the next chunk */
	MULTIPART_DONE,    /* the closing delimiter was read (what follows it is ignored) */
	MULTIPART_BAD,     /* not multipart/form-data as it must be: multipart_error says why */
	MULTIPART_STOPPED, /* a handler returned false */
};

struct multipart;

/* A reader for the body of a request whose Content-Type is content_type; NULL when it is not
 * multipart/form-data with a usable boundary. */
struct multipart *multipart_new(const char *content_type, const struct multipart_handler *h, void *arg);
enum multipart_rc multipart_feed(struct multipart *m, const char *data, size_t len) WARN_UNUSED;
/* What the body has come to once it has ended: MULTIPART_DONE, or MULTIPART_BAD when it ended
 * before its closing delimiter. */
enum multipart_rc multipart_end(struct multipart *m) WARN_UNUSED;
const char *multipart_error(const struct multipart *m);
void multipart_free(struct multipart *m);

#endif
