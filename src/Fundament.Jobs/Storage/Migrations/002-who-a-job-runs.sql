-- who a job runs for (the queuedJobs quota)
ALTER TABLE jobs_items ADD COLUMN owner TEXT NULL;
CREATE INDEX ix_jobs_items_owner ON jobs_items (owner, state);
