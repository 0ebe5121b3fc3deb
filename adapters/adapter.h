/* One interface for every bank or wallet feegate collects through.
 *
 * An adapter builds and interprets; it never does I/O. To start a payment it
 * returns a URL to send the citizen to, a request for the caller to send (whose
 * answer it then turns into that URL), or a QR payload. For a notification it
 * takes the raw bytes that arrived and gives a verdict. For status queries and
 * refunds it builds the request and judges the answer. Callers go through the
 * adapter_* wrappers below, which return results that cannot be ignored and
 * answer ADAPTER_UNSUPPORTED where a bank lacks an operation.
 *
 * Adding a bank is one new file that defines a `const adapter` and one line in
 * the table in adapter.c. Nothing outside adapters/ names a bank.
 *
 * Amounts are whole VND in int64_t everywhere; a bank's own units (VNPAY's
 * VND x 100) never leave its adapter. Strings in results live in fixed buffers
 * inside the result, so a verdict needs no freeing; the builders hand out
 * malloc'ed strings that adapter_request_free()/adapter_start_free() release.
 * Memory is lib/mem.h's (an allocation failure aborts), so no operation fails
 * for want of it.
 */
#ifndef FEEGATE_ADAPTERS_ADAPTER_H
#define FEEGATE_ADAPTERS_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ADAPTER_WUR __attribute__((warn_unused_result))

#define ADAPTER_REF_CAP 65      /* bank_order_ref, refund refs */
#define ADAPTER_TXN_ID_CAP 65   /* the bank's transaction ids */
#define ADAPTER_CODE_CAP 33     /* the bank's result codes */
#define ADAPTER_ACCOUNT_CAP 65  /* account numbers */
#define ADAPTER_CONTENT_CAP 512 /* transfer text; longer text is cut here */
#define ADAPTER_MAX_HEADERS 4
#define ADAPTER_AMOUNT_MAX INT64_C(100000000000) /* the largest order, 100 billion VND */

typedef enum adapter_rc {
	ADAPTER_OK = 0,
	ADAPTER_BAD_SIGNATURE, /* authenticity not established (or stale): change nothing */
	ADAPTER_MALFORMED,     /* not a message of this protocol, a field missing or invalid */
	ADAPTER_MISMATCH,      /* authentic, but about another order, merchant or amount than asked */
	ADAPTER_DECLINED,      /* authentic refusal from the bank (see failure_code) */
	ADAPTER_UNAVAILABLE,   /* the bank answered with an error status or not at all: retry later */
	ADAPTER_INVALID_INPUT, /* our own input cannot be sent to this bank */
	ADAPTER_UNSUPPORTED,   /* this bank has no such operation */
} adapter_rc;

const char *adapter_rc_name(adapter_rc rc);

/* The bank's credentials and addresses, as the gateway (or banksim) loaded them. */
typedef struct adapter_config {
	const char *bank_url;    /* base URL of the bank's pages and APIs, no trailing '/' */
	const char *merchant_id; /* VNPAY vnp_TmnCode, MoMo partnerCode */
	const char *access_key;  /* MoMo accessKey */
	const char *secret;      /* VNPAY hash secret, MoMo secret key, VietQR webhook secret */
	const char *ipn_url;     /* our server-to-server notification URL for this bank */
	const char *return_url;  /* our browser return URL for this bank */
} adapter_config;

/* An agency's collection account: where a transfer-based payment is sent. */
typedef struct adapter_account {
	const char *bin;    /* NAPAS bank BIN, 6 digits */
	const char *number; /* account number */
	const char *holder; /* account holder's name */
} adapter_account;

/* One payment attempt to start. */
typedef struct adapter_payment {
	const char *bank_order_ref; /* [A-Z0-9]{8,20}, unique per attempt */
	int64_t amount;             /* VND */
	const char *description;    /* UTF-8; each adapter reduces it to what its bank accepts */
	const char *client_ip;      /* the citizen's address; NULL means 127.0.0.1 */
	time_t created_at;
	time_t expires_at;
	adapter_account account;    /* transfer-based banks only */
} adapter_payment;

