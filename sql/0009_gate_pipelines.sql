-- 0009_gate_pipelines: the pipelines a gate run's verdict was posted into besides its own (GitLab's merge check
-- reads only the MR's head pipeline, which can be a CI pipeline created after mrgate posted, or a merged-results
-- pipeline on a merge commit). One row per run and pipeline with the state last posted there, so a pipeline event
-- that mrgate's own post caused posts nothing again, and a run that finishes updates every pipeline it left pending.

CREATE TABLE gate_pipeline_posts (
    run_id      bigint NOT NULL REFERENCES gate_runs(id) ON DELETE CASCADE,
    project_id  bigint NOT NULL,      -- the pipeline's project (where the status was posted)
    pipeline_id bigint NOT NULL,
    sha         text NOT NULL,        -- the pipeline's sha (a merge commit for merged results)
    state       text NOT NULL,        -- pending | success | failed
    posted_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, pipeline_id)
);
