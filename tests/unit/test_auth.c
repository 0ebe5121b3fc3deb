/* gateway/auth: the one role table (auth_can) and the agency scope of staff bound to one or
 * several agencies (auth_agency_scope). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "gateway/gateway.h"

static void test_role_table(void **state)
{
	static const struct {
		const char *role;
		unsigned want; /* bit per perm */
	} rows[] = {
		{"agency", 1u << PERM_VIEW | 1u << PERM_EXPORT},
		{"finance", 1u << PERM_VIEW | 1u << PERM_EXPORT | 1u << PERM_REFUND | 1u << PERM_IMPORT | 1u << PERM_CASES},
		{"admin", 1u << PERM_STAFF | 1u << PERM_AUDIT},
		{"auditor", 1u << PERM_VIEW | 1u << PERM_EXPORT | 1u << PERM_AUDIT},
		{"superuser", 0},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct principal *p = auth_staff_principal("00000000-0000-4000-8000-000000000001", rows[i].role, "a@b.c", "");
		for (int perm = PERM_VIEW; perm <= PERM_AUDIT; perm++)
			assert_int_equal(auth_can(p, (enum perm)perm), (rows[i].want >> perm) & 1u);
		auth_release(p);
	}
	/* an admin may not refund; a portal client may do nothing staff do */
	struct principal *admin = auth_staff_principal("x", "admin", "", "");
	assert_false(auth_can(admin, PERM_REFUND));
	admin->kind = PRINCIPAL_CLIENT;
	assert_false(auth_can(admin, PERM_STAFF));
	auth_release(admin);
	assert_false(auth_can(NULL, PERM_VIEW));
}

static void test_agency_scope(void **state)
{
	char buf[AUTH_SCOPE_CAP];
	struct principal *two = auth_staff_principal("x", "agency", "", "3:DKKD,1:XNC");
	assert_int_equal(two->nagencies, 2);
	assert_string_equal(auth_agency_scope(two, buf, sizeof buf), "{3,1}");
	auth_release(two);
	struct principal *none = auth_staff_principal("x", "agency", "", "");
	assert_string_equal(auth_agency_scope(none, buf, sizeof buf), "{}"); /* sees nothing, not everything */
	auth_release(none);
	struct principal *fin = auth_staff_principal("x", "finance", "", "");
	assert_null(auth_agency_scope(fin, buf, sizeof buf));
	auth_release(fin);
	struct principal *aud = auth_staff_principal("x", "auditor", "", "");
	assert_null(auth_agency_scope(aud, buf, sizeof buf));
	auth_release(aud);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_role_table),
		cmocka_unit_test(test_agency_scope),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
