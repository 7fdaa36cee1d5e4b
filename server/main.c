/*
 * server/main.c
 *    mrgate's command line: serve, migrate, user add, token create.
 */
#include "app.h"
#include "auth.h"
#include "cli_config.h"
#include "cli_scan.h"
#include "crypto.h"
#include "discovery.h"
#include "gate.h"
#include "gitlab.h"
#include "http_json.h"
#include "jobs.h"
#include "jsonx.h"
#include "limiter.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "publicurl.h"
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

void handlers_system_describe(void);

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
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
	    "  token create USER NAME     create an API token for USER (printed once)\n"
	    "  sync                       list the connected group's repositories now, with progress\n"
	    "  configure --repos PATTERN [--fail-on LEVEL] [--scans a,b] [--block-merge] [--dry-run]\n"
	    "                             configure gating for repos in bulk and apply it to GitLab\n"
	    "  export                     print every gating config as JSON\n"
	    "  import FILE                replace every gating config from an export (validated first)\n"
	    "  routes [--check]           list the API's routes with the role each needs (--check: validate only)\n"
	    "  webhook-secret             print the secret token mrgate's webhooks carry (for a hook set up by hand)\n"
	    "  scan PATH...               run the built-in secrets scanner on files as new files of a merge request\n"
	    "  help                       show this help\n\n",
	    MRGATE_VERSION);
	config_print_help(out);
}

/* Open the database pool; wait up to wait_secs for PostgreSQL to come up (docker-compose starts both at once). */
static enum core_status open_db(struct app *app, int wait_secs)
{
	app->db = store_open(app->cfg.database_url, app->cfg.db_pool);
	if (!app->db)
		return CORE_ENOMEM;
	time_t deadline = time(NULL) + wait_secs;
	for (;;) {
		struct store_conn *c = NULL;
		enum core_status st = store_get(app->db, &c);
		store_put(app->db, c);
		if (st == CORE_OK || time(NULL) >= deadline || stop_requested)
			return st;
		sleep(1);
	}
}

int cli_open_store(struct app *app)
{
	if (open_db(app, 10) != CORE_OK || migrate_run(app->db, NULL) != CORE_OK) {
		fprintf(stderr, "mrgate: the database is unreachable; check MRGATE_DATABASE_URL\n");
		return 1;
	}
	return 0;
}

int cli_open_connection(struct app *app, struct connection_client **cc, const char *when_missing)
{
	char err[512];
	struct connection_tuning tune;
	*cc = NULL;
	if (crypto_load_key(app->cfg.secret_key_file, app->secret_key, err, sizeof(err)) != CORE_OK) {
		fprintf(stderr, "mrgate: %s\n", err);
		return 1;
	}
	app_gitlab_tuning(app, &tune);
	enum core_status st = connection_client(app->db, app->secret_key, &tune, cc);
	if (st == CORE_ENOTFOUND) {
		fprintf(stderr, "mrgate: no GitLab connection yet: %s\n", when_missing);
		return 1;
	}
	if (st != CORE_OK) {
		fprintf(stderr, "mrgate: could not open the GitLab connection (see the log above)\n");
		return 1;
	}
	return 0;
}

static int cmd_migrate(struct app *app)
{
	int applied = 0;
	if (open_db(app, 30) != CORE_OK) {
		log_error("the database is unreachable; check MRGATE_DATABASE_URL");
		return 1;
	}
	enum core_status st = migrate_run(app->db, &applied);
	if (st != CORE_OK) {
		log_error("migration failed");
		return 1;
	}
	printf("database schema at version %d (%d migration%s applied now)\n", migrate_latest(), applied,
	       applied == 1 ? "" : "s");
	return 0;
}

