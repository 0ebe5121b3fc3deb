/*
 * The serving processes. The master forks FEEGATE_WORKERS workers and supervises them; each
 * worker owns one libevent loop, its own listening socket on the shared port (SO_REUSEPORT, so
 * the kernel spreads connections), its PostgreSQL pool and its Redis connection.
 *
 * SIGTERM: the master forwards it; each worker closes its listener, answers what is in flight
 * (with "Connection: close"), flushes the intake batch, then closes its pools and exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gateway/audit.h"
#include "gateway/banks.h"
#include "gateway/console.h"
#include "gateway/db.h"
#include "gateway/edge.h"
#include "gateway/gateway.h"
#include "gateway/reports.h"
#include "gateway/notify.h"
#include "gateway/reconcile.h"
#include "gateway/pages.h"
#include "gateway/receipts.h"
#include "gateway/server.h"
#include "gateway/staff.h"
#include "gateway/duty.h"
#include "gateway/sweeper.h"
#include "gateway/webhooks.h"
#include "ledger/accounts.h"
#include "lib/breaker.h"
#include "lib/httpc.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"

struct gateway gw;

static const struct http_route routes[] = {
	{EVHTTP_REQ_POST, "/v1/orders", orders_create, "orders_create", AUTH_CLIENT},
	{EVHTTP_REQ_GET, "/v1/orders", orders_list, "orders_list", AUTH_CLIENT},
	{EVHTTP_REQ_GET, "/v1/orders/{}", orders_get, "orders_get", AUTH_CLIENT},
	{EVHTTP_REQ_POST, "/v1/orders/{}/cancel", orders_cancel, "orders_cancel", AUTH_CLIENT},
	{EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/checkout/{}", checkout_page, "checkout_page", AUTH_NONE},
	{EVHTTP_REQ_POST, "/checkout/{}", checkout_choose, "checkout_choose", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_GET, "/return/{}", bank_return, "bank_return", AUTH_NONE},
	{EVHTTP_REQ_GET | EVHTTP_REQ_POST, "/ipn/{}", bank_notification, "bank_notification", AUTH_NONE},
	{EVHTTP_REQ_GET, "/v1/webhook-deliveries", webhooks_list, "webhooks_list", AUTH_CLIENT},
	{EVHTTP_REQ_POST, "/v1/webhook-deliveries/{}/redeliver", webhooks_redeliver, "webhooks_redeliver", AUTH_CLIENT},
	{EVHTTP_REQ_POST, "/v1/orders/{}/refunds", refunds_create, "refunds_create", AUTH_STAFF},
	{EVHTTP_REQ_GET, "/v1/orders/{}/refunds", refunds_list, "refunds_list", AUTH_STAFF},
	{EVHTTP_REQ_POST, "/v1/refunds/{}/confirm", refunds_confirm, "refunds_confirm", AUTH_STAFF},
	{EVHTTP_REQ_GET, "/v1/ledger/accounts", ledger_accounts, "ledger_accounts", AUTH_STAFF},
	{EVHTTP_REQ_GET, "/v1/ledger/accounts/{}", ledger_account, "ledger_account", AUTH_STAFF},
	{EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/healthz", ops_healthz, "healthz", AUTH_NONE},
	{EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/readyz", ops_readyz, "readyz", AUTH_NONE},
	{EVHTTP_REQ_GET, "/metrics", ops_metrics, "metrics", AUTH_NONE},
	/* HTTP edge: the streamed-body sink that proves the statement path (FEEGATE_TEST_SINK) */
	{EVHTTP_REQ_POST, "/v1/_test/sink", edge_test_sink, "test_sink", AUTH_NONE | HTTP_ROUTE_STREAM_BODY},
	/* reconciliation: statements and cases */
	{EVHTTP_REQ_POST, "/v1/statements", statements_import, "statements_import", AUTH_STAFF | HTTP_ROUTE_STREAM_BODY},
	{EVHTTP_REQ_GET, "/v1/statements", statements_list, "statements_list", AUTH_STAFF},
	{EVHTTP_REQ_GET, "/v1/statements/{}", statements_get, "statements_get", AUTH_STAFF},
	{EVHTTP_REQ_GET, "/v1/exceptions", exceptions_list, "exceptions_list", AUTH_STAFF},
	{EVHTTP_REQ_POST, "/v1/exceptions/{}/acknowledge", cases_acknowledge, "cases_acknowledge", AUTH_STAFF},
	{EVHTTP_REQ_POST, "/v1/exceptions/{}/resolve", cases_resolve, "cases_resolve", AUTH_STAFF},
	{EVHTTP_REQ_POST, "/v1/exceptions/{}/approve", cases_approve, "cases_approve", AUTH_STAFF},
	/* reports: the agency collections view and the settlement report (reports.c) */
	{EVHTTP_REQ_GET, "/v1/agencies/{}/collections", reports_collections, "collections", AUTH_STAFF},
	{EVHTTP_REQ_GET, "/v1/reports/settlement", reports_settlement, "reports_settlement", AUTH_STAFF},
	/* staff: sign-in, console, audit log, staff and tokens (console.c, audit.c, staff.c) */
	{EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/console/static/console.css", console_css, "console_css", AUTH_NONE},
	{EVHTTP_REQ_GET, "/console/login", console_login_page, "console_login_page", AUTH_NONE},
	{EVHTTP_REQ_POST, "/console/login", console_login, "console_login", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_POST, "/console/logout", console_logout, "console_logout", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_GET, "/console", console_home, "console_root", AUTH_NONE},
	{EVHTTP_REQ_GET, "/console/", console_home, "console_home", AUTH_NONE},
	{EVHTTP_REQ_GET, "/console/orders", console_orders, "console_orders", AUTH_NONE},
	/* before /console/orders/{}, which would take "export" for an order's id */
	{EVHTTP_REQ_GET, "/console/orders/export", console_orders_export, "console_orders_export", AUTH_NONE},
	{EVHTTP_REQ_GET, "/console/orders/{}", console_order, "console_order", AUTH_NONE},
	{EVHTTP_REQ_GET, "/console/cases", console_cases, "console_cases", AUTH_NONE},
	{EVHTTP_REQ_GET, "/console/cases/{}", console_case, "console_case", AUTH_NONE},
	{EVHTTP_REQ_POST, "/console/cases/{}/acknowledge", console_case_acknowledge, "console_case_acknowledge", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_POST, "/console/cases/{}/resolve", console_case_resolve, "console_case_resolve", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_POST, "/console/cases/{}/approve", console_case_approve, "console_case_approve", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_GET, "/console/statements", console_statements, "console_statements", AUTH_NONE},
	{EVHTTP_REQ_POST, "/console/statements", console_statement_upload, "console_statement_upload",
	 AUTH_NONE | HTTP_ROUTE_HTML_FORM | HTTP_ROUTE_STREAM_BODY},
	{EVHTTP_REQ_GET, "/console/statements/{}", console_statement, "console_statement", AUTH_NONE},
	{EVHTTP_REQ_GET, "/console/reports/settlement", console_settlement, "console_settlement", AUTH_NONE},
	{EVHTTP_REQ_GET, "/console/reports/settlement/download", console_settlement_download, "console_settlement_download", AUTH_NONE},
	{EVHTTP_REQ_GET, "/console/refunds", console_refunds, "console_refunds", AUTH_NONE},
	{EVHTTP_REQ_POST, "/console/refund-approvals/{}/approve", console_refund_approve, "console_refund_approve", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_POST, "/console/refunds/{}/confirm", console_refund_confirm, "console_refund_confirm", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_GET, "/console/audit", console_audit, "console_audit", AUTH_NONE},
	{EVHTTP_REQ_GET, "/console/staff", console_staff, "console_staff", AUTH_NONE},
	{EVHTTP_REQ_POST, "/console/staff/{}/disable", console_staff_disable, "console_staff_disable", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_POST, "/console/staff/{}/tokens", console_token_create, "console_token_create", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_POST, "/console/tokens/{}/revoke", console_token_revoke, "console_token_revoke", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_GET, "/console/password", console_password_page, "console_password_page", AUTH_NONE},
	{EVHTTP_REQ_POST, "/console/password", console_password, "console_password", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_GET, "/console/totp", console_totp_page, "console_totp_page", AUTH_NONE},
	{EVHTTP_REQ_POST, "/console/totp", console_totp, "console_totp", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_GET, "/console/setup/{}", console_setup_page, "console_setup_page", AUTH_NONE},
	{EVHTTP_REQ_POST, "/console/setup/{}", console_setup, "console_setup", AUTH_NONE | HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_GET, "/v1/audit", audit_list, "audit_list", AUTH_STAFF},
	{EVHTTP_REQ_GET, "/v1/staff", staff_api_list, "staff_list", AUTH_STAFF},
	{EVHTTP_REQ_POST, "/v1/staff/{}/disable", staff_api_disable, "staff_disable", AUTH_STAFF},
	{EVHTTP_REQ_POST, "/v1/staff/{}/tokens", staff_api_token_create, "token_create", AUTH_STAFF},
	{EVHTTP_REQ_POST, "/v1/tokens/{}/revoke", staff_api_token_revoke, "token_revoke", AUTH_STAFF},
	{EVHTTP_REQ_POST, "/v1/refund-approvals/{}/approve", refunds_approve, "refund_approve", AUTH_STAFF},
	/* receipts, and the static files of the citizen's pages */
	{EVHTTP_REQ_GET, "/v1/orders/{}/receipt", receipts_for_order, "receipt_for_order", AUTH_CLIENT},
	{EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/receipts/{}", receipts_public, "receipt_public", AUTH_NONE},
	{EVHTTP_REQ_GET, "/.well-known/feegate-receipt-keys", receipts_keys, "receipt_keys", AUTH_NONE},
	{EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/static/{}", static_asset, "static_asset", AUTH_NONE},
	{EVHTTP_REQ_GET, "/checkout/{}/vietqr", checkout_transfer_again, "checkout_transfer", AUTH_NONE},
	{EVHTTP_REQ_GET, "/checkout/{}/status", checkout_status, "checkout_status", AUTH_NONE},
};
#define NROUTES ((int)ARRAY_LEN(routes))
static const char *route_names[NROUTES + 1];
#define ROUTE_UNMATCHED NROUTES

static void dispatch(struct http_req *req)
{
	int r = req->route;
	if (r < 0 || r >= NROUTES) {
		req->route = ROUTE_UNMATCHED;
		if (req->wrong_method)
			http_reply_error(req, ERR_METHOD_NOT_ALLOWED, NULL, NULL);
		else
			http_reply_error(req, ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	enum auth_rule rule = (enum auth_rule)(routes[r].flags & HTTP_ROUTE_OWN_MASK);
	if (rule == AUTH_NONE)
		routes[r].handler(req);
	else
		auth_run(req, rule, routes[r].handler);
}

/* ---- worker ---- */

static struct http_server *http;
static bool listening;
static struct event *drain_timer;
static int64_t drain_deadline_us;
static int drain_quiet_ticks;

static int open_listener(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
		close(fd);
		return -1;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, cfg.listen_addr, &sa.sin_addr) != 1) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
	bool idle = http_inflight() == 0 && intake_pending() == 0 && notify_pending() == 0 && sweeper_busy() == 0 &&
		    webhooks_busy() == 0 && httpc_pending() == 0;
	/* Two quiet ticks in a row: the last replies have had time to leave the socket buffers. */
	drain_quiet_ticks = idle ? drain_quiet_ticks + 1 : 0;
	if (drain_quiet_ticks >= 2 || util_monotonic_us() > drain_deadline_us) {
		if (!idle)
			log_warn(NULL, "shutdown timeout with %d requests in flight", http_inflight());
		event_base_loopexit(gw.base, NULL);
		return;
	}
	struct timeval tv = {0, 50000};
	evtimer_add(drain_timer, &tv);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	if (gw.draining)
		return;
	gw.draining = true;
	log_info(NULL, "shutting down: %d requests in flight", http_inflight());
	http_set_draining(true);
	if (listening) {
		http_server_stop_listening(http);
		listening = false;
	}
	intake_shutdown();
	notify_flush();
	duty_stop(); /* released now, so another gateway takes the duties over while this one drains */
	sweeper_stop();
	webhooks_drain();
	webhooks_stop();
	drain_deadline_us = util_monotonic_us() + (int64_t)cfg.shutdown_timeout_ms * 1000;
	drain_timer = evtimer_new(gw.base, drain_tick, NULL);
	struct timeval tv = {0, 50000};
	evtimer_add(drain_timer, &tv);
}

static void public_url_saved(void *arg, PGresult *res, enum pg_status st)
{
	if (st != PG_OK)
		log_warn(NULL, "could not record the public URL for webhook payloads; they use the last one recorded");
}

static int worker_main(int index)
{
	char name[32];
	snprintf(name, sizeof name, "worker-%d", index);
	log_set_component(name);
	metrics_set_worker(index);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_IGN); /* the master decides; Ctrl-C reaches the whole group */
	signal(SIGHUP, SIG_IGN); /* until the TLS reload handler is in place */

	gw.worker = index;
	gw.base = event_base_new();
	if (!gw.base)
		return 1;
	int fd = open_listener(cfg.port);
	if (fd < 0) {
		log_error(NULL, "cannot listen on %s:%d: %s", cfg.listen_addr, cfg.port, strerror(errno));
		return 2;
	}
	edge_raise_fd_limit();
	struct http_server_config hc = {
		.routes = routes,
		.nroutes = NROUTES,
		.unmatched_route = ROUTE_UNMATCHED,
		.dispatch = dispatch,
		.public_origin = edge_public_origin(),
		.head_timeout_ms = cfg.http_head_timeout_ms,
		.body_min_rate = cfg.http_body_min_rate,
		.idle_timeout_ms = cfg.http_idle_timeout_s * 1000,
		.max_conns = cfg.max_connections,
		.max_head_bytes = 64 * 1024,
		.max_body_bytes = (size_t)cfg.max_body_bytes,
		.max_stream_bytes = (size_t)cfg.max_statement_bytes,
	};
	http = http_server_new(gw.base, &hc);
	if (!http_server_listen(http, fd, NULL)) {
		log_error(NULL, "cannot serve the listening socket");
		return 2;
	}
	listening = true;
	int tls_fd = cfg.tls_port ? open_listener(cfg.tls_port) : -1;
	if (cfg.tls_port && tls_fd < 0) {
		log_error(NULL, "FEEGATE_TLS_PORT: cannot listen on %s:%d: %s", cfg.listen_addr, cfg.tls_port, strerror(errno));
		return 2;
	}
	if (!edge_tls_start(gw.base, http, tls_fd)) /* logs its reason */
		return 2;
	/* Webhook payloads written by this gateway's transactions carry its own public URL. */
	struct evbuffer *session = evbuffer_new();
	evbuffer_add_printf(session, "SET feegate.public_url = '");
	for (const char *c = cfg.public_url; *c; c++)
		evbuffer_add_printf(session, *c == '\'' ? "''" : "%c", *c);
	evbuffer_add_printf(session, "';");
	/* The lease on the webhook rows a notification batch hands to this worker (see webhooks.c). */
	evbuffer_add_printf(session, "SET feegate.webhook_lease_s = '%d';", cfg_webhook_lease_s());
	evbuffer_add(session, "", 1);
	gw.db = pg_pool_new(gw.base, cfg.database_url, cfg.db_pool_size, db_statements, db_statement_count,
			    cfg.db_connect_timeout_ms, cfg.idempotency_wait_ms + cfg.db_timeout_ms * 2,
			    (const char *)evbuffer_pullup(session, -1));
	evbuffer_free(session);
	gw.redis = redis_new(gw.base, cfg.redis_url, cfg.redis_timeout_ms, cfg.redis_sentinels, cfg.redis_master_name);
	if (!gw.redis) {
		log_error(NULL, "REDIS_URL: not a redis:// URL");
		return 2;
	}
	gw.ratelimit = ratelimit_new(gw.base, gw.redis,
				     &(struct ratelimit_config){.rps = cfg.rate_limit_rps,
								.window_s = cfg.rate_limit_window_s,
								.shares = cfg.workers,
								.shared = strcmp(cfg.rate_limit_store, "redis") == 0,
								.wait_ms = cfg.rate_limit_wait_ms,
								.fallback_ms = cfg.rate_limit_fallback_ms});
	intake_init();
	notify_init();
	if (!httpc_init(gw.base)) {
		log_error(NULL, "cannot set up TLS for outbound calls");
		return 2;
	}
	webhooks_init();
	duty_init();
	if (index == 0) {
		const char *url[1] = {cfg.public_url};
		pg_query(gw.db, "set_public_url", 1, url, cfg.db_timeout_ms * 3, public_url_saved, NULL);
		duty_start(); /* the sweeper and the webhook relay run while this gateway holds the lock */
		audit_chainer_start();
		receipts_start();
	}
	struct event *term = evsignal_new(gw.base, SIGTERM, on_term, NULL);
	event_add(term, NULL);
	/* spawn() left SIGTERM blocked: one that came while the worker started waited for this
	 * handler instead of killing the worker (an unclean stop) */
	sigset_t term_set;
	sigemptyset(&term_set);
	sigaddset(&term_set, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &term_set, NULL);
	log_info(NULL, "listening on %s:%d", cfg.listen_addr, cfg.port);

	event_base_dispatch(gw.base);

	http_server_free(http);
	edge_tls_stop();
	audit_chainer_stop();
	staff_shutdown();
	duty_stop();
	sweeper_stop();
	webhooks_stop();
	receipts_stop();
	pg_pool_free(gw.db);
	httpc_shutdown();
	redis_free(gw.redis);
	ratelimit_free(gw.ratelimit);
	auth_cache_clear();
	event_free(term);
	if (drain_timer)
		event_free(drain_timer);
	event_base_free(gw.base);
	log_info(NULL, "stopped");
	return 0;
}

/* ---- master ---- */

static volatile sig_atomic_t got_term, got_child, got_hup;

static void master_signal(int sig)
{
	if (sig == SIGCHLD)
		got_child = 1;
	else if (sig == SIGHUP)
		got_hup = 1; /* workers reload their TLS certificate */
	else
		got_term = 1;
}

static pid_t spawn(int index)
{
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t term_only; /* SIGTERM stays blocked until the worker's handler is in place */
		sigemptyset(&term_only);
		sigaddset(&term_only, SIGTERM);
		sigprocmask(SIG_SETMASK, &term_only, NULL);
		_exit(worker_main(index));
	}
	return pid;
}

