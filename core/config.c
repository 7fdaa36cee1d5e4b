/*
 * core/config.c
 *    The settings table and its loader.
 */
#include "config.h"

#include "xalloc.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum setting_kind { SET_STR, SET_INT, SET_SIZE };

struct setting {
	const char *flag; /* without the leading "--" */
	const char *env;
	const char *def;
	enum setting_kind kind;
	size_t offset;
	long min, max;
	const char *help;
};

#define STR(field)          SET_STR, offsetof(struct config, field), 0, 0
#define INT(field, lo, hi)  SET_INT, offsetof(struct config, field), lo, hi
#define SIZE(field, lo, hi) SET_SIZE, offsetof(struct config, field), lo, hi

static const struct setting settings[] = {
    {"database-url", "MRGATE_DATABASE_URL", "postgresql:///mrgate", STR(database_url),
     "PostgreSQL connection URL (make run points it at the local cluster under .mrgate/)"},
    {"listen", "MRGATE_LISTEN", "127.0.0.1:8080", STR(listen), "address and port to serve HTTP on"},
    {"public-url", "MRGATE_PUBLIC_URL", "http://127.0.0.1:8080", STR(public_url),
     "URL at which GitLab and browsers reach mrgate (webhook URL and links are built from it)"},
    {"secret-key-file", "MRGATE_SECRET_KEY_FILE", ".mrgate/secret.key", STR(secret_key_file),
     "key that encrypts GitLab tokens at rest; created with mode 0600 when missing"},
    {"web-root", "MRGATE_WEB_ROOT", "web", STR(web_root), "directory of the dashboard's files"},
    {"tls-cert", "MRGATE_TLS_CERT", "", STR(tls_cert),
     "PEM file with certificate and key: serve HTTPS (session cookies become Secure)"},
    {"admin-password", "MRGATE_ADMIN_PASSWORD", "", STR(admin_password),
     "on first start with no user, create user 'admin' with this password"},
    {"log-format", "MRGATE_LOG_FORMAT", "json", STR(log_format), "json or text"},
    {"log-level", "MRGATE_LOG_LEVEL", "info", STR(log_level), "debug, info, warn or error"},
    {"http-threads", "MRGATE_HTTP_THREADS", "32", INT(http_threads, 2, 1024), "HTTP worker threads"},
    {"workers", "MRGATE_WORKERS", "8", INT(workers, 1, 256),
     "job worker threads (at least twice MRGATE_GITLAB_CONCURRENCY are started)"},
    {"db-pool", "MRGATE_DB_POOL", "16", INT(db_pool, 2, 1000), "maximum database connections"},
    {"job-lease-ms", "MRGATE_JOB_LEASE_MS", "60000", INT(job_lease_ms, 1000, 3600000),
     "milliseconds a job item or gate run is leased to a worker; those of a dead instance are taken over after it"},
    {"gitlab-concurrency", "MRGATE_GITLAB_CONCURRENCY", "8", INT(gitlab_concurrency, 1, 256),
     "GitLab requests in flight at once, across all workers"},
    {"gitlab-rate-limit", "MRGATE_GITLAB_RATE_LIMIT", "2000", INT(gitlab_rate_limit, 0, 1000000),
     "GitLab requests per minute (0: no client-side limit; GitLab's RateLimit-* headers still apply)"},
    {"resync-interval", "MRGATE_RESYNC_INTERVAL", "900", INT(resync_interval, 10, 604800),
     "seconds between scheduled resyncs of the group"},
    {"gitlab-timeout", "MRGATE_GITLAB_TIMEOUT", "60", INT(gitlab_timeout, 1, 3600),
     "seconds allowed for one GitLab request"},
    {"gitlab-retries", "MRGATE_GITLAB_RETRIES", "4", INT(gitlab_retries, 0, 20),
     "retries of a GitLab request that failed with 5xx, a reset or a timeout"},
    {"gitlab-backoff-ms", "MRGATE_GITLAB_BACKOFF_MS", "500", INT(gitlab_backoff_ms, 1, 600000),
     "first delay before retrying a GitLab request (doubles each time, with jitter)"},
    {"max-body-bytes", "MRGATE_MAX_BODY_BYTES", "1048576", SIZE(max_body_bytes, 1024, 1073741824),
     "largest API request body accepted"},
    {"max-hook-bytes", "MRGATE_MAX_HOOK_BYTES", "26214400", SIZE(max_hook_bytes, 1024, 1073741824),
     "largest webhook body accepted (GitLab sends at most 25 MB)"},
    {"gate-workers", "MRGATE_GATE_WORKERS", "4", INT(gate_workers, 1, 256),
     "merge-request gate worker threads (scans running at once in this instance)"},
    {"gate-timeout", "MRGATE_GATE_TIMEOUT", "300", INT(gate_timeout, 5, 86400),
     "seconds a gate run may take; then it posts failed, or success with \"timed out\" when fail mode is open"},
    {"gate-tree-max-bytes", "MRGATE_GATE_TREE_MAX_BYTES", "268435456", SIZE(gate_tree_max_bytes, 1024, 68719476736LL),
     "largest unpacked MR head tree (repository archive) handed to external scanners"},
    {"repo-list-cache-mb", "MRGATE_REPO_LIST_CACHE_MB", "8", INT(repo_list_cache_mb, 0, 1024),
     "MiB of repo list pages kept with the database snapshot they were read in (0: off)"},
    {"gitlab-url-allow", "MRGATE_GITLAB_URL_ALLOW", "", STR(gitlab_url_allow),
     "comma-separated hosts (host or host:port) the GitLab URL may name; empty: any host"},
    {"trusted-proxies", "MRGATE_TRUSTED_PROXIES", "", STR(trusted_proxies),
     "comma-separated addresses or CIDR ranges of reverse proxies in front of mrgate: a request from one of them "
     "is from the address its X-Forwarded-For names (login throttling, logs); empty: the header is ignored"},
    {"scanner-sast", "MRGATE_SCANNER_SAST", "", STR(scanner_sast),
     "command printing SARIF for scan type sast; run in the MR head tree, which is also its last argument"},
    {"scanner-dependencies", "MRGATE_SCANNER_DEPENDENCIES", "", STR(scanner_dependencies),
     "command printing SARIF for scan type dependencies (as for sast)"},
    {"scanner-iac", "MRGATE_SCANNER_IAC", "", STR(scanner_iac),
     "command printing SARIF for scan type iac (as for sast)"},
    {"scanner-license", "MRGATE_SCANNER_LICENSE", "", STR(scanner_license),
     "command printing SARIF for scan type license (as for sast)"},
    {"scanner-malware", "MRGATE_SCANNER_MALWARE", "", STR(scanner_malware),
     "command printing SARIF for scan type malware (as for sast)"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static enum core_status set_value(struct config *cfg, const struct setting *s, const char *value, char *err,
                                  size_t errlen)
{
	char *base = (char *)cfg + s->offset;
	if (s->kind == SET_STR) {
		char *copy = xstrdup(value);
		free(*(char **)base);
		*(char **)base = copy;
		return CORE_OK;
	}
	char *end = NULL;
	errno = 0;
	long long v = strtoll(value, &end, 10);
	if (errno || end == value || *end != '\0' || v < s->min || v > s->max) {
		snprintf(err, errlen, "invalid value \"%s\" for %s (--%s): expected an integer from %ld to %ld", value,
		         s->env, s->flag, s->min, s->max);
		return CORE_EINVAL;
	}
	if (s->kind == SET_INT)
		*(int *)base = (int)v;
	else
		*(size_t *)base = (size_t)v;
	return CORE_OK;
}

enum core_status config_load(struct config *cfg, int argc, char **argv, int *rest_out, int *nrest_out, char *err,
                             size_t errlen)
{
	enum core_status st = CORE_OK;
	memset(cfg, 0, sizeof(*cfg));
	*nrest_out = 0;
	for (size_t i = 0; i < NSETTINGS; i++) {
		const char *env = getenv(settings[i].env);
		st = set_value(cfg, &settings[i], settings[i].def, err, errlen);
		if (st == CORE_OK && env && *env)
			st = set_value(cfg, &settings[i], env, err, errlen);
		if (st != CORE_OK)
			return st;
	}
	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a];
		const struct setting *hit = NULL;
		const char *value = NULL;
		if (strncmp(arg, "--", 2) == 0) {
			for (size_t i = 0; i < NSETTINGS && !hit; i++) {
				size_t n = strlen(settings[i].flag);
				if (strncmp(arg + 2, settings[i].flag, n) != 0)
					continue;
				if (arg[2 + n] == '=') {
					hit = &settings[i];
					value = arg + 3 + n;
				} else if (arg[2 + n] == '\0') {
					hit = &settings[i];
					if (a + 1 >= argc) {
						snprintf(err, errlen, "--%s needs a value", hit->flag);
						return CORE_EINVAL;
					}
					value = argv[++a];
				}
			}
		}
		if (!hit) {
			rest_out[(*nrest_out)++] = a;
			continue;
		}
		st = set_value(cfg, hit, value, err, errlen);
		if (st != CORE_OK)
			return st;
	}
	return CORE_OK;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].kind == SET_STR) {
			char **p = (char **)((char *)cfg + settings[i].offset);
			free(*p);
			*p = NULL;
		}
}

