/*
 * server/main.c
 *    mrgate's entry point: settings, logging and signals, the command dispatch, and `serve`, which starts the
 *    engines on their threads (the HTTP server's, the job workers, the gate workers, the scheduler) and stops them
 *    in order. The other commands are in server/cli.c, cli_config.c and cli_scan.c.
 */
#include "app.h"
#include "auth.h"
#include "buf.h"
#include "cli.h"
#include "cli_config.h"
#include "cli_scan.h"
#include "clientaddr.h"
#include "crypto.h"
#include "gate.h"
#include "gitlab.h"
#include "http_json.h"
#include "log.h"
#include "migrate.h"
#include "publicurl.h"
#include "repos.h"
#include "routes.h"
#include "scheduler.h"

#include <civetweb.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void on_signal(int sig)
{
	(void)sig;
	cli_stop_requested = 1;
}

/* CivetWeb's own messages (it cannot bind, it cannot load OpenSSL, a certificate is unreadable) in its words. */
static int civetweb_log(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	char line[512];
	size_t n = 0;
	for (const char *p = message; p && *p && n + 1 < sizeof(line); p++)
		line[n++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
	line[n] = '\0';
	log_error("civetweb: %s", line);
	return 1; /* logged: CivetWeb writes nothing itself */
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "mrgate %s - gate every merge request of a GitLab group on security scans\n\n"
	    "Usage: mrgate [settings] COMMAND [args]\n\n"
	    "Commands:\n"
	    "  serve                      migrate the database, then serve the API, dashboard and webhooks\n"
	    "  migrate                    apply pending database migrations and exit\n"
	    "  user add NAME [--role R]   create a dashboard user with role admin, editor (default) or viewer;\n"
	    "                             the password is read from stdin (--admin is --role admin)\n"
	    "  user unlock [NAME] [--address ADDR]\n"
	    "                             lift the login locks of a user (from every address) or of an address\n"
	    "  token create USER NAME     create an API token for USER (printed once)\n"
	    "  sync                       list the connected group's repositories now, with progress\n"
	    "  configure --repos PATTERN [--fail-on LEVEL] [--scans a,b] [--block-merge|--no-block-merge]\n"
	    "            [--comment off|on_findings|always|inline] [--ungate] [--reapply [--resend-hook-tokens]]\n"
	    "            [--dry-run] [--confirm-no-scanner] [--new-group]\n"
	    "                             configure gating for repos in bulk and apply it to GitLab\n"
	    "                             (mrgate configure --help says what each option does)\n"
	    "  export                     print every gating config as JSON\n"
	    "  import FILE                replace every gating config from an export (validated first)\n"
	    "  routes [--check]           list the API's routes with the role each needs (--check: validate only)\n"
	    "  webhook-secret             print the secret token mrgate's webhooks carry (for a hook set up by hand)\n"
	    "  scan [--format json|text|sarif] [--fail-on LEVEL] PATH... | --diff FILE|-\n"
	    "                             run the gate's secrets scanner on files (as new files of a merge request)\n"
	    "                             or on the lines a unified diff adds; no database needed\n"
	    "  help                       show this help\n\n",
	    MRGATE_VERSION);
	config_print_help(out);
}

static enum core_status scheduled_resync(void *user, const char *trigger)
{
	struct resync_ctx ctx;
	app_resync_ctx(user, &ctx);
	return resync_run(&ctx, trigger, NULL);
}

/* The scheduler's tidy duty: what no login needs any more (counts only in the log, never a name or address). */
static void scheduled_tidy(void *user)
{
	struct app *app = user;
	long long sessions = 0, failures = 0;
	if (auth_tidy(app->db, &sessions, &failures) != CORE_OK)
		log_warn(
		    "tidy: could not delete ended sessions and old failed-login counts (the next tidy tries again)");
	else if (sessions || failures)
		log_info("tidy: deleted %lld ended sessions and %lld old failed-login counts", sessions, failures);
}