typedef struct adapter_header {
	char *name;
	char *value;
} adapter_header;

/* A request for the caller to send to the bank. */
typedef struct adapter_request {
	const char *method; /* "GET" or "POST" (static) */
	char *url;          /* absolute */
	adapter_header headers[ADAPTER_MAX_HEADERS];
	size_t n_headers;
	char *body;         /* NUL-terminated; NULL for none */
	size_t body_len;
} adapter_request;

void adapter_request_free(adapter_request *r);

/* The bank's answer to an adapter_request, as the caller received it. */
typedef struct adapter_response {
	int status;         /* HTTP status */
	const char *body;
	size_t body_len;
} adapter_response;

typedef enum adapter_start_kind {
	ADAPTER_START_REDIRECT, /* send the citizen to redirect_url */
	ADAPTER_START_CALL,     /* send `call`, then adapter_parse_start_response() */
	ADAPTER_START_QR,       /* show qr_payload (and adapter_qr_svg() of it) */
} adapter_start_kind;

typedef struct adapter_start {
	adapter_start_kind kind;
	char *redirect_url;                  /* REDIRECT; CALL after its answer was parsed */
	adapter_request call;                /* CALL */
	char *qr_payload;                    /* QR */
	char failure_code[ADAPTER_CODE_CAP]; /* ADAPTER_DECLINED: the bank's code */
} adapter_start;

void adapter_start_free(adapter_start *s);

typedef struct adapter_kv {
	const char *name;
	const char *value;
} adapter_kv;

/* A message from the bank as it arrived: a notification or a browser return. */
typedef struct adapter_inbound {
	const char *query;           /* raw query string after '?', or NULL */
	const char *body;            /* raw body bytes, exactly as received */
	size_t body_len;
	const adapter_kv *headers;   /* names compared case-insensitively */
	size_t n_headers;
	time_t now;                  /* for timestamp windows */
} adapter_inbound;

typedef enum adapter_txn_state {
	ADAPTER_TXN_SUCCEEDED,
	ADAPTER_TXN_FAILED,
	ADAPTER_TXN_PENDING,   /* the bank has not finished: ask again later */
	ADAPTER_TXN_NOT_FOUND, /* the bank does not know it */
} adapter_txn_state;

/* What the bank says about one payment or refund. */
typedef struct adapter_txn {
	adapter_txn_state state;
	bool success;                              /* state == ADAPTER_TXN_SUCCEEDED */
	int64_t amount;                            /* VND */
	char bank_order_ref[ADAPTER_REF_CAP];      /* empty for transfers: see adapter_matches() */
	char bank_txn_id[ADAPTER_TXN_ID_CAP];      /* the payment's (a refund answer: the refund's) */
	char failure_code[ADAPTER_CODE_CAP];       /* the bank's code when not a success */
	char account_no[ADAPTER_ACCOUNT_CAP];      /* transfers: the credited account */
	char content[ADAPTER_CONTENT_CAP];         /* transfers: the payer's text as sent */
	char match_text[ADAPTER_CONTENT_CAP];      /* transfers: content upper-cased, letters and
						      digits only; an attempt matches when its
						      bank_order_ref occurs in it (and amount and
						      account are its own) */
	time_t bank_time;                          /* when the bank says it happened; 0 unknown */
} adapter_txn;

/* A status query for one attempt. */
typedef struct adapter_query {
	const char *request_id;     /* unique per query, [A-Za-z0-9]{1,32} */
	const char *bank_order_ref;
	const char *bank_txn_id;    /* if known, else NULL */
	int64_t amount;             /* VND, as the attempt was started */
	const char *description;
	time_t attempt_created_at;  /* as given in adapter_payment.created_at */
	const char *server_ip;      /* our address as the bank sees it; NULL means 127.0.0.1 */
	time_t now;
} adapter_query;

