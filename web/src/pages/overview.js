// pages/overview.js -- the first page, five seconds to the answer: is
// anything broken, where, and where does traffic go now. Open incidents
// on top (GET /api/v1/incidents?open=true), a count of regions per
// state, then services x regions (GET /api/v1/status: health by quorum,
// where the global name points, stale agents; GET /api/v1/services: the
// 24 h p95 and uptime; GET /api/v1/latency: the last 3 h per minute for
// the sparklines), then every cluster's targets. Live: status, open
// incidents and clusters polled every 5 s with their ETag, services
// every 30 s, sparklines every minute; each part is redrawn in place
// (dom.js refresh keeps the focus and the scroll offsets).
//
// A cell's state (its data-state), first match wins:
//   stale      no agent that is not stale probes the region, but a stale
//              one did: the last word is old, so never drawn as healthy
//   unhealthy  by quorum (the incident engine's health)
//   split      active-passive, and the global name points to two or
//              more regions, this one among them
//   degraded   healthy by quorum, but some agents see it failing
//   healthy
//   unknown    no agent probes it (yet)
import { h, refresh, stateBadge, agoSpan, tickAgo } from '../lib/dom.js';
import { link } from '../lib/url.js';
import { fmtTime, fmtLatency, fmtPct, onClockChange } from '../lib/fmt.js';
import { get, poll } from '../lib/api.js';
import { sparkline, sparkLabel } from '../lib/spark.js';
import { headerSummary } from '../lib/summary.js';

const SPARK_HOURS = 3;
const ORDER = ['unhealthy', 'split', 'degraded', 'stale', 'unknown', 'healthy'];

export function cellState(svc, reg) {
  if (reg.agents === 0 && reg.stale_agents > 0) return 'stale';
  if (reg.health === 'unhealthy') return 'unhealthy';
  if (svc.pattern === 'active-passive' && svc.serving.length > 1 && reg.serving) {
    return 'split';
  }
  if (reg.health === 'healthy') return reg.unhealthy_agents > 0 ? 'degraded' : 'healthy';
  return 'unknown';
}

