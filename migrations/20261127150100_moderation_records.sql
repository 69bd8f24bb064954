-- What moderation mirroring did in Matrix (bans, levels, invites, policy rules, suspensions), so it only ever undoes its own doing.
CREATE TABLE moderation_records (
  -- ban | level | invite | policy_rule | suspension
  kind text NOT NULL CHECK (kind IN ('ban', 'level', 'invite', 'policy_rule', 'suspension')),
  -- '' for suspensions, which are homeserver-wide.
  room_id text NOT NULL,
  -- The user id; the state key for policy rules.
  key text NOT NULL,
  -- The Matrix user concerned (the rule's entity for policy rules), for targeted loads.
  user_id text NOT NULL,
  -- The level the service set (levels only).
  level bigint,
  cause jsonb NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (kind, room_id, key)
);
CREATE INDEX moderation_records_user ON moderation_records (user_id);
