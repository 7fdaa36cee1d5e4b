/*
 * server/cli_config.c
 *    The CLI commands configure, export and import (called from main.c).
 *
 * Design: the same core calls as the API (configure_run, gateconfig_export/import), with the apply run in the
 * foreground (apply_batch at MRGATE_GITLAB_CONCURRENCY) so the command ends when GitLab is in its wanted state.
 */
#include "cli_config.h"

#include "applyjob.h"
#include "buf.h"
#include "cli.h"
#include "configure.h"
#include "connection.h"
#include "dryrun.h"
#include "gateconfig.h"
#include "json_util.h"
#include "jsonx.h"
#include "log.h"
#include "migrate.h"
#include "xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMPORT_MAX_BYTES (64u * 1024u * 1024u)

/* Open the GitLab client and the apply context; 0 on success. */
static int open_gitlab(struct app *app, struct connection_client **cc, char hook_url[APPLYJOB_HOOK_URL_MAX],
                       struct apply_ctx *ctx)
{
	if (cli_open_connection(app, cc, "connect one in the dashboard or with PUT /api/connection") != 0)
		return 1;
	if (applyjob_ctx(&app->apply, *cc, hook_url, ctx) != CORE_OK) {
		fprintf(stderr, "mrgate: MRGATE_PUBLIC_URL is too long to make a hook URL of\n");
		return 1;
	}
	return 0;
}

/* Apply the marked repos now (resend_tokens: every hook gets the secret again) and print the outcome; 0 when none
 * failed. A re-apply's repairs are audited as the API's job audits them. Clears marked. */
static int apply_now(struct app *app, struct gateconfig_marked *marked, bool reapply, bool resend_tokens)
{
	struct connection_client *cc = NULL;
	struct apply_batch_item *items = NULL;
	char hook_url[APPLYJOB_HOOK_URL_MAX];
	struct apply_ctx ctx;
	void *lists_ref = NULL;
	int rc = 1;
	if (marked->n == 0) {
		printf("GitLab is already in the wanted state: nothing to apply\n");
		rc = 0;
		goto out;
	}
	if (open_gitlab(app, &cc, hook_url, &ctx) != 0) {
		apply_abandon(app->db, marked->ids, marked->n, marked->run,
		              "no usable GitLab connection: the apply could not run");
		goto out;
	}
	ctx.run = marked->run;
	ctx.resend_token = resend_tokens; /* --resend-hook-tokens: as the API's job does */
	/* the group's project list and open MRs, read once for the batch as an apply job's items share them (each
	 * repo read its project and its open MRs alone: 5 calls per repo on a first apply instead of 3) */
	ctx.lists = applyjob_lists_open(&app->apply, marked->n, &lists_ref);
	items = xcalloc(marked->n, sizeof(*items));
	for (size_t i = 0; i < marked->n; i++)
		items[i].repo_id = marked->ids[i];
	apply_batch(app->db, connection_client_gitlab(cc), &ctx, items, marked->n, app->cfg.gitlab_concurrency, false);
	/* a repo another apply holds (the server's job, a second command) is applied again once that one is done: its
	 * message said "will be retried", and a walk's two imports left it as the older one wanted */
	for (int attempt = 0; attempt < 30; attempt++) {
		size_t again = 0;
		for (size_t i = 0; i < marked->n; i++)
			if (items[i].status == CORE_OK && items[i].res.outcome == APPLY_ERROR && items[i].res.held)
				again++;
		if (again == 0)
			break;
		struct apply_batch_item *retry = xcalloc(again, sizeof(*retry));
		size_t k = 0;
		for (size_t i = 0; i < marked->n; i++)
			if (items[i].status == CORE_OK && items[i].res.outcome == APPLY_ERROR && items[i].res.held)
				retry[k++].repo_id = items[i].repo_id;
		sleep(1);
		apply_batch(app->db, connection_client_gitlab(cc), &ctx, retry, again, app->cfg.gitlab_concurrency,
		            false);
		k = 0;
		for (size_t i = 0; i < marked->n; i++)
			if (items[i].status == CORE_OK && items[i].res.outcome == APPLY_ERROR && items[i].res.held) {
				apply_result_clear(&items[i].res);
				items[i] = retry[k++];
			}
		free(retry);
	}
	if (reapply && applyjob_audit_repairs(app->db, "cli", marked->run, items, marked->n) != CORE_OK)
		fprintf(stderr, "mrgate: the repairs were made, but their audit entry could not be written\n");
	size_t counts[4] = {0};
	for (size_t i = 0; i < marked->n; i++) {
		enum apply_outcome o = items[i].status == CORE_OK ? items[i].res.outcome : APPLY_ERROR;
		counts[o]++;
		if (o == APPLY_ERROR)
			fprintf(stderr, "repo %lld: %s\n", (long long)items[i].repo_id,
			        items[i].res.message[0] ? items[i].res.message : core_status_code(items[i].status));
		apply_result_clear(&items[i].res);
	}
	printf("applied %zu repos: %zu changed, %zu unchanged, %zu skipped, %zu errors\n", marked->n,
	       counts[APPLY_CHANGED], counts[APPLY_UNCHANGED], counts[APPLY_SKIPPED], counts[APPLY_ERROR]);
	rc = counts[APPLY_ERROR] ? 1 : 0;
out:
	applyjob_lists_put(lists_ref);
	free(items);
	connection_client_free(cc);
	gateconfig_marked_clear(marked);
	return rc;
}

