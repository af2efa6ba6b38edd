// timeline.spec.mjs -- #/timeline against the API (run by run.mjs; its
// top says how t works): the scenario's DNS changes and failover in the
// list, in their clusters; the lanes drawn with the list's count; the kind
// and text filters in the URL; a row's details; a new event without a
// reload; zoom from the keyboard. The window is the incident's, closed and
// past, so that the page and the API hold the same events while the
// fixture's agents keep posting.

// "2026-12-05 01:02:03.456Z (ms)", as the details aside writes a time.
const utc = (ms) => `${new Date(ms).toISOString().replace('T', ' ')} (${ms})`;

// The fixture's incident window, in ms: from a minute before its first
// failure to a minute after its closing, or 20 s ago if that is earlier
// (the fixture feeds ahead of the clock: every event before then is in).
async function incidentWindow(t) {
  const inc = await t.api(`incidents/${t.incidentId}`);
  const start = (inc.times.first_failure || inc.times.detected).ms;
  t.assert(inc.times.closed, `incident ${t.incidentId} is still open`);
  return [start - 60000, Math.min(inc.times.closed.ms + 60000, Date.now() - 20000)];
}

// Every event of GET /api/v1/timeline for @query (all pages), read with
// @api (t.api, or another collector's).
async function apiEvents(api, query) {
  const all = [];
  let cursor = null;
  do {
    const j = await api(`timeline?${query}&limit=10000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    all.push(...j.events);
    cursor = j.next;
  } while (cursor);
  return all;
}

const hashOf = (page) => page.evaluate(() => location.hash);

// Waits until the page says it loaded N events; returns N.
async function loaded(t, page = t.page) {
  const status = page.locator('main p[role=status]');
  const m = await t.waitFor(async () => /^(\d+) events from .*\.$/.exec(await status.innerText()),
    `#/timeline never finished loading: "${await status.innerText()}"`);
  return Number(m[1]);
}

// The rendered rows: [{ i, kind, who, text }].
const rows = (page) => page.locator('main .vlist [data-kind]').evaluateAll((rs) => rs.map((r) => ({
  i: Number(r.dataset.i), kind: r.dataset.kind, who: r.querySelector('.vcl').textContent,
  text: r.textContent,
})));

const frame = (page) => page.evaluate(() => new Promise((r) => {
  requestAnimationFrame(() => requestAnimationFrame(r));
}));

// Every row of the list, scrolled through from the top (it renders only
// those in view); @most: the most rows in the DOM at any one time.
async function allRows(page) {
  const list = page.locator('main .vlist');
  const seen = new Map();
  let most = 0;
  await list.evaluate((l) => { l.scrollTop = 0; });
  for (;;) {
    await frame(page);
    const rs = await rows(page);
    most = Math.max(most, rs.length);
    for (const r of rs) seen.set(r.i, r);
    const at = await list.evaluate((l) => {
      const end = l.scrollTop + l.clientHeight >= l.scrollHeight - 1;
      if (!end) l.scrollTop += l.clientHeight;
      return end;
    });
    if (at) break;
  }
  return { rows: [...seen.values()].sort((a, b) => a.i - b.i), most };
}

// The unfiltered window: as many events as the API, the lanes drawn with
// the list's count; unchecking "probe" puts kind= in the URL and the list
// keeps to the API's non-probe events, among them the scenario's DNS
// changes and failover in their clusters, also after a reload.
export async function kindFilterShowsDnsAndFailover(t) {
  const { page } = t;
  const [from, to] = await incidentWindow(t);
  if (!await t.open(`#/timeline?from=${from}&to=${to}`)) t.skip('page not built: #/timeline');
  const all = await apiEvents(t.api, `from=${from}&to=${to}`);
  const n = await loaded(t);
  t.assert(n === all.length, `the page loaded ${n} events, the API has ${all.length}`);
  const canvas = page.locator('main canvas.lanes-canvas');
  await t.waitFor(async () => await canvas.getAttribute('data-events') === String(n),
    `the lanes drew ${await canvas.getAttribute('data-events')} events, the list has ${n}`);

  await page.locator('main fieldset.kinds input[value=probe]').uncheck();
  await page.locator('main form button[type=submit]', { hasText: 'Apply' }).click();
  const kinds = 'state,dns,failover,marker,metric,lifecycle,gap,drop';
  await t.waitFor(async () => (await hashOf(page)).includes(`kind=${encodeURIComponent(kinds)}`),
    `unchecking probe left the URL as ${await hashOf(page)}`);
  const want = await apiEvents(t.api, `from=${from}&to=${to}&kind=${kinds}`);
  t.assert(want.some((e) => e.kind === 'dns') && want.some((e) => e.kind === 'failover'),
    'the API has no dns or no failover event in the incident window');
  const check = async (when) => {
    const got = await loaded(t);
    t.assert(got === want.length, `${when}: ${got} events, the API ${want.length} without probes`);
    const rs = (await allRows(page)).rows;
    t.assert(rs.length === want.length, `${when}: ${rs.length} rows, ${want.length} events`);
    t.assert(!rs.some((r) => r.kind === 'probe'), `${when}: probe rows with probe unchecked`);
    for (const e of want.filter((x) => x.kind === 'dns' || x.kind === 'failover')) {
      t.assert(rs.some((r) => r.kind === e.kind && r.who === `${e.cluster}/${e.node}`),
        `${when}: no row data-kind="${e.kind}" of ${e.cluster}/${e.node}`);
    }
    return rs;
  };
  const before = await check('after Apply');
  await t.idle();
  const hash = await hashOf(page);
  await t.reload();
  t.assert(await hashOf(page) === hash, `the URL changed on reload: ${hash}`);
  t.assert(!await page.locator('main fieldset.kinds input[value=probe]').isChecked(),
    'probe is checked again after a reload');
  const after = await check('after a reload');
  t.assert(JSON.stringify(after) === JSON.stringify(before),
    'the rows differ after a reload');
}

// Typing in the text box puts q= in the URL and narrows the list to rows
// that say it; a click on a row shows its corrected time in the details.
export async function textFilterAndDetails(t) {
  const { page } = t;
  const [from, to] = await incidentWindow(t);
  if (!await t.open(`#/timeline?from=${from}&to=${to}`)) t.skip('page not built: #/timeline');
  const n = await loaded(t);
  const fo = (await apiEvents(t.api, `from=${from}&to=${to}&kind=failover`))
    .filter((e) => e.fields.kind !== 'deploy');
  t.assert(fo.length > 0, 'the API has no failover in the incident window');
  const needle = fo[0].fields.text || fo[0].fields.kind || 'failover';
  await page.locator('#t-text').fill(needle);
  await t.waitFor(async () => new URLSearchParams((await hashOf(page)).split('?')[1]).get('q') === needle,
    `typing "${needle}" left the URL as ${await hashOf(page)}`);
  const canvas = page.locator('main canvas.lanes-canvas');
  const shown = Number(await t.waitFor(async () => {
    const v = await canvas.getAttribute('data-events');
    return Number(v) < n && v;
  }, `the text "${needle}" did not narrow the ${n} events`));
  const rs = (await allRows(page)).rows;
  t.assert(shown > 0 && rs.length === shown, `${shown} events drawn, ${rs.length} rows`);
  t.assert(rs.every((r) => r.text.toLowerCase().includes(needle.toLowerCase())),
    `a row without "${needle}": ${JSON.stringify(rs)}`);
  t.note(`q=${needle}: ${shown} of ${n} events`);

  const e = fo[0];
  const row = page.locator('main .vlist [data-kind=failover]',
    { has: page.locator('.vcl', { hasText: `${e.cluster}/${e.node}` }) }).first();
  await row.locator('button').click();
  const aside = page.locator('main aside.details');
  await aside.waitFor({ state: 'visible' });
  const dd = aside.locator('dt:text-is("corrected time") + dd');
  t.assert(await dd.innerText() === utc(e.corrected_ms),
    `details say corrected time "${await dd.innerText()}", the API ${utc(e.corrected_ms)}`);
}

// An event posted while the live page is open shows without a reload.
export async function newEventWithoutReload(t) {
  const { page } = t;
  const node = `tl-live-${Date.now()}`;
  if (!await t.open(`#/timeline?q=${node}`)) t.skip('page not built: #/timeline');
  await loaded(t);
  t.assert(await page.locator('main .vlist [data-kind]').count() === 0,
    `rows for ${node} before it posted`);
  const text = await t.feedEvent(node);
  // An operator event that is not a failover (the feed's is a deploy) is
  // stored as kind "marker".
  const row = page.locator('main .vlist [data-kind=marker]', { hasText: text });
  await t.waitFor(() => row.count(), `no row for "${text}" without a reload`);
  t.assert((await row.first().locator('.vcl').innerText()).endsWith(`/${node}`),
    `the new row is not ${node}'s`);
}

// Focus on the lanes and "+" zooms to the middle half: from and to in the
// URL.
export async function zoomByKeyboard(t) {
  const { page } = t;
  const [from, to] = await incidentWindow(t);
  if (!await t.open(`#/timeline?from=${from}&to=${to}`)) t.skip('page not built: #/timeline');
  await loaded(t);
  await page.locator('main canvas.lanes-canvas').focus();
  await page.keyboard.press('+');
  const q = (span) => new Date(Math.round(from + (to - from) / 2 + span)).toISOString();
  const want = [q(-(to - from) / 4), q((to - from) / 4)];
  await t.waitFor(async () => {
    const p = new URLSearchParams((await hashOf(page)).split('?')[1]);
    return p.get('from') === want[0] && p.get('to') === want[1];
  }, `"+" left the URL as ${await hashOf(page)}, not from=${want[0]}&to=${want[1]}`);
  await loaded(t);
}

// Volume: #/timeline?from=now-24h on the collector of 100,000 events
// loads as many as the API has for the page's window, draws them all on
// the lanes, and the list keeps at most ~100 rows in the DOM wherever it
// is scrolled (the end included). The longest main-thread task is
// printed, not judged (the machine's load decides it).
export async function volumeListStaysVirtualised(t) {
  if (!t.volume) t.skip('no --volume-base');
  const page = await t.newPage({ base: t.volume.base });
  await page.addInitScript(() => {
    window.sextantLongest = 0;
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) {
        window.sextantLongest = Math.max(window.sextantLongest, e.duration);
      }
    }).observe({ type: 'longtask', buffered: true });
  });
  let win = null;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/api/v1/timeline' && !win) {
      win = [u.searchParams.get('from'), u.searchParams.get('to')];
    }
  });
  if (!await t.open('#/timeline?from=now-24h', page)) t.skip('page not built: #/timeline');
  const n = await loaded(t, page);
  const want = (await apiEvents(t.volume.api, `from=${win[0]}&to=${win[1]}`)).length;
  t.assert(n === want, `the page loaded ${n} events, the API has ${want} in its window`);
  t.assert(n >= 90000, `only ${n} of the 100,000 events are in the last 24 hours`);
  const canvas = page.locator('main canvas.lanes-canvas');
  await t.waitFor(async () => await canvas.getAttribute('data-events') === String(n),
    `the lanes drew ${await canvas.getAttribute('data-events')} events, the list has ${n}`);
  const list = page.locator('main .vlist');
  let most = 0;
  let last = -1;
  for (const at of [0.25, 0.5, 0.75, 1]) {
    await list.evaluate((l, f) => { l.scrollTop = (l.scrollHeight - l.clientHeight) * f; }, at);
    await frame(page);
    const rs = await rows(page);
    most = Math.max(most, rs.length);
    last = rs.length ? rs[rs.length - 1].i : -1;
  }
  t.assert(last === n - 1, `scrolled to the end, the last row is #${last}, not #${n - 1}`);
  t.assert(most <= 100, `${most} rows in the DOM for ${n} events (not virtualised)`);
  const longest = await page.evaluate(() => window.sextantLongest);
  t.note(`${n} events; at most ${most} rows in the DOM; longest task ${Math.round(longest)} ms`);
}
