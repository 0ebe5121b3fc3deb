/*
 * loadgen: an open-loop HTTP/1.1 load generator on libevent, for feegate's benchmarks.
 *
 * Request i of a run is due at t0 + i / rate, whether or not earlier answers have come back,
 * and its latency is counted from that intended time (as wrk2 does), so a stalled server shows
 * up in the percentiles instead of slowing the generator down (no coordinated omission). Due
 * requests go out on idle keep-alive connections, round robin; when every connection is busy
 * they wait in the generator and that wait is part of their latency.
 *
 * Modes:
 *   loadgen --scenario S --rate R --duration D [--warmup W]     one measured run
 *   loadgen --scenario S --find-saturation ...                  step the rate up until a step
 *       fails twice (achieved < 99 % of offered, any error, or p99 over 100 ms), refine between
 *       the last pass and the first failure, then measure at half the highest passing rate
 *   loadgen --idle N [--hold S]                                 open N keep-alive connections,
 *       one GET each, print one JSON line when all are up, then hold them open
 * Prints one JSON object (see docs/performance.md and tests/bench/run.sh). Run --help.
 *
 * Scenarios are request builders in the table `scenarios` below: adding one is a function and
 * a line there.
 *
 * Flow scenarios (`flow`): what is scheduled at the rate is a flow of several requests, each
 * needing the previous answer. The first request is built like any other; after each answer
 * the scenario's follow function sees its status, Location header and body (up to
 * FLOW_BODY_BYTES) and either puts the flow's next request on the same connection or ends the
 * flow. A flow's latency runs from its intended start to its last answer, so a slow step delays
 * the flow and nothing else is hidden; each step's own latency is reported too (the first from
 * the flow's intended start, the others from the previous answer, so that they add up to the
 * flow's). An unexpected answer at any step ends the flow as an error.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"
#include "vnpay_ipn.h"

#define NS_PER_S INT64_C(1000000000)
#define NS_PER_MS INT64_C(1000000)
#define MAX_HEAD_BYTES (64 * 1024)
#define FIRST_ERROR_BYTES 300
#define HOUSEKEEPING_MS 20
#define MAX_CONNECTIONS 60000
#define FLOW_BODY_BYTES 4096     /* answers a flow reads are smaller; a longer one is an error */
#define FLOW_LOCATION_BYTES 2048 /* likewise for the Location header */
#define MAX_FLOW_STEPS 8

struct loadgen;

/*
 * A request builder appends one complete HTTP/1.1 request to `out`. `seq` is unique within the
 * process (across runs and steps). Returns false when it has nothing more to send (its input
 * file is used up): the run then stops scheduling.
 */
typedef bool (*build_fn)(struct loadgen *lg, uint64_t seq, struct evbuffer *out);
typedef bool (*setup_fn)(struct loadgen *lg, char *err, size_t errlen);

/* An answer as a flow scenario sees it. */
struct answer {
	int status;
	const char *location; /* the Location header, NULL when there is none */
	const char *body;     /* NUL-terminated */
	size_t body_len;
};

/* A flow in progress on a connection. */
struct flow {
	uint64_t seq;          /* the seq its first request was built with */
	size_t step;           /* the step whose answer is awaited */
	int64_t step_start_ns; /* step 0: the flow's intended start; later steps: when they were sent */
	char location[FLOW_LOCATION_BYTES];
	bool has_location;
	bool location_cut; /* the header was longer than the buffer */
	void *vars;        /* what the scenario keeps between steps (vars_size bytes, zeroed per flow) */
};

enum flow_verdict {
	FLOW_NEXT,  /* the next request has been appended */
	FLOW_DONE,  /* the last step got what it expected */
	FLOW_WRONG, /* the answer had the expected status but not the expected content */
};

/*
 * Called with each answer of a flow whose status is the step's expected one: checks it, and
 * appends the next request to `out` or ends the flow. On FLOW_WRONG it says why in `why`.
 */
typedef enum flow_verdict (*follow_fn)(struct loadgen *lg, struct flow *f, const struct answer *a,
				       struct evbuffer *out, char *why, size_t whylen);

struct flow_step {
	const char *name;
	int status; /* the expected answer's; any other ends the flow as an HTTP error */
};

struct scenario {
	const char *name;
	setup_fn setup; /* NULL when nothing to prepare */
	build_fn build; /* a flow scenario: the flow's first request */
	const char *help;
	/* flow scenarios only */
	follow_fn follow;
	const struct flow_step *steps;
	size_t nsteps;
	size_t vars_size;
};

struct options {
	const char *url, *scenario, *path, *file, *bearer, *agency, *tag, *output;
	const char *url2; /* a second server: odd connections go there (two gateways, one database) */
	const char *expect_body; /* a 2xx answer must contain this in its first bytes */
	const char *vnpay_tmn_code, *vnpay_secret; /* the flow scenario signs VNPAY IPNs */
	double rate, duration_s, warmup_s, timeout_s, drain_s;
	int connections;
	bool find_saturation;
	double rate_start, rate_factor, rate_max, step_duration_s, step_warmup_s, step_pause_s;
	int refine, max_steps, retries;
	double slo_p99_ms, min_ratio;
	double timeline_s;
	int idle;
	double hold_s;
	bool histogram;
};

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_IDLE, CONN_BUSY, CONN_HELD };
enum parse_state { PARSE_HEAD, PARSE_BODY, PARSE_BODY_TO_EOF, PARSE_CHUNK_SIZE, PARSE_CHUNK_DATA, PARSE_TRAILER };

struct conn {
	struct loadgen *lg;
	struct bufferevent *bev;
	struct event *retry; /* reconnect after a failure, with a short backoff */
	enum conn_state state;
	bool in_ring;        /* listed in the idle ring (the entry is stale unless state is IDLE) */
	uint64_t served;     /* responses completed on this TCP connection */
	/* the request in flight */
	uint64_t run_id;
	bool measured;       /* inside the run's measured window (not warm-up) */
	int64_t intended_ns; /* when it was due: latency is counted from here */
	int64_t sent_ns;     /* when it went out: the request timeout is counted from here */
	/* the response being parsed */
	enum parse_state parse;
	int status;
	uint64_t body_left;
	bool close_after;
	bool capture;        /* keep the start of this body (an error's for the report, or a flow's) */
	char *captured;      /* lg->capture_cap + 1 bytes */
	size_t captured_len;
	bool captured_cut;   /* the body was longer than lg->capture_cap */
	struct flow *flow;   /* flow scenarios: the flow in progress on this connection */
};

enum run_phase { RUN_IDLE, RUN_ACTIVE };

struct run {
	uint64_t id;
	enum run_phase phase;
	double rate;
	double warmup_s, duration_s;
	int64_t t0;           /* intended time of request 0 */
	uint64_t total;       /* requests scheduled, warm-up included */
	uint64_t warm;        /* the first `warm` requests are warm-up */
	uint64_t next_due;    /* requests [0, next_due) are due */
	uint64_t next_send;   /* requests [0, next_send) have been sent */
	int64_t window_start; /* intended time of the first measured request */
	int64_t deadline;     /* end of the schedule plus the drain time */
	int64_t last_done;    /* completion time of the last measured response */
	uint64_t completed;   /* measured requests (flow scenarios: flows) answered, any status */
	uint64_t err_http, err_body, err_socket, err_timeout;
	uint64_t status[600];
	/* flow scenarios: each step's answers in measured flows */
	struct hist step_hist[MAX_FLOW_STEPS];
	uint64_t step_status[MAX_FLOW_STEPS][600];
	bool input_exhausted;
	bool stopped; /* cut short by SIGINT/SIGTERM */
	struct hist hist;
	/* timeline: one entry per --timeline interval, over all completions */
	int64_t tl_next;
	int64_t tl_start;
	uint64_t tl_done, tl_errors;
	struct hist tl_hist;
	json_t *timeline;
	char first_error[FIRST_ERROR_BYTES + 64];
};

struct loadgen {
	struct options opt;
	const struct scenario *sc;
	struct event_base *base;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct sockaddr_storage addr2; /* --url2 */
	socklen_t addrlen2;           /* 0: no second server */
	char host[300]; /* Host header value */
	char *prebuilt; /* the whole request, for scenarios that send the same one every time */
	size_t prebuilt_len;
	char *auth_line; /* "Authorization: Bearer ...\r\n" or "" */
	size_t capture_cap; /* bytes of a body kept: FIRST_ERROR_BYTES, or FLOW_BODY_BYTES for flows */
	char txn_stamp[24]; /* digits unique to this process: the bank transaction ids of the flow scenario */
	FILE *input;
	char *line;
	size_t line_cap;
	uint64_t seq;
	struct conn *conns;
	int nconns;
	struct conn **ring;
	size_t ring_head, ring_count, ring_cap;
	int inflight;
	struct event *tick;         /* fires when the next request is due */
	struct event *housekeeping; /* timeouts, the drain deadline, the timeline */
	struct event *sigint, *sigterm;
	bool stop;
	struct run run;
	uint64_t next_run_id;
	/* --idle */
	int idle_next, idle_pending, idle_up, idle_failed, idle_closed;
	bool idle_reported;
	bool idle_starting; /* idle_mode_next is running: a nested call leaves the work to it */
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static struct timeval tv_from_ns(int64_t ns)
{
	if (ns < 0)
		ns = 0;
	struct timeval tv = {.tv_sec = (time_t)(ns / NS_PER_S), .tv_usec = (suseconds_t)((ns % NS_PER_S + 999) / 1000)};
	if (tv.tv_usec >= 1000000) {
		tv.tv_sec++;
		tv.tv_usec -= 1000000;
	}
	return tv;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (!p)
		die("out of memory");
	return p;
}

/* ---- scenarios ---- */

static bool build_prebuilt(struct loadgen *lg, uint64_t seq, struct evbuffer *out)
{
	return evbuffer_add(out, lg->prebuilt, lg->prebuilt_len) == 0;
}

static void prebuild_get(struct loadgen *lg, const char *path)
{
	char *req = NULL;
	int n = asprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, lg->host, lg->auth_line);
	if (n < 0)
		die("out of memory");
	lg->prebuilt = req;
	lg->prebuilt_len = (size_t)n;
}

