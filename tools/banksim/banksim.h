/* banksim: the bank side of VNPAY, MoMo and VietQR, plus a portal webhook sink,
 * in one single-threaded libevent process. Everything it knows lives in memory
 * and is lost when it stops. */
#ifndef FEEGATE_BANKSIM_H
#define FEEGATE_BANKSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "adapters/adapter.h"
#include "adapters/params.h"
#include "lib/strbuf.h"
#include "lib/util.h"

#define SIM_WUR __attribute__((warn_unused_result))

typedef enum sim_service {
	SIM_VNPAY,
	SIM_MOMO,
	SIM_VIETQR,
	SIM_PORTAL,
	SIM_SERVICE_COUNT,
} sim_service;

const char *sim_service_name(sim_service svc);
bool sim_service_from_name(const char *name, sim_service *out) SIM_WUR;

/* Fault knobs of one service. Notification knobs act on what banksim sends to
 * the gateway, API knobs on how it answers the gateway's calls. */
typedef struct sim_faults {
	int delay_ms;         /* notifications wait this long before being sent */
	bool drop;            /* notifications are never sent */
	bool duplicate;       /* each notification is sent twice */
	bool reorder;         /* a notification is held until the next one has gone */
	int reorder_hold_ms;  /* ...or until this long has passed */
	bool wrong_amount;    /* notifications carry amount + 1000 VND, correctly signed */
	bool bad_signature;   /* notifications, returns and API answers carry a broken signature */
	bool stale_timestamp; /* VietQR notifications are timestamped 10 minutes ago */
	bool allow_expired;   /* approving after expiry still succeeds */
	int api_status;       /* APIs answer this HTTP status instead (0: normally) */
	int api_status_times; /* ...for this many calls, then normally again (0: until changed) */
	int api_delay_ms;     /* APIs answer this late */
	bool api_hang;        /* APIs never answer (held until /admin/reset) */
	int fee_bps;          /* settlement files charge this fee, in 1/10000 of the amount */
	int retries;          /* notification attempts after a failed one */
	int retry_delay_ms;
	int timeout_ms;       /* of each notification attempt */
} sim_faults;

void sim_faults_default(sim_faults *f);
json_t *sim_faults_json(const sim_faults *f);
/* Applies the knobs in obj (other keys listed in skip are ignored); on an
 * unknown knob or a bad value, err names it and nothing is changed. */
bool sim_faults_apply_json(sim_faults *f, const json_t *obj, const char *const *skip, char *err,
			   size_t err_cap) SIM_WUR;
/* Applies knobs given as form or query parameters (e.g. on an approve button). */
bool sim_faults_apply_params(sim_faults *f, const params *p, char *err, size_t err_cap) SIM_WUR;

typedef enum sim_status {
	SIM_PENDING,
	SIM_SUCCEEDED,
	SIM_FAILED,
	SIM_EXPIRED,
} sim_status;

const char *sim_status_name(sim_status st);

struct sim_payment;

typedef struct sim_refund {
	char *ref;                   /* VNPAY vnp_RequestId, MoMo refund orderId */
	char *txn_id;                /* the bank's id of the refund */
	int64_t amount;
	time_t at;
	char *answer;                /* the first answer, repeated for a retried request */
	struct sim_payment *payment;
} sim_refund;

/* A notification as last sent, so it can be sent again. */
typedef struct sim_notice {
	char *method;
	char *url;
	char *body;
	size_t body_len;
	char *content_type;
	char *header_names[2];
	char *header_values[2];
} sim_notice;

typedef struct sim_payment {
	sim_service bank;
	char *ref;            /* vnp_TxnRef, MoMo orderId, VietQR transaction_id */
	char *request_id;     /* MoMo requestId */
	int64_t amount;       /* VND */
	sim_status status;
	char *txn_id;         /* the bank's transaction number, once decided */
	char *order_info;
	char *return_url;
	char *ipn_url;
	char *extra_data;     /* MoMo */
	char *create_date;    /* VNPAY vnp_CreateDate as sent */
	char *client_ip;
	char *token;          /* MoMo pay page token */
	char *pay_url;        /* MoMo */
	char *result_code;    /* the bank's code for the outcome */
	char *account_no;     /* VietQR credit */
	char *content;        /* VietQR credit */
	time_t created_at;
	time_t expires_at;
	time_t paid_at;
	int64_t refunded;
	sim_refund **refunds;
	size_t n_refunds;
	sim_notice last_notice;
	/* settlement-file knobs (POST /admin/settlement), for reconciliation tests */
	bool settle_drop;     /* left out of its settlement file */
	bool settle_repeat;   /* listed twice */
	bool settle_next_day; /* listed in the next day's file (cut-off skew) */
	int64_t settle_amount; /* listed with this amount instead (VND), when > 0 */
} sim_payment;

