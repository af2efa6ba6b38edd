// url.js -- the view's state lives in the URL's hash ("#/page?k=v&..."),
// so every view is a link that shows the same thing when pasted later.

// { page: 'timeline', path: ['timeline'], params: URLSearchParams }
export function current() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = (q < 0 ? raw : raw.slice(0, q)).split('/').filter(Boolean)
    .map(decodeURIComponent);
  const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  return { page: path[0] || 'overview', path, params };
}

// The hash for @path (array of segments) and @params (object or
// URLSearchParams; empty values dropped).
export function link(path, params) {
  const p = new URLSearchParams();
  for (const [k, v] of params instanceof URLSearchParams ? params.entries()
    : Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== '') p.set(k, v);
  }
  const s = p.toString();
  return '#/' + path.map(encodeURIComponent).join('/') + (s ? '?' + s : '');
}

// Sets parameters of the current view (null removes one) without a new
// history entry and without re-rendering the page: the page calls this
// after it applied a filter itself.
export function setParams(changes) {
  const { path, params } = current();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') params.delete(k);
    else params.set(k, v);
  }
  history.replaceState(null, '', link(path, params));
}
