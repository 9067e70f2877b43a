// Command presencehub runs the presence and BLF hub, and small tools around it.
//
//	presencehub                    serve with embedded defaults (see -h)
//	presencehub token --sub 1001   mint a token with the configured secret
//	presencehub publish --as 1001 --state early   publish dialog state
//	presencehub bench ...          load generator (see presencehub bench -h)
package main
