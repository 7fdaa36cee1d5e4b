-- 0010_gate_heartbeat: gate runs are leased like job items. A worker holds a run for one lease
-- (MRGATE_JOB_LEASE_MS) and its instance's heartbeat renews it every third of that; a run of a killed instance is
-- taken over once its lease runs out, instead of after the whole gate timeout and a margin.

-- When the lease was last taken or renewed (NULL: never claimed, or claimed by a version without a heartbeat).
ALTER TABLE gate_runs ADD COLUMN heartbeat_at timestamptz;

-- Takeover looks for running runs whose lease ran out.
CREATE INDEX gate_runs_lease_idx ON gate_runs (lease_until) WHERE state = 'running';
