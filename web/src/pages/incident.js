// pages/incident.js -- #/incidents/ID: one incident as a postmortem
// needs it: its moments (absolute, and since the first failure), time to
// detect, to fail over, RTO and RPO; lanes per cluster on one time axis
// above its cross-cluster timeline; annotations (add one with a token of
// scope "annotate"); the exports to download. Refreshed every 5 s while
// shown, so an open incident fills in by itself.
import { h, replace, stateBadge } from '../lib/dom.js';
import { fmtTime, fmtDur, onClockChange, parseTime } from '../lib/fmt.js';
import { ApiError, getText, poll, post } from '../lib/api.js';
import { describe, eventState, SIGNAL_KINDS } from '../lib/events.js';

const SVG = 'http://www.w3.org/2000/svg';

// [data-field, label, key in times]
const MOMENTS = [
  ['first_failure', 'First failure', 'first_failure'],
  ['detected', 'Detected (quorum)', 'detected'],
  ['failover_start', 'Failover started', 'failover_start'],
  ['dns_first', 'DNS switched, first agent', 'dns_switched_first'],
  ['dns_all', 'DNS switched, all agents', 'dns_switched_all'],
  ['restored', 'Healthy through the global name', 'restored'],
  ['closed', 'Closed', 'closed'],
];

function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const k of kids) el.append(k);
  return el;
}

function valueCell(field, ms, text) {
  const attrs = { class: 'mono', dataset: { field } };
  if (ms !== null && ms !== undefined) attrs.dataset.ms = String(ms);
  return h('td', attrs, text);
}

function summary(inc) {
  const t = inc.times, d = inc.durations_ms;
  const t0 = t.first_failure ? t.first_failure.ms : null;
  const rows = MOMENTS.map(([field, label, key]) => {
    const ms = t[key] ? t[key].ms : null;
    return h('tr', {}, h('th', { scope: 'row' }, label),
      valueCell(field, ms, fmtTime(ms, { date: true })),
      h('td', { class: 'muted' }, ms !== null && t0 !== null ? `+${fmtDur(ms - t0)}` : ''));
  });
  const durs = [
    ['time_to_detect', 'Time to detect', d.time_to_detect],
    ['time_to_failover', 'Time to fail over', d.time_to_failover],
    ['rto', 'RTO', d.rto],
    ['rpo', 'RPO (replication lag)', inc.rpo_ms],
  ];
  if (d.outage !== null) durs.push(['outage', 'Outage', d.outage]);
  return h('div', { class: 'incident-summary' },
    h('table', { class: 'moments' }, h('caption', {}, 'Moments'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Moment'),
        h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Since first failure'))),
      h('tbody', {}, rows)),
    h('dl', { class: 'durations' }, durs.map(([field, label, ms]) => [
      h('dt', {}, label),
      h('dd', Object.assign({ class: 'mono', dataset: { field } },
        ms !== null && ms !== undefined ? { dataset: { field, ms: String(ms) } } : {}),
      ms === null || ms === undefined ? '—' : (field === 'rpo' ? '≈ ' : '') + fmtDur(ms)),
    ])));
}

// Events and annotations in corrected-time order, as table rows.
function entries(inc) {
  const list = inc.timeline.map((ev) => ({ ms: ev.corrected_ms, ev }));
  for (const a of inc.annotations) {
    list.push({ ms: a.time.ms, ev: {
      kind: 'annotation', cluster: '', node: '', target: null, time_ms: a.time.ms,
      corrected_ms: a.time.ms, fields: { text: a.text },
    } });
  }
  list.sort((x, y) => x.ms - y.ms);
  return list;
}

function lanes(inc, list, marks) {
  const clusters = [...new Set(list.map((x) => x.ev.cluster).filter(Boolean))].sort();
  const lane = 26, left = 110, width = 900, right = 10;
  const height = lane * (clusters.length + 1) + 60;
  // The axis spans the incident's moments (and the events after its
  // first failure), with a margin: the healthy states from long before
  // would squeeze it into a corner.
  const t = inc.times;
  const ms = Object.values(t).filter(Boolean).map((v) => v.ms);
  const t0 = ms.length ? Math.min(...ms) : Math.min(...list.map((x) => x.ms));
  for (const e of list) if (e.ms >= t0) ms.push(e.ms);
  let lo = Math.min(t0, ...ms), hi = Math.max(t0, ...ms);
  if (!Number.isFinite(lo)) return h('p', { class: 'muted' }, 'No events.');
  const pad = Math.max(500, (hi - lo) * 0.05);
  lo -= pad;
  hi += pad;
  const x = (v) => left + (v - lo) / (hi - lo) * (width - left - right);
  const g = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'lanes', role: 'img',
    'aria-label': 'Events per cluster on one time axis; the table below lists them' });
  clusters.forEach((c, i) => {
    g.append(svg('text', { x: 4, y: lane * i + 17, class: 'lane-label' }, c));
    g.append(svg('line', { x1: left, x2: width - right, y1: lane * i + 13, y2: lane * i + 13,
      class: 'lane-line' }));
  });
  const ann = clusters.length;
  g.append(svg('text', { x: 4, y: lane * ann + 17, class: 'lane-label' }, 'notes'));
  let nth = 0;
  for (const [field, label, key] of MOMENTS) {
    if (!t[key]) continue;
    const vx = x(t[key].ms);
    g.append(svg('line', { x1: vx, x2: vx, y1: 0, y2: lane * (ann + 1), class: `moment moment-${field}` },
      svg('title', {}, `${label} ${fmtTime(t[key].ms)}`)));
    // Labels staggered over three rows below the lanes: moments are
    // often a few hundred ms apart.
    g.append(svg('text', { x: vx, y: lane * (ann + 1) + 12 + 12 * (nth++ % 3),
      class: 'moment-label', 'text-anchor': 'middle' }, label.split(/[ ,(]/)[0].toLowerCase()));
  }
  let before = 0;
  list.forEach((e, i) => {
    if (e.ms < lo) { before++; return; }
    const row = e.ev.kind === 'annotation' ? ann : clusters.indexOf(e.ev.cluster);
    const big = SIGNAL_KINDS.has(e.ev.kind);
    const m = svg('circle', { cx: x(e.ms), cy: lane * row + 13, r: big ? 6 : 3,
      class: `mark mark-${eventState(e.ev)}${big ? ' mark-signal' : ''}` },
    svg('title', {}, `${fmtTime(e.ms)} ${e.ev.kind} ${describe(e.ev)}`));
    marks[i] = m;
    g.append(m);
  });
  if (before) {
    g.append(svg('text', { x: 4, y: height - 4, class: 'axis' }, `${before} earlier ←`));
  }
  g.append(svg('text', { x: left, y: height - 4, class: 'axis' }, fmtTime(lo)));
  g.append(svg('text', { x: width - right, y: height - 4, class: 'axis', 'text-anchor': 'end' }, fmtTime(hi)));
  return g;
}

