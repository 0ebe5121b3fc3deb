#include "gateway/pages.h"

#include <cairo.h>
#include <event2/http.h>
#include <openssl/evp.h>
#include <qrencode.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

void page_text(struct evbuffer *b, const char *s)
{
	char *e = evhttp_htmlescape(s ? s : "");
	evbuffer_add(b, e, strlen(e));
	free(e);
}

void page_begin(struct evbuffer *b, const char *title, const char *script, int refresh_s, const char *refresh_url)
{
	evbuffer_add_printf(b, "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
			       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
	page_text(b, title);
	evbuffer_add_printf(b, "</title><link rel=\"stylesheet\" href=\"/static/feegate.css\">");
	if (refresh_s > 0) {
		evbuffer_add_printf(b, "<meta http-equiv=\"refresh\" content=\"%d;url=", refresh_s);
		page_text(b, refresh_url);
		evbuffer_add_printf(b, "\">");
	}
	if (script)
		evbuffer_add_printf(b, "<script src=\"/static/%s\" defer></script>", script);
	evbuffer_add_printf(b, "</head><body><header class=\"platform\">Cổng thanh toán lệ phí dịch vụ công "
			       "<span class=\"en\">/ Public service fee payment gateway</span></header><main>");
}

void page_send(struct http_req *req, int status, struct evbuffer *b)
{
	evbuffer_add_printf(b, "</main></body></html>");
	size_t len = evbuffer_get_length(b);
	http_reply_raw(req, status, "text/html; charset=utf-8", (const char *)evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
}

void page_local_time(const char *iso, char *out, size_t cap)
{
	int y, mo, d, h, mi;
	if (iso && sscanf(iso, "%4d-%2d-%2dT%2d:%2d", &y, &mo, &d, &h, &mi) == 5)
		snprintf(out, cap, "%02d:%02d %02d/%02d/%04d", h, mi, d, mo, y);
	else
		snprintf(out, cap, "%s", iso ? iso : "");
}

struct png_buf {
	unsigned char *data;
	size_t len;
};

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int n)
{
	struct png_buf *p = closure;
	p->data = xrealloc(p->data, p->len + n);
	memcpy(p->data + p->len, data, n);
	p->len += n;
	return CAIRO_STATUS_SUCCESS;
}

char *page_qr_png_base64(const char *text)
{
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (!q)
		return NULL;
	const int scale = 8, quiet = 4, size = (q->width + 2 * quiet) * scale;
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, size, size);
	cairo_t *cr = cairo_create(s);
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	cairo_set_source_rgb(cr, 0, 0, 0);
	for (int y = 0; y < q->width; y++) {
		for (int x = 0; x < q->width; x++) {
			if (q->data[y * q->width + x] & 1)
				cairo_rectangle(cr, (x + quiet) * scale, (y + quiet) * scale, scale, scale);
		}
	}
	cairo_fill(cr);
	cairo_destroy(cr);
	QRcode_free(q);
	struct png_buf p = {0};
	char *out = NULL;
	if (cairo_surface_write_to_png_stream(s, png_write, &p) == CAIRO_STATUS_SUCCESS) {
		out = xmalloc(p.len * 4 / 3 + 8);
		EVP_EncodeBlock((unsigned char *)out, p.data, (int)p.len);
	}
	cairo_surface_destroy(s);
	free(p.data);
	return out;
}

void page_vn_time(int64_t epoch_ms, char *out, size_t cap)
{
	time_t t = (time_t)(epoch_ms / 1000) + 7 * 3600;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%H:%M %d/%m/%Y", &tm);
}

