package siprule

// AOR is the canonical address-of-record of user at host, "sip:user@host":
// the key under which the registrar binds, the compositor publishes and the
// notifier watches (RFC 3261 §10.3 step 5: the To or Request-URI without
// parameters, port or display name).
func AOR(user, host string) string { return "sip:" + user + "@" + host }