/* Gate workers of this process, from the settings. */
static struct gate_workers *start_gate_workers(struct app *app)
{
	struct gate_env env;
	memset(&env, 0, sizeof(env));
	env.db = app->db;
	env.secret_key = app->secret_key;
	app_gitlab_tuning(app, &env.tune);
	env.public_url = app->cfg.public_url;
	env.instance = app->instance;
	env.timeout_s = app->cfg.gate_timeout;
	env.lease_ms = app->cfg.job_lease_ms; /* gate runs are leased like job items */
	env.tree_max_bytes = app->cfg.gate_tree_max_bytes;
	env.scanners[GATE_SCAN_SAST] = app->cfg.scanner_sast;
	env.scanners[GATE_SCAN_DEPENDENCIES] = app->cfg.scanner_dependencies;
	env.scanners[GATE_SCAN_IAC] = app->cfg.scanner_iac;
	env.scanners[GATE_SCAN_LICENSE] = app->cfg.scanner_license;
	env.scanners[GATE_SCAN_MALWARE] = app->cfg.scanner_malware;
	env.default_resync_interval = app->cfg.resync_interval;
	return gate_workers_start(&env, app->cfg.gate_workers, app->cfg.database_url);
}

/* Errors CivetWeb answers itself (a malformed request, a path no handler takes): our JSON body and headers. */
static int on_http_error(struct mg_connection *conn, int status, const char *errmsg)
{
	(void)errmsg;
	if (status == 404)
		http_send_error(conn, 404, "not_found", "no such file");
	else
		http_send_error(conn, status, status >= 500 ? "internal" : "bad_request",
		                "the request could not be served");
	return 0;
}

/* What serve needs before it listens: a valid route table, the key, a migrated database, the first admin. */
static int serve_prepare(struct app *app)
{
	char err[512];
	if (!routes_check()) {
		log_error("the route table is invalid (see above): refusing to start");
		return 1;
	}
	if (crypto_load_key(app->cfg.secret_key_file, app->secret_key, err, sizeof(err)) != CORE_OK) {
		log_error("%s", err);
		return 1;
	}
	if (cli_open_db(app, 60) != CORE_OK) {
		log_error("the database is unreachable; check MRGATE_DATABASE_URL");
		return 1;
	}
	if (migrate_run(app->db, NULL) != CORE_OK) {
		log_error("could not migrate the database");
		return 1;
	}
	bool created = false;
	const char *weak = app->cfg.admin_password && *app->cfg.admin_password
	                       ? auth_password_problem(app->cfg.admin_password, "admin")
	                       : NULL;
	enum core_status st = auth_bootstrap_admin(app->db, app->cfg.admin_password, &created);
	if (st == CORE_EINVAL && weak) {
		log_error("could not create the first admin user: MRGATE_ADMIN_PASSWORD %s (a password "
		          "has " AUTH_PASSWORD_RULE ")",
		          weak);
		return 1;
	}
	if (st != CORE_OK) {
		log_error("could not create the first admin user");
		return 1;
	}
	if (created)
		log_info("created user \"admin\" from MRGATE_ADMIN_PASSWORD");
	return 0;
}

/* CivetWeb's options for this server; the strings they point to live in the struct (http_options_free). */
struct http_options {
	struct buf ports, threads, headers;
	const char *v[32];
};

