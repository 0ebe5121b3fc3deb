#ifndef FEEGATE_PAGES_H
#define FEEGATE_PAGES_H
/*
 * The citizen-facing HTML pages' frame (checkout, receipts) and the static files they use.
 * Pages carry no inline script or style, so a strict Content-Security-Policy
 * (default-src 'self'; img-src 'self' data:) holds: CSS and JS come from /static/.
 */
#include <event2/buffer.h>
#include <stdint.h>

#include "lib/http.h"

/* Starts a page: doctype, head (title, stylesheet, optional script; refresh_s > 0: a refresh
 * to refresh_url after that many seconds, which works without JavaScript), <body><main>. */
void page_begin(struct evbuffer *b, const char *title, const char *script, int refresh_s, const char *refresh_url);
/* HTML-escaped text. */
void page_text(struct evbuffer *b, const char *s);
/* Closes the page and replies with it (frees b). */
void page_send(struct http_req *req, int status, struct evbuffer *b);
/* "2026-12-02T11:22:33+07:00" -> "11:22 02/12/2026" (the wall time as written). */
void page_local_time(const char *iso, char *out, size_t cap);

/* A QR code of text as a PNG, base64 (for a data: URI the citizen can save); caller frees. */
char *page_qr_png_base64(const char *text);
/* epoch ms -> "11:22 02/12/2026" in Asia/Ho_Chi_Minh (UTC+7 all year). */
void page_vn_time(int64_t epoch_ms, char *out, size_t cap);

/* GET /static/{name}: the pages' CSS and JS. */
void static_asset(struct http_req *req);

#endif
