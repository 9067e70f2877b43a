package compositor

import (
	"fmt"
	"strings"
)

// Error is the SIP answer for a refused PUBLISH. Code is the SIP status
// (400, 412, 413, 415, 489, 500, 503); the other fields are the
// header values that go with it when non-zero.
type Error struct {
	Code        int
	Reason      string // reason phrase, printable ASCII
	Accept      string // Accept (415)
	AllowEvents string // Allow-Events (489)
	RetryAfter  int    // Retry-After seconds (503)
	Err         error  // underlying cause, for logs; never sent
	// StoreFault is set when the store failed the operation (a full disk, a
	// damaged file, a lock held too long): the hub is not ready until a write
	// succeeds again. A refusal of this request alone (a precondition, a
	// per-publisher limit) is no store fault.
	StoreFault bool
	// Limit names the configured bound that refused the request (for the
	// limit-hits metric), "" otherwise.
	Limit string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("publish: %d %s: %v", e.Code, e.Reason, e.Err)
	}
	return fmt.Sprintf("publish: %d %s", e.Code, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// reason makes a safe SIP reason phrase from a detail message.
func reason(prefix string, detail error) string {
	if detail == nil {
		return prefix
	}
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString(": ")
	for _, r := range detail.Error() {
		if b.Len() >= 120 {
			break
		}
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