static void http_options_build(struct app *app, struct http_options *o)
{
	int n = 0;
	buf_printf(&o->ports, "%s%s", app->cfg.listen, app->tls ? "s" : "");
	buf_printf(&o->threads, "%d", app->cfg.http_threads);
	o->v[n++] = "listening_ports";
	o->v[n++] = buf_str(&o->ports);
	o->v[n++] = "num_threads";
	o->v[n++] = buf_str(&o->threads);
	/* A request (its line and headers; each read or write of a body) has 10 s: a connection that sends nothing
	 * held its worker thread 60 s, and 32 of them, opened by anyone, stopped every request (webhooks included). */
	o->v[n++] = "request_timeout_ms";
	o->v[n++] = "10000";
	o->v[n++] = "enable_keep_alive";
	o->v[n++] = "yes";
	/* An idle kept-alive connection ends after 5 s (Apache's default), not CivetWeb's 500 ms: a client that pools
	 * connections for less (Node's fetch 4 s) ends it first; one that pooled it for longer raced the server's
	 * close with its next request and got a reset ("fetch failed") instead of an answer. It holds a worker
	 * thread while idle (MRGATE_HTTP_THREADS). */
	o->v[n++] = "keep_alive_timeout_ms";
	o->v[n++] = "5000";
	/* Without it every response split over two writes waits for the client's delayed ACK (about 40 ms). */
	o->v[n++] = "tcp_nodelay";
	o->v[n++] = "1";
	/* no CORS: CivetWeb answers a preflight itself with "Access-Control-Allow-Origin: *" (and none of the
	 * security headers) and adds that header to files; the dashboard is served from the same origin as the API */
	o->v[n++] = "access_control_allow_origin";
	o->v[n++] = "";
	o->v[n++] = "access_control_allow_methods";
	o->v[n++] = "";
	o->v[n++] = "access_control_allow_headers";
	o->v[n++] = "";
	o->v[n++] = "enable_directory_listing";
	o->v[n++] = "no";
	/* the path is decoded once, by routes_path_decode(): CivetWeb's decoding would let a %00 end it early */
	o->v[n++] = "decode_url";
	o->v[n++] = "no";
	/* no document_root: files are served by server/static_files.c (no links out, no dotfiles, no CGI or SSI);
	 * CivetWeb's own replies (malformed requests) carry the security headers too */
	http_security_init(app->tls);
	buf_puts(&o->headers, http_security_headers());
	while (o->headers.len >= 2 && o->headers.p[o->headers.len - 2] == '\r' &&
	       o->headers.p[o->headers.len - 1] == '\n')
		o->headers.p[o->headers.len -= 2] = '\0'; /* CivetWeb appends the final CRLF itself */
	o->v[n++] = "additional_header";
	o->v[n++] = buf_str(&o->headers);
	if (app->tls) {
		o->v[n++] = "ssl_certificate";
		o->v[n++] = app->cfg.tls_cert;
	}
	o->v[n] = NULL;
}

static void http_options_free(struct http_options *o)
{
	buf_free(&o->ports);
	buf_free(&o->threads);
	buf_free(&o->headers);
}

/* The HTTP server with the job workers behind it; NULL (logged, nothing left running) on failure. */
static struct mg_context *serve_http(struct app *app)
{
	struct http_options opts = {0};
	struct mg_context *ctx = NULL;
	http_options_build(app, &opts);
	/* CivetWeb dlopens libssl.so and libcrypto.so for TLS (server/sslcompat gives both names); it returns the
	 * features it could initialise (0 also when none were asked for) */
	unsigned features = mg_init_library(app->tls ? MG_FEATURES_SSL : 0);
	if (app->tls && !(features & MG_FEATURES_SSL)) {
		log_error("could not start the HTTPS server: CivetWeb could not initialise TLS (it loads libssl.so and "
		          "libcrypto.so: mrgate's compat libraries next to it, in sslcompat/ or ../lib/mrgate/)");
		goto fail;
	}
	struct mg_callbacks cb;
	memset(&cb, 0, sizeof(cb));
	cb.http_error = on_http_error;
	cb.log_message = civetweb_log;
	if (!app_jobs_start(app)) {
		log_error("could not start the job workers");
		goto fail;
	}
	ctx = mg_start(&cb, app, opts.v);
	if (!ctx) {
		log_error("could not start the HTTP server on %s%s (CivetWeb's reason is logged above)",
		          app->cfg.listen, app->tls ? " with TLS" : "");
		app_jobs_stop(app);
		goto fail;
	}
	http_options_free(&opts);
	return ctx;
fail:
	mg_exit_library();
	http_options_free(&opts);
	return NULL;
}