/* A refund of (part of) a paid attempt. */
typedef struct adapter_refund {
	const char *refund_ref;     /* unique per refund, [A-Za-z0-9]{1,32}; retries reuse it */
	const char *bank_order_ref; /* the paid attempt's */
	const char *bank_txn_id;    /* the paid attempt's */
	int64_t amount;             /* VND to give back */
	int64_t paid_amount;        /* VND the attempt was paid */
	time_t attempt_created_at;  /* the paid attempt's adapter_payment.created_at */
	const char *reason;
	const char *created_by;     /* staff who asked */
	const char *server_ip;      /* NULL means 127.0.0.1 */
	time_t now;
} adapter_refund;

/* What became of a notification, for the answer the bank expects. */
typedef enum adapter_outcome {
	ADAPTER_APPLIED,       /* recorded now */
	ADAPTER_REPLAYED,      /* recorded before; nothing changed */
	ADAPTER_UNKNOWN_ORDER, /* no such attempt (a transfer: recorded to suspense) */
	ADAPTER_WRONG_AMOUNT,  /* kept as an exception, nothing posted */
	ADAPTER_REJECTED,      /* bad signature or stale */
	ADAPTER_FAILED,        /* our fault, the bank should retry */
} adapter_outcome;

typedef struct adapter_reply {
	int status;
	const char *content_type; /* static; NULL when body_len is 0 */
	char body[96];
	size_t body_len;
} adapter_reply;

typedef enum adapter_settle_kind {
	ADAPTER_SETTLE_PAYMENT,
	ADAPTER_SETTLE_REFUND,
} adapter_settle_kind;

/* One line of a bank's daily settlement file. */
typedef struct adapter_settlement_line {
	size_t line_no;
	adapter_settle_kind kind;
	char bank_order_ref[ADAPTER_REF_CAP];   /* the payment's; empty for transfers */
	char bank_txn_id[ADAPTER_TXN_ID_CAP];   /* the payment's */
	char refund_ref[ADAPTER_REF_CAP];       /* refunds: our refund_ref */
	char refund_txn_id[ADAPTER_TXN_ID_CAP]; /* refunds: the bank's id of the refund */
	int64_t amount;                         /* VND, positive for both kinds */
	int64_t fee;                            /* VND the bank keeps */
	time_t at;
	char account_no[ADAPTER_ACCOUNT_CAP];   /* transfers */
	char content[ADAPTER_CONTENT_CAP];      /* transfers */
} adapter_settlement_line;

/* Return false to stop early (parse_settlement then returns ADAPTER_OK). */
typedef bool (*adapter_settlement_cb)(void *ctx, const adapter_settlement_line *line);

typedef struct adapter_error {
	size_t line;        /* 1-based; 0 when not about a line */
	char message[160];
} adapter_error;

/* A bank. Operations it lacks are NULL. */
typedef struct adapter {
	const char *name;            /* "vnpay": URL segment, stored value, config key */
	const char *display_name;    /* for pages */
	const char *checkout_vi;     /* what paying this way is, for its checkout button (Vietnamese) */
	const char *checkout_en;     /* the same in English */
	bool transfer;               /* the citizen transfers to the agency's own account: checkout
					shows a QR and reuses the open transfer, the bank's file lists
					credits, and no refund API exists */
	const char *env_merchant_id; /* environment variables with its credentials, or NULL */
	const char *env_access_key;
	const char *env_secret;

	adapter_rc (*start)(const adapter_config *cfg, const adapter_payment *p, adapter_start *out);
	adapter_rc (*parse_start_response)(const adapter_config *cfg, const adapter_payment *p,
					   const adapter_response *resp, adapter_start *out);
	adapter_rc (*verify_return)(const adapter_config *cfg, const adapter_inbound *in,
				    adapter_txn *out);
	adapter_rc (*verify_notification)(const adapter_config *cfg, const adapter_inbound *in,
					  adapter_txn *out);
	void (*notification_reply)(adapter_outcome outcome, adapter_reply *out);
	bool (*matches)(const adapter_txn *txn, const char *bank_order_ref, int64_t amount,
			const char *account_no);
	size_t (*match_candidates)(const adapter_txn *txn, size_t ref_len, char (*out)[ADAPTER_REF_CAP],
				   size_t max);
	adapter_rc (*build_query)(const adapter_config *cfg, const adapter_query *q,
				  adapter_request *out);
	adapter_rc (*parse_query_response)(const adapter_config *cfg, const adapter_query *q,
					   const adapter_response *resp, adapter_txn *out);
	adapter_rc (*build_refund)(const adapter_config *cfg, const adapter_refund *r,
				   adapter_request *out);
	adapter_rc (*parse_refund_response)(const adapter_config *cfg, const adapter_refund *r,
					    const adapter_response *resp, adapter_txn *out);
	adapter_rc (*parse_settlement)(const adapter_config *cfg, const char *data, size_t len,
				       adapter_settlement_cb cb, void *ctx, adapter_error *err);
} adapter;

