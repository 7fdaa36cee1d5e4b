/*
 * server/cli.c
 *    The small CLI commands and the openers every CLI command shares (see cli.h).
 */
#include "cli.h"

#include "auth.h"
#include "clientaddr.h"
#include "crypto.h"
#include "discovery.h"
#include "jsonx.h"
#include "log.h"
#include "migrate.h"
#include "resync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t cli_stop_requested;

enum core_status cli_open_db(struct app *app, int wait_secs)
{
	app->db = store_open(app->cfg.database_url, app->cfg.db_pool);
	if (!app->db)
		return CORE_ENOMEM;
	app_init(app);
	time_t deadline = time(NULL) + wait_secs;
	for (;;) {
		struct store_conn *c = NULL;
		enum core_status st = store_get(app->db, &c);
		store_put(app->db, c);
		if (st == CORE_OK || time(NULL) >= deadline || cli_stop_requested)
			return st;
		sleep(1);
	}
}

/* Why the database could not be reached, with the way to the one `make run` keeps when no URL was given. */
static void say_unreachable(const struct app *app)
{
	if (strcmp(app->cfg.database_url, "postgresql:///mrgate") == 0)
		fprintf(stderr,
		        "mrgate: the database is unreachable at the default postgresql:///mrgate (MRGATE_DATABASE_URL "
		        "is not set); for the one `make run` keeps, run from the checkout: "
		        "export MRGATE_DATABASE_URL=$(scripts/pg.sh url .mrgate/pg)\n");
	else
		fprintf(stderr, "mrgate: the database is unreachable; check MRGATE_DATABASE_URL\n");
}

int cli_open_store(struct app *app)
{
	if (cli_open_db(app, 10) != CORE_OK || migrate_run(app->db, NULL) != CORE_OK) {
		say_unreachable(app);
		return 1;
	}
	return 0;
}

