/*
 * tests/unit/route_role_mandatory.c
 *    Compiled, not run, by the ctest unit_route_role_mandatory: a route table entry without a role must not
 *    compile under the project's flags (-Wextra's missing-field-initializers with -Werror). Built once with
 *    -DWITH_ROLE (must compile: the check is about the role, not the includes) and once without (must fail).
 */
#include "routes.h"

static int h_x(struct req *r)
{
	(void)r;
	return 200;
}

#ifdef WITH_ROLE
const struct route probe[] = {{"GET", "/api/x", h_x, ROUTE_VIEWER}};
#else
const struct route probe[] = {{"GET", "/api/x", h_x}};
#endif
