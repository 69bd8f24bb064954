-- What the wiki last said about each account at sign-in, the source of the profile, email and wiki claims.
CREATE TABLE wiki_profiles (
  wiki text NOT NULL,
  central_id text NOT NULL,
  edit_count integer NOT NULL,
  registered timestamptz,
  groups text[] NOT NULL,
  -- Only when the wiki granted the private scope and confirmed the address.
  email text,
  fetched_at timestamptz NOT NULL,
  PRIMARY KEY (wiki, central_id),
  FOREIGN KEY (wiki, central_id) REFERENCES accounts (wiki, central_id) ON DELETE CASCADE
);
