package sipclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/wsproto"
)

// Options configure a Client.
type Options struct {
	Token  string      // sent as ?access_token= at the upgrade (what browsers do)
	Header http.Header // extra upgrade headers (e.g. Origin)
	// OnRequest answers requests from the hub (NOTIFY, OPTIONS); it returns
	// the status code to answer with. nil answers 200 to everything.
	// It runs on the read goroutine: it must not block.
	OnRequest func(req *sip.Request) int
	// Incoming, when set, receives every request from the hub after it was
	// answered (buffered by the caller; a full channel blocks reading).
	Incoming chan<- *sip.Request
	// Trace, when set, sees every message received, in order, before it is handled.
	Trace func(msg []byte)
	WS    wsproto.Options
}

// Client is one connection to the hub.
type Client struct {
	conn   *wsproto.Conn
	opts   Options
	parser *sip.Parser
	host   string // <random>.invalid, like browser clients
	cseq   atomic.Uint32

	mu      sync.Mutex
	pending map[string]chan *sip.Response

	done chan struct{}
	err  error
}

// ErrClosed is returned for requests on a closed client.
var ErrClosed = errors.New("sipclient: closed")

// Dial connects to the hub's WebSocket URL (ws://host/ws).
func Dial(ctx context.Context, wsURL string, opts Options) (*Client, error) {
	if opts.Token != "" {
		u, err := url.Parse(wsURL)
		if err != nil {
			return nil, fmt.Errorf("sipclient: url: %w", err)
		}
		q := u.Query()
		q.Set("access_token", opts.Token)
		u.RawQuery = q.Encode()
		wsURL = u.String()
	}
	conn, err := wsproto.Dial(ctx, wsURL, opts.Header, opts.WS)
	if err != nil {
		if opts.Token != "" {
			// The dial error quotes the URL: never print the token.
			return nil, errors.New(strings.ReplaceAll(err.Error(), url.QueryEscape(opts.Token), "REDACTED"))
		}
		return nil, err
	}
	c := &Client{
		conn:    conn,
		opts:    opts,
		parser:  newParser(opts.WS.MaxMessageSize),
		host:    randToken(12) + ".invalid",
		pending: make(map[string]chan *sip.Response),
		done:    make(chan struct{}),
	}
	go func() {
		c.err = conn.Serve(context.Background(), c.handle)
		c.mu.Lock()
		for _, ch := range c.pending {
			close(ch)
		}
		c.pending = nil
		c.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// Host is the client's *.invalid host.
func (c *Client) Host() string { return c.host }

// Done is closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (after Done).
func (c *Client) Err() error { return c.err }

// Close closes the connection and waits for its goroutines.
func (c *Client) Close() {
	c.conn.Close(1000, "bye")
	<-c.done
}

// Conn is the underlying connection (tests that misbehave on purpose).
func (c *Client) Conn() *wsproto.Conn { return c.conn }

func (c *Client) handle(data []byte) {
	if c.opts.Trace != nil {
		c.opts.Trace(data)
	}
	msg, err := c.parser.ParseSIP(data)
	if err != nil {
		return
	}
	switch m := msg.(type) {
	case *sip.Response:
		if m.StatusCode < 200 {
			return
		}
		via := m.Via()
		if via == nil {
			return
		}
		branch, _ := via.Params.Get("branch")
		c.mu.Lock()
		ch := c.pending[branch]
		delete(c.pending, branch)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	case *sip.Request:
		code := 200
		if c.opts.OnRequest != nil {
			code = c.opts.OnRequest(m)
		}
		if code > 0 {
			res := sip.NewResponseFromRequest(m, code, reasonFor(code), nil)
			_ = c.conn.Send([]byte(res.String()))
		}
		if c.opts.Incoming != nil {
			c.opts.Incoming <- m
		}
	}
}

func reasonFor(code int) string {
	switch code {
	case 200:
		return "OK"
	case 481:
		return "Subscription Does Not Exist"
	case 500:
		return "Server Internal Error"
	}
	return "Response"
}

// NewRequest builds an out-of-dialog request from aor to target (both
// sip: URIs): Via with a new branch, From with a new tag, To, a new Call-ID,
// CSeq, Max-Forwards and a Contact.
func (c *Client) NewRequest(method sip.RequestMethod, aor, target string) (*sip.Request, error) {
	var ruri, from sip.Uri
	if err := sip.ParseUri(target, &ruri); err != nil {
		return nil, fmt.Errorf("sipclient: target %q: %w", target, err)
	}
	if err := sip.ParseUri(aor, &from); err != nil {
		return nil, fmt.Errorf("sipclient: aor %q: %w", aor, err)
	}
	req := sip.NewRequest(method, ruri)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "WS", Host: c.host, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	req.AppendHeader(via)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	fh := &sip.FromHeader{Address: from, Params: sip.NewParams()}
	fh.Params.Add("tag", randToken(10))
	req.AppendHeader(fh)
	req.AppendHeader(&sip.ToHeader{Address: *ruri.Clone(), Params: sip.NewParams()})
	callID := sip.CallIDHeader(randToken(20))
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: c.cseq.Add(1), MethodName: method})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: randToken(8), Host: c.host, UriParams: sip.HeaderParams{{K: "transport", V: "ws"}}}})
	return req, nil
}

// Do sends req and waits for its final response.
func (c *Client) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if req.ContentLength() == nil {
		cl := sip.ContentLengthHeader(len(req.Body()))
		req.AppendHeader(&cl)
	}
	branch, _ := req.Via().Params.Get("branch")
	ch := make(chan *sip.Response, 1)
	c.mu.Lock()
	if c.pending == nil {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.pending[branch] = ch
	c.mu.Unlock()
	if err := c.conn.Send([]byte(req.String())); err != nil {
		c.forget(branch)
		return nil, err
	}
	select {
	case res, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		return res, nil
	case <-ctx.Done():
		c.forget(branch)
		return nil, ctx.Err()
	}
}

func (c *Client) forget(branch string) {
	c.mu.Lock()
	if c.pending != nil {
		delete(c.pending, branch)
	}
	c.mu.Unlock()
}

// SendRaw writes bytes as one WebSocket message (for malformed-input tests).
func (c *Client) SendRaw(msg []byte) error { return c.conn.Send(msg) }

// InDialog turns req (already sent and answered by res) into the next
// request of the same dialog: same Call-ID and From tag, the remote To tag,
// a new branch and a higher CSeq.
func InDialog(req *sip.Request, res *sip.Response) *sip.Request {
	next := req.Clone()
	next.Via().Params.Add("branch", sip.GenerateBranch())
	if tag, ok := res.To().Params.Get("tag"); ok {
		next.To().Params.Add("tag", tag)
	}
	next.CSeq().SeqNo++
	next.RemoveHeader("Content-Length")
	return next
}

const tokenChars = "abcdefghijklmnopqrstuvwxyz0123456789"

func randToken(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = tokenChars[rand.IntN(len(tokenChars))]
	}
	return string(b)
}

// newParser parses messages up to the connection's limit (sipgo's own
// default is 64 KiB; a resource-list NOTIFY with full state is bigger).
func newParser(limit int64) *sip.Parser {
	p := sip.NewParser()
	if limit > int64(p.MaxMessageLength) {
		p.MaxMessageLength = int(limit)
	}
	return p
}
