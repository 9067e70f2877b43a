package msgsummary_test

import (
	"testing"

	"github.com/presencehub/presencehub/compositor/msgsummary"
)

func TestParse_RendersCanonically(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"RFC 3842 example", "Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\nVoice-Message: 2/8 (0/2)\r\n",
			"Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\nVoice-Message: 2/8 (0/2)\r\n"},
		{"LF, any case, message headers dropped", "messages-waiting: NO\nvoice-message: 0/3\nfax-message:1/0\n\nTo: <sip:a@b>\nSubject: hi\n",
			"Messages-Waiting: no\r\nVoice-Message: 0/3\r\nFax-Message: 1/0\r\n"},
		{"unknown lines ignored", "Messages-Waiting: yes\r\nX-Foo: bar\r\n", "Messages-Waiting: yes\r\n"},
	} {
		s, err := msgsummary.Parse([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := string(s.AppendText(nil)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParse_RefusesBadSummaries(t *testing.T) {
	for _, in := range []string{
		"",
		"Voice-Message: 1/2\r\n",
		"Messages-Waiting: maybe\r\n",
		"Messages-Waiting: yes\r\nVoice-Message: 1\r\n",
		"Messages-Waiting: yes\r\nVoice-Message: a/b\r\n",
		"Messages-Waiting: yes\r\nVoice-Message: 1/2 (3/4\r\n",
		"Messages-Waiting: yes\r\nVoice-Message: 1/2\r\nVoice-Message: 1/2\r\n",
		"Messages-Waiting: yes\r\nVoice-Message: 99999999999/1\r\n",
		"garbage\r\n",
	} {
		if _, err := msgsummary.Parse([]byte(in)); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}
