// settings.js: where the console's inputs come from and where it keeps them.
//   token      ?token= (or ?access_token=) in the page URL, as printed by presencehub; then kept
//              in sessionStorage (this tab only) and removed from the address bar, so it does
//              not linger in history, bookmarks or screenshots.
//   extensions ?ext=1001,1002:Reception or the form; kept in localStorage.

const TOKEN_KEY = 'presencehub.token';
const EXTS_KEY = 'presencehub.extensions';
const MAX_EXTENSIONS = 1000; // the hub's default --max-list-members
// User parts we accept: RFC 3261 unreserved characters, minus the list separators used here.
const EXT_RE = /^[A-Za-z0-9._~!*'()+-]{1,64}$/;

/**
 * Takes the token from the page URL (and removes it there), else from sessionStorage.
 * Returns '' when there is none.
 */
export function takeToken(win = globalThis) {
  const url = new URL(win.location.href);
  const fromUrl = url.searchParams.get('token') || url.searchParams.get('access_token');
  if (fromUrl) {
    saveToken(fromUrl, win);
    url.searchParams.delete('token');
    url.searchParams.delete('access_token');
    win.history.replaceState(win.history.state, '', url.pathname + url.search + url.hash);
    return fromUrl;
  }
  try {
    return win.sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function saveToken(token, win = globalThis) {
  try {
    if (token) win.sessionStorage.setItem(TOKEN_KEY, token);
    else win.sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lives as long as the page */ }
}

/**
 * Decodes a JWT's payload without checking it (the hub checks it): {sub, domain, exp, ...},
 * or null when the token is not a JWT.
 */
export function tokenClaims(token) {
  const part = String(token || '').split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/** True when the token carries an exp that has passed (a few seconds of leeway for clock skew). */
export function tokenExpired(claims, nowMs = Date.now()) {
  return !!claims && typeof claims.exp === 'number' && claims.exp * 1000 < nowMs - 5000;
}

/**
 * Parses an extension list: '1001, 1002:Front desk' or one per line; '[Sales]' before an
 * extension starts a group that lasts until the next one: '[Sales] 1003, 1004, [Support] 1005'.
 * Returns {list: [{ext, label, group}], errors: [text]}; duplicates are dropped.
 */
export function parseExtensions(text) {
  const list = [];
  const errors = [];
  const seen = new Set();
  let group = '';
  for (const raw of String(text || '').split(/[,\n]/)) {
    let item = raw.trim();
    const g = /^\[([^\]]*)\]\s*/.exec(item);
    if (g) {
      group = g[1].trim().slice(0, 60);
      item = item.slice(g[0].length);
    }
    if (!item) continue;
    const colon = item.indexOf(':');
    const ext = (colon < 0 ? item : item.slice(0, colon)).trim();
    const label = colon < 0 ? '' : item.slice(colon + 1).trim().slice(0, 60);
    if (!EXT_RE.test(ext)) {
      errors.push(`"${ext}" is not an extension (letters, digits and . _ ~ ! * ' ( ) + - only)`);
      continue;
    }
    if (seen.has(ext)) continue;
    if (list.length >= MAX_EXTENSIONS) {
      errors.push(`at most ${MAX_EXTENSIONS} extensions`);
      break;
    }
    seen.add(ext);
    list.push({ ext, label, group });
  }
  return { list, errors };
}

/** Formats an extension list the way parseExtensions reads it. */
export function formatExtensions(list, sep = ', ') {
  let group = '';
  return list.map(({ ext, label, group: g = '' }) => {
    const head = g !== group ? `[${g}] ` : '';
    group = g;
    return head + (label ? `${ext}:${label}` : ext);
  }).join(sep);
}

/** The watched extensions: ?ext= when given (then remembered), else the remembered ones. */
export function loadExtensions(win = globalThis) {
  const fromUrl = new URL(win.location.href).searchParams.get('ext');
  if (fromUrl !== null) {
    const { list } = parseExtensions(fromUrl);
    storeExtensions(list, win);
    return list;
  }
  try {
    return parseExtensions(win.localStorage.getItem(EXTS_KEY) || '').list;
  } catch {
    return [];
  }
}

/** Remembers the list, and writes it into the address bar so the page can be bookmarked. */
export function saveExtensions(list, win = globalThis) {
  storeExtensions(list, win);
  const url = new URL(win.location.href);
  url.searchParams.set('ext', formatExtensions(list, ','));
  win.history.replaceState(win.history.state, '', url.pathname + url.search + url.hash);
}

function storeExtensions(list, win) {
  try {
    win.localStorage.setItem(EXTS_KEY, formatExtensions(list));
  } catch { /* storage disabled */ }
}
