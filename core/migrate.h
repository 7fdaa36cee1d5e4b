/*
 * core/migrate.h
 *    Forward-only schema migrations: sql/NNNN_name.sql, embedded in the binary at build time.
 *
 * Design: each migration runs in its own transaction together with the row that records it in
 * schema_migrations, so a migration is either fully applied and recorded or not at all. A session-level
 * advisory lock serialises instances: two servers starting at once never both apply a migration; the second
 * waits, then finds nothing left to do. Shipped migration files are never edited; a change is a new file.
 */
#ifndef MRGATE_CORE_MIGRATE_H
#define MRGATE_CORE_MIGRATE_H

#include "status.h"
#include "store.h"

struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[]; /* ascending by version */
extern const int migrations_count;

/* Apply every pending migration. *applied_out (may be NULL) gets how many were applied now. */
enum core_status migrate_run(struct store *s, int *applied_out);

/* The newest version known to this binary. */
int migrate_latest(void);

/* The newest version recorded in the database (0 when none); CORE_EUNAVAIL when unreachable. */
enum core_status migrate_current(struct store *s, int *version_out);

#endif
