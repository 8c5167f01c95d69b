-- case-insensitive email lookups (every sign-in, owner change and review) use an index
-- instead of scanning every person.

CREATE INDEX people_email_nocase ON people(email COLLATE NOCASE);
