-- whether a staff token may see learner display names (looked up from ingest when shown)
ALTER TABLE staff_tokens ADD COLUMN see_names boolean NOT NULL DEFAULT false;
