/*
 * core/connection.c
 *    Token introspection, sealed storage and GitLab clients for the stored connection.
 */
#include "connection.h"

#include "audit.h"
#include "buf.h"
#include "gate_queue.h"
#include "jsonx.h"
#include "log.h"
#include "xalloc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

void connection_info_clear(struct connection_info *ci)
{
	if (!ci)
		return;
	json_object_put(ci->warnings);
	memset(ci, 0, sizeof(*ci));
}

static void warn(struct connection_info *ci, const char *msg)
{
	if (!ci->warnings)
		ci->warnings = jx_array();
	json_object_array_add(ci->warnings, jx_str(msg));
}

/* The token part of the public view: never the secret, only its last four characters. */
static struct json_object *token_json(const struct connection_info *ci)
{
	struct json_object *t = jx_object(), *scopes = jx_array();
	char buf[sizeof(ci->token_scopes)];
	memcpy(buf, ci->token_scopes, sizeof(buf));
	for (char *save = NULL, *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save))
		json_object_array_add(scopes, jx_str(s));
	json_object_object_add(t, "last4", jx_str(ci->token_hint));
	json_object_object_add(t, "name", jx_str(ci->token_name));
	json_object_object_add(t, "kind", jx_str(ci->token_kind));
	json_object_object_add(t, "scopes", scopes);
	json_object_object_add(t, "expires_at", ci->token_expires_at[0] ? jx_str(ci->token_expires_at) : NULL);
	json_object_object_add(t, "status", jx_str(ci->token_status[0] ? ci->token_status : "ok"));
	if (ci->token_problem[0])
		json_object_object_add(t, "problem", jx_str(ci->token_problem));
	if (ci->token_checked_at[0])
		json_object_object_add(t, "checked_at", jx_str(ci->token_checked_at));
	return t;
}

struct json_object *connection_info_json(const struct connection_info *ci)
{
	struct json_object *o = jx_object(), *g = jx_object(), *u = jx_object();
	json_object_object_add(o, "gitlab_url", jx_str(ci->gitlab_url));
	json_object_object_add(g, "id", jx_int(ci->group_id));
	json_object_object_add(g, "full_path", jx_str(ci->group_full_path));
	json_object_object_add(g, "name", jx_str(ci->group_name));
	json_object_object_add(g, "entered_as", jx_str(ci->group_ref));
	json_object_object_add(o, "group", g);
	json_object_object_add(o, "token", token_json(ci));
	json_object_object_add(u, "id", jx_int(ci->user_id));
	json_object_object_add(u, "username", jx_str(ci->username));
	json_object_object_add(u, "bot", jx_bool(ci->user_bot));
	json_object_object_add(o, "user", u);
	json_object_object_add(o, "group_access_level", ci->group_access_level ? jx_int(ci->group_access_level) : NULL);
	json_object_object_add(o, "capability", jx_str(ci->capability));
	const char *explain = strcmp(ci->capability, "gate") == 0
	                          ? "this token can list the group's repositories and gate them"
	                      : strcmp(ci->capability, "read_only") == 0
	                          ? "this token can list repositories but not configure them (read_api scope); "
	                            "use a token with the api scope to gate"
	                          : "this token can neither list nor configure repositories";
	json_object_object_add(o, "capability_explained", jx_str(explain));
	json_object_object_add(o, "warnings", ci->warnings ? json_object_get(ci->warnings) : jx_array());
	json_object_object_add(o, "ca_bundle", jx_bool(ci->has_ca_bundle));
	if (ci->created_at[0])
		json_object_object_add(o, "created_at", jx_str(ci->created_at));
	if (ci->updated_at[0])
		json_object_object_add(o, "updated_at", jx_str(ci->updated_at));
	return o;
}

struct connection_client {
	int refs; /* shared clients only: holders, the cache's own reference included */
	bool shared;
	struct gitlab *gl;
	struct connection_info info;
	char *webhook_secret;
	struct store *db; /* borrowed (the process's pool): where a token refusal is recorded */
	char stamp[80];   /* updated_at of the row the client was made from */
};

void connection_client_free(struct connection_client *cc)
{
	if (!cc)
		return;
	gitlab_free(cc->gl);
	connection_info_clear(&cc->info);
	crypto_free_secret(cc->webhook_secret);
	free(cc);
}

struct gitlab *connection_client_gitlab(struct connection_client *cc)
{
	return cc->gl;
}

const struct connection_info *connection_client_info(struct connection_client *cc)
{
	return &cc->info;
}

const char *connection_client_webhook_secret(struct connection_client *cc)
{
	return cc->webhook_secret;
}

/* Open a client for url/token/ca; on failure the reason is in err. */
static enum core_status open_client(const char *url, const char *token, const char *ca_pem,
                                    const struct connection_tuning *tune, struct connection_client *cc, char *err,
                                    size_t errlen)
{
	struct gitlab_opts o;
	memset(&o, 0, sizeof(o));
	o.base_url = url;
	o.token = token;
	o.scrub_also = cc->webhook_secret;                   /* GitLab may echo it in an error: hidden like the token */
	o.ca_bundle_pem = ca_pem && *ca_pem ? ca_pem : NULL; /* in memory: never a file under /tmp */
	o.requests_per_minute = tune ? tune->requests_per_minute : 0;
	o.connect_timeout_ms = tune ? tune->connect_timeout_ms : 0;
	o.total_timeout_ms = tune ? tune->total_timeout_ms : 0;
	o.max_retries = tune ? tune->max_retries : -1;
	o.backoff_base_ms = tune ? tune->backoff_base_ms : 0;
	cc->gl = gitlab_new(&o, err, errlen);
	return cc->gl ? CORE_OK : CORE_EINVAL;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static bool has_scope(const char *scopes, const char *want)
{
	char buf[300];
	snprintf(buf, sizeof(buf), ",%.290s,", scopes);
	char pat[64];
	snprintf(pat, sizeof(pat), ",%s,", want);
	return strstr(buf, pat) != NULL;
}

/* Days from today (UTC) to a YYYY-MM-DD date; false when unparseable. */
static bool days_until(const char *date, long *days_out)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!date || !strptime(date, "%Y-%m-%d", &tm))
		return false;
	time_t then = timegm(&tm);
	*days_out = (long)((then - time(NULL)) / 86400);
	return true;
}

