// pages/agents.js -- every agent the collector has heard from (GET
// /api/v1/clusters): cluster, region, node, version, last seen, clock
// offset, spool backlog (the agent's own report, when the API carries
// it), drops and delivery. Sorted by a column (buttons in the header),
// filtered by cluster; both live in the URL (#/agents?cluster=eu&
// sort=last_seen&dir=desc). An agent is marked stale when GET
// /api/v1/status lists it among a service's stale agents (silent for
// incidents.stale_intervals probe intervals), or when the API marks it
// so itself; "reporting" when status has its target states and it is
// not stale; "no probes" when it reports no target state (an operator's
// node), as its staleness cannot be told then. Both replies are polled
// every 5 s with their ETag and the table is redrawn in place.
import { h, replace, refresh, stateBadge, agoSpan, tickAgo } from '../lib/dom.js';
import { current, setParams } from '../lib/url.js';
import { fmtTime, fmtDur, fmtBytes, onClockChange } from '../lib/fmt.js';
import { poll } from '../lib/api.js';
import { headerSummary } from '../lib/summary.js';

// Columns: key (URL and data-sort), header, sort value (null last).
const COLUMNS = [
  ['cluster', 'cluster', (a) => a.cluster],
  ['region', 'region', (a) => a.region],
  ['node', 'node', (a) => a.node],
  ['state', 'state', (a) => ['stale', 'unknown', 'healthy'].indexOf(a.state)],
  ['version', 'version', (a) => a.agent_version],
  ['last_seen', 'last seen', (a) => a.last_seen.ms],
  ['offset', 'clock offset', (a) => a.clock_offset_ms],
  ['spool', 'spool backlog', (a) => (a.spool ? a.spool.events : null)],
  ['drops', 'drops', (a) => (a.last_drop ? a.last_drop.count : 0)],
  ['waiting', 'delivery', (a) => a.waiting],
];

// Flattens the clusters reply into one object per agent.
function agentsOf(clusters) {
  const out = [];
  for (const c of clusters.clusters) {
    for (const r of c.regions) {
      for (const a of r.agents) out.push({ ...a, cluster: c.name });
    }
  }
  return out;
}

function compare(get, dir) {
  return (x, y) => {
    const a = get(x), b = get(y);
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;      // unknown last, both ways
    if (b === null || b === undefined) return -1;
    const c = typeof a === 'string' ? a.localeCompare(b) : a - b;
    return dir === 'desc' ? -c : c;
  };
}

// The last drop report: how many, which seqs, the last dropped event's
// time (agent clock) and when the report came (when the API says).
function dropsText(d) {
  if (!d) return h('span', { class: 'muted' }, 'none');
  return [h('strong', {}, `${d.count} dropped`), ` (seq ${d.from_seq}–${d.to_seq})`,
    d.last_event ? [h('br'), h('span', { class: 'muted small' }, 'last dropped event ',
      h('time', { datetime: d.last_event.utc }, fmtTime(d.last_event.ms, { date: true })),
      ' (agent clock)')] : null,
    d.reported ? [h('br'), h('span', { class: 'muted small' }, 'reported ', agoSpan(d.reported.ms))] : null];
}

// stale: status says so (or the API marks the agent itself); healthy:
// it probes targets and is not stale; unknown: it reports no target
// state (an operator's node), so staleness cannot be told.
const STATE_WORDS = {
  stale: () => stateBadge('stale'),
  healthy: () => stateBadge('healthy', 'reporting'),
  unknown: () => h('span', { title: 'reports no target state: staleness not known' },
    stateBadge('unknown', 'no probes')),
};

function agentState(a, d) {
  const key = `${a.cluster}\u0000${a.node}`;
  if (a.stale === true || (d.stale && d.stale.has(key))) return 'stale';
  if (d.probing && d.probing.has(key)) return 'healthy';
  return 'unknown';
}

function agentRow(a) {
  return h('tr', { dataset: { cluster: a.cluster, node: a.node, stale: String(a.state === 'stale') } },
    h('td', { 'data-label': 'cluster' }, a.cluster),
    h('td', { 'data-label': 'region' }, a.region),
    h('th', { scope: 'row', 'data-label': 'node' }, a.node,
      a.epochs > 1 ? h('div', { class: 'muted small' }, `${a.epochs} epochs (restarts with a new spool)`) : null),
    h('td', { 'data-label': 'state' }, STATE_WORDS[a.state]()),
    h('td', { 'data-label': 'version' }, h('code', {}, a.agent_version || '—')),
    h('td', { 'data-label': 'last seen' }, agoSpan(a.last_seen.ms), h('br'),
      h('time', { class: 'muted small last-seen', datetime: a.last_seen.utc }, fmtTime(a.last_seen.ms, { date: true }))),
    h('td', { 'data-label': 'clock offset', title: 'collector clock minus agent clock' },
      a.clock_offset_ms === null ? h('span', { class: 'muted' }, 'not known yet')
        : fmtDur(a.clock_offset_ms, { sign: true })),
    h('td', { 'data-label': 'spool backlog' }, a.spool
      ? `${a.spool.events} event${a.spool.events === 1 ? '' : 's'} · ${fmtBytes(a.spool.bytes)}` : '—'),
    h('td', { 'data-label': 'drops' }, dropsText(a.last_drop)),
    h('td', { 'data-label': 'delivery' }, `seq ${a.acked_seq} acked`,
      a.waiting ? h('div', { class: 'muted small' },
        `${a.waiting} waiting (up to seq ${a.highest_seq})`) : null));
}

