package compositor_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store/memstore"
)

func Example() {
	ctx := context.Background()
	st := memstore.New(memstore.Options{}) // sqlitestore.Open(ctx, path, ...) in production
	defer st.Close()
	c, err := compositor.New(ctx, compositor.Config{Store: st})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	// The notifier listens; callbacks run on the compositor's feed goroutine.
	changed := make(chan compositor.View, 8)
	cancel := c.Subscribe(func(ch compositor.Change) { changed <- ch.View })
	defer cancel()

	// Initial PUBLISH (RFC 3903 §4.1): no SIP-If-Match, a body.
	body := []byte(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1001@hub.test">` +
		`<tuple id="t1"><status><basic>open</basic></status></tuple></presence>`)
	res, err := c.Publish(ctx, compositor.PublishRequest{
		Resource: "sip:1001@hub.test", Event: "presence", Expires: 300,
		ContentType: "application/pidf+xml", Body: body, Publisher: "1001",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("200 OK, Expires:", res.Expires, "new SIP-ETag:", len(res.ETag) == 26)
	v := <-changed
	fmt.Println("changed:", v.Resource, v.Presence.Tuples[0].Basic)

	// A refresh with an unknown entity-tag is refused with 412.
	_, err = c.Publish(ctx, compositor.PublishRequest{
		Resource: "sip:1001@hub.test", Event: "presence", Expires: 300, IfMatch: []string{"stale"},
	})
	var sipErr *compositor.Error
	if errors.As(err, &sipErr) {
		fmt.Println(sipErr.Code, sipErr.Reason)
	}

	// Remove (Expires: 0): subscribers see basic closed.
	if _, err := c.Publish(ctx, compositor.PublishRequest{
		Resource: "sip:1001@hub.test", Event: "presence", Expires: 0, IfMatch: []string{res.ETag},
	}); err != nil {
		panic(err)
	}
	v = <-changed
	fmt.Println("changed:", v.Resource, v.Presence.Tuples[0].Basic)
	fmt.Printf("%s", c.View("sip:1001@hub.test", "presence").Presence.AppendXML(nil))
	// Output:
	// 200 OK, Expires: 300 new SIP-ETag: true
	// changed: sip:1001@hub.test open
	// 412 Conditional Request Failed - no live publication has this SIP-If-Match entity-tag
	// changed: sip:1001@hub.test closed
	// <?xml version="1.0" encoding="UTF-8"?>
	// <presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1001@hub.test"><tuple id="none"><status><basic>closed</basic></status></tuple></presence>
}