typedef struct sim_map_entry {
	char *key;
	void *value;
	struct sim_map_entry *next;
} sim_map_entry;

typedef struct sim_map {
	sim_map_entry **buckets;
	size_t n_buckets;
	size_t count;
} sim_map;

void *sim_map_get(const sim_map *m, const char *key);
bool sim_map_put(sim_map *m, const char *key, void *value) SIM_WUR;
void sim_map_clear(sim_map *m);

typedef struct sim_store {
	sim_map payments; /* "bank:ref" */
	sim_map by_txn;   /* "bank:txn_id" */
	sim_map refunds;  /* "bank:refund ref" */
	sim_payment **all;
	size_t n_all;
	size_t cap_all;
	sim_refund **all_refunds;
	size_t n_refunds;
	size_t cap_refunds;
	int64_t last_txn; /* transaction numbers grow from the clock, so they stay unique across restarts */
} sim_store;

void sim_store_init(sim_store *st);
void sim_store_clear(sim_store *st);
sim_payment *sim_store_find(sim_store *st, sim_service bank, const char *ref);
sim_payment *sim_store_find_txn(sim_store *st, sim_service bank, const char *txn_id);
sim_refund *sim_store_find_refund(sim_store *st, sim_service bank, const char *ref);
/* A new payment with its strings still to fill in; NULL when out of memory or ref is taken. */
sim_payment *sim_store_add(sim_store *st, sim_service bank, const char *ref) SIM_WUR;
bool sim_store_set_txn(sim_store *st, sim_payment *p, const char *txn_id) SIM_WUR;
sim_refund *sim_store_add_refund(sim_store *st, sim_payment *p, const char *ref, const char *txn_id,
				 int64_t amount, time_t at) SIM_WUR;
/* A new bank transaction number. */
int64_t sim_store_next_txn(sim_store *st);
/* Replaces *dst with a copy of src. */
bool sim_strset(char **dst, const char *src) SIM_WUR;
json_t *sim_payment_json(const sim_payment *p);

struct sim_job;

/* Called once when a notification's first attempt has ended (status 0: no
 * answer) or when it will not be sent now (delayed, held, dropped: state says which). */
typedef void (*sim_first_cb)(void *arg, int status, const char *answer, const char *state);

typedef struct sim {
	struct event_base *base;
	struct evhttp *http;
	char *host;
	int port;
	char *public_url;   /* how browsers reach banksim */
	char *feegate_url;  /* where notifications go (POST /admin/config changes it) */
	char *feegate_url_initial;
	adapter_config cfg[SIM_SERVICE_COUNT];
	sim_faults faults[SIM_SERVICE_COUNT];
	sim_store store;
	json_t *webhooks;       /* portal sink: received webhooks */
	int64_t next_webhook_id;
	json_t *notifications;  /* log of notification attempts */
	json_t *payouts;        /* the banks' payouts to agency accounts (POST /admin/payouts) */
	int64_t next_notification_id;
	struct sim_job *jobs;   /* notifications not finished */
	struct sim_job *held[SIM_SERVICE_COUNT];
	struct sim_hung *hung;  /* API requests never to be answered */
	struct sim_deferred *deferred; /* API requests to be answered later */
	uint64_t generation;    /* bumped by /admin/reset */
} sim;

/* http.c: answering requests */
void sim_reply_json(struct evhttp_request *req, int status, json_t *body); /* steals body */
void sim_reply_text(struct evhttp_request *req, int status, const char *content_type, const char *text,
		    size_t len);
void sim_reply_html(struct evhttp_request *req, int status, const char *html);
void sim_reply_error(struct evhttp_request *req, int status, const char *message);
void sim_redirect(struct evhttp_request *req, const char *location);
/* The body as a NUL-terminated copy (malloc'ed); NULL when it holds a NUL byte. */
char *sim_body(struct evhttp_request *req, size_t *len);
/* Query parameters followed by form-encoded body parameters. */
bool sim_request_params(struct evhttp_request *req, params *out) SIM_WUR;
json_t *sim_body_json(struct evhttp_request *req);
const char *sim_request_query(struct evhttp_request *req);
void sim_html_escape(struct strbuf *out, const char *s);
void sim_page_begin(struct strbuf *out, const char *title);
void sim_page_end(struct strbuf *out);
/* Ends a payment form after its last hidden field's value: the Approve button (approve: its
 * Vietnamese label) and the Decline one. */
void sim_page_decide(struct strbuf *out, const char *approve);
/* Spoils a hex signature (its last digit), for the bad_signature fault. */
void sim_corrupt_hex(char *hex);
/* Answers obj (stolen) signed: sig set as its field (spoiled under svc's bad_signature fault),
 * its text kept in *keep when keep is given; 500 when signing failed (signed_ok false). */
