// SIP.js 0.21 user agent set up the way a browser softphone would: token on the WebSocket URL
// (or as a Bearer header on the requests that allow extra headers), logs to stderr.

import { UserAgent } from 'sip.js';
import { emit, diag, installWebSocket, packageVersion } from './common.mjs';

// From package.json: SIP.js 0.21.2 still says "0.21.1" in its own version constant.
export const SIPJS_VERSION = packageVersion('sip.js');

/** makeUserAgent builds a SIP.js UserAgent for a.aor on a.wsURL and reports connect/disconnect. */
export function makeUserAgent(a, name = 'SIPjs-interop') {
  installWebSocket();
  const uri = UserAgent.makeURI(a.aor);
  if (!uri) throw new Error(`bad AOR ${a.aor}`);
  const ua = new UserAgent({
    uri,
    displayName: `Ext ${a.user}`,
    transportOptions: { server: a.wsURL, traceSip: false },
    userAgentString: name,
    logBuiltinEnabled: false,
    logLevel: 'warn',
    // Its debug level repeats the wire trace; keep the rest for failure logs.
    logConnector: (level, category, label, content) => {
      if (level !== 'debug') diag(`[sip.js ${level}] ${category}: ${content}`);
    },
    // Reconnection is the application's job in SIP.js (docs/protocol.md); the scripts don't.
    reconnectionAttempts: 0,
  });
  ua.delegate = {
    onConnect: () => emit({ ev: 'connected' }),
    onDisconnect: (error) => emit({ ev: 'disconnected', error: error ? String(error.message || error) : undefined }),
  };
  return ua;
}

/** bearerHeaders is the extraHeaders list that carries the token on an initial request. */
export function bearerHeaders(a) {
  return a.bearer ? [`Authorization: ${a.bearer}`] : [];
}

/**
 * stopUA stops ua, waiting at most ms: SIP.js's stop() waits for every subscription's final
 * NOTIFY and every open transaction, which a script that is ending need not do.
 */
export async function stopUA(ua, ms = 1500) {
  let timer;
  try {
    await Promise.race([ua.stop(), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } catch (err) {
    emit({ ev: 'error', message: `stop: ${err.message}` });
  } finally {
    clearTimeout(timer);
  }
}
