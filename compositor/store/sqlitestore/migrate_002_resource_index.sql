-- presencehub Event State Compositor store, migration 2.
-- Index publications by resource alone: the revision changes on every write,
-- so the (resource, rev) index had an entry rewritten by every PUBLISH. Lists
-- of one resource are small and sorted after the lookup.
DROP INDEX publications_by_resource;
CREATE INDEX publications_by_resource ON publications (resource);
