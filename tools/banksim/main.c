#include "tools/banksim/banksim.h"

#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/listener.h>

#define MAX_BODY (1024 * 1024)

static const char usage[] =
	"usage: banksim [--host ADDR] [--port N]\n"
	"       banksim sign ...   (known-answer helper; banksim sign --help)\n"
	"\n"
	"The bank side of VNPAY 2.1.0, MoMo v2 and VietQR for feegate's tests and demos,\n"
	"plus a portal webhook sink. One process, state in memory.\n"
	"\n"
	"Environment:\n"
	"  BANKSIM_PORT (8090; 0 picks a free port)  BANKSIM_HOST (127.0.0.1)\n"
	"  BANKSIM_URL        how browsers reach banksim (http://HOST:PORT)\n"
	"  FEEGATE_URL        where notifications go (http://127.0.0.1:8080):\n"
	"                     GET /ipn/vnpay?..., POST /ipn/vietqr; MoMo posts to the create's ipnUrl\n"
	"  FEEGATE_VNPAY_TMN_CODE FEEGATE_VNPAY_HASH_SECRET FEEGATE_MOMO_PARTNER_CODE\n"
	"  FEEGATE_MOMO_ACCESS_KEY FEEGATE_MOMO_SECRET_KEY FEEGATE_VIETQR_WEBHOOK_SECRET\n"
	"\n"
	"Endpoints:\n"
	"  GET  /paymentv2/vpcpay.html?...      VNPAY pay page (checks vnp_SecureHash)\n"
	"  POST /paymentv2/confirm              ref=, action=approve|decline [, knobs, wait=0]\n"
	"  POST /merchant_webapi/api/transaction  VNPAY querydr and refund\n"
	"  POST /v2/gateway/api/create|query|refund  MoMo API\n"
	"  GET  /momo/pay?orderId=&t=           MoMo pay page\n"
	"  POST /momo/confirm                   orderId=, t=, action=approve|decline [, knobs, wait=0]\n"
	"  GET  /vietqr                         form to simulate a transfer\n"
	"  POST /vietqr/transfer                {account_no, amount, content} or {payload}\n"
	"                                       [, \"faults\": {...}, \"wait\": false]\n"
	"  POST /portal/webhook[/...]           portal sink: records body and headers\n"
	"  GET  /portal/webhooks[?since=ID]     what the sink received; DELETE clears it\n"
	"  GET  /settlement/{vnpay|momo|vietqr}/{yyyymmdd}  settlement CSV of a GMT+7 day\n"
	"  GET|POST /admin/faults               knobs; POST {\"bank\": \"momo\", \"api_status\": 503}\n"
	"  POST /admin/reset[?only=faults]      default knobs, forget everything\n"
	"  GET  /admin/notifications[?bank=&ref=]  notifications sent and their answers\n"
	"  GET  /admin/payments[?bank=&ref=&status=]\n"
	"  POST /admin/resend                   {\"bank\", \"ref\"}: send the last notification again\n"
	"  GET  /treasury/{account}/{yyyymmdd}  camt.053 of an agency collection account for a GMT+7 day\n"
	"  GET|POST /admin/payouts              {\"account\", \"bank\", \"day\", \"agency\", \"amount\", \"paid_on\"}\n"
	"  POST /admin/settlement               {\"bank\", \"ref\", \"action\"}: drop, repeat, next_day, amount\n"
	"  GET|POST /admin/config               {\"feegate_url\": ...}: where notifications go\n"
	"  GET  /healthz\n"
	"\n"
	"Knobs (per bank, or \"portal\" for the sink; the notification ones also per request):\n"
	"  delay_ms drop duplicate reorder reorder_hold_ms wrong_amount bad_signature\n"
	"  stale_timestamp allow_expired retries retry_delay_ms timeout_ms\n"
	"  api_status api_status_times api_delay_ms api_hang fee_bps\n";

static void index_page(sim *s, struct evhttp_request *req)
{
	struct strbuf page;
	strbuf_init(&page);
	sim_page_begin(&page, "banksim");
	strbuf_puts(&page, "<p><a href=\"/vietqr\">Simulate a VietQR transfer</a> &middot; "
			 "<a href=\"/admin/faults\">fault knobs</a> &middot; "
			 "<a href=\"/admin/payments\">payments</a> &middot; "
			 "<a href=\"/admin/notifications\">notifications</a> &middot; "
			 "<a href=\"/portal/webhooks\">portal webhooks</a></p><pre>");
	sim_html_escape(&page, usage);
	strbuf_puts(&page, "</pre>");
	sim_page_end(&page);
	sim_reply_page(req, 200, &page);
}

