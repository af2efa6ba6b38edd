// events.js -- what a stored event says, in a few words, the same words
// as the collector's exports (collector/export.c ex_what), for the
// timeline and incident pages; and which kinds stand out from probe
// noise.

function answers(a) {
  if (!Array.isArray(a)) return '-';
  if (a.length === 0) return '(none)';
  return a.map((x) => (typeof x === 'string' ? x : x && x.value)).join(',');
}

const colon = (s) => (s ? `: ${s}` : '');

// One line for event @ev (an Event of docs/openapi.yaml, maybe with the
// incident timeline's "note").
export function describe(ev) {
  const f = ev.fields || {};
  const note = ev.note ? `${ev.note}; ` : '';
  switch (ev.kind) {
    case 'probe': {
      let s = f.ok ? 'ok' : 'failed';
      if (f.status) s += `, status ${f.status}`;
      if (f.total_us) s += `, ${(f.total_us / 1000).toFixed(3)} ms`;
      if (f.served_by) s += `, served by ${f.served_by}`;
      return note + s + colon(f.error);
    }
    case 'state':
      return `${note}${f.from} -> ${f.to}${colon(f.reason)}`;
    case 'dns':
      return `${note}${f.name}: ${answers(f.old)} -> ${answers(f.new)}`;
    case 'failover':
    case 'marker': {
      const move = f.from || f.to ? ` ${f.from || ''} -> ${f.to || ''}` : '';
      return `${note}${f.kind || ev.kind}${move}${colon(f.text)}`;
    }
    case 'metric':
      return `${note}${f.name} = ${f.value}`;
    case 'annotation':
      return note + (f.text || '');
    default:
      return note + (ev.fields ? JSON.stringify(ev.fields) : '');
  }
}

// Kinds that matter during an incident, drawn prominently; probes are
// the noise (a failed probe is drawn red but small).
export const SIGNAL_KINDS = new Set(['state', 'dns', 'failover', 'marker',
  'annotation', 'gap', 'drop', 'lifecycle']);

// A state word for colouring an event: 'unhealthy' for a failed probe or
// a change to unhealthy, 'healthy' for the way back, 'degraded' for
// failovers, DNS changes, gaps and drops, 'unknown' otherwise.
export function eventState(ev) {
  const f = ev.fields || {};
  if (ev.kind === 'probe') return f.ok ? 'healthy' : 'unhealthy';
  if (ev.kind === 'state') return f.to === 'unhealthy' ? 'unhealthy'
    : f.to === 'healthy' ? 'healthy' : 'unknown';
  if (['failover', 'dns', 'gap', 'drop'].includes(ev.kind)) return 'degraded';
  return 'unknown';
}
