-- The wiki name an account had before a rename, until the homeserver's display name has followed it.
ALTER TABLE accounts ADD COLUMN renamed_from text;
CREATE INDEX accounts_renamed_from ON accounts (wiki) WHERE renamed_from IS NOT NULL;