// Region names across services, in the order they first appear.
function regionNames(services) {
  const seen = [];
  for (const s of services) {
    for (const r of s.regions) if (!seen.includes(r.name)) seen.push(r.name);
  }
  return seen;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
const usOf = (ms) => (ms === null || ms === undefined ? null : ms * 1000);
const timeEl = (t) => (t ? h('time', { datetime: t.utc }, fmtTime(t.ms)) : '—');

// The newest last word among a service's stale agents (null: none).
function lastHeard(svc) {
  let best = null;
  for (const a of svc.stale_agents) {
    if (a.last_seen && (best === null || a.last_seen.ms > best)) best = a.last_seen.ms;
  }
  return best;
}

// "2 of 3 agents see it failing", or why no agent has a say.
function agentsFailing(reg) {
  if (reg.agents > 0) return `${reg.unhealthy_agents} of ${plural(reg.agents, 'agent')} see it failing`;
  return reg.stale_agents > 0 ? `all ${plural(reg.stale_agents, 'agent')} stale` : 'no agent probes it';
}

// "traffic → us-east-1 (3 of 3 agents)": where the global name points.
function servingText(svc) {
  if (!svc.serving.length) {
    return svc.stale_agents.length
      ? [stateBadge('stale', 'not known'), ' (agents stale)']
      : [stateBadge('unknown', 'not known'), ' (no agent reports an answer)'];
  }
  const parts = svc.serving.map((name, i) => {
    const r = svc.regions.find((x) => x.name === name);
    return [i ? ' and ' : '', h('strong', {}, name),
      r ? ` (${r.serving_agents} of ${plural(r.agents, 'agent')})` : ''];
  });
  const split = svc.pattern === 'active-passive' && svc.serving.length > 1;
  return [split ? [stateBadge('split', 'split'), ' '] : null, parts];
}

function incidentItem(inc, svc) {
  const reg = svc && svc.regions.find((r) => r.name === inc.region);
  const t = inc.times;
  const since = t.detected || t.first_failure;
  return h('li', { class: 'ov-incident', 'data-incident': inc.id },
    h('p', {},
      stateBadge('unhealthy', inc.manual ? 'Open incident (manual failover)' : 'Open incident'),
      ' ', h('strong', {}, inc.service), ' ', inc.region, ' ',
      reg ? stateBadge(cellState(svc, reg)) : null,
      since ? [' since ', timeEl(since)] : null,
      reg ? ` (${agentsFailing(reg)})` : null),
    h('p', {},
      'traffic: ', h('code', {}, svc ? svc.global_name : inc.service), ' → ',
      svc ? servingText(svc) : '—',
      t.first_failure ? [' · first failure ', agoSpan(t.first_failure.ms)] : null),
    h('p', {}, h('a', { href: link(['incidents', String(inc.id)]), 'data-key': `inc-${inc.id}` },
      `Open incident #${inc.id}`, h('span', { 'aria-hidden': 'true' }, ' →'))));
}

function incidentsPart(d) {
  if (!d.incidents) return null;
  const list = d.incidents.incidents;
  if (!list.length) return h('p', { class: 'muted' }, 'No open incident.');
  const bySvc = new Map((d.status ? d.status.services : []).map((s) => [s.name, s]));
  return h('ul', { class: 'ov-incidents', 'aria-label': 'Open incidents' },
    list.map((inc) => incidentItem(inc, bySvc.get(inc.service))));
}

// "✖ 1 unhealthy  ◌ 8 stale  ✔ 3 healthy": every region by its state.
function verdictPart(d) {
  if (!d.status) return h('p', { class: 'muted' }, 'Loading…');
  const count = new Map();
  for (const s of d.status.services) {
    for (const r of s.regions) {
      const st = cellState(s, r);
      count.set(st, (count.get(st) || 0) + 1);
    }
  }
  if (!count.size) return h('p', { class: 'muted' }, 'No service in the collector\'s config.');
  return h('p', { class: 'verdict' },
    ORDER.filter((st) => count.get(st)).map((st) =>
      [stateBadge(st, `${count.get(st)} ${st}`), ' ']),
    h('span', { class: 'muted' }, `of ${plural([...count.values()].reduce((a, b) => a + b, 0), 'region')}`,
      ` of ${plural(d.status.services.length, 'service')}`));
}

function cellDetail(svc, reg, state) {
  const bits = [];
  if (reg.role) bits.push(reg.role);
  if (state === 'stale') {
    bits.push([`${plural(reg.stale_agents, 'agent')} stale, last heard `, agoSpan(lastHeard(svc))]);
  } else {
    bits.push(reg.unhealthy_agents > 0 || reg.agents === 0
      ? agentsFailing(reg) : plural(reg.agents, 'agent'));
    if (reg.stale_agents > 0) bits.push(`${reg.stale_agents} stale`);
  }
  if ((state === 'unhealthy' || state === 'degraded') && reg.since) {
    bits.push(['since ', timeEl(reg.since)]);
  }
  return bits.map((b, i) => [i ? ' · ' : '', b]);
}

function cell(svc, reg, d) {
  if (!reg) return h('td', { class: 'cell-none' }, h('span', { class: 'muted' }, 'not in this region'));
  const state = cellState(svc, reg);
  const key = `${svc.name}\u0000${reg.name}`;
  const w = d.windows.get(key);
  return h('td', {
    class: `cell cell-${state}`, 'data-label': reg.name,
    dataset: { service: svc.name, region: reg.name, state, serving: String(reg.serving) },
  },
  h('div', { class: 'cell-head' }, stateBadge(state),
    reg.serving ? h('span', { class: 'serving', title: 'the global name points here' },
      h('span', { 'aria-hidden': 'true' }, '◉'), ' serving') : null),
  h('div', { class: 'cell-meta muted' }, cellDetail(svc, reg, state)),
  h('div', { class: 'cell-lat' },
    h('a', {
      href: link(['latency'], { service: svc.name, region: reg.name }),
      'data-key': `lat-${svc.name}/${reg.name}`,
      title: w ? `24 h: p50 ${fmtLatency(usOf(w.p50_ms))}, p99 ${fmtLatency(usOf(w.p99_ms))}` : null,
    }, 'p95 ', fmtLatency(usOf(w && w.p95_ms))), ' ', sparkFor(d, key)),
  h('div', { class: 'muted' }, 'up ', fmtPct(w ? w.uptime : null), ' · 24 h'));
}

// One canvas per service and region, kept across redraws (moved into
// the new table, its drawing intact) and drawn when its data changes.
function sparkFor(d, key) {
  let c = d.canvases.get(key);
  if (!c) {
    c = h('canvas', { class: 'spark', role: 'img', width: 96, height: 24 });
    d.canvases.set(key, c);
  }
  const label = sparkLabel(d.spark.get(key), SPARK_HOURS);
  c.setAttribute('aria-label', label);
  c.title = label;
  return c;
}

function drawSparks(d) {
  const to = Date.now(), from = to - SPARK_HOURS * 3600e3;
  for (const [key, c] of d.canvases) {
    if (c.isConnected) sparkline(c, d.spark.get(key), from, to);
  }
}

function serviceRow(svc, regions, d) {
  const split = svc.pattern === 'active-passive' && svc.serving.length > 1;
  return h('tr', {},
    h('th', { scope: 'row', class: 'svc' },
      h('a', { href: link(['latency'], { service: svc.name }), 'data-key': `svc-${svc.name}` }, svc.name),
      h('div', { class: 'muted small' }, h('code', {}, svc.global_name)),
      svc.open_incident ? h('div', {}, h('a', {
        href: link(['incidents', String(svc.open_incident)]),
        'data-key': `svc-inc-${svc.name}`,
      }, `incident #${svc.open_incident}`)) : null,
      split ? h('div', {}, stateBadge('split', 'split')) : null,
      svc.unmapped_agents ? h('div', { class: 'muted small' },
        `${plural(svc.unmapped_agents, 'agent')} in no region of it`) : null),
    h('td', { 'data-label': 'pattern' }, svc.pattern),
    regions.map((name) => cell(svc, svc.regions.find((r) => r.name === name), d)));
}

function servicesPart(d) {
  if (!d.status) return null;
  const svcs = d.status.services;
  if (!svcs.length) return h('p', { class: 'muted' }, 'No services configured.');
  const regions = regionNames(svcs);
  return h('div', {
    class: 'table-wrap', 'data-key': 'services-wrap', role: 'region',
    'aria-label': 'Services by region', tabindex: 0,
  },
  h('table', { class: 'matrix stack' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'service'), h('th', { scope: 'col' }, 'pattern'),
      regions.map((r) => h('th', { scope: 'col' }, r)))),
    h('tbody', {}, svcs.map((s) => serviceRow(s, regions, d)))));
}

