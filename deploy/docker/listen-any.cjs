// Preload for the demo backend in a container: tests/backend/server.mjs listens on
// 127.0.0.1 only, which no other container can reach. This makes its listen() use
// DEMO_BACKEND_HOST instead (0.0.0.0 in the image), leaving the server itself unchanged.
'use strict';
const net = require('node:net');
const host = process.env.DEMO_BACKEND_HOST;
if (host) {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (...args) {
    if (typeof args[0] === 'number' && args[1] === '127.0.0.1') args[1] = host;
    return listen.apply(this, args);
  };
}
