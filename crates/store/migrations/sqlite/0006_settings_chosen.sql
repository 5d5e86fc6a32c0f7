-- The settings every replica shares are chosen once: by the first replica
-- to start on a fresh database, or by `meetpool migrate`. A replica started
-- with other settings refuses to start rather than overwrite them. Settings
-- that differ from the defaults were chosen by an earlier release.
ALTER TABLE meetpool_settings ADD COLUMN chosen INTEGER NOT NULL DEFAULT 0 CHECK (chosen IN (0, 1));
UPDATE meetpool_settings SET chosen = (timezone <> 'UTC' OR buffer_minutes <> 0);
