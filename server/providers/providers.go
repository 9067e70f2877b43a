package providers

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/server/notifier"
)

// Content types of the built-in providers.
const (
	DialogInfoType = "application/dialog-info+xml"
	PIDFType       = "application/pidf+xml"
)

// Register adds the built-in dialog and presence providers to r.
func Register(r *notifier.Registry) error {
	return errors.Join(r.Register(Dialog()), r.Register(Presence()))
}

// Dialog renders RFC 4235 dialog-info documents.
func Dialog() notifier.Provider {
	return notifier.Provider{
		Name:        "dialog-info",
		Event:       compositor.EventDialog,
		ContentType: DialogInfoType,
		Render:      renderDialog,
	}
}

var versionZero = []byte(` version="0"`)

func renderDialog(v compositor.View, _ string) (notifier.Body, error) {
	doc := dialoginfo.Document{State: "full", Entity: v.Resource, Dialogs: v.Dialogs}
	data := doc.AppendXML(nil)
	// The version is per subscription (RFC 4235 §4.1): leave a slot for it.
	i := bytes.Index(data, versionZero)
	if i < 0 {
		return notifier.Body{}, fmt.Errorf("providers: dialog-info rendering has no version attribute")
	}
	at := i + len(versionZero) - 2
	data = append(data[:at], data[at+1:]...)
	return notifier.Body{Data: data, VersionAt: at}, nil
}

// Presence renders RFC 3863 PIDF documents.
func Presence() notifier.Provider {
	return notifier.Provider{
		Name:        "pidf",
		Event:       compositor.EventPresence,
		ContentType: PIDFType,
		Render: func(v compositor.View, _ string) (notifier.Body, error) {
			if v.Presence == nil {
				return notifier.Body{}, fmt.Errorf("providers: presence view of %s has no document", v.Resource)
			}
			return notifier.Body{Data: v.Presence.AppendXML(nil), VersionAt: -1}, nil
		},
	}
}