/* The warning of a token that expires within 30 days (the days are counted at every read). */
static void expiry_warning(struct connection_info *ci)
{
	long days;
	if (!ci->token_expires_at[0] || !days_until(ci->token_expires_at, &days) || days > 30)
		return;
	char msg[200];
	snprintf(msg, sizeof(msg), "the token expires on %s (in %ld day%s): rotate it before then",
	         ci->token_expires_at, days, days == 1 ? "" : "s");
	warn(ci, msg);
}

/*
 * Turn the kind of a failed GitLab response into the problem text and the token status; the status to return. Only
 * token verdicts and TLS are told apart: a refused connection, an unknown host, a timeout and a server that answers but
 * is not GitLab's API all read the same, in mrgate's words, and nothing of the upstream body is echoed, so that the
 * connection check cannot serve as a port scanner or a proxy for reading internal pages.
 */
static enum core_status describe_kind(struct connection_info *out, enum gitlab_error kind, const char *what)
{
	switch (kind) {
	case GITLAB_ERR_TOKEN_EXPIRED:
		copy_str(out->token_status, sizeof(out->token_status), "expired");
		snprintf(out->token_problem, sizeof(out->token_problem),
		         "the token is expired: create a new token and update the connection");
		break;
	case GITLAB_ERR_TOKEN_REVOKED:
		copy_str(out->token_status, sizeof(out->token_status), "revoked");
		snprintf(out->token_problem, sizeof(out->token_problem),
		         "the token was revoked: create a new token and update the connection");
		break;
	case GITLAB_ERR_TOKEN_INVALID:
		copy_str(out->token_status, sizeof(out->token_status), "invalid");
		snprintf(
		    out->token_problem, sizeof(out->token_problem),
		    "GitLab does not accept this token: check that it was copied whole and belongs to this GitLab");
		break;
	case GITLAB_ERR_SCOPE:
		snprintf(out->token_problem, sizeof(out->token_problem),
		         "the token's scopes do not allow it to %s: create one with the api scope", what);
		return CORE_EFORBIDDEN;
	case GITLAB_ERR_FORBIDDEN:
		snprintf(out->token_problem, sizeof(out->token_problem),
		         "the token's user is not allowed to %s: it needs Maintainer or Owner on the group (api scope)",
		         what);
		return CORE_EFORBIDDEN;
	case GITLAB_ERR_TLS:
		snprintf(out->token_problem, sizeof(out->token_problem),
		         "could not connect to GitLab at %.300s over TLS: its certificate could not be verified (for a "
		         "private CA, give ca_bundle)",
		         out->gitlab_url);
		return CORE_EUPSTREAM;
	default:
		snprintf(
		    out->token_problem, sizeof(out->token_problem),
		    "could not connect to a GitLab API at %.300s: check the URL (the GitLab instance's address, such "
		    "as https://gitlab.example.com) and that mrgate can reach it",
		    out->gitlab_url);
		return CORE_EUNAVAIL;
	}
	return CORE_EUNAUTH;
}

/* The same for a failed response, logged. */
static enum core_status describe_failure(struct connection_info *out, const struct gitlab_response *resp,
                                         const char *what)
{
	enum gitlab_error kind = resp ? resp->kind : GITLAB_ERR_INTERNAL;
	enum core_status st = describe_kind(out, kind, what);
	/* the problem in the words the user reads (a refused token is not "could not reach GitLab") */
	log_info("connection check at %s (%s): %s", out->gitlab_url, gitlab_error_name(kind), out->token_problem);
	return st;
}

/* The authority of an http(s) URL ("host[:port]"), lower-cased into host (without the port) and authority. */
static bool url_authority(const char *url, char *authority, size_t acap, char *host, size_t hcap)
{
	const char *p = strstr(url, "://");
	if (!p)
		return false;
	p += 3;
	size_t n = strcspn(p, "/?#");
	if (n == 0 || n >= acap || n >= hcap)
		return false;
	for (size_t i = 0; i < n; i++)
		authority[i] = (char)tolower((unsigned char)p[i]);
	authority[n] = '\0';
	memcpy(host, authority, n + 1);
	char *colon = host[0] == '[' ? strchr(host, ']') : host;
	colon = colon ? strrchr(colon, ':') : NULL;
	if (colon)
		*colon = '\0';
	return host[0] != '\0';
}

/* Is the URL's host (or host:port) one of the comma-separated allowed entries? Empty list: any. */
static bool host_allowed(const char *allow, const char *authority, const char *host)
{
	if (!allow || !*allow)
		return true;
	const char *p = allow;
	while (*p) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		size_t n = strcspn(p, ", \t");
		if (n > 0 && ((strlen(host) == n && strncasecmp(p, host, n) == 0) ||
		              (strlen(authority) == n && strncasecmp(p, authority, n) == 0)))
			return true;
		p += n;
	}
	return false;
}

/* out->token_problem from a printf format; returns st (for `return problem(out, CORE_EINVAL, "...")`). */
__attribute__((format(printf, 3, 4))) static enum core_status problem(struct connection_info *out, enum core_status st,
                                                                      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->token_problem, sizeof(out->token_problem), fmt, ap);
	va_end(ap);
	return st;
}

/* Copy an identifier (a URL, a path, a name GitLab matches on) into a fixed field: false instead of cutting it. */
static bool copy_id(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src ? src : "");
	if (n >= cap)
		return false;
	memcpy(dst, src ? src : "", n + 1);
	return true;
}