int cli_open_connection(struct app *app, struct connection_client **cc, const char *when_missing)
{
	char err[512];
	*cc = NULL;
	if (crypto_load_key(app->cfg.secret_key_file, app->secret_key, err, sizeof(err)) != CORE_OK) {
		fprintf(stderr, "mrgate: %s\n", err);
		return 1;
	}
	enum core_status st = connection_client(app->db, app->secret_key, &app->apply.tune, cc);
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

int cli_migrate(struct app *app)
{
	int applied = 0;
	if (cli_open_db(app, 30) != CORE_OK) {
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

/* One line from stdin, without echo when stdin is a terminal (echo restored on every path). Malloc'd, or NULL. */
static char *read_password(const char *prompt)
{
	struct termios saved, quiet;
	bool tty = isatty(STDIN_FILENO);
	if (tty) {
		fputs(prompt, stderr);
		if (tcgetattr(STDIN_FILENO, &saved) != 0)
			return NULL;
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
			return NULL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (tty) {
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved) != 0)
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

/* NAME [--role admin|editor|viewer | --admin]: false after printing why. */
/* NAME and at most one role (--admin or --role R); anything else is a usage error, never silently dropped: a stray
 * "viewer" must not leave the default editor role in place. */
static bool user_add_args(int argc, char **argv, const char **name, enum auth_role *role)
{
	static const char usage[] = "usage: mrgate user add NAME [--role admin|editor|viewer]  (password on stdin)\n";
	bool role_given = false;
	for (int i = 0; i < argc; i++) {
		bool is_role = strcmp(argv[i], "--admin") == 0 || strcmp(argv[i], "--role") == 0;
		if (is_role && role_given) {
			fprintf(stderr, "mrgate: give the role once (--role or --admin, not both or twice)\n");
			return false;
		}
		if (strcmp(argv[i], "--admin") == 0) {
			*role = AUTH_ROLE_ADMIN;
		} else if (strcmp(argv[i], "--role") == 0) {
			if (i + 1 >= argc || !auth_role_parse(argv[i + 1], role)) {
				fprintf(stderr, "mrgate: --role takes admin, editor or viewer\n");
				return false;
			}
			i++;
		} else if (!*name && argv[i][0] != '-') {
			*name = argv[i];
		} else {
			fprintf(stderr, "mrgate: unexpected argument \"%s\" (a role is given with --role)\n%s", argv[i],
			        usage);
			return false;
		}
		role_given = role_given || is_role;
	}
	if (!*name) {
		fprintf(stderr, "%s", usage);
		return false;
	}
	return true;
}

int cli_user_add(struct app *app, int argc, char **argv)
{
	const char *name = NULL;
	enum auth_role role = AUTH_ROLE_EDITOR;
	if (!user_add_args(argc, argv, &name, &role))
		return 2;
	char *pw = read_password("password: ");
	if (!pw) {
		fprintf(stderr, "mrgate: no password given on stdin\n");
		return 2;
	}
	int rc = 1;
	const char *problem = auth_password_problem(pw, name);
	if (!auth_username_ok(name)) {
		rc = 2;
		fprintf(stderr, "mrgate: invalid user name \"%s\": names are 1-64 of A-Z a-z 0-9 . _ @ -\n", name);
		goto out;
	}
	if (problem) {
		rc = 2;
		fprintf(stderr, "mrgate: the password %s: choose another (a password has " AUTH_PASSWORD_RULE ")\n",
		        problem);
		goto out;
	}
	if (cli_open_store(app) != 0)
		goto out;
	enum core_status st = auth_user_add(app->db, "system (mrgate user add)", name, pw, role, NULL);
	if (st == CORE_EINVAL)
		fprintf(stderr, "mrgate: invalid user name \"%s\": names are 1-64 of A-Z a-z 0-9 . _ @ -\n", name);
	else if (st == CORE_ECONFLICT)
		fprintf(stderr, "mrgate: user \"%s\" already exists (names are compared ignoring case)\n", name);
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

int cli_user_unlock(struct app *app, int argc, char **argv)
{
	static const char usage[] =
	    "usage: mrgate user unlock [NAME] [--address ADDR]  (a user, an address, or both)\n";
	const char *name = NULL, *address = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--address") == 0 && i + 1 < argc && !address && *argv[i + 1]) {
			address = argv[++i];
		} else if (!name && argv[i][0] != '-' && *argv[i]) {
			name = argv[i];
		} else {
			fprintf(stderr, "mrgate: unexpected argument \"%s\"\n%s", argv[i], usage);
			return 2;
		}
	}
	if (!name && !address) {
		fprintf(stderr, "%s", usage);
		return 2;
	}
	if (address && !clientaddr_valid(address)) {
		fprintf(stderr, "mrgate: \"%s\" is not an IP address (the address as the 429 or the log gives it)\n",
		        address);
		return 2;
	}
	if (cli_open_store(app) != 0)
		return 1;
	bool known = true;
	if (name && auth_user_exists(app->db, name, &known) == CORE_OK && !known)
		fprintf(stderr,
		        "mrgate: note: no user is named \"%s\" (guesses at names no user has are counted too)\n", name);
	long long cleared = 0;
	if (auth_unlock(app->db, "system (mrgate user unlock)", name, address, &cleared) != CORE_OK) {
		fprintf(stderr, "mrgate: could not lift the login locks\n");
		return 1;
	}
	char who[300];
	snprintf(who, sizeof(who), "%s%s%s%s%s", name ? "user \"" : "", name ? name : "", name ? "\"" : "",
	         name && address ? " and address "
	         : address       ? "address "
	                         : "",
	         address ? address : "");
	if (cleared == 0)
		printf("%s: no failed logins recorded, nothing to lift\n", who);
	else
		printf("%s: login locks lifted (%lld failed-login %s cleared)\n", who, cleared,
		       cleared == 1 ? "count" : "counts");
	return 0;
}

int cli_token_create(struct app *app, int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mrgate token create USER NAME  (quote a NAME with spaces)\n");
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

int cli_sync(struct app *app)
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
	if (resync_listed_only(app->db, run, &counts) != CORE_OK)
		fprintf(stderr, "mrgate: could not store the run's summary; Sync now may be refused for 2 minutes\n");
	printf("%d repos in %d groups: %d new, %d updated, %d removed, %d newly archived\n", counts.repos_seen,
	       counts.groups_seen, counts.new_repos, counts.updated, counts.removed, counts.archived);
	printf("listed only: gated repos are re-checked and new ones gated by the next resync (the scheduler's, or "
	       "Sync now in the dashboard)\n");
	return 0;
}

/* The installation's webhook secret on stdout: for admins who add a project or group hook by hand. */
int cli_webhook_secret(struct app *app)
{
	struct connection_client *cc = NULL;
	if (cli_open_store(app) != 0 ||
	    cli_open_connection(app, &cc, "the webhook secret is created with the connection") != 0)
		return 1;
	printf("%s\n", connection_client_webhook_secret(cc));
	connection_client_free(cc);
	return 0;
}
