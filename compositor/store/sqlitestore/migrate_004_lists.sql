-- presencehub store, migration 4: stored resource lists (RFC 4662), one row
-- per list; members and display names as JSON.
CREATE TABLE resource_lists (
    name    TEXT    PRIMARY KEY,
    event   TEXT    NOT NULL,
    members TEXT    NOT NULL,
    names   TEXT    NOT NULL,
    updated INTEGER NOT NULL
) WITHOUT ROWID;