static void healthz(sim *s, struct evhttp_request *req)
{
	sim_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void vnpay_api(sim *s, struct evhttp_request *req)
{
	sim_api(s, SIM_VNPAY, req, vnpay_bank_api);
}

enum { M_GET = 1, M_POST = 2, M_DELETE = 4 };

static const struct route {
	int methods;
	const char *path;
	bool prefix;
	sim_handler handler;
} routes[] = {
	{ M_GET, "/", false, index_page },
	{ M_GET, "/healthz", false, healthz },
	{ M_GET, "/paymentv2/vpcpay.html", false, vnpay_bank_pay_page },
	{ M_POST, "/paymentv2/confirm", false, vnpay_bank_confirm },
	{ M_POST, "/merchant_webapi/api/transaction", false, vnpay_api },
	{ M_POST, "/v2/gateway/api/create", false, momo_bank_create },
	{ M_POST, "/v2/gateway/api/query", false, momo_bank_query },
	{ M_POST, "/v2/gateway/api/refund", false, momo_bank_refund },
	{ M_GET, "/momo/pay", false, momo_bank_pay_page },
	{ M_POST, "/momo/confirm", false, momo_bank_confirm },
	{ M_GET, "/vietqr", false, vietqr_bank_page },
	{ M_POST, "/vietqr/transfer", false, vietqr_bank_transfer },
	{ M_POST, "/portal/webhook", false, portal_sink_receive },
	{ M_POST, "/portal/webhook/", true, portal_sink_receive },
	{ M_GET, "/portal/webhooks", false, portal_sink_list },
	{ M_DELETE, "/portal/webhooks", false, portal_sink_clear },
	{ M_GET | M_POST, "/admin/faults", false, admin_faults },
	{ M_POST, "/admin/reset", false, admin_reset },
	{ M_GET, "/admin/notifications", false, admin_notifications },
	{ M_GET, "/admin/payments", false, admin_payments },
	{ M_POST, "/admin/resend", false, admin_resend },
	{ M_GET | M_POST, "/admin/config", false, admin_config },
	{ M_POST, "/admin/settlement", false, admin_settlement },
	{ M_GET | M_POST, "/admin/payouts", false, admin_payouts },
};

static int method_bit(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
	case EVHTTP_REQ_HEAD: return M_GET;
	case EVHTTP_REQ_POST: return M_POST;
	case EVHTTP_REQ_DELETE: return M_DELETE;
	default: return 0;
	}
}

static void route(struct evhttp_request *req, void *arg)
{
	sim *s = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	if (!path || !*path)
		path = "/";
	int method = method_bit(evhttp_request_get_command(req));
	bool path_known = false;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];
		bool hit = r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0 : strcmp(path, r->path) == 0;
		if (!hit)
			continue;
		path_known = true;
		if (r->methods & method) {
			r->handler(s, req);
			return;
		}
	}
	static const char settle[] = "/settlement/";
	if (strncmp(path, settle, sizeof(settle) - 1) == 0) {
		char bank[16], day[16];
		const char *rest = path + sizeof(settle) - 1;
		const char *slash = strchr(rest, '/');
		if (slash && (size_t)(slash - rest) < sizeof(bank) && strlen(slash + 1) < sizeof(day) &&
		    !strchr(slash + 1, '/')) {
			if (method != M_GET) {
				sim_reply_error(req, 405, "method not allowed");
				return;
			}
			memcpy(bank, rest, (size_t)(slash - rest));
			bank[slash - rest] = '\0';
			snprintf(day, sizeof(day), "%s", slash + 1);
			settlement_file(s, req, bank, day);
			return;
		}
	}
	static const char treasury[] = "/treasury/";
	if (strncmp(path, treasury, sizeof(treasury) - 1) == 0) {
		char account[40], day[16];
		const char *rest = path + sizeof(treasury) - 1;
		const char *slash = strchr(rest, '/');
		if (slash && slash > rest && (size_t)(slash - rest) < sizeof(account) && strlen(slash + 1) < sizeof(day) &&
		    !strchr(slash + 1, '/')) {
			if (method != M_GET) {
				sim_reply_error(req, 405, "method not allowed");
				return;
			}
			memcpy(account, rest, (size_t)(slash - rest));
			account[slash - rest] = '\0';
			snprintf(day, sizeof(day), "%s", slash + 1);
			treasury_statement(s, req, account, day);
			return;
		}
	}
	if (path_known)
		sim_reply_error(req, 405, "method not allowed");
	else
		sim_reply_error(req, 404, "not found");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	sim *s = arg;
	sim_log("info", "stop", "signal %d", (int)sig);
	event_base_loopexit(s->base, NULL);
}

static const char *env_or(const char *name, const char *fallback, bool warn)
{
	const char *v = getenv(name);
	if (v && *v)
		return v;
	if (warn)
		sim_log("warn", "config", "%s is not set; using a demo value", name);
	return fallback;
}