/* Read one line from stdin without echo when it is a terminal. Returns malloc'd string or NULL. */
static char *read_password(const char *prompt)
{
	if (isatty(STDIN_FILENO)) {
		fputs(prompt, stderr);
		if (system("stty -echo 2>/dev/null") != 0)
			return NULL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (isatty(STDIN_FILENO)) {
		if (system("stty echo 2>/dev/null") != 0)
			fputs("\n(could not restore terminal echo; run 'stty echo')\n", stderr);
		fputc('\n', stderr);
	}
	if (n <= 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static int cmd_user_add(struct app *app, int argc, char **argv)
{
	const char *name = NULL;
	enum auth_role role = AUTH_ROLE_EDITOR;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--admin") == 0) {
			role = AUTH_ROLE_ADMIN;
		} else if (strcmp(argv[i], "--role") == 0) {
			if (i + 1 >= argc || !auth_role_parse(argv[i + 1], &role)) {
				fprintf(stderr, "mrgate: --role takes admin, editor or viewer\n");
				return 2;
			}
			i++;
		} else if (!name) {
			name = argv[i];
		}
	}
	if (!name) {
		fprintf(stderr, "usage: mrgate user add NAME [--role admin|editor|viewer]  (password on stdin)\n");
		return 2;
	}
	char *pw = read_password("password: ");
	if (!pw) {
		fprintf(stderr, "mrgate: no password given on stdin\n");
		return 2;
	}
	int rc = 1;
	if (cli_open_store(app) != 0)
		goto out;
	enum core_status st = auth_user_add(app->db, "system (mrgate user add)", name, pw, role, NULL);
	if (st == CORE_EINVAL)
		fprintf(stderr, "mrgate: invalid user: names are 1-64 of A-Z a-z 0-9 . _ @ - and passwords at "
		                "least 8 characters\n");
	else if (st == CORE_ECONFLICT)
		fprintf(stderr, "mrgate: user \"%s\" already exists\n", name);
	else if (st != CORE_OK)
		fprintf(stderr, "mrgate: could not add user \"%s\"\n", name);
	else {
		printf("user \"%s\" created (%s)\n", name, auth_role_name(role));
		rc = 0;
	}
out:
	crypto_free_secret(pw);
	return rc;
}

static int cmd_token_create(struct app *app, int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: mrgate token create USER NAME\n");
		return 2;
	}
	if (cli_open_store(app) != 0)
		return 1;
	char *token = NULL;
	enum core_status st = auth_token_create(app->db, argv[0], argv[1], &token);
	if (st == CORE_ENOTFOUND) {
		fprintf(stderr, "mrgate: no user \"%s\"\n", argv[0]);
		return 1;
	}
	if (st != CORE_OK) {
		fprintf(stderr, "mrgate: could not create the token (a name is 1-100 characters)\n");
		return 1;
	}
	/* The only time the token is shown: on stdout for the operator, never in a log. */
	printf("%s\n", token);
	crypto_free_secret(token);
	return 0;
}

static void print_progress(const struct discovery_counts *c, void *user)
{
	(void)user;
	fprintf(stderr, "\rsync: %d pages, %d repos seen, %d new", c->pages, c->repos_seen, c->new_repos);
}

static int cmd_sync(struct app *app)
{
	struct connection_client *cc = NULL;
	if (cli_open_store(app) != 0 ||
	    cli_open_connection(app, &cc, "connect one in the dashboard or with PUT /api/connection") != 0)
		return 1;
	enum core_status st;
	int64_t run = 0;
	st = discovery_begin(app->db, "cli", app->instance, &run);
	if (st == CORE_ECONFLICT) {
		fprintf(stderr, "mrgate: a sync is already running (run %lld)\n", (long long)run);
		connection_client_free(cc);
		return 1;
	}
	struct discovery_counts counts;
	memset(&counts, 0, sizeof(counts));
	if (st == CORE_OK)
		st = discovery_execute(app->db, connection_client_gitlab(cc), connection_client_info(cc)->group_id, run,
		                       app->cfg.gitlab_concurrency, isatty(STDERR_FILENO) ? print_progress : NULL, NULL,
		                       &counts);
	connection_client_free(cc);
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);
	if (st != CORE_OK) {
		struct json_object *o = NULL;
		const char *e = NULL;
		if (discovery_get(app->db, run, &o) == CORE_OK)
			jsonx_str(o, "error", &e);
		fprintf(stderr, "mrgate: sync failed: %s\n", e ? e : core_status_code(st));
		json_object_put(o);
		return 1;
	}
	printf("%d repos in %d groups: %d new, %d updated, %d removed, %d newly archived\n", counts.repos_seen,
	       counts.groups_seen, counts.new_repos, counts.updated, counts.removed, counts.archived);
	return 0;
}

