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

size_t log_json_escape(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (; *s && o + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return o;
}

void log_emit(enum log_level level, const char *request_id, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	if (level < min_level)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	char esc[4096];
	log_json_escape(esc, sizeof esc, msg);
	char ts[32];
	util_format_time(util_now_ms(), ts);
	char line[4608];
	int n;
	if (request_id)
		n = snprintf(line, sizeof line,
			     "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%d,\"component\":\"%s\","
			     "\"request_id\":\"%s\",\"msg\":\"%s\"}\n",
			     ts, names[level], (int)getpid(), component, request_id, esc);
	else
		n = snprintf(line, sizeof line,
			     "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%d,\"component\":\"%s\",\"msg\":\"%s\"}\n",
			     ts, names[level], (int)getpid(), component, esc);
	if (n > (int)sizeof line - 1)
		n = (int)sizeof line - 1;
	/* One write per line so lines from several workers never interleave. */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}
