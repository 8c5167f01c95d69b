-- 02: replicas read a token minted by another replica by its digest (introspection, revocation
-- and exchange of a token whose notice has not arrived yet).
CREATE INDEX issued_tokens_digest ON issued_tokens (digest);