void sim_reply_signed(sim *s, struct evhttp_request *req, int status, sim_service svc, json_t *obj, bool signed_ok,
		      const char *field, char *sig, char **keep);
/* A payment page's state: a notice when p is already settled (false: no form to show), else
 * true, with a warning first when its time is over (late_code: the bank's code for approving
 * it then). what: "payment", "transaction". */
bool sim_page_payable(struct strbuf *out, const sim_payment *p, const char *what, const char *late_code);
void sim_reply_page(struct evhttp_request *req, int status, struct strbuf *page); /* frees page */
/* 200000 -> "200.000 ₫" */
void sim_format_vnd(int64_t amount, char *out, size_t cap);
void sim_random_hex(char *out, size_t n_hex);
void sim_log(const char *level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool sim_param_true(const char *v);

typedef void (*sim_handler)(sim *s, struct evhttp_request *req);
/* Runs handler unless the service's API faults say otherwise (error status,
 * delay, hang). */
void sim_api(sim *s, sim_service svc, struct evhttp_request *req, sim_handler handler);
/* Answers every held API request with 503 and cancels delayed ones. */
void sim_api_release_all(sim *s);

/* notify.c: sending notifications */
typedef struct sim_outgoing {
	const char *method;        /* "GET" or "POST" */
	const char *url;
	const char *body;          /* NULL for GET */
	size_t body_len;
	const char *content_type;
	const char *header_names[2];
	const char *header_values[2];
} sim_outgoing;

void sim_notify(sim *s, sim_service svc, const char *ref, const sim_outgoing *out, const sim_faults *f,
		sim_first_cb cb, void *cb_arg);
/* A citizen's confirmation, answered: p's notification out is kept for replays, logged (op,
 * action) and sent; the browser goes to ret after its first attempt, or at once when the form
 * says wait=false. */
void sim_confirm_notify(sim *s, struct evhttp_request *req, sim_service svc, sim_payment *p, const sim_outgoing *out,
			const sim_faults *f, const char *wait, const char *ret, const char *op, const char *action);
/* Sends the last notification of p again, without faults. */
bool sim_notify_again(sim *s, sim_payment *p) SIM_WUR;
void sim_notify_cancel_all(sim *s);
/* At exit: also abandons notifications in flight. */
void sim_notify_shutdown(sim *s);
bool sim_notice_save(sim_notice *n, const sim_outgoing *out) SIM_WUR;
void sim_notice_free(sim_notice *n);

/* A browser or API request that waits for a notification's first attempt. */
typedef struct sim_waiter {
	struct evhttp_request *req;
	char *redirect;     /* 303 there; NULL: answer JSON with the notification's result */
	json_t *reply;      /* the JSON answer's other fields */
} sim_waiter;

sim_waiter *sim_waiter_new(struct evhttp_request *req, const char *redirect, json_t *reply);
void sim_waiter_done(void *arg, int status, const char *answer, const char *state);

/* The protocols. */
void vnpay_bank_pay_page(sim *s, struct evhttp_request *req);
void vnpay_bank_confirm(sim *s, struct evhttp_request *req);
void vnpay_bank_api(sim *s, struct evhttp_request *req);
void momo_bank_create(sim *s, struct evhttp_request *req);
void momo_bank_query(sim *s, struct evhttp_request *req);
void momo_bank_refund(sim *s, struct evhttp_request *req);
void momo_bank_pay_page(sim *s, struct evhttp_request *req);
void momo_bank_confirm(sim *s, struct evhttp_request *req);
void vietqr_bank_transfer(sim *s, struct evhttp_request *req);
void vietqr_bank_page(sim *s, struct evhttp_request *req);
void portal_sink_receive(sim *s, struct evhttp_request *req);
void portal_sink_list(sim *s, struct evhttp_request *req);
void portal_sink_clear(sim *s, struct evhttp_request *req);
void settlement_file(sim *s, struct evhttp_request *req, const char *bank, const char *day);
void treasury_statement(sim *s, struct evhttp_request *req, const char *account, const char *day);
void admin_payouts(sim *s, struct evhttp_request *req);
void admin_faults(sim *s, struct evhttp_request *req);
void admin_reset(sim *s, struct evhttp_request *req);
void admin_notifications(sim *s, struct evhttp_request *req);
void admin_payments(sim *s, struct evhttp_request *req);
void admin_resend(sim *s, struct evhttp_request *req);
void admin_settlement(sim *s, struct evhttp_request *req);
void admin_config(sim *s, struct evhttp_request *req);
/* Marks pending payments whose time is up as expired. */
void sim_expire_if_due(sim_payment *p, time_t now);

/* sign.c: `banksim sign ...` for the known-answer tests */
int sign_main(int argc, char **argv);

#endif
