#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

static enum log_level min_level = LOG_INFO;
static char component[32] = "main";

void log_set_level(enum log_level level)
{
	min_level = level;
}

void log_set_component(const char *name)
{
	snprintf(component, sizeof component, "%s", name);
}

size_t log_json_escape(char *out, size_t cap, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t o = 0;
	/* Room for the longest escape (six bytes: a control character or U+FFFD) and the NUL. */
	while (*s && o + 7 < cap) {
		unsigned char c = *s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
			s++;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
			s++;
		} else if (c < 0x20 || c == 0x7F) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
			s++;
		} else if (c < 0x80) {
			out[o++] = (char)c;
			s++;
		} else {
			/* a log line must be valid JSON whatever a client sent: anything but well-formed
			 * UTF-8 is written as U+FFFD */
			uint32_t cp;
			size_t n = util_utf8_decode((const char *)s, 4, &cp);
			if (n == 0) {
				memcpy(out + o, "\\ufffd", 6);
				o += 6;
				s++;
			} else {
				if (o + n + 1 > cap)
					break; /* never cut a character in two */
				memcpy(out + o, s, n);
				o += n;
				s += n;
			}
		}
	}
	out[o] = '\0';
	return o;
}

void log_vemit(enum log_level level, const char *request_id, const char *event, const char *fmt, va_list ap)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	if (level < min_level)
		return;
	char msg[2048];
	vsnprintf(msg, sizeof msg, fmt, ap);

	char esc[4096];
	log_json_escape(esc, sizeof esc, msg);
	char comp[sizeof component * 6], rid[256], ev[128];
	log_json_escape(comp, sizeof comp, component);
	log_json_escape(rid, sizeof rid, request_id ? request_id : "");
	log_json_escape(ev, sizeof ev, event ? event : "");
	char ts[32];
	util_format_time(util_now_ms(), ts);
	char line[5120];
	int n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%d,\"component\":\"%s\"%s%s%s%s%s%s,\"msg\":\"%s\"}\n",
			 ts, names[level], (int)getpid(), comp, request_id ? ",\"request_id\":\"" : "", rid,
			 request_id ? "\"" : "", event ? ",\"event\":\"" : "", ev, event ? "\"" : "", esc);
	if (n > (int)sizeof line - 1)
		n = (int)sizeof line - 1; /* cannot happen: the parts are bounded below the line's size */
	/* One write per line so lines from several workers never interleave. */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

void log_emit(enum log_level level, const char *request_id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vemit(level, request_id, NULL, fmt, ap);
	va_end(ap);
}
