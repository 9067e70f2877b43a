package siprule

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// MaxDeltaSeconds is the largest Expires value RFC 3261 §20.19 allows
// (2**32-1); larger values are read as it.
const MaxDeltaSeconds = 1<<32 - 1

// ErrExpires is returned for an Expires value that is not delta-seconds.
var ErrExpires = errors.New("invalid Expires value")

// ParseExpires reads a delta-seconds value (RFC 3261 §25.1: 1*DIGIT) with
// surrounding white space. A value above MaxDeltaSeconds is clamped to it:
// it never wraps, however many digits it has.
func ParseExpires(v string) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, ErrExpires
	}
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, ErrExpires
		}
		if n < MaxDeltaSeconds {
			n = n*10 + int(c-'0')
		}
	}
	return min(n, MaxDeltaSeconds), nil
}

// Expires returns the Expires header of req in seconds, -1 when it has
// none, or ErrExpires when it is malformed (answer 400).
func Expires(req *sip.Request) (int, error) {
	h := Header(req, "Expires")
	if h == nil {
		return -1, nil
	}
	return ParseExpires(h.Value())
}

// ExpiryPolicy is how long a binding, publication or subscription may last
// (RFC 3261 §10.3 step 7, RFC 3903 §6 step 3, RFC 6665 §4.2.1.1): Default is
// granted when the request asks for no duration, a shorter request than Min
// is refused with 423 Interval Too Brief, and a longer one than Max is
// lowered to Max.
type ExpiryPolicy struct{ Default, Min, Max time.Duration }

// Or fills the zero fields of p from def and makes the result consistent:
// Max is at least Min, and Default lies between them.
func (p ExpiryPolicy) Or(def ExpiryPolicy) ExpiryPolicy {
	if p.Default <= 0 {
		p.Default = def.Default
	}
	if p.Min <= 0 {
		p.Min = def.Min
	}
	if p.Max <= 0 {
		p.Max = def.Max
	}
	p.Max = max(p.Max, p.Min)
	p.Default = min(max(p.Default, p.Min), p.Max)
	return p
}

// Grant applies the policy to a requested duration in seconds, -1 when the
// request asked for none (as Expires returns it). 0 stays 0: a removal, an
// un-SUBSCRIBE or a fetch is never too brief. ok is false when the request
// is shorter than Min; the answer is then TooBrief.
func (p ExpiryPolicy) Grant(requested int) (granted time.Duration, ok bool) {
	switch {
	case requested < 0:
		return p.Default, true
	case requested == 0:
		return 0, true
	}
	d := time.Duration(min(requested, MaxDeltaSeconds)) * time.Second
	if d < p.Min {
		return 0, false
	}
	return min(d, p.Max), true
}

// GrantEnding is the duration for a request that Grant found too brief, to
// be taken only if the request ends state (a PUBLISH whose dialogs are all
// terminated, or the refresh of one): as asked, at most Max. Such a request
// is never too brief (RFC 3903 §6 step 3 makes the 423 a MAY): the minimum
// stops publishers from keeping live state alive with frequent refreshes,
// and state that is over needs none. Kamailio's pua_dialoginfo publishes a
// hang-up with "Expires: 11" and does not retry a 423, which would leave the
// lamp busy for the call's whole lifetime.
func (p ExpiryPolicy) GrantEnding(requested int) time.Duration {
	return min(time.Duration(min(max(requested, 1), MaxDeltaSeconds))*time.Second, p.Max)
}

// MinExpires is the Min-Expires value of a 423 (whole seconds, at least 1).
func (p ExpiryPolicy) MinExpires() int {
	return max(int((p.Min+time.Second-1)/time.Second), 1)
}

// TooBrief is the answer to req when Grant refused its duration: 423
// Interval Too Brief with Min-Expires (RFC 3261 §21.4.17).
func (p ExpiryPolicy) TooBrief(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
	res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(p.MinExpires())))
	return res
}

// Seconds is a granted duration as the Expires value of an answer.
func Seconds(d time.Duration) int { return int(d / time.Second) }
