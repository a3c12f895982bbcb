<?php
// The demo backend: users and articles behind bearer tokens, rendered per viewer. Saving
// calls Waymark::bump(), so every open view re-renders with what its own user may see.
// GET /articles/{id} counts a view, except for Waymark's re-fetches (X-Waymark header).

declare(strict_types=1);

namespace WaymarkDemo;

use Waymark\Waymark;

final class App
{
    private Store $store;
    private string $root;        // the repository root
    private ?Waymark $waymark = null;

    public function __construct(Store $store, string $root)
    {
        $this->store = $store;
        $this->root = $root;
    }

    public static function fromEnv(): self
    {
        $root = dirname(__DIR__, 2);
        $dir = getenv('WAYMARK_DEMO_DATA') ?: sys_get_temp_dir() . '/waymark-demo-data';
        return new self(new Store($dir, $root . '/demo/seed.json'), $root);
    }

    public function handle(string $method, string $uri): void
    {
        $path = (string) parse_url($uri, PHP_URL_PATH);
        $query = [];
        parse_str((string) parse_url($uri, PHP_URL_QUERY), $query);
        try {
            if ($method === 'GET' || $method === 'HEAD') {
                $this->get($path, $query);
            } elseif ($method === 'POST') {
                $this->post($path);
            } else {
                $this->json(405, ['error' => 'method not allowed'], ['Allow' => 'GET, HEAD, POST']);
            }
        } catch (\Throwable $e) {
            error_log('waymark-demo: ' . get_class($e) . ': ' . $e->getMessage());
            $this->json(500, ['error' => 'internal error']);
        }
    }

    // ---- routes ----

    private function get(string $path, array $query): void
    {
        if ($path === '/' || $path === '/index.html') {
            $this->file($this->root . '/demo/public/index.html', 'text/html; charset=utf-8');
        } elseif ($path === '/app.js') {
            $this->file($this->root . '/demo/public/app.js', 'text/javascript; charset=utf-8');
        } elseif ($path === '/style.css') {
            $this->file($this->root . '/demo/public/style.css', 'text/css; charset=utf-8');
        } elseif ($path === '/assets/autobahn.min.js') {
            $this->file($this->autobahnJs(), 'text/javascript; charset=utf-8');
        } elseif (preg_match('#^/assets/waymark/(core|browser)\.js$#', $path, $m)) {
            $this->file($this->root . "/clients/js/src/{$m[1]}.js", 'text/javascript; charset=utf-8');
        } elseif ($path === '/config.json') {
            $this->json(200, [
                'wsUrl' => $this->wsUrl(),
                'realm' => getenv('WAYMARK_REALM') ?: 'waymark',
                'logins' => $this->store->read(fn ($d) => array_map(
                    fn ($a) => $d['users'][(string) $a['user']]['login'], $d['accounts'])),
            ]);
        } elseif ($path === '/healthz') {
            $this->text(200, "ok\n");
        } elseif ($path === '/me') {
            $me = $this->requireViewer(false);
            if ($me) {
                $this->json(200, ['id' => $me['id'], 'login' => $me['login'], 'name' => $me['name'], 'access' => $me['access']]);
            }
        } elseif (preg_match('#^/users/([1-9][0-9]{0,8})$#', $path, $m)) {
            $this->getUser((int) $m[1], $query);
        } elseif (preg_match('#^/articles/([1-9][0-9]{0,8})$#', $path, $m)) {
            $this->getArticle((int) $m[1]);
        } else {
            $this->json(404, ['error' => 'not found']);
        }
    }

    private function post(string $path): void
    {
        if ($path === '/login') {
            $this->login();
        } elseif (preg_match('#^/users/([1-9][0-9]{0,8})$#', $path, $m)) {
            $this->saveUser((int) $m[1]);
        } elseif (preg_match('#^/articles/([1-9][0-9]{0,8})$#', $path, $m)) {
            $this->saveArticle((int) $m[1]);
        } else {
            $this->json(404, ['error' => 'not found']);
        }
    }

    // A demo login: pick a user, get its token. A real app would check a password.
    private function login(): void
    {
        $in = $this->input();
        $login = is_string($in['user'] ?? null) ? $in['user'] : '';
        $found = $this->store->read(function ($d) use ($login) {
            foreach ($d['accounts'] as $a) {
                $u = $d['users'][(string) $a['user']];
                if ($u['login'] === $login) {
                    return ['token' => $a['token'],
                        'user' => ['id' => $u['id'], 'login' => $u['login'], 'name' => $u['name'], 'access' => $u['access']]];
                }
            }
            return null;
        });
        if (!$found) {
            $this->json(404, ['error' => 'no such user']);
            return;
        }
        $this->json(200, $found);
    }

    private function getUser(int $id, array $query): void
    {
        $me = $this->requireViewer(true);
        if (!$me) {
            return;
        }
        $u = $this->store->read(fn ($d) => $d['users'][(string) $id] ?? null);
        if (!$u) {
            $this->json(404, ['error' => 'no such user']);
            return;
        }
        $profile = $this->profileFor($u, $me);
        if (($query['format'] ?? '') === 'html' || $this->wantsHtml()) {
            $this->html(200, $this->profileHtml($profile));
            return;
        }
        $this->json(200, $profile);
    }

