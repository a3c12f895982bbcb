// Waymark client for browsers: uses the global `autobahn` of the Autobahn|JS browser build
// (node_modules/autobahn-browser/autobahn.min.js, loaded with a <script> tag first).
import { connectWith, Page, WaymarkError } from './core.js';

export { Page, WaymarkError };

export function connect(opts) {
  const ab = (opts && opts.autobahn) || globalThis.autobahn;
  if (!ab) throw new Error('waymark: load autobahn.min.js (npm autobahn-browser) before this module');
  return connectWith(ab, opts);
}