function probeText(last) {
  if (!last) return h('span', { class: 'muted' }, 'no probe yet');
  return [
    last.ok ? '✔ ok' : `✖ ${last.error || 'failed'}`,
    last.status ? ` · ${last.status}` : '',
    last.total_ms !== null ? ` · ${fmtLatency(usOf(last.total_ms))}` : '',
    ' · ', agoSpan(last.time.ms),
  ];
}

// A target's state: its health, but stale when every agent probing it
// is stale (status names stale agents per service).
function targetState(t, stale) {
  const live = t.agents.filter((a) => !stale.has(`${t.cluster}\u0000${a.node}`));
  if (t.agents.length && !live.length) return 'stale';
  return t.health;
}

function targetRow(t, stale) {
  const state = targetState(t, stale);
  return h('tr', { dataset: { cluster: t.cluster, target: t.target, state } },
    h('th', { scope: 'row' }, h('a', {
      href: link(['latency'], { target: t.target }),
      'data-key': `tgt-${t.cluster}-${t.target}`,
    }, t.target)),
    h('td', { 'data-label': 'health' }, stateBadge(state)),
    h('td', { 'data-label': 'since' }, timeEl(t.since)),
    h('td', { 'data-label': 'last probe' }, probeText(t.last)),
    h('td', { 'data-label': 'agents' }, t.agents.map((a, i) => [i ? ', ' : '', a.node, ' ',
      stateBadge(stale.has(`${t.cluster}\u0000${a.node}`) ? 'stale' : a.health)])));
}