static int cmd_serve(struct app *app)
{
	if (serve_prepare(app) != 0)
		return 1;
	app->tls = app->cfg.tls_cert[0] != '\0';
	repos_list_cache_set((size_t)app->cfg.repo_list_cache_mb << 20);
	struct stat sb;
	bool have_web =
	    stat(app->cfg.web_root, &sb) == 0 && S_ISDIR(sb.st_mode) && static_files_init(app->cfg.web_root);
	if (!have_web)
		log_warn("web root %s is not a directory; the dashboard will not be served", app->cfg.web_root);
	struct mg_context *ctx = serve_http(app);
	if (!ctx)
		return 1;
	handlers_system_describe();
	routes_register(ctx, app);
	struct gate_workers *gates = start_gate_workers(app);
	if (!gates)
		log_error("could not start the gate workers: merge requests will stay queued in this instance");
	struct scheduler_opts so = {.database_url = app->cfg.database_url,
	                            .db = app->db,
	                            .instance = app->instance,
	                            .default_interval = app->cfg.resync_interval,
	                            .duty = scheduled_resync,
	                            .tidy = scheduled_tidy,
	                            .user = app};
	struct scheduler *sched = scheduler_start(&so);
	if (!sched)
		log_warn("could not start the scheduler: scheduled resyncs will not run in this instance");
	log_info("mrgate %s serving on %s://%s (public URL %s)", MRGATE_VERSION, app->tls ? "https" : "http",
	         app->cfg.listen, app->cfg.public_url);
	char unreachable[600];
	if (publicurl_local(app->cfg.public_url, unreachable, sizeof(unreachable)))
		log_warn("%s", unreachable);

	while (!cli_stop_requested)
		usleep(100 * 1000);

	log_info("shutting down: finishing requests in flight");
	__atomic_store_n(&app->stopping, true, __ATOMIC_RELAXED);
	mg_stop(ctx);
	scheduler_stop(sched);
	gate_workers_stop(gates);
	app_jobs_stop(app);
	mg_exit_library();
	log_info("stopped");
	return 0;
}

static int run_routes(struct app *app, int argc, char **argv)
{
	(void)app;
	if (argc == 1 && strcmp(argv[0], "--check") != 0) {
		fprintf(stderr, "mrgate routes: the only option is --check (got \"%s\")\n", argv[0]);
		return 2;
	}
	return routes_cli(argc == 1);
}

static int run_scan(struct app *app, int argc, char **argv)
{
	(void)app;
	return cli_scan(argc, argv);
}

static int run_help(struct app *app, int argc, char **argv)
{
	(void)app, (void)argc, (void)argv;
	usage(stdout);
	return 0;
}

/* The commands: name, required subcommand (NULL: none), most arguments after them (-1: the command checks), and
 * either run (given the arguments) or run_app (given none). */
struct command {
	const char *name, *sub;
	int max_args;
	int (*run)(struct app *app, int argc, char **argv);
	int (*run_app)(struct app *app);
};

static const struct command commands[] = {
    {"serve", NULL, 0, NULL, cmd_serve},
    {"migrate", NULL, 0, NULL, cli_migrate},
    {"user", "add", -1, cli_user_add, NULL},
    {"user", "unlock", -1, cli_user_unlock, NULL},
    {"token", "create", -1, cli_token_create, NULL},
    {"routes", NULL, 1, run_routes, NULL},
    {"webhook-secret", NULL, 0, NULL, cli_webhook_secret},
    {"configure", NULL, -1, cli_configure, NULL},
    {"export", NULL, 0, NULL, cli_export},
    {"import", NULL, -1, cli_import, NULL},
    {"sync", NULL, 0, NULL, cli_sync},
    {"scan", NULL, -1, run_scan, NULL},
    {"help", NULL, -1, run_help, NULL},
};

/* The command named name whose subcommand is sub (NULL: none given), else the first named name (its subcommand is
 * then said to be expected), else NULL. */
