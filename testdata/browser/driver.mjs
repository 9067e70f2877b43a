// driver.mjs: a thin bridge from go test to headless Chromium. The Go test (web/console_test.go)
// starts it, writes one JSON command per line on stdin and reads one JSON answer per line on
// stdout: {"id":N,"ok":true,"result":...} or {"id":N,"ok":false,"error":"..."}. The test holds
// all the logic; this file only drives the browser with playwright-core.
//
// Chromium is Debian's (CHROMIUM, default /usr/bin/chromium); playwright never downloads one.
//
// Commands ({"id":N,"cmd":...,...}):
//   open       {page, url, width?, height?, reducedMotion?}  new tab in its own context (storage)
//   goto       {page, url}
//   resize     {page, width, height}             viewport size
//   waitLamp   {page, ext, state, timeout?}   until [data-ext=ext][data-state=state]; -> lamp
//   lamps      {page}                          -> [{ext, state, label, text}]
//   eval       {page, fn, arg?}                runs (fn)(arg) in the page, awaits it; -> value
//   waitFor    {page, fn, arg?, timeout?}      until (fn)(arg) is truthy; -> value
//   press      {page, keys: [...]}             keyboard presses; -> data-ext of the focused element
//   screenshot {page, path, fullPage?}
//   log        {page}                          -> console messages, page errors, failed requests
//   close      {page}
//   quit

import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run',
  ],
});

const pages = new Map(); // name -> {context, page, log}

function tab(name) {
  const t = pages.get(name);
  if (!t) throw new Error(`no page ${name}`);
  return t;
}

const handlers = {
  async open({ page: name, url, width = 1024, height = 640, reducedMotion = 'no-preference' }) {
    if (pages.has(name)) await handlers.close({ page: name });
    const context = await browser.newContext({ viewport: { width, height }, reducedMotion });
    const page = await context.newPage();
    const log = [];
    page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => {
      // A WebSocket to a stopped hub is expected in restart tests; anything else is news.
      log.push(`requestfailed: ${r.url().replace(/access_token=[^&]+/, 'access_token=…')} ${r.failure()?.errorText}`);
    });
    pages.set(name, { context, page, log });
    await page.goto(url);
    return { url: page.url() };
  },

  async goto({ page, url }) {
    await tab(page).page.goto(url);
    return { url: tab(page).page.url() };
  },

  async resize({ page, width, height }) {
    await tab(page).page.setViewportSize({ width, height });
    return null;
  },

  async waitLamp({ page, ext, state, timeout = 10000 }) {
    const p = tab(page).page;
    const sel = `[data-ext="${ext}"][data-state="${state}"]`;
    try {
      await p.waitForSelector(sel, { timeout });
    } catch (err) {
      const lamps = await handlers.lamps({ page });
      const conn = await p.evaluate(() => document.getElementById('conn')?.innerText);
      throw new Error(`lamp ${ext} never became ${state} within ${timeout} ms; connection: ${conn}; lamps: ${JSON.stringify(lamps)}`);
    }
    return (await handlers.lamps({ page })).find((l) => l.ext === ext);
  },

  async lamps({ page }) {
    return tab(page).page.evaluate(() => [...document.querySelectorAll('.lamps [data-ext]')].map((el) => ({
      ext: el.dataset.ext,
      state: el.dataset.state,
      label: el.getAttribute('aria-label'),
      text: el.innerText,
    })));
  },

  async eval({ page, fn, arg }) {
    return tab(page).page.evaluate(`(${fn})(${JSON.stringify(arg ?? null)})`);
  },

  async waitFor({ page, fn, arg, timeout = 10000 }) {
    // A function, not a string: Playwright polls a string predicate with
    // eval(), which the console's CSP (no 'unsafe-eval') refuses whenever
    // the first check is false; a function is called through the protocol.
    const predicate = new Function('arg', `return (${fn})(arg);`);
    const h = await tab(page).page.waitForFunction(predicate, arg ?? null, { timeout });
    return h.jsonValue();
  },

  async press({ page, keys }) {
    const p = tab(page).page;
    for (const k of keys) await p.keyboard.press(k);
    return p.evaluate(() => document.activeElement?.dataset?.ext ?? document.activeElement?.id ?? '');
  },

  async screenshot({ page, path, fullPage = true }) {
    await tab(page).page.screenshot({ path, fullPage, animations: 'disabled', caret: 'hide' });
    return { path };
  },

  async log({ page }) {
    return tab(page).log;
  },

  async close({ page }) {
    const t = pages.get(page);
    if (!t) return null;
    pages.delete(page);
    await t.context.close();
    return null;
  },
};

const lines = createInterface({ input: process.stdin });
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
out({ id: 0, ok: true, result: { version: browser.version() } });
for await (const line of lines) {
  if (!line.trim()) continue;
  let c;
  try {
    c = JSON.parse(line);
  } catch (err) {
    out({ id: -1, ok: false, error: `bad command: ${err.message}` });
    continue;
  }
  if (c.cmd === 'quit') break;
  try {
    const h = handlers[c.cmd];
    if (!h) throw new Error(`unknown command ${c.cmd}`);
    out({ id: c.id, ok: true, result: (await h(c)) ?? null });
  } catch (err) {
    out({ id: c.id, ok: false, error: String(err && err.message ? err.message : err) });
  }
}
await browser.close();