/* A dry run's plan, read from GitLab: one line per repo and the writes it would make; 0 when it could be read. */
static int print_plan(struct app *app, const struct configure_out *out)
{
	struct connection_client *cc = NULL;
	struct apply_batch_item *items = NULL;
	if (cli_open_connection(app, &cc, "connect one in the dashboard or with PUT /api/connection") != 0)
		return 1;
	if (dryrun_read(&app->apply, cc, out, 0, out->n_plan, &items) != CORE_OK) {
		fprintf(stderr, "mrgate: MRGATE_PUBLIC_URL is too long to make a hook URL of\n");
		connection_client_free(cc);
		return 1;
	}
	/* each repo by its path, with what an apply would do there, then what the plan comes to (a walk read "repo
	 * 1017: unchanged {...}" for every repo after "92 would be applied") */
	static const char *const said[] = {[APPLY_UNCHANGED] = "already in the wanted state",
	                                   [APPLY_CHANGED] = "would change",
	                                   [APPLY_SKIPPED] = "skipped",
	                                   [APPLY_ERROR] = "would fail"};
	long writes = 0;
	size_t counts[4] = {0};
	for (size_t i = 0; i < out->n_plan; i++) {
		const struct apply_result *res = &items[i].res;
		enum apply_outcome o = res->outcome <= APPLY_ERROR ? res->outcome : APPLY_ERROR;
		counts[o]++;
		if (out->plan_paths && out->plan_paths[i])
			printf("%s: %s %s\n", out->plan_paths[i], said[o],
			       json_object_to_json_string_ext(res->plan, JSON_C_TO_STRING_PLAIN));
		else
			printf("repo %lld: %s %s\n", (long long)items[i].repo_id, said[o],
			       json_object_to_json_string_ext(res->plan, JSON_C_TO_STRING_PLAIN));
		writes += res->writes;
		if (res->outcome == APPLY_ERROR || (res->outcome == APPLY_CHANGED && res->message[0]))
			printf("  %s\n", res->message);
	}
	printf(
	    "dry run: %zu would change GitLab (%ld write%s), %zu already in the wanted state, %zu skipped, %zu would "
	    "fail\n",
	    counts[APPLY_CHANGED], writes, writes == 1 ? "" : "s", counts[APPLY_UNCHANGED], counts[APPLY_SKIPPED],
	    counts[APPLY_ERROR]);
	dryrun_items_free(items, out->n_plan);
	connection_client_free(cc);
	return 0;
}

