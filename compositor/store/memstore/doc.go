// Package memstore is an in-memory store.Store for tests and development.
// It keeps nothing across restarts. Expiry uses one timer for the whole
// store, armed for the earliest expiry.
package memstore
