// run.mjs -- the dashboard's browser tests: Debian's chromium, headless,
// driven by playwright-core against a real collector (the fixture is
// tests/web_dashboard.sh's: the active-passive failover of
// tests/scenarios/ap_failover.scn, then eu-west-1 down and shop served by
// us-east-1 with every agent fresh; web and accounts healthy).
//
// usage: node run.mjs --base URL --out DIR [--auth-base URL --auth-token T
//          [--auth-note-token T]] [--volume-base URL]
//          [--feed SCENARIO_FEED --live-agent "cluster=C region=R token=T"
//           --tmp DIR] [--notready-base URL --notready-db FILE
//           --notready-agent "cluster=C region=R token=T"
//           --ingest-client INGEST_CLIENT] [--only REGEX]
// Exit 0 when every check passed or was skipped, 1 otherwise.
//
// 1. Every page (PAGES), freshly loaded, in three looks (LOOKS: 1280x900,
//    400x800, 1280x900 dark): its <h1> shows, the network goes idle, no
//    console error, no failed request, no response >= 400; no serious or
//    critical axe violation (1280 light; colour contrast in dark), no
//    sideways scrolling (400); a screenshot goes to
//    DIR/PAGE-WIDTH[-dark].png (the whole page, or its first screen if
//    it is taller than SHOT_MAX_PX).
// 2. Every check: each exported async function of each *.spec.mjs in this
//    folder (files in name order, then functions in export order).
//
// Adding a check (the convention): put it in a spec file of your page's,
// e.g. tests/web/timeline.spec.mjs:
//
//   export async function kindFilterSurvivesReload(t) {
//     if (!await t.open('#/timeline')) return t.skip('page not built');
//     ...; t.assert(cond, 'what went wrong');
//   }
//
// It passes unless it throws. Its page (t.page: fresh context, 1280x900,
// light) fails it as well on a console error, a failed request or a
// response >= 400, like the pages in 1. t holds:
//   page, base         the page, and the collector's URL
//   open(hash)         loads base/#hash, waits for main's <h1> and network
//                      idle; false while the page says "Not built yet."
//   idle(page?)        waits for network idle again (after a click)
//   reload(page?)      reloads, then waits as open() does
//   api(path)          GET /api/v1/PATH from node: the parsed JSON
//   incidentId         the fixture's incident
//   feedEvent(node)    posts, as a new agent NODE of the live agent's
//                      cluster, a marker event (failover kind=deploy, no
//                      service: it opens no incident) with text
//                      "NODE: posted while the page is open"; returns it
//   newPage(opts)      another watched page: { base, viewport,
//                      colorScheme, allowStatus: [401], allowConsole:
//                      [regex], context } (closed with the check; a
//                      fresh profile unless context is given)
//   newContext(opts)   a fresh profile ({ viewport, colorScheme }) for
//                      newPage (each page has its own sessionStorage)
//   auth               { base, token, noteToken, api(path) } of the
//                      collector with api_tokens (null without
//                      --auth-base; noteToken has scope annotate)
//   volume             { base, api(path) } of the collector holding many
//                      events (null without --volume-base)
//   notready           { base, db, cluster, region, token, ingestClient }
//                      of a collector
//                      only banner.spec.mjs uses (it locks its database;
//                      null without --notready-base)
//   skip(why)          ends the check as "SKIP: why" (only for a page not
//                      built yet: the check must start running once it is)
//   note(text)         prints a line under the check's name
//   assert(cond, msg)  throws msg when cond is false
//   waitFor(fn, what)  polls fn (async) every 100 ms until it is truthy,
//                      60 s at most, then fails saying what
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';
import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));
const DEADLINE_MS = 60000;          // every wait for a condition
const SHOT_MAX_PX = 8000;           // taller: the first screen only
const CHECK_MS = 180000;            // a whole check, so that none hangs
const IDLE_MS = 500;                // quiet network for this long = idle
const NOT_BUILT = 'Not built yet.';

