-- Applications allowed to use public-client flows (Graph's
-- isFallbackPublicClient): only they may use the password grant without
-- authenticating.
ALTER TABLE applications ADD COLUMN public_client INTEGER NOT NULL DEFAULT 0;
