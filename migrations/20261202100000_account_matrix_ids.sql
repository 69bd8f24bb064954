-- The Matrix ID the homeserver really gave each account (Synapse re-escapes and suffixes localparts), and when it was last asked.
ALTER TABLE accounts ADD COLUMN matrix_user_id text, ADD COLUMN matrix_user_id_checked_at timestamptz;
