#ifndef FEEGATE_LOG_H
#define FEEGATE_LOG_H
/*
 * One JSON object per line on stderr: {"ts","level","pid","component","request_id","event","msg"}
 * (request_id and event only when given). Every line is valid JSON and UTF-8 whatever the bytes
 * of the message (invalid sequences are written as U+FFFD). Every line that
 * concerns a request carries its id; pass NULL when none applies. Never pass secrets, keys or
 * full identity numbers to these functions.
 */
#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
void log_set_component(const char *component); /* e.g. "worker-1", "master" */
void log_emit(enum log_level level, const char *request_id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same with an event name (a short ASCII word, e.g. "order_paid"); NULL for none. */
void log_vemit(enum log_level level, const char *request_id, const char *event, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

#define log_debug(rid, ...) log_emit(LOG_DEBUG, (rid), __VA_ARGS__)
#define log_info(rid, ...) log_emit(LOG_INFO, (rid), __VA_ARGS__)
#define log_warn(rid, ...) log_emit(LOG_WARN, (rid), __VA_ARGS__)
#define log_error(rid, ...) log_emit(LOG_ERROR, (rid), __VA_ARGS__)

/* Appends s as a JSON string body (no quotes) to out, at most cap-1 bytes; returns length. */
size_t log_json_escape(char *out, size_t cap, const char *s);

#endif
