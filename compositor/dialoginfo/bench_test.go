package dialoginfo_test

import (
	"fmt"
	"testing"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
)

func BenchmarkAppendXML(b *testing.B) {
	d := dialoginfo.Document{Version: 12, Entity: "sip:1001@hub.test"}
	for i := range 4 {
		d.Dialogs = append(d.Dialogs, dialoginfo.Dialog{ID: fmt.Sprint("d", i), CallID: "a84b4c76e66710@pc33", LocalTag: "1928301774",
			RemoteTag: "456887766", Direction: dialoginfo.Recipient, State: dialoginfo.Early,
			LocalIdentity: "sip:1001@hub.test", LocalDisplay: "Ext <1001>", LocalTarget: "sip:1001@pc33.invalid;transport=ws",
			RemoteIdentity: "sip:2002@hub.test", RemoteDisplay: "Bob & Co"})
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = d.AppendXML(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkParse(b *testing.B) {
	data := []byte(full)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := dialoginfo.Parse(data, dialoginfo.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
