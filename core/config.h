/*
 * core/config.h
 *    mrgate's settings: MRGATE_* environment variables, overridden by command-line flags.
 *
 * Design: one table (config.c) lists every setting with its variable, flag, default and help line, so that
 * `mrgate --help` and the README never drift from the code. Values are kept as strings in the table and parsed
 * into struct config by config_load().
 * Ownership: the strings in struct config are owned by the config and freed by config_free().
 */
#ifndef MRGATE_CORE_CONFIG_H
#define MRGATE_CORE_CONFIG_H

#include "status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct json_object;

struct config {
	char *database_url;         /* libpq URL or conninfo */
	char *listen;               /* host:port for the HTTP server */
	char *public_url;           /* base URL GitLab and browsers reach mrgate at (webhook URL, links) */
	char *secret_key_file;      /* libsodium secretbox key (32 bytes), created 0600 when missing */
	char *web_root;             /* directory of the dashboard's static files */
	char *tls_cert;             /* PEM file (certificate + key) to serve HTTPS; empty for plain HTTP */
	char *admin_password;       /* creates user "admin" on first start when no user exists */
	char *log_format;           /* json | text */
	char *log_level;            /* debug | info | warn | error */
	int http_threads;           /* CivetWeb worker threads */
	int workers;                /* job worker threads */
	int job_lease_ms;           /* job item lease (renewed every third of it); takeover after it expires */
	int db_pool;                /* maximum database connections of this process */
	int gitlab_concurrency;     /* GitLab requests in flight across all workers */
	int gitlab_rate_limit;      /* GitLab requests per minute; 0 = no client-side limit */
	int resync_interval;        /* seconds between scheduled resyncs */
	int gitlab_timeout;         /* seconds for one GitLab HTTP exchange */
	int gitlab_retries;         /* retries of a failed idempotent GitLab request */
	int gitlab_backoff_ms;      /* first backoff delay before a retry (doubles, with jitter) */
	size_t max_body_bytes;      /* cap on API request bodies */
	size_t max_hook_bytes;      /* cap on webhook bodies */
	int gate_workers;           /* merge-request gate worker threads */
	int gate_timeout;           /* seconds one gate run may take before its fail-open/fail-closed verdict */
	size_t gate_tree_max_bytes; /* cap on the unpacked MR head tree handed to external scanners */
	int repo_list_cache_mb;     /* MiB of repo list pages kept per database snapshot (core/repos.h); 0 = off */
	char *gitlab_url_allow; /* hosts (host or host:port, comma-separated) PUT /api/connection may use; "" = any */
	char *trusted_proxies;  /* reverse proxies whose X-Forwarded-For is believed (core/clientaddr.h); "" = none */
	char *scanner_sast;     /* command lines of the external SARIF scanners, per scan type ("" = none) */
	char *scanner_dependencies;
	char *scanner_iac;
	char *scanner_license;
	char *scanner_malware;
};

/*
 * Fill *cfg from defaults, then the environment, then argv flags (--name=value or --name value). Flags not
 * in the table are left for the caller: their indexes are written to rest_out (capacity argc), count to
 * *nrest_out. On a bad value, writes a message to err (cap errlen) and returns CORE_EINVAL.
 */
enum core_status config_load(struct config *cfg, int argc, char **argv, int *rest_out, int *nrest_out, char *err,
                             size_t errlen);
void config_free(struct config *cfg);

/*
 * Whether this server can run scan type `scan` (secrets is built in; the others need their MRGATE_SCANNER_*
 * command). False for an unknown type.
 */
bool config_has_scanner(const struct config *cfg, const char *scan);
/* Per scan type: {"items": [{"scan", "available", "builtin", "setting"}]} (a new object, the caller's; never the
 * command line itself, which may carry paths or arguments an operator keeps private). */
struct json_object *config_scanners_json(const struct config *cfg);
/*
 * The scan types of a config (its "scans" array, borrowed; NULL is fine) that have no scanner here, as "a, b" in
 * buf (empty when none). Returns how many. Names that are no scan type are left to the config's validation.
 */
int config_missing_scanners(const struct config *cfg, struct json_object *scans, char *buf, size_t cap);
/* Print every setting: flag, variable, default, help. */
void config_print_help(FILE *out);

#endif
