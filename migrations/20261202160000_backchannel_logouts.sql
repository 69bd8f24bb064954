-- Back-channel logouts a relying party has not taken yet (down, refusing): tried again, with
-- back-off, until delivered or the relying party's session would have expired anyway.
CREATE TABLE backchannel_logouts (
  id bigserial PRIMARY KEY,
  client_id text NOT NULL,
  sub text NOT NULL,
  sid text NOT NULL,
  attempts integer NOT NULL DEFAULT 1,
  next_attempt_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX backchannel_logouts_due ON backchannel_logouts (next_attempt_at);