static const struct command *command_find(const char *name, const char *sub)
{
	const struct command *first = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) != 0)
			continue;
		if (!first)
			first = &commands[i];
		if (!commands[i].sub || (sub && strcmp(commands[i].sub, sub) == 0))
			return &commands[i];
	}
	return first;
}

int main(int argc, char **argv)
{
	struct app app;
	memset(&app, 0, sizeof(app));
	app.started_at = time(NULL);
	int *rest = calloc((size_t)argc + 1, sizeof(int));
	char **args = NULL;
	int nrest = 0, rc = 2;
	char err[512];
	if (!rest)
		return 1;

	/* --help after "configure" or "import" is that command's own */
	for (int i = 1; i < argc && strcmp(argv[i], "configure") != 0 && strcmp(argv[i], "import") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			free(rest);
			return 0;
		}
	if (config_load(&app.cfg, argc, argv, rest, &nrest, err, sizeof(err)) != CORE_OK ||
	    publicurl_check(app.cfg.public_url, err, sizeof(err)) != CORE_OK ||
	    clientaddr_check(app.cfg.trusted_proxies, err, sizeof(err)) != CORE_OK) {
		fprintf(stderr, "mrgate: %s\n", err);
		goto out;
	}
	int level = log_level_parse(app.cfg.log_level);
	if (level < 0 || (strcmp(app.cfg.log_format, "json") != 0 && strcmp(app.cfg.log_format, "text") != 0)) {
		fprintf(stderr, "mrgate: %s\n",
		        level < 0 ? "log-level (MRGATE_LOG_LEVEL) must be debug, info, warn or error"
		                  : "log-format (MRGATE_LOG_FORMAT) must be json or text");
		goto out;
	}
	log_init((enum log_level)level, strcmp(app.cfg.log_format, "text") != 0);
	if (crypto_init() != CORE_OK || gitlab_global_init() != CORE_OK) {
		fprintf(stderr, "mrgate: could not initialise libsodium or libcurl\n");
		rc = 1;
		goto out;
	}
	char host[64] = "localhost";
	gethostname(host, sizeof(host) - 1);
	char *nonce = crypto_random_token(NULL);
	snprintf(app.instance, sizeof(app.instance), "%.63s:%d:%.8s", host, (int)getpid(), nonce ? nonce : "");
	free(nonce);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	args = calloc((size_t)nrest + 1, sizeof(char *)); /* `mrgate scan` may get many paths */
	int nargs = 0;
	if (!args)
		goto out;
	for (int i = 0; i < nrest; i++)
		args[nargs++] = argv[rest[i]];
	args[nargs] = NULL;
	const char *cmd = nargs > 0 ? args[0] : "";
	const struct command *c = command_find(cmd, nargs > 1 ? args[1] : NULL);
	if (!c) {
		if (*cmd)
			fprintf(stderr, "mrgate: unknown command \"%s\"\n\n", cmd);
		usage(stderr);
		rc = 2;
	} else if (c->sub && (nargs < 2 || strcmp(args[1], c->sub) != 0)) {
		fprintf(stderr, "mrgate %s: expected \"%s %s\"%s (see mrgate help)\n", cmd, cmd, c->sub,
		        strcmp(cmd, "user") == 0 ? " or \"user unlock\"" : "");
		rc = 2;
	} else {
		int skip = c->sub ? 2 : 1;
		if (c->max_args >= 0 && nargs - skip > c->max_args) {
			if (c->max_args == 0)
				fprintf(stderr, "mrgate %s takes no arguments (got \"%s\")\n", cmd, args[skip]);
			else
				fprintf(stderr, "mrgate %s takes at most %d argument%s (got \"%s\")\n", cmd,
				        c->max_args, c->max_args == 1 ? "" : "s", args[skip + c->max_args]);
			rc = 2;
		} else {
			rc = c->run ? c->run(&app, nargs - skip, args + skip) : c->run_app(&app);
		}
	}
out:
	store_close(app.db);
	gitlab_global_cleanup();
	config_free(&app.cfg);
	free(rest);
	free(args);
	return rc;
}
