-- When an identity's last token was deleted or expired, mxgate ends its ways in (its
-- devices, its Matrix sessions, its password) once, and records when here.
ALTER TABLE matrix_identities ADD COLUMN retired_at BIGINT;