static bool setup_get(struct loadgen *lg, char *err, size_t errlen)
{
	if (!lg->opt.path || lg->opt.path[0] != '/') {
		snprintf(err, errlen, "scenario get needs --path /...");
		return false;
	}
	prebuild_get(lg, lg->opt.path);
	return true;
}

static bool setup_fixed(struct loadgen *lg, char *err, size_t errlen)
{
	prebuild_get(lg, lg->opt.path ? lg->opt.path : "/");
	return true;
}

static bool setup_orders(struct loadgen *lg, char *err, size_t errlen)
{
	if (!*lg->auth_line) {
		snprintf(err, errlen, "scenario orders needs an API key (FEEGATE_API_KEY or --bearer)");
		return false;
	}
	if (!lg->opt.agency || !*lg->opt.agency) {
		snprintf(err, errlen, "scenario orders needs an agency (FEEGATE_AGENCY or --agency)");
		return false;
	}
	return true;
}

/* A fee order with a reference and an Idempotency-Key never used before. */
static bool build_orders(struct loadgen *lg, uint64_t seq, struct evbuffer *out)
{
	char body[512];
	int blen = snprintf(body, sizeof body,
			    "{\"reference\":\"LG-%s-%" PRIu64 "\",\"agency\":\"%s\","
			    "\"description\":\"Lệ phí cấp hộ chiếu (loadgen)\",\"amount\":200000,"
			    "\"return_url\":\"https://portal.example/return\"}",
			    lg->opt.tag, seq, lg->opt.agency);
	if (blen < 0 || (size_t)blen >= sizeof body)
		return false;
	return evbuffer_add_printf(out,
				   "POST /v1/orders HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\n"
				   "Idempotency-Key: lg-%s-%" PRIu64 "\r\nContent-Length: %d\r\n\r\n%s",
				   lg->host, lg->auth_line, lg->opt.tag, seq, blen, body) > 0;
}

static bool setup_file(struct loadgen *lg, char *err, size_t errlen)
{
	if (!lg->opt.file) {
		snprintf(err, errlen, "scenario %s needs --file", lg->sc->name);
		return false;
	}
	lg->input = fopen(lg->opt.file, "r");
	if (!lg->input) {
		snprintf(err, errlen, "%s: %s", lg->opt.file, strerror(errno));
		return false;
	}
	return true;
}

/* The next non-empty line of --file without its line end, or NULL at the end of the file. */
static const char *next_line(struct loadgen *lg)
{
	ssize_t n;
	while ((n = getline(&lg->line, &lg->line_cap, lg->input)) >= 0) {
		while (n > 0 && (lg->line[n - 1] == '\n' || lg->line[n - 1] == '\r'))
			lg->line[--n] = '\0';
		if (n > 0)
			return lg->line;
	}
	return NULL;
}

/* --file holds signed VNPAY IPN query strings, one per line; each is sent once. */
static bool build_vnpay_ipn(struct loadgen *lg, uint64_t seq, struct evbuffer *out)
{
	const char *q = next_line(lg);
	if (!q)
		return false;
	return evbuffer_add_printf(out, "GET /ipn/vnpay?%s HTTP/1.1\r\nHost: %s\r\n\r\n", q, lg->host) > 0;
}

/*
 * --file holds one request per line as JSON: {"method": "POST", "path": "/ipn/momo",
 * "headers": {"X-Signature": "..."}, "body": "<string>" or <any JSON, sent compact>}. For
 * requests that a script prepares beforehand (signed notifications, refunds); each is sent once.
 * --bearer adds an Authorization header to lines that have none.
 */
static bool build_requests(struct loadgen *lg, uint64_t seq, struct evbuffer *out)
{
	json_t *j;
	const char *method, *path;
	for (;;) {
		const char *text = next_line(lg);
		if (!text)
			return false;
		json_error_t jerr;
		j = json_loads(text, 0, &jerr);
		method = json_string_value(json_object_get(j, "method"));
		path = json_string_value(json_object_get(j, "path"));
		if (j && method && path)
			break;
		fprintf(stderr, "loadgen: %s: skipping a line that is not {\"method\", \"path\", ...}\n", lg->opt.file);
		json_decref(j);
	}
	json_t *b = json_object_get(j, "body");
	char *dumped = NULL;
	const char *body = NULL;
	if (json_is_string(b))
		body = json_string_value(b);
	else if (b && !json_is_null(b))
		body = dumped = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
	evbuffer_add_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, lg->host);
	bool has_auth = false;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(j, "headers"), k, v)
	{
		if (!json_is_string(v))
			continue;
		if (strcasecmp(k, "authorization") == 0)
			has_auth = true;
		evbuffer_add_printf(out, "%s: %s\r\n", k, json_string_value(v));
	}
	if (!has_auth)
		evbuffer_add_printf(out, "%s", lg->auth_line);
	if (body) {
		size_t len = strlen(body);
		evbuffer_add_printf(out, "Content-Length: %zu\r\n\r\n", len);
		evbuffer_add(out, body, len);
	} else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
		evbuffer_add_printf(out, "Content-Length: 0\r\n\r\n");
	} else {
		evbuffer_add_printf(out, "\r\n");
	}
	free(dumped);
	json_decref(j);
	return true;
}

/*
 * The full flow of one payment, as a portal and a citizen's browser and VNPAY make it: the
 * portal orders (build_orders), the citizen chooses VNPAY at checkout, VNPAY notifies the
 * payment, the portal reads the order's status.
 */
enum { PAY_ORDER, PAY_CHECKOUT, PAY_IPN, PAY_STATUS };

static const struct flow_step payment_steps[] = {
	[PAY_ORDER] = {"order", 201},
	[PAY_CHECKOUT] = {"checkout", 303},
	[PAY_IPN] = {"ipn", 200},
	[PAY_STATUS] = {"status", 200},
};

struct payment_vars {
	char order_id[40];
};

static bool setup_flow(struct loadgen *lg, char *err, size_t errlen)
{
	if (!setup_orders(lg, err, errlen))
		return false;
	if (!lg->opt.vnpay_tmn_code || !*lg->opt.vnpay_tmn_code || !lg->opt.vnpay_secret || !*lg->opt.vnpay_secret) {
		snprintf(err, errlen, "scenario flow signs VNPAY notifications: it needs --vnpay-tmn-code and "
				      "--vnpay-secret (or FEEGATE_VNPAY_TMN_CODE and FEEGATE_VNPAY_HASH_SECRET)");
		return false;
	}
	return true;
}

/* The string member `key` of a JSON object, copied into out; false when it is not there or too long. */
static bool copy_member(const json_t *doc, const char *key, char *out, size_t cap)
{
	const char *v = json_string_value(json_object_get(doc, key));
	if (!v || strlen(v) >= cap)
		return false;
	strcpy(out, v);
	return true;
}

static bool body_string(const struct answer *a, const char *key, char *out, size_t cap)
{
	json_t *doc = json_loadb(a->body, a->body_len, 0, NULL);
	bool ok = copy_member(doc, key, out, cap);
	json_decref(doc);
	return ok;
}

static bool url_safe(const char *s)
{
	return *s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(s);
}

/* Order created: choose VNPAY at its checkout, as the citizen's browser posts the form. */
static enum flow_verdict pay_checkout(struct loadgen *lg, struct payment_vars *v, const struct answer *a,
				      struct evbuffer *out, char *why, size_t whylen)
{
	char url[512];
	json_t *order = json_loadb(a->body, a->body_len, 0, NULL);
	bool ok = copy_member(order, "id", v->order_id, sizeof v->order_id) && url_safe(v->order_id) &&
		  copy_member(order, "checkout_url", url, sizeof url);
	json_decref(order);
	if (!ok) {
		snprintf(why, whylen, "no id and checkout_url in %.*s", FIRST_ERROR_BYTES, a->body);
		return FLOW_WRONG;
	}
	const char *token = strrchr(url, '/');
	if (!token || !url_safe(token + 1)) {
		snprintf(why, whylen, "no token at the end of checkout_url %s", url);
		return FLOW_WRONG;
	}
	static const char form[] = "bank=vnpay";
	evbuffer_add_printf(out,
			    "POST /checkout/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
			    "Content-Length: %zu\r\n\r\n%s",
			    token + 1, lg->host, sizeof form - 1, form);
	return FLOW_NEXT;
}

