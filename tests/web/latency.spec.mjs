// latency.spec.mjs -- #/latency against the API (run by run.mjs; its top
// says how t works): one chart per region of the scenario's service with
// the API's latest p50/p95/p99 and failures in its caption, the range
// buttons in the URL, and the incident and failover under "Marks" at the
// API's times. The window ends in a minute already past, so that the page
// and the API read the same finished rollups while the fixture's agents
// keep posting.

const SERVICE = 'shop';

// "2026-12-05 01:02:03.456Z", as fmtTime(ms, { date: true }) in UTC.
const utc = (ms) => new Date(ms).toISOString().replace('T', ' ');
const num = (v) => (v === null ? '—' : `${v.toFixed(1)} ms`);

// A window [from, to] in ms ending before this minute (its rollups are
// complete: the fixture feeds ahead of the clock) that holds probes of
// every region of @regions and the incident's first failure.
async function pastWindow(t, regions, inc) {
  let win = null;
  await t.waitFor(async () => {
    const to = Math.floor(Date.now() / 60000) * 60000 - 1;
    const from = to - 36e5;
    if (inc.times.first_failure.ms > to) return false;
    for (const r of regions) {
      const lat = await t.api(`latency?service=${SERVICE}&region=${r}&from=${from}&to=${to}&step=minute`);
      if (!lat.points.length) return false;
    }
    win = [from, to];
    return true;
  }, 'no finished minute with probes of every region yet', 120000);
  return win;
}

// Each region's chart: a canvas, and a caption with the API's latest
// minute and the range's failures.
export async function chartPerRegionMatchesApi(t) {
  const { page } = t;
  const svc = (await t.api('services')).services.find((s) => s.name === SERVICE);
  t.assert(svc, `GET /api/v1/services has no ${SERVICE}`);
  const regions = svc.regions.map((r) => r.name);
  const inc = await t.api(`incidents/${t.incidentId}`);
  const [from, to] = await pastWindow(t, regions, inc);
  if (!await t.open(`#/latency?service=${SERVICE}&from=${from}&to=${to}`)) {
    t.skip('page not built: #/latency');
  }
  const figs = page.locator('main figure.chart');
  await t.waitFor(async () => await figs.count() === regions.length,
    `${await figs.count()} charts for ${regions.length} regions of ${SERVICE}`);
  for (const r of regions) {
    const fig = figs.filter({ has: page.locator('h2', { hasText: `${SERVICE} · ${r}` }) });
    t.assert(await fig.count() === 1, `no chart titled "${SERVICE} · ${r}"`);
    t.assert(await fig.locator('canvas').count() > 0, `${r}: the chart has no canvas`);
    const lat = await t.api(`latency?service=${SERVICE}&region=${r}&from=${from}&to=${to}&step=minute`);
    const last = lat.points[lat.points.length - 1];
    const f = lat.points.reduce((a, p) => a + p.failures, 0);
    const n = lat.points.reduce((a, p) => a + p.count, 0);
    const cap = await fig.locator('figcaption').innerText();
    const want = `p50 ${num(last.p50_ms)}, p95 ${num(last.p95_ms)}, p99 ${num(last.p99_ms)}, `
      + `${last.failures} of ${last.count} probes failed. Whole range: ${f} of ${n} failed`;
    t.assert(cap.includes(want), `${r}: caption "${cap}" lacks the API's "${want}"`);
    t.assert(cap.includes(`(${utc(last.t).slice(11)})`),
      `${r}: caption "${cap}" is not about the API's last minute ${utc(last.t)}`);
    t.note(`${r}: ${want}`);
  }
}

