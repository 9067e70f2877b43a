package notifier_test

import (
	"fmt"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/server/notifier"
)

// An integration adds a provider for the dialog package that serves only
// one vendor's phones; everyone else keeps the built-in rendering.
func ExampleRegistry_Register() {
	reg := &notifier.Registry{}
	err := reg.Register(notifier.Provider{
		Name:        "vendor-blf",
		Event:       compositor.EventDialog,
		ContentType: "application/dialog-info+xml",
		Handles: func(s notifier.SubscriptionInfo) bool {
			return len(s.UserAgent) >= 7 && s.UserAgent[:7] == "VendorX"
		},
		Render: func(v compositor.View, _ string) (notifier.Body, error) {
			return notifier.Body{Data: fmt.Appendf(nil, "%s has %d dialogs", v.Resource, len(v.Dialogs)), VersionAt: -1}, nil
		},
	})
	fmt.Println(err, reg.Events())
	// Output: <nil> [dialog]
}
