// Two runs side by side on the same inputs (/view?a=RUN_A&b=RUN_B&title=T[&group=G][&step=S]
// [&color=C]): one embedding view per run, linked by row index (the two embeddings must hold
// the same rows in the same order): hovering a point marks the same row in the other view, and
// a selection in one (lasso, legend, top N, neighbours' "Select these") is the other's too.
import { api } from './api.js';
import { h, clear } from './dom.js';
import { EmbeddingView } from './view.js';
import { DEBUG } from './debug.js';

/** The embedding of `title` (and `group`) at `step`, else its last step, that has a projection. */
export function pickEmbedding(embeddings, title, group, step) {
  const found = embeddings.filter((e) => e.title === title && (!group || e.group === group) && e.reductions.length);
  if (step !== null && step !== undefined) return found.find((e) => String(e.step) === String(step)) || null;
  return found.sort((x, y) => (x.step ?? -1) - (y.step ?? -1) || (x.seq ?? 0) - (y.seq ?? 0)).pop() || null;
}

export class Comparison {
  constructor(root, params) {
    this.root = root;
    this.params = params;
    this.views = [];
  }

  async start() {
    const p = this.params, title = p.get('title');
    if (!p.get('a') || !p.get('b') || !title) throw new Error('The comparison needs ?a=RUN_A&b=RUN_B&title=TITLE');
    const ids = [p.get('a'), p.get('b')];
    const [runs, lists] = await Promise.all([Promise.all(ids.map((id) => api.run(id))), Promise.all(ids.map((id) => api.embeddings(id)))]);
    const embs = lists.map((list, k) => {
      const emb = pickEmbedding(list, title, p.get('group'), p.get('step'));
      if (!emb) throw new Error(`Run ${ids[k]} has no projected embedding titled "${title}"${p.get('step') ? ` at step ${p.get('step')}` : ''}`);
      return emb;
    });
    if (embs[0].n !== embs[1].n) {
      throw new Error(`The views are linked by row, so both embeddings need the same rows: run ${ids[0]} has ${embs[0].n}, run ${ids[1]} has ${embs[1].n}`);
    }
    const box = h('div', { class: 'compare', id: 'compare' });
    clear(this.root).append(box);
    const hooks = [];
    runs.forEach((run, k) => {
      const host = h('div', { class: 'compare-host' });
      box.append(h('div', { class: 'compare-side', id: `compare-${'ab'[k]}` },
        h('div', { class: 'compare-title', text: `${'AB'[k]}: ${run.name || run.run_id} · ${embs[k].title}${embs[k].step !== null && embs[k].step !== undefined ? ` @ ${embs[k].step}` : ''}` }), host));
      const vp = new URLSearchParams({ run: run.run_id, emb: embs[k].id });
      for (const key of ['color', 'metric']) if (p.get(key)) vp.set(key, p.get(key));
      const view = new EmbeddingView(host, run, vp, { onUrl: () => {}, embeddings: Promise.resolve(lists[k]) });
      hooks.push(DEBUG ? window.__viewer : null);
      this.views.push(view);
    });
    if (DEBUG) window.__compare = { a: hooks[0], b: hooks[1], views: this.views };
    await Promise.all(this.views.map((v) => v.start()));
    const [a, b] = this.views;
    a.selection.linked = b.selection;
    b.selection.linked = a.selection;
    for (const v of this.views) v.togglePanel(false); // two plots need the width; ☰ or P opens the panels
  }

  dispose() { for (const v of this.views) v.dispose(); }
}
