-- 0027_job_items_attempts_before: an item's attempts count the runs before a "Retry failed" too.
--
-- Retrying a job's failed items resets their attempts, so that each retry gets the whole budget of attempts for
-- transient errors (core/jobs.h, max_attempts). The job page's Attempts column showed that counter, and said 1
-- after a retry of an item that had been tried before. attempts_before keeps what the earlier runs used;
-- the API's attempts is their sum, the budget still counts attempts alone.
ALTER TABLE job_items ADD COLUMN attempts_before integer NOT NULL DEFAULT 0 CHECK (attempts_before >= 0);
