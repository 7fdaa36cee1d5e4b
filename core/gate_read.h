/*
 * core/gate_read.h
 *    The read model of gate runs: GET /api/gates (a page of runs) and GET /api/gates/:id (one run with its
 *    findings).
 *
 * Design: each run is built as one JSON object in SQL (its repo's path and the MR's title and link from the
 * webhook event that queued it) and turned into the answer by core/rows.h, which also pages it the one way every
 * list pages: newest first, `limit` (1..200, default 50) and `cursor` -> `next_cursor` (the id of the last run of
 * the page; the next page holds the runs with smaller ids). gate_list/gate_get keep their names from before this
 * module existed.
 * Threading: thread-safe (one pooled connection per call).
 * Ownership: *out trees are the caller's (json_object_put); the filter's strings are borrowed.
 */
#ifndef MRGATE_CORE_GATE_READ_H
#define MRGATE_CORE_GATE_READ_H

#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct gate_filter {
	int64_t repo_id;     /* 0 = any */
	int64_t mr_iid;      /* 0 = any */
	const char *verdict; /* NULL = any; passed | failed | error | timeout | skipped | bypassed */
	const char *state;   /* NULL = any; queued | running | done | superseded | error */
	int64_t before_id;   /* cursor: runs with a smaller id; 0 = from the newest */
	int limit;           /* 1..200; 0 = 50 */
};
/* {"items": [...], "next_cursor": "id" | null}. CORE_EINVAL (message in err) for a bad verdict or state. */
enum core_status gate_list(struct store *db, const struct gate_filter *f, struct json_object **out, char *err,
                           size_t errlen);
/* One run with "findings": [...]; CORE_ENOTFOUND when unknown. */
enum core_status gate_get(struct store *db, int64_t id, struct json_object **out);

#endif
