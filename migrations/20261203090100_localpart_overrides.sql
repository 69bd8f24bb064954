-- Localparts admins chose for wiki accounts that have not signed in yet, by (canonical) username.
-- The first sign-in of that username takes it (and the row goes: the account then records who set
-- it); until then no other account is given it.
CREATE TABLE localpart_overrides (
  wiki text NOT NULL,
  username text NOT NULL,
  localpart text NOT NULL,
  set_by text NOT NULL,
  set_at timestamptz NOT NULL,
  PRIMARY KEY (wiki, username),
  CONSTRAINT localpart_overrides_localpart_key UNIQUE (localpart),
  CONSTRAINT localpart_overrides_grammar CHECK (localpart ~ '^[a-z0-9._=/+-]+$' AND localpart !~ '^[0-9]+$')
);
