// Package xmltree reads small XML documents with hard limits (size,
// nesting depth, element count) and writes elements back with correct
// escaping. It is shared by the pidf and dialoginfo packages.
//
// Scanner reads a document token by token straight from its bytes, for the
// subset of XML that presence and dialog bodies are written in; Parse
// builds an element tree (kept for extension elements such as RPID
// persons and devices, faithful without knowing their schema) with the
// Scanner, or with encoding/xml (ParseDecoder) for any document the Scanner
// declines, with the same result. Differential fuzz tests hold the two
// readers equal.
package xmltree