/* Redirected to VNPAY's pay page: the citizen pays, and VNPAY notifies the gateway (IPN). */
static enum flow_verdict pay_notify(struct loadgen *lg, struct flow *f, const struct answer *a,
				    struct evbuffer *out, char *why, size_t whylen)
{
	char ref[40], amount[24];
	if (!a->location || !ipn_url_param(a->location, "vnp_TxnRef", ref, sizeof ref) ||
	    !ipn_url_param(a->location, "vnp_Amount", amount, sizeof amount)) {
		snprintf(why, whylen, "no vnp_TxnRef and vnp_Amount in Location %.*s", FIRST_ERROR_BYTES,
			 a->location ? a->location : "(none)");
		return FLOW_WRONG;
	}
	char txn_no[48], bank_tran_no[52], query[2048];
	snprintf(txn_no, sizeof txn_no, "%s%08" PRIu64, lg->txn_stamp, f->seq);
	snprintf(bank_tran_no, sizeof bank_tran_no, "VNP%s", txn_no);
	struct ipn_payment pay = {
		.tmn_code = lg->opt.vnpay_tmn_code,
		.txn_ref = ref,
		.amount = amount,
		.transaction_no = txn_no,
		.bank_tran_no = bank_tran_no,
		.paid_at = time(NULL),
	};
	if (!ipn_success_query(lg->opt.vnpay_secret, &pay, query, sizeof query)) {
		snprintf(why, whylen, "cannot sign the IPN for %s (too long)", ref);
		return FLOW_WRONG;
	}
	evbuffer_add_printf(out, "GET /ipn/vnpay?%s HTTP/1.1\r\nHost: %s\r\n\r\n", query, lg->host);
	return FLOW_NEXT;
}

static enum flow_verdict follow_payment(struct loadgen *lg, struct flow *f, const struct answer *a,
					struct evbuffer *out, char *why, size_t whylen)
{
	struct payment_vars *v = f->vars;
	char value[32];
	switch (f->step) {
	case PAY_ORDER:
		return pay_checkout(lg, v, a, out, why, whylen);
	case PAY_CHECKOUT:
		return pay_notify(lg, f, a, out, why, whylen);
	case PAY_IPN:
		if (!body_string(a, "RspCode", value, sizeof value) || strcmp(value, "00") != 0) {
			snprintf(why, whylen, "the IPN was not confirmed: %.*s", FIRST_ERROR_BYTES, a->body);
			return FLOW_WRONG;
		}
		evbuffer_add_printf(out, "GET /v1/orders/%s HTTP/1.1\r\nHost: %s\r\n%s\r\n", v->order_id, lg->host,
				    lg->auth_line);
		return FLOW_NEXT;
	case PAY_STATUS:
		if (!body_string(a, "status", value, sizeof value) || strcmp(value, "succeeded") != 0) {
			snprintf(why, whylen, "the order is not succeeded after its IPN: %.*s", FIRST_ERROR_BYTES, a->body);
			return FLOW_WRONG;
		}
		return FLOW_DONE;
	}
	snprintf(why, whylen, "no step %zu", f->step);
	return FLOW_WRONG;
}

static const struct scenario scenarios[] = {
	{.name = "orders", .setup = setup_orders, .build = build_orders,
	 .help = "POST /v1/orders, unique reference and Idempotency-Key"},
	{.name = "get", .setup = setup_get, .build = build_prebuilt,
	 .help = "GET --path (with the API key when there is one)"},
	{.name = "fixed", .setup = setup_fixed, .build = build_prebuilt,
	 .help = "GET / (or --path) without credentials: the ceiling server"},
	{.name = "vnpay_ipn", .setup = setup_file, .build = build_vnpay_ipn,
	 .help = "GET /ipn/vnpay?<line of --file>, each line once"},
	{.name = "requests", .setup = setup_file, .build = build_requests,
	 .help = "one JSON request per line of --file, each once"},
	{.name = "flow", .setup = setup_flow, .build = build_orders,
	 .help = "flows of POST /v1/orders, POST /checkout/{token} bank=vnpay, signed VNPAY IPN, GET /v1/orders/{id}",
	 .follow = follow_payment, .steps = payment_steps, .nsteps = sizeof payment_steps / sizeof payment_steps[0],
	 .vars_size = sizeof(struct payment_vars)},
};

/* ---- connections ---- */

static void conn_connect(struct conn *c);
static void pump(struct loadgen *lg);
static void idle_mode_next(struct loadgen *lg);

static void ring_push(struct loadgen *lg, struct conn *c)
{
	if (c->in_ring)
		return;
	lg->ring[(lg->ring_head + lg->ring_count) % lg->ring_cap] = c;
	lg->ring_count++;
	c->in_ring = true;
}

static struct conn *ring_pop(struct loadgen *lg)
{
	while (lg->ring_count > 0) {
		struct conn *c = lg->ring[lg->ring_head];
		lg->ring_head = (lg->ring_head + 1) % lg->ring_cap;
		lg->ring_count--;
		c->in_ring = false;
		if (c->state == CONN_IDLE)
			return c;
	}
	return NULL;
}

static bool run_counts_now(const struct run *r)
{
	return r->phase == RUN_ACTIVE && now_ns() >= r->window_start;
}

/* Closes the TCP connection; a request in flight on it is lost (the caller counts it). */
static void conn_close(struct conn *c)
{
	if (c->state == CONN_BUSY)
		c->lg->inflight--;
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->state = CONN_DOWN;
}

static void conn_retry_later(struct conn *c, int64_t delay_ns)
{
	conn_close(c);
	struct timeval tv = tv_from_ns(delay_ns);
	evtimer_add(c->retry, &tv);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	conn_connect(arg);
}

static void check_finished(struct loadgen *lg);

/* --idle: a connection is gone (closed by the server, or it never got its answer). */
static void idle_lost(struct conn *c)
{
	struct loadgen *lg = c->lg;
	if (c->state == CONN_HELD) {
		lg->idle_closed++;
	} else if (c->state == CONN_CONNECTING || c->state == CONN_BUSY) {
		lg->idle_pending--;
		lg->idle_failed++;
	}
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->state = CONN_DOWN;
	idle_mode_next(lg);
}

/* The request in flight on c failed at the socket level: count it, then reconnect. */
static void conn_fail(struct conn *c, bool timeout)
{
	struct loadgen *lg = c->lg;
	struct run *r = &lg->run;
	if (lg->opt.idle > 0) {
		idle_lost(c);
		return;
	}
	if (c->state == CONN_BUSY && c->run_id == r->id && c->measured && r->phase == RUN_ACTIVE) {
		if (timeout)
			r->err_timeout++;
		else
			r->err_socket++;
	}
	conn_retry_later(c, c->served ? 0 : 100 * NS_PER_MS);
	check_finished(lg);
}

static void record_first_error(struct run *r, int status, const char *body, size_t len)
{
	if (r->first_error[0])
		return;
	snprintf(r->first_error, sizeof r->first_error, "HTTP %d: %.*s", status, (int)len, body);
}

/* The figures of one request, or of one flow, that got its answers; `error` says whether it is
 * counted as one. */
static void record_done(struct conn *c, int64_t now, bool error)
{
	struct run *r = &c->lg->run;
	uint64_t latency_us = (uint64_t)((now - c->intended_ns) / 1000);
	if (c->measured) {
		hist_record(&r->hist, latency_us);
		r->completed++;
		r->last_done = now;
	}
	if (r->timeline) {
		hist_record(&r->tl_hist, latency_us);
		r->tl_done++;
		if (error)
			r->tl_errors++;
	}
}

static void count_status(struct run *r, int status)
{
	if (status >= 0 && status < 600)
		r->status[status]++;
}

/* The answer to a single-request scenario's request. */
static void request_answered(struct conn *c, int64_t now)
{
	struct loadgen *lg = c->lg;
	struct run *r = &lg->run;
	bool ok = c->status >= 200 && c->status < 300;
	const char *want = lg->opt.expect_body;
	bool body_ok = !ok || !want || memmem(c->captured, c->captured_len, want, strlen(want));
	if (c->measured) {
		count_status(r, c->status);
		if (!ok)
			r->err_http++;
		else if (!body_ok)
			r->err_body++;
		if (!ok || !body_ok)
			record_first_error(r, c->status, c->captured, c->captured_len);
	}
	record_done(c, now, !ok || !body_ok);
}

/*
 * An answer within a flow. Returns true when the flow's next request is on its way on the same
 * connection; false when the flow has ended (done, or failed).
 */
