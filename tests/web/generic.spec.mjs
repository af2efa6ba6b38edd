// generic.spec.mjs -- checks that hold for the whole dashboard, whatever
// each page draws (run by run.mjs; its top says how t works): a filter
// lives in the URL and survives a reload, a new event shows without a
// reload, nothing is readable without signing in when the collector has
// api_tokens, and the incident page shows the API's times. A part for a
// page not built yet prints "SKIP: page not built" and runs once it is.

// Hooks that carry data on the pages (DOM hooks in issue 13's split).
const DATA_HOOKS = '[data-state], [data-incident], [data-node], [data-cluster], '
  + '[data-field], [data-kind]';
// A filter in the page itself, in the order tried: a search box (applied
// as one types), a choice, a text box (a time range is one: typing a word
// into it would be refused, so it comes last).
const FILTERS = ['main input[type=search]', 'main select',
  'main input[type=text], main input:not([type])'];

// A locator that finds @el again after a reload: its id, name or label.
async function again(page, el, sel, nth) {
  const a = await el.evaluate((e) => ({
    id: e.id, name: e.getAttribute('name'), label: e.getAttribute('aria-label'),
  }));
  if (a.id) return page.locator(`[id="${a.id}"]`);
  if (a.name) return page.locator(`main [name="${a.name}"]`);
  if (a.label) return page.locator(`main [aria-label="${a.label}"]`);
  return page.locator(sel).nth(nth);
}

// Sets the first visible filter of the page to something else; returns
// its locator (found again after a reload) and the value, or null.
async function setFilter(page) {
  for (const sel of FILTERS) {
    const f = await setOne(page, sel);
    if (f) return f;
  }
  return null;
}

async function setOne(page, sel) {
  const all = page.locator(sel);
  const n = await all.count();
  for (let i = 0; i < n; i++) {
    const el = all.nth(i);
    if (!await el.isVisible()) continue;
    const tag = await el.evaluate((e) => e.tagName);
    let value;
    if (tag === 'SELECT') {
      const cur = await el.inputValue();
      const opts = await el.locator('option').evaluateAll((os) =>
        os.map((x) => x.value));
      value = opts.find((v) => v && v !== cur);
      if (value === undefined) continue;
      await el.selectOption(value);
    } else {
      value = 'us';
      await el.fill(value);
      await el.dispatchEvent('change');
    }
    return { loc: await again(page, el, sel, i), value };
  }
  return null;
}

// The filter of #/timeline and #/agents changes the URL, and the page
// reloaded from that URL shows the same filter; on any page the clock
// switch and the hash's parameters survive a reload.
export async function filterInUrlSurvivesReload(t) {
  const { page } = t;
  await t.open('#/agents?cluster=us');
  await page.locator('#clock').click();
  t.assert(await page.locator('#clock').getAttribute('aria-pressed') === 'true',
    'the clock switch did not turn to local time');
  const hash0 = await page.evaluate(() => location.hash);
  await t.reload();
  t.assert(await page.locator('#clock').getAttribute('aria-pressed') === 'true',
    'local time did not survive a reload');
  t.assert(await page.evaluate(() => location.hash) === hash0,
    `the hash changed on reload: ${hash0}`);

  for (const hash of ['#/timeline', '#/agents']) {
    if (!await t.open(hash)) {
      t.note(`SKIP: page not built: filter on ${hash}`);
      continue;
    }
    const before = await page.evaluate(() => location.hash);
    const f = await setFilter(page);
    t.assert(f, `${hash}: no filter (a <select> or text <input> in main)`);
    const after = await t.waitFor(async () => {
      const h = await page.evaluate(() => location.hash);
      return h !== before && h;
    }, `${hash}: setting the filter to "${f.value}" left the URL as ${before}`);
    await t.idle();
    await t.reload();
    t.assert(await page.evaluate(() => location.hash) === after,
      `${hash}: the URL changed on reload: ${after}`);
    const got = await f.loc.inputValue();
    t.assert(got === f.value,
      `${hash}: after a reload of ${after} the filter is "${got}", not "${f.value}"`);
    t.note(`${hash}: filter "${f.value}" -> ${after}, kept on reload`);
  }
}

// An event posted while a page is open shows without a reload: a new
// agent on #/agents (its row) and in the overview's header count.
export async function newEventShowsWithoutReload(t) {
  const { page } = t;
  let ran = 0;
  if (await t.open('#/agents')) {
    const node = `web-live-${Date.now()}`;
    await t.feedEvent(node);
    await t.waitFor(() => page.locator(`[data-node="${node}"]`).count(),
      `#/agents: no row data-node="${node}" for the agent that just posted`);
    ran++;
  } else {
    t.note('SKIP: page not built: new agent on #/agents');
  }
  if (await t.open('#/')) {
    const count = async () => {
      const m = /(\d+)\s+agents?\b/.exec(await page.locator('#summary').innerText());
      return m ? Number(m[1]) : null;
    };
    const n = await count();
    if (n === null) {
      t.note('overview: #summary shows no "N agents": not checked there');
    } else {
      const node = `web-live-${Date.now()}`;
      await t.feedEvent(node);
      await t.waitFor(async () => (await count()) > n,
        `overview: #summary still says ${n} agents after ${node} posted`);
      ran++;
    }
  } else {
    t.note('SKIP: page not built: new agent on the overview');
  }
  if (!ran) t.skip('page not built: no page shows agents yet');
}

