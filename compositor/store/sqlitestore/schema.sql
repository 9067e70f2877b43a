-- presencehub Event State Compositor store, migration 1.
-- Applied once inside a transaction; its version is recorded in schema_migrations.

-- One row per live publication (RFC 3903 event state for one entity-tag).
CREATE TABLE publications (
    id           TEXT    PRIMARY KEY,  -- stable random id
    resource     TEXT    NOT NULL,     -- AOR sip:user@domain
    event        TEXT    NOT NULL,     -- event package
    etag         TEXT    NOT NULL UNIQUE,
    rev          INTEGER NOT NULL,     -- revision of the commit that wrote the row
    expires      INTEGER NOT NULL,     -- unix nanoseconds
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    content_type TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    publisher    TEXT    NOT NULL,
    meta         BLOB    NOT NULL      -- compositor bookkeeping (dialog tombstones)
) WITHOUT ROWID;

CREATE INDEX publications_by_resource ON publications (resource, rev);
CREATE INDEX publications_by_expires ON publications (expires);

-- Highest revision handed out by a delete; revisions stay increasing across
-- restarts even when the newest rows were deleted.
CREATE TABLE store_rev (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    rev INTEGER NOT NULL
);
INSERT INTO store_rev (id, rev) VALUES (1, 0);
