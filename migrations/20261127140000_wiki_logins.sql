-- Sign-ins in progress at the wiki: the OAuth state, bound to one oidc-provider interaction and one browser.
CREATE TABLE wiki_logins (
  state text PRIMARY KEY,
  interaction_uid text NOT NULL,
  -- SHA-256 of the random value in the browser's binding cookie: a state is only good in the browser that started it.
  browser_hash text NOT NULL,
  code_verifier text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  -- Set once by the wiki's callback: a replayed callback finds it set and is refused.
  callback_at timestamptz,
  -- The account that signed in, handed to the interaction exactly once.
  account_wiki text,
  account_central_id text,
  completed_at timestamptz
);
CREATE INDEX wiki_logins_browser ON wiki_logins (browser_hash, created_at);
CREATE INDEX wiki_logins_expires_at ON wiki_logins (expires_at);
