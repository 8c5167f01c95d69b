-- long campaign work in short, resumable steps (see sqlite_reviews.rs, `CampaignWork`):
-- the instant and actor the work runs as, its cursor (last agent id snapshotted, last item
-- id settled), its progress, and the close's running totals for its audit event.

ALTER TABLE campaigns ADD COLUMN work_at TEXT;
ALTER TABLE campaigns ADD COLUMN work_actor TEXT;
ALTER TABLE campaigns ADD COLUMN work_agent_cursor TEXT NOT NULL DEFAULT '';
ALTER TABLE campaigns ADD COLUMN work_item_cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN work_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN work_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN work_agents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN close_kept INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN close_revoked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN close_already_gone INTEGER NOT NULL DEFAULT 0;