/* The input's shape, before GitLab is asked anything. CORE_EINVAL with out->token_problem. */
static enum core_status check_input(const struct connection_input *in, struct connection_info *out)
{
	char authority[300], host[300];
	if (!in->gitlab_url ||
	    (strncmp(in->gitlab_url, "https://", 8) != 0 && strncmp(in->gitlab_url, "http://", 7) != 0))
		return problem(out, CORE_EINVAL,
		               "gitlab_url must be an http:// or https:// URL, such as https://gitlab.com");
	if (!url_authority(in->gitlab_url, authority, sizeof(authority), host, sizeof(host)))
		return problem(out, CORE_EINVAL, "gitlab_url must name a host, such as https://gitlab.com");
	if (strchr(authority, '@'))
		return problem(out, CORE_EINVAL,
		               "gitlab_url must not contain a user name or password: the token is the credential");
	if (!host_allowed(in->allow_hosts, authority, host))
		return problem(out, CORE_EINVAL, "gitlab_url's host %.200s is not one of MRGATE_GITLAB_URL_ALLOW",
		               authority);
	if (!copy_id(out->gitlab_url, sizeof(out->gitlab_url), in->gitlab_url))
		return problem(out, CORE_EINVAL, "gitlab_url must be at most %zu characters",
		               sizeof(out->gitlab_url) - 1);
	if (!in->group || !*in->group || strlen(in->group) > 400)
		return problem(out, CORE_EINVAL,
		               "group must be a group's numeric id or full path, such as acme/platform");
	if (!in->token || strlen(in->token) < 8 || strlen(in->token) > 512)
		return problem(out, CORE_EINVAL, "token must be a GitLab access token");
	if (in->ca_bundle && *in->ca_bundle && !strstr(in->ca_bundle, "-----BEGIN CERTIFICATE-----"))
		return problem(out, CORE_EINVAL, "ca_bundle must be PEM text containing -----BEGIN CERTIFICATE-----");
	size_t ul = strlen(out->gitlab_url);
	while (ul > 0 && out->gitlab_url[ul - 1] == '/')
		out->gitlab_url[--ul] = '\0';
	copy_id(out->group_ref, sizeof(out->group_ref), in->group); /* fits: at most 400 */
	out->has_ca_bundle = in->ca_bundle && *in->ca_bundle;
	char *hint = crypto_token_hint(in->token);
	copy_str(out->token_hint, sizeof(out->token_hint), hint);
	free(hint);
	copy_str(out->token_status, sizeof(out->token_status), "ok");
	copy_str(out->token_kind, sizeof(out->token_kind), "unknown");
	return CORE_OK;
}

/* The token's scopes, comma separated; a scope that would not fit whole is left out (none is ever cut). */
static void scopes_join(const struct json_object *scopes, char *dst, size_t cap)
{
	size_t len = 0, n = json_object_array_length(scopes);
	dst[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *s = NULL;
		if (!jsonx_as_str(json_object_array_get_idx(scopes, i), &s) || len + strlen(s) + 2 > cap)
			continue;
		len += (size_t)snprintf(dst + len, cap - len, "%s%s", len ? "," : "", s);
	}
}

/* 1. What the token is: scopes, expiry. Older GitLab (< 15.5) or OAuth tokens cannot say; go on. */
static enum core_status token_self(struct gitlab *gl, struct connection_info *out)
{
	struct gitlab_response *resp = NULL;
	enum core_status st = gitlab_request(gl, "GET", "/personal_access_tokens/self", NULL, &resp);
	if (st == CORE_OK) {
		const char *name = NULL, *exp = NULL;
		struct json_object *scopes = NULL;
		bool revoked = false, active = true;
		jsonx_str(resp->json, "name", &name);
		copy_str(out->token_name, sizeof(out->token_name), name);
		if (jsonx_str(resp->json, "expires_at", &exp))
			copy_str(out->token_expires_at, sizeof(out->token_expires_at), exp);
		if (jsonx_array(resp->json, "scopes", &scopes))
			scopes_join(scopes, out->token_scopes, sizeof(out->token_scopes));
		jsonx_bool(resp->json, "revoked", &revoked);
		jsonx_bool(resp->json, "active", &active);
		if (revoked || !active) {
			copy_str(out->token_status, sizeof(out->token_status), revoked ? "revoked" : "expired");
			st = problem(out, CORE_EUNAUTH, "the token is %s: create a new token and update the connection",
			             revoked ? "revoked" : "no longer active");
		}
	} else if (st == CORE_EUNAUTH || st == CORE_EUNAVAIL || st == CORE_ETIMEOUT || st == CORE_ETHROTTLED) {
		st = describe_failure(out, resp, "reach GitLab");
	} else {
		warn(out, "GitLab could not describe this token (GitLab before 15.5, or not a personal/group access "
		          "token), so its scopes and expiry are unknown");
		copy_str(out->token_scopes, sizeof(out->token_scopes), "unknown");
		st = CORE_OK;
	}
	gitlab_response_free(resp);
	return st;
}

/* GET /user answered 404: this URL is not the instance's API (often a group's page under it). */
static enum core_status user_not_found(struct connection_info *out)
{
	const char *scheme_end = strstr(out->gitlab_url, "://");
	const char *host_end = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
	if (!host_end) {
		/* A bare host that is not GitLab's API answers as an unreachable one does: the answer must not tell an
		 * open port from a closed one (PUT /api/connection is not a port scanner). */
		return describe_failure(out, NULL, "read the token's user");
	}
	int host_len = (int)(host_end - out->gitlab_url);
	return problem(
	    out, CORE_EINVAL,
	    "there is no GitLab API under %.150s (it answered 404 to GET /api/v4/user): enter the address of "
	    "the GitLab instance, %.*s, and the group in the Group field",
	    out->gitlab_url, host_len > 150 ? 150 : host_len, out->gitlab_url);
}

