// A module worker that fetches binary answers for columns.js: their bytes arrive here while the
// page's main thread draws, and go back as a transferred ArrayBuffer (no copy).
import { fetchHere } from './columns.js';

self.onmessage = async (ev) => {
  const { id, url } = ev.data;
  try {
    const buffer = await fetchHere(url);
    self.postMessage({ id, buffer }, [buffer]);
  } catch (err) {
    self.postMessage({ id, status: err.status ?? 0, error: String((err && err.message) || err) });
  }
};