static enum core_status scheduled_resync(void *user, const char *trigger)
{
	struct resync_ctx ctx;
	app_resync_ctx(user, &ctx);
	return resync_run(&ctx, trigger, NULL);
}

/* The installation's webhook secret on stdout: for admins who add a project or group hook by hand. */
static int cmd_webhook_secret(struct app *app)
{
	struct connection_client *cc = NULL;
	if (cli_open_store(app) != 0 ||
	    cli_open_connection(app, &cc, "the webhook secret is created with the connection") != 0)
		return 1;
	printf("%s\n", connection_client_webhook_secret(cc));
	connection_client_free(cc);
	return 0;
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
	return gate_workers_start(&env, app->cfg.gate_workers);
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

static int cmd_serve(struct app *app)
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
	if (open_db(app, 60) != CORE_OK) {
		log_error("the database is unreachable; check MRGATE_DATABASE_URL");
		return 1;
	}
	if (migrate_run(app->db, NULL) != CORE_OK) {
		log_error("could not migrate the database");
		return 1;
	}
	bool created = false;
	if (auth_bootstrap_admin(app->db, app->cfg.admin_password, &created) != CORE_OK) {
		log_error("could not create the first admin user");
		return 1;
	}
	if (created)
		log_info("created user \"admin\" from MRGATE_ADMIN_PASSWORD");

	app->tls = app->cfg.tls_cert[0] != '\0';
	char ports[300], threads[16];
	snprintf(ports, sizeof(ports), "%s%s", app->cfg.listen, app->tls ? "s" : "");
	snprintf(threads, sizeof(threads), "%d", app->cfg.http_threads);
	struct stat sb;
	bool have_web =
	    stat(app->cfg.web_root, &sb) == 0 && S_ISDIR(sb.st_mode) && static_files_init(app->cfg.web_root);
	if (!have_web)
		log_warn("web root %s is not a directory; the dashboard will not be served", app->cfg.web_root);
	const char *options[32];
	int n = 0;
	options[n++] = "listening_ports";
	options[n++] = ports;
	options[n++] = "num_threads";
	options[n++] = threads;
	options[n++] = "request_timeout_ms";
	options[n++] = "60000";
	options[n++] = "enable_keep_alive";
	options[n++] = "yes";
	/* Without it every response split over two writes waits for the client's delayed ACK (about 40 ms). */
	options[n++] = "tcp_nodelay";
	options[n++] = "1";
	options[n++] = "enable_directory_listing";
	options[n++] = "no";
	/* no document_root: files are served by server/static_files.c (no links out, no dotfiles, no CGI or SSI);
	 * CivetWeb's own replies (malformed requests) carry the security headers too */
	http_security_init(app->tls);
	char extra[700];
	snprintf(extra, sizeof(extra), "%s", http_security_headers());
	size_t el = strlen(extra);
	while (el >= 2 && extra[el - 2] == '\r' && extra[el - 1] == '\n')
		extra[el -= 2] = '\0'; /* CivetWeb appends the final CRLF itself */
	options[n++] = "additional_header";
	options[n++] = extra;
	if (app->tls) {
		options[n++] = "ssl_certificate";
		options[n++] = app->cfg.tls_cert;
	}
	options[n] = NULL;

	/* CivetWeb dlopens libssl.so and libcrypto.so for TLS (server/sslcompat gives both names); it returns the
	 * features it could initialise (0 also when none were asked for) */
	unsigned features = mg_init_library(app->tls ? MG_FEATURES_SSL : 0);
	if (app->tls && !(features & MG_FEATURES_SSL)) {
		log_error("could not start the HTTPS server: CivetWeb could not initialise TLS (it loads libssl.so and "
		          "libcrypto.so: mrgate's compat libraries next to it, in sslcompat/ or ../lib/mrgate/)");
		mg_exit_library();
		return 1;
	}
	struct mg_callbacks cb;
	memset(&cb, 0, sizeof(cb));
	cb.http_error = on_http_error;
	cb.log_message = civetweb_log;
	app->jobs = app_jobs_start(app);
	if (!app->jobs) {
		log_error("could not start the job workers");
		limiter_free(app->gitlab_slots);
		app->gitlab_slots = NULL;
		mg_exit_library();
		return 1;
	}
	struct mg_context *ctx = mg_start(&cb, app, options);
	if (!ctx) {
		log_error("could not start the HTTP server on %s%s (CivetWeb's reason is logged above)",
		          app->cfg.listen, app->tls ? " with TLS" : "");
		mg_exit_library();
		jobs_runner_stop(app->jobs);
		app->jobs = NULL;
		limiter_free(app->gitlab_slots);
		app->gitlab_slots = NULL;
		return 1;
	}
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
	                            .user = app};
	struct scheduler *sched = scheduler_start(&so);
	if (!sched)
		log_warn("could not start the scheduler: scheduled resyncs will not run in this instance");
	log_info("mrgate %s serving on %s://%s (public URL %s)", MRGATE_VERSION, app->tls ? "https" : "http",
	         app->cfg.listen, app->cfg.public_url);
	char unreachable[600];
	if (publicurl_local(app->cfg.public_url, unreachable, sizeof(unreachable)))
		log_warn("%s", unreachable);

	while (!stop_requested)
		usleep(100 * 1000);

	log_info("shutting down: finishing requests in flight");
	__atomic_store_n(&app->stopping, true, __ATOMIC_RELAXED);
	mg_stop(ctx);
	scheduler_stop(sched);
	gate_workers_stop(gates);
	jobs_runner_stop(app->jobs); /* items not started are released for another instance */
	app->jobs = NULL;
	limiter_free(app->gitlab_slots);
	mg_exit_library();
	log_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	struct app app;
	memset(&app, 0, sizeof(app));
	app.started_at = time(NULL);
	int *rest = calloc((size_t)argc + 1, sizeof(int));
	int nrest = 0, rc = 2;
	char err[512];
	if (!rest)
		return 1;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			free(rest);
			return 0;
		}
	if (config_load(&app.cfg, argc, argv, rest, &nrest, err, sizeof(err)) != CORE_OK ||
	    publicurl_check(app.cfg.public_url, err, sizeof(err)) != CORE_OK) {
		fprintf(stderr, "mrgate: %s\n", err);
		goto out;
	}
	int level = log_level_parse(app.cfg.log_level);
	log_init(level < 0 ? LOG_INFO : (enum log_level)level, strcmp(app.cfg.log_format, "text") != 0);
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

	char *args[64];
	int nargs = 0;
	for (int i = 0; i < nrest && nargs < 63; i++)
		args[nargs++] = argv[rest[i]];
	args[nargs] = NULL;
	const char *cmd = nargs > 0 ? args[0] : "";
	if (strcmp(cmd, "serve") == 0)
		rc = cmd_serve(&app);
	else if (strcmp(cmd, "migrate") == 0)
		rc = cmd_migrate(&app);
	else if (strcmp(cmd, "user") == 0 && nargs >= 2 && strcmp(args[1], "add") == 0)
		rc = cmd_user_add(&app, nargs - 2, args + 2);
	else if (strcmp(cmd, "token") == 0 && nargs >= 2 && strcmp(args[1], "create") == 0)
		rc = cmd_token_create(&app, nargs - 2, args + 2);
	else if (strcmp(cmd, "routes") == 0)
		rc = routes_cli(nargs > 1 && strcmp(args[1], "--check") == 0);
	else if (strcmp(cmd, "webhook-secret") == 0)
		rc = cmd_webhook_secret(&app);
	else if (strcmp(cmd, "configure") == 0)
		rc = cli_configure(&app, nargs - 1, args + 1);
	else if (strcmp(cmd, "export") == 0)
		rc = cli_export(&app);
	else if (strcmp(cmd, "import") == 0)
		rc = cli_import(&app, nargs - 1, args + 1);
	else if (strcmp(cmd, "sync") == 0)
		rc = cmd_sync(&app);
	else if (strcmp(cmd, "scan") == 0)
		rc = cli_scan(nargs - 1, args + 1);
	else if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		rc = 0;
	} else {
		if (*cmd)
			fprintf(stderr, "mrgate: unknown command \"%s\"\n\n", cmd);
		usage(stderr);
		rc = 2;
	}
out:
	store_close(app.db);
	gitlab_global_cleanup();
	config_free(&app.cfg);
	free(rest);
	return rc;
}