function table(inc, list, marks, onPick) {
  const detected = inc.times.detected ? inc.times.detected.ms : null;
  let flagged = false;
  const rows = list.map((e, i) => {
    const ev = e.ev;
    const isDetect = !flagged && detected !== null && ev.kind === 'state' && e.ms === detected;
    if (isDetect) flagged = true;
    const hl = (on) => marks[i] && marks[i].classList.toggle('hl', on);
    return h('tr', {
      dataset: { kind: ev.kind }, tabindex: 0,
      class: `${SIGNAL_KINDS.has(ev.kind) ? 'signal' : ''}${isDetect ? ' detect' : ''}`,
      onmouseenter: () => hl(true), onmouseleave: () => hl(false),
      onfocus: () => hl(true), onblur: () => hl(false),
    },
    h('td', { class: 'mono' }, h('time', {}, fmtTime(ev.time_ms))),
    h('td', { class: 'mono' }, h('time', {}, fmtTime(e.ms))),
    h('td', {}, ev.cluster), h('td', {}, ev.node),
    h('td', {}, stateBadge(eventState(ev), ev.kind)),
    h('td', {}, ev.target || ''),
    h('td', {}, ev.kind === 'annotation' ? ev.fields.text : describe(ev),
      isDetect ? h('strong', {}, ' ← detected') : null),
    h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => onPick(e.ms),
      'aria-label': `Annotate at ${fmtTime(e.ms)}` }, 'note here')));
  });
  return h('div', { class: 'table-wrap' }, h('table', { class: 'events' },
    h('caption', {}, 'Cross-cluster timeline (state and DNS changes, failovers, annotations, first and last failed probe per agent), in corrected time'),
    h('thead', {}, h('tr', {}, ['Agent time', 'Corrected', 'Cluster', 'Node', 'Kind', 'Target',
      'What', ''].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows)));
}

