/*
 * core/status.h
 *    The one status enum of mrgate's core.
 *
 * Design: every core function that can fail returns an enum core_status and writes its results through *_out
 * parameters. The values are never renumbered; new ones are appended before CORE_STATUS_COUNT. Only
 * server/http_json.c turns a status into an HTTP status code.
 */
#ifndef MRGATE_CORE_STATUS_H
#define MRGATE_CORE_STATUS_H

enum core_status {
	CORE_OK = 0,
	CORE_EINVAL,     /* the caller's input is invalid (bad field, bad value, malformed JSON) */
	CORE_ENOTFOUND,  /* the thing asked for does not exist */
	CORE_ECONFLICT,  /* a uniqueness or state conflict (duplicate, concurrent change) */
	CORE_EUNAUTH,    /* no or wrong credentials */
	CORE_EFORBIDDEN, /* authenticated but not allowed */
	CORE_ETOOLARGE,  /* input over a size cap */
	CORE_ETHROTTLED, /* too many attempts; try later */
	CORE_EUNAVAIL,   /* a dependency (the database) is unreachable */
	CORE_EUPSTREAM,  /* GitLab answered with an error */
	CORE_ETIMEOUT,   /* an operation ran out of time */
	CORE_ENOMEM,     /* allocation failed */
	CORE_EINTERNAL,  /* a bug or an unexpected state; details are logged */
	CORE_ECRYPTO,    /* decryption failed: wrong key or corrupted data */
	CORE_ESTATE,     /* the operation is not possible in the current state (e.g. no connection yet) */
	CORE_STATUS_COUNT
};

/* A short stable code name for the status, e.g. "not_found". Never NULL. */
const char *core_status_code(enum core_status st);

#endif
