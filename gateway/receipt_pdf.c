#include "gateway/receipt_pdf.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pango/pangocairo.h>
#include <pthread.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway.h"
#include "gateway/pages.h"
#include "gateway/receipt.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"

#define PDF_QUEUE_MAX 32

/* ---- rendering ---- */

struct outbuf {
	unsigned char *data;
	size_t len, cap;
};

static cairo_status_t write_out(void *closure, const unsigned char *data, unsigned int n)
{
	struct outbuf *o = closure;
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		o->data = xrealloc(o->data, o->cap);
	}
	memcpy(o->data + o->len, data, n);
	o->len += n;
	return CAIRO_STATUS_SUCCESS;
}

struct pen {
	cairo_t *cr;
	PangoLayout *layout;
	double y;
};

static void text(struct pen *p, const char *font, const char *s, double x, double width)
{
	PangoFontDescription *fd = pango_font_description_from_string(font);
	pango_layout_set_font_description(p->layout, fd);
	pango_font_description_free(fd);
	pango_layout_set_width(p->layout, (int)(width * PANGO_SCALE));
	pango_layout_set_wrap(p->layout, PANGO_WRAP_WORD_CHAR);
	pango_layout_set_text(p->layout, s, -1);
	cairo_move_to(p->cr, x, p->y);
	pango_cairo_show_layout(p->cr, p->layout);
	int w, h;
	pango_layout_get_size(p->layout, &w, &h);
	p->y += (double)h / PANGO_SCALE + 3;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void field(struct pen *p, const char *label, const char *value)
{
	char *line = xasprintf("%s: %s", label, value);
	text(p, "DejaVu Sans 10", line, 50, 495);
	free(line);
}

static void qr(cairo_t *cr, const char *url, double x, double y, double size)
{
	QRcode *q = QRcode_encodeString(url, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (!q)
		return;
	double m = size / q->width;
	cairo_set_source_rgb(cr, 0, 0, 0);
	for (int r = 0; r < q->width; r++) {
		for (int c = 0; c < q->width; c++) {
			if (q->data[r * q->width + c] & 1)
				cairo_rectangle(cr, x + c * m, y + r * m, m, m);
		}
	}
	cairo_fill(cr);
	QRcode_free(q);
}

bool receipt_pdf_render(const json_t *doc, bool valid, const char *url, unsigned char **out, size_t *len)
{
	struct outbuf o = {0};
	cairo_surface_t *surface = cairo_pdf_surface_create_for_stream(write_out, &o, 595, 842);
	char *json = json_dumps(doc, JSON_COMPACT);
	size_t jn = strlen(json);
	char *b64 = xmalloc(strlen(RECEIPT_PDF_MARKER) + jn * 4 / 3 + 4);
	strcpy(b64, RECEIPT_PDF_MARKER);
	util_base64url((const unsigned char *)json, jn, b64 + strlen(RECEIPT_PDF_MARKER));
	free(json);
	char title[128];
	snprintf(title, sizeof title, "Biên lai %s %s %07lld", str(doc, "template"), str(doc, "series"),
		 (long long)json_integer_value(json_object_get(doc, "number")));
	cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, title);
	cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_KEYWORDS, b64);
	free(b64);

	cairo_t *cr = cairo_create(surface);
	struct pen p = {.cr = cr, .layout = pango_cairo_create_layout(cr), .y = 40};
	const json_t *agency = json_object_get(doc, "agency");
	cairo_set_source_rgb(cr, 0, 0, 0);
	text(&p, "DejaVu Sans Bold 15", "BIÊN LAI THU PHÍ, LỆ PHÍ", 50, 380);
	text(&p, "DejaVu Sans 9", "Electronic fee receipt — issued by the public service fee payment gateway", 50, 380);
	p.y += 6;
	char number[32], amount[48], paid[32], issued[32];
	snprintf(number, sizeof number, "%07lld", (long long)json_integer_value(json_object_get(doc, "number")));
	format_vnd(json_integer_value(json_object_get(doc, "amount")), amount, sizeof amount);
	page_local_time(str(doc, "paid_at"), paid, sizeof paid);
	page_local_time(str(doc, "issued_at"), issued, sizeof issued);
	field(&p, "Ký hiệu mẫu", str(doc, "template"));
	field(&p, "Ký hiệu", str(doc, "series"));
	field(&p, "Số", number);
	field(&p, "Đơn vị thu", str(agency, "name"));
	field(&p, "Mã số thuế", str(agency, "tax_code"));
	field(&p, "Người nộp", str(doc, "payer_name"));
	field(&p, "Thủ tục", str(doc, "procedure"));
	field(&p, "Mã hồ sơ", str(doc, "reference"));
	p.y += 6;
	text(&p, "DejaVu Sans Bold 10", "Khoản thu / Items", 50, 495);
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(doc, "items"), i, it)
	{
		char a[48];
		format_vnd(json_integer_value(json_object_get(it, "amount")), a, sizeof a);
		field(&p, str(it, "name"), a);
	}
	p.y += 6;
	field(&p, "Tổng cộng", amount);
	field(&p, "Bằng chữ", str(doc, "amount_in_words"));
	field(&p, "Ngân hàng / ví", str(doc, "bank"));
	field(&p, "Mã giao dịch", str(doc, "bank_txn_id"));
	field(&p, "Thời gian thanh toán (UTC+7)", paid);
	field(&p, "Ngày lập (UTC+7)", issued);
	field(&p, "Khóa ký", str(doc, "key_id"));
	json_t *adj = json_object_get(doc, "adjustments");
	if (json_array_size(adj)) {
		p.y += 6;
		text(&p, "DejaVu Sans Bold 10", "Điều chỉnh / Adjustments", 50, 495);
		json_array_foreach(adj, i, it)
		{
			char a[48];
			format_vnd(json_integer_value(json_object_get(it, "amount")), a, sizeof a);
			field(&p, strcmp(str(it, "kind"), "cancellation") == 0 ? "Hoàn tiền toàn bộ, hủy biên lai" : "Hoàn tiền một phần", a);
		}
	}
	p.y += 6;
	text(&p, "DejaVu Sans Bold 10",
	     valid ? "Chữ ký số hợp lệ / Signature valid" : "Chữ ký KHÔNG hợp lệ / Signature NOT valid", 50, 495);
	text(&p, "DejaVu Sans Mono 7", str(doc, "signature"), 50, 495);
	text(&p, "DejaVu Sans 8", url, 50, 495);
	qr(cr, url, 445, 40, 100);
	g_object_unref(p.layout);
	cairo_destroy(cr);
	cairo_surface_finish(surface);
	bool ok = cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS;
	cairo_surface_destroy(surface);
	if (!ok) {
		free(o.data);
		return false;
	}
	*out = o.data;
	*len = o.len;
	return true;
}