static bool flow_answered(struct conn *c, int64_t now)
{
	struct loadgen *lg = c->lg;
	struct run *r = &lg->run;
	struct flow *f = c->flow;
	const struct flow_step *step = &lg->sc->steps[f->step];
	if (c->measured) {
		hist_record(&r->step_hist[f->step], (uint64_t)((now - f->step_start_ns) / 1000));
		count_status(r, c->status);
		if (c->status >= 0 && c->status < 600)
			r->step_status[f->step][c->status]++;
	}
	char why[FIRST_ERROR_BYTES] = "";
	enum flow_verdict verdict = FLOW_WRONG;
	bool http_error = c->status != step->status;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (http_error) {
		snprintf(why, sizeof why, "HTTP %d: %.*s", c->status, (int)c->captured_len, c->captured);
	} else if (c->captured_cut || f->location_cut) {
		snprintf(why, sizeof why, "the answer's %s is longer than loadgen reads in a flow",
			 c->captured_cut ? "body" : "Location");
	} else {
		struct answer a = {.status = c->status,
				   .location = f->has_location ? f->location : NULL,
				   .body = c->captured,
				   .body_len = c->captured_len};
		verdict = lg->sc->follow(lg, f, &a, out, why, sizeof why);
		if (verdict == FLOW_NEXT && (c->close_after || f->step + 1 >= lg->sc->nsteps)) {
			evbuffer_drain(out, evbuffer_get_length(out));
			verdict = FLOW_WRONG;
			snprintf(why, sizeof why, "%s", c->close_after ? "the server closed the connection within the flow"
								       : "the flow has more requests than steps");
		}
	}
	if (verdict == FLOW_NEXT) {
		f->step++;
		f->step_start_ns = now;
		c->sent_ns = now;
		c->parse = PARSE_HEAD;
		return true;
	}
	bool error = verdict != FLOW_DONE;
	if (c->measured && error) {
		if (http_error)
			r->err_http++;
		else
			r->err_body++;
		if (!r->first_error[0])
			snprintf(r->first_error, sizeof r->first_error, "%s: %s", step->name, why);
	}
	record_done(c, now, error);
	return false;
}

/* A whole response has been read. */
static void conn_complete(struct conn *c)
{
	struct loadgen *lg = c->lg;
	struct run *r = &lg->run;
	int64_t now = now_ns();
	c->served++;
	if (lg->opt.idle > 0) {
		lg->idle_pending--;
		c->state = CONN_HELD;
		if (c->status >= 200 && c->status < 300)
			lg->idle_up++;
		else
			lg->idle_failed++;
		idle_mode_next(lg);
		return;
	}
	if (c->run_id == r->id && r->phase == RUN_ACTIVE) {
		if (!c->flow)
			request_answered(c, now);
		else if (flow_answered(c, now))
			return;
	}
	lg->inflight--;
	if (c->close_after) {
		c->state = CONN_IDLE; /* not counted as in flight any more */
		conn_close(c);
		conn_connect(c);
	} else {
		c->state = CONN_IDLE;
		ring_push(lg, c);
	}
	pump(lg);
}

static bool header_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

static bool value_has(const char *v, size_t len, const char *word)
{
	size_t n = strlen(word);
	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(v + i, word, n) == 0)
			return true;
	return false;
}

/* Keeps a Location header's value, without the spaces around it, for the flow's next step. */
static void keep_location(struct flow *f, const char *v, size_t len)
{
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	f->has_location = true;
	f->location_cut = len >= sizeof f->location;
	if (f->location_cut)
		len = 0;
	memcpy(f->location, v, len);
	f->location[len] = '\0';
}

/* Parses the status line and headers (head[0..len) ends with the blank line). */
static bool parse_head(struct conn *c, const char *head, size_t len)
{
	if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ')
		return false;
	if (head[9] < '1' || head[9] > '5' || head[10] < '0' || head[10] > '9' || head[11] < '0' || head[11] > '9')
		return false;
	c->status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
	bool http10 = head[7] == '0';
	bool keep_alive = false, chunked = false, have_length = false;
	uint64_t length = 0;
	c->close_after = false;
	if (c->flow) {
		c->flow->has_location = false;
		c->flow->location_cut = false;
	}
	const char *p = memchr(head, '\n', len);
	const char *end = head + len;
	while (p && p + 1 < end) {
		const char *line = p + 1;
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			break;
		size_t llen = (size_t)(nl - line);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		const char *colon = memchr(line, ':', llen);
		if (colon) {
			const char *v = colon + 1;
			size_t vlen = llen - (size_t)(v - line);
			if (header_is(line, llen, "content-length")) {
				char num[32];
				size_t k = 0;
				for (size_t i = 0; i < vlen && k < sizeof num - 1; i++)
					if (v[i] != ' ' && v[i] != '\t')
						num[k++] = v[i];
				num[k] = '\0';
				char *stop;
				length = strtoull(num, &stop, 10);
				if (k == 0 || *stop)
					return false;
				have_length = true;
			} else if (header_is(line, llen, "transfer-encoding")) {
				chunked = value_has(v, vlen, "chunked");
			} else if (header_is(line, llen, "connection")) {
				if (value_has(v, vlen, "close"))
					c->close_after = true;
				if (value_has(v, vlen, "keep-alive"))
					keep_alive = true;
			} else if (c->flow && header_is(line, llen, "location")) {
				keep_location(c->flow, v, vlen);
			}
		}
		p = nl;
	}
	if (http10 && !keep_alive)
		c->close_after = true;
	c->capture = !(c->status >= 200 && c->status < 300) || c->lg->opt.expect_body || c->flow;
	c->captured_len = 0;
	c->captured_cut = false;
	c->captured[0] = '\0';
	if (c->status == 204 || c->status == 304) {
		c->parse = PARSE_BODY;
		c->body_left = 0;
	} else if (chunked) {
		c->parse = PARSE_CHUNK_SIZE;
	} else if (have_length) {
		c->parse = PARSE_BODY;
		c->body_left = length;
	} else {
		c->parse = PARSE_BODY_TO_EOF;
		c->close_after = true;
	}
	return true;
}

static void consume_body(struct conn *c, struct evbuffer *in, size_t n)
{
	if (c->capture) {
		size_t cap = c->lg->capture_cap;
		size_t k = cap - c->captured_len;
		if (k > n)
			k = n;
		evbuffer_copyout(in, c->captured + c->captured_len, k);
		c->captured_len += k;
		c->captured[c->captured_len] = '\0';
		if (k < n)
			c->captured_cut = true;
	}
	evbuffer_drain(in, n);
}

/* Reads a CRLF-ended line of at most 256 bytes into buf; false when not complete yet. */
static int take_line(struct evbuffer *in, char *buf, size_t cap)
{
	struct evbuffer_ptr p = evbuffer_search(in, "\r\n", 2, NULL);
	if (p.pos < 0)
		return evbuffer_get_length(in) > 256 ? -1 : 0;
	if ((size_t)p.pos >= cap)
		return -1;
	evbuffer_remove(in, buf, (size_t)p.pos);
	buf[p.pos] = '\0';
	evbuffer_drain(in, 2);
	return 1;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (evbuffer_get_length(in) > 0) {
		if (c->state != CONN_BUSY) {
			/* bytes nobody asked for: the connection is out of step */
			conn_fail(c, false);
			return;
		}
		switch (c->parse) {
		case PARSE_HEAD: {
			struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
			if (p.pos < 0) {
				if (evbuffer_get_length(in) > MAX_HEAD_BYTES)
					conn_fail(c, false);
				return;
			}
			size_t hlen = (size_t)p.pos + 4;
			const char *head = (const char *)evbuffer_pullup(in, (ev_ssize_t)hlen);
			if (!head || !parse_head(c, head, hlen)) {
				conn_fail(c, false);
				return;
			}
			evbuffer_drain(in, hlen);
			if (c->status < 200) { /* 1xx: the real answer follows */
				c->parse = PARSE_HEAD;
				continue;
			}
			if (c->parse == PARSE_BODY && c->body_left == 0) {
				conn_complete(c);
				if (c->bev != bev)
					return;
			}
			break;
		}
		case PARSE_BODY:
		case PARSE_CHUNK_DATA: {
			size_t have = evbuffer_get_length(in);
			size_t n = have < c->body_left ? have : (size_t)c->body_left;
			consume_body(c, in, n);
			c->body_left -= n;
			if (c->body_left > 0)
				return;
			if (c->parse == PARSE_CHUNK_DATA) {
				c->parse = PARSE_CHUNK_SIZE;
				break;
			}
			conn_complete(c);
			if (c->bev != bev)
				return;
			break;
		}
		case PARSE_BODY_TO_EOF:
			consume_body(c, in, evbuffer_get_length(in));
			return;
		case PARSE_CHUNK_SIZE: {
			char line[257];
			int got = take_line(in, line, sizeof line);
			if (got < 0) {
				conn_fail(c, false);
				return;
			}
			if (got == 0)
				return;
			char *stop;
			unsigned long long size = strtoull(line, &stop, 16);
			if (stop == line) {
				conn_fail(c, false);
				return;
			}
			if (size == 0) {
				c->parse = PARSE_TRAILER;
				c->body_left = 0;
			} else {
				c->parse = PARSE_CHUNK_DATA;
				c->body_left = size + 2; /* the data and the CRLF after it */
			}
			break;
		}
		case PARSE_TRAILER: {
			char line[257];
			int got = take_line(in, line, sizeof line);
			if (got < 0) {
				conn_fail(c, false);
				return;
			}
			if (got == 0)
				return;
			if (line[0] == '\0') {
				conn_complete(c);
				if (c->bev != bev)
					return;
			}
			break;
		}
		}
	}
}

