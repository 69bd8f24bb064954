-- What admins asked the leading worker to do (a dry-run plan of a full pass, applying that plan,
-- reconciling one person again): serve writes a request, the leader takes it, runs it under its
-- leadership like any pass, and writes the answer here. Nothing but the leader changes Matrix.
CREATE TABLE moderation_requests (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('plan', 'apply', 'retry')),
  requested_by text NOT NULL,
  requested_at timestamptz NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}',
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'refused', 'failed')),
  result jsonb,
  finished_at timestamptz
);
CREATE INDEX moderation_requests_pending ON moderation_requests (id) WHERE state = 'pending';

-- What the leading worker last reported about itself (its process, passes, polls, EventStreams),
-- for the admin pages of every serve replica.
CREATE TABLE worker_status (
  name text PRIMARY KEY,
  holder text NOT NULL,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL
);
