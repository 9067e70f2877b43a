package natsstore

import "strings"

// encodeToken writes s as one NATS subject token: bytes outside
// [A-Za-z0-9_-] become "=XX" (upper-case hex), so "sip:1001@example.com"
// is "sip=3A1001=40example=2Ecom". The empty string is "=".
func encodeToken(s string) string {
	if s == "" {
		return "="
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('=')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// decodeToken reverses encodeToken; ok is false for a token it did not
// write.
func decodeToken(t string) (string, bool) {
	if t == "=" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(t) {
			return "", false
		}
		hi, ok1 := unhex(t[i+1])
		lo, ok2 := unhex(t[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// pubKey is the bucket key of a publication.
func pubKey(resource, event, id string) string {
	return encodeToken(resource) + "." + encodeToken(event) + "." + encodeToken(id)
}

// splitKey returns the resource, event and id a key names.
func splitKey(key string) (resource, event, id string, ok bool) {
	parts := strings.Split(key, ".")
	if len(parts) != 3 {
		return "", "", "", false
	}
	var ok1, ok2, ok3 bool
	resource, ok1 = decodeToken(parts[0])
	event, ok2 = decodeToken(parts[1])
	id, ok3 = decodeToken(parts[2])
	return resource, event, id, ok1 && ok2 && ok3
}
