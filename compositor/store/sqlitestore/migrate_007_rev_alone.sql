-- presencehub store, migration 7: the store revision written by a
-- Replace's trigger only when the Replace is its transaction's one
-- statement (a PUBLISH at low rates, migration 5). A group commit of many
-- writes sets the revision once, at its end, instead of running the
-- trigger for each of them (about a tenth of a Replace's own work). The
-- single-write statement marks itself by setting alone = 1; the group's
-- statement leaves the column out of its SET, which keeps the trigger out
-- of it. O(1): the column's default is not written into existing rows.
ALTER TABLE publications ADD COLUMN alone INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER publications_rev_update;
CREATE TRIGGER publications_rev_alone AFTER UPDATE OF alone ON publications BEGIN
    UPDATE store_rev SET rev = NEW.rev WHERE id = 1 AND rev < NEW.rev;
END;
