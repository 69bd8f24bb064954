-- Wiki accounts keyed by central user id, each with the Matrix localpart assigned at its first login.
CREATE TABLE accounts (
  wiki text NOT NULL,
  central_id text NOT NULL,
  username text NOT NULL,
  display_name text NOT NULL,
  localpart text NOT NULL,
  -- Who chose the localpart and when, when an admin overrode the derived one.
  localpart_set_by text,
  localpart_set_at timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  last_login_at timestamptz,
  PRIMARY KEY (wiki, central_id),
  -- One service serves one homeserver, so a localpart is unique across all wikis.
  CONSTRAINT accounts_localpart_key UNIQUE (localpart),
  CONSTRAINT accounts_localpart_grammar CHECK (localpart ~ '^[a-z0-9._=/+-]+$' AND localpart !~ '^[0-9]+$'),
  CONSTRAINT accounts_localpart_override CHECK ((localpart_set_by IS NULL) = (localpart_set_at IS NULL))
);
-- Not unique: after a rename, a stale row may still hold a name that someone else has taken since.
CREATE INDEX accounts_username ON accounts (wiki, username);
