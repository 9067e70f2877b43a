// Package storetest is the conformance suite every store.Store passes:
// revisions, compare-and-swap, expiry inside the store and the Changes feed
// (docs/architecture.md, "Store"). Call Run from the implementation's tests.
package storetest
