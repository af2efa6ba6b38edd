// bench.mjs -- what loading one dashboard view costs in headless
// chromium, for bench/web_bench.sh (not a test): bytes over the wire (the
// sum of the Chrome DevTools Protocol's encodedDataLength of every
// response, headers included), requests, first contentful paint, the
// time until @ready (a CSS selector: the view drawn; on a page not built
// yet, its placeholder) shows, the time until the network went quiet, and the longest main-thread task (longtask
// entries). Each run loads the view in a fresh profile (cold: empty
// cache) and then again in the same profile (warm: the cache holds the
// assets). Prints one JSON line per run and load, then the medians.
// With --api-identity 1, every /api/v1/ request of the page goes out
// with Accept-Encoding: identity (rewritten through the DevTools
// Protocol's Fetch domain, which only sees those requests: the assets
// load and cache as usual), the baseline the gzip of API replies is
// measured against. With --mbit N, the page's downloads are throttled to
// N Mbit/s (DevTools' network emulation): on loopback bytes cost nothing,
// on a laptop's link to the collector they are the time.
//
// With --loaded REGEX, also the time until main's [role=status] text
// matches REGEX (the timeline's "N events from ...": every page of rows
// is in; "network quiet" counts a reply done at its headers, so it can
// come before the last body does, which matters when throttled).
//
// usage: node bench.mjs --url URL#HASH --ready SELECTOR [--runs N]
//            [--api-identity 1] [--mbit N] [--loaded REGEX]
import { chromium } from 'playwright-core';

const QUIET_MS = 500;               // no request in flight this long
const DEADLINE_MS = 120000;         // a 100k-event view on a loaded box

function args(argv) {
  const o = { runs: '5' };
  for (let i = 2; i + 1 < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
  if (!o.url || !o.ready) throw new Error('usage: bench.mjs --url URL --ready SELECTOR [--runs N] [--api-identity 1] [--mbit N] [--loaded REGEX]');
  return o;
}

// One load of @url in @page: its figures (ms from navigation start).
async function load(page, cdp, url, loadedRe) {
  // Bytes per request: the headers when they come, the body's bytes as
  // they come, the total when it finished (Chromium never finishes a
  // fetch whose body the page does not read: its bytes still count).
  const bytes = new Map();
  const inflight = new Set();
  let changed = Date.now();
  const touch = () => { changed = Date.now(); };
  const onSent = (e) => { inflight.add(e.requestId); bytes.set(e.requestId, 0); touch(); };
  const onResponse = (e) => {
    inflight.delete(e.requestId);
    bytes.set(e.requestId, e.response.encodedDataLength || 0);
    touch();
  };
  const onData = (e) => {
    bytes.set(e.requestId, (bytes.get(e.requestId) || 0) + (e.encodedDataLength || 0));
  };
  const onDone = (e) => { bytes.set(e.requestId, e.encodedDataLength || 0); touch(); };
  const onFail = (e) => { inflight.delete(e.requestId); touch(); };
  const events = [['Network.requestWillBeSent', onSent], ['Network.responseReceived', onResponse],
    ['Network.dataReceived', onData], ['Network.loadingFinished', onDone],
    ['Network.loadingFailed', onFail]];
  for (const [ev, fn] of events) cdp.on(ev, fn);
  await page.goto(url);
  const drawn = await (await page.waitForFunction(() => window.benchDrawn,
    null, { polling: 100, timeout: DEADLINE_MS })).jsonValue();
  const loaded = loadedRe === null ? null : await (await page.waitForFunction(
    () => window.benchLoaded, null, { polling: 100, timeout: DEADLINE_MS })).jsonValue();
  const end = Date.now() + DEADLINE_MS;
  while (inflight.size || Date.now() - changed < QUIET_MS) {
    if (Date.now() > end) throw new Error(`${url}: the network never went quiet`);
    await new Promise((r) => { setTimeout(r, 50); });
  }
  const quietMs = await page.evaluate((q) => performance.now() - q, Date.now() - changed);
  const fig = await page.evaluate(() => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return { fcp: fcp ? fcp.startTime : null, longest: Math.max(0, ...window.benchLong) };
  });
  for (const [ev, fn] of events) cdp.off(ev, fn);
  let total = 0;
  for (const n of bytes.values()) total += n;
  return { bytes: total, requests: bytes.size, fcp_ms: fig.fcp, ready_ms: drawn.ms, quiet_ms: quietMs,
    loaded_ms: loaded, longest_task_ms: fig.longest, placeholder: drawn.placeholder };
}