async function download(id, service, fmt, status) {
  try {
    const text = await getText(`incidents/${id}/export?format=${fmt}`);
    const type = { md: 'text/markdown', csv: 'text/csv', json: 'application/json' }[fmt];
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = h('a', { href: url, download: `incident-${id}-${service}.${fmt}` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    status.textContent = `Downloaded incident-${id}-${service}.${fmt}.`;
  } catch (e) {
    status.textContent = `Download failed: ${e.message}`;
  }
}

function annotateForm(id, getInc, refresh) {
  const text = h('textarea', { id: 'a-text', rows: 2, cols: 50, maxlength: 4096, required: true });
  const when = h('input', { id: 'a-time', size: 26, placeholder: 'now', value: '' });
  const status = h('p', { class: 'muted', role: 'status' });
  const form = h('form', { class: 'annotate' },
    h('h2', {}, 'Add an annotation'),
    h('label', { for: 'a-text' }, 'Text'), text,
    h('label', { for: 'a-time' }, 'Time (empty: now; or RFC 3339, now-5m, Unix ms)'), when,
    h('button', { type: 'submit' }, 'Add annotation'), status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = when.value.trim() ? parseTime(when.value) : Date.now();
    when.setCustomValidity(Number.isNaN(t) ? 'a time such as 2026-12-04T14:39:57Z or now-5m' : '');
    if (!form.reportValidity()) return;
    const inc = getInc();
    try {
      await post('annotations', { text: text.value, time: Math.round(t), incident: id,
        service: inc ? inc.service : undefined });
      text.value = '';
      status.textContent = 'Annotation added.';
      refresh();
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
        replace(status, 'This token may not add annotations (it needs scope "annotate"). ',
          h('button', { type: 'button', onclick: () => window.dispatchEvent(new CustomEvent('sextant-auth')) },
            'Sign in with another token'));
      } else {
        status.textContent = `Could not add the annotation: ${e.message}`;
      }
    }
  });
  return { form, pick: (ms) => { when.value = new Date(ms).toISOString(); text.focus(); } };
}

export default {
  title: 'Incident',
  render(main, route) {
    const id = Number(route.path[1]);
    if (!Number.isInteger(id) || id < 1) {
      main.append(h('h1', {}, 'Incident'), h('p', { class: 'error' }, 'Not an incident number.'));
      return null;
    }
    const heading = h('h1', {}, `Incident #${id}`);
    const sub = h('p', { class: 'incident-sub' }, 'Loading…');
    const dl = h('p', { class: 'muted', role: 'status' });
    const buttons = h('div', { class: 'toolbar' }, 'Export:',
      ['md', 'csv', 'json'].map((f) => h('button', { type: 'button',
        onclick: () => download(id, inc ? inc.service : 'incident', f, dl) },
      { md: 'Markdown', csv: 'CSV', json: 'JSON' }[f])), dl);
    const body = h('div');
    let inc = null, stopPoll = null;
    const ann = annotateForm(id, () => inc, () => { if (stopPoll) stopPoll(); start(); });

    const draw = () => {
      if (!inc) return;
      document.title = `Incident #${id} ${inc.service} · Sextant`;
      heading.textContent = `Incident #${id}: ${inc.service}, ${inc.region}` +
        (inc.to_region ? ` → ${inc.to_region}` : '');
      replace(sub, inc.open ? stateBadge('unhealthy', 'open') : stateBadge('healthy', 'closed'),
        ` ${inc.pattern}`, inc.manual ? ' · manual failover' : '',
        inc.times.closed ? ` · closed ${fmtTime(inc.times.closed.ms, { date: true })}` : '');
      const list = entries(inc), marks = [];
      replace(body, summary(inc), h('h2', {}, 'Timeline'), lanes(inc, list, marks),
        table(inc, list, marks, ann.pick));
    };
    const start = () => {
      stopPoll = poll(`incidents/${id}`, 5000, (j) => { inc = j; draw(); }, (e) => {
        replace(sub, h('span', { class: 'error' }, e.status === 404
          ? `There is no incident #${id}.` : `Could not load the incident: ${e.message}`));
      });
    };
    main.append(heading, sub, buttons, body, ann.form);
    start();
    const offClock = onClockChange(draw);
    return () => { if (stopPoll) stopPoll(); offClock(); };
  },
};
