-- Each leader term has a generation, bumped by the worker that takes the lock; records are written only by the current generation (fencing).
CREATE TABLE leader_terms (
  name text PRIMARY KEY,
  generation bigint NOT NULL,
  holder text NOT NULL,
  acquired_at timestamptz NOT NULL
);
