// Package xmltree parses a small XML document into an element tree with
// hard limits (size, nesting depth, element count) and writes elements
// back with correct escaping. It is shared by the pidf and dialoginfo
// packages; it keeps extension elements (RPID persons, devices) faithful
// without knowing their schema.
package xmltree
