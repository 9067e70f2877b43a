package providers

import (
	"errors"
	"fmt"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/server/notifier"
)

// Register adds the built-in dialog, presence and message-summary providers to r.
func Register(r *notifier.Registry) error {
	return errors.Join(r.Register(Dialog()), r.Register(Presence()), r.Register(MessageSummary()))
}

// Dialog renders RFC 4235 dialog-info documents.
func Dialog() notifier.Provider {
	return notifier.Provider{
		Name:        "dialog-info",
		Event:       compositor.EventDialog,
		ContentType: compositor.ContentTypeDialogInfo,
		Render:      renderDialog,
	}
}

// renderDialog hands out the view's dialog-info rendering, made once per
// change by the compositor with a slot for the version, which is per
// subscription (RFC 4235 §4.1).
func renderDialog(v compositor.View, _ string) (notifier.Body, error) {
	data, at := v.Template()
	if at < 0 {
		return notifier.Body{}, fmt.Errorf("providers: dialog view of %s has no version slot", v.Resource)
	}
	return notifier.Body{Data: data, VersionAt: at}, nil
}

// Presence renders RFC 3863 PIDF documents.
func Presence() notifier.Provider {
	return notifier.Provider{
		Name:        "pidf",
		Event:       compositor.EventPresence,
		ContentType: compositor.ContentTypePIDF,
		Render: func(v compositor.View, _ string) (notifier.Body, error) {
			if v.Presence == nil {
				return notifier.Body{}, fmt.Errorf("providers: presence view of %s has no document", v.Resource)
			}
			data, _ := v.Template()
			return notifier.Body{Data: data, VersionAt: -1}, nil
		},
	}
}

// MessageSummary renders RFC 3842 message summaries (one per account: the
// compositor's newest publication).
func MessageSummary() notifier.Provider {
	return notifier.Provider{
		Name:        "message-summary",
		Event:       compositor.EventMessageSummary,
		ContentType: compositor.ContentTypeMessageSummary,
		Render: func(v compositor.View, _ string) (notifier.Body, error) {
			if v.Summary == nil {
				return notifier.Body{}, fmt.Errorf("providers: message-summary view of %s has no summary", v.Resource)
			}
			data, _ := v.Template()
			return notifier.Body{Data: data, VersionAt: -1}, nil
		},
	}
}
