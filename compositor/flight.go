package compositor

import "github.com/presencehub/presencehub/compositor/store"

// flight is the parsed body of one of Publish's writes, with the id of
// the publication written.
type flight struct {
	id   string
	body parsed
}

// takeOff records body (with its bookkeeping, hasMeta set) as the parsed
// form of the publication p about to be written; land forgets it. The
// body is read, never changed, by whoever applies the write first.
func (c *cache) takeOff(p store.Publication, body parsed) {
	c.flightMu.Lock()
	c.inFlight[p.ETag] = flight{id: p.ID, body: body}
	c.flightMu.Unlock()
}

// land forgets what takeOff recorded under etag.
func (c *cache) land(etag string) {
	c.flightMu.Lock()
	delete(c.inFlight, etag)
	c.flightMu.Unlock()
}

// flying returns the parsed body Publish recorded for p, if its write is
// still between the store and the cache.
func (c *cache) flying(p store.Publication) (parsed, bool) {
	c.flightMu.Lock()
	f, ok := c.inFlight[p.ETag]
	c.flightMu.Unlock()
	if !ok || f.id != p.ID {
		return parsed{}, false
	}
	return f.body, true
}