int server_run(void)
{
	log_set_component("master");
	for (int i = 0; i < NROUTES; i++)
		route_names[i] = routes[i].name;
	route_names[ROUTE_UNMATCHED] = "unmatched";
	if (!metrics_init(route_names, NROUTES + 1)) {
		log_error(NULL, "cannot map shared memory for metrics");
		return 1;
	}
	if (!*cfg.database_url) {
		log_error(NULL, "DATABASE_URL: required");
		return 1;
	}
	banks_init();
	if (!breaker_init(cfg.breaker_failures, cfg.breaker_cooldown_ms)) {
		log_error(NULL, "cannot map shared memory for circuit breakers");
		return 1;
	}
	for (size_t i = 0; i < bank_count(); i++) {
		if (bank_at(i)->enabled)
			breaker_watch(bank_at(i)->adapter->name);
	}
	/* Fail fast when the port is taken, before any worker starts. */
	int probe = open_listener(cfg.port);
	if (probe < 0) {
		log_error(NULL, "FEEGATE_PORT: cannot listen on %s:%d: %s", cfg.listen_addr, cfg.port, strerror(errno));
		return 1;
	}
	close(probe);

	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);
	struct sigaction sa = {.sa_handler = master_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	int n = cfg.workers;
	pid_t *pids = xcalloc((size_t)n, sizeof(pid_t));
	for (int i = 0; i < n; i++)
		pids[i] = spawn(i);
	log_info(NULL, "feegate serving on %s:%d with %d workers (public URL %s)", cfg.listen_addr, cfg.port, n,
		 cfg.public_url);

	int exit_code = 0;
	while (!got_term) {
		sigsuspend(&old);
		if (got_hup) {
			got_hup = 0;
			for (int i = 0; i < n; i++) {
				if (pids[i] > 0)
					kill(pids[i], SIGHUP);
			}
		}
		if (!got_child)
			continue;
		got_child = 0;
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (int i = 0; i < n; i++) {
				if (pids[i] != pid)
					continue;
				metrics_worker_gone(i);
				if (got_term)
					break;
				if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
					log_error(NULL, "worker %d cannot start; stopping", i);
					got_term = 1;
					exit_code = 1;
					pids[i] = 0;
					break;
				}
				log_error(NULL, "worker %d (pid %d) died (status %d); restarting", i, (int)pid, status);
				sleep(1);
				pids[i] = spawn(i);
			}
		}
	}
	log_info(NULL, "stopping workers");
	for (int i = 0; i < n; i++) {
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	}
	int64_t deadline = util_monotonic_us() + (int64_t)(cfg.shutdown_timeout_ms + 2000) * 1000;
	int alive = n;
	while (alive > 0) {
		alive = 0;
		for (int i = 0; i < n; i++) {
			if (pids[i] <= 0)
				continue;
			int status;
			if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
				/* a worker that crashed or was killed while draining makes the shutdown unclean */
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
					log_error(NULL, "worker %d did not stop cleanly (status %d)", i, status);
					exit_code = 1;
				}
				pids[i] = 0;
				continue;
			}
			alive++;
		}
		if (alive && util_monotonic_us() > deadline) {
			for (int i = 0; i < n; i++) {
				if (pids[i] > 0)
					kill(pids[i], SIGKILL);
			}
		}
		if (alive)
			usleep(20000);
	}
	free(pids);
	log_info(NULL, "stopped");
	return exit_code;
}
