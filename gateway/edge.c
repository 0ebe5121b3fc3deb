#include "gateway/edge.h"

#include <signal.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "gateway/gateway.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"

/* Mozilla's "intermediate" configuration: forward-secret AEAD suites only. */
#define TLS12_CIPHERS                                                                                   \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"       \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"         \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

static SSL_CTX *tls_ctx;
static struct http_server *tls_server;
static struct event *hup_event;

static void openssl_reason(char *err, size_t errlen, const char *what)
{
	char detail[200] = "";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, detail, sizeof detail);
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, *detail ? ": " : "", detail);
}

struct ssl_ctx_st *edge_tls_context(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		openssl_reason(err, errlen, "cannot create a TLS context");
		return NULL;
	}
	bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) && SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) &&
		  SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) && SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES);
	if (!ok) {
		openssl_reason(err, errlen, "cannot restrict TLS versions and suites");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	SSL_CTX_set_dh_auto(ctx, 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		openssl_reason(err, errlen, "FEEGATE_TLS_CERT: cannot load the certificate");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		openssl_reason(err, errlen, "FEEGATE_TLS_KEY: cannot load the key, or it does not match the certificate");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	char err[300];
	SSL_CTX *fresh = edge_tls_context(cfg.tls_cert, cfg.tls_key, err, sizeof err);
	if (!fresh) {
		log_error(NULL, "TLS reload failed, keeping the current certificate: %s", err);
		return;
	}
	http_server_set_tls(tls_server, fresh);
	/* Connections made with the old context hold their own reference to it. */
	SSL_CTX_free(tls_ctx);
	tls_ctx = fresh;
	log_info(NULL, "TLS certificate reloaded");
}

bool edge_tls_start(struct event_base *base, struct http_server *s, int tls_fd)
{
	if (tls_fd < 0)
		return true;
	if (!*cfg.tls_cert || !*cfg.tls_key) {
		log_error(NULL, "FEEGATE_TLS_PORT is set: FEEGATE_TLS_CERT and FEEGATE_TLS_KEY are required");
		return false;
	}
	char err[300];
	tls_ctx = edge_tls_context(cfg.tls_cert, cfg.tls_key, err, sizeof err);
	if (!tls_ctx) {
		log_error(NULL, "%s", err);
		return false;
	}
	if (!http_server_listen(s, tls_fd, tls_ctx)) {
		log_error(NULL, "cannot serve the TLS listening socket");
		return false;
	}
	tls_server = s;
	hup_event = evsignal_new(base, SIGHUP, on_hup, NULL);
	event_add(hup_event, NULL);
	log_info(NULL, "TLS on %s:%d", cfg.listen_addr, cfg.tls_port);
	return true;
}

void edge_tls_stop(void)
{
	if (hup_event)
		event_free(hup_event);
	hup_event = NULL;
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
}

const char *edge_public_origin(void)
{
	static char origin[256];
	const char *u = cfg.public_url;
	const char *host = strstr(u, "://");
	size_t n = host ? (size_t)(host + 3 - u) + strcspn(host + 3, "/?#") : strlen(u);
	if (n >= sizeof origin)
		n = sizeof origin - 1;
	memcpy(origin, u, n);
	origin[n] = '\0';
	return origin;
}

void edge_raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn(NULL, "cannot raise the descriptor limit");
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)cfg.max_connections + 256)
		log_warn(NULL, "descriptor limit %llu is below FEEGATE_MAX_CONNECTIONS (%d): accept fails first",
			 (unsigned long long)rl.rlim_cur, cfg.max_connections);
}

/* The test sink: takes a streamed body, pausing now and then as a slow consumer would, and
 * answers its size and SHA-256, so a test can check both the bytes and the gateway's memory. */
struct sink {
	EVP_MD_CTX *md;
	uint64_t bytes;
	uint64_t next_pause;
	struct event *resume;
	struct http_req *req;
};

static void sink_free(void *p)
{
	struct sink *k = p;
	EVP_MD_CTX_free(k->md);
	if (k->resume)
		event_free(k->resume);
	free(k);
}

static void sink_resume(evutil_socket_t fd, short what, void *arg)
{
	struct sink *k = arg;
	http_body_resume(k->req);
}

static void sink_chunk(struct http_req *req, const char *data, size_t len, void *arg)
{
	struct sink *k = arg;
	EVP_DigestUpdate(k->md, data, len);
	k->bytes += len;
	if (k->bytes >= k->next_pause) {
		k->next_pause += 8u << 20;
		http_body_pause(req);
		struct timeval tv = {0, 2000};
		evtimer_add(k->resume, &tv);
	}
}

static void sink_end(struct http_req *req, enum http_body_end end, void *arg)
{
	struct sink *k = arg;
	evtimer_del(k->resume);
	if (end != HTTP_BODY_DONE) {
		http_reply_body_error(req, end);
		return;
	}
	unsigned char dig[32];
	unsigned int dl = 0;
	EVP_DigestFinal_ex(k->md, dig, &dl);
	char hex[65];
	util_hex(dig, dl, hex);
	json_t *body = json_object();
	json_object_set_new(body, "bytes", json_integer((json_int_t)k->bytes));
	json_object_set_new(body, "sha256", json_string(hex));
	http_reply_json(req, 200, body);
}

void edge_test_sink(struct http_req *req)
{
	if (!cfg.test_sink) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	struct sink *k = xcalloc(1, sizeof *k);
	k->md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(k->md, EVP_sha256(), NULL);
	k->next_pause = 8u << 20;
	k->req = req;
	req->state = k;
	req->state_free = sink_free;
	k->resume = evtimer_new(gw.base, sink_resume, k);
	http_body_stream(req, sink_chunk, sink_end, k);
}
