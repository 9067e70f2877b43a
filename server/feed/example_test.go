package feed_test

import (
	"fmt"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/pidf"
	"github.com/presencehub/presencehub/server/feed"
)

// The lamp of extension 1001 while Alice's call rings in and a second call
// is held.
func ExampleLampOf() {
	dialogs := []dialoginfo.Dialog{
		{ID: "a", Direction: dialoginfo.Recipient, State: dialoginfo.Early, RemoteIdentity: "sip:2001@example.com", RemoteDisplay: "Alice"},
		{ID: "b", Direction: dialoginfo.Initiator, State: dialoginfo.Confirmed, RemoteIdentity: "sip:+4930123@carrier.example",
			LocalParams: []dialoginfo.Param{{Name: "+sip.rendering", Value: "no"}}},
	}
	l := feed.LampOf("sip:1001@example.com", dialogs, feed.Status{Basic: pidf.Open})
	fmt.Println(l.State, "-", l.Peer)
	l = feed.LampOf("sip:1001@example.com", dialogs[1:], feed.Status{Basic: pidf.Open})
	fmt.Println(l.State, "-", l.Peer)
	// Output:
	// ringing - Alice (2001)
	// hold - +4930123@carrier.example
}
