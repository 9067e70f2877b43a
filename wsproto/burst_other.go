//go:build !unix

package wsproto

import (
	"io"
	"net"
)

// socketReader is what the per-connection bufio.Reader reads; without direct access to a
// socket's descriptor, the connection itself.
func socketReader(nc net.Conn) io.Reader { return nc }
