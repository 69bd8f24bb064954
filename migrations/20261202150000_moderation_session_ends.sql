-- A person whose sessions the service ended for a wiki sanction (`moderation.sessions`): while the
-- record stands, the provider refuses their refresh tokens and userinfo.
ALTER TABLE moderation_records DROP CONSTRAINT moderation_records_kind_check;
ALTER TABLE moderation_records ADD CONSTRAINT moderation_records_kind_check CHECK (kind IN ('ban', 'level', 'invite', 'policy_rule', 'suspension', 'session_end'));
