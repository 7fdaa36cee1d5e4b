/*
 * core/migrate.c
 *    Applies the embedded migrations under an advisory lock.
 */
#include "migrate.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Advisory lock key for migrations ("mrgate" + 1). Other duties use other keys (see scheduler). */
#define MIGRATE_LOCK_KEY "7242840001"

int migrate_latest(void)
{
	return migrations_count > 0 ? migrations[migrations_count - 1].version : 0;
}

enum core_status migrate_current(struct store *s, int *version_out)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	*version_out = 0;
	enum core_status st = store_get(s, &c);
	if (st != CORE_OK)
		return st;
	st = store_run(c,
	               "SELECT coalesce(max(version), 0) AS v FROM schema_migrations "
	               "WHERE to_regclass('public.schema_migrations') IS NOT NULL",
	               NULL, &r);
	if (st == CORE_EINTERNAL && strcmp(store_last_sqlstate(c), "42P01") == 0)
		st = CORE_OK; /* no table yet: nothing applied */
	if (st == CORE_OK && r)
		*version_out = (int)store_i64(r, 0, "v", 0);
	PQclear(r);
	store_put(s, c);
	return st;
}

enum core_status migrate_run(struct store *s, int *applied_out)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	int applied = 0;
	bool locked = false;
	if (applied_out)
		*applied_out = 0;

	enum core_status st = store_get(s, &c);
	if (st != CORE_OK)
		return st;
	st = store_run(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", NULL, NULL);
	if (st != CORE_OK)
		goto out;
	locked = true;
	st = store_run(c,
	               "CREATE TABLE IF NOT EXISTS schema_migrations ("
	               " version integer PRIMARY KEY, name text NOT NULL,"
	               " applied_at timestamptz NOT NULL DEFAULT now())",
	               NULL, NULL);
	if (st != CORE_OK)
		goto out;

	for (int i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];
		struct store_params p = {0};
		store_param_i64(&p, m->version);
		st = store_run(c, "SELECT 1 FROM schema_migrations WHERE version = $1", &p, &r);
		if (st != CORE_OK)
			goto out;
		bool done = PQntuples(r) > 0;
		PQclear(r);
		r = NULL;
		if (done)
			continue;

		st = store_begin(c);
		if (st == CORE_OK)
			st = store_exec_script(c, m->sql);
		if (st == CORE_OK) {
			store_param_str(&p, m->name);
			st = store_run(c, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &p, NULL);
		}
		if (st == CORE_OK)
			st = store_commit(c);
		if (st != CORE_OK) {
			log_error("migration %s failed: %s", m->name, store_last_error(c));
			store_rollback(c);
			goto out;
		}
		log_info("applied migration %s", m->name);
		applied++;
	}

out:
	if (locked)
		store_run(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", NULL, NULL);
	PQclear(r);
	store_put(s, c);
	if (applied_out)
		*applied_out = applied;
	return st;
}