function targetsPart(d) {
  if (!d.status) return null;
  const targets = d.status.targets;
  if (!targets.length) return h('p', { class: 'muted' }, 'No agent has reported a target state yet.');
  const stale = new Set();
  for (const s of d.status.services) {
    for (const a of s.stale_agents) stale.add(`${a.cluster}\u0000${a.node}`);
  }
  const clusters = [...new Set(targets.map((t) => t.cluster))];
  return h('div', {
    class: 'table-wrap', 'data-key': 'targets-wrap', role: 'region',
    'aria-label': 'Targets by cluster', tabindex: 0,
  },
  h('table', { class: 'targets stack' },
    h('thead', {}, h('tr', {}, ['target', 'health', 'since', 'last probe', 'agents']
      .map((c) => h('th', { scope: 'col' }, c)))),
    clusters.map((c) => {
      const rows = targets.filter((t) => t.cluster === c);
      const regions = [...new Set(rows.flatMap((t) => t.agents.map((a) => a.region)))];
      return h('tbody', {},
        h('tr', { class: 'group' }, h('th', { scope: 'colgroup', colspan: 5 },
          `cluster ${c}`, regions.length ? h('span', { class: 'muted' }, ` · ${regions.join(', ')}`) : null)),
        rows.map((t) => targetRow(t, stale)));
    })));
}

function errorsPart(d) {
  if (!d.errors.size) return null;
  return [...d.errors].map(([what, msg]) => h('p', { class: 'error' },
    `Could not load ${what}: ${msg}`, d.asOf ? ' (showing what came before)' : ''));
}

export default {
  title: 'Overview',
  render(main) {
    const d = {
      status: null, incidents: null, asOf: null,
      windows: new Map(), spark: new Map(), canvases: new Map(), errors: new Map(),
    };
    const part = () => h('div');
    const el = {
      verdict: part(), errors: h('div', { role: 'status' }),
      incidents: h('section', { 'aria-label': 'Open incidents' }),
      services: part(), targets: part(),
    };
    const summary = headerSummary();
    main.append(h('h1', {}, 'Overview'), el.verdict, el.errors, el.incidents,
      h('h2', {}, 'Services by region'), el.services,
      h('p', { class: 'muted small legend' },
        'Health by quorum of the agents that are not stale. ◉ serving: the global name points there. ' +
        `p95 and uptime over 24 h; the line: p50 (thin) and p95 per minute over the last ${SPARK_HOURS} h, ` +
        'a red tick under a minute with failed probes.'),
      h('h2', {}, 'Targets by cluster'), el.targets);

    const draw = () => {
      refresh(el.verdict, verdictPart(d));
      refresh(el.errors, errorsPart(d));
      refresh(el.incidents, incidentsPart(d));
      refresh(el.services, servicesPart(d));
      refresh(el.targets, targetsPart(d));
      drawSparks(d);
    };
    const ok = (what, fn) => (j) => { d.errors.delete(what); fn(j); draw(); };
    const bad = (what) => (e) => { d.errors.set(what, e.message); draw(); };

    const ctl = new AbortController();
    let sparkTimer = null;
    const loadSparks = async () => {
      const from = Date.now() - SPARK_HOURS * 3600e3;
      for (const s of d.status ? d.status.services : []) {
        for (const r of s.regions) {
          const q = new URLSearchParams({
            service: s.name, region: r.name, from: String(Math.floor(from / 60000) * 60000), step: 'minute',
          });
          try {
            d.spark.set(`${s.name}\u0000${r.name}`, await get(`latency?${q}`, { signal: ctl.signal }));
            d.errors.delete('latency');
          } catch (e) {
            if (e.name === 'AbortError') return;
            d.errors.set('latency', e.message);
          }
        }
      }
      draw();
      sparkTimer = setTimeout(loadSparks, 60000);
    };

    const stops = [
      poll('status', 5000, ok('status', (j) => {
        const first = !d.status;
        d.status = j;
        d.asOf = Date.now();
        if (first) loadSparks();
      }), bad('status')),
      poll('incidents?open=true', 5000, ok('open incidents', (j) => { d.incidents = j; }),
        bad('open incidents')),
      poll('clusters', 5000, ok('clusters', (j) => summary.set(j)), bad('clusters')),
      poll('services', 30000, ok('services', (j) => {
        d.windows.clear();
        for (const s of j.services) {
          for (const r of s.regions) {
            if (r.windows) d.windows.set(`${s.name}\u0000${r.name}`, r.windows['24h']);
          }
        }
      }), bad('services')),
      onClockChange(draw),
    ];
    const dark = matchMedia('(prefers-color-scheme: dark)');
    const onTheme = () => drawSparks(d);
    dark.addEventListener('change', onTheme);
    const tick = setInterval(() => tickAgo(main), 1000);
    draw();

    return () => {
      for (const s of stops) s();
      ctl.abort();
      clearTimeout(sparkTimer);
      clearInterval(tick);
      dark.removeEventListener('change', onTheme);
      summary.stop();
    };
  },
};
