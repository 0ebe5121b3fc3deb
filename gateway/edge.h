#ifndef FEEGATE_EDGE_H
#define FEEGATE_EDGE_H
/*
 * The gateway's side of the HTTP edge: the optional TLS listener (its context built from
 * FEEGATE_TLS_CERT and FEEGATE_TLS_KEY, rebuilt on SIGHUP), the public origin that browser
 * forms must come from, the descriptor limit, and the test-only streamed-body sink.
 */
#include <event2/event.h>
#include <stdbool.h>

#include "lib/http.h"
#include "lib/util.h"

/* With tls_fd >= 0, serves TLS on it; installs the SIGHUP reload. False (logged) when the
 * certificate or key cannot be loaded. */
bool edge_tls_start(struct event_base *base, struct http_server *s, int tls_fd) WARN_UNUSED;
void edge_tls_stop(void);
/* Builds a server context from PEM files: TLS 1.2 and 1.3 only, AEAD suites. NULL with the
 * reason in err on failure. */
struct ssl_ctx_st *edge_tls_context(const char *cert, const char *key, char *err, size_t errlen);
/* scheme://host[:port] of FEEGATE_PUBLIC_URL. */
const char *edge_public_origin(void);
/* Raises the soft descriptor limit to the hard one, so the connection cap is what binds. */
void edge_raise_fd_limit(void);
void edge_test_sink(struct http_req *req);

#endif