static void usage_configure(FILE *out)
{
	fprintf(out,
	        "usage: mrgate configure --repos PATTERN [--fail-on LEVEL] [--scans a,b] [--block-merge | "
	        "--no-block-merge]\n"
	        "                        [--comment off|on_findings|always|inline] [--ungate] [--reapply] [--dry-run]\n"
	        "                        [--resend-hook-tokens] [--confirm-no-scanner] [--new-group]\n"
	        "  PATTERN: 'acme/**' (the group acme and its subgroups, stored as acme's config), '**' (every repo,\n"
	        "  stored as the default) or a glob on the repo path such as 'acme/web/*' (stored per repo)\n"
	        "  --fail-on LEVEL: critical, high, medium, low or never (the severity that fails the gate)\n"
	        "  --scans a,b: of secrets, sast, dependencies, iac, license, malware\n"
	        "  --block-merge / --no-block-merge: GitLab's \"pipelines must succeed\" on the repos, or not\n"
	        "  --comment: when the gate comments on a merge request\n"
	        "  --ungate: stop gating the repos (their hook removed, what mrgate changed restored)\n"
	        "  --reapply: apply every selected repo, repairing drift where its config did not change; with no\n"
	        "  config option it changes no config (each repo is applied as its config stands)\n"
	        "  --dry-run: print what would change on GitLab, write nothing\n"
	        "  --confirm-no-scanner: allow a scan type this server has no scanner for\n"
	        "  --new-group: 'acme/**' names a group no sync has listed yet (one still to come)\n"
	        "  --resend-hook-tokens: with --reapply, update every selected repo's hook with the webhook secret (a\n"
	        "  token edited in GitLab cannot be seen; its repo's merge requests go ungated until then)\n");
}

/* The options of `mrgate configure`. */
struct configure_args {
	const char *pattern;
	bool dry_run, reapply, confirm_no_scanner, new_group, resend;
	bool help;               /* --help: the usage was printed to stdout */
	struct json_object *cfg; /* the config fields given */
};

/* --scans a,b as a JSON array. */
static struct json_object *scans_json(const char *v)
{
	struct json_object *arr = jx_array();
	while (*v) {
		size_t n = strcspn(v, ",");
		if (n)
			json_object_array_add(arr, jx_strn(v, n));
		v += n + (v[n] == ',');
	}
	return arr;
}

/* Read the options into a (a->cfg new); false after printing the usage. */
static bool configure_args_parse(int argc, char **argv, struct configure_args *a)
{
	a->cfg = jx_object();
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(o, "--repos") == 0 && v)
			a->pattern = v, i++;
		else if (strcmp(o, "--fail-on") == 0 && v)
			json_object_object_add(a->cfg, "fail_on", jx_str(v)), i++;
		else if (strcmp(o, "--comment") == 0 && v)
			json_object_object_add(a->cfg, "comment", jx_str(v)), i++;
		else if (strcmp(o, "--scans") == 0 && v)
			json_object_object_add(a->cfg, "scans", scans_json(v)), i++;
		else if (strcmp(o, "--block-merge") == 0)
			json_object_object_add(a->cfg, "block_merge", jx_bool(1));
		else if (strcmp(o, "--no-block-merge") == 0)
			json_object_object_add(a->cfg, "block_merge", jx_bool(0));
		else if (strcmp(o, "--ungate") == 0)
			json_object_object_add(a->cfg, "enabled", jx_bool(0));
		else if (strcmp(o, "--dry-run") == 0)
			a->dry_run = true;
		else if (strcmp(o, "--reapply") == 0)
			a->reapply = true;
		else if (strcmp(o, "--resend-hook-tokens") == 0)
			a->resend = true;
		else if (strcmp(o, "--confirm-no-scanner") == 0)
			a->confirm_no_scanner = true;
		else if (strcmp(o, "--new-group") == 0)
			a->new_group = true;
		else if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage_configure(stdout);
			a->help = true;
			return false;
		} else {
			fprintf(stderr, "mrgate: unknown or incomplete option \"%s\"\n", o);
			usage_configure(stderr);
			return false;
		}
	}
	/* the CLI configures gating: on unless --ungate; a bare --reapply changes no config (a walk's re-apply of an
	 * ungated repo gated it, and one of a group took "enabled" out of its subgroups' and repos' configs) */
	if (!jsonx_get(a->cfg, "enabled") && !(a->reapply && json_object_object_length(a->cfg) == 0))
		json_object_object_add(a->cfg, "enabled", jx_bool(1));
	if (!a->pattern) {
		usage_configure(stderr);
		return false;
	}
	if (!a->pattern[0]) {
		fprintf(stderr, "mrgate: the --repos pattern is empty; use '**' for every repository\n");
		return false;
	}
	return true;
}

