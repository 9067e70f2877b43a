// Package msgsummary reads and writes message summaries
// (application/simple-message-summary, RFC 3842 §5): whether messages
// wait for an account, and how many per message class.
package msgsummary
