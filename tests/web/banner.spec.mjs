// banner.spec.mjs -- the overview's "Collector not ready" banner (run by
// run.mjs; its top says how t works) on a collector that is really not
// ready: tests/web_dashboard.sh's fourth collector (t.notready), whose
// database this check write-locks from a sqlite3 of its own while a batch
// comes in. The writer's commit then fails after its busy timeout, /readyz
// answers 503 "commits failing: ..." and the banner must say so in
// words; once the lock goes, the writer's next probe commit succeeds,
// /readyz turns 200 and the banner must go away without a reload.
import { spawn, execFile } from 'node:child_process';

// GET /readyz of @base: [status, detail or ''].
async function readyz(base) {
  const res = await fetch(`${base}/readyz`);
  const j = await res.json();
  return [res.status, j.detail || ''];
}

// A sqlite3 holding @db's write lock until release() (or kill on failure).
async function lockDb(t, db) {
  const sq = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  sq.stdout.on('data', (d) => { out += d; });
  sq.stdin.write('.timeout 30000\nBEGIN IMMEDIATE;\nSELECT \'locked\';\n');
  await t.waitFor(() => out.includes('locked'), 'sqlite3 holds the write lock');
  return {
    release: () => { sq.stdin.end('COMMIT;\n.quit\n'); },
    kill: () => { if (sq.exitCode === null) sq.kill(); },
  };
}

export async function bannerSaysWhyAndGoesAwayWhenReady(t) {
  const nr = t.notready;
  t.assert(nr && nr.token, 'run.mjs needs --notready-base, --notready-db, --notready-agent and --ingest-client');
  const [code0] = await readyz(nr.base);
  t.assert(code0 === 200, `the not-ready collector is not ready before the check: ${code0}`);
  // The page's 503s from /readyz are the point here, and chromium logs
  // each as a console error.
  const page = await t.newPage({ base: nr.base, allowStatus: [503],
    allowConsole: [/status of 503/] });
  const lock = await lockDb(t, nr.db);
  let ingest;
  try {
    // A batch the writer cannot commit: it fails after the store's busy
    // timeout (the client gets its 503 then; its exit status is no news).
    ingest = new Promise((resolve) => {
      execFile(nr.ingestClient, ['--url', `${nr.base}/v1/ingest`, '--token', nr.token,
        '--cluster', nr.cluster, '--region', nr.region, '--node', 'banner', '--seq', '1-1'],
      () => resolve());
    });
    const [, why] = await t.waitFor(async () => {
      const r = await readyz(nr.base);
      return r[0] === 503 && r;
    }, '/readyz answers 503 while the write lock is held');
    t.note(`/readyz: 503 "${why}"`);
    t.assert(/commits failing/.test(why), `/readyz's reason: ${why}`);
    await t.open('#/', page);
    const banner = page.locator('#banner');
    await t.waitFor(async () => (await banner.innerText()).includes(why),
      `the banner says "Collector not ready: ${why}"`);
    const text = await banner.innerText();
    t.assert(text.startsWith('Collector not ready:'), `the banner: ${text}`);
    t.assert(await banner.getAttribute('role') === 'status', 'the banner is not role=status');
    t.assert(await page.evaluate(() => document.body.dataset.collector) === 'not ready',
      'body[data-collector] is not "not ready"');
    // Marks this document: a reload would lose the mark.
    await page.evaluate(() => { window.bannerCheck = 'same document'; });
    lock.release();
    await t.waitFor(async () => (await readyz(nr.base))[0] === 200,
      '/readyz turns 200 after the lock goes');
    await t.waitFor(async () => (await banner.innerText()).trim() === '',
      'the banner goes away once /readyz is 200');
    t.assert(await page.evaluate(() => window.bannerCheck) === 'same document',
      'the page reloaded: the banner must go away by itself');
    t.assert(await page.evaluate(() => document.body.dataset.collector) === 'ready',
      'body[data-collector] is not "ready"');
  } finally {
    lock.kill();
    if (ingest) await ingest;
  }
}
