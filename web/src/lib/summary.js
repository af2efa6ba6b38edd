// summary.js -- the header's one line, "3 clusters · 4 agents ·
// collector ready", kept by the pages that read GET /api/v1/clusters
// (overview, agents). Readiness comes from app.js (<body
// data-collector>, event "sextant-ready"), which polls /readyz.

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

// Starts showing the summary; returns { set(clusters), stop() }: set()
// takes a GET /api/v1/clusters reply, stop() clears the line.
export function headerSummary() {
  const el = document.getElementById('summary');
  let clusters = null;
  const show = () => {
    if (!el) return;
    const ready = document.body.dataset.collector || 'checking';
    if (!clusters) {
      el.textContent = `collector ${ready}`;
      return;
    }
    let agents = 0;
    for (const c of clusters.clusters) for (const r of c.regions) agents += r.agents.length;
    el.textContent = `${plural(clusters.clusters.length, 'cluster')} · ` +
      `${plural(agents, 'agent')} · collector ${ready}`;
  };
  window.addEventListener('sextant-ready', show);
  show();
  return {
    set(j) { clusters = j; show(); },
    stop() {
      window.removeEventListener('sextant-ready', show);
      if (el) el.textContent = '';
    },
  };
}
