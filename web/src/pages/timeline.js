// pages/timeline.js -- placeholder until the page is built (issue 13).
import { h } from '../lib/dom.js';

export default {
  title: 'Timeline',
  render(main) {
    main.append(h('h1', {}, 'Timeline'), h('p', { class: 'muted' }, 'Not built yet.'));
    return null;
  },
};