/* 2. Who it acts as; *admin_out: GET /user shows is_admin to administrators only. */
static enum core_status token_user(struct gitlab *gl, struct connection_info *out, bool *admin_out)
{
	struct gitlab_response *resp = NULL;
	const char *username = NULL;
	enum core_status st = gitlab_request(gl, "GET", "/user", NULL, &resp);
	if (st == CORE_ENOTFOUND)
		st = user_not_found(out);
	else if (st != CORE_OK)
		st = describe_failure(out, resp, "read the token's user");
	if (st != CORE_OK)
		goto out;
	jsonx_int64(resp->json, "id", &out->user_id);
	jsonx_str(resp->json, "username", &username);
	jsonx_bool(resp->json, "bot", &out->user_bot);
	jsonx_bool(resp->json, "is_admin", admin_out);
	if (!copy_id(out->username, sizeof(out->username), username)) {
		st = problem(out, CORE_EUPSTREAM, "GitLab's user name for the token is longer than %zu characters",
		             sizeof(out->username) - 1);
		goto out;
	}
	const char *kind = "personal";
	if (out->user_bot && username && strncmp(username, "group_", 6) == 0)
		kind = "group_access";
	else if (out->user_bot && username && strncmp(username, "project_", 8) == 0)
		kind = "project_access";
	else if (out->user_bot)
		kind = "service_account";
	copy_str(out->token_kind, sizeof(out->token_kind), kind);
out:
	gitlab_response_free(resp);
	return st;
}

/* 3. The group: by id or URL-encoded full path. */
static enum core_status token_group(struct gitlab *gl, const char *group, struct connection_info *out)
{
	struct gitlab_response *resp = NULL;
	struct buf path = {0};
	char *enc = NULL;
	const char *full_path = NULL, *gname = NULL;
	enum core_status st = gitlab_url_encode_path(group, &enc);
	if (st != CORE_OK)
		return st;
	buf_printf(&path, "/groups/%s?with_projects=false", enc);
	free(enc);
	st = gitlab_request(gl, "GET", buf_str(&path), NULL, &resp);
	buf_free(&path);
	if (st == CORE_ENOTFOUND)
		st = problem(out, st, "group \"%s\" was not found, or this token cannot see it", group);
	else if (st != CORE_OK)
		st = describe_failure(out, resp, "read the group");
	else if (!jsonx_int64(resp->json, "id", &out->group_id) || !jsonx_str(resp->json, "full_path", &full_path))
		st = problem(
		    out, CORE_EUNAVAIL,
		    "could not connect to a GitLab API at %.300s: check the URL (the GitLab instance's address, "
		    "such as https://gitlab.example.com) and that mrgate can reach it",
		    out->gitlab_url);
	else if (!copy_id(out->group_full_path, sizeof(out->group_full_path), full_path))
		st = problem(out, CORE_EINVAL, "the group's full path is longer than %zu characters",
		             sizeof(out->group_full_path) - 1);
	if (st == CORE_OK) {
		jsonx_str(resp->json, "name", &gname);
		copy_str(out->group_name, sizeof(out->group_name), gname ? gname : full_path);
	}
	gitlab_response_free(resp);
	return st;
}

/* 4. The user's role on the group (inherited memberships included); 0 when GitLab does not say. */
static int token_role(struct gitlab *gl, const struct connection_info *out)
{
	struct gitlab_response *resp = NULL;
	struct buf path = {0};
	int64_t level = 0;
	buf_printf(&path, "/groups/%lld/members/all/%lld", (long long)out->group_id, (long long)out->user_id);
	if (gitlab_request(gl, "GET", buf_str(&path), NULL, &resp) != CORE_OK ||
	    !jsonx_int64(resp->json, "access_level", &level))
		level = 0;
	buf_free(&path);
	gitlab_response_free(resp);
	return (int)level;
}

/* What the token can do, and the warnings about it; CORE_EFORBIDDEN when it can do nothing. */
static enum core_status token_capability(struct connection_info *out, bool admin_not_member)
{
	if (has_scope(out->token_scopes, "api") || strcmp(out->token_scopes, "unknown") == 0)
		copy_str(out->capability, sizeof(out->capability), "gate");
	else if (has_scope(out->token_scopes, "read_api"))
		copy_str(out->capability, sizeof(out->capability), "read_only");
	else
		copy_str(out->capability, sizeof(out->capability), "insufficient");
	if (strcmp(out->capability, "read_only") == 0)
		warn(out, "the token has the read_api scope only: repositories can be listed but not gated; use a "
		          "token with the api scope to gate them");
	expiry_warning(out);
	if (admin_not_member)
		warn(out, "the token's user is a GitLab administrator and not a member of the group: it acts with an "
		          "administrator's rights on every project of the instance; prefer a group access token or a "
		          "service account that is Maintainer or Owner of the group");
	else if (out->group_access_level == 0)
		warn(out, "the token's user is not a member of the group: it can only change projects it is a "
		          "member of, as Maintainer");
	else if (out->group_access_level < 40)
		warn(out, "the token's user is below Maintainer on the group: webhooks and merge settings cannot be "
		          "changed where it is not Maintainer");
	if (!out->user_bot)
		warn(out, "the token belongs to a person: when they leave, gating stops; prefer a group access token "
		          "or a service account");
	if (strcmp(out->capability, "insufficient") == 0)
		return problem(
		    out, CORE_EFORBIDDEN,
		    "the token has neither the api nor the read_api scope (it has: %s): create one with the api "
		    "scope",
		    out->token_scopes[0] ? out->token_scopes : "none");
	return CORE_OK;
}