static const char css[] =
	"body{font-family:'DejaVu Sans',system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:34rem;"
	"margin:0 auto;padding:1rem;color:#1b1b1b;background:#f6f7f9}"
	".platform{font-size:.85rem;color:#234;padding:.25rem 0 .75rem;font-weight:600}"
	"main{background:#fff;border-radius:12px;padding:1.25rem;box-shadow:0 1px 4px rgba(0,0,0,.08)}"
	"h1{font-size:1.15rem;margin:0 0 .25rem}h2{font-size:1rem;margin:1rem 0 .25rem}"
	".amt{font-size:2rem;font-weight:700;margin:.75rem 0;color:#b3261e}"
	"table{width:100%;border-collapse:collapse;margin:.5rem 0}td{padding:.35rem 0;border-bottom:1px solid #eee;"
	"vertical-align:top}td.r{text-align:right;overflow-wrap:anywhere}"
	"#account,#content{font-family:'DejaVu Sans Mono',monospace;font-size:1.05rem;white-space:nowrap}"
	".en{color:#666;font-size:.85em}button,.btn{display:block;box-sizing:border-box;width:100%;padding:.9rem;"
	"margin:.5rem 0;font-size:1rem;border:1px solid #c9ced6;border-radius:8px;background:#fff;cursor:pointer;"
	"text-align:center;color:#1b1b1b;text-decoration:none}button:hover,.btn:hover{background:#eef3ff}"
	"button small{display:block;color:#666;font-size:.8rem}"
	".copy{display:inline-block;width:auto;padding:.2rem .6rem;margin:0 0 0 .4rem;font-size:.8rem}"
	".msg{padding:.75rem;border-radius:8px;background:#fff4e5}.ok{background:#e7f6ec}.bad{background:#fde7e7}"
	".muted{color:#555;font-size:.9rem}.timer{font-weight:700}"
	"textarea{width:100%;box-sizing:border-box;font-family:monospace;font-size:.8rem}"
	"svg,.qr img{width:100%;max-width:18rem;height:auto;display:block;margin:0 auto}"
	".sig{font-family:monospace;font-size:.7rem;word-break:break-all}"
	"@media print{body{background:#fff}main{box-shadow:none}.noprint{display:none}}";

/* Countdown, copy buttons and the QR page's poll; every page also works without them. */
static const char checkout_js[] =
	"(function(){\n"
	"var t=document.getElementById('countdown');\n"
	"if(t){var end=parseInt(t.getAttribute('data-expires-ms'),10);\n"
	"var tick=function(){var s=Math.max(0,Math.floor((end-Date.now())/1000));\n"
	"var m=Math.floor(s/60),r=s%60;t.textContent=m+':'+(r<10?'0':'')+r;\n"
	"if(s<=0){location.reload();return;}setTimeout(tick,1000);};tick();}\n"
	"document.querySelectorAll('button[data-copy]').forEach(function(b){\n"
	"b.addEventListener('click',function(e){e.preventDefault();\n"
	"var v=document.getElementById(b.getAttribute('data-copy'));\n"
	"var text=v.value!==undefined?v.value:v.textContent;\n"
	"if(navigator.clipboard){navigator.clipboard.writeText(text.trim());}\n"
	"b.textContent='\\u0110\\u00e3 ch\\u00e9p / Copied';});});\n"
	"var pe=document.getElementById('poll');\n"
	"if(pe){var p=pe.getAttribute('data-url');setInterval(function(){fetch(p,{credentials:'omit'}).then(function(r){return r.json();})\n"
	".then(function(j){if(j.status&&j.status!=='pending'&&j.status!=='created'){location.href=j.next;}})\n"
	".catch(function(){});},3000);}\n"
	"})();\n";

void static_asset(struct http_req *req)
{
	const char *name = req->params[0];
	if (strcmp(name, "feegate.css") == 0) {
		http_reply_raw(req, 200, "text/css; charset=utf-8", css, sizeof css - 1);
		return;
	}
	if (strcmp(name, "checkout.js") == 0) {
		http_reply_raw(req, 200, "text/javascript; charset=utf-8", checkout_js, sizeof checkout_js - 1);
		return;
	}
	http_reply_error(req, ERR_NOT_FOUND, NULL, NULL);
}
