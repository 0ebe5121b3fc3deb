#include "tools/banksim/banksim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#define ANSWER_CAP 2000
#define LOG_CAP 5000

/* One notification on its way to the gateway, across its attempts. */
typedef struct sim_job {
	sim *s;
	sim_service svc;
	uint64_t generation;
	char *ref;
	sim_notice n;
	int attempt;               /* attempts started */
	int retries_left;
	int retry_delay_ms;
	int timeout_ms;
	bool duplicate;            /* send a copy once the first attempt has ended */
	struct sim_job *release;   /* a held job to start once our first attempt has ended */
	sim_first_cb cb;           /* still owed a first-attempt report */
	void *cb_arg;
	struct event *timer;       /* delay, hold or retry */
	bool in_flight;
	struct evhttp_connection *evcon; /* of the attempt in flight */
	bool cancelled;
	struct sim_job *next;
} sim_job;

bool sim_notice_save(sim_notice *n, const sim_outgoing *out)
{
	sim_notice_free(n);
	n->body_len = out->body_len;
	bool ok = sim_strset(&n->method, out->method) && sim_strset(&n->url, out->url) &&
		  sim_strset(&n->content_type, out->content_type ? out->content_type : "");
	if (ok && out->body) {
		n->body = malloc(out->body_len + 1);
		ok = n->body != NULL;
		if (ok) {
			memcpy(n->body, out->body, out->body_len);
			n->body[out->body_len] = '\0';
		}
	}
	for (int i = 0; ok && i < 2; i++)
		if (out->header_names[i])
			ok = sim_strset(&n->header_names[i], out->header_names[i]) &&
			     sim_strset(&n->header_values[i], out->header_values[i]);
	if (!ok)
		sim_notice_free(n);
	return ok;
}

void sim_notice_free(sim_notice *n)
{
	free(n->method);
	free(n->url);
	free(n->body);
	free(n->content_type);
	for (int i = 0; i < 2; i++) {
		free(n->header_names[i]);
		free(n->header_values[i]);
	}
	memset(n, 0, sizeof(*n));
}

static void job_unlink(sim_job *job)
{
	for (sim_job **pp = &job->s->jobs; *pp; pp = &(*pp)->next) {
		if (*pp == job) {
			*pp = job->next;
			break;
		}
	}
	for (int i = 0; i < SIM_SERVICE_COUNT; i++)
		if (job->s->held[i] == job)
			job->s->held[i] = NULL;
}

static void job_free(sim_job *job)
{
	job_unlink(job);
	if (job->timer)
		event_free(job->timer);
	sim_notice_free(&job->n);
	free(job->ref);
	free(job);
}

static void job_report_first(sim_job *job, int status, const char *answer, const char *state)
{
	sim_first_cb cb = job->cb;
	job->cb = NULL;
	if (cb)
		cb(job->cb_arg, status, answer, state);
}

static void log_attempt(sim_job *job, int status, const char *answer)
{
	sim *s = job->s;
	json_t *entry = json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:I}",
				  "id", (json_int_t)++s->next_notification_id,
				  "bank", sim_service_name(job->svc), "ref", job->ref ? job->ref : "",
				  "method", job->n.method, "url", job->n.url, "attempt", job->attempt,
				  "status", status, "answer", answer ? answer : "",
				  "at", (json_int_t)time(NULL));
	if (!entry)
		return;
	if (job->n.body) {
		json_t *body = json_string(job->n.body);
		json_object_set_new(entry, "body", body ? body : json_null());
	}
	json_array_append_new(s->notifications, entry);
	if (json_array_size(s->notifications) > LOG_CAP)
		json_array_remove(s->notifications, 0);
	sim_log(status >= 200 && status < 300 ? "info" : "warn", "notification",
		"%s %s %s attempt %d -> %d %s", sim_service_name(job->svc), job->ref ? job->ref : "",
		job->n.url, job->attempt, status, answer ? answer : "");
}

static void attempt_send(sim_job *job);

