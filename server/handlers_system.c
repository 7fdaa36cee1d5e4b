/*
 * server/handlers_system.c
 *    /healthz, /readyz and /metrics.
 */
#include "connection.h"
#include "http_json.h"
#include "metrics.h"
#include "migrate.h"
#include "routes.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The process is up and serving HTTP. */
int h_healthz(struct req *r)
{
	struct json_object *o = jx_object();
	json_object_object_add(o, "status", jx_str("ok"));
	json_object_object_add(o, "version", jx_str(MRGATE_VERSION));
	return http_send_json(r->conn, 200, o);
}

/* Ready to serve requests: the database answers and its schema is the one this binary expects. */
int h_readyz(struct req *r)
{
	int current = 0, latest = migrate_latest();
	enum core_status st = migrate_current(r->app->db, &current);
	if (st != CORE_OK)
		return http_send_error(r->conn, 503, "unavailable", "the database is unreachable");
	if (current > latest)
		return http_send_error(
		    r->conn, 503, "unavailable",
		    "the database schema is at version %d, migrated by a newer mrgate; this one knows "
		    "versions up to %d: run the newer mrgate",
		    current, latest);
	if (current != latest)
		return http_send_error(r->conn, 503, "unavailable",
		                       "the database schema is at version %d; this mrgate needs version %d (run "
		                       "\"mrgate migrate\")",
		                       current, latest);
	struct json_object *o = jx_object();
	json_object_object_add(o, "status", jx_str("ready"));
	json_object_object_add(o, "schema_version", jx_int(current));
	return http_send_json(r->conn, 200, o);
}

int h_metrics(struct req *r)
{
	struct store_stats ss;
	store_stats(r->app->db, &ss);
	metrics_set("mrgate_db_connections", "state=\"open\"", ss.open);
	metrics_set("mrgate_db_connections", "state=\"in_use\"", ss.in_use);
	metrics_set("mrgate_db_connections", "state=\"waiting\"", ss.waiting);
	metrics_set("mrgate_db_connections", "state=\"max\"", ss.max);
	metrics_set("mrgate_db_errors_total", NULL, (double)ss.errors);
	metrics_set("mrgate_db_reconnects_total", NULL, (double)ss.reconnects);
	metrics_set("mrgate_uptime_seconds", NULL, (double)(time(NULL) - r->app->started_at));
	struct gitlab_metrics *gm = connection_shared_metrics();
	if (gm) {
		for (size_t i = 0; i < gm->n_rows; i++) {
			char labels[256], ep[160];
			metrics_label_escape(gm->rows[i].endpoint, ep, sizeof(ep));
			snprintf(labels, sizeof(labels), "method=\"%s\",endpoint=\"%s\",status=\"%ld\"",
			         gm->rows[i].method, ep, gm->rows[i].status);
			metrics_set("mrgate_gitlab_requests_total", labels, (double)gm->rows[i].count);
		}
		metrics_set("mrgate_gitlab_retries_total", NULL, (double)gm->retries);
		metrics_set("mrgate_gitlab_throttled_total", NULL, (double)gm->throttled);
		gitlab_metrics_free(gm);
	}
	char *text = metrics_render();
	int status = http_send_raw(r->conn, 200, "text/plain; version=0.0.4; charset=utf-8", text ? text : "",
	                           text ? strlen(text) : 0, NULL);
	free(text);
	return status;
}

void handlers_system_describe(void)
{
	metrics_describe("mrgate_db_connections", "gauge",
	                 "database connections of this process by state (waiting: threads waiting for one)");
	metrics_describe("mrgate_db_errors_total", "counter", "database statements that failed");
	metrics_describe("mrgate_db_reconnects_total", "counter", "database reconnections after a broken connection");
	metrics_describe("mrgate_uptime_seconds", "gauge", "seconds since this process started");
	metrics_describe("mrgate_gitlab_requests_total", "counter",
	                 "GitLab HTTP requests by method, endpoint template and status (0: no answer)");
	metrics_describe("mrgate_gitlab_retries_total", "counter", "GitLab requests that were retries");
	metrics_describe("mrgate_gitlab_throttled_total", "counter", "GitLab 429 answers");
	metrics_describe("mrgate_gitlab_token_ok", "gauge",
	                 "1 when GitLab accepted the connection's token at the last check, 0 when it refused it");
	metrics_describe("mrgate_discovery_runs_total", "counter", "discovery runs by result");
	metrics_describe("mrgate_discovery_last_duration_seconds", "gauge", "duration of the last discovery run");
	metrics_describe("mrgate_discovery_last_repos", "gauge", "repositories listed by the last discovery run");
}