char *receipt_pdf_extract(const unsigned char *pdf, size_t len)
{
	const char *marker = RECEIPT_PDF_MARKER;
	size_t mlen = strlen(marker);
	const unsigned char *p = memmem(pdf, len, marker, mlen);
	if (!p)
		return NULL;
	p += mlen;
	const unsigned char *end = pdf + len, *q = p;
	while (q < end && ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-' ||
			   *q == '_'))
		q++;
	char *b64 = xstrndup((const char *)p, (size_t)(q - p));
	size_t cap = (size_t)(q - p) * 3 / 4 + 4;
	unsigned char *json = xmalloc(cap + 1);
	long n = receipt_b64url_decode(b64, json, cap);
	free(b64);
	if (n < 0) {
		free(json);
		return NULL;
	}
	json[n] = '\0';
	return (char *)json;
}

/* ---- the PDF thread ---- */

struct pdf_job {
	struct http_req *req;
	json_t *doc;
	bool valid;
	char *url;
	unsigned char *pdf;
	size_t len;
	bool ok;
	struct pdf_job *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct pdf_job *queue_head, *queue_tail;
static int queued; /* jobs handed to the thread and not yet answered (loop side) */
static int done_pipe[2] = {-1, -1};
static struct event *done_ev;

static void *pdf_thread(void *arg)
{
	for (;;) {
		pthread_mutex_lock(&lock);
		while (!queue_head)
			pthread_cond_wait(&wake, &lock);
		struct pdf_job *j = queue_head;
		queue_head = j->next;
		if (!queue_head)
			queue_tail = NULL;
		pthread_mutex_unlock(&lock);
		j->ok = receipt_pdf_render(j->doc, j->valid, j->url, &j->pdf, &j->len);
		ssize_t w;
		do
			w = write(done_pipe[1], &j, sizeof j);
		while (w < 0 && errno == EINTR);
	}
	return NULL;
}

static void job_done(evutil_socket_t fd, short what, void *arg)
{
	struct pdf_job *j;
	while (read(fd, &j, sizeof j) == (ssize_t)sizeof j) {
		queued--;
		if (j->ok) {
			char disp[96];
			snprintf(disp, sizeof disp, "inline; filename=\"bien-lai-%s.pdf\"", json_string_value(json_object_get(j->doc, "code")));
			http_add_header(j->req, "Content-Disposition", disp);
			http_reply_raw(j->req, 200, "application/pdf", (const char *)j->pdf, j->len);
		} else {
			http_reply_error(j->req, ERR_INTERNAL, NULL, NULL);
		}
		json_decref(j->doc);
		free(j->url);
		free(j->pdf);
		free(j);
	}
}

static bool thread_ready(void)
{
	if (done_ev)
		return true;
	if (pipe2(done_pipe, O_CLOEXEC) != 0)
		return false;
	fcntl(done_pipe[0], F_SETFL, O_NONBLOCK);
	pthread_t t;
	if (pthread_create(&t, NULL, pdf_thread, NULL) != 0) {
		close(done_pipe[0]);
		close(done_pipe[1]);
		return false;
	}
	pthread_detach(t);
	done_ev = event_new(gw.base, done_pipe[0], EV_READ | EV_PERSIST, job_done, NULL);
	event_add(done_ev, NULL);
	return true;
}

void receipt_pdf_reply(struct http_req *req, json_t *doc, bool valid)
{
	if (queued >= PDF_QUEUE_MAX || !thread_ready()) {
		json_decref(doc);
		http_reply_error(req, ERR_UNAVAILABLE, NULL, "too many receipts being rendered; retry shortly");
		return;
	}
	struct pdf_job *j = xcalloc(1, sizeof *j);
	j->req = req;
	j->doc = doc;
	j->valid = valid;
	j->url = xasprintf("%s/receipts/%s", cfg.public_url, json_string_value(json_object_get(doc, "code")));
	queued++;
	pthread_mutex_lock(&lock);
	if (queue_tail)
		queue_tail->next = j;
	else
		queue_head = j;
	queue_tail = j;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
}
