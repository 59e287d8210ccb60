-- The MIROCALS audit table (optional PostgreSQL sink of data_access/audit.py, env MIROCALS_AUDIT_DSN).
--
-- Run once per database by an administrator (a superuser, or a role with CREATEROLE that owns the
-- database), either
--     mirocals audit init-db --dsn "host=DBHOST dbname=mirocals_audit user=postgres"
-- or  psql "host=DBHOST dbname=mirocals_audit user=postgres" -v ON_ERROR_STOP=1 -f data_access/audit_pg.sql
-- then give the app role a password (psql: \password mirocals_audit_app) and set, for the dashboard,
-- the command line and the render pipeline,
--     MIROCALS_AUDIT_DSN="host=DBHOST dbname=mirocals_audit user=mirocals_audit_app"
-- (the password in ~/.pgpass or PGPASSWORD rather than in the DSN). Re-running it changes nothing.
--
-- One row per entry. `line` is the entry exactly as the JSON-lines file would hold it (the same
-- schema and the same hash rule: `prev` inside it is the SHA-256 of the previous row's `line`, so
-- data_access.audit verifies the table and the file with one function). `prev` and `hash` repeat
-- what `line` says, as columns the database can check: `prev` UNIQUE means two entries can never
-- claim the same predecessor, so even a writer that skipped the append lock cannot fork the chain.
--
-- Append-only: the app role may INSERT and SELECT, nothing else (no UPDATE, DELETE, TRUNCATE);
-- the owner role cannot log in, and a trigger refuses UPDATE, DELETE and TRUNCATE even to it. A
-- superuser can still bypass all of this; `mirocals audit verify` then names the first broken row.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mirocals_audit_owner') THEN
        CREATE ROLE mirocals_audit_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mirocals_audit_app') THEN
        CREATE ROLE mirocals_audit_app LOGIN;
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS audit_log (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    line       text NOT NULL,
    prev       text NOT NULL UNIQUE,
    hash       text NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_log_hash_is_sha256_of_line CHECK (hash = encode(sha256(convert_to(line, 'UTF8')), 'hex')),
    CONSTRAINT audit_log_prev_is_in_line CHECK (prev = (line::jsonb ->> 'prev'))
);
ALTER TABLE audit_log OWNER TO mirocals_audit_owner;

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
ALTER FUNCTION audit_log_append_only() OWNER TO mirocals_audit_owner;

DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- the identity column's sequence is used by INSERT itself: the app role needs no grant on it
REVOKE ALL ON audit_log FROM PUBLIC;
REVOKE ALL ON audit_log FROM mirocals_audit_app;
GRANT SELECT, INSERT ON audit_log TO mirocals_audit_app;
