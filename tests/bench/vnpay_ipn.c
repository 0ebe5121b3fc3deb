/* Signed VNPAY IPN query strings for the load generator: see vnpay_ipn.h. */
#include "vnpay_ipn.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GMT7_SECONDS (7 * 3600)

/* Appends s to out[*len..cap), keeping out NUL-terminated; false when it does not fit. */
static bool append(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
	if (*len + n + 1 > cap)
		return false;
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
	return true;
}

static bool append_encoded(char *out, size_t cap, size_t *len, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char enc[3];
		size_t n = 1;
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			     *p == '-' || *p == '_' || *p == '.';
		if (plain) {
			enc[0] = (char)*p;
		} else if (*p == ' ') {
			enc[0] = '+';
		} else {
			enc[0] = '%';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
			n = 3;
		}
		if (!append(out, cap, len, enc, n))
			return false;
	}
	return true;
}

bool ipn_php_urlencode(const char *s, char *out, size_t cap)
{
	size_t len = 0;
	if (cap == 0)
		return false;
	out[0] = '\0';
	return append_encoded(out, cap, &len, s);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes in[0..n) into out, + as a space. */
static bool url_decode(const char *in, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi = i + 2 < n ? hex_digit(in[i + 1]) : -1;
			int lo = i + 2 < n ? hex_digit(in[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return false;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = c;
	}
	if (cap == 0)
		return false;
	out[o] = '\0';
	return true;
}

bool ipn_url_param(const char *url, const char *name, char *out, size_t cap)
{
	const char *q = strchr(url, '?');
	if (!q)
		return false;
	size_t name_len = strlen(name);
	for (const char *p = q + 1; *p;) {
		size_t pair_len = strcspn(p, "&#");
		if (pair_len > name_len + 1 && strncmp(p, name, name_len) == 0 && p[name_len] == '=')
			return url_decode(p + name_len + 1, pair_len - name_len - 1, out, cap);
		if (p[pair_len] != '&')
			break;
		p += pair_len + 1;
	}
	return false;
}

static int by_name(const void *a, const void *b)
{
	const struct ipn_param *x = *(const struct ipn_param *const *)a;
	const struct ipn_param *y = *(const struct ipn_param *const *)b;
	return strcmp(x->name, y->name);
}

static bool is_signed(const struct ipn_param *p)
{
	return strncmp(p->name, "vnp_", 4) == 0 && strcmp(p->name, "vnp_SecureHash") != 0 &&
	       strcmp(p->name, "vnp_SecureHashType") != 0 && p->value[0] != '\0';
}

bool ipn_signed_query(const char *secret, const struct ipn_param *fields, size_t n, char *out, size_t cap)
{
	const struct ipn_param *signed_params[IPN_MAX_PARAMS];
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_signed(&fields[i]))
			continue;
		if (count == IPN_MAX_PARAMS)
			return false;
		signed_params[count++] = &fields[i];
	}
	if (count == 0 || cap == 0)
		return false;
	qsort(signed_params, count, sizeof signed_params[0], by_name);

	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		if ((i > 0 && !append(out, cap, &len, "&", 1)) || !append_encoded(out, cap, &len, signed_params[i]->name) ||
		    !append(out, cap, &len, "=", 1) || !append_encoded(out, cap, &len, signed_params[i]->value))
			return false;
	}
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	if (!HMAC(EVP_sha512(), secret, (int)strlen(secret), (const unsigned char *)out, len, mac, &mac_len))
		return false;
	static const char hex[] = "0123456789abcdef";
	char digest[2 * EVP_MAX_MD_SIZE + 1];
	for (unsigned int i = 0; i < mac_len; i++) {
		digest[2 * i] = hex[mac[i] >> 4];
		digest[2 * i + 1] = hex[mac[i] & 15];
	}
	digest[2 * mac_len] = '\0';
	OPENSSL_cleanse(mac, sizeof mac);
	const char *key = "&vnp_SecureHash=";
	return append(out, cap, &len, key, strlen(key)) && append(out, cap, &len, digest, 2 * mac_len);
}

bool ipn_success_query(const char *secret, const struct ipn_payment *p, char *out, size_t cap)
{
	char order_info[96], pay_date[16];
	if (snprintf(order_info, sizeof order_info, "Thanh toan %s", p->txn_ref) >= (int)sizeof order_info)
		return false;
	time_t vn = p->paid_at + GMT7_SECONDS;
	struct tm tm;
	if (!gmtime_r(&vn, &tm) || strftime(pay_date, sizeof pay_date, "%Y%m%d%H%M%S", &tm) != 14)
		return false;
	const struct ipn_param fields[] = {
		{"vnp_TmnCode", p->tmn_code},
		{"vnp_Amount", p->amount},
		{"vnp_BankCode", "NCB"},
		{"vnp_BankTranNo", p->bank_tran_no},
		{"vnp_CardType", "ATM"},
		{"vnp_OrderInfo", order_info},
		{"vnp_PayDate", pay_date},
		{"vnp_ResponseCode", "00"},
		{"vnp_TransactionNo", p->transaction_no},
		{"vnp_TransactionStatus", "00"},
		{"vnp_TxnRef", p->txn_ref},
	};
	return ipn_signed_query(secret, fields, sizeof fields / sizeof fields[0], out, cap);
}
