-- A suspension made as a lock (`moderation.suspend.measure: lock`), kept as its own kind so that it
-- is lifted as it was made even when the setting changes meanwhile.
ALTER TABLE moderation_records DROP CONSTRAINT moderation_records_kind_check;
ALTER TABLE moderation_records ADD CONSTRAINT moderation_records_kind_check CHECK (kind IN ('ban', 'level', 'invite', 'policy_rule', 'suspension', 'lock', 'session_end'));