static void on_event(struct bufferevent *bev, short events, void *arg)
{
	struct conn *c = arg;
	struct loadgen *lg = c->lg;
	if (events & BEV_EVENT_CONNECTED) {
		int one = 1;
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->state = CONN_IDLE;
		if (lg->opt.idle > 0) {
			c->state = CONN_BUSY;
			c->parse = PARSE_HEAD;
			evbuffer_add(bufferevent_get_output(bev), lg->prebuilt, lg->prebuilt_len);
			return;
		}
		ring_push(lg, c);
		pump(lg);
		return;
	}
	if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
		return;
	if (lg->opt.idle > 0) {
		idle_lost(c);
		return;
	}
	switch (c->state) {
	case CONN_BUSY:
		if (c->parse == PARSE_BODY_TO_EOF && (events & BEV_EVENT_EOF)) {
			c->close_after = true;
			conn_complete(c);
			return;
		}
		conn_fail(c, false);
		return;
	case CONN_CONNECTING:
		if (run_counts_now(&lg->run))
			lg->run.err_socket++;
		conn_retry_later(c, 100 * NS_PER_MS);
		return;
	default: /* the server closed an idle keep-alive connection: open another */
		conn_retry_later(c, c->served ? 0 : 100 * NS_PER_MS);
		return;
	}
}

static void conn_connect(struct conn *c)
{
	struct loadgen *lg = c->lg;
	c->bev = bufferevent_socket_new(lg->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		die("bufferevent_socket_new failed");
	c->served = 0;
	c->state = CONN_CONNECTING;
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	bool second = lg->addrlen2 && (c - lg->conns) % 2 == 1;
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)(second ? &lg->addr2 : &lg->addr),
				       (int)(second ? lg->addrlen2 : lg->addrlen)) != 0) {
		if (lg->opt.idle > 0) {
			idle_lost(c);
			return;
		}
		if (run_counts_now(&lg->run))
			lg->run.err_socket++;
		conn_retry_later(c, 100 * NS_PER_MS);
	}
}

/* ---- the schedule ---- */

static int64_t intended_ns(const struct run *r, uint64_t i)
{
	return r->t0 + (int64_t)((double)i * 1e9 / r->rate);
}

static void finish_run(struct loadgen *lg)
{
	struct run *r = &lg->run;
	if (r->phase != RUN_ACTIVE)
		return;
	r->phase = RUN_IDLE;
	evtimer_del(lg->tick);
	event_base_loopbreak(lg->base);
}

static void check_finished(struct loadgen *lg)
{
	struct run *r = &lg->run;
	if (r->phase == RUN_ACTIVE && r->next_send >= r->total && lg->inflight == 0)
		finish_run(lg);
}

static bool send_next(struct loadgen *lg, struct conn *c)
{
	struct run *r = &lg->run;
	uint64_t i = r->next_send;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (!lg->sc->build(lg, lg->seq, out)) {
		evbuffer_drain(out, evbuffer_get_length(out));
		return false;
	}
	c->run_id = r->id;
	c->intended_ns = intended_ns(r, i);
	c->sent_ns = now_ns();
	c->measured = i >= r->warm;
	c->state = CONN_BUSY;
	c->parse = PARSE_HEAD;
	c->close_after = false;
	c->capture = false;
	c->captured_len = 0;
	if (c->flow) {
		c->flow->seq = lg->seq;
		c->flow->step = 0;
		c->flow->step_start_ns = c->intended_ns;
		memset(c->flow->vars, 0, lg->sc->vars_size);
	}
	lg->seq++;
	lg->inflight++;
	r->next_send++;
	return true;
}