enum core_status connection_check(const struct connection_input *in, const struct connection_tuning *tune,
                                  struct connection_info *out)
{
	struct connection_client cc;
	char err[512];
	bool user_admin = false;
	memset(&cc, 0, sizeof(cc));
	connection_info_clear(out);
	out->warnings = jx_array();
	enum core_status st = check_input(in, out);
	if (st != CORE_OK)
		return st;
	st = open_client(out->gitlab_url, in->token, in->ca_bundle, tune, &cc, err, sizeof(err));
	if (st != CORE_OK)
		return problem(out, st, "%s", err);
	st = token_self(cc.gl, out);
	if (st == CORE_OK)
		st = token_user(cc.gl, out, &user_admin);
	if (st == CORE_OK)
		st = token_group(cc.gl, in->group, out);
	if (st == CORE_OK) {
		out->group_access_level = token_role(cc.gl, out);
		/* An administrator who is not a member gets 404 there, yet may change every project and group: Owner
		 * in effect */
		bool admin_not_member = user_admin && out->group_access_level == 0;
		if (admin_not_member)
			out->group_access_level = 50;
		st = token_capability(out, admin_not_member);
	}
	gitlab_free(cc.gl);
	return st;
}

/*
 * Whether mrgate is still working on the connected group: a sync (its listing, then its follow-up) or a job other
 * than a preview. Their GitLab calls go on with the token and group they started with, so the connection may not
 * go to another group (or GitLab), or away, until they end: CORE_ECONFLICT with err saying what runs and what to
 * wait for ("doing" names the refused change, "connect another group"); CORE_OK when nothing runs. A dry run only
 * reads and is not counted. A sync counts from its start until its summary is written (its listing is done before
 * its follow-up marks repos and starts their apply job, core/resync.h); a run with no heartbeat for 2 minutes, or
 * done 2 minutes ago without a summary, is not counted: its instance stopped. In c's transaction, the connection
 * row locked (or none).
 */
static enum core_status refuse_while_busy(struct store_conn *c, const char *path, const char *doing, char *err,
                                          size_t errlen)
{
	PGresult *r = NULL;
	enum core_status st = store_run(
	    c,
	    "SELECT (SELECT id FROM sync_runs WHERE state = 'running' AND heartbeat >= now() - interval '2 minutes'"
	    "        ORDER BY id LIMIT 1) AS sync_id,"
	    " (SELECT id FROM sync_runs WHERE state = 'done' AND summary IS NULL"
	    "        AND finished_at >= now() - interval '2 minutes' ORDER BY id DESC LIMIT 1) AS ending_id,"
	    " j.id AS job_id, j.created_by = 'system (resync)' AS follow_up,"
	    " (SELECT count(*) FROM jobs WHERE state IN ('queued', 'running') AND kind <> 'dryrun') AS jobs"
	    " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT id, created_by FROM jobs"
	    "  WHERE state IN ('queued', 'running') AND kind <> 'dryrun' ORDER BY id LIMIT 1) j ON true",
	    NULL, &r);
	if (st != CORE_OK)
		return st;
	int64_t sync_id = store_i64(r, 0, "sync_id", 0), ending_id = store_i64(r, 0, "ending_id", 0),
	        job_id = store_i64(r, 0, "job_id", 0), jobs = store_i64(r, 0, "jobs", 0);
	bool follow_up = store_bool(r, 0, "follow_up", false);
	PQclear(r);
	if (sync_id)
		snprintf(err, errlen,
		         "a sync of %s is running (run %lld, on the Connection page): %s once it has finished; a new "
		         "token for the same group is taken at any time",
		         path, (long long)sync_id, doing);
	else if (job_id && follow_up)
		snprintf(err, errlen,
		         "the last sync of %s is applying what it found (job %lld, on the Jobs page, where it can be "
		         "canceled): %s once it has finished; a new token for the same group is taken at any time",
		         path, (long long)job_id, doing);
	else if (job_id)
		snprintf(err, errlen,
		         "%lld %s working on the repositories of %s (job %lld%s, on the Jobs page, where %s can be "
		         "canceled): %s once %s finished; a new token for the same group is taken at any time",
		         (long long)jobs, jobs == 1 ? "job is" : "jobs are", path, (long long)job_id,
		         jobs > 1 ? " first" : "", jobs == 1 ? "it" : "they", doing,
		         jobs == 1 ? "it has" : "they have");
	else if (ending_id)
		snprintf(err, errlen, "the last sync of %s (run %lld) is finishing: %s in a moment", path,
		         (long long)ending_id, doing);
	else
		return CORE_OK;
	return CORE_ECONFLICT;
}

