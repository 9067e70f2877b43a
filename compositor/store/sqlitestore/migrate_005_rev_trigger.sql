-- presencehub store, migration 5: the store revision written by the
-- statement that writes a publication. A PUBLISH at low rates is then one
-- statement in its own (autocommit) transaction instead of four (BEGIN, the
-- write, the revision row, COMMIT). Deletes, whose revision no row keeps,
-- still write store_rev themselves.
CREATE TRIGGER publications_rev_insert AFTER INSERT ON publications BEGIN
    UPDATE store_rev SET rev = NEW.rev WHERE id = 1 AND rev < NEW.rev;
END;

CREATE TRIGGER publications_rev_update AFTER UPDATE OF rev ON publications BEGIN
    UPDATE store_rev SET rev = NEW.rev WHERE id = 1 AND rev < NEW.rev;
END;
