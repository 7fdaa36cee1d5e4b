/*
 * core/gate_store.h
 *    A gate run's results in the database: its findings (table gate_findings) and its verdict, description, counts,
 *    notes, the config it ran with and its timings (table gate_runs), which GET /api/gates/:id and the dashboard's
 *    report read back (core/gate_read.h).
 *
 * Design: one transaction replaces the run's findings and writes its row, guarded by the run's lease (a run another
 * instance took over is not overwritten); the run's state stays running until its status is posted
 * (core/gate_run.c). At most 5000 findings are stored, most severe first (gate_report_order); text a scanner or a
 * merge request controls is made valid UTF-8 first ('?' for invalid bytes: PostgreSQL refuses them).
 * Threading: thread-safe (one pooled connection per call).
 * Ownership: all inputs are borrowed.
 */
#ifndef MRGATE_CORE_GATE_STORE_H
#define MRGATE_CORE_GATE_STORE_H

#include "gate_config.h"
#include "gate_report.h"
#include "gate_scan.h"
#include "status.h"
#include "store.h"

#include <stdint.h>

/* Store the findings and the decision of run_id, leased by owner. */
enum core_status gate_store_results(struct store *db, int64_t run_id, const char *owner, const struct gate_decision *d,
                                    const struct gate_config *cfg, const struct gate_scan_state *scan);

#endif