enum core_status connection_put(struct store *db, const unsigned char key[CRYPTO_KEY_BYTES],
                                const struct connection_input *in, const struct connection_tuning *tune,
                                const char *actor, struct connection_info *out)
{
	enum core_status st = connection_check(in, tune, out);
	if (st != CORE_OK)
		return st;
	char *sealed = NULL, *secret = NULL, *secret_sealed = NULL;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	struct json_object *before = NULL, *after = NULL;
	st = crypto_seal(key, in->token, &sealed);
	if (st != CORE_OK)
		goto out;
	secret = crypto_random_token("mrgwh_");
	if (!secret || crypto_seal(key, secret, &secret_sealed) != CORE_OK) {
		st = CORE_ENOMEM;
		goto out;
	}
	st = store_get_begin(db, &c);
	if (st != CORE_OK)
		goto out;
	/* before: the public view of what was there, for the audit log */
	struct connection_info old;
	memset(&old, 0, sizeof(old));
	st = store_run(
	    c, "SELECT gitlab_url, group_id, group_full_path, token_hint, capability FROM connection FOR UPDATE", NULL,
	    &r);
	if (st != CORE_OK)
		goto out;
	/* another group or GitLab, or a first connection (after a disconnect, a sync or job may still end) */
	bool same_group = PQntuples(r) > 0 && strcmp(store_str(r, 0, "gitlab_url"), out->gitlab_url) == 0 &&
	                  store_i64(r, 0, "group_id", 0) == out->group_id;
	if (!same_group) {
		st = refuse_while_busy(c,
		                       PQntuples(r) ? store_str(r, 0, "group_full_path") : "the group connected before",
		                       "connect another group", out->token_problem, sizeof(out->token_problem));
		if (st != CORE_OK)
			goto out;
	}
	if (PQntuples(r) > 0) {
		before = jx_object();
		json_object_object_add(before, "gitlab_url", jx_str(store_str(r, 0, "gitlab_url")));
		json_object_object_add(before, "group", jx_str(store_str(r, 0, "group_full_path")));
		json_object_object_add(before, "token_last4", jx_str(store_str(r, 0, "token_hint")));
		json_object_object_add(before, "capability", jx_str(store_str(r, 0, "capability")));
	}
	PQclear(r);
	r = NULL;
	struct store_params p = {0};
	struct buf scopes = {0};
	buf_printf(&scopes, "{%s}", strcmp(out->token_scopes, "unknown") == 0 ? "" : out->token_scopes);
	store_param_str(&p, out->gitlab_url);
	store_param_str(&p, out->group_ref);
	store_param_i64(&p, out->group_id);
	store_param_str(&p, out->group_full_path);
	store_param_str(&p, out->group_name);
	store_param_str(&p, sealed);
	store_param_str(&p, out->token_hint);
	store_param_str(&p, out->token_name);
	store_param_str(&p, buf_str(&scopes));
	store_param_str(&p, out->token_expires_at[0] ? out->token_expires_at : NULL);
	store_param_str(&p, out->token_kind);
	store_param_i64(&p, out->user_id);
	store_param_str(&p, out->username);
	store_param_bool(&p, out->user_bot);
	store_param_i64_or_null(&p, out->group_access_level);
	store_param_str(&p, out->capability);
	store_param_str(&p, json_object_to_json_string_ext(out->warnings, JSON_C_TO_STRING_PLAIN));
	store_param_str(&p, in->ca_bundle && *in->ca_bundle ? in->ca_bundle : NULL);
	store_param_str(&p, secret_sealed);
	st = store_run(c,
	               "INSERT INTO connection (id, gitlab_url, group_ref, group_id, group_full_path, group_name,"
	               " token_sealed, token_hint, token_name, token_scopes, token_expires_at, token_kind,"
	               " gitlab_user_id, gitlab_username, gitlab_user_bot, group_access_level, capability, warnings,"
	               " ca_bundle, webhook_secret_sealed, token_status, token_problem, token_checked_at)"
	               " VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9::text[], $10::date, $11, $12, $13, $14, $15,"
	               " $16, $17::jsonb, $18, $19, 'ok', NULL, now())"
	               " ON CONFLICT (id) DO UPDATE SET gitlab_url = $1, group_ref = $2, group_id = $3,"
	               " group_full_path = $4, group_name = $5, token_sealed = $6, token_hint = $7, token_name = $8,"
	               " token_scopes = $9::text[], token_expires_at = $10::date, token_kind = $11,"
	               " gitlab_user_id = $12, gitlab_username = $13, gitlab_user_bot = $14,"
	               " group_access_level = $15, capability = $16, warnings = $17::jsonb, ca_bundle = $18,"
	               " token_status = 'ok', token_problem = NULL, token_checked_at = now(), updated_at = now()",
	               &p, NULL);
	buf_free(&scopes);
	if (st != CORE_OK)
		goto out;
	after = jx_object();
	json_object_object_add(after, "gitlab_url", jx_str(out->gitlab_url));
	json_object_object_add(after, "group", jx_str(out->group_full_path));
	json_object_object_add(after, "token_last4", jx_str(out->token_hint));
	json_object_object_add(after, "capability", jx_str(out->capability));
	st = audit_write(c, actor, before ? "connection.update" : "connection.create", out->group_full_path, before,
	                 after, NULL);
	/* a new token for the same group: the merge requests that got no verdict from the old one are gated now */
	int requeued = 0;
	if (st == CORE_OK && same_group)
		st = gate_queue_retry_unposted(c, &requeued);
	if (st == CORE_OK)
		st = store_commit(c);
	if (st == CORE_OK && requeued > 0) {
		log_info("the new token: %d merge request%s that got no gate verdict %s gated again", requeued,
		         requeued == 1 ? "" : "s", requeued == 1 ? "is" : "are");
		gate_queue_announce(c);
	}
	if (st == CORE_OK) {
		/* returned before connection_get borrows one: a thread never holds a connection while it waits for
		 * another (with every connection of the pool so held, each would wait for the others) */
		store_put(db, c);
		c = NULL;
		st = connection_get(db, out);
	}
out:
	if (c)
		store_rollback(c);
	store_put(db, c);
	PQclear(r);
	json_object_put(before);
	json_object_put(after);
	free(sealed);
	free(secret_sealed);
	crypto_free_secret(secret);
	return st;
}

