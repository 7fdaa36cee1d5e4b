-- 0012_gate_bypass: an editor may bypass a failed gate run with a reason (DESIGN.md §1.7, issue 16). mrgate posts
-- `success` on the run's head commit ("bypassed by NAME: reason") and the run's verdict becomes `bypassed`; who,
-- why and when are kept on the run (and in the audit log). A newer push is a new run, gated normally.

ALTER TABLE gate_runs DROP CONSTRAINT gate_runs_verdict_check;
ALTER TABLE gate_runs ADD CONSTRAINT gate_runs_verdict_check
    CHECK (verdict IN ('passed', 'failed', 'error', 'timeout', 'skipped', 'bypassed'));
ALTER TABLE gate_runs
    ADD COLUMN bypassed_by   text,
    ADD COLUMN bypass_reason text,
    ADD COLUMN bypassed_at   timestamptz,
    ADD CONSTRAINT gate_runs_bypass_check
        CHECK ((verdict = 'bypassed') = (bypassed_by IS NOT NULL AND bypass_reason IS NOT NULL AND bypassed_at IS NOT NULL));
