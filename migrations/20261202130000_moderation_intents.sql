-- A change to Matrix written down before it is made, whose effect the room state cannot attribute
-- (a power levels event says who sent it, not which of its entries the service owns). Deleted in
-- the transaction that records the change; one left behind by a crash is resolved by the next pass
-- from the room state.
CREATE TABLE moderation_intents (
  id bigserial PRIMARY KEY,
  pass_id text NOT NULL,
  room_id text NOT NULL,
  action jsonb NOT NULL,
  created_at timestamptz NOT NULL
);
