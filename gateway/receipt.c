#include "gateway/receipt.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/mem.h"

/* ---- the total in words ---- */

static const char *const digit_words[10] = {"không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"};

struct words {
	char *out;
	size_t cap, len;
	bool overflow;
};

static void put(struct words *w, const char *s)
{
	size_t n = strlen(s);
	size_t sep = w->len ? 1 : 0;
	if (w->len + sep + n + 1 > w->cap) {
		w->overflow = true;
		return;
	}
	if (sep)
		w->out[w->len++] = ' ';
	memcpy(w->out + w->len, s, n + 1);
	w->len += n;
}

/* One group of three digits. full: read as a non-leading group ("không trăm linh năm"). */
static void read_group(struct words *w, int n, bool full)
{
	int h = n / 100, t = n / 10 % 10, u = n % 10;
	if (h || full) {
		put(w, digit_words[h]);
		put(w, "trăm");
	}
	if (t == 0) {
		if (u && (h || full))
			put(w, "linh");
	} else if (t == 1) {
		put(w, "mười");
	} else {
		put(w, digit_words[t]);
		put(w, "mươi");
	}
	if (u == 0)
		return;
	if (u == 1 && t >= 2)
		put(w, "mốt");
	else if (u == 5 && t >= 1)
		put(w, "lăm");
	else
		put(w, digit_words[u]);
}

/* n < 10^9, in groups of millions, thousands and units; all-zero groups are not read. */
static void read_below_billion(struct words *w, int64_t n, bool full)
{
	static const char *const units[3] = {"triệu", "nghìn", NULL};
	int groups[3] = {(int)(n / 1000000), (int)(n / 1000 % 1000), (int)(n % 1000)};
	for (int i = 0; i < 3; i++) {
		if (!groups[i])
			continue;
		read_group(w, groups[i], full);
		if (units[i])
			put(w, units[i]);
		full = true;
	}
}

static void read_number(struct words *w, int64_t n, bool full)
{
	if (n >= 1000000000) {
		read_number(w, n / 1000000000, full);
		put(w, "tỷ");
		if (n % 1000000000)
			read_below_billion(w, n % 1000000000, true);
		return;
	}
	read_below_billion(w, n, full);
}

bool receipt_amount_words(int64_t amount, char *out, size_t cap)
{
	struct words w = {.out = out, .cap = cap};
	if (cap)
		out[0] = '\0';
	if (amount < 0 || cap == 0)
		return false;
	if (amount == 0)
		put(&w, "không");
	else
		read_number(&w, amount, false);
	put(&w, "đồng");
	if (w.overflow)
		return false;
	/* every digit word starts with an ASCII letter */
	if (out[0] >= 'a' && out[0] <= 'z')
		out[0] = (char)(out[0] - 'a' + 'A');
	return true;
}

/* ---- canonical form ---- */

char *receipt_canonical(const json_t *receipt)
{
	if (!json_is_object(receipt))
		return NULL;
	json_t *copy = json_deep_copy(receipt);
	static const char *const unsigned_keys[] = {"signature", "url", "pdf_url", "adjustments"};
	for (size_t i = 0; i < ARRAY_LEN(unsigned_keys); i++)
		json_object_del(copy, unsigned_keys[i]);
	char *s = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	return s;
}

/* ---- keys ---- */

struct receipt_key {
	EVP_PKEY *pkey;
	char id[RECEIPT_KEY_ID_SIZE];
	char public_b64[RECEIPT_PUBLIC_B64_SIZE];
};

/* base64url, or base64: either alphabet's 62nd and 63rd characters; '=' ends the text */
static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-' || c == '+')
		return 62;
	if (c == '_' || c == '/')
		return 63;
	return c == '=' ? UTIL_DECODE_END : -1;
}

long receipt_b64url_decode(const char *in, unsigned char *out, size_t cap)
{
	return util_bits_decode(in, SIZE_MAX, 6, b64_value, out, cap);
}

static bool key_describe(struct receipt_key *k)
{
	unsigned char raw[32];
	size_t n = sizeof raw;
	if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &n) != 1 || n != 32)
		return false;
	char hex[65];
	util_sha256_hex(raw, n, hex);
	snprintf(k->id, sizeof k->id, "fg-%.16s", hex);
	util_base64url(raw, n, k->public_b64);
	return true;
}