/* The registry. ADAPTER_CHOICES is every adapter's name in the table's order, as a query's
 * choices ("a|b|c"; a unit test holds it to the table); a macro, so that a caller may add
 * choices of its own. */
#define ADAPTER_CHOICES "vnpay|momo|vietqr"
const adapter *adapter_find(const char *name);
/* The first adapter whose payments are transfers (adapter.transfer), or NULL. */
const adapter *adapter_transfer(void);
/* Whether list is a comma-separated list of adapter names (at least one). */
bool adapter_names_valid(const char *list) ADAPTER_WUR;
/* Every adapter's name, joined by sep, into out[cap] (cut short when it does not fit). */
void adapter_names(const char *sep, char *out, size_t cap);
size_t adapter_count(void);
const adapter *adapter_at(size_t i);

/* Callers' entry points. Each initialises its out-struct before anything else,
 * so freeing it afterwards is always safe; adapter_parse_start_response instead
 * takes the adapter_start that adapter_start_payment filled (it keeps `call`). */
adapter_rc adapter_start_payment(const adapter *a, const adapter_config *cfg,
				 const adapter_payment *p, adapter_start *out) ADAPTER_WUR;
adapter_rc adapter_parse_start_response(const adapter *a, const adapter_config *cfg,
					const adapter_payment *p, const adapter_response *resp,
					adapter_start *out) ADAPTER_WUR;
adapter_rc adapter_verify_return(const adapter *a, const adapter_config *cfg,
				 const adapter_inbound *in, adapter_txn *out) ADAPTER_WUR;
adapter_rc adapter_verify_notification(const adapter *a, const adapter_config *cfg,
				       const adapter_inbound *in, adapter_txn *out) ADAPTER_WUR;
/* The answer the bank expects for this outcome. */
adapter_reply adapter_notification_reply(const adapter *a, adapter_outcome outcome);
/* Whether a verified notification is about the attempt (ref, amount VND, the
 * agency's account for transfers). Banks that echo our ref compare it and the
 * amount; VietQR applies the transfer-content rule. */
bool adapter_matches(const adapter *a, const adapter_txn *txn, const char *bank_order_ref,
		     int64_t amount, const char *account_no) ADAPTER_WUR;
/* For a transfer (a verified notification without bank_order_ref): the references of
 * ref_len characters it may be about, at most max, written to out; returns how many. An attempt
 * with one of them is the transfer's when adapter_matches() says so: its amount and account
 * are the transfer's (what the caller's lookup of the candidates compares). 0 for banks that
 * echo our reference. */
size_t adapter_match_candidates(const adapter *a, const adapter_txn *txn, size_t ref_len,
				char (*out)[ADAPTER_REF_CAP], size_t max);
adapter_rc adapter_build_query(const adapter *a, const adapter_config *cfg,
			       const adapter_query *q, adapter_request *out) ADAPTER_WUR;