/* The selection of a pattern: every repo ('**'), a group's subtree (its path, then '/' and '**'; *group_out is
 * malloc'd) or a glob on the repo path. */
static void configure_selection(const char *pattern, struct configure_req *req, char **group_out)
{
	size_t pl = strlen(pattern);
	req->filter.archived = -1;
	if (strcmp(pattern, "**") == 0 || strcmp(pattern, "*") == 0)
		return; /* every repo: the default config */
	if (pl > 3 && strcmp(pattern + pl - 3, "/**") == 0 && strcspn(pattern, "*?[") == pl - 2) {
		*group_out = xstrndup(pattern, pl - 3);
		req->filter.group = *group_out;
	} else {
		req->path_glob = pattern;
	}
}

/* "replaces what 1 subgroup config and 2 repository exceptions set for the fields given: a/b, c/d" (or "replaced"),
 * when the configure takes fields out of more specific configs (the API's summary.overridden). */
static void print_overridden(const struct json_object *ov, const char *level, bool dry_run)
{
	int64_t groups = 0, repos = 0;
	struct json_object *paths = NULL;
	if (!jsonx_int64(ov, "groups", &groups) || !jsonx_int64(ov, "repos", &repos) || groups + repos == 0)
		return;
	printf("%s what", dry_run ? "replaces" : "replaced");
	if (groups) /* groups first, as the paths are */
		printf(" %lld %s %s", (long long)groups, strcmp(level, "default") == 0 ? "group" : "subgroup",
		       groups == 1 ? "config" : "configs");
	if (repos)
		printf("%s %lld repository %s", groups ? " and" : "", (long long)repos,
		       repos == 1 ? "exception" : "exceptions");
	printf(" set for the fields given:");
	size_t n = jsonx_array(ov, "paths", &paths) ? json_object_array_length(paths) : 0;
	for (size_t i = 0; i < n; i++)
		printf("%s %s", i ? "," : "", json_object_get_string(json_object_array_get_idx(paths, i)));
	if (groups + repos > (int64_t)n)
		printf(" and %lld more", (long long)(groups + repos - (int64_t)n));
	printf("\n");
}