void config_print_help(FILE *out)
{
	fprintf(out, "Settings (a flag overrides its environment variable):\n");
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		fprintf(out, "  --%-20s %-27s %s", s->flag, s->env, s->help);
		if (s->def[0] && strcmp(s->flag, "admin-password") != 0)
			fprintf(out, " (default: %s)", s->def);
		fputc('\n', out);
	}
}

/* --- scanners ---------------------------------------------------------------------------------------------------- */

static const char *scanner_command(const struct config *cfg, const char *scan)
{
	if (strcmp(scan, "sast") == 0)
		return cfg->scanner_sast;
	if (strcmp(scan, "dependencies") == 0)
		return cfg->scanner_dependencies;
	if (strcmp(scan, "iac") == 0)
		return cfg->scanner_iac;
	if (strcmp(scan, "license") == 0)
		return cfg->scanner_license;
	if (strcmp(scan, "malware") == 0)
		return cfg->scanner_malware;
	return NULL;
}

bool config_has_scanner(const struct config *cfg, const char *scan)
{
	if (!scan)
		return false;
	if (strcmp(scan, "secrets") == 0)
		return true;
	const char *cmd = scanner_command(cfg, scan);
	return cmd && *cmd;
}

/* The scan types a config may name (gateconfig's "scans"), secrets (built in) first. */
static const char *const scan_types[] = {"secrets", "sast", "dependencies", "iac", "license", "malware"};
#define N_SCAN_TYPES (sizeof(scan_types) / sizeof(scan_types[0]))