adapter_rc adapter_parse_query_response(const adapter *a, const adapter_config *cfg,
					const adapter_query *q, const adapter_response *resp,
					adapter_txn *out) ADAPTER_WUR;
adapter_rc adapter_build_refund(const adapter *a, const adapter_config *cfg,
				const adapter_refund *r, adapter_request *out) ADAPTER_WUR;
adapter_rc adapter_parse_refund_response(const adapter *a, const adapter_config *cfg,
					 const adapter_refund *r, const adapter_response *resp,
					 adapter_txn *out) ADAPTER_WUR;
/* What a settlement file states about itself in its last record,
 * "TOTAL,<yyyymmdd business day>,<line count>,<sum of the lines' amounts in VND>"
 * (every bank's file, whatever its columns): the lines before it must agree
 * with it, else the file is refused whole (ADAPTER_MALFORMED naming the trailer's
 * line). Nothing reaches cb before the file has been checked as a whole. */
typedef struct adapter_settlement_summary {
	char business_day[9]; /* yyyymmdd */
	int64_t lines;
	int64_t total;        /* VND, payments and refunds alike counted positive */
} adapter_settlement_summary;
#define ADAPTER_SETTLEMENT_TRAILER "TOTAL"

adapter_rc adapter_parse_settlement(const adapter *a, const adapter_config *cfg,
				    const char *data, size_t len, adapter_settlement_cb cb,
				    void *ctx, adapter_settlement_summary *summary,
				    adapter_error *err) ADAPTER_WUR;
/* The same checks in one pass: each line reaches cb as it is read and the trailer is compared
 * after the last, so a refused file may already have handed on lines. For a caller that can
 * undo them (the statement importer: its COPY rolls back), and reads the file only once. */
adapter_rc adapter_stream_settlement(const adapter *a, const adapter_config *cfg,
				     const char *data, size_t len, adapter_settlement_cb cb,
				     void *ctx, adapter_settlement_summary *summary,
				     adapter_error *err) ADAPTER_WUR;
/* An SVG image (malloc'ed text) of a QR code holding payload. */
adapter_rc adapter_qr_svg(const char *payload, char **svg) ADAPTER_WUR;
/* The short name of the Vietnamese bank with this NAPAS BIN (6 digits), or NULL when unknown. */
const char *adapter_bin_bank_name(const char *bin);

/* Helpers shared by the adapters and banksim; the hashing, HMAC, UTF-8 and buffer helpers
 * they use are lib/'s (lib/util.h, lib/strbuf.h). */

/* Copies src into dst[cap]; false (dst emptied) when it does not fit. */
bool adapter_copy(char *dst, size_t cap, const char *src) ADAPTER_WUR;
/* Copies src into dst[cap], cutting it at a UTF-8 character boundary if needed. */
void adapter_set(char *dst, size_t cap, const char *src);
/* Formats t in Vietnam time (UTC+7, no DST) with strftime's fmt. */
void adapter_format_vn_time(time_t t, const char *fmt, char *out, size_t cap);
/* Parses yyyyMMddHHmmss in Vietnam time. */
bool adapter_parse_vn_compact(const char *s, time_t *out) ADAPTER_WUR;
/* Case-insensitive header lookup in an inbound message. */
const char *adapter_inbound_header(const adapter_inbound *in, const char *name);
/* Adds a header to an outgoing request (copies both); false when it has ADAPTER_MAX_HEADERS. */
bool adapter_request_add_header(adapter_request *r, const char *name, const char *value) ADAPTER_WUR;
/* The ASCII letter a Vietnamese letter folds to (Ư -> U), 0 for a combining mark,
 * ' ' for anything else that is not ASCII. */
char adapter_fold_codepoint(uint32_t cp);
/* Reduces UTF-8 text to ASCII letters, digits and single spaces: Vietnamese
 * letters lose their marks (Đ becomes D), anything else becomes a space; the
 * result is trimmed and cut to cap - 1 bytes. */
void adapter_ascii_fold(const char *utf8, char *out, size_t cap);

#endif