/* Sends what is due on the idle connections, and sets the timer for the next due request. */
static void pump(struct loadgen *lg)
{
	struct run *r = &lg->run;
	if (r->phase != RUN_ACTIVE)
		return;
	int64_t now = now_ns();
	if (r->next_due < r->total && now >= r->t0) {
		uint64_t due = (uint64_t)((double)(now - r->t0) * r->rate / 1e9) + 1;
		if (due > r->total)
			due = r->total;
		if (due > r->next_due)
			r->next_due = due;
	}
	while (r->next_send < r->next_due) {
		struct conn *c = ring_pop(lg);
		if (!c)
			break;
		if (!send_next(lg, c)) {
			ring_push(lg, c);
			r->input_exhausted = true;
			uint64_t unsent = r->total - r->next_send;
			uint64_t measured_unsent = r->total - (r->next_send > r->warm ? r->next_send : r->warm);
			if (measured_unsent > unsent)
				measured_unsent = unsent;
			r->err_timeout += measured_unsent;
			r->total = r->next_send;
			r->next_due = r->total;
			break;
		}
	}
	if (r->next_due < r->total && lg->ring_count > 0 && !evtimer_pending(lg->tick, NULL)) {
		struct timeval tv = tv_from_ns(intended_ns(r, r->next_due) - now);
		evtimer_add(lg->tick, &tv);
	}
	check_finished(lg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	pump(arg);
}

static void timeline_emit(struct loadgen *lg, int64_t now)
{
	struct run *r = &lg->run;
	double secs = (double)(now - r->tl_start) / 1e9;
	json_t *e = json_pack("{s:f, s:I, s:f, s:I, s:f, s:f, s:f}", "t_s", round((double)(now - r->t0) / 1e7) / 100,
			      "completed", (json_int_t)r->tl_done, "rate", secs > 0 ? round((double)r->tl_done / secs) : 0.0,
			      "errors", (json_int_t)r->tl_errors, "p50_ms", hist_percentile(&r->tl_hist, 50) / 1000.0,
			      "p99_ms", hist_percentile(&r->tl_hist, 99) / 1000.0, "max_ms", r->tl_hist.max / 1000.0);
	char *line = json_dumps(e, JSON_COMPACT | JSON_REAL_PRECISION(9));
	fprintf(stderr, "timeline %s\n", line);
	free(line);
	json_array_append_new(r->timeline, e);
	hist_reset(&r->tl_hist);
	r->tl_done = r->tl_errors = 0;
	r->tl_start = now;
}

static void on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
	struct loadgen *lg = arg;
	struct run *r = &lg->run;
	if (r->phase != RUN_ACTIVE)
		return;
	int64_t now = now_ns();
	if (r->timeline && now >= r->tl_next) {
		timeline_emit(lg, now);
		r->tl_next += (int64_t)(lg->opt.timeline_s * 1e9);
	}
	if (lg->stop && !r->stopped) {
		/* stop scheduling; what is in flight is still waited for (up to the drain time) */
		r->stopped = true;
		r->total = r->next_send;
		r->next_due = r->total;
		r->deadline = now + (int64_t)(lg->opt.drain_s * 1e9);
	}
	int64_t timeout = (int64_t)(lg->opt.timeout_s * 1e9);
	for (int i = 0; i < lg->nconns; i++) {
		struct conn *c = &lg->conns[i];
		if (c->state == CONN_BUSY && now - c->sent_ns > timeout)
			conn_fail(c, true);
	}
	if (now > r->deadline) {
		/* give up on what is left: it counts as timed out */
		uint64_t first = r->next_send > r->warm ? r->next_send : r->warm;
		if (r->total > first)
			r->err_timeout += r->total - first;
		r->total = r->next_send;
		for (int i = 0; i < lg->nconns; i++) {
			struct conn *c = &lg->conns[i];
			if (c->state == CONN_BUSY)
				conn_fail(c, true);
		}
		finish_run(lg);
		return;
	}
	check_finished(lg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct loadgen *lg = arg;
	lg->stop = true;
	if (lg->opt.idle > 0 || lg->run.phase != RUN_ACTIVE)
		event_base_loopbreak(lg->base);
}

/* One run at a fixed rate: warm-up, then the measured window. Leaves its figures in lg->run. */
static void run_at(struct loadgen *lg, double rate, double warmup_s, double duration_s)
{
	struct run *r = &lg->run;
	json_decref(r->timeline);
	memset(r, 0, sizeof *r);
	hist_reset(&r->hist);
	hist_reset(&r->tl_hist);
	for (size_t k = 0; k < MAX_FLOW_STEPS; k++)
		hist_reset(&r->step_hist[k]);
	r->id = ++lg->next_run_id;
	r->rate = rate;
	r->warmup_s = warmup_s;
	r->duration_s = duration_s;
	r->warm = (uint64_t)llround(warmup_s * rate);
	r->total = r->warm + (uint64_t)llround(duration_s * rate);
	if (r->total == r->warm)
		r->total++;
	r->t0 = now_ns() + NS_PER_MS;
	r->window_start = intended_ns(r, r->warm);
	r->deadline = intended_ns(r, r->total) + (int64_t)(lg->opt.drain_s * 1e9);
	r->last_done = r->window_start;
	if (lg->opt.timeline_s > 0) {
		r->timeline = json_array();
		r->tl_start = r->t0;
		r->tl_next = r->t0 + (int64_t)(lg->opt.timeline_s * 1e9);
	}
	if (lg->stop)
		return;
	r->phase = RUN_ACTIVE;
	pump(lg);
	if (r->phase == RUN_ACTIVE)
		event_base_dispatch(lg->base);
	r->phase = RUN_IDLE;
	if (r->timeline && r->tl_done > 0)
		timeline_emit(lg, now_ns());
}

/* Runs the loop for a while without a schedule (reconnects go on). */
static void pause_for(struct loadgen *lg, double seconds)
{
	if (seconds <= 0 || lg->stop)
		return;
	struct timeval tv = tv_from_ns((int64_t)(seconds * 1e9));
	event_base_loopexit(lg->base, &tv);
	event_base_dispatch(lg->base);
}

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

/*
 * Measured answers per second, over the window stretched to the last answer: a server falling
 * behind answers its backlog late, which lowers the rate. The fastest answer's latency (what a
 * request costs with no backlog) is taken off the stretch, so that a server keeping up is not
 * marked down for the time its last answer took to travel.
 */
static double achieved_rate(const struct run *r)
{
	double min_s = r->hist.total ? (double)r->hist.min / 1e6 : 0;
	double until_last = (double)(r->last_done - r->window_start) / 1e9 - min_s;
	double window = until_last > r->duration_s ? until_last : r->duration_s;
	return window > 0 ? (double)r->completed / window : 0;
}

static bool run_passes(const struct loadgen *lg, const struct run *r)
{
	uint64_t errors = r->err_http + r->err_body + r->err_socket + r->err_timeout;
	return r->completed > 0 && errors == 0 && !r->stopped && achieved_rate(r) >= lg->opt.min_ratio * r->rate &&
	       ms(hist_percentile(&r->hist, 99)) <= lg->opt.slo_p99_ms;
}

/* A JSON string of text that may have been cut inside a UTF-8 sequence (an answer's start). */
static json_t *json_text(const char *text)
{
	json_t *j = json_string(text);
	if (j)
		return j;
	char *ascii = strdup(text);
	if (!ascii)
		die("out of memory");
	for (char *p = ascii; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(ascii);
	free(ascii);
	return j;
}

static json_t *status_json(const uint64_t counts[600])
{
	json_t *status = json_object();
	for (int s = 0; s < 600; s++) {
		if (counts[s]) {
			char k[16];
			snprintf(k, sizeof k, "%d", s);
			json_object_set_new(status, k, json_integer((json_int_t)counts[s]));
		}
	}
	return status;
}

static json_t *latency_json(const struct hist *h)
{
	return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "min", h->total ? ms(h->min) : 0.0, "p50",
			 ms(hist_percentile(h, 50)), "p90", ms(hist_percentile(h, 90)), "p99", ms(hist_percentile(h, 99)),
			 "p99_9", ms(hist_percentile(h, 99.9)), "p99_99", ms(hist_percentile(h, 99.99)), "max", ms(h->max),
			 "mean", round(hist_mean(h)) / 1000.0);
}

/* Flow scenarios: each step's answers in the measured flows (see the top of this file). */
static json_t *flow_steps_json(const struct loadgen *lg, const struct run *r)
{
	json_t *steps = json_array();
	for (size_t k = 0; k < lg->sc->nsteps; k++)
		json_array_append_new(steps, json_pack("{s:s, s:I, s:o, s:o}", "step", lg->sc->steps[k].name, "answers",
						       (json_int_t)r->step_hist[k].total, "status",
						       status_json(r->step_status[k]), "latency_ms",
						       latency_json(&r->step_hist[k])));
	return steps;
}

static json_t *run_json(const struct loadgen *lg, const struct run *r, bool with_histogram)
{
	uint64_t errors = r->err_http + r->err_body + r->err_socket + r->err_timeout;
	json_t *status = status_json(r->status);
	const struct hist *h = &r->hist;
	json_t *lat = latency_json(h);
	json_t *o = json_pack("{s:f, s:f, s:f, s:f, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:b}",
			      "offered_rate", round(r->rate * 10) / 10, "achieved_rate", round(achieved_rate(r) * 10) / 10,
			      "duration_s", r->duration_s, "warmup_s", r->warmup_s, "requests",
			      (json_int_t)(r->total - r->warm), "completed", (json_int_t)r->completed, "errors", "total",
			      (json_int_t)errors, "http", (json_int_t)r->err_http, "body", (json_int_t)r->err_body,
			      "socket", (json_int_t)r->err_socket, "timeout", (json_int_t)r->err_timeout, "status", status,
			      "latency_ms", lat, "pass", run_passes(lg, r));
	if (lg->sc->nsteps > 0)
		json_object_set_new(o, "flow_steps", flow_steps_json(lg, r));
	if (r->first_error[0])
		json_object_set_new(o, "first_error", json_text(r->first_error));
	if (r->input_exhausted)
		json_object_set_new(o, "input_exhausted", json_true());
	if (r->stopped)
		json_object_set_new(o, "interrupted", json_true());
	if (r->timeline)
		json_object_set(o, "timeline", r->timeline);
	if (with_histogram) {
		/* non-empty buckets as [highest value in the bucket (us), count] */
		json_t *b = json_array();
		for (size_t i = 0; i < HIST_BUCKETS; i++)
			if (h->counts[i])
				json_array_append_new(b, json_pack("[I, I]", (json_int_t)hist_bucket_high(i),
								   (json_int_t)h->counts[i]));
		json_object_set_new(o, "histogram", json_pack("{s:s, s:o}", "unit", "us", "buckets", b));
	}
	return o;
}

static void log_step(const char *what, const struct loadgen *lg, const struct run *r)
{
	fprintf(stderr, "loadgen: %-8s offered %8.0f/s achieved %8.0f/s  p50 %7.2f  p99 %7.2f  max %8.2f ms  errors %" PRIu64 "  %s\n",
		what, r->rate, achieved_rate(r), ms(hist_percentile(&r->hist, 50)), ms(hist_percentile(&r->hist, 99)),
		ms(r->hist.max), r->err_http + r->err_body + r->err_socket + r->err_timeout,
		strcmp(what, "warm-up") == 0 ? "" : run_passes(lg, r) ? "pass" : "FAIL");
	if (lg->sc->nsteps == 0)
		return;
	fprintf(stderr, "loadgen: %8s p50/p99 ms by step:", "");
	for (size_t k = 0; k < lg->sc->nsteps; k++)
		fprintf(stderr, "  %s %.2f/%.2f", lg->sc->steps[k].name, ms(hist_percentile(&r->step_hist[k], 50)),
			ms(hist_percentile(&r->step_hist[k], 99)));
	fputc('\n', stderr);
}

/* One saturation step; appends its figures to steps and says whether it passed. */
static bool step(struct loadgen *lg, double rate, json_t *steps, int *nsteps, bool retry)
{
	pause_for(lg, lg->opt.step_pause_s);
	run_at(lg, rate, lg->opt.step_warmup_s, lg->opt.step_duration_s);
	(*nsteps)++;
	log_step(retry ? "again" : "step", lg, &lg->run);
	json_t *j = run_json(lg, &lg->run, false);
	if (retry)
		json_object_set_new(j, "retry", json_true());
	json_array_append_new(steps, j);
	return run_passes(lg, &lg->run);
}

static json_t *find_saturation(struct loadgen *lg)
{
	const struct options *o = &lg->opt;
	json_t *steps = json_array();
	int nsteps = 0;
	if (o->warmup_s > 0) {
		run_at(lg, o->rate_start, 0, o->warmup_s);
		log_step("warm-up", lg, &lg->run);
	}
	double best = 0, failed = 0, rate = o->rate_start;
	bool capped = false;
	while (nsteps < o->max_steps && !lg->stop) {
		if (rate > o->rate_max) {
			capped = true;
			break;
		}
		bool ok = step(lg, rate, steps, &nsteps, false);
		/* On a shared machine one step can fail for a hiccup elsewhere; while climbing, that
		 * would end the search far too low, so a rate fails only when it fails again. */
		for (int k = 0; !ok && k < o->retries && nsteps < o->max_steps && !lg->stop; k++)
			ok = step(lg, rate, steps, &nsteps, true);
		if (!ok) {
			failed = rate;
			break;
		}
		best = rate;
		rate = round(rate * o->rate_factor);
	}
	/* the first step failed: come down until one passes */
	for (int down = 0; best == 0 && failed > 0 && down < 4 && nsteps < o->max_steps && !lg->stop; down++) {
		rate = round(failed / o->rate_factor);
		if (rate < 1)
			break;
		if (step(lg, rate, steps, &nsteps, false))
			best = rate;
		else
			failed = rate;
	}
	for (int k = 0; k < o->refine && best > 0 && failed > best * 1.05 && nsteps < o->max_steps && !lg->stop; k++) {
		double mid = round(sqrt(best * failed));
		if (step(lg, mid, steps, &nsteps, false))
			best = mid;
		else
			failed = mid;
	}
	json_t *out = json_pack("{s:s, s:{s:f, s:f, s:i}, s:o, s:f}", "mode", "saturation", "criteria", "min_achieved_ratio",
				o->min_ratio, "max_p99_ms", o->slo_p99_ms, "max_errors", 0, "steps", steps,
				"saturation_rate", best);
	if (capped)
		json_object_set_new(out, "capped_at_rate_max", json_true());
	if (best > 0 && !lg->stop) {
		pause_for(lg, o->step_pause_s);
		run_at(lg, best / 2, o->warmup_s, o->duration_s);
		log_step("at half", lg, &lg->run);
		json_object_set_new(out, "at_half", run_json(lg, &lg->run, true));
	} else {
		json_object_set_new(out, "at_half", json_null());
	}
	return out;
}

/* ---- --idle ---- */

static void idle_mode_next(struct loadgen *lg)
{
	if (lg->idle_starting)
		return;
	lg->idle_starting = true;
	/* at most 256 connections being opened at once, so the listen backlog never overflows */
	while (lg->idle_next < lg->nconns && lg->idle_pending < 256) {
		struct conn *c = &lg->conns[lg->idle_next++];
		lg->idle_pending++;
		conn_connect(c);
	}
	lg->idle_starting = false;
	if (!lg->idle_reported && lg->idle_up + lg->idle_failed >= lg->nconns) {
		lg->idle_reported = true;
		printf("{\"mode\": \"idle\", \"requested\": %d, \"open\": %d, \"failed\": %d}\n", lg->nconns, lg->idle_up,
		       lg->idle_failed);
		fflush(stdout);
		struct timeval tv = tv_from_ns((int64_t)(lg->opt.hold_s * 1e9));
		event_base_loopexit(lg->base, &tv);
	}
}

/* ---- set-up ---- */

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

/* http://HOST:PORT[/...]; HOST must be a loopback address. The first URL also names the Host
 * header. */
static void resolve_url(struct loadgen *lg, const char *url, struct sockaddr_storage *addr, socklen_t *addrlen)
{
	if (strncmp(url, "http://", 7) != 0)
		die("--url must start with http:// (got %s)", url);
	const char *hp = url + 7;
	size_t len = strcspn(hp, "/");
	if (len == 0 || len >= sizeof lg->host)
		die("--url: no host in %s", url);
	memcpy(lg->host, hp, len);
	lg->host[len] = '\0';
	char host[300], port[16] = "80";
	const char *colon = strrchr(lg->host, ':');
	if (lg->host[0] == '[') {
		const char *close = strchr(lg->host, ']');
		if (!close)
			die("--url: bad IPv6 address");
		snprintf(host, sizeof host, "%.*s", (int)(close - lg->host - 1), lg->host + 1);
		if (close[1] == ':')
			snprintf(port, sizeof port, "%s", close + 2);
	} else if (colon) {
		snprintf(host, sizeof host, "%.*s", (int)(colon - lg->host), lg->host);
		snprintf(port, sizeof port, "%s", colon + 1);
	} else {
		snprintf(host, sizeof host, "%s", lg->host);
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		die("--url: %s: %s", host, gai_strerror(rc));
	if (!is_loopback(res->ai_addr))
		die("--url: %s is not a loopback address; loadgen only loads this machine", host);
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

static void raise_fd_limit(int need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)need + 64 > rl.rlim_cur)
		die("%d connections need %d file descriptors; the limit is %llu (raise ulimit -n)", need, need + 64,
		    (unsigned long long)rl.rlim_cur);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: loadgen --scenario NAME [--url URL] --rate R --duration S [--warmup S] [options]\n"
		   "       loadgen --scenario NAME --find-saturation [--rate-start R] [--rate-factor F] [options]\n"
		   "       loadgen --idle N [--hold S] [--path /healthz] [--url URL]\n"
		   "scenarios:\n");
	for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
		fprintf(f, "  %-10s %s\n", scenarios[i].name, scenarios[i].help);
	fprintf(f, "options:\n"
		   "  --url URL            server (default $FEEGATE_URL); loopback only\n"
		   "  --url2 URL           a second server (another gateway): every other connection goes there\n"
		   "  --path P             path for get/fixed/--idle\n"
		   "  --file F             input for vnpay_ipn/requests\n"
		   "  --bearer TOKEN       Authorization: Bearer (default $FEEGATE_API_KEY for orders, get, flow)\n"
		   "  --agency CODE        agency for orders and flow (default $FEEGATE_AGENCY)\n"
		   "  --vnpay-tmn-code C   flow: VNPAY terminal (default $FEEGATE_VNPAY_TMN_CODE)\n"
		   "  --vnpay-secret S     flow: VNPAY hash secret (default $FEEGATE_VNPAY_HASH_SECRET)\n"
		   "  --connections N      keep-alive connections (default 64)\n"
		   "  --rate R             requests (flow: flows) per second (fixed-rate run)\n"
		   "  --duration S         measured seconds (default 10)\n"
		   "  --warmup S           seconds sent before measuring (default 2)\n"
		   "  --timeout S          a request slower than this is a timeout error (default 10)\n"
		   "  --expect-body TEXT   a 2xx answer without TEXT in its first 300 bytes is an error\n"
		   "  --drain S            wait after the schedule for answers still due (default 2)\n"
		   "  --find-saturation    step the rate up (see the top of loadgen.c)\n"
		   "  --rate-start R --rate-factor F --rate-max R --max-steps N --refine K\n"
		   "  --step-duration S --step-warmup S --step-pause S\n"
		   "  --retries N          while climbing, run a failed step again up to N times (default 1)\n"
		   "  --slo-p99-ms MS      a step passes with p99 at most this (default 100)\n"
		   "  --min-ratio X        ... and achieved at least X * offered (default 0.99)\n"
		   "  --timeline S         per-interval figures (also to stderr as they come)\n"
		   "  --histogram          add the histogram to a fixed-rate run's output\n"
		   "  --tag T              prefix of references and idempotency keys (default: time and pid)\n"
		   "  --output FILE        write the JSON there instead of stdout\n");
}

