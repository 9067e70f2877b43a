-- presencehub Event State Compositor store, migration 3.
-- Totals kept by triggers in the same transactions as the rows, so that
-- /metrics, the admin API and per-publisher limits read them in O(1)
-- instead of counting the table. Keys: 'e:<event>' live publications of an
-- event package, 'p:<publisher>' publications of a publisher, 'r' distinct
-- resources.
CREATE TABLE publication_counts (
    key TEXT    PRIMARY KEY,
    n   INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO publication_counts (key, n) SELECT 'e:' || event, COUNT(*) FROM publications GROUP BY event;
INSERT INTO publication_counts (key, n) SELECT 'p:' || publisher, COUNT(*) FROM publications GROUP BY publisher;
INSERT INTO publication_counts (key, n) SELECT 'r', COUNT(DISTINCT resource) FROM publications;

CREATE TRIGGER publications_count_insert AFTER INSERT ON publications BEGIN
    INSERT INTO publication_counts (key, n) VALUES ('e:' || NEW.event, 1), ('p:' || NEW.publisher, 1)
        ON CONFLICT (key) DO UPDATE SET n = n + 1;
    UPDATE publication_counts SET n = n + 1 WHERE key = 'r'
        AND NOT EXISTS (SELECT 1 FROM publications WHERE resource = NEW.resource AND id <> NEW.id);
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

-- The store revision is written by every commit from now on (start-up
-- reads it instead of MAX(rev) over the whole table).
UPDATE store_rev SET rev = max(rev, (SELECT COALESCE(MAX(rev), 0) FROM publications)) WHERE id = 1;
