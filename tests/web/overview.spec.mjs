// overview.spec.mjs -- the overview and agents pages against the API
// (run by run.mjs; its top says how t works). The fixture is
// tests/web_dashboard.sh's: the active-passive failover of
// tests/scenarios/ap_failover.scn with the agents kept fresh afterwards,
// so shop's eu-west-1 is unhealthy and the global name points to
// us-east-1. Each check reads the API again while it waits, since the
// page and the API are both live.

// A cell's state from GET /api/v1/status, as the README's "Dashboard:
// the overview and agents pages" defines it (written out here again, not
// imported from the page, so that a wrong page fails).
function wantState(svc, reg) {
  if (reg.agents === 0 && reg.stale_agents > 0) return 'stale';
  if (reg.health === 'unhealthy') return 'unhealthy';
  if (svc.pattern === 'active-passive' && svc.serving.length > 1 && reg.serving) return 'split';
  if (reg.health === 'healthy') return reg.unhealthy_agents > 0 ? 'degraded' : 'healthy';
  return 'unknown';
}

// Every health cell of the page: "service/region" -> [state, serving].
async function cells(page) {
  return page.locator('main td[data-service][data-region]').evaluateAll((els) =>
    Object.fromEntries(els.map((e) => [`${e.dataset.service}/${e.dataset.region}`,
      [e.dataset.state, e.dataset.serving === 'true']])));
}

// What differs between the page's cells and the API's status ('' when
// nothing does).
function cellDiff(got, status) {
  const want = {};
  for (const s of status.services) {
    for (const r of s.regions) want[`${s.name}/${r.name}`] = [wantState(s, r), r.serving];
  }
  const bad = [];
  for (const k of new Set([...Object.keys(want), ...Object.keys(got)])) {
    const [gs, gv] = got[k] || [], [ws, wv] = want[k] || [];
    if (gs !== ws || gv !== wv) bad.push(`${k}: page ${gs}/serving=${gv}, API ${ws}/serving=${wv}`);
  }
  return bad.join('; ');
}

// The overview's services x regions cells show the API's health by
// quorum and serving region, the failover's outcome among them, and its
// open incidents are the API's.
export async function overviewShowsHealthAndServingRegion(t) {
  const { page } = t;
  if (!await t.open('#/')) t.skip('page not built: #/');
  let diff = 'not compared yet';
  await t.waitFor(async () => {
    diff = cellDiff(await cells(page), await t.api('status'));
    return diff === '';
  }, `overview cells differ from /api/v1/status: ${diff}`).catch(() => {
    throw new Error(`overview cells differ from /api/v1/status: ${diff}`);
  });
  const got = await cells(page);
  t.assert(got['shop/eu-west-1'] && got['shop/eu-west-1'][0] === 'unhealthy',
    `shop/eu-west-1 is ${got['shop/eu-west-1']}, not unhealthy (the failover's dead primary)`);
  t.assert(got['shop/us-east-1'] && got['shop/us-east-1'][1] === true,
    `shop/us-east-1 is not marked serving: ${got['shop/us-east-1']}`);
  const serving = Object.entries(got).filter(([k, v]) => k.startsWith('shop/') && v[1]);
  t.assert(serving.length === 1, `shop is served by ${serving.map(([k]) => k)}, not one region`);
  // The state is written in words too, not colour alone.
  const word = await page.locator('main td[data-service="shop"][data-region="eu-west-1"]').innerText();
  t.assert(/unhealthy/.test(word) && /see it failing/.test(word),
    `shop/eu-west-1's cell does not say it: ${word}`);
  const us = await page.locator('main td[data-service="shop"][data-region="us-east-1"]').innerText();
  t.assert(/serving/.test(us), `shop/us-east-1's cell does not say serving: ${us}`);

  let ids = '';
  await t.waitFor(async () => {
    const open = (await t.api('incidents?open=true')).incidents.map((i) => String(i.id)).sort();
    const shown = (await page.locator('main [data-incident]').evaluateAll((els) =>
      els.map((e) => e.dataset.incident))).sort();
    ids = `page [${shown}], API [${open}]`;
    return shown.join() === open.join();
  }, 'open incidents').catch(() => { throw new Error(`open incidents differ: ${ids}`); });
  t.note(`${Object.keys(got).length} cells as the API says; open incidents ${ids}`);
}

