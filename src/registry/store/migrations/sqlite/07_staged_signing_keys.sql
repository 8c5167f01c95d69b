-- staged signing keys: published ahead of the time they start signing (key rotation
-- without a gap for resource servers that cache the JWKS).

ALTER TABLE signing_keys ADD COLUMN activates_at TEXT;
