-- Every mirrored action with its wiki cause and outcome, for admins (page, JSON API) and post-mortems.
CREATE TABLE moderation_audit (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL,
  pass_id text NOT NULL,
  dry_run boolean NOT NULL,
  -- The action kind: ban, unban, set_power_levels, invite, kick, suspend, unsuspend, publish_policy, retract_policy, forget, report.
  kind text NOT NULL,
  room_id text,
  user_id text,
  -- The wiki cause: kind, wiki, block id, log id, blocker, reason, timestamp, expiry, group, hidden.
  cause jsonb,
  outcome text NOT NULL CHECK (outcome IN ('applied', 'unchanged', 'dry_run', 'failed', 'lacks_power', 'reported')),
  error text,
  -- What was done in words and figures: the ban reason, a level change, a report message.
  detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX moderation_audit_user ON moderation_audit (user_id, id DESC);
CREATE INDEX moderation_audit_room ON moderation_audit (room_id, id DESC);
CREATE INDEX moderation_audit_kind ON moderation_audit (kind, id DESC);
