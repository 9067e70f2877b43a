package main

import (
	"crypto/subtle"
	"net/http"
	"path"
	"strings"
)

// guardMetrics protects /metrics of h: with a token, a scrape must carry
// "Authorization: Bearer <token>" (401 otherwise); with elsewhere (a separate
// metrics listener), h answers 404 for it. Every other path goes to h.
func guardMetrics(h http.Handler, token string, elsewhere bool) http.Handler {
	if token == "" && !elsewhere {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Clean("/"+r.URL.Path) == "/metrics" {
			if elsewhere {
				http.NotFound(w, r)
				return
			}
			if !bearerIs(r, token) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
				http.Error(w, "metrics need Authorization: Bearer", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// metricsOnly serves /metrics of h (token-protected when token is set) and
// nothing else: the separate metrics listener.
func metricsOnly(h http.Handler, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		if token != "" && !bearerIs(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need Authorization: Bearer", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func bearerIs(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(cred)), []byte(token)) == 1
}
