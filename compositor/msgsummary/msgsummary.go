package msgsummary

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ContentType is the media type of a message summary.
const ContentType = "application/simple-message-summary"

// Count is one message-context class line: "Voice-Message: 2/8 (0/1)".
type Count struct {
	Class                          string // as RFC 3842 §5.2 names it, e.g. "Voice-Message"
	New, Old, UrgentNew, UrgentOld int
	Urgent                         bool // the "(n/m)" part was given
}

// Summary is a message summary.
type Summary struct {
	Waiting bool   // Messages-Waiting: yes
	Account string // Message-Account (optional)
	Counts  []Count
}

// classes are the message-context classes of RFC 3458 §4.2 (canonical case).
var classes = map[string]string{
	"voice-message":      "Voice-Message",
	"fax-message":        "Fax-Message",
	"pager-message":      "Pager-Message",
	"multimedia-message": "Multimedia-Message",
	"text-message":       "Text-Message",
	"none":               "None",
}

// Parse reads a message summary. Lines end with CRLF or LF; the summary
// ends at the first empty line (the optional message headers after it are
// not kept). Messages-Waiting is required; unknown header lines are
// ignored; a class counted twice is an error.
func Parse(body []byte) (*Summary, error) {
	s := &Summary{}
	seenWaiting := false
	seen := map[string]bool{}
	for len(body) > 0 {
		line, rest, _ := bytes.Cut(body, []byte("\n"))
		body = rest
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			if seenWaiting {
				break
			}
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, fmt.Errorf("line %q is not a header", truncate(line))
		}
		n := strings.ToLower(string(bytes.TrimSpace(name)))
		v := strings.TrimSpace(string(value))
		switch {
		case n == "messages-waiting":
			switch strings.ToLower(v) {
			case "yes":
				s.Waiting = true
			case "no":
			default:
				return nil, fmt.Errorf("Messages-Waiting %q is neither yes nor no", v)
			}
			seenWaiting = true
		case n == "message-account":
			s.Account = v
		case classes[n] != "":
			if seen[n] {
				return nil, fmt.Errorf("%s given twice", classes[n])
			}
			seen[n] = true
			c, err := parseCount(classes[n], v)
			if err != nil {
				return nil, err
			}
			s.Counts = append(s.Counts, c)
		}
	}
	if !seenWaiting {
		return nil, errors.New("no Messages-Waiting line")
	}
	return s, nil
}

// parseCount reads "new/old" with an optional " (urgent-new/urgent-old)".
func parseCount(class, v string) (Count, error) {
	c := Count{Class: class}
	main, urgent, hasUrgent := strings.Cut(v, "(")
	var err error
	if c.New, c.Old, err = pair(main); err != nil {
		return c, fmt.Errorf("%s %q: %w", class, v, err)
	}
	if hasUrgent {
		u, ok := strings.CutSuffix(strings.TrimSpace(urgent), ")")
		if !ok {
			return c, fmt.Errorf("%s %q: unclosed urgent count", class, v)
		}
		if c.UrgentNew, c.UrgentOld, err = pair(u); err != nil {
			return c, fmt.Errorf("%s %q: %w", class, v, err)
		}
		c.Urgent = true
	}
	return c, nil
}

func pair(s string) (int, int, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, 0, errors.New("want new/old")
	}
	x, err1 := count(a)
	y, err2 := count(b)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("counts must be whole numbers below 2^31")
	}
	return x, y, nil
}

func count(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 10 {
		return 0, errors.New("bad count")
	}
	n, err := strconv.ParseUint(s, 10, 31)
	return int(n), err
}

func truncate(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// AppendText writes s in the form RFC 3842 §5.2 gives, CRLF line ends.
func (s *Summary) AppendText(dst []byte) []byte {
	dst = append(dst, "Messages-Waiting: "...)
	if s.Waiting {
		dst = append(dst, "yes\r\n"...)
	} else {
		dst = append(dst, "no\r\n"...)
	}
	if s.Account != "" {
		dst = append(dst, "Message-Account: "...)
		dst = append(dst, s.Account...)
		dst = append(dst, "\r\n"...)
	}
	for _, c := range s.Counts {
		dst = append(dst, c.Class...)
		dst = append(dst, ": "...)
		dst = strconv.AppendInt(dst, int64(c.New), 10)
		dst = append(dst, '/')
		dst = strconv.AppendInt(dst, int64(c.Old), 10)
		if c.Urgent {
			dst = append(dst, " ("...)
			dst = strconv.AppendInt(dst, int64(c.UrgentNew), 10)
			dst = append(dst, '/')
			dst = strconv.AppendInt(dst, int64(c.UrgentOld), 10)
			dst = append(dst, ')')
		}
		dst = append(dst, "\r\n"...)
	}
	return dst
}
