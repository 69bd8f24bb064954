-- The retention purge finds what has outlived `retention.days` through indexes: audit entries still holding personal details, and cached wiki profiles by when they were fetched.
CREATE INDEX moderation_audit_detailed_at ON moderation_audit (at)
  WHERE user_id IS NOT NULL OR cause IS NOT NULL OR error IS NOT NULL OR detail <> '{}'::jsonb;
CREATE INDEX wiki_profiles_fetched_at ON wiki_profiles (fetched_at);
