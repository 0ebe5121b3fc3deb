#include "gateway/staff.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/audit.h"
#include "gateway/gateway.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/passwd.h"
#include "lib/totp.h"
#include "lib/workpool.h"

static const char *const roles[] = {"agency", "finance", "admin", "auditor"};

bool staff_role_valid(const char *role)
{
	for (size_t i = 0; i < ARRAY_LEN(roles); i++)
		if (strcmp(role, roles[i]) == 0)
			return true;
	return false;
}

bool staff_role_needs_totp(const char *role)
{
	return strcmp(role, "finance") == 0 || strcmp(role, "admin") == 0;
}

bool staff_email_valid(const char *e)
{
	size_t n = strlen(e);
	const char *at = strchr(e, '@');
	if (n < 3 || n > 254 || !at || at == e || !at[1] || strchr(at + 1, '@'))
		return false;
	for (const char *c = e; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == '<' || *c == '>' || *c == '"' || *c == 0x7f)
			return false;
	return true;
}

void staff_recovery_hash(const char *typed, char out[65])
{
	char norm[32];
	size_t o = 0;
	for (const char *c = typed; *c && o + 1 < sizeof norm; c++)
		if (isalnum((unsigned char)*c))
			norm[o++] = (char)toupper((unsigned char)*c);
	norm[o] = '\0';
	util_sha256_hex(norm, o, out);
}

void staff_recovery_new(struct staff_recovery *out)
{
	size_t o = (size_t)snprintf(out->hashes_literal, sizeof out->hashes_literal, "{");
	for (int i = 0; i < STAFF_RECOVERY_CODES; i++) {
		unsigned char raw[7];
		char b32[16];
		util_random(raw, sizeof raw);
		totp_base32_encode(raw, sizeof raw, b32, sizeof b32);
		snprintf(out->codes[i], sizeof out->codes[i], "%.5s-%.5s", b32, b32 + 5);
		char h[65];
		staff_recovery_hash(out->codes[i], h);
		o += (size_t)snprintf(out->hashes_literal + o, sizeof out->hashes_literal - o, "%s%s", i ? "," : "", h);
	}
	snprintf(out->hashes_literal + o, sizeof out->hashes_literal - o, "}");
}

/* ---- hashing off the loop ---- */

static struct workpool *pool;

struct passwd_job {
	char *password;
	char *stored; /* verify: the stored hash */
	char *out;    /* hash: where the new hash goes (PASSWD_HASH_CAP) */
	bool ok;
	staff_passwd_fn done;
	void *arg;
};

static void job_work(void *p)
{
	struct passwd_job *j = p;
	size_t len = strlen(j->password);
	if (j->out)
		j->ok = passwd_hash(j->password, len, cfg.password_log_n, j->out);
	else
		j->ok = passwd_verify(j->password, len, j->stored);
}

static void job_done(void *p)
{
	struct passwd_job *j = p;
	OPENSSL_cleanse(j->password, strlen(j->password));
	free(j->password);
	free(j->stored);
	j->done(j->arg, j->ok);
	free(j);
}

static bool submit(const char *password, const char *stored, char *out, staff_passwd_fn done, void *arg)
{
	/* two jobs per thread waiting at most: beyond that, sign-in is overloaded and says so */
	if (!pool)
		pool = workpool_new(gw.base, cfg.hash_threads, cfg.hash_threads * 3);
	struct passwd_job *j = xcalloc(1, sizeof *j);
	j->password = xstrdup(password);
	j->stored = stored ? xstrdup(stored) : NULL;
	j->out = out;
	j->done = done;
	j->arg = arg;
	if (workpool_submit(pool, job_work, job_done, j))
		return true;
	OPENSSL_cleanse(j->password, strlen(j->password));
	free(j->password);
	free(j->stored);
	free(j);
	return false;
}

bool staff_passwd_verify(const char *password, const char *stored, staff_passwd_fn done, void *arg)
{
	/* no stored hash (unknown e-mail, or no password set yet): hash against a dummy so the
	 * answer takes as long as a real one */
	static const char dummy[] = "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	return submit(password, stored && *stored ? stored : dummy, NULL, done, arg);
}

bool staff_passwd_hash(const char *password, char *out, staff_passwd_fn done, void *arg)
{
	return submit(password, NULL, out, done, arg);
}

void staff_shutdown(void)
{
	workpool_free(pool);
	pool = NULL;
}
