// incidents.spec.mjs -- the incident list and the incident page (run by
// run.mjs; its top says how t works): the list links to each incident,
// the exports download the API's exact bytes, and an annotation added
// from the page lands in the page and in the API with a token of scope
// "annotate", while a read-only token is told what it lacks. The
// data-field/data-ms values against the API are generic.spec.mjs's
// incidentPageShowsApiTimes.
import { readFileSync } from 'node:fs';

// A page of the collector with api_tokens, signed in with @token (kept in
// sessionStorage as the sign-in form keeps it; the form itself is checked
// by generic.spec.mjs's tokensNeededToRead).
async function signedIn(t, token, opts = {}) {
  const page = await t.newPage({ base: t.auth.base, ...opts });
  await page.addInitScript((tk) => sessionStorage.setItem('sextant.token', tk), token);
  return page;
}

async function apiText(base, path, token) {
  const res = await fetch(`${base}/api/v1/${path}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  if (!res.ok) throw new Error(`GET /api/v1/${path}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

// Every incident of the API has a row data-incident=ID in the list, and
// its link opens the incident's page with that incident's RTO.
export async function listLinksToIncident(t) {
  const { page } = t;
  if (!await t.open('#/incidents')) t.skip('page not built: #/incidents');
  const list = await t.api('incidents?limit=500');
  const rows = page.locator('main [data-incident]');
  await t.waitFor(async () => await rows.count() === list.incidents.length,
    `#/incidents: ${await rows.count()} rows, the API ${list.incidents.length}`);
  for (const inc of list.incidents) {
    t.assert(await page.locator(`main [data-incident="${inc.id}"]`).count() === 1,
      `#/incidents: no row data-incident="${inc.id}"`);
  }
  const id = t.incidentId;
  await page.locator(`main [data-incident="${id}"] a`).first().click();
  await t.waitFor(async () => await page.evaluate(() => location.hash) === `#/incidents/${id}`,
    `the link of incident ${id} led to ${await page.evaluate(() => location.hash)}`);
  const inc = await t.api(`incidents/${id}`);
  const rto = page.locator('main [data-field="rto"]').first();
  await rto.waitFor();
  await t.waitFor(async () => await page.locator('main h1').innerText() !== `Incident #${id}`,
    `#/incidents/${id}: the heading never showed the service`);
  const h1 = await page.locator('main h1').innerText();
  t.assert(h1.includes(`#${id}`) && h1.includes(inc.service),
    `#/incidents/${id}: heading "${h1}" lacks #${id} or ${inc.service}`);
  const got = await rto.getAttribute('data-ms');
  const want = inc.durations_ms.rto === null ? null : String(inc.durations_ms.rto);
  t.assert(got === want, `#/incidents/${id}: RTO data-ms ${got}, the API ${want}`);
}

// Each export button downloads exactly what GET .../export?format= gives.
export async function exportsDownloadApiBytes(t) {
  const { page } = t;
  const id = t.incidentId;
  if (!await t.open(`#/incidents/${id}`)) t.skip(`page not built: #/incidents/${id}`);
  const inc = await t.api(`incidents/${id}`);
  await page.locator('main [data-field="rto"]').first().waitFor();
  for (const [fmt, label] of [['md', 'Markdown'], ['csv', 'CSV'], ['json', 'JSON']]) {
    const want = await apiText(t.base, `incidents/${id}/export?format=${fmt}`);
    const [dl] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('main button', { hasText: new RegExp(`^${label}$`) }).click(),
    ]);
    const name = dl.suggestedFilename();
    t.assert(name === `incident-${id}-${inc.service}.${fmt}`,
      `${label}: downloaded as ${name}`);
    const got = readFileSync(await dl.path());
    t.assert(got.equals(want),
      `${label}: ${got.length} bytes downloaded differ from the API's ${want.length}`);
    t.note(`${label}: ${name}, ${got.length} bytes, the API's`);
  }
}

// With a token of scope "annotate" the page's form adds an annotation:
// it shows in the page's table and in the API's annotations.
export async function annotationFromPage(t) {
  if (!t.auth || !t.auth.noteToken) t.skip('no --auth-note-token');
  const list = await t.auth.api('incidents?limit=1');
  const id = list.incidents[0].id;
  const page = await signedIn(t, t.auth.noteToken);
  if (!await t.open(`#/incidents/${id}`, page)) t.skip(`page not built: #/incidents/${id}`);
  const text = `pagetests note ${Date.now()}`;
  await page.locator('#a-text').fill(text);
  await page.locator('main form.annotate button[type=submit]').click();
  await t.waitFor(() => page.locator('main tr[data-kind="annotation"]', { hasText: text }).count(),
    `#/incidents/${id}: the annotation "${text}" did not show`);
  const inc = await t.auth.api(`incidents/${id}`);
  const a = inc.annotations.filter((x) => x.text === text);
  t.assert(a.length === 1, `GET /api/v1/incidents/${id}: ${a.length} annotations "${text}"`);
  t.assert(await page.locator('main form.annotate [role=status]').innerText() === 'Annotation added.',
    'the form did not say the annotation was added');
}

// With a read-only token the form says the token needs scope "annotate"
// and nothing is stored.
export async function readOnlyTokenCannotAnnotate(t) {
  if (!t.auth) t.skip('no --auth-base');
  const list = await t.auth.api('incidents?limit=1');
  const id = list.incidents[0].id;
  const page = await signedIn(t, t.auth.token,
    { allowStatus: [403], allowConsole: [/status of 403/] });
  if (!await t.open(`#/incidents/${id}`, page)) t.skip(`page not built: #/incidents/${id}`);
  const before = (await t.auth.api(`incidents/${id}`)).annotations.length;
  await page.locator('#a-text').fill(`pagetests refused ${Date.now()}`);
  await page.locator('main form.annotate button[type=submit]').click();
  const status = page.locator('main form.annotate [role=status]');
  await t.waitFor(async () => (await status.innerText()).includes('scope "annotate"'),
    `the form says "${await status.innerText()}", not that it needs scope "annotate"`);
  const after = (await t.auth.api(`incidents/${id}`)).annotations.length;
  t.assert(after === before, `a refused annotation was stored (${before} -> ${after})`);
}