const PAGES = [
  ['overview', '#/'],
  ['latency', '#/latency'],
  ['timeline', '#/timeline'],
  ['incidents', '#/incidents'],
  ['incident', '#/incidents/ID'],
  ['agents', '#/agents'],
];
const LOOKS = [
  { width: 1280, height: 900, scheme: 'light' },
  { width: 400, height: 800, scheme: 'light' },
  { width: 1280, height: 900, scheme: 'dark' },
];

class Skip extends Error {}

function args(argv) {
  const o = {};
  for (let i = 2; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument ${argv[i]} (see the top of run.mjs)`);
    }
    o[argv[i].slice(2)] = argv[i + 1];
  }
  if (!o.base || !o.out) throw new Error('--base URL and --out DIR are needed');
  return o;
}

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

async function waitFor(fn, what, ms = DEADLINE_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`after ${ms / 1000} s: ${what}`);
    await sleep(100);
  }
}

async function apiGet(base, path, token) {
  const res = await fetch(`${base}/api/v1/${path}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  if (!res.ok) throw new Error(`GET /api/v1/${path}: ${res.status}`);
  return res.json();
}

// Everything a page does wrong while a check holds it, and its requests
// in flight (for "network idle": none for IDLE_MS; event streams never
// end, so they do not count).
function watch(page, opts, problems) {
  const allowStatus = opts.allowStatus || [];
  const allowConsole = opts.allowConsole || [];
  const w = { inflight: new Set(), changed: Date.now() };
  const done = (r) => { w.inflight.delete(r); w.changed = Date.now(); };
  page.on('request', (r) => {
    if (r.resourceType() === 'eventsource') return;
    w.inflight.add(r);
    w.changed = Date.now();
  });
  // In flight until its answer comes (Chromium never finishes a fetch
  // whose body the page does not read).
  page.on('response', (res) => done(res.request()));
  page.on('requestfailed', (r) => {
    done(r);
    const why = r.failure() ? r.failure().errorText : '?';
    // A page that moves on (or stops polling) aborts its fetches.
    if (why === 'net::ERR_ABORTED' && r.resourceType() === 'fetch') return;
    problems.push(`request failed: ${r.method()} ${r.url()}: ${why}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !allowStatus.includes(r.status())) {
      problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
    }
  });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (allowConsole.some((re) => re.test(m.text()))) return;
    const at = m.location() && m.location().url ? ` (${m.location().url})` : '';
    problems.push(`console error: ${m.text()}${at}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  return w;
}

async function idle(page, w) {
  await waitFor(() => w.inflight.size === 0 && Date.now() - w.changed >= IDLE_MS,
    `network idle on ${page.url()} (${[...w.inflight].map((r) => r.url()).join(', ')})`);
}

// Waits for main's <h1> and network idle: true, or false when the page
// is a placeholder.
async function shown(page, w) {
  await page.locator('main h1').first().waitFor({ timeout: DEADLINE_MS });
  await idle(page, w);
  const text = await page.locator('main').innerText();
  return !text.includes(NOT_BUILT);
}

// Loads base/#hash in @page afresh (from another hash of the same page,
// the router would swap pages later, and the old <h1> would answer), as
// shown() says.
async function open(page, w, base, hash) {
  if (page.url() !== 'about:blank') await page.goto('about:blank');
  await page.goto(`${base}/${hash}`);
  return shown(page, w);
}

function axeReport(violations) {
  return violations.map((v) => {
    const nodes = v.nodes.slice(0, 5).map((n) =>
      `      at ${n.target.join(' ')}: ${(n.failureSummary || '').replace(/\s+/g, ' ')}`);
    const more = v.nodes.length > 5 ? [`      ... and ${v.nodes.length - 5} more`] : [];
    return [`  axe ${v.id} (${v.impact}): ${v.help}`, ...nodes, ...more].join('\n');
  }).join('\n');
}

// The serious and critical accessibility violations on @page, readable;
// @rules: only those (all of axe's by default).
async function axe(page, rules) {
  const builder = new AxeBuilder({ page });
  if (rules) builder.withRules(rules);
  const res = await builder.analyze();
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  return bad.length ? axeReport(bad) : '';
}

class Run {
  constructor(o, browser) {
    this.o = o;
    this.browser = browser;
    this.failed = 0;
    this.only = o.only ? new RegExp(o.only) : null;
  }

  wanted(name) {
    return !this.only || this.only.test(name);
  }

  // Runs fn(t) with fresh pages (t.page opened with @pageOpts, as
  // newPage's) that are closed afterwards; prints ok/SKIP/FAIL for @name,
  // with the problems the pages saw.
  async check(name, fn, pageOpts = {}) {
    const started = Date.now();
    const problems = [];
    const contexts = [];
    const pages = [];
    const notes = [];
    const newPage = async (opts = {}) => {
      let ctx = opts.context;
      if (!ctx) {
        ctx = await this.context(opts);
        contexts.push(ctx);
      }
      const page = await ctx.newPage();
      pages.push(page);
      const w = watch(page, opts, problems);
      const base = opts.base || this.o.base;
      page.sextant = { w, base };
      return page;
    };
    let verdict = 'ok';
    let why = '';
    try {
      const newContext = async (opts = {}) => {
        const ctx = await this.context(opts);
        contexts.push(ctx);
        return ctx;
      };
      const t = await this.helpers(await newPage(pageOpts), newPage, notes);
      t.newContext = newContext;
      let timer;
      await Promise.race([
        fn(t),
        new Promise((_, rej) => {
          timer = setTimeout(() => rej(new Error(`still running after ${CHECK_MS / 1000} s`)), CHECK_MS);
        }),
      ]).finally(() => clearTimeout(timer));
    } catch (e) {
      if (e instanceof Skip) {
        verdict = 'SKIP';
        why = e.message;
      } else {
        verdict = 'FAIL';
        why = e.stack && !(e.message || '').includes('\n') ? e.stack : e.message;
      }
    }
    for (const p of pages) await p.close().catch(() => {});
    for (const c of contexts) await c.close().catch(() => {});
    if (verdict !== 'FAIL' && problems.length) {
      verdict = 'FAIL';
      why = 'the page(s) had problems';
    }
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (verdict === 'SKIP') console.log(`SKIP: ${why} [${name}]`);
    else if (verdict === 'ok') console.log(`ok: ${name} (${secs} s)`);
    else {
      this.failed++;
      console.log(`FAIL: ${name} (${secs} s): ${why}`);
    }
    for (const n of notes) console.log(`    ${n}`);
    for (const p of problems) console.log(`  ${p}`);
  }

  async helpers(page, newPage, notes) {
    const o = this.o;
    let feeds = 0;
    const t = {
      page,
      base: o.base,
      incidentId: this.incidentId,
      newPage,
      open: (hash, p = page) => open(p, p.sextant.w, p.sextant.base, hash),
      idle: (p = page) => idle(p, p.sextant.w),
      reload: async (p = page) => { await p.reload(); return shown(p, p.sextant.w); },
      api: (path) => apiGet(o.base, path),
      auth: o['auth-base'] ? {
        base: o['auth-base'],
        token: o['auth-token'],
        noteToken: o['auth-note-token'] || null,
        api: (path) => apiGet(o['auth-base'], path, o['auth-token']),
      } : null,
      volume: o['volume-base'] ? {
        base: o['volume-base'],
        api: (path) => apiGet(o['volume-base'], path),
      } : null,
      notready: o['notready-base'] ? {
        base: o['notready-base'],
        db: o['notready-db'],
        ...Object.fromEntries((o['notready-agent'] || '').split(' ').map((kv) => kv.split('='))),
        ingestClient: o['ingest-client'],
      } : null,
      skip: (why) => { throw new Skip(why); },
      note: (text) => notes.push(text),
      assert: (cond, msg) => { if (!cond) throw new Error(msg); },
      waitFor,
      feedEvent: async (node) => {
        if (!o.feed || !o['live-agent'] || !o.tmp) {
          throw new Error('feedEvent needs --feed, --live-agent and --tmp');
        }
        const text = `${node}: posted while the page is open`;
        const scn = join(o.tmp, `live-${process.pid}-${++feeds}.scn`);
        writeFileSync(scn, `agent live node=${node} ${o['live-agent']}\n`
          + `at 0 live failover kind=deploy text="${text}"\n`);
        await promisify(execFile)(o.feed, ['--url', o.base, '--scn', scn, '--margin', '0']);
        return text;
      },
    };
    return t;
  }

  // A browser context (a fresh profile) with @opts' viewport and colours.
  async context(opts) {
    const ctx = await this.browser.newContext({
      viewport: opts.viewport || { width: 1280, height: 900 },
      colorScheme: opts.colorScheme || 'light',
    });
    ctx.setDefaultTimeout(DEADLINE_MS);
    return ctx;
  }

  // 1: every page in every look, the looks side by side (axe takes
  // seconds a page on a loaded machine); one profile per look (a fresh
  // one per page costs seconds too, and pages share no state).
  async pages() {
    await Promise.all(LOOKS.map((look) => this.sweep(look)));
  }

  async sweep(look) {
    const ctx = await this.context({
      viewport: { width: look.width, height: look.height },
      colorScheme: look.scheme,
    });
    for (const [name, hash0] of PAGES) {
      const hash = hash0.replace('ID', String(this.incidentId));
      const label = `${name}-${look.width}${look.scheme === 'dark' ? '-dark' : ''}`;
      if (this.wanted(`page ${label}`)) {
        await this.check(`page ${label} (${hash})`, (t) => this.page(t, hash, label, look),
          { context: ctx });
      }
    }
    await ctx.close();
  }

  async page(t, hash, label, look) {
    const built = await t.open(hash);
    const [wide, tall] = await t.page.evaluate(() =>
      [document.documentElement.scrollWidth, document.documentElement.scrollHeight]);
    if (tall > SHOT_MAX_PX) t.note(`the page is ${tall} px tall: screenshot of the first screen`);
    await t.page.screenshot({ path: join(this.o.out, `${label}.png`), fullPage: tall <= SHOT_MAX_PX });
    // Narrow: the page itself must not scroll sideways (a wide table
    // scrolls in its own box). axe runs on the wide looks: every rule in
    // light mode, the colour contrast in dark mode (the rest does not
    // change with the colours), none at 400 px (it costs seconds a run
    // on a loaded machine and finds the same).
    if (look.width < 800) {
      t.assert(wide <= look.width,
        `the page is ${wide} px wide in a ${look.width} px window (it scrolls sideways)`);
    } else {
      const bad = await axe(t.page, look.scheme === 'dark' ? ['color-contrast'] : null);
      if (bad) throw new Error(`axe: serious or critical violations\n${bad}`);
    }
    if (!built) t.note('(page not built yet: generic checks only)');
  }

  // 2: the spec files' checks.
  async specs() {
    const files = readdirSync(HERE).filter((f) => f.endsWith('.spec.mjs')).sort();
    for (const f of files) {
      const mod = await import(join(HERE, f));
      for (const [name, fn] of Object.entries(mod)) {
        if (typeof fn !== 'function') continue;
        const label = `${f.replace('.spec.mjs', '')}: ${name}`;
        if (this.wanted(label)) await this.check(label, fn);
      }
    }
  }
}

async function main() {
  const o = args(process.argv);
  const started = Date.now();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  const run = new Run(o, browser);
  try {
    const list = await apiGet(o.base, 'incidents?limit=1');
    if (!list.incidents.length) throw new Error('the fixture has no incident');
    run.incidentId = list.incidents[0].id;
    await run.pages();
    await run.specs();
  } finally {
    await browser.close();
  }
  const secs = ((Date.now() - started) / 1000).toFixed(0);
  console.log(run.failed ? `${run.failed} check(s) FAILED (${secs} s)`
    : `all browser checks passed or skipped (${secs} s)`);
  process.exitCode = run.failed ? 1 : 0;
}

main().catch((e) => {
  console.error(`run.mjs: ${e.stack || e}`);
  process.exitCode = 1;
});
