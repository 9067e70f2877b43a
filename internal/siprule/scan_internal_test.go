package siprule

import (
	"bytes"
	"testing"
)

// cutCRLF must find what bytes.Cut(b, "\r\n") finds, whatever the mix of
// bare CRs and LFs around it.
func FuzzCutCRLF_IsBytesCut(f *testing.F) {
	for _, s := range []string{"", "\r\n", "a\r\nb", "\n\r\n", "a\nb\r\nc", "\r\r\n", "a\n", "\r", "\n", "ab\rc\nd", "\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		wb, wa, wf := bytes.Cut(b, []byte("\r\n"))
		gb, ga, gf := cutCRLF(b)
		if gf != wf || !bytes.Equal(gb, wb) || !bytes.Equal(ga, wa) || (ga == nil) != (wa == nil) {
			t.Fatalf("cutCRLF(%q) = %q, %q, %v; bytes.Cut: %q, %q, %v", b, gb, ga, gf, wb, wa, wf)
		}
	})
}