const apiCalls = (page) => {
  const seen = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/')) seen.push(r.status());
  });
  return seen;
};

// One page of the collector with api_tokens: refused, then signed in.
async function signIn(t, hash, context) {
  const page = await t.newPage({
    base: t.auth.base, allowStatus: [401], context,
    allowConsole: [/status of 401/],
  });
  const seen = apiCalls(page);
  if (!await t.open(hash, page)) {
    const code = await page.evaluate(() => fetch('/api/v1/status').then((r) => r.status));
    t.assert(code === 401, `${hash}: GET /api/v1/status without a token: ${code}`);
    t.assert(!seen.some((s) => s < 400), `${hash}: an API call succeeded: ${seen}`);
    t.note(`SKIP: page not built: sign-in on ${hash} (the API said 401)`);
    return;
  }
  const form = page.locator('main form input#token');
  await form.waitFor();
  t.assert(seen.length > 0 && seen.every((s) => s === 401),
    `${hash}: API replies before signing in: ${seen}`);
  t.assert(await page.locator(DATA_HOOKS).count() === 0,
    `${hash}: data shows before signing in`);
  // A wrong token: refused again, the form back.
  const n401 = seen.length;
  await form.fill('wrong-token-0123456789');
  await page.locator('main form button[type=submit]').click();
  await t.waitFor(() => seen.length > n401, `${hash}: the wrong token was not tried`);
  await form.waitFor();
  t.assert(seen.every((s) => s === 401), `${hash}: the wrong token read: ${seen}`);
  // The right one: the page.
  const n = seen.length;
  await form.fill(t.auth.token);
  await page.locator('main form button[type=submit]').click();
  await t.waitFor(async () => await page.locator('main h1').innerText() !== 'Sign in'
    && seen.length > n, `${hash}: still not in after signing in`);
  await t.idle(page);
  const after = seen.slice(n);
  t.assert(after.every((s) => s === 200 || s === 304),
    `${hash}: API replies after signing in: ${after}`);
  t.assert(!await form.count(), `${hash}: the sign-in form is still there`);
}

// With api_tokens, every page shows the sign-in form and no data, every
// API call is a 401 (also with a wrong token) until the token is given;
// then the page loads.
export async function tokensNeededToRead(t) {
  if (!t.auth) t.skip('no --auth-base');
  const list = await t.auth.api('incidents?limit=1');
  const id = list.incidents.length ? list.incidents[0].id : 1;
  // One profile (a fresh one costs seconds): the token is in
  // sessionStorage, which each page has its own of.
  const context = await t.newContext();
  for (const hash of ['#/', '#/latency', '#/timeline', '#/incidents',
    `#/incidents/${id}`, '#/agents']) {
    await signIn(t, hash, context);
  }
}

// The incident page's computed values (data-field, data-ms) are the
// API's, to the millisecond; a value the API has as null has no data-ms.
const FIELDS = {
  first_failure: (i) => i.times.first_failure,
  detected: (i) => i.times.detected,
  failover_start: (i) => i.times.failover_start,
  dns_first: (i) => i.times.dns_switched_first,
  dns_all: (i) => i.times.dns_switched_all,
  restored: (i) => i.times.restored,
  closed: (i) => i.times.closed,
  time_to_detect: (i) => i.durations_ms.time_to_detect,
  time_to_failover: (i) => i.durations_ms.time_to_failover,
  rto: (i) => i.durations_ms.rto,
  rpo: (i) => i.rpo_ms,
};

export async function incidentPageShowsApiTimes(t) {
  const hash = `#/incidents/${t.incidentId}`;
  if (!await t.open(hash)) t.skip(`page not built: ${hash}`);
  const inc = await t.api(`incidents/${t.incidentId}`);
  for (const [field, pick] of Object.entries(FIELDS)) {
    const v = pick(inc);
    const want = v === null ? null : String(typeof v === 'object' ? v.ms : v);
    const els = t.page.locator(`main [data-field="${field}"]`);
    const n = await els.count();
    t.assert(n > 0, `${hash}: no element with data-field="${field}"`);
    for (let i = 0; i < n; i++) {
      const got = await els.nth(i).getAttribute('data-ms');
      t.assert(got === want,
        `${hash}: data-field="${field}" has data-ms ${got}, the API ${want}`);
    }
  }
}
