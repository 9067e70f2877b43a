package siprule

import (
	"strings"
	"unicode/utf8"
)

// ValidHost accepts host names and IPv4/IPv6 literals (RFC 3261 §25.1
// host): the characters that cannot break a header or a request line when
// echoed back.
func ValidHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_:[]", c) >= 0) {
			return false
		}
	}
	return true
}

// ValidSentBy accepts host[:port] (RFC 3261 §20.42 sent-by).
func ValidSentBy(sb string) bool {
	host, port := sb, ""
	if i := strings.LastIndexByte(sb, ':'); i >= 0 && !strings.HasSuffix(sb, "]") {
		host, port = sb[:i], sb[i+1:]
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return false
		}
	}
	if strings.HasPrefix(host, "[") {
		return strings.HasSuffix(host, "]") && ValidHost(host)
	}
	return ValidHost(host) && !strings.Contains(host, ":")
}

// IsToken reports whether s is a non-empty RFC 3261 §25.1 token.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return true
}

// ValidCallID reports whether v is RFC 3261 §25.1 callid = word [ "@" word ].
func ValidCallID(v string) bool {
	word, host, found := strings.Cut(v, "@")
	return isWord(word) && (!found || isWord(host))
}

func isWord(w string) bool {
	if w == "" {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~()<>:\\\"/[]?{}", c) >= 0) {
			return false
		}
	}
	return true
}

// ValidText reports whether a header value may be copied into a message the
// hub sends: valid UTF-8 (display names may hold any language) without
// control characters other than HTAB (RFC 3261 §25.1 TEXT-UTF8char, LWS).
func ValidText(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
