/*
 * multipart/form-data, streamed. The body is "--B" CRLF, then parts each made of headers, a
 * blank line and data, each part ended by CRLF "--B", and the last delimiter followed by "--".
 * Reading the data means finding the delimiter CRLF "--B" in a stream cut anywhere: a
 * Knuth-Morris-Pratt matcher over it, which holds back only the bytes that may begin the
 * delimiter and hands every other byte on at once.
 */
#include "lib/multipart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/mem.h"

#define BOUNDARY_MAX 70 /* RFC 2046 */

enum mp_state {
	MP_PREAMBLE, /* before the first delimiter */
	MP_AFTER,    /* just after a delimiter: "--" ends the body, CRLF starts a part */
	MP_AFTER_DASH,
	MP_AFTER_CR,
	MP_HEADERS,
	MP_DATA,
	MP_DONE,
	MP_FAILED,
};

struct multipart {
	enum mp_state state;
	const struct multipart_handler *h;
	void *arg;
	char delim[BOUNDARY_MAX + 5]; /* CRLF "--" boundary */
	size_t dlen;
	size_t fail[BOUNDARY_MAX + 5]; /* the matcher's failure function over delim */
	size_t match;                  /* bytes of delim matched so far */
	char head[MULTIPART_HEAD_MAX + 1];
	size_t hlen;
	char error[128];
};

/* The boundary parameter of a Content-Type, quoted or not, into out. */
static bool boundary_of(const char *ct, char *out, size_t cap)
{
	if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
		return false;
	for (const char *p = ct + 19; (p = strchr(p, ';'));) {
		p++;
		p += strspn(p, " \t");
		if (strncasecmp(p, "boundary=", 9) != 0)
			continue;
		p += 9;
		size_t n;
		if (*p == '"') {
			p++;
			const char *q = strchr(p, '"');
			if (!q)
				return false;
			n = (size_t)(q - p);
		} else {
			n = strcspn(p, " \t;");
		}
		if (n == 0 || n > BOUNDARY_MAX || n >= cap)
			return false;
		memcpy(out, p, n);
		out[n] = '\0';
		return true;
	}
	return false;
}

struct multipart *multipart_new(const char *content_type, const struct multipart_handler *h, void *arg)
{
	char b[BOUNDARY_MAX + 1];
	if (!boundary_of(content_type, b, sizeof b))
		return NULL;
	struct multipart *m = xcalloc(1, sizeof *m);
	m->h = h;
	m->arg = arg;
	m->dlen = (size_t)snprintf(m->delim, sizeof m->delim, "\r\n--%s", b);
	/* the standard prefix function: fail[i] = the longest proper border of delim[0..i] */
	for (size_t i = 1, k = 0; i < m->dlen; i++) {
		while (k && m->delim[i] != m->delim[k])
			k = m->fail[k - 1];
		if (m->delim[i] == m->delim[k])
			k++;
		m->fail[i] = k;
	}
	/* the body begins with the delimiter without its CRLF: as if that much were matched */
	m->state = MP_PREAMBLE;
	m->match = 2;
	return m;
}

static enum multipart_rc fail(struct multipart *m, const char *why)
{
	snprintf(m->error, sizeof m->error, "%s", why);
	m->state = MP_FAILED;
	return MULTIPART_BAD;
}

static enum multipart_rc stopped(struct multipart *m)
{
	m->state = MP_FAILED;
	snprintf(m->error, sizeof m->error, "stopped by its reader");
	return MULTIPART_STOPPED;
}

/* A header's parameter ("name", "filename") of a Content-Disposition value, into out. */
static bool param_of(const char *v, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	for (const char *p = v; (p = strchr(p, ';'));) {
		p++;
		p += strspn(p, " \t");
		if (strncasecmp(p, key, klen) != 0 || p[klen] != '=')
			continue;
		p += klen + 1;
		size_t n = 0;
		if (*p == '"') {
			for (p++; *p && *p != '"' && n + 1 < cap; p++) {
				if (*p == '\\' && p[1])
					p++;
				out[n++] = *p;
			}
		} else {
			for (; *p && *p != ';' && *p != ' ' && n + 1 < cap; p++)
				out[n++] = *p;
		}
		out[n] = '\0';
		return true;
	}
	return false;
}

