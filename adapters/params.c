#include "adapters/params.h"

#include "lib/mem.h"
#include "lib/util.h"

#include <stdlib.h>
#include <string.h>

void params_init(params *p)
{
	p->items = NULL;
	p->len = 0;
	p->cap = 0;
}

void params_free(params *p)
{
	for (size_t i = 0; i < p->len; i++) {
		free(p->items[i].name);
		free(p->items[i].value);
	}
	free(p->items);
	params_init(p);
}

bool params_add(params *p, const char *name, const char *value)
{
	if (p->len == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->items = xrealloc(p->items, p->cap * sizeof(*p->items));
	}
	p->items[p->len].name = xstrdup(name);
	p->items[p->len].value = xstrdup(value ? value : "");
	p->len++;
	return true;
}

bool params_set(params *p, const char *name, const char *value)
{
	for (size_t i = 0; i < p->len; i++) {
		if (strcmp(p->items[i].name, name) == 0) {
			free(p->items[i].value);
			p->items[i].value = xstrdup(value ? value : "");
			return true;
		}
	}
	return params_add(p, name, value);
}

void params_remove(params *p, const char *name)
{
	size_t keep = 0;
	for (size_t i = 0; i < p->len; i++) {
		if (strcmp(p->items[i].name, name) == 0) {
			free(p->items[i].name);
			free(p->items[i].value);
			continue;
		}
		p->items[keep++] = p->items[i];
	}
	p->len = keep;
}

const char *params_get(const params *p, const char *name)
{
	for (size_t i = 0; i < p->len; i++)
		if (strcmp(p->items[i].name, name) == 0)
			return p->items[i].value;
	return NULL;
}

size_t params_count(const params *p, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < p->len; i++)
		if (strcmp(p->items[i].name, name) == 0)
			n++;
	return n;
}

void params_sort(params *p)
{
	/* Insertion sort: stable, and these lists hold a few dozen pairs at most. */
	for (size_t i = 1; i < p->len; i++) {
		params_pair cur = p->items[i];
		size_t j = i;
		while (j > 0 && strcmp(p->items[j - 1].name, cur.name) > 0) {
			p->items[j] = p->items[j - 1];
			j--;
		}
		p->items[j] = cur;
	}
}

void params_urlencode(struct strbuf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.') {
			strbuf_putc(out, (char)c);
		} else if (c == ' ') {
			strbuf_putc(out, '+');
		} else {
			char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
			strbuf_append(out, esc, 3);
		}
	}
}

bool params_urldecode(struct strbuf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '+') {
			strbuf_putc(out, ' ');
		} else if (c == '%' && i + 2 < len && util_hex_digit(s[i + 1]) >= 0 && util_hex_digit(s[i + 2]) >= 0) {
			int v = util_hex_digit(s[i + 1]) * 16 + util_hex_digit(s[i + 2]);
			if (v == 0)
				return false;
			strbuf_putc(out, (char)v);
			i += 2;
		} else {
			strbuf_putc(out, c);
		}
	}
	return true;
}

bool params_parse_query(params *p, const char *query)
{
	bool ok = false;
	struct strbuf name, value;
	strbuf_init(&name);
	strbuf_init(&value);
	const char *s = query ? query : "";
	while (*s) {
		const char *end = strchr(s, '&');
		size_t seglen = end ? (size_t)(end - s) : strlen(s);
		if (seglen > 0) {
			const char *eq = memchr(s, '=', seglen);
			size_t nlen = eq ? (size_t)(eq - s) : seglen;
			strbuf_reset(&name);
			strbuf_reset(&value);
			strbuf_append(&name, "", 0);
			strbuf_append(&value, "", 0);
			if (!params_urldecode(&name, s, nlen))
				goto done;
			if (eq && !params_urldecode(&value, eq + 1, seglen - nlen - 1))
				goto done;
			if (name.len > 0 && !params_add(p, name.data, value.data))
				goto done;
		}
		s += seglen;
		if (*s == '&')
			s++;
	}
	ok = true;
done:
	strbuf_free(&name);
	strbuf_free(&value);
	return ok;
}

void params_encode(struct strbuf *out, const params *p)
{
	for (size_t i = 0; i < p->len; i++) {
		if (i)
			strbuf_putc(out, '&');
		params_urlencode(out, p->items[i].name, strlen(p->items[i].name));
		strbuf_putc(out, '=');
		params_urlencode(out, p->items[i].value, strlen(p->items[i].value));
	}
}