int cli_configure(struct app *app, int argc, char **argv)
{
	struct configure_args a = {0};
	struct configure_out out;
	char err[400], *group = NULL;
	int rc = 2;
	memset(&out, 0, sizeof(out));
	if (!configure_args_parse(argc, argv, &a)) {
		rc = a.help ? 0 : 2;
		goto out;
	}
	struct json_object *cfg = a.cfg;
	const char *pattern = a.pattern;
	bool dry_run = a.dry_run, reapply = a.reapply, confirm_no_scanner = a.confirm_no_scanner;
	rc = 1;
	if (cli_open_store(app) != 0)
		goto out;
	struct configure_req req;
	memset(&req, 0, sizeof(req));
	configure_selection(pattern, &req, &group);
	req.config = cfg;
	req.dry_run = dry_run;
	req.reapply = reapply;
	req.resend_hook_tokens = a.resend;
	if (a.resend && (!reapply || dry_run)) {
		fprintf(stderr, "mrgate: --resend-hook-tokens goes with --reapply, and not with --dry-run\n");
		rc = 2;
		goto out;
	}
	req.confirm_new_group = a.new_group;
	req.actor = "cli";
	/* as the API: a scan type with no scanner here only when confirmed; a read-only token stores and sends nothing
	 */
	char missing[200];
	if (!confirm_no_scanner &&
	    config_missing_scanners(&app->cfg, jsonx_get(cfg, "scans"), missing, sizeof(missing))) {
		fprintf(stderr,
		        "mrgate: no scanner on this server for %s: every merge request would fail \"no scanner "
		        "configured\";"
		        " configure one (MRGATE_SCANNER_*) or add --confirm-no-scanner\n",
		        missing);
		goto out;
	}
	const char *code = NULL;
	enum core_status st = dry_run ? CORE_OK : connection_write_check(app->db, &code, err, sizeof(err));
	if (st == CORE_ECONFLICT && strcmp(code, "token_read_only") == 0) {
		fprintf(stderr, "mrgate: %s\n", err);
		goto out;
	}
	st = configure_run(app->db, &req, &out, err, sizeof(err));
	if (st == CORE_EINVAL) {
		fprintf(stderr, "mrgate: %s\n", err);
		goto out;
	}
	if (st == CORE_ENOTFOUND) { /* a group no sync has listed */
		fprintf(stderr, "mrgate: %s, or add --new-group for a group still to come\n", err);
		goto out;
	}
	if (st != CORE_OK) {
		fprintf(stderr, "mrgate: could not store the configuration (%s)\n", core_status_code(st));
		goto out;
	}
	int64_t selected = 0, to_apply = 0;
	const char *level = "";
	jsonx_int64(out.summary, "selected", &selected);
	jsonx_int64(out.summary, "to_apply", &to_apply);
	jsonx_str(out.summary, "level", &level);
	print_overridden(jsonx_get(out.summary, "overridden"), level, dry_run);
	if (!dry_run) {
		if (json_object_object_length(cfg) == 0)
			printf("re-applying %lld repos as their configs stand (%s level)\n", (long long)to_apply,
			       level);
		else
			printf("stored the config for %lld repos (%s level); %lld to apply%s\n", (long long)selected,
			       level, (long long)to_apply, reapply ? " (re-applied: each is checked for drift)" : "");
		rc = apply_now(app, &out.marked, reapply, req.resend_hook_tokens);
		goto out;
	}
	/* dry run: read GitLab for the repos that would change, write nothing */
	printf("dry run: %lld repos selected (%s level), %lld to read from GitLab\n", (long long)selected, level,
	       (long long)to_apply);
	rc = out.n_plan ? print_plan(app, &out) : 0;
out:
	configure_out_clear(&out);
	json_object_put(a.cfg);
	free(group);
	return rc;
}

int cli_export(struct app *app)
{
	if (cli_open_store(app) != 0)
		return 1;
	struct json_object *doc = NULL;
	if (gateconfig_export(app->db, &doc) != CORE_OK) {
		fprintf(stderr, "mrgate: could not read the configs\n");
		return 1;
	}
	printf("%s\n", json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
	return 0;
}

/* Whether a config of the import document (its default, groups and repos) names a scan type with no scanner here;
 * missing gets them. */
static bool import_missing_scanners(struct app *app, struct json_object *doc, char *missing, size_t cap)
{
	struct json_object *scans = jx_array(), *v;
	struct json_object *configs = jx_array();
	json_object_array_add(configs, json_object_get(jsonx_get(doc, "default")));
	if ((v = jsonx_get(doc, "groups")) && json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, path, gcfg)
		{
			(void)path;
			json_object_array_add(configs, json_object_get(gcfg));
		}
	}
	if ((v = jsonx_get(doc, "repos")) && json_object_is_type(v, json_type_array))
		for (size_t i = 0; i < json_object_array_length(v); i++)
			json_object_array_add(configs,
			                      json_object_get(jsonx_get(json_object_array_get_idx(v, i), "config")));
	for (size_t i = 0; i < json_object_array_length(configs); i++) {
		struct json_object *s = jsonx_get(json_object_array_get_idx(configs, i), "scans");
		for (size_t k = 0; s && json_object_is_type(s, json_type_array) && k < json_object_array_length(s);
		     k++) {
			struct json_object *one = json_object_array_get_idx(s, k);
			bool seen = false;
			for (size_t j = 0; j < json_object_array_length(scans) && !seen; j++)
				seen = json_object_equal(one, json_object_array_get_idx(scans, j));
			if (!seen)
				json_object_array_add(scans, json_object_get(one));
		}
	}
	bool any = config_missing_scanners(&app->cfg, scans, missing, cap) != 0;
	json_object_put(scans);
	json_object_put(configs);
	return any;
}