static void timer_fired(evutil_socket_t fd, short what, void *arg)
{
	sim_job *job = arg;
	for (int i = 0; i < SIM_SERVICE_COUNT; i++)
		if (job->s->held[i] == job)
			job->s->held[i] = NULL;
	attempt_send(job);
}

static bool arm_timer(sim_job *job, int ms)
{
	if (!job->timer)
		job->timer = evtimer_new(job->s->base, timer_fired, job);
	if (!job->timer)
		return false;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return evtimer_add(job->timer, &tv) == 0;
}

/* Whether the bank would try again: no answer, a server error, or VNPAY's
 * "unknown error" reply. */
static bool attempt_failed(sim_service svc, int status, const char *answer)
{
	if (status == 0 || status >= 500)
		return true;
	if (svc == SIM_VNPAY && answer && strstr(answer, "\"99\""))
		return true;
	return false;
}

static sim_job *job_new(sim *s, sim_service svc, const char *ref, const sim_outgoing *out)
{
	sim_job *job = calloc(1, sizeof(*job));
	if (!job)
		return NULL;
	job->s = s;
	job->svc = svc;
	job->generation = s->generation;
	job->ref = strdup(ref ? ref : "");
	if (!job->ref || !sim_notice_save(&job->n, out)) {
		free(job->ref);
		free(job);
		return NULL;
	}
	job->next = s->jobs;
	s->jobs = job;
	return job;
}

static void start_copy(sim_job *job)
{
	sim_outgoing out = {
		.method = job->n.method,
		.url = job->n.url,
		.body = job->n.body,
		.body_len = job->n.body_len,
		.content_type = job->n.content_type,
		.header_names = { job->n.header_names[0], job->n.header_names[1] },
		.header_values = { job->n.header_values[0], job->n.header_values[1] },
	};
	sim_job *copy = job_new(job->s, job->svc, job->ref, &out);
	if (!copy)
		return;
	copy->timeout_ms = job->timeout_ms;
	attempt_send(copy);
}

static void attempt_done(sim_job *job, int status, const char *answer)
{
	log_attempt(job, status, answer);
	if (job->attempt == 1) {
		job_report_first(job, status, answer, "sent");
		sim_job *release = job->release;
		job->release = NULL;
		if (release && !job->cancelled)
			attempt_send(release);
		if (job->duplicate && !job->cancelled)
			start_copy(job);
	}
	if (!job->cancelled && job->generation == job->s->generation &&
	    attempt_failed(job->svc, status, answer) && job->retries_left > 0) {
		job->retries_left--;
		if (arm_timer(job, job->retry_delay_ms))
			return;
	}
	job_free(job);
}

static void free_connection(evutil_socket_t fd, short what, void *arg)
{
	evhttp_connection_free(arg);
}

static void response_cb(struct evhttp_request *req, void *arg)
{
	sim_job *job = arg;
	char answer[ANSWER_CAP + 1] = "";
	int status = 0;
	job->in_flight = false;
	if (req) {
		status = evhttp_request_get_response_code(req);
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		ev_ssize_t n = evbuffer_copyout(in, answer, ANSWER_CAP);
		answer[n > 0 ? n : 0] = '\0';
	}
	/* libevent still uses the connection after this callback returns: free it
	 * from the loop later. */
	if (job->evcon)
		event_base_once(job->s->base, -1, EV_TIMEOUT, free_connection, job->evcon, NULL);
	job->evcon = NULL;
	attempt_done(job, status, status ? answer : "no answer");
}