// Under "Marks": the incident's first failure and recovery, and every
// failover and marker the API has in the window, at the API's times, and
// nothing else.
export async function marksListIncidentAndFailover(t) {
  const { page } = t;
  const inc = await t.api(`incidents/${t.incidentId}`);
  const regions = (await t.api('services')).services
    .find((s) => s.name === SERVICE).regions.map((r) => r.name);
  const [from, to] = await pastWindow(t, regions, inc);
  if (!await t.open(`#/latency?service=${SERVICE}&from=${from}&to=${to}`)) {
    t.skip('page not built: #/latency');
  }
  const incs = await t.api(`incidents?from=${from}&to=${to}&service=${SERVICE}&limit=100`);
  const tl = await t.api(`timeline?kind=failover,marker&from=${from}&to=${to}&limit=200`);
  t.assert(tl.events.some((e) => e.kind === 'failover' && e.fields.kind !== 'deploy'),
    'the API has no failover in the window: nothing to check');
  const want = [];
  for (const i of incs.incidents) {
    want.push([(i.times.first_failure || i.times.detected).ms, `incident #${i.id} ${i.service} ${i.region}: first failure`]);
    if (i.times.restored) want.push([i.times.restored.ms, `incident #${i.id}: healthy`]);
  }
  for (const e of tl.events) want.push([e.corrected_ms, `${e.kind} (${e.cluster})`]);
  const items = page.locator('main ul.marks li');
  await t.waitFor(async () => await items.count() === want.length
    && !(await items.first().getAttribute('class') || '').includes('muted'),
  `"Marks" lists ${await items.count()}, the API has ${want.length}`);
  const texts = await items.allInnerTexts();
  for (const [ms, what] of want) {
    t.assert(texts.some((x) => x.startsWith(`${utc(ms)} ${what}`)),
      `"Marks" lacks "${utc(ms)} ${what}": ${JSON.stringify(texts)}`);
  }
  t.assert(want.some(([, w]) => w.startsWith(`incident #${t.incidentId} `)),
    `the fixture's incident ${t.incidentId} is not in the window`);
}

// Without service= the service choice names the charts' service; a range
// button sets range= in the URL, is pressed, asks the API for that span,
// and all of it survives a reload.
export async function rangeButtonSurvivesReload(t) {
  const { page } = t;
  const spans = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/api/v1/latency') {
      spans.push(Number(u.searchParams.get('to')) - Number(u.searchParams.get('from')));
    }
  });
  if (!await t.open('#/latency')) t.skip('page not built: #/latency');
  // Without service= the page charts the API's first service, and its
  // choice says which.
  const first = (await t.api('services')).services[0].name;
  const svc = await t.waitFor(() => page.locator('#l-service').inputValue(),
    'the service choice stays empty while the charts show one');
  t.assert(svc === first, `the service choice says "${svc}", the charts are of ${first}`);
  await page.locator('main figure.chart h2').first().waitFor();
  const title = await page.locator('main figure.chart h2').first().innerText();
  t.assert(title.startsWith(`${first} · `), `the first chart is "${title}", not of ${first}`);
  const btn = () => page.locator('main [role=group][aria-label=Range] button', { hasText: /^24h$/ });
  t.assert(await btn().getAttribute('aria-pressed') === 'false', 'the 24h button is pressed already');
  spans.length = 0;
  await btn().click();
  await t.waitFor(async () => /[?&]range=24h(&|$)/.test(await page.evaluate(() => location.hash)),
    `the 24h button left the URL as ${await page.evaluate(() => location.hash)}`);
  await t.idle();
  const check = async (when) => {
    t.assert(await btn().getAttribute('aria-pressed') === 'true', `${when}: 24h is not pressed`);
    t.assert(spans.length > 0 && spans.every((s) => Math.abs(s - 864e5) <= 1),
      `${when}: the page asked the API for spans of ${spans} ms, not 24 h`);
  };
  await check('after the click');
  const hash = await page.evaluate(() => location.hash);
  spans.length = 0;
  await t.reload();
  t.assert(await page.evaluate(() => location.hash) === hash, `the URL changed on reload: ${hash}`);
  await check('after a reload');
}