int cli_import(struct app *app, int argc, char **argv)
{
	static const char usage[] =
	    "usage: mrgate import FILE [--confirm-no-scanner]\n"
	    "  FILE: a document written by mrgate export ('-' for stdin); it replaces every gating config, and is\n"
	    "  validated first. --confirm-no-scanner: allow a scan type this server has no scanner for\n";
	const char *file = NULL;
	bool confirm = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--confirm-no-scanner") == 0) {
			confirm = true;
		} else if (!file && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
			file = argv[i];
		} else {
			/* a walk's "mrgate import FILE extra" imported FILE and said nothing of the rest */
			fprintf(stderr, "mrgate: import: unexpected argument \"%s\"\n", argv[i]);
			fputs(usage, stderr);
			return 2;
		}
	}
	if (!file) {
		fputs(usage, stderr);
		return 2;
	}
	argv[0] = (char *)file; /* the messages below name it */
	FILE *f = strcmp(argv[0], "-") == 0 ? stdin : fopen(argv[0], "rb");
	if (!f) {
		fprintf(stderr, "mrgate: could not open %s: %s\n", argv[0], strerror(errno));
		return 1;
	}
	struct buf doc_text = {.max = IMPORT_MAX_BYTES + 1};
	char chunk[65536];
	size_t got;
	while (doc_text.len <= IMPORT_MAX_BYTES && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&doc_text, chunk, got);
	int read_err = ferror(f) ? errno : 0; /* a directory opens, then fails to read (EISDIR) */
	if (f != stdin)
		fclose(f);
	struct json_object *doc = NULL;
	struct gateconfig_marked marked = {0};
	char err[500];
	int rc = 1;
	if (read_err) {
		fprintf(stderr, "mrgate: could not read %s: %s\n", argv[0], strerror(read_err));
		goto out;
	}
	if (doc_text.len > IMPORT_MAX_BYTES) {
		fprintf(stderr, "mrgate: the import file is larger than 64 MiB\n");
		goto out;
	}
	size_t nul_at = 0;
	if (json_text_has_nul(buf_str(&doc_text), doc_text.len, &nul_at)) {
		fprintf(stderr,
		        "mrgate: import refused: a string at byte %zu of %s contains a NUL character (\\u0000); "
		        "nothing was changed\n",
		        nul_at, argv[0]);
		goto out;
	}
	if (doc_text.len >= 3 && memcmp(buf_str(&doc_text), "\xEF\xBB\xBF", 3) == 0) {
		fprintf(stderr,
		        "mrgate: import refused: %s starts with a byte order mark (an editor's UTF-8 BOM), which JSON "
		        "does not allow: save it without one; nothing was changed\n",
		        argv[0]);
		goto out;
	}
	char why[300];
	if (json_parse_strict(buf_str(&doc_text), doc_text.len, &doc, why, sizeof(why)) != CORE_OK) {
		fprintf(stderr, "mrgate: import refused: %s is not valid JSON (%s); nothing was changed\n", argv[0],
		        why);
		goto out;
	}
	char missing[200];
	if (!confirm && import_missing_scanners(app, doc, missing, sizeof(missing))) {
		/* as the API refuses such a config without "confirm_no_scanner" */
		fprintf(stderr,
		        "mrgate: import refused: no scanner on this server for %s: every merge request those configs "
		        "cover would fail \"no scanner configured\"; configure one (MRGATE_SCANNER_*) or add "
		        "--confirm-no-scanner; nothing was changed\n",
		        missing);
		goto out;
	}
	if (cli_open_store(app) != 0)
		goto out;
	enum core_status st = gateconfig_import(app->db, doc, "cli", &marked, err, sizeof(err));
	if (st != CORE_OK) {
		fprintf(stderr, "mrgate: import refused: %s; nothing was changed\n", err);
		goto out;
	}
	printf("imported the configs\n");
	rc = apply_now(app, &marked, false, false);
out:
	gateconfig_marked_clear(&marked);
	json_object_put(doc);
	buf_free(&doc_text);
	return rc;
}