function headerCell(col, label, sort, dir) {
  const on = sort === col;
  const next = on && dir === 'asc' ? 'desc' : 'asc';
  return h('th', { scope: 'col', 'aria-sort': on ? (dir === 'asc' ? 'ascending' : 'descending') : null },
    h('button', {
      type: 'button', class: 'sort', 'data-sort': col, 'data-dir': next, 'data-key': `sort-${col}`,
      'aria-label': `${label}: sort ${next === 'asc' ? 'ascending' : 'descending'}`,
    }, label, h('span', { 'aria-hidden': 'true' }, on ? (dir === 'asc' ? ' ▲' : ' ▼') : ' ↕')));
}

export default {
  title: 'Agents',
  render(main) {
    const { params } = current();
    const view = {
      cluster: params.get('cluster') || '',
      sort: COLUMNS.some((c) => c[0] === params.get('sort')) ? params.get('sort') : 'cluster',
      dir: params.get('dir') === 'desc' ? 'desc' : 'asc',
    };
    const d = { clusters: null, stale: null, probing: null, errors: new Map() };
    const select = h('select', { id: 'agents-cluster' });
    const count = h('span', { class: 'muted', 'aria-live': 'polite' });
    const errors = h('div', { role: 'status' });
    const body = h('div');
    const summary = headerSummary();
    main.append(h('h1', {}, 'Agents'),
      h('div', { class: 'toolbar' }, h('label', { for: 'agents-cluster' }, 'Cluster'), select, count),
      errors, body);

    const options = () => {
      const names = d.clusters ? d.clusters.clusters.map((c) => c.name) : [];
      if (view.cluster && !names.includes(view.cluster)) names.push(view.cluster);
      const want = JSON.stringify(names);
      if (select.dataset.names === want) return;
      select.dataset.names = want;
      replace(select, h('option', { value: '' }, 'all clusters'),
        names.map((n) => h('option', { value: n }, n)));
      select.value = view.cluster;
    };

    const draw = () => {
      options();
      refresh(errors, [...d.errors].map(([what, msg]) =>
        h('p', { class: 'error' }, `Could not load ${what}: ${msg}`)));
      if (!d.clusters) { refresh(body, h('p', { class: 'muted' }, 'Loading…')); return; }
      const all = agentsOf(d.clusters);
      for (const a of all) a.state = agentState(a, d);
      const shown = all.filter((a) => !view.cluster || a.cluster === view.cluster);
      const col = COLUMNS.find((c) => c[0] === view.sort);
      shown.sort(compare(col[2], view.dir));
      const stale = shown.filter((a) => a.state === 'stale').length;
      count.textContent = `${shown.length} of ${all.length} agents` + (stale ? `, ${stale} stale` : '');
      refresh(body, shown.length ? h('div', {
        class: 'table-wrap', 'data-key': 'agents-wrap', role: 'region', 'aria-label': 'Agents', tabindex: 0,
      }, h('table', { class: 'agents stack' },
        h('thead', {}, h('tr', {}, COLUMNS.map(([k, label]) => headerCell(k, label, view.sort, view.dir)))),
        h('tbody', {}, shown.map(agentRow))))
        : h('p', { class: 'muted' }, view.cluster
          ? `No agent of cluster "${view.cluster}" has sent a batch.` : 'No agent has sent a batch yet.'));
    };

    select.addEventListener('change', () => {
      view.cluster = select.value;
      setParams({ cluster: view.cluster || null });
      draw();
    });
    body.addEventListener('click', (ev) => {
      const b = ev.target.closest('button.sort');
      if (!b) return;
      view.sort = b.dataset.sort;
      view.dir = b.dataset.dir;
      setParams({ sort: view.sort, dir: view.dir });
      draw();
    });

    const ok = (what, fn) => (j) => { d.errors.delete(what); fn(j); draw(); };
    const bad = (what) => (e) => { d.errors.set(what, e.message); draw(); };
    const stops = [
      poll('clusters', 5000, ok('clusters', (j) => { d.clusters = j; summary.set(j); }), bad('clusters')),
      poll('status', 5000, ok('status', (j) => {
        d.stale = new Set();
        d.probing = new Set();
        for (const s of j.services) for (const a of s.stale_agents) d.stale.add(`${a.cluster}\u0000${a.node}`);
        for (const t of j.targets) for (const a of t.agents) d.probing.add(`${t.cluster}\u0000${a.node}`);
      }), bad('status')),
      onClockChange(draw),
    ];
    const tick = setInterval(() => tickAgo(body), 1000);
    draw();
    return () => {
      for (const s of stops) s();
      clearInterval(tick);
      summary.stop();
    };
  },
};