struct json_object *config_scanners_json(const struct config *cfg)
{
	static const char *const settings[] = {NULL,
	                                       "MRGATE_SCANNER_SAST",
	                                       "MRGATE_SCANNER_DEPENDENCIES",
	                                       "MRGATE_SCANNER_IAC",
	                                       "MRGATE_SCANNER_LICENSE",
	                                       "MRGATE_SCANNER_MALWARE"};
	struct json_object *o = jx_object(), *items = jx_array();
	_Static_assert(sizeof(settings) / sizeof(settings[0]) == N_SCAN_TYPES, "a setting per scan type");
	for (size_t i = 0; i < N_SCAN_TYPES; i++) {
		struct json_object *e = jx_object();
		json_object_object_add(e, "scan", jx_str(scan_types[i]));
		json_object_object_add(e, "available", jx_bool(config_has_scanner(cfg, scan_types[i])));
		json_object_object_add(e, "builtin", jx_bool(i == 0));
		json_object_object_add(e, "setting", jx_str(settings[i]));
		json_object_array_add(items, e);
	}
	json_object_object_add(o, "items", items);
	return o;
}

int config_missing_scanners(const struct config *cfg, struct json_object *scans, char *buf, size_t cap)
{
	int n = 0;
	size_t len = 0;
	if (cap)
		buf[0] = '\0';
	if (!scans || !json_object_is_type(scans, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(scans); i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(scans, i));
		bool known = false;
		for (size_t k = 0; s && k < N_SCAN_TYPES && !known; k++)
			known = strcmp(s, scan_types[k]) == 0;
		/* a type that does not exist is the config's validation's to refuse, not a scanner to configure */
		if (!known || config_has_scanner(cfg, s))
			continue;
		n++;
		if (len < cap) {
			int w = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", s);
			if (w > 0)
				len += (size_t)w;
		}
	}
	return n;
}