static void attempt_send(sim_job *job)
{
	sim *s = job->s;
	struct evhttp_uri *uri = NULL;
	struct evhttp_connection *evcon = NULL;
	struct strbuf path;
	strbuf_init(&path);
	job->attempt++;
	if (job->cancelled || job->generation != s->generation) {
		job_report_first(job, 0, NULL, "cancelled");
		job_free(job);
		return;
	}
	uri = evhttp_uri_parse(job->n.url);
	const char *scheme = uri ? evhttp_uri_get_scheme(uri) : NULL;
	const char *host = uri ? evhttp_uri_get_host(uri) : NULL;
	if (!scheme || strcmp(scheme, "http") != 0 || !host) {
		evhttp_uri_free(uri);
		attempt_done(job, 0, "unsupported URL (plain http only)");
		return;
	}
	int port = evhttp_uri_get_port(uri);
	const char *p = evhttp_uri_get_path(uri);
	const char *q = evhttp_uri_get_query(uri);
	strbuf_printf(&path, "%s%s%s", p && *p ? p : "/", q ? "?" : "", q ? q : "");
	evcon = evhttp_connection_base_new(s->base, NULL, host, (ev_uint16_t)(port > 0 ? port : 80));
	struct evhttp_request *req = evcon ? evhttp_request_new(response_cb, job) : NULL;
	if (!req) {
		if (evcon)
			evhttp_connection_free(evcon);
		evhttp_uri_free(uri);
		strbuf_free(&path);
		attempt_done(job, 0, "out of memory");
		return;
	}
	struct timeval tv = { job->timeout_ms / 1000, (job->timeout_ms % 1000) * 1000 };
	evhttp_connection_set_timeout_tv(evcon, &tv);
	evhttp_connection_set_retries(evcon, 0);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char host_header[300];
	if (port > 0)
		snprintf(host_header, sizeof(host_header), "%s:%d", host, port);
	else
		snprintf(host_header, sizeof(host_header), "%s", host);
	evhttp_add_header(h, "Host", host_header);
	evhttp_add_header(h, "Connection", "close");
	evhttp_add_header(h, "User-Agent", "banksim");
	bool post = strcmp(job->n.method, "POST") == 0;
	if (post) {
		char len[32];
		snprintf(len, sizeof(len), "%zu", job->n.body_len);
		evhttp_add_header(h, "Content-Type", job->n.content_type && *job->n.content_type
							     ? job->n.content_type : "application/json");
		evhttp_add_header(h, "Content-Length", len);
		if (job->n.body)
			evbuffer_add(evhttp_request_get_output_buffer(req), job->n.body, job->n.body_len);
	}
	for (int i = 0; i < 2; i++)
		if (job->n.header_names[i])
			evhttp_add_header(h, job->n.header_names[i], job->n.header_values[i]);
	job->in_flight = true;
	job->evcon = evcon;
	int rc = evhttp_make_request(evcon, req, post ? EVHTTP_REQ_POST : EVHTTP_REQ_GET, path.data);
	evhttp_uri_free(uri);
	strbuf_free(&path);
	if (rc != 0) {
		/* Refused up front; libevent calls no callback on this path. */
		job->in_flight = false;
		job->evcon = NULL;
		event_base_once(s->base, -1, EV_TIMEOUT, free_connection, evcon, NULL);
		attempt_done(job, 0, "request could not be made");
	}
}

void sim_notify(sim *s, sim_service svc, const char *ref, const sim_outgoing *out, const sim_faults *f,
		sim_first_cb cb, void *cb_arg)
{
	sim_job *job = job_new(s, svc, ref, out);
	if (!job) {
		sim_log("error", "notification", "out of memory");
		if (cb)
			cb(cb_arg, 0, NULL, "failed");
		return;
	}
	job->cb = cb;
	job->cb_arg = cb_arg;
	job->retries_left = f->retries;
	job->retry_delay_ms = f->retry_delay_ms;
	job->timeout_ms = f->timeout_ms > 0 ? f->timeout_ms : 5000;
	job->duplicate = f->duplicate;

	if (f->drop) {
		job->attempt = 1;
		sim_log("info", "notification", "%s %s dropped", sim_service_name(svc), ref ? ref : "");
		json_t *entry = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:I}", "id",
					  (json_int_t)++s->next_notification_id, "bank", sim_service_name(svc),
					  "ref", ref ? ref : "", "method", out->method, "url", out->url,
					  "state", "dropped", "at", (json_int_t)time(NULL));
		if (entry)
			json_array_append_new(s->notifications, entry);
		job_report_first(job, 0, NULL, "dropped");
		job_free(job);
		return;
	}
	if (f->reorder) {
		sim_job *held = s->held[svc];
		if (!held) {
			s->held[svc] = job;
			job_report_first(job, 0, NULL, "held");
			if (!arm_timer(job, f->reorder_hold_ms))
				attempt_send(job);
			return;
		}
		/* Release the held one after this one. */
		s->held[svc] = NULL;
		if (held->timer)
			evtimer_del(held->timer);
		job->release = held;
	}
	if (f->delay_ms > 0) {
		job_report_first(job, 0, NULL, "delayed");
		if (arm_timer(job, f->delay_ms))
			return;
	}
	attempt_send(job);
}

