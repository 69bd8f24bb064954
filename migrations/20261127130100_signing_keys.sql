-- Signing keys for ID tokens and JWTs: public JWK in clear, private members encrypted, rotated with an overlap.
CREATE TABLE oidc_signing_keys (
  kid text PRIMARY KEY,
  alg text NOT NULL CHECK (alg IN ('RS256', 'ES256')),
  public_jwk jsonb NOT NULL,
  private_kdf text NOT NULL,
  private_salt bytea NOT NULL,
  private_iv bytea NOT NULL,
  private_tag bytea NOT NULL,
  private_ciphertext bytea NOT NULL,
  created_at timestamptz NOT NULL,
  retire_after timestamptz
);
CREATE UNIQUE INDEX oidc_signing_keys_one_active_per_alg ON oidc_signing_keys (alg) WHERE retire_after IS NULL;