/* The part's header block is whole (without its blank line): name it to the handler. */
static enum multipart_rc headers_done(struct multipart *m)
{
	char name[256] = "", filename[256] = "";
	bool named = false, has_file = false;
	m->head[m->hlen] = '\0';
	for (char *save, *line = strtok_r(m->head, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		if (strncasecmp(line, "Content-Disposition:", 20) != 0)
			continue;
		char *v = line + 20;
		v += strspn(v, " \t");
		if (strncasecmp(v, "form-data", 9) != 0)
			return fail(m, "a part is not form-data");
		named = param_of(v, "name", name, sizeof name);
		has_file = param_of(v, "filename", filename, sizeof filename);
	}
	if (!named)
		return fail(m, "a part has no name");
	m->hlen = 0;
	m->state = MP_DATA;
	m->match = 0;
	return m->h->part(m->arg, name, has_file ? filename : NULL) ? MULTIPART_MORE : stopped(m);
}

/* Data bytes p[0..n) of the current part (or of the preamble, which is dropped). */
static bool emit(struct multipart *m, const char *p, size_t n)
{
	return n == 0 || m->state == MP_PREAMBLE || m->h->data(m->arg, p, n);
}

/* Scans data for the delimiter, handing on the bytes before it; *used gets the bytes consumed
 * (with the delimiter when it was found: MULTIPART_DONE). */
static enum multipart_rc scan(struct multipart *m, const char *data, size_t len, size_t *used)
{
	size_t run = 0; /* data[run..i) are plain bytes not handed on yet */
	size_t i = 0;
	while (i < len) {
		if (m->match == 0) {
			/* nothing held: skip to the next CR, where a delimiter may begin */
			const char *cr = memchr(data + i, '\r', len - i);
			if (!cr) {
				i = len;
				break;
			}
			i = (size_t)(cr - data);
		}
		char ch = data[i];
		while (m->match && ch != m->delim[m->match]) {
			/* the held bytes no longer begin the delimiter, but their longest border still may */
			size_t k = m->fail[m->match - 1];
			if (!emit(m, m->delim, m->match - k))
				return stopped(m);
			m->match = k;
		}
		if (ch != m->delim[m->match]) {
			i++; /* a plain byte: it joins the run */
			continue;
		}
		if (m->match == 0 && !emit(m, data + run, i - run))
			return stopped(m);
		m->match++;
		run = ++i;
		if (m->match == m->dlen) {
			*used = i;
			m->match = 0;
			return MULTIPART_DONE;
		}
	}
	if (!emit(m, data + run, i - run))
		return stopped(m);
	*used = len;
	return MULTIPART_MORE;
}

enum multipart_rc multipart_feed(struct multipart *m, const char *data, size_t len)
{
	size_t i = 0;
	while (i < len) {
		switch (m->state) {
		case MP_PREAMBLE:
		case MP_DATA: {
			size_t used;
			bool in_part = m->state == MP_DATA;
			enum multipart_rc rc = scan(m, data + i, len - i, &used);
			i += used;
			if (rc == MULTIPART_DONE) {
				if (in_part && !m->h->part_end(m->arg))
					return stopped(m);
				m->state = MP_AFTER;
			} else if (rc != MULTIPART_MORE) {
				return rc;
			}
			break;
		}
		case MP_AFTER:
			if (data[i] == '-')
				m->state = MP_AFTER_DASH;
			else if (data[i] == '\r')
				m->state = MP_AFTER_CR;
			else if (data[i] != ' ' && data[i] != '\t')
				return fail(m, "a delimiter is followed by neither CRLF nor --");
			i++;
			break;
		case MP_AFTER_DASH:
			if (data[i] != '-')
				return fail(m, "a delimiter is followed by neither CRLF nor --");
			m->state = MP_DONE;
			return MULTIPART_DONE;
		case MP_AFTER_CR:
			if (data[i++] != '\n')
				return fail(m, "a delimiter is followed by neither CRLF nor --");
			m->state = MP_HEADERS;
			m->hlen = 0;
			break;
		case MP_HEADERS:
			if (m->hlen == MULTIPART_HEAD_MAX)
				return fail(m, "a part's headers are too long");
			m->head[m->hlen++] = data[i++];
			if (m->hlen >= 2 && memcmp(m->head + m->hlen - 2, "\r\n", 2) == 0 &&
			    (m->hlen == 2 || (m->hlen >= 4 && memcmp(m->head + m->hlen - 4, "\r\n\r\n", 4) == 0))) {
				m->hlen -= 2;
				enum multipart_rc rc = headers_done(m);
				if (rc != MULTIPART_MORE)
					return rc;
			}
			break;
		case MP_DONE:
			return MULTIPART_DONE;
		case MP_FAILED:
			return MULTIPART_BAD;
		}
	}
	return m->state == MP_DONE ? MULTIPART_DONE : m->state == MP_FAILED ? MULTIPART_BAD : MULTIPART_MORE;
}

enum multipart_rc multipart_end(struct multipart *m)
{
	if (m->state == MP_DONE)
		return MULTIPART_DONE;
	if (m->state != MP_FAILED)
		fail(m, "the body ends before its closing delimiter");
	return MULTIPART_BAD;
}

const char *multipart_error(const struct multipart *m)
{
	return m->error;
}

void multipart_free(struct multipart *m)
{
	free(m);
}
