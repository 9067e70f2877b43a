package pidf_test

import (
	"testing"

	"github.com/presencehub/presencehub/compositor/pidf"
)

func BenchmarkParse(b *testing.B) {
	data := []byte(rpid)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := pidf.Parse(data, pidf.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompose(b *testing.B) {
	a, _ := pidf.Parse([]byte(rpid), pidf.Limits{})
	c, _ := pidf.Parse([]byte(wireOpen), pidf.Limits{})
	docs := []*pidf.Document{a, c}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = pidf.Compose("sip:1001@hub.test", docs)
	}
}

func BenchmarkAppendXML(b *testing.B) {
	d, _ := pidf.Parse([]byte(rpid), pidf.Limits{})
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = d.AppendXML(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}
