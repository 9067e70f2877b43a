package compositor

import "strings"

// sameAOR reports whether a body's entity names the Request-URI's
// resource (RFC 3903 §6 step 4: the state must be about the resource
// published to). sip:, sips: and pres: name the same AOR; scheme and host
// compare case-insensitively, the user part exactly; URI parameters and
// headers are ignored; "user@host" without a scheme is read as sip:.
func sameAOR(entity, resource string) bool {
	ua, ha, ok1 := splitAOR(entity)
	ub, hb, ok2 := splitAOR(resource)
	return ok1 && ok2 && ua == ub && strings.EqualFold(ha, hb)
}

// splitAOR returns the user and host of a sip:, sips: or pres: URI (or of
// a scheme-less user@host).
func splitAOR(u string) (user, host string, ok bool) {
	u = strings.TrimSpace(u)
	u = strings.TrimSuffix(strings.TrimPrefix(u, "<"), ">")
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok || strings.Contains(scheme, "@") {
		// "user@host" without a scheme: Kamailio's pua_usrloc writes the
		// PIDF entity so (RFC 3863 §4.1.1 asks for a URI); read it as sip:.
		scheme, rest = "sip", u
	}
	switch strings.ToLower(scheme) {
	case "sip", "sips", "pres":
	default:
		return "", "", false
	}
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i]
	}
	user, host, ok = strings.Cut(rest, "@")
	if !ok {
		user, host = "", rest
	}
	if host == "" {
		return "", "", false
	}
	return user, host, true
}
