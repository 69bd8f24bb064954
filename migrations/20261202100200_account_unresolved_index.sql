-- Accounts whose Matrix ID is not known yet are re-checked oldest check first, a few per pass.
CREATE INDEX accounts_unresolved_matrix_id ON accounts (wiki, matrix_user_id_checked_at NULLS FIRST) WHERE matrix_user_id IS NULL;
