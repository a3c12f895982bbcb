#!/usr/bin/env bash
# Starts the Waymark demo backend (PHP's built-in server) in the foreground.
# Usage: demo/serve.sh [HOST:PORT]        (default 127.0.0.1:8080; port 0 = a free one,
#                                          printed in the server's "started" line)
# Env:   WAYMARK_DEMO_DATA      data dir (JSON files, seeded on first use; default
#                               ${TMPDIR:-/tmp}/waymark-demo-data)
#        WAYMARK_REDIS_URL      where bumps are published (default redis://127.0.0.1:6379)
#        WAYMARK_REDIS_CHANNEL  (default waymark)
#        WAYMARK_DEMO_WS_URL    the gateway's websocket URL for the page (default
#                               ws://$WAYMARK_LISTEN/, WAYMARK_LISTEN default 127.0.0.1:8800)
#        WAYMARK_DEMO_WORKERS   PHP_CLI_SERVER_WORKERS (default 1). With more than 1, stop
#                               the whole process group: the workers outlive a killed master.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LISTEN=${1:-127.0.0.1:8080}
command -v php >/dev/null || { echo "serve.sh: php not found (Debian packages php-cli php-redis)" >&2; exit 1; }
php -r 'exit(extension_loaded("redis") ? 0 : 1);' || { echo "serve.sh: phpredis missing (Debian package php-redis)" >&2; exit 1; }
[ -f "$ROOT/clients/js/node_modules/autobahn-browser/autobahn.min.js" ] || \
    echo "serve.sh: warning: autobahn.min.js missing, the page will not connect (cd clients/js && npm ci)" >&2
export WAYMARK_DEMO_DATA=${WAYMARK_DEMO_DATA:-${TMPDIR:-/tmp}/waymark-demo-data}
export PHP_CLI_SERVER_WORKERS=${WAYMARK_DEMO_WORKERS:-1}
[ "$PHP_CLI_SERVER_WORKERS" = 1 ] && unset PHP_CLI_SERVER_WORKERS
exec php -S "$LISTEN" "$ROOT/demo/public/index.php"