// A focused link keeps the focus while the page redraws with new data.
export async function overviewKeepsFocusAcrossUpdates(t) {
  const { page } = t;
  if (!await t.open('#/')) t.skip('page not built: #/');
  const link = page.locator('main a[data-key="svc-shop"]');
  await link.focus();
  const n = await page.evaluate(() => document.querySelectorAll('main td[data-state]').length);
  // Wait for at least one redraw: the verdict's element is replaced each
  // time (a marker on the old one disappears).
  await page.evaluate(() => { document.querySelector('main .verdict').dataset.old = '1'; });
  await t.waitFor(() => page.evaluate(() => !document.querySelector('main .verdict[data-old]')),
    'the overview never redrew (polling every 5 s)');
  const key = await page.evaluate(() => document.activeElement && document.activeElement.dataset.key);
  t.assert(key === 'svc-shop', `after a redraw the focus is on ${key}, not the shop link`);
  t.assert(await page.evaluate(() => document.querySelectorAll('main td[data-state]').length) === n,
    'the redraw changed the number of cells');
}

// The agents page lists every agent of /api/v1/clusters, each once.
export async function agentsPageListsEveryAgent(t) {
  const { page } = t;
  if (!await t.open('#/agents')) t.skip('page not built: #/agents');
  let diff = 'not compared yet';
  await t.waitFor(async () => {
    const api = (await t.api('clusters')).clusters.flatMap((c) =>
      c.regions.flatMap((r) => r.agents.map((a) => `${c.name}/${a.node}`))).sort();
    const rows = (await page.locator('main tr[data-cluster][data-node]').evaluateAll((els) =>
      els.map((e) => `${e.dataset.cluster}/${e.dataset.node}`))).sort();
    diff = `page [${rows}], API [${api}]`;
    return rows.join() === api.join();
  }, 'agents').catch(() => { throw new Error(`agents differ: ${diff}`); });
  t.note(diff);
  const row = page.locator('main tr[data-cluster="us"][data-node="n2"]');
  const text = await row.innerText();
  t.assert(/reporting|stale/.test(text), `n2's row names no state: ${text}`);
}

// Sorting by a column is a keyboard button and goes into the URL: Enter
// on "last seen" sorts ascending, again descending, and a reload keeps it.
export async function agentsSortByKeyboardInUrl(t) {
  const { page } = t;
  if (!await t.open('#/agents')) t.skip('page not built: #/agents');
  const lastSeen = () => page.locator('main tbody tr time.last-seen').evaluateAll((els) =>
    els.map((e) => Date.parse(e.getAttribute('datetime'))));
  const sorted = (a, dir) => a.every((v, i) => i === 0 || (dir > 0 ? a[i - 1] <= v : a[i - 1] >= v));
  await page.locator('main button[data-sort="last_seen"]').focus();
  await page.keyboard.press('Enter');
  await t.waitFor(async () => /sort=last_seen&dir=asc/.test(page.url()), 'sort=last_seen&dir=asc in the URL');
  t.assert(sorted(await lastSeen(), 1), `not ascending by last seen: ${await lastSeen()}`);
  // The redraw put the focus back on the (new) button: Enter again.
  await page.keyboard.press('Enter');
  await t.waitFor(async () => /dir=desc/.test(page.url()), 'dir=desc in the URL');
  t.assert(sorted(await lastSeen(), -1), `not descending by last seen: ${await lastSeen()}`);
  await t.reload();
  t.assert(await page.locator('main th[aria-sort="descending"] button[data-sort="last_seen"]').count() === 1,
    'after a reload the table is not sorted by last seen, descending');
  t.assert(sorted(await lastSeen(), -1), 'after a reload the rows are not in that order');
}

// Stale data is drawn as stale, never as healthy: on the collector with
// api_tokens (fed the failover once, then silent, so its agents are
// stale), every cell is the API's, shop's regions are stale and say when
// they were last heard of.
export async function overviewDrawsStaleAsStale(t) {
  if (!t.auth) t.skip('no --auth-base');
  const page = await t.newPage({
    base: t.auth.base, allowStatus: [401], allowConsole: [/status of 401/],
  });
  if (!await t.open('#/', page)) t.skip('page not built: #/');
  await page.locator('main form input#token').fill(t.auth.token);
  await page.locator('main form button[type=submit]').click();
  let diff = 'not compared yet';
  await t.waitFor(async () => {
    diff = cellDiff(await cells(page), await t.auth.api('status'));
    return diff === '';
  }, 'cells').catch(() => {
    throw new Error(`overview cells differ from /api/v1/status: ${diff}`);
  });
  const got = await cells(page);
  for (const region of ['eu-west-1', 'us-east-1', 'ap-southeast-1']) {
    const k = `shop/${region}`;
    t.assert(got[k] && got[k][0] === 'stale', `${k} is ${got[k]}, not stale (its agents went silent)`);
    const text = await page.locator(`main td[data-service="shop"][data-region="${region}"]`).innerText();
    t.assert(/last heard .* ago/.test(text), `${k} does not say when it was last heard of: ${text}`);
  }
  t.assert(!Object.values(got).some(([s]) => s === 'healthy'),
    `a cell is healthy with every agent stale: ${JSON.stringify(got)}`);
}
