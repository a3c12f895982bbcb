// Waymark client for Node (and bundlers that do not pick the "browser" entry): Autobahn|JS
// from npm underneath. See README.md for the API.
import autobahn from 'autobahn';
import { connectWith, Page, WaymarkError } from './core.js';

export { Page, WaymarkError };

// connect({url, token, realm, serializer, onStatus, onError}) -> client with
// watch(path, onPage, {snapshot, onError}), setToken(token), ready(), close().
export function connect(opts) {
  return connectWith((opts && opts.autobahn) || autobahn, opts);
}
