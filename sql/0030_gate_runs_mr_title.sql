-- 0030_gate_runs_mr_title: the title of the merge request a gate run was queued for without a webhook.
--
-- A run queued by a webhook reads its MR's title from the delivery (webhook_events.payload); a run queued by an apply
-- (a repo whose gating starts, or whose hook comes back after an outage) had none, and the Gates page listed those
-- runs as "!3" with no title: every open MR of a group gated for the first time. The apply reads the open MRs from
-- GitLab's list, which has the title; it is kept here (NULL for a run queued by a webhook).
ALTER TABLE gate_runs ADD COLUMN mr_title text;