static void fill_from_row(struct connection_info *ci, const PGresult *r)
{
	connection_info_clear(ci);
	copy_str(ci->gitlab_url, sizeof(ci->gitlab_url), store_str(r, 0, "gitlab_url"));
	copy_str(ci->group_ref, sizeof(ci->group_ref), store_str(r, 0, "group_ref"));
	ci->group_id = store_i64(r, 0, "group_id", 0);
	copy_str(ci->group_full_path, sizeof(ci->group_full_path), store_str(r, 0, "group_full_path"));
	copy_str(ci->group_name, sizeof(ci->group_name), store_str(r, 0, "group_name"));
	copy_str(ci->token_hint, sizeof(ci->token_hint), store_str(r, 0, "token_hint"));
	copy_str(ci->token_name, sizeof(ci->token_name), store_str(r, 0, "token_name"));
	copy_str(ci->token_scopes, sizeof(ci->token_scopes), store_str(r, 0, "scopes"));
	copy_str(ci->token_expires_at, sizeof(ci->token_expires_at), store_str(r, 0, "token_expires_at"));
	copy_str(ci->token_kind, sizeof(ci->token_kind), store_str(r, 0, "token_kind"));
	ci->user_id = store_i64(r, 0, "gitlab_user_id", 0);
	copy_str(ci->username, sizeof(ci->username), store_str(r, 0, "gitlab_username"));
	ci->user_bot = store_bool(r, 0, "gitlab_user_bot", false);
	ci->group_access_level = (int)store_i64(r, 0, "group_access_level", 0);
	copy_str(ci->capability, sizeof(ci->capability), store_str(r, 0, "capability"));
	copy_str(ci->token_status, sizeof(ci->token_status), store_str(r, 0, "token_status"));
	copy_str(ci->token_problem, sizeof(ci->token_problem), store_str(r, 0, "token_problem"));
	ci->has_ca_bundle = store_str(r, 0, "ca_bundle") != NULL;
	copy_str(ci->created_at, sizeof(ci->created_at), store_str(r, 0, "created"));
	copy_str(ci->updated_at, sizeof(ci->updated_at), store_str(r, 0, "updated"));
	copy_str(ci->token_checked_at, sizeof(ci->token_checked_at), store_str(r, 0, "checked"));
	const char *w = store_str(r, 0, "warnings");
	struct json_object *arr = NULL;
	if (w && jsonx_parse(w, strlen(w), &arr) == CORE_OK && json_object_is_type(arr, json_type_array))
		ci->warnings = arr;
	else {
		json_object_put(arr);
		ci->warnings = jx_array();
	}
	/* Expiry warnings age: recompute the days left at every read. */
	bool have = false;
	for (size_t i = 0; i < json_object_array_length(ci->warnings); i++)
		have |= strstr(json_object_get_string(json_object_array_get_idx(ci->warnings, i)), "expires") != NULL;
	if (!have && strcmp(ci->token_status, "ok") == 0)
		expiry_warning(ci);
}

#define CONNECTION_COLUMNS                                                                                             \
	"gitlab_url, group_ref, group_id, group_full_path, group_name, token_hint, token_name,"                        \
	" array_to_string(token_scopes, ',') AS scopes, to_char(token_expires_at, 'YYYY-MM-DD') AS token_expires_at,"  \
	" token_kind, gitlab_user_id, gitlab_username, gitlab_user_bot, group_access_level, capability, warnings,"     \
	" ca_bundle, token_status, token_problem,"                                                                     \
	" " STORE_TS("created_at") " AS created, " STORE_TS("updated_at") " AS updated,"                               \
	                                                                  " " STORE_TS(                                \
	                                                                      "token_checked_at") " AS checked"

enum core_status connection_get(struct store *db, struct connection_info *out)
{
	PGresult *r = NULL;
	enum core_status st = store_run1(db, "SELECT " CONNECTION_COLUMNS " FROM connection", NULL, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK)
		fill_from_row(out, r);
	PQclear(r);
	return st;
}

enum core_status connection_delete(struct store *db, const char *actor, char *err, size_t errlen)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = store_get_begin(db, &c);
	if (st != CORE_OK)
		return st;
	st = store_run(c, "SELECT group_full_path FROM connection FOR UPDATE", NULL, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK)
		st = refuse_while_busy(c, store_str(r, 0, "group_full_path"), "disconnect", err, errlen);
	PQclear(r);
	r = NULL;
	if (st == CORE_OK)
		st = store_run(c, "DELETE FROM connection RETURNING group_full_path, token_hint", NULL, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK) {
		struct json_object *before = jx_object();
		json_object_object_add(before, "group", jx_str(store_str(r, 0, "group_full_path")));
		json_object_object_add(before, "token_last4", jx_str(store_str(r, 0, "token_hint")));
		st = audit_write(c, actor, "connection.delete", store_str(r, 0, "group_full_path"), before, NULL, NULL);
		json_object_put(before);
	}
	if (st == CORE_OK)
		st = store_commit(c);
	PQclear(r);
	store_put(db, c);
	return st;
}

enum core_status connection_set_token_status(struct store *db, const char *status, const char *problem)
{
	struct store_params p = {0};
	store_param_str(&p, status);
	store_param_str(&p, problem);
	return store_run1(db, "UPDATE connection SET token_status = $1, token_problem = $2, token_checked_at = now()",
	                  &p, NULL);
}

enum core_status connection_write_check(struct store *db, const char **code_out, char *err, size_t errlen)
{
	struct connection_info ci;
	memset(&ci, 0, sizeof(ci));
	*code_out = NULL;
	enum core_status st = connection_get(db, &ci);
	if (st == CORE_ENOTFOUND) {
		st = CORE_OK;
		goto out;
	}
	if (st != CORE_OK)
		goto out;
	if (ci.token_status[0] && strcmp(ci.token_status, "ok") != 0) {
		*code_out = "token_not_valid";
		snprintf(err, errlen, "%s",
		         ci.token_problem[0] ? ci.token_problem
		                             : "GitLab refused the token: update it on the Connection page");
		st = CORE_ECONFLICT;
	} else if (strcmp(ci.capability, "gate") != 0) {
		*code_out = "token_read_only";
		snprintf(err, errlen,
		         "the GitLab token is read-only (%s), so mrgate cannot create webhooks or change settings: "
		         "update the connection with a token that has the api scope",
		         ci.token_scopes[0] ? ci.token_scopes : "no api scope");
		st = CORE_ECONFLICT;
	}
out:
	connection_info_clear(&ci);
	return st;
}

