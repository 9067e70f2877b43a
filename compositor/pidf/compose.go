package pidf

// Compose unites the documents of one resource's live publications into
// one view (RFC 3903 §1.1 composition), docs ordered oldest first: tuples
// are united and a newer tuple with the same id replaces an older one in
// place; persons and id-carrying extension elements likewise by id; notes
// are united without duplicates. The result shares data with docs, which
// must not be modified afterwards.
func Compose(entity string, docs []*Document) *Document {
	out := &Document{Entity: entity}
	tupleAt := map[string]int{}
	personAt := map[string]int{}
	extraAt := map[[3]string]int{}
	noteSeen := map[Note]bool{}
	for _, d := range docs {
		if d == nil {
			continue
		}
		for _, t := range d.Tuples {
			if i, ok := tupleAt[t.ID]; ok {
				out.Tuples[i] = t
				continue
			}
			tupleAt[t.ID] = len(out.Tuples)
			out.Tuples = append(out.Tuples, t)
		}
		for _, n := range d.Notes {
			if !noteSeen[n] {
				noteSeen[n] = true
				out.Notes = append(out.Notes, n)
			}
		}
		for _, p := range d.Persons {
			id, _ := p.Attr("id")
			if i, ok := personAt[id]; ok {
				out.Persons[i] = p
				continue
			}
			personAt[id] = len(out.Persons)
			out.Persons = append(out.Persons, p)
		}
		for _, e := range d.Extra {
			id, ok := e.Attr("id")
			if ok {
				k := [3]string{e.Space, e.Local, id}
				if i, seen := extraAt[k]; seen {
					out.Extra[i] = e
					continue
				}
				extraAt[k] = len(out.Extra)
			}
			out.Extra = append(out.Extra, e)
		}
	}
	return out
}