bool sim_notify_again(sim *s, sim_payment *p)
{
	if (!p->last_notice.url)
		return false;
	sim_faults f;
	sim_faults_default(&f);
	f.retries = 0;
	sim_outgoing out = {
		.method = p->last_notice.method,
		.url = p->last_notice.url,
		.body = p->last_notice.body,
		.body_len = p->last_notice.body_len,
		.content_type = p->last_notice.content_type,
		.header_names = { p->last_notice.header_names[0], p->last_notice.header_names[1] },
		.header_values = { p->last_notice.header_values[0], p->last_notice.header_values[1] },
	};
	sim_notify(s, p->bank, p->ref, &out, &f, NULL, NULL);
	return true;
}

void sim_confirm_notify(sim *s, struct evhttp_request *req, sim_service svc, sim_payment *p, const sim_outgoing *out,
			const sim_faults *f, const char *wait, const char *ret, const char *op, const char *action)
{
	if (!sim_notice_save(&p->last_notice, out))
		sim_log("warn", op, "could not keep the notification of %s", p->ref);
	sim_log("info", op, "%s %s: %s", p->ref, action, sim_status_name(p->status));
	sim_waiter *w = wait && !sim_param_true(wait) ? NULL : sim_waiter_new(req, ret, NULL);
	sim_notify(s, svc, p->ref, out, f, w ? sim_waiter_done : NULL, w);
	if (!w)
		sim_redirect(req, ret);
}

void sim_notify_cancel_all(sim *s)
{
	for (sim_job *j = s->jobs; j; j = j->next)
		j->release = NULL;
	for (int i = 0; i < SIM_SERVICE_COUNT; i++)
		s->held[i] = NULL;
	sim_job *j = s->jobs;
	while (j) {
		sim_job *next = j->next;
		job_report_first(j, 0, NULL, "cancelled");
		if (j->in_flight)
			j->cancelled = true; /* freed when its answer or failure comes */
		else
			job_free(j);
		j = next;
	}
}

void sim_notify_shutdown(sim *s)
{
	sim_notify_cancel_all(s);
	while (s->jobs) {
		sim_job *j = s->jobs;
		if (j->evcon)
			evhttp_connection_free(j->evcon); /* frees its request without calling back */
		job_free(j);
	}
}

sim_waiter *sim_waiter_new(struct evhttp_request *req, const char *redirect, json_t *reply)
{
	sim_waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->req = req;
	w->reply = reply;
	if (redirect && !(w->redirect = strdup(redirect))) {
		free(w);
		return NULL;
	}
	return w;
}

void sim_waiter_done(void *arg, int status, const char *answer, const char *state)
{
	sim_waiter *w = arg;
	if (w->redirect) {
		sim_redirect(w->req, w->redirect);
	} else {
		json_t *reply = w->reply ? w->reply : json_object();
		json_t *n = json_pack("{s:s}", "state", state);
		if (n) {
			json_object_set_new(n, "status", status ? json_integer(status) : json_null());
			json_object_set_new(n, "answer", answer ? json_string(answer) : json_null());
			json_object_set_new(reply, "notification", n);
		}
		w->reply = NULL;
		sim_reply_json(w->req, 200, reply);
	}
	free(w->redirect);
	json_decref(w->reply);
	free(w);
}
