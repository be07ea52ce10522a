// The single-page app: client-side routes for projects, runs, a run and the embedding view.
//   /                      projects
//   /projects/{project}    its runs
//   /runs/{run_id}         metric curves and embeddings
//   /view?run=..&emb=..    the embedding view (state in the query string, see view.js)
//   /view?a=..&b=..&title=..  two runs side by side, coloured by agreement, linked by sample (compare.js)
import { api, enc } from './api.js';
import { h, clear, fmtTime, fmtValue } from './dom.js';
import { lineChart } from './charts.js';
import { EmbeddingView } from './view.js';
import { Comparison } from './compare.js';
import { bookmarkHref } from './bookmarks.js';
import { methodLabel, stepName } from './panel.js';

const main = document.getElementById('main');
const crumbs = document.getElementById('crumbs');
let current = null; // the live page object (the view must be disposed on navigation)

export function navigate(url, replace = false) {
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  route();
}

// Internal links navigate without a page load.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest && ev.target.closest('a[data-internal]');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  ev.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', () => route());

function link(href, text, cls) { return h('a', { href, 'data-internal': '', class: cls, text }); }

function setCrumbs(...parts) {
  clear(crumbs);
  parts.forEach((p, i) => {
    if (i) crumbs.append(h('span', { class: 'sep', text: '›' }));
    p.title = p.textContent; // the bar may cut a long name: the whole of it as a tooltip
    crumbs.append(p);
  });
}

function showError(err) {
  clear(main).append(h('div', { class: 'error', role: 'alert', text: String(err && err.message ? err.message : err) }));
}

async function route() {
  if (current && current.dispose) current.dispose();
  current = null;
  const path = location.pathname;
  document.body.classList.toggle('view-page', path.startsWith('/view'));
  try {
    let m;
    if (path === '/' || path === '') await projectsPage();
    else if ((m = path.match(/^\/projects\/([^/]+)\/?$/))) await runsPage(decodeURIComponent(m[1]));
    else if ((m = path.match(/^\/runs\/([^/]+)\/?$/))) await runPage(decodeURIComponent(m[1]));
    else if (path.startsWith('/view')) await viewPage();
    else { setCrumbs(link('/', 'Projects')); clear(main).append(h('p', { class: 'error', text: `No page at ${path}` })); }
  } catch (err) {
    showError(err);
  }
}

async function projectsPage() {
  setCrumbs(h('span', { text: 'Projects' }));
  document.title = 'Projects · tracker';
  const projects = await api.projects();
  clear(main).append(h('h1', { text: 'Projects' }));
  if (!projects.length) { main.append(h('p', { class: 'muted', text: 'No runs yet. Log one with tracker_sdk.Experiment.' })); return; }
  main.append(h('table', { class: 'list', id: 'projects' },
    h('thead', {}, h('tr', {}, h('th', { text: 'Project' }), h('th', { text: 'Runs' }), h('th', { text: 'Last created' }))),
    h('tbody', {}, projects.map((p) => h('tr', {},
      h('td', {}, link(`/projects/${enc(p.name)}`, p.name)),
      h('td', { class: 'num', text: p.n_runs }),
      h('td', { text: fmtTime(p.last_created) }))))));
}

function paramsText(params) {
  const entries = Object.entries(params || {});
  const text = entries.slice(0, 6).map(([k, v]) => `${k}=${fmtValue(v)}`).join(', ');
  return entries.length > 6 ? `${text}, … (${entries.length})` : text;
}

async function runsPage(project) {
  setCrumbs(link('/', 'Projects'), h('span', { text: project }));
  document.title = `${project} · tracker`;
  const runs = await api.runs(project);
  runs.sort((a, b) => (b.created || 0) - (a.created || 0));
  clear(main).append(h('h1', { text: project }));
  main.append(h('table', { class: 'list', id: 'runs' },
    h('thead', {}, h('tr', {}, ['Run', 'Created', 'Status', 'Parameters', 'Embeddings'].map((t) => h('th', { text: t })))),
    h('tbody', {}, runs.map((r) => h('tr', {},
      h('td', {}, link(`/runs/${enc(r.run_id)}`, r.name || r.run_id.slice(0, 12)), h('div', { class: 'muted mono', text: r.run_id })),
      h('td', { text: fmtTime(r.created) }),
      h('td', {}, h('span', { class: `status status-${String(r.status).replace(/[^a-z]/g, '')}`, text: r.status })),
      h('td', { class: 'params', text: paramsText(r.parameters) }),
      h('td', { class: 'num', text: r.n_embeddings }))))));
}

export function viewUrl(runId, embeddingId, extra = {}) {
  const q = new URLSearchParams({ run: runId, emb: embeddingId, ...extra });
  return `/view?${q}`;
}

