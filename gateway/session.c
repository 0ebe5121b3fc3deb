#include "gateway/session.h"

#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gateway.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"

bool session_request_tls(struct http_req *req)
{
	return http_req_tls(req);
}

const char *session_cookie(struct http_req *req, const char *name, char *buf, size_t cap)
{
	const char *h = http_header(req, "Cookie");
	size_t n = strlen(name);
	while (h && *h) {
		while (*h == ' ' || *h == ';')
			h++;
		size_t len = strcspn(h, ";");
		if (len > n && strncmp(h, name, n) == 0 && h[n] == '=') {
			size_t vlen = len - n - 1;
			if (vlen == 0 || vlen >= cap)
				return NULL;
			memcpy(buf, h + n + 1, vlen);
			buf[vlen] = '\0';
			return buf;
		}
		h += len;
	}
	return NULL;
}

void session_set_cookie(struct http_req *req, const char *name, const char *value, int max_age_s)
{
	char *c = xasprintf("%s=%s; Path=/console; HttpOnly; SameSite=Strict%s; Max-Age=%d", name, value,
			    session_request_tls(req) ? "; Secure" : "", max_age_s);
	http_add_header(req, "Set-Cookie", c);
	free(c);
}

static bool valid_sid(const char *s)
{
	size_t n = strlen(s);
	return n >= 20 && n <= 64 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static char *session_json(const struct session *s)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:I}", "csrf", s->csrf, "staff", s->staff_id, "role", s->role,
			      "email", s->email, "name", s->name, "agencies", s->agencies, "enrol", s->must_enrol,
			      "created", (json_int_t)s->created);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

static bool session_parse(const char *text, struct session *s)
{
	json_t *o = json_loads(text, 0, NULL);
	if (!o)
		return false;
	const char *csrf = json_string_value(json_object_get(o, "csrf"));
	const char *staff = json_string_value(json_object_get(o, "staff"));
	const char *role = json_string_value(json_object_get(o, "role"));
	bool ok = csrf && staff && role;
	if (ok) {
		snprintf(s->csrf, sizeof s->csrf, "%s", csrf);
		snprintf(s->staff_id, sizeof s->staff_id, "%s", staff);
		snprintf(s->role, sizeof s->role, "%s", role);
		snprintf(s->email, sizeof s->email, "%s", json_string_value(json_object_get(o, "email")) ?: "");
		snprintf(s->name, sizeof s->name, "%s", json_string_value(json_object_get(o, "name")) ?: "");
		snprintf(s->agencies, sizeof s->agencies, "%s", json_string_value(json_object_get(o, "agencies")) ?: "");
		s->must_enrol = json_is_true(json_object_get(o, "enrol"));
		s->created = (int64_t)json_integer_value(json_object_get(o, "created"));
	}
	json_decref(o);
	return ok;
}

/* The session's time to live from now: the idle timeout, cut at the absolute deadline. */
static int ttl_of(const struct session *s)
{
	int64_t left = s->created + cfg.session_max_s - (int64_t)time(NULL);
	return left < cfg.session_idle_s ? (int)left : cfg.session_idle_s;
}

struct load_wait {
	struct http_req *req;
	session_fn done;
	struct session s;
};

static void loaded(void *arg, redisReply *reply)
{
	struct load_wait *w = arg;
	struct session *s = NULL;
	if (reply && reply->type == REDIS_REPLY_STRING && session_parse(reply->str, &w->s)) {
		int ttl = ttl_of(&w->s);
		if (ttl > 0) {
			s = &w->s;
			/* sliding idle timeout: every request pushes the end out again */
			redis_command(gw.redis, NULL, NULL, "EXPIRE %s %d", s->key, ttl);
		} else {
			redis_command(gw.redis, NULL, NULL, "DEL %s", w->s.key);
		}
	}
	w->done(w->req, s);
	free(w);
}

void session_load(struct http_req *req, session_fn done)
{
	char sid[80];
	if (!session_cookie(req, SESSION_COOKIE, sid, sizeof sid) || !valid_sid(sid)) {
		done(req, NULL);
		return;
	}
	struct load_wait *w = xcalloc(1, sizeof *w);
	w->req = req;
	w->done = done;
	char h[65];
	util_sha256_hex(sid, strlen(sid), h);
	snprintf(w->s.key, sizeof w->s.key, "session:%s", h);
	redis_command(gw.redis, loaded, w, "GET %s", w->s.key);
}

struct create_wait {
	struct http_req *req;
	session_fn done;
	struct session *s;
	char sid[64];
};

static void created(void *arg, redisReply *reply)
{
	struct create_wait *w = arg;
	bool ok = reply && reply->type == REDIS_REPLY_STATUS;
	if (ok)
		session_set_cookie(w->req, SESSION_COOKIE, w->sid, cfg.session_max_s);
	w->done(w->req, ok ? w->s : NULL);
	free(w);
}

void session_create(struct http_req *req, struct session *s, session_fn done)
{
	struct create_wait *w = xcalloc(1, sizeof *w);
	w->req = req;
	w->done = done;
	w->s = s;
	char *sid = util_token("", 32), *csrf = util_token("", 24);
	snprintf(w->sid, sizeof w->sid, "%s", sid);
	snprintf(s->csrf, sizeof s->csrf, "%s", csrf);
	free(sid);
	free(csrf);
	char h[65];
	util_sha256_hex(w->sid, strlen(w->sid), h);
	snprintf(s->key, sizeof s->key, "session:%s", h);
	s->created = (int64_t)time(NULL);
	char *text = session_json(s);
	redis_command(gw.redis, created, w, "SET %s %s EX %d", s->key, text, ttl_of(s));
	free(text);
	/* the member's sessions, so that disabling the member ends them all */
	redis_command(gw.redis, NULL, NULL, "EVAL %s 1 staff_sessions:%s %s %d",
		      "redis.call('SADD', KEYS[1], ARGV[1]) redis.call('EXPIRE', KEYS[1], ARGV[2]) return 1", s->staff_id,
		      s->key, cfg.session_max_s);
}

void session_end_staff(const char *staff_id)
{
	redis_command(gw.redis, NULL, NULL, "EVAL %s 1 staff_sessions:%s",
		      "local k = redis.call('SMEMBERS', KEYS[1]) for _, s in ipairs(k) do redis.call('DEL', s) end "
		      "redis.call('DEL', KEYS[1]) return #k",
		      staff_id);
}

void session_save(const struct session *s)
{
	char *text = session_json(s);
	int ttl = ttl_of(s);
	if (ttl > 0)
		redis_command(gw.redis, NULL, NULL, "SET %s %s EX %d", s->key, text, ttl);
	free(text);
}

void session_end(struct http_req *req, const struct session *s)
{
	if (s)
		redis_command(gw.redis, NULL, NULL, "DEL %s", s->key);
	session_set_cookie(req, SESSION_COOKIE, "", 0);
}
