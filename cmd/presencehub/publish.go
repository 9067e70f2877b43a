package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/pidf"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/internal/siprule"
)

// publish sends one dialog-state PUBLISH for an extension, the demo's way to
// make a lamp ring: early (ringing), confirmed (in a call), idle
// (terminated). It keeps the publication's entity-tag in a small state file,
// so successive commands modify one publication with SIP-If-Match (RFC 3903
// §4.4) instead of piling up new ones.
type publishOpts struct {
	as, state, remote, hub, token, tokenFile string
	expires                                  int
}

func (o *publishOpts) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.as, "as", "", "extension whose state is published (required)")
	fs.StringVar(&o.state, "state", "early", "early (ringing), confirmed (busy), hold or idle")
	fs.StringVar(&o.remote, "remote", "", "the other party (shown while ringing), e.g. 2001")
	fs.StringVar(&o.hub, "hub", "", "hub WebSocket URL (default: ws://<http-addr>/ws)")
	fs.StringVar(&o.token, "token", "", "token to publish with; prefer --token-file or PRESENCEHUB_TOKEN, which stay out of the process list (default: minted with the hub's secret)")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the token to publish with")
	fs.IntVar(&o.expires, "expires", 3600, "publication lifetime in seconds")
}

func publish(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var c config
	var o publishOpts
	fs := flag.NewFlagSet("presencehub publish", flag.ContinueOnError)
	fs.SetOutput(stdout)
	c.bindListen(fs)
	c.bindKeys(fs)
	o.bind(fs)
	if err := c.parse(fs, args, getenv); err != nil {
		return err
	}
	as, state, remote, hub, tok, expires := &o.as, &o.state, &o.remote, &o.hub, &o.token, &o.expires
	if *as == "" {
		return errors.New("publish: --as is required (e.g. presencehub publish --as 1001 --state early)")
	}
	switch *state {
	case "early", "confirmed", "hold", "idle", "terminated", "trying", "proceeding":
	default:
		return fmt.Errorf("publish: --state=%q: want early, confirmed, hold or idle", *state)
	}
	if *hub == "" {
		*hub = "ws://" + c.HTTPAddr + "/ws"
		if c.TLSCert != "" {
			*hub = "wss://" + c.HTTPAddr + "/ws"
		}
	}
	if o.tokenFile != "" {
		if *tok != "" {
			return fmt.Errorf("publish: %s and %s: give one of them", c.name("token"), c.name("token-file"))
		}
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return fmt.Errorf("publish: token file: %w", err)
		}
		if *tok = strings.TrimSpace(string(b)); *tok == "" {
			return fmt.Errorf("publish: token file %s is empty", o.tokenFile)
		}
	}
	minted := *tok == ""
	if minted {
		secret, err := c.secret()
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		if *tok, err = c.signer(secret).Mint(*as, 5*time.Minute, nil); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := sipclient.Dial(ctx, *hub, sipclient.Options{Token: *tok})
	if err != nil {
		if strings.Contains(err.Error(), "got 401") {
			why := "the token given is invalid, expired, or for another issuer or audience"
			if minted {
				why = fmt.Sprintf("the token minted with the secret found here (%s) is not the hub's: run this where the hub runs, or give the hub's --db or --jwt-secret", c.secretSource())
			}
			return fmt.Errorf("publish: %s refused the token (HTTP 401): %s", *hub, why)
		}
		return fmt.Errorf("publish: connect %s: %w", *hub, err)
	}
	defer cl.Close()

	aor := siprule.AOR(*as, c.Domain)
	statePath := filepath.Join(os.TempDir(), "presencehub-publish-"+sanitize(c.Domain)+"-"+sanitize(*as)+".json")
	var ps struct {
		ETag     string `json:"etag"`     // the dialog publication
		Presence string `json:"presence"` // the presence publication
		Dialog   int    `json:"dialog"`
		Last     string `json:"last"`
	}
	if b, err := os.ReadFile(statePath); err == nil {
		_ = json.Unmarshal(b, &ps)
	}
	if ps.Last == "terminated" && *state != "idle" && *state != "terminated" {
		ps.Dialog++ // a new call: a terminated dialog id is never revived
	}
	st := *state
	switch st {
	case "idle":
		st = "terminated"
	case "hold":
		st = "confirmed"
	}
	d := dialoginfo.Dialog{ID: "demo-" + *as + "-" + strconv.Itoa(ps.Dialog), CallID: "demo-" + *as + "-" + strconv.Itoa(ps.Dialog), Direction: "recipient", State: st}
	if *remote != "" {
		d.RemoteIdentity = siprule.AOR(*remote, c.Domain)
	}
	if *state == "hold" {
		// RFC 4235 §4.1.6.2: the local target is not rendering media.
		d.LocalTarget = aor
		d.LocalParams = []dialoginfo.Param{{Name: "+sip.rendering", Value: "no"}}
	}
	doc := dialoginfo.Document{State: "full", Entity: aor, Dialogs: []dialoginfo.Dialog{d}}
	body := doc.AppendXML(nil)

	// The extension is online while the tool speaks for it: presence open,
	// with a note a console can show (RFC 3863 §4.1.4).
	note := map[string]string{"early": "Ringing", "trying": "Calling", "proceeding": "Ringing", "confirmed": "On the phone"}[st]
	if *state == "hold" {
		note = "On hold"
	}
	if note == "" {
		note = "Available"
	}
	pres := pidf.Document{Entity: aor, Tuples: []pidf.Tuple{{ID: "presencehub-cli", Basic: pidf.Open, Notes: []pidf.Note{{Text: note}}}}}

	send := func(event, ct string, body []byte, etag string) (*sip.Response, error) {
		req, err := cl.NewRequest(sip.PUBLISH, aor, aor)
		if err != nil {
			return nil, err
		}
		req.AppendHeader(sip.NewHeader("Event", event))
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(*expires)))
		if etag != "" {
			req.AppendHeader(sip.NewHeader("SIP-If-Match", etag))
		}
		cth := sip.ContentTypeHeader(ct)
		req.AppendHeader(&cth)
		req.SetBody(body)
		return cl.Do(ctx, req)
	}
	// publishDoc modifies our publication (RFC 3903 §4.4), or starts a new
	// one when it has expired meanwhile (412).
	publishDoc := func(event, ct string, body []byte, etag *string) error {
		res, err := send(event, ct, body, *etag)
		if err == nil && res.StatusCode == 412 && *etag != "" {
			res, err = send(event, ct, body, "")
		}
		if err != nil {
			return fmt.Errorf("publish %s: %w", event, err)
		}
		if res.StatusCode != 200 {
			return fmt.Errorf("publish %s: hub answered %d %s", event, res.StatusCode, res.Reason)
		}
		if h := res.GetHeader("SIP-ETag"); h != nil {
			*etag = strings.TrimSpace(h.Value())
		}
		return nil
	}
	if err := publishDoc(compositor.EventDialog, compositor.ContentTypeDialogInfo, body, &ps.ETag); err != nil {
		return err
	}
	if err := publishDoc(compositor.EventPresence, compositor.ContentTypePIDF, pres.AppendXML(nil), &ps.Presence); err != nil {
		return err
	}
	ps.Last = st
	if b, err := json.Marshal(ps); err == nil {
		_ = os.WriteFile(statePath, b, 0o600)
	}
	fmt.Fprintf(stdout, "%s is now %s (SIP-ETag %s)\n", aor, *state, ps.ETag)
	return nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
