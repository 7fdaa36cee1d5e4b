/*
 * core/gate.h
 *    The merge-request gate: evaluate every new head commit of an open MR in a gated repo and post mrgate's
 *    verdict as a commit status (and a sticky MR note). This header gathers the gate's modules for its callers.
 *
 * Design: the webhook receiver (core/webhook.c) stores a gate run (state queued) in the same transaction as the
 * event and commits before GitLab gets its 2xx; worker threads of every `mrgate serve` claim queued runs under a
 * lease and execute them, so a crash between store and run loses nothing and a killed instance's runs get their
 * verdict within a lease. The gate is split by responsibility, one module per job:
 *   gate_config.h     the effective config of a repo, as the gate needs it (the one adapter to core/gateconfig.h)
 *   gate_queue.h      the durable queue: enqueue (superseding older heads of the MR), claim, lease renewal
 *   gate_workers.h    the worker pool and its lease heartbeat; gate_kick() wakes it
 *   gate_run.h        one run: MR, pending status, scan, verdict, results, status, sticky note
 *   gate_scan.h       the scanning half of a run: diffs, trees where GitLab's diffs fall short, scanners
 *   gate_store.h      a run's findings and verdict in the database
 *   gate_report.h     pure: the verdict and its description, the note's Markdown, the order of findings
 *   gate_inline.h     comment mode inline: a discussion on the line of each new finding, resolved once it is gone
 *   gate_status.h     mrgate's commit status (the one POST of it; also used by core/gatehold.h)
 *   gate_open_mrs.h   gating starts or stops for a repo: its open MRs are queued, or their statuses released
 *   gate_read.h       GET /api/gates and /api/gates/:id
 * Verdict: failed iff a counted finding has severity >= fail_on. Problems that leave part of the change unscanned
 * (no scanner configured for an enabled type, a scanner that failed, unscannable files, SARIF results that could
 * not be read) are notes in the description and fail the gate when the fail mode is closed (the default). A run
 * past the gate timeout posts failed "timed out" (closed) or success "timed out" (open). fail_on never always
 * posts success, with the counts. A newer head commit for the same MR marks older queued/running runs superseded;
 * a superseded run never posts its verdict. The verdict is also held in the pipeline GitLab's merge check reads
 * (core/gatehold.h).
 * Threading: gate_workers_* own their threads; every other function is thread-safe.
 * Ownership: stated in each module's header.
 */
#ifndef MRGATE_CORE_GATE_H
#define MRGATE_CORE_GATE_H

#include "gate_config.h"
#include "gate_inline.h"
#include "gate_open_mrs.h"
#include "gate_queue.h"
#include "gate_read.h"
#include "gate_report.h"
#include "gate_run.h"
#include "gate_status.h"
#include "gate_store.h"
#include "gate_workers.h"

#endif
