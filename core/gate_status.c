/*
 * core/gate_status.c
 *    mrgate's commit status (see gate_status.h).
 */
#include "gate_status.h"

#include "xalloc.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct json_object *status_body(const struct gate_status *s)
{
	struct json_object *body = jx_object();
	json_object_object_add(body, "state", jx_str(s->state));
	json_object_object_add(body, "name", jx_str(GATE_STATUS_NAME));
	if (s->ref)
		json_object_object_add(body, "ref", jx_str(s->ref));
	json_object_object_add(body, "description", jx_str(s->description));
	if (s->target_url && *s->target_url)
		json_object_object_add(body, "target_url", jx_str(s->target_url));
	if (s->pipeline_id > 0)
		json_object_object_add(body, "pipeline_id", jx_int(s->pipeline_id));
	return body;
}

enum core_status gate_status_post(struct gitlab *gl, int64_t project_id, const char *sha, const struct gate_status *s,
                                  int tries, struct gitlab_response **resp_out)
{
	char path[160];
	enum core_status st = CORE_EINTERNAL;
	struct json_object *body = status_body(s);
	*resp_out = NULL;
	snprintf(path, sizeof(path), "/projects/%lld/statuses/%.72s", (long long)project_id, sha);
	for (int attempt = 0; attempt < tries; attempt++) {
		gitlab_response_free(*resp_out);
		*resp_out = NULL;
		st = gitlab_request_ex(gl, "POST", path, body, GITLAB_CALL_IDEMPOTENT, resp_out);
		if (st == CORE_EINVAL && *resp_out && strstr((*resp_out)->body, "Cannot transition status"))
			st = CORE_OK; /* the status is there already */
		if (st != CORE_ECONFLICT || attempt + 1 == tries)
			break;
		usleep((useconds_t)(250000u << (attempt < 4 ? attempt : 4)));
	}
	json_object_put(body);
	return st;
}

const char *gate_status_why(const struct gitlab_response *resp, enum core_status st)
{
	return resp && resp->message[0] ? resp->message : core_status_code(st);
}
