package pidf

import "github.com/presencehub/presencehub/compositor/internal/xmltree"

var writer = xmltree.Writer{Prefixes: map[string]string{
	NSDM: "dm", NSRPID: "rpid", NSCIPID: "c", NSCaps: "caps",
}}

const header = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// AppendXML appends the document as application/pidf+xml.
func (d *Document) AppendXML(dst []byte) []byte {
	dst = append(dst, header...)
	dst = append(dst, `<presence xmlns="`+NS+`"`...)
	if d.hasExtensions() {
		dst = append(dst, ` xmlns:dm="`+NSDM+`" xmlns:rpid="`+NSRPID+`" xmlns:c="`+NSCIPID+`" xmlns:caps="`+NSCaps+`"`...)
	}
	dst = append(dst, ` entity="`...)
	dst = xmltree.AppendAttr(dst, d.Entity)
	dst = append(dst, `">`...)
	for i := range d.Tuples {
		dst = d.Tuples[i].appendXML(dst)
	}
	dst = appendNotes(dst, d.Notes)
	for i := range d.Persons {
		dst = writer.AppendElement(dst, &d.Persons[i], NS)
	}
	for i := range d.Extra {
		dst = writer.AppendElement(dst, &d.Extra[i], NS)
	}
	return append(dst, "</presence>\n"...)
}

func (d *Document) hasExtensions() bool {
	if len(d.Persons) > 0 || len(d.Extra) > 0 {
		return true
	}
	for i := range d.Tuples {
		if len(d.Tuples[i].Extra) > 0 || len(d.Tuples[i].StatusExtra) > 0 {
			return true
		}
	}
	return false
}

func (t *Tuple) appendXML(dst []byte) []byte {
	dst = append(dst, `<tuple id="`...)
	dst = xmltree.AppendAttr(dst, t.ID)
	dst = append(dst, `"><status>`...)
	if t.Basic != "" {
		dst = append(dst, "<basic>"...)
		dst = xmltree.AppendText(dst, t.Basic)
		dst = append(dst, "</basic>"...)
	}
	for i := range t.StatusExtra {
		dst = writer.AppendElement(dst, &t.StatusExtra[i], NS)
	}
	dst = append(dst, "</status>"...)
	for i := range t.Extra {
		dst = writer.AppendElement(dst, &t.Extra[i], NS)
	}
	if t.Contact != "" {
		dst = append(dst, "<contact"...)
		if t.ContactPriority != "" {
			dst = append(dst, ` priority="`...)
			dst = xmltree.AppendAttr(dst, t.ContactPriority)
			dst = append(dst, '"')
		}
		dst = append(dst, '>')
		dst = xmltree.AppendText(dst, t.Contact)
		dst = append(dst, "</contact>"...)
	}
	dst = appendNotes(dst, t.Notes)
	if t.Timestamp != "" {
		dst = append(dst, "<timestamp>"...)
		dst = xmltree.AppendText(dst, t.Timestamp)
		dst = append(dst, "</timestamp>"...)
	}
	return append(dst, "</tuple>"...)
}

func appendNotes(dst []byte, notes []Note) []byte {
	for _, n := range notes {
		dst = append(dst, "<note"...)
		if n.Lang != "" {
			dst = append(dst, ` xml:lang="`...)
			dst = xmltree.AppendAttr(dst, n.Lang)
			dst = append(dst, '"')
		}
		dst = append(dst, '>')
		dst = xmltree.AppendText(dst, n.Text)
		dst = append(dst, "</note>"...)
	}
	return dst
}
