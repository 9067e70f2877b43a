package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/presencehub/presencehub/web"
)

// The hub mounts the console at the root of its mux, next to the SIP WebSocket at /ws.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("/", web.Handler())
	// mux.Handle("/ws", sipOverWebSocket)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/app.js", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"))
	// Output: 200 text/javascript; charset=utf-8 no-cache
}
