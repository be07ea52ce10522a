// Named bookmarks of the view, stored on the server (/runs/{run}/bookmarks): a bookmark is the
// view's URL state (embedding, projection, step, colour, selection, filters, camera), so
// opening one is opening that URL. The run page lists them too.
import { api } from './api.js';
import { h, clear } from './dom.js';
import { viewHref } from './urlstate.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$/; // the server checks the same rule

/** The /view URL of a stored bookmark (its state is the view's query string). */
export function bookmarkHref(bookmark) {
  const q = new URLSearchParams(bookmark.state);
  q.set('bm', bookmark.name);
  return viewHref(q);
}

export class Bookmarks {
  constructor(view) {
    this.view = view;
    this.items = [];
  }

  section() {
    const view = this.view, el = view.el;
    el.bmName = h('input', { type: 'text', id: 'bookmark-name', maxlength: '64', placeholder: 'name this view…',
      onkeydown: (ev) => { if (ev.key === 'Enter') this.save(); } });
    el.bmSave = h('button', { type: 'button', id: 'bookmark-save', text: 'Save', onclick: () => this.save() });
    el.bmMsg = h('div', { class: 'muted', id: 'bookmark-message', role: 'status' });
    el.bmList = h('ul', { class: 'bookmarks', id: 'bookmark-list' });
    this.load();
    return h('section', { class: 'ctl', id: 'sec-bookmarks' }, h('h3', { text: 'Bookmarks' }),
      h('div', { class: 'row nowrap' }, el.bmName, el.bmSave), el.bmMsg, el.bmList);
  }

  async load() {
    try {
      this.items = await api.bookmarks(this.view.runId);
    } catch (err) {
      this.message(`Bookmarks not loaded: ${err.message}`, true);
      return;
    }
    this.render();
  }

  render() {
    const view = this.view, list = clear(view.el.bmList);
    if (!this.items.length) { list.append(h('li', { class: 'muted', text: 'None yet for this run.' })); return; }
    for (const b of this.items) {
      list.append(h('li', {},
        h('a', { href: bookmarkHref(b), class: 'bookmark-link', title: `open "${b.name}"`, text: b.name,
          onclick: (ev) => { if (ev.button === 0 && !ev.ctrlKey && !ev.metaKey) { ev.preventDefault(); view.openBookmark(b); } } }),
        h('button', { type: 'button', class: 'row-link delete', title: `delete "${b.name}"`, 'aria-label': `delete ${b.name}`, text: '×',
          onclick: () => this.remove(b.name) })));
    }
  }

  message(text, isError = false) {
    const m = this.view.el.bmMsg;
    m.textContent = text;
    m.classList.toggle('error', !!isError);
  }

  /** The view's state as the bookmark stores it: its URL parameters (debug and bm left out). */
  state() {
    const q = new URL(this.view.url.href(), location.origin).searchParams;
    q.delete('debug');
    q.delete('bm');
    return Object.fromEntries(q.entries());
  }

  async save() {
    const el = this.view.el;
    const name = el.bmName.value.trim();
    if (!NAME_RE.test(name)) {
      this.message('A name is 1-64 letters, digits, spaces, _ . or -, starting with a letter or digit.', true);
      return;
    }
    try {
      await api.putBookmark(this.view.runId, name, this.state());
    } catch (err) {
      this.message(`Not saved: ${err.message}`, true);
      return;
    }
    el.bmName.value = '';
    this.message(`Saved "${name}".`);
    await this.load();
  }

  async remove(name) {
    try {
      await api.deleteBookmark(this.view.runId, name);
    } catch (err) {
      this.message(`Not deleted: ${err.message}`, true);
      return;
    }
    this.message(`Deleted "${name}".`);
    await this.load();
  }
}
