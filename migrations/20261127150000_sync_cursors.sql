-- Where each moderation source stopped reading (log positions, the EventStreams Last-Event-ID), so a restart resumes there.
CREATE TABLE sync_cursors (
  name text PRIMARY KEY,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL
);