static char *without_slash(const char *url)
{
	char *copy = strdup(url);
	size_t n = copy ? strlen(copy) : 0;
	while (n > 0 && copy[n - 1] == '/')
		copy[--n] = '\0';
	return copy;
}

static bool parse_port(const char *text, int *port)
{
	int64_t v;
	if (!util_parse_int64(text, &v) || v < 0 || v > 65535)
		return false;
	*port = (int)v;
	return true;
}

static int bound_port(struct evhttp_bound_socket *handle)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = evhttp_bound_socket_get_fd(handle);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

static void configure(sim *s)
{
	adapter_config *v = &s->cfg[SIM_VNPAY], *m = &s->cfg[SIM_MOMO], *q = &s->cfg[SIM_VIETQR];
	v->merchant_id = env_or("FEEGATE_VNPAY_TMN_CODE", "DEMOVNP1", true);
	v->secret = env_or("FEEGATE_VNPAY_HASH_SECRET", "demo-vnpay-hash-secret", true);
	m->merchant_id = env_or("FEEGATE_MOMO_PARTNER_CODE", "MOMODEMO", true);
	m->access_key = env_or("FEEGATE_MOMO_ACCESS_KEY", "demo-momo-access-key", true);
	m->secret = env_or("FEEGATE_MOMO_SECRET_KEY", "demo-momo-secret-key", true);
	q->secret = env_or("FEEGATE_VIETQR_WEBHOOK_SECRET", "demo-vietqr-webhook-secret", true);
	for (int i = 0; i < SIM_SERVICE_COUNT; i++)
		sim_faults_default(&s->faults[i]);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "sign") == 0)
		return sign_main(argc - 2, argv + 2);
	log_set_component("banksim");
	static sim state;
	sim *s = &state;
	int rc = 1;
	struct event *sigint = NULL, *sigterm = NULL;
	const char *host = env_or("BANKSIM_HOST", "127.0.0.1", false);
	int port = 8090;
	if (getenv("BANKSIM_PORT") && *getenv("BANKSIM_PORT") && !parse_port(getenv("BANKSIM_PORT"), &port)) {
		sim_log("error", "start", "BANKSIM_PORT must be a port number");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			if (!parse_port(argv[++i], &port)) {
				sim_log("error", "start", "bad --port");
				return 2;
			}
		} else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
			host = argv[++i];
		} else {
			sim_log("error", "start", "unknown argument %s (banksim --help lists them)", argv[i]);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	configure(s);
	s->base = event_base_new();
	s->http = s->base ? evhttp_new(s->base) : NULL;
	s->webhooks = json_array();
	s->notifications = json_array();
	s->payouts = json_array();
	sim_store_init(&s->store);
	if (!s->http || !s->webhooks || !s->notifications || !s->payouts) {
		sim_log("error", "start", "out of memory");
		goto done;
	}
	evhttp_set_max_body_size(s->http, MAX_BODY);
	evhttp_set_timeout(s->http, 60);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(s->http, route, s);
	struct evhttp_bound_socket *handle = evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port);
	if (!handle) {
		sim_log("error", "start", "cannot listen on %s:%d: %s", host, port, strerror(errno));
		goto done;
	}
	s->port = bound_port(handle);
	char url[300];
	snprintf(url, sizeof(url), "http://%s:%d", host, s->port);
	s->public_url = without_slash(env_or("BANKSIM_URL", url, false));
	s->feegate_url = without_slash(env_or("FEEGATE_URL", "http://127.0.0.1:8080", false));
	s->feegate_url_initial = s->feegate_url ? strdup(s->feegate_url) : NULL;
	if (!s->public_url || !s->feegate_url || !s->feegate_url_initial)
		goto done;
	sigint = evsignal_new(s->base, SIGINT, on_signal, s);
	sigterm = evsignal_new(s->base, SIGTERM, on_signal, s);
	if (!sigint || !sigterm || evsignal_add(sigint, NULL) != 0 || evsignal_add(sigterm, NULL) != 0)
		goto done;
	/* The one start-up line; tests that bind port 0 read the address from it. */
	sim_log("info", "start", "listening on %s, notifications to %s", url, s->feegate_url);
	event_base_dispatch(s->base);
	rc = 0;
done:
	if (s->base) {
		sim_notify_shutdown(s);
		sim_api_release_all(s);
		/* Let connections closed a moment ago be freed by their pending callbacks. */
		event_base_loop(s->base, EVLOOP_NONBLOCK);
	}
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	if (s->http)
		evhttp_free(s->http);
	sim_store_clear(&s->store);
	json_decref(s->webhooks);
	json_decref(s->notifications);
	json_decref(s->payouts);
	free(s->public_url);
	free(s->feegate_url);
	free(s->feegate_url_initial);
	if (s->base)
		event_base_free(s->base);
	return rc;
}
