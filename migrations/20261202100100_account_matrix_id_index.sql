-- A Matrix ID belongs to one account: finding the account behind a Matrix ID (expiries, whois) is one lookup.
CREATE UNIQUE INDEX accounts_matrix_user_id ON accounts (matrix_user_id) WHERE matrix_user_id IS NOT NULL;