static double num_arg(const char *name, const char *v, double lo, double hi)
{
	char *end;
	double d = strtod(v, &end);
	if (end == v || *end || !(d >= lo && d <= hi))
		die("%s: expected a number in [%g, %g], got '%s'", name, lo, hi, v);
	return d;
}

static void parse_args(struct options *o, int argc, char **argv)
{
	enum {
		O_URL = 1000, O_URL2, O_SCENARIO, O_PATH, O_FILE, O_BEARER, O_AGENCY, O_TAG, O_OUTPUT, O_RATE, O_DURATION,
		O_WARMUP, O_TIMEOUT, O_DRAIN, O_CONNECTIONS, O_FIND, O_RATE_START, O_RATE_FACTOR, O_RATE_MAX,
		O_STEP_DURATION, O_STEP_WARMUP, O_STEP_PAUSE, O_REFINE, O_MAX_STEPS, O_SLO, O_MIN_RATIO, O_TIMELINE,
		O_IDLE, O_HOLD, O_HISTOGRAM, O_RETRIES, O_EXPECT_BODY, O_VNPAY_TMN_CODE, O_VNPAY_SECRET, O_HELP
	};
	static const struct option longopts[] = {
		{"url", required_argument, NULL, O_URL},
		{"url2", required_argument, NULL, O_URL2},
		{"scenario", required_argument, NULL, O_SCENARIO},
		{"path", required_argument, NULL, O_PATH},
		{"file", required_argument, NULL, O_FILE},
		{"bearer", required_argument, NULL, O_BEARER},
		{"agency", required_argument, NULL, O_AGENCY},
		{"tag", required_argument, NULL, O_TAG},
		{"output", required_argument, NULL, O_OUTPUT},
		{"rate", required_argument, NULL, O_RATE},
		{"duration", required_argument, NULL, O_DURATION},
		{"warmup", required_argument, NULL, O_WARMUP},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"drain", required_argument, NULL, O_DRAIN},
		{"connections", required_argument, NULL, O_CONNECTIONS},
		{"find-saturation", no_argument, NULL, O_FIND},
		{"rate-start", required_argument, NULL, O_RATE_START},
		{"rate-factor", required_argument, NULL, O_RATE_FACTOR},
		{"rate-max", required_argument, NULL, O_RATE_MAX},
		{"step-duration", required_argument, NULL, O_STEP_DURATION},
		{"step-warmup", required_argument, NULL, O_STEP_WARMUP},
		{"step-pause", required_argument, NULL, O_STEP_PAUSE},
		{"refine", required_argument, NULL, O_REFINE},
		{"max-steps", required_argument, NULL, O_MAX_STEPS},
		{"slo-p99-ms", required_argument, NULL, O_SLO},
		{"min-ratio", required_argument, NULL, O_MIN_RATIO},
		{"timeline", required_argument, NULL, O_TIMELINE},
		{"idle", required_argument, NULL, O_IDLE},
		{"hold", required_argument, NULL, O_HOLD},
		{"histogram", no_argument, NULL, O_HISTOGRAM},
		{"retries", required_argument, NULL, O_RETRIES},
		{"expect-body", required_argument, NULL, O_EXPECT_BODY},
		{"vnpay-tmn-code", required_argument, NULL, O_VNPAY_TMN_CODE},
		{"vnpay-secret", required_argument, NULL, O_VNPAY_SECRET},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	*o = (struct options){
		.url = getenv("FEEGATE_URL"),
		.agency = getenv("FEEGATE_AGENCY"),
		.vnpay_tmn_code = getenv("FEEGATE_VNPAY_TMN_CODE"),
		.vnpay_secret = getenv("FEEGATE_VNPAY_HASH_SECRET"),
		.duration_s = 10,
		.warmup_s = 2,
		.timeout_s = 10,
		.drain_s = 2,
		.connections = 64,
		.rate_start = 1000,
		.rate_factor = 1.5,
		.rate_max = 1e6,
		.step_duration_s = 3,
		.step_warmup_s = 1,
		.step_pause_s = 0.5,
		.refine = 2,
		.max_steps = 30,
		.retries = 1,
		.slo_p99_ms = 100,
		.min_ratio = 0.99,
		.hold_s = 60,
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case O_URL: o->url = optarg; break;
		case O_URL2: o->url2 = optarg; break;
		case O_SCENARIO: o->scenario = optarg; break;
		case O_PATH: o->path = optarg; break;
		case O_FILE: o->file = optarg; break;
		case O_BEARER: o->bearer = optarg; break;
		case O_AGENCY: o->agency = optarg; break;
		case O_TAG: o->tag = optarg; break;
		case O_OUTPUT: o->output = optarg; break;
		case O_RATE: o->rate = num_arg("--rate", optarg, 0.01, 1e7); break;
		case O_DURATION: o->duration_s = num_arg("--duration", optarg, 0.1, 86400); break;
		case O_WARMUP: o->warmup_s = num_arg("--warmup", optarg, 0, 3600); break;
		case O_TIMEOUT: o->timeout_s = num_arg("--timeout", optarg, 0.01, 3600); break;
		case O_DRAIN: o->drain_s = num_arg("--drain", optarg, 0, 3600); break;
		case O_CONNECTIONS: o->connections = (int)num_arg("--connections", optarg, 1, MAX_CONNECTIONS); break;
		case O_FIND: o->find_saturation = true; break;
		case O_RATE_START: o->rate_start = num_arg("--rate-start", optarg, 1, 1e7); break;
		case O_RATE_FACTOR: o->rate_factor = num_arg("--rate-factor", optarg, 1.01, 100); break;
		case O_RATE_MAX: o->rate_max = num_arg("--rate-max", optarg, 1, 1e7); break;
		case O_STEP_DURATION: o->step_duration_s = num_arg("--step-duration", optarg, 0.1, 3600); break;
		case O_STEP_WARMUP: o->step_warmup_s = num_arg("--step-warmup", optarg, 0, 3600); break;
		case O_STEP_PAUSE: o->step_pause_s = num_arg("--step-pause", optarg, 0, 3600); break;
		case O_REFINE: o->refine = (int)num_arg("--refine", optarg, 0, 20); break;
		case O_MAX_STEPS: o->max_steps = (int)num_arg("--max-steps", optarg, 1, 200); break;
		case O_SLO: o->slo_p99_ms = num_arg("--slo-p99-ms", optarg, 0.001, 1e6); break;
		case O_MIN_RATIO: o->min_ratio = num_arg("--min-ratio", optarg, 0, 1); break;
		case O_TIMELINE: o->timeline_s = num_arg("--timeline", optarg, 0.1, 3600); break;
		case O_IDLE: o->idle = (int)num_arg("--idle", optarg, 1, MAX_CONNECTIONS); break;
		case O_HOLD: o->hold_s = num_arg("--hold", optarg, 0, 3600); break;
		case O_HISTOGRAM: o->histogram = true; break;
		case O_EXPECT_BODY: o->expect_body = optarg; break;
		case O_VNPAY_TMN_CODE: o->vnpay_tmn_code = optarg; break;
		case O_VNPAY_SECRET: o->vnpay_secret = optarg; break;
		case O_RETRIES: o->retries = (int)num_arg("--retries", optarg, 0, 5); break;
		case O_HELP: usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc)
		die("unexpected argument %s", argv[optind]);
	if (!o->url || !*o->url)
		die("--url (or FEEGATE_URL) is required");
	if (o->idle == 0 && !o->scenario)
		die("--scenario is required (or --idle N); see --help");
	if (o->idle == 0 && !o->find_saturation && o->rate <= 0)
		die("--rate is required (or --find-saturation)");
}

