/*
 * core/status.c
 *    Names of core_status values, used as the "error" field of API error bodies.
 */
#include "status.h"

const char *core_status_code(enum core_status st)
{
	switch (st) {
	case CORE_OK: return "ok";
	case CORE_EINVAL: return "invalid_input";
	case CORE_ENOTFOUND: return "not_found";
	case CORE_ECONFLICT: return "conflict";
	case CORE_EUNAUTH: return "unauthorized";
	case CORE_EFORBIDDEN: return "forbidden";
	case CORE_ETOOLARGE: return "too_large";
	case CORE_ETHROTTLED: return "too_many_requests";
	case CORE_EUNAVAIL: return "unavailable";
	case CORE_EUPSTREAM: return "gitlab_error";
	case CORE_ETIMEOUT: return "timeout";
	case CORE_ENOMEM: return "out_of_memory";
	case CORE_EINTERNAL: return "internal";
	case CORE_ECRYPTO: return "crypto";
	case CORE_ESTATE: return "bad_state";
	case CORE_STATUS_COUNT: break;
	}
	return "unknown";
}
