-- presencehub store, migration 6: a PUBLISH rewrites as few pages as
-- possible. The table is rebuilt once (every row copied):
--   * a rowid table with the id as a UNIQUE column: a row of up to ~4 KB
--     stays on its leaf page (a WITHOUT ROWID row over ~1 KB spills into an
--     overflow page that every write frees and allocates again), and the id
--     index does not move when the row is rewritten;
--   * no index on the entity-tag: it is new on every PUBLISH, so its index
--     had two entries rewritten at random places by every write. Entity-tags
--     are looked up within a resource (FindByETag) by the resource index and
--     kept unique within their resource by the writes themselves.
-- The triggers of migrations 3 and 5 go with the old table and are made
-- again on the new one.
CREATE TABLE publications_v6 (
    seq          INTEGER PRIMARY KEY,  -- rowid
    id           TEXT    NOT NULL UNIQUE,
    resource     TEXT    NOT NULL,
    event        TEXT    NOT NULL,
    etag         TEXT    NOT NULL,
    rev          INTEGER NOT NULL,
    expires      INTEGER NOT NULL,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    content_type TEXT    NOT NULL,
    publisher    TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    meta         BLOB    NOT NULL
);
INSERT INTO publications_v6 (id, resource, event, etag, rev, expires, created, updated, content_type, publisher, body, meta)
    SELECT id, resource, event, etag, rev, expires, created, updated, content_type, publisher, body, meta
    FROM publications ORDER BY resource, rev;
DROP TABLE publications;
ALTER TABLE publications_v6 RENAME TO publications;

CREATE INDEX publications_by_resource ON publications (resource);
CREATE INDEX publications_by_expires ON publications (expires);

CREATE TRIGGER publications_count_insert AFTER INSERT ON publications BEGIN
    INSERT INTO publication_counts (key, n) VALUES ('e:' || NEW.event, 1), ('p:' || NEW.publisher, 1)
        ON CONFLICT (key) DO UPDATE SET n = n + 1;
    UPDATE publication_counts SET n = n + 1 WHERE key = 'r'
        AND NOT EXISTS (SELECT 1 FROM publications WHERE resource = NEW.resource AND seq <> NEW.seq);
END;

CREATE TRIGGER publications_count_delete AFTER DELETE ON publications BEGIN
    UPDATE publication_counts SET n = n - 1 WHERE key IN ('e:' || OLD.event, 'p:' || OLD.publisher);
    DELETE FROM publication_counts WHERE key = 'p:' || OLD.publisher AND n <= 0;
    UPDATE publication_counts SET n = n - 1 WHERE key = 'r'
        AND NOT EXISTS (SELECT 1 FROM publications WHERE resource = OLD.resource);
END;

CREATE TRIGGER publications_count_publisher AFTER UPDATE OF publisher ON publications
WHEN OLD.publisher <> NEW.publisher BEGIN
    UPDATE publication_counts SET n = n - 1 WHERE key = 'p:' || OLD.publisher;
    DELETE FROM publication_counts WHERE key = 'p:' || OLD.publisher AND n <= 0;
    INSERT INTO publication_counts (key, n) VALUES ('p:' || NEW.publisher, 1)
        ON CONFLICT (key) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER publications_rev_insert AFTER INSERT ON publications BEGIN
    UPDATE store_rev SET rev = NEW.rev WHERE id = 1 AND rev < NEW.rev;
END;

CREATE TRIGGER publications_rev_update AFTER UPDATE OF rev ON publications BEGIN
    UPDATE store_rev SET rev = NEW.rev WHERE id = 1 AND rev < NEW.rev;
END;