// Sends every /api/v1/ request of @cdp's page with Accept-Encoding:
// identity.
async function apiIdentity(cdp) {
  cdp.on('Fetch.requestPaused', (e) => {
    const headers = Object.entries(e.request.headers)
      .filter(([k]) => k.toLowerCase() !== 'accept-encoding')
      .map(([name, value]) => ({ name, value }));
    headers.push({ name: 'Accept-Encoding', value: 'identity' });
    cdp.send('Fetch.continueRequest', { requestId: e.requestId, headers }).catch(() => {});
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern: '*/api/v1/*', requestStage: 'Request' }] });
}

const median = (xs) => {
  const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
};

async function main() {
  const o = args(process.argv);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  const runs = { cold: [], warm: [] };
  try {
    for (let i = 0; i < Number(o.runs); i++) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      await ctx.addInitScript(([sel, loadedSrc]) => {
        window.benchLong = [];
        new PerformanceObserver((l) => {
          for (const e of l.getEntries()) window.benchLong.push(e.duration);
        }).observe({ type: 'longtask', buffered: true });
        // The moment the view's element is in the document (a page not
        // built yet: its placeholder), seen by the mutation that put it
        // there rather than by polling.
        window.benchDrawn = null;
        const seen = new MutationObserver(() => {
          const main = document.querySelector('main');
          const placeholder = !!main && main.textContent.includes('Not built yet.');
          if (document.querySelector(sel) || placeholder) {
            window.benchDrawn = { ms: performance.now(), placeholder };
            seen.disconnect();
          }
        });
        seen.observe(document, { childList: true, subtree: true, attributes: true });
        // The moment the status line says every row is in.
        window.benchLoaded = null;
        if (loadedSrc !== null) {
          const re = new RegExp(loadedSrc);
          const all = new MutationObserver(() => {
            const st = document.querySelector('main [role=status]');
            if (st && re.test(st.textContent)) {
              window.benchLoaded = performance.now();
              all.disconnect();
            }
          });
          all.observe(document, { childList: true, subtree: true, characterData: true });
        }
      }, [o.ready, o.loaded || null]);
      for (const kind of ['cold', 'warm']) {
        const page = await ctx.newPage();
        const cdp = await ctx.newCDPSession(page);
        await cdp.send('Network.enable');
        if (o['api-identity'] === '1') await apiIdentity(cdp);
        if (o.mbit) {
          await cdp.send('Network.emulateNetworkConditions', {
            offline: false, latency: 0, uploadThroughput: -1,
            downloadThroughput: (Number(o.mbit) * 1e6) / 8,
          });
        }
        const r = await load(page, cdp, o.url, o.loaded || null);
        runs[kind].push(r);
        console.log(JSON.stringify({ run: i + 1, load: kind, ...r }));
        await page.close();
      }
      await ctx.close();
    }
  } finally {
    await browser.close();
  }
  for (const kind of ['cold', 'warm']) {
    const m = {};
    for (const k of Object.keys(runs[kind][0])) {
      m[k] = k === 'placeholder' ? runs[kind][0][k] : median(runs[kind].map((r) => r[k]));
    }
    console.log(JSON.stringify({ median: kind, runs: runs[kind].length, ...m }));
  }
}

main().catch((e) => {
  console.error(`bench.mjs: ${e.stack || e}`);
  process.exitCode = 1;
});