int main(int argc, char **argv)
{
	struct loadgen *lg = xcalloc(1, sizeof *lg);
	struct options *o = &lg->opt;
	parse_args(o, argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (o->url2)
		resolve_url(lg, o->url2, &lg->addr2, &lg->addrlen2);
	resolve_url(lg, o->url, &lg->addr, &lg->addrlen); /* last: its host is the Host header */

	static char tag[40];
	if (!o->tag) {
		snprintf(tag, sizeof tag, "%lx%x", (unsigned long)time(NULL), (unsigned)getpid());
		o->tag = tag;
	}
	const char *bearer = o->bearer;
	if (!bearer && o->idle == 0 && o->scenario &&
	    (strcmp(o->scenario, "orders") == 0 || strcmp(o->scenario, "get") == 0 || strcmp(o->scenario, "flow") == 0))
		bearer = getenv("FEEGATE_API_KEY");
	if (bearer && *bearer) {
		if (asprintf(&lg->auth_line, "Authorization: Bearer %s\r\n", bearer) < 0)
			die("out of memory");
	} else {
		lg->auth_line = strdup("");
	}

	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	lg->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!lg->base)
		die("event_base_new failed");

	if (o->idle == 0) {
		for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
			if (strcmp(scenarios[i].name, o->scenario) == 0)
				lg->sc = &scenarios[i];
		if (!lg->sc)
			die("unknown scenario %s; see --help", o->scenario);
	}
	bool flows = lg->sc && lg->sc->follow;
	lg->capture_cap = flows ? FLOW_BODY_BYTES : FIRST_ERROR_BYTES;
	snprintf(lg->txn_stamp, sizeof lg->txn_stamp, "%09lu%06u", (unsigned long)time(NULL) % 1000000000UL,
		 (unsigned)getpid() % 1000000U);

	lg->nconns = o->idle > 0 ? o->idle : o->connections;
	raise_fd_limit(lg->nconns);
	lg->conns = xcalloc((size_t)lg->nconns, sizeof *lg->conns);
	lg->ring_cap = (size_t)lg->nconns + 1;
	lg->ring = xcalloc(lg->ring_cap, sizeof *lg->ring);
	for (int i = 0; i < lg->nconns; i++) {
		struct conn *c = &lg->conns[i];
		c->lg = lg;
		c->retry = evtimer_new(lg->base, on_retry, c);
		c->captured = xcalloc(1, lg->capture_cap + 1);
		if (flows) {
			c->flow = xcalloc(1, sizeof *c->flow);
			c->flow->vars = xcalloc(1, lg->sc->vars_size ? lg->sc->vars_size : 1);
		}
	}
	lg->sigint = evsignal_new(lg->base, SIGINT, on_signal, lg);
	lg->sigterm = evsignal_new(lg->base, SIGTERM, on_signal, lg);
	event_add(lg->sigint, NULL);
	event_add(lg->sigterm, NULL);

	json_t *result;
	if (o->idle > 0) {
		prebuild_get(lg, o->path ? o->path : "/healthz");
		idle_mode_next(lg);
		event_base_dispatch(lg->base);
		fprintf(stderr, "loadgen: idle: %d open, %d failed, %d closed by the server while held\n", lg->idle_up,
			lg->idle_failed, lg->idle_closed);
		return lg->idle_up == lg->nconns ? 0 : 1;
	}

	char err[256];
	if (lg->sc->setup && !lg->sc->setup(lg, err, sizeof err))
		die("%s", err);

	lg->tick = evtimer_new(lg->base, on_tick, lg);
	lg->housekeeping = event_new(lg->base, -1, EV_PERSIST, on_housekeeping, lg);
	struct timeval hk = {0, HOUSEKEEPING_MS * 1000};
	event_add(lg->housekeeping, &hk);

	/* connect everything before the clock starts */
	for (int i = 0; i < lg->nconns; i++)
		conn_connect(&lg->conns[i]);
	int64_t connect_deadline = now_ns() + 5 * NS_PER_S;
	while (lg->ring_count < (size_t)lg->nconns && now_ns() < connect_deadline && !lg->stop)
		event_base_loop(lg->base, EVLOOP_ONCE);
	if (lg->ring_count == 0)
		die("no connection to %s could be opened", o->url);
	if (lg->ring_count < (size_t)lg->nconns)
		fprintf(stderr, "loadgen: only %zu of %d connections are up; going on\n", lg->ring_count, lg->nconns);

	if (o->find_saturation) {
		result = find_saturation(lg);
	} else {
		run_at(lg, o->rate, o->warmup_s, o->duration_s);
		log_step("run", lg, &lg->run);
		result = json_pack("{s:s}", "mode", "fixed_rate");
		json_object_update_new(result, run_json(lg, &lg->run, o->histogram));
	}
	json_object_set_new(result, "scenario", json_string(o->scenario));
	json_object_set_new(result, "url", json_string(o->url));
	if (o->url2)
		json_object_set_new(result, "url2", json_string(o->url2));
	json_object_set_new(result, "connections", json_integer(o->connections));
	if (lg->stop)
		json_object_set_new(result, "interrupted", json_true());

	FILE *out = stdout;
	if (o->output && !(out = fopen(o->output, "w")))
		die("%s: %s", o->output, strerror(errno));
	json_dumpf(result, out, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
	fputc('\n', out);
	if (out != stdout)
		fclose(out);
	else
		fflush(stdout);
	json_decref(result);

	for (int i = 0; i < lg->nconns; i++) {
		struct conn *c = &lg->conns[i];
		if (c->bev)
			bufferevent_free(c->bev);
		event_free(c->retry);
		free(c->captured);
		if (c->flow)
			free(c->flow->vars);
		free(c->flow);
	}
	json_decref(lg->run.timeline);
	event_free(lg->tick);
	event_free(lg->housekeeping);
	event_free(lg->sigint);
	event_free(lg->sigterm);
	event_base_free(lg->base);
	if (lg->input)
		fclose(lg->input);
	free(lg->line);
	free(lg->prebuilt);
	free(lg->auth_line);
	free(lg->conns);
	free(lg->ring);
	free(lg);
	return 0;
}
