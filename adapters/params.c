#include "adapters/params.h"

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
	bool ok = false;
	char *n = strdup(name);
	char *v = strdup(value ? value : "");
	if (!n || !v)
		goto done;
	if (p->len == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		params_pair *items = realloc(p->items, cap * sizeof(*items));
		if (!items)
			goto done;
		p->items = items;
		p->cap = cap;
	}
	p->items[p->len].name = n;
	p->items[p->len].value = v;
	p->len++;
	n = v = NULL;
	ok = true;
done:
	free(n);
	free(v);
	return ok;
}

bool params_set(params *p, const char *name, const char *value)
{
	for (size_t i = 0; i < p->len; i++) {
		if (strcmp(p->items[i].name, name) == 0) {
			char *v = strdup(value ? value : "");
			if (!v)
				return false;
			free(p->items[i].value);
			p->items[i].value = v;
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

void params_urlencode(abuf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.') {
			abuf_putc(out, (char)c);
		} else if (c == ' ') {
			abuf_putc(out, '+');
		} else {
			char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
			abuf_append(out, esc, 3);
		}
	}
}

bool params_urldecode(abuf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '+') {
			abuf_putc(out, ' ');
		} else if (c == '%' && i + 2 < len && util_hex_digit(s[i + 1]) >= 0 && util_hex_digit(s[i + 2]) >= 0) {
			int v = util_hex_digit(s[i + 1]) * 16 + util_hex_digit(s[i + 2]);
			if (v == 0)
				return false;
			abuf_putc(out, (char)v);
			i += 2;
		} else {
			abuf_putc(out, c);
		}
	}
	return !abuf_failed(out);
}

bool params_parse_query(params *p, const char *query)
{
	bool ok = false;
	abuf name, value;
	abuf_init(&name);
	abuf_init(&value);
	const char *s = query ? query : "";
	while (*s) {
		const char *end = strchr(s, '&');
		size_t seglen = end ? (size_t)(end - s) : strlen(s);
		if (seglen > 0) {
			const char *eq = memchr(s, '=', seglen);
			size_t nlen = eq ? (size_t)(eq - s) : seglen;
			abuf_reset(&name);
			abuf_reset(&value);
			abuf_append(&name, "", 0);
			abuf_append(&value, "", 0);
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
	abuf_free(&name);
	abuf_free(&value);
	return ok;
}

void params_encode(abuf *out, const params *p)
{
	for (size_t i = 0; i < p->len; i++) {
		if (i)
			abuf_putc(out, '&');
		params_urlencode(out, p->items[i].name, strlen(p->items[i].name));
		abuf_putc(out, '=');
		params_urlencode(out, p->items[i].value, strlen(p->items[i].value));
	}
}
