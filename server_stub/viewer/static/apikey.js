// The API key a server may require for writes (bookmarks, projections computed on request):
// asked for once, when a write answers 401, kept in sessionStorage for this tab only and sent
// as 'Authorization: Bearer <key>' (server_stub/security.py check_api_key) with every write.
import { h } from './dom.js';

const STORE_KEY = 'tracker.apiKey';
let asking = null; // the open question, shared by writes that fail at the same time

export function apiKey() {
  try { return sessionStorage.getItem(STORE_KEY) || ''; } catch (_) { return ''; }
}

export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(STORE_KEY, key); else sessionStorage.removeItem(STORE_KEY);
  } catch (_) { /* storage refused: the key lasts until the field is asked again */ }
}

/** Headers that carry the key, when one was given. */
export function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/**
 * Show the key field under the top bar; resolves true once a key is saved (the caller retries),
 * false when dismissed. `refused`: the key sent was wrong (it is forgotten and asked again).
 */
export function askForKey(message, refused = false) {
  if (asking) return asking;
  if (refused) setApiKey('');
  asking = new Promise((resolve) => {
    const input = h('input', { type: 'password', id: 'api-key-input', autocomplete: 'off', placeholder: 'API key',
      'aria-label': 'API key' });
    const done = (saved) => { bar.remove(); asking = null; resolve(saved); };
    const bar = h('form', { id: 'api-key', class: 'api-key-bar', role: 'dialog', 'aria-label': 'API key',
      onsubmit: (ev) => { ev.preventDefault(); const key = input.value.trim(); if (key) { setApiKey(key); done(true); } } },
    h('div', { id: 'api-key-message', text: refused ? `The key was refused. ${message}` : message }),
    h('div', { class: 'row' }, input, h('button', { type: 'submit', id: 'api-key-save', text: 'Use key' }),
      h('button', { type: 'button', id: 'api-key-cancel', text: 'Cancel', onclick: () => done(false) })),
    h('div', { class: 'muted', text: 'Kept for this tab only (sessionStorage), sent as an Authorization header with writes.' }));
    document.body.append(bar);
    input.focus();
  });
  return asking;
}
