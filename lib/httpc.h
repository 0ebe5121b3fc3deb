#ifndef FEEGATE_HTTPC_H
#define FEEGATE_HTTPC_H
/*
 * Outbound HTTP(S) on the event loop (evhttp client): non-blocking DNS (evdns), TLS with
 * certificate and host-name verification for https URLs, and a hard deadline per request.
 * httpc_send uses a new connection per request (Connection: close): a call to a bank that
 * fails on a stale kept-alive connection could not safely be sent again. httpc_send_reusing,
 * for requests the receiver must accept twice anyway (portal webhooks, delivered at least
 * once), keeps connections alive and reuses them: no TCP or TLS handshake per request.
 */
#include <stdbool.h>
#include <stddef.h>

struct event_base;

struct httpc_header {
	const char *name;
	const char *value;
};

/* status 0 means no answer (refused, reset, TLS failure, timeout); err says which.
 * body is valid only during the call. */
typedef void (*httpc_done_fn)(void *arg, int status, const char *body, size_t len, const char *err);

bool httpc_init(struct event_base *base);
void httpc_shutdown(void);
/* Sends the request; done is always called exactly once, never before httpc_send returns. */
void httpc_send(const char *method, const char *url, const struct httpc_header *headers, size_t nheaders,
		const char *body, size_t body_len, int timeout_ms, httpc_done_fn done, void *arg);
/* The same, over a kept-alive connection to the same scheme, host and port when one is idle. */
void httpc_send_reusing(const char *method, const char *url, const struct httpc_header *headers, size_t nheaders,
			const char *body, size_t body_len, int timeout_ms, httpc_done_fn done, void *arg);
/* Requests not yet answered. */
int httpc_pending(void);

#endif