    // What $me may see of $u: the owner also gets the private fields.
    private function profileFor(array $u, array $me): array
    {
        $p = [
            'id' => $u['id'],
            'login' => $u['login'],
            'name' => $u['name'],
            'bio' => $u['bio'],
            'version' => $u['version'],
            'updated_at' => $u['updated_at'],
            'viewer' => $me['login'],
        ];
        if ($u['id'] === $me['id']) {
            $p['email'] = $u['email'];
        }
        return $p;
    }

    private function profileHtml(array $p): string
    {
        $e = fn ($s) => htmlspecialchars((string) $s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
        $email = isset($p['email']) ? "<p class=\"email\">{$e($p['email'])}</p>" : '';
        return "<!doctype html><meta charset=\"utf-8\"><title>{$e($p['name'])}</title>"
            . "<article class=\"profile\" data-version=\"{$e($p['version'])}\"><h1 class=\"name\">{$e($p['name'])}</h1>"
            . "<p class=\"bio\">{$e($p['bio'])}</p>$email<footer>seen by {$e($p['viewer'])}</footer></article>\n";
    }

    private function getArticle(int $id): void
    {
        $me = $this->requireViewer(true);
        if (!$me) {
            return;
        }
        // Waymark's re-fetches carry X-Waymark: they are not views by a person.
        $counts = $this->header('X-Waymark') === null;
        $a = $this->store->write(function (&$d) use ($id, $counts) {
            $k = (string) $id;
            if (!isset($d['articles'][$k])) {
                return null;
            }
            if ($counts) {
                $d['articles'][$k]['views']++;
            }
            $a = $d['articles'][$k];
            $a['author_name'] = $d['users'][(string) $a['author']]['name'] ?? '?';
            return $a;
        });
        if (!$a) {
            $this->json(404, ['error' => 'no such article']);
            return;
        }
        $a['viewer'] = $me['login'];
        $this->json(200, $a);
    }

    private function saveUser(int $id): void
    {
        $me = $this->requireViewer(true);
        if (!$me) {
            return;
        }
        if ($me['id'] !== $id) {
            $this->json(403, ['error' => 'forbidden', 'reason' => 'only the owner may edit a profile']);
            return;
        }
        $in = $this->input();
        $changes = [];
        $limits = ['name' => 60, 'bio' => 500, 'email' => 120];
        foreach ($limits as $field => $max) {
            if (!array_key_exists($field, $in)) {
                continue;
            }
            $v = $in[$field];
            if (!is_string($v) || mb_strlen($v) > $max || ($field !== 'bio' && trim($v) === '')) {
                $this->json(422, ['error' => "invalid $field"]);
                return;
            }
            if ($field === 'email' && filter_var($v, FILTER_VALIDATE_EMAIL) === false) {
                $this->json(422, ['error' => 'invalid email']);
                return;
            }
            $changes[$field] = $v;
        }
        $u = $this->store->write(function (&$d) use ($id, $changes) {
            $u = &$d['users'][(string) $id];
            foreach ($changes as $k => $v) {
                $u[$k] = $v;
            }
            $u['version']++;
            $u['updated_at'] = gmdate('Y-m-d\TH:i:s\Z');
            return $u;
        });
        $this->json(200, ['saved' => $this->profileFor($u, $me)] + $this->bump("/users/$id"));
    }

    private function saveArticle(int $id): void
    {
        $me = $this->requireViewer(true);
        if (!$me) {
            return;
        }
        $in = $this->input();
        $changes = [];
        foreach (['title' => 120, 'body' => 4000] as $field => $max) {
            if (!array_key_exists($field, $in)) {
                continue;
            }
            $v = $in[$field];
            if (!is_string($v) || mb_strlen($v) > $max || ($field === 'title' && trim($v) === '')) {
                $this->json(422, ['error' => "invalid $field"]);
                return;
            }
            $changes[$field] = $v;
        }
        // Anyone with access may edit an article (a wiki); the view counter is not theirs.
        $a = $this->store->write(function (&$d) use ($id, $changes) {
            $k = (string) $id;
            if (!isset($d['articles'][$k])) {
                return null;
            }
            foreach ($changes as $f => $v) {
                $d['articles'][$k][$f] = $v;
            }
            $d['articles'][$k]['version']++;
            $d['articles'][$k]['updated_at'] = gmdate('Y-m-d\TH:i:s\Z');
            return $d['articles'][$k];
        });
        if (!$a) {
            $this->json(404, ['error' => 'no such article']);
            return;
        }
        $this->json(200, ['saved' => $a] + $this->bump("/articles/$id"));
    }

    // ---- Waymark ----

    // The save is done whatever happens here: a Redis outage costs the live update, not
    // the write. The answer says which it was.
    private function bump(string $path): array
    {
        try {
            return ['bumped' => $this->waymark()->bump($path)];
        } catch (\Throwable $e) {
            $this->waymark = null;
            error_log("waymark-demo: bump $path failed: " . $e->getMessage());
            return ['bumped' => null, 'bump_error' => $e->getMessage()];
        }
    }

    private function waymark(): Waymark
    {
        if ($this->waymark) {
            return $this->waymark;
        }
        $url = parse_url(getenv('WAYMARK_REDIS_URL') ?: 'redis://127.0.0.1:6379');
        if (!$url || ($url['scheme'] ?? '') !== 'redis') {
            throw new \RuntimeException('WAYMARK_REDIS_URL must be redis://[:password@]host[:port][/db]');
        }
        $redis = new \Redis();
        $redis->connect($url['host'] ?? '127.0.0.1', (int) ($url['port'] ?? 6379), 2.0);
        if (isset($url['pass'])) {
            $redis->auth(rawurldecode($url['pass']));
        }
        $channel = getenv('WAYMARK_REDIS_CHANNEL') ?: 'waymark';
        $maxPath = (int) (getenv('WAYMARK_MAX_PATH') ?: Waymark::MAX_PATH_DEFAULT);
        return $this->waymark = new Waymark($redis, $channel, $maxPath);
    }

    // ---- request and response helpers ----

    /**
     * The user behind the request's token. Answers 401 (no or unknown token) or, when
     * $needAccess, 403 (a suspended account) itself and returns null.
     */
    private function requireViewer(bool $needAccess): ?array
    {
        $token = $this->token();
        $me = $token === null ? null : $this->store->read(function ($d) use ($token) {
            foreach ($d['accounts'] as $a) {
                if (hash_equals($a['token'], $token)) {
                    return $d['users'][(string) $a['user']] ?? null;
                }
            }
            return null;
        });
        if (!$me) {
            $this->json(401, ['error' => 'unauthorized', 'reason' => $token === null ? 'no token' : 'unknown token'],
                ['WWW-Authenticate' => 'Bearer realm="waymark-demo"']);
            return null;
        }
        if ($needAccess && !$me['access']) {
            $this->json(403, ['error' => 'forbidden', 'reason' => 'this account may not read profiles or articles', 'viewer' => $me['login']]);
            return null;
        }
        return $me;
    }

    // "Authorization: Bearer T" (Waymark's default WAYMARK_AUTH_HEADER), or the cookie form
    // "Cookie: PHPSESSID=T".
    private function token(): ?string
    {
        $auth = $this->header('Authorization');
        if ($auth !== null && preg_match('/^Bearer\s+(\S+)$/', $auth, $m)) {
            return $m[1];
        }
        $cookie = $_COOKIE['PHPSESSID'] ?? null;
        return is_string($cookie) && $cookie !== '' ? $cookie : null;
    }

    private function header(string $name): ?string
    {
        foreach (getallheaders() as $k => $v) {
            if (strcasecmp($k, $name) === 0) {
                return $v;
            }
        }
        return null;
    }

    private function wantsHtml(): bool
    {
        $accept = strtolower($this->header('Accept') ?? '');
        $html = strpos($accept, 'text/html');
        $json = strpos($accept, 'application/json');
        return $html !== false && ($json === false || $html < $json);
    }

    private function input(): array
    {
        $raw = (string) file_get_contents('php://input');
        if (stripos($this->header('Content-Type') ?? '', 'application/json') !== false) {
            $v = json_decode($raw, true);
            return is_array($v) ? $v : [];
        }
        return $_POST;
    }

    private function wsUrl(): string
    {
        $url = getenv('WAYMARK_DEMO_WS_URL');
        if ($url) {
            return $url;
        }
        $listen = getenv('WAYMARK_LISTEN') ?: '127.0.0.1:8800';
        return "ws://$listen/";
    }

    private function autobahnJs(): string
    {
        return getenv('WAYMARK_DEMO_AUTOBAHN_JS')
            ?: $this->root . '/clients/js/node_modules/autobahn-browser/autobahn.min.js';
    }

    private function json(int $status, array $body, array $headers = []): void
    {
        $this->send($status, 'application/json; charset=utf-8',
            json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) . "\n", $headers);
    }

    private function html(int $status, string $body): void
    {
        $this->send($status, 'text/html; charset=utf-8', $body);
    }

    private function text(int $status, string $body): void
    {
        $this->send($status, 'text/plain; charset=utf-8', $body);
    }

    private function file(string $file, string $type): void
    {
        $body = is_file($file) ? file_get_contents($file) : false;
        if ($body === false) {
            $this->text(404, "missing $file (for autobahn.min.js: cd clients/js && npm ci)\n");
            return;
        }
        $this->send(200, $type, $body);
    }

    private function send(int $status, string $type, string $body, array $headers = []): void
    {
        http_response_code($status);
        header("Content-Type: $type");
        header('Cache-Control: no-store');
        header('Vary: Authorization, Accept, X-Waymark');
        header('X-Content-Type-Options: nosniff');
        foreach ($headers as $k => $v) {
            header("$k: $v");
        }
        header('Content-Length: ' . strlen($body));
        if (($_SERVER['REQUEST_METHOD'] ?? 'GET') !== 'HEAD') {
            echo $body;
        }
    }
}