struct receipt_key *receipt_key_load(const char *path, char *err, size_t errlen)
{
	struct receipt_key *k = NULL;
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!pkey || EVP_PKEY_id(pkey) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "%s is not an Ed25519 private key (PEM)", path);
		goto fail;
	}
	k = xcalloc(1, sizeof *k);
	k->pkey = pkey;
	if (!key_describe(k)) {
		snprintf(err, errlen, "cannot read the public half of %s", path);
		goto fail;
	}
	return k;
fail:
	if (k)
		free(k);
	EVP_PKEY_free(pkey);
	return NULL;
}

bool receipt_key_generate(const char *path, char *err, size_t errlen)
{
	bool ok = false;
	EVP_PKEY *pkey = NULL;
	FILE *f = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1) {
		snprintf(err, errlen, "cannot generate an Ed25519 key");
		goto done;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		goto done;
	}
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		snprintf(err, errlen, "cannot write %s", path);
		goto done;
	}
	if (PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		snprintf(err, errlen, "cannot write %s", path);
		goto done;
	}
	ok = true;
done:
	if (f && fclose(f) != 0 && ok) {
		snprintf(err, errlen, "cannot write %s", path);
		ok = false;
	}
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

void receipt_key_free(struct receipt_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

const char *receipt_key_id(const struct receipt_key *k)
{
	return k->id;
}

const char *receipt_key_public(const struct receipt_key *k)
{
	return k->public_b64;
}

/* ---- sign and verify ---- */

bool receipt_sign(const struct receipt_key *k, json_t *receipt)
{
	bool ok = false;
	char *canon = NULL;
	EVP_MD_CTX *md = NULL;
	json_t *amount = json_object_get(receipt, "amount");
	char words[512];
	if (!json_is_integer(amount) || !receipt_amount_words(json_integer_value(amount), words, sizeof words))
		goto done;
	json_object_set_new(receipt, "amount_in_words", json_string(words));
	json_object_set_new(receipt, "key_id", json_string(k->id));
	canon = receipt_canonical(receipt);
	md = EVP_MD_CTX_new();
	unsigned char sig[64];
	size_t siglen = sizeof sig;
	if (!canon || !md || EVP_DigestSignInit(md, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)canon, strlen(canon)) != 1 || siglen != 64)
		goto done;
	char b64[RECEIPT_SIG_B64_SIZE];
	util_base64url(sig, siglen, b64);
	json_object_set_new(receipt, "signature", json_string(b64));
	ok = true;
done:
	EVP_MD_CTX_free(md);
	free(canon);
	return ok;
}

bool receipt_verify(const json_t *receipt, const char *public_b64)
{
	bool ok = false;
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	char *canon = NULL;
	unsigned char raw[33], sig[65];
	const char *sig_b64 = json_string_value(json_object_get(receipt, "signature"));
	if (!public_b64 || !sig_b64 || receipt_b64url_decode(public_b64, raw, sizeof raw) != 32 ||
	    receipt_b64url_decode(sig_b64, sig, sizeof sig) != 64)
		goto done;
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
	canon = receipt_canonical(receipt);
	md = EVP_MD_CTX_new();
	if (!pkey || !canon || !md || EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) != 1)
		goto done;
	ok = EVP_DigestVerify(md, sig, 64, (const unsigned char *)canon, strlen(canon)) == 1;
done:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	free(canon);
	return ok;
}

bool receipt_sign_into(const struct receipt_key *k, const char *code, const char *body_text, json_t *batch)
{
	json_t *body = json_loads(body_text, 0, NULL);
	if (!body || !receipt_sign(k, body)) {
		json_decref(body);
		return false;
	}
	json_t *item = json_object();
	json_object_set_new(item, "code", json_string(code));
	json_object_set(item, "signature", json_object_get(body, "signature"));
	json_object_set_new(item, "key_id", json_string(k->id));
	json_object_del(body, "signature");
	char *text = json_dumps(body, JSON_COMPACT);
	json_object_set_new(item, "body", json_string(text));
	free(text);
	json_decref(body);
	json_array_append_new(batch, item);
	return true;
}
