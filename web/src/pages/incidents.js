// pages/incidents.js -- #/incidents: every incident, newest first, with
// its region, where traffic went, when it opened, whether it is still
// open, time to detect and RTO; filters (service, open or closed, opened
// from/to) live in the URL. Refreshed every 10 s while shown.
import { h, replace, stateBadge } from '../lib/dom.js';
import { link, setParams } from '../lib/url.js';
import { fmtTime, fmtDur, onClockChange, parseTime } from '../lib/fmt.js';
import { poll } from '../lib/api.js';

function query(params) {
  const q = new URLSearchParams();
  for (const k of ['service', 'open']) if (params.get(k)) q.set(k, params.get(k));
  for (const k of ['from', 'to']) {
    const t = parseTime(params.get(k));
    if (params.get(k) && !Number.isNaN(t)) q.set(k, String(t));
  }
  q.set('limit', '500');
  return `incidents?${q}`;
}

function row(inc) {
  const t = inc.times;
  return h('tr', { dataset: { incident: String(inc.id) } },
    h('td', {}, h('a', { href: link(['incidents', String(inc.id)]) }, `#${inc.id}`)),
    h('td', {}, inc.service),
    h('td', {}, inc.region, inc.to_region ? ` → ${inc.to_region}` : ''),
    h('td', {}, inc.open ? stateBadge('unhealthy', 'open') : stateBadge('healthy', 'closed'),
      inc.manual ? h('span', { class: 'muted' }, ' manual') : null),
    h('td', {}, h('time', {}, fmtTime(t.first_failure ? t.first_failure.ms
      : t.detected ? t.detected.ms : null, { date: true }))),
    h('td', {}, fmtDur(inc.durations_ms.time_to_detect)),
    h('td', {}, fmtDur(inc.durations_ms.rto)),
    h('td', {}, inc.rpo_ms === null ? '—' : `≈ ${fmtDur(inc.rpo_ms)}`));
}

export default {
  title: 'Incidents',
  render(main, route) {
    const p = route.params;
    const service = h('input', { id: 'f-service', value: p.get('service') || '', size: 14 });
    const open = h('select', { id: 'f-open' },
      h('option', { value: '' }, 'open and closed'),
      h('option', { value: 'true', selected: p.get('open') === 'true' }, 'open only'),
      h('option', { value: 'false', selected: p.get('open') === 'false' }, 'closed only'));
    const from = h('input', { id: 'f-from', value: p.get('from') || '', size: 22,
      placeholder: 'now-7d or 2026-12-01T00:00Z' });
    const to = h('input', { id: 'f-to', value: p.get('to') || '', size: 22, placeholder: 'now' });
    const status = h('p', { class: 'muted', 'aria-live': 'polite' }, 'Loading…');
    const body = h('tbody');
    let last = null, stopPoll = null;

    const draw = () => {
      if (!last) return;
      replace(body, last.incidents.map(row));
      status.textContent = last.count === 0 ? 'No incident matches.'
        : `${last.count} incident${last.count === 1 ? '' : 's'}` +
          (last.truncated ? ' (the newest 500; narrow the range for older ones)' : '');
    };
    const start = () => {
      if (stopPoll) stopPoll();
      stopPoll = poll(() => query(route.params), 10000, (j) => { last = j; draw(); },
        (e) => { status.textContent = `Could not load incidents: ${e.message}`; });
    };
    const apply = (ev) => {
      ev.preventDefault();
      for (const [k, el] of [['from', from], ['to', to]]) {
        el.setCustomValidity(el.value && Number.isNaN(parseTime(el.value))
          ? 'a time such as 2026-12-04T14:39Z, now-6h or Unix ms' : '');
      }
      if (!form.reportValidity()) return;
      setParams({ service: service.value.trim(), open: open.value, from: from.value.trim(),
        to: to.value.trim() });
      route.params = new URLSearchParams(location.hash.split('?')[1] || '');
      start();
    };
    const form = h('form', { class: 'toolbar', onsubmit: apply },
      h('label', { for: 'f-service' }, 'Service'), service,
      h('label', { for: 'f-open' }, 'State'), open,
      h('label', { for: 'f-from' }, 'Opened from'), from,
      h('label', { for: 'f-to' }, 'to'), to,
      h('button', { type: 'submit' }, 'Apply'));

    main.append(h('h1', {}, 'Incidents'), form, status,
      h('div', { class: 'table-wrap' }, h('table', {},
        h('caption', { class: 'muted' }, 'Times in the clock chosen above; RTO is first failure to healthy through the global name.'),
        h('thead', {}, h('tr', {}, ['Incident', 'Service', 'Region', 'State',
          'First failure', 'Time to detect', 'RTO', 'RPO'].map((c) => h('th', { scope: 'col' }, c)))),
        body)));
    start();
    const offClock = onClockChange(draw);
    return () => { if (stopPoll) stopPoll(); offClock(); };
  },
};