/* The first 401 of a client's token: record it on the connection at once (see connection_client()). */
static void on_token_rejected(void *user, enum gitlab_error kind, const char *message)
{
	struct connection_client *cc = user;
	(void)message;
	const char *status = kind == GITLAB_ERR_TOKEN_EXPIRED   ? "expired"
	                     : kind == GITLAB_ERR_TOKEN_REVOKED ? "revoked"
	                                                        : "invalid";
	char problem[300];
	snprintf(problem, sizeof(problem),
	         "%s: GitLab writes are stopped until the token is updated on the Connection page",
	         kind == GITLAB_ERR_TOKEN_EXPIRED   ? "the GitLab token is expired"
	         : kind == GITLAB_ERR_TOKEN_REVOKED ? "the GitLab token was revoked"
	                                            : "GitLab no longer accepts the token");
	/* only while the row still holds this client's token: a token updated meanwhile is not marked */
	struct store_params p = {0};
	store_param_str(&p, status);
	store_param_str(&p, problem);
	store_param_str(&p, cc->stamp);
	enum core_status st = store_run1(cc->db,
	                                 "UPDATE connection SET token_status = $1, token_problem = $2,"
	                                 " token_checked_at = now() WHERE updated_at::text = $3",
	                                 &p, NULL);
	if (st != CORE_OK)
		log_error("could not record that GitLab refused the token (%s)", core_status_code(st));
	else
		log_warn("%s", problem);
}

enum core_status connection_client(struct store *db, const unsigned char key[CRYPTO_KEY_BYTES],
                                   const struct connection_tuning *tune, struct connection_client **out)
{
	*out = NULL;
	struct connection_client *cc = calloc(1, sizeof(*cc));
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	char *token = NULL, err[512];
	if (!cc)
		return CORE_ENOMEM;
	enum core_status st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	st = store_run(c,
	               "SELECT " CONNECTION_COLUMNS ", token_sealed, webhook_secret_sealed, updated_at::text AS stamp"
	               " FROM connection",
	               NULL, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st != CORE_OK)
		goto out;
	fill_from_row(&cc->info, r);
	st = crypto_open(key, store_str(r, 0, "token_sealed"), &token);
	if (st == CORE_OK)
		st = crypto_open(key, store_str(r, 0, "webhook_secret_sealed"), &cc->webhook_secret);
	if (st != CORE_OK) {
		log_error("the secret key does not open the stored GitLab token: was MRGATE_SECRET_KEY_FILE replaced? "
		          "Restore the original key, or enter the token again");
		goto out;
	}
	st = open_client(cc->info.gitlab_url, token, store_str(r, 0, "ca_bundle"), tune, cc, err, sizeof(err));
	if (st != CORE_OK) {
		log_error("could not open a GitLab client: %s", err);
		goto out;
	}
	cc->db = db;
	copy_str(cc->stamp, sizeof(cc->stamp), store_str(r, 0, "stamp"));
	gitlab_on_token_rejected(cc->gl, on_token_rejected, cc);
	if (strcmp(cc->info.token_status, "expired") == 0)
		gitlab_set_token_rejected(cc->gl, GITLAB_ERR_TOKEN_EXPIRED);
	else if (strcmp(cc->info.token_status, "revoked") == 0)
		gitlab_set_token_rejected(cc->gl, GITLAB_ERR_TOKEN_REVOKED);
	else if (strcmp(cc->info.token_status, "invalid") == 0)
		gitlab_set_token_rejected(cc->gl, GITLAB_ERR_TOKEN_INVALID);
out:
	PQclear(r);
	store_put(db, c);
	crypto_free_secret(token);
	if (st != CORE_OK)
		connection_client_free(cc);
	else
		*out = cc;
	return st;
}

/* --- the shared client ------------------------------------------------------------------------------------------ */

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct connection_client *shared; /* the cache's reference */
static char shared_stamp[80];            /* updated_at of the row it was made from */

enum core_status connection_client_shared(struct store *db, const unsigned char key[CRYPTO_KEY_BYTES],
                                          const struct connection_tuning *tune, struct connection_client **out)
{
	*out = NULL;
	PGresult *r = NULL;
	char stamp[80] = "";
	enum core_status st =
	    store_run1(db, STORE_PREPARE "SELECT updated_at::text AS stamp FROM connection", NULL, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK)
		copy_str(stamp, sizeof(stamp), store_str(r, 0, "stamp"));
	PQclear(r);
	if (st != CORE_OK)
		return st;

	pthread_mutex_lock(&shared_lock);
	if (shared && strcmp(stamp, shared_stamp) == 0) {
		shared->refs++;
		*out = shared;
		pthread_mutex_unlock(&shared_lock);
		return CORE_OK;
	}
	pthread_mutex_unlock(&shared_lock);

	struct connection_client *fresh = NULL;
	st = connection_client(db, key, tune, &fresh);
	if (st != CORE_OK)
		return st;
	fresh->shared = true;
	fresh->refs = 2; /* the cache and the caller */
	pthread_mutex_lock(&shared_lock);
	struct connection_client *old = shared;
	shared = fresh;
	copy_str(shared_stamp, sizeof(shared_stamp), stamp);
	pthread_mutex_unlock(&shared_lock);
	connection_client_release(old);
	*out = fresh;
	return CORE_OK;
}

void connection_client_release(struct connection_client *cc)
{
	if (!cc)
		return;
	if (!cc->shared) {
		connection_client_free(cc);
		return;
	}
	pthread_mutex_lock(&shared_lock);
	bool last = --cc->refs == 0;
	pthread_mutex_unlock(&shared_lock);
	if (last)
		connection_client_free(cc);
}

struct connection_client *connection_client_retain(struct connection_client *cc)
{
	if (cc && cc->shared) {
		pthread_mutex_lock(&shared_lock);
		cc->refs++;
		pthread_mutex_unlock(&shared_lock);
	}
	return cc;
}

struct gitlab_metrics *connection_shared_metrics(void)
{
	struct gitlab_metrics *m = NULL;
	pthread_mutex_lock(&shared_lock);
	if (shared && gitlab_metrics_snapshot(shared->gl, &m) != CORE_OK)
		m = NULL;
	pthread_mutex_unlock(&shared_lock);
	return m;
}