async function runPage(runId) {
  const bookmarksP = api.bookmarks(runId).catch((err) => err);
  const [run, metrics, embeddings] = await Promise.all([api.run(runId), api.metrics(runId), api.embeddings(runId)]);
  setCrumbs(link('/', 'Projects'), link(`/projects/${enc(run.project)}`, run.project), h('span', { text: run.name || run.run_id }));
  document.title = `${run.name || run.run_id} · tracker`;
  clear(main).append(
    h('h1', { text: run.name || run.run_id }),
    h('p', { class: 'muted' }, h('span', { class: 'mono', text: run.run_id }), ` · created ${fmtTime(run.created)} · `,
      h('span', { class: `status status-${String(run.status).replace(/[^a-z]/g, '')}`, text: run.status })));
  const params = Object.entries(run.parameters || {});
  const others = Object.entries(run.others || {});
  if (params.length || others.length) {
    main.append(h('section', { class: 'kv-section' },
      params.length ? h('div', {}, h('h2', { text: 'Parameters' }), kvTable(params)) : null,
      others.length ? h('div', {}, h('h2', { text: 'Other' }), kvTable(others)) : null));
  }
  const names = Object.keys(metrics).sort();
  main.append(h('h2', { text: 'Metrics' }));
  main.append(names.length ? h('div', { class: 'charts', id: 'charts' }, names.map((n) => lineChart(n, metrics[n])))
    : h('p', { class: 'muted', text: 'No metrics logged.' }));
  const bookmarks = await bookmarksP;
  main.append(h('h2', { text: 'Bookmarks' }));
  if (bookmarks instanceof Error) main.append(h('p', { class: 'error', text: `Bookmarks not loaded: ${bookmarks.message}` }));
  else if (!bookmarks.length) main.append(h('p', { class: 'muted', id: 'bookmarks', text: 'No bookmarks: save a view from the embedding view\'s Bookmarks panel.' }));
  else {
    main.append(h('ul', { class: 'bookmark-list', id: 'bookmarks' }, bookmarks.map((b) => h('li', {},
      link(bookmarkHref(b), b.name), h('span', { class: 'muted', text: ` · saved ${fmtTime(b.updated)}` })))));
  }
  main.append(h('h2', { text: 'Embeddings' }));
  if (!embeddings.length) { main.append(h('p', { class: 'muted', text: 'No embeddings logged.' })); return; }
  // group → title → steps
  const groups = new Map();
  for (const e of embeddings) {
    const g = e.group ?? '';
    if (!groups.has(g)) groups.set(g, new Map());
    const titles = groups.get(g);
    if (!titles.has(e.title)) titles.set(e.title, []);
    titles.get(e.title).push(e);
  }
  const box = h('div', { id: 'embeddings' });
  for (const [g, titles] of groups) {
    const sec = h('section', { class: 'emb-group' }, h('h3', {}, g === '' ? h('span', { class: 'muted', text: '(no group)' }) : h('span', { text: `group: ${g}` })));
    for (const [title, list] of titles) {
      list.sort((a, b) => (a.step == null) - (b.step == null) || (a.step ?? 0) - (b.step ?? 0) || (a.seq ?? 0) - (b.seq ?? 0));
      sec.append(h('div', { class: 'emb-title' }, h('h4', { text: title }),
        h('table', { class: 'list compact' },
          h('thead', {}, h('tr', {}, ['Step', 'Points', 'Dim', 'Sprite', 'Projections'].map((t) => h('th', { text: t })))),
          h('tbody', {}, list.map((e) => h('tr', {},
            h('td', {}, link(viewUrl(runId, e.id), stepName(e))),
            h('td', { class: 'num', text: e.n }),
            h('td', { class: 'num', text: e.dim }),
            h('td', { text: e.sprite ? `${e.sprite.tile_size.join('×')} px` : '' }),
            h('td', {}, e.reductions.length ? e.reductions.map((r) => h('span', { class: 'chip' },
              link(viewUrl(runId, e.id, { red: r.id }), methodLabel(r)),
              r.quality && Number.isFinite(r.quality.trustworthiness) ? ` T=${r.quality.trustworthiness.toFixed(2)}` : '',
              r.timeline ? ' ⟳' : '')) : h('span', { class: 'muted', text: 'none stored' }))))))));
    }
    box.append(sec);
  }
  main.append(box);
}

function kvTable(entries) {
  return h('table', { class: 'kv' }, h('tbody', {}, entries.map(([k, v]) => h('tr', {}, h('th', { text: k }), h('td', { text: fmtValue(v) })))));
}

async function viewPage() {
  const params = new URLSearchParams(location.search);
  if (params.get('a') || params.get('b')) { await comparePage(params); return; }
  const runId = params.get('run');
  if (!runId) throw new Error('The view needs ?run=RUN_ID&emb=EMBEDDING_ID');
  const embeddingsP = api.embeddings(runId); // in parallel with the run's own record
  embeddingsP.catch(() => {});
  const run = await api.run(runId);
  setCrumbs(link('/', 'Projects'), link(`/projects/${enc(run.project)}`, run.project), link(`/runs/${enc(run.run_id)}`, run.name || run.run_id),
    h('span', { id: 'crumb-emb', text: 'embedding' }));
  clear(main);
  current = new EmbeddingView(main, run, params, { onUrl: (url) => history.replaceState(null, '', url), embeddings: embeddingsP });
  await current.start();
}

async function comparePage(params) {
  setCrumbs(link('/', 'Projects'), h('span', { text: `compare ${params.get('title') || ''}` }));
  document.title = 'Compare · tracker';
  clear(main);
  current = new Comparison(main, params);
  await current.start();
}

route();
