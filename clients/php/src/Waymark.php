<?php
// Waymark bumps from PHP: publishes "this page changed" on the Redis channel Waymark's
// dispatcher listens to, so every client watching the page gets it re-fetched with its own
// token. Paths are checked here exactly as the dispatcher checks them (common/wm_path.c).

declare(strict_types=1);

namespace Waymark;

final class Waymark
{
    /** The dispatcher's default WAYMARK_MAX_PATH. */
    public const MAX_PATH_DEFAULT = 2048;

    private \Redis $redis;
    private string $channel;
    private int $maxPath;

    /**
     * @param \Redis $redis   a connected phpredis client (not in subscribe mode)
     * @param string $channel WAYMARK_REDIS_CHANNEL of the dispatcher
     * @param int    $maxPath WAYMARK_MAX_PATH of the dispatcher
     */
    public function __construct(\Redis $redis, string $channel = 'waymark', int $maxPath = self::MAX_PATH_DEFAULT)
    {
        if ($channel === '') {
            throw new \InvalidArgumentException('Waymark: empty channel');
        }
        if ($maxPath < 1) {
            throw new \InvalidArgumentException('Waymark: maxPath must be positive');
        }
        $this->redis = $redis;
        $this->channel = $channel;
        $this->maxPath = $maxPath;
    }

    /**
     * Bumps each path: watchers of the path, and of the path with any query string, get
     * the page again. A path with a query string bumps only that exact topic. Every path
     * is checked before anything is published, so a bad one publishes nothing.
     *
     * @return int how many dispatchers received the bumps (summed over the paths); 0 means
     *             no dispatcher is listening right now
     * @throws InvalidPathException when a path would be refused by the dispatcher
     * @throws \RedisException      when Redis cannot be reached
     */
    public function bump(string ...$paths): int
    {
        foreach ($paths as $p) {
            self::assertPath($p, $this->maxPath);
        }
        if (count($paths) === 0) {
            return 0;
        }
        if (count($paths) === 1) {
            return (int) $this->redis->publish($this->channel, $paths[0]);
        }
        // One round trip for the lot; the order of the bumps is kept.
        $replies = $this->redis->multi(\Redis::PIPELINE);
        foreach ($paths as $p) {
            $replies->publish($this->channel, $p);
        }
        $out = $this->redis->exec();
        if (!is_array($out)) {
            throw new \RedisException('Waymark: pipeline of PUBLISH failed');
        }
        return (int) array_sum(array_map('intval', $out));
    }

    /**
     * Bumps every watched topic that starts with $prefix ("/users/" bumps "/users/1",
     * "/users/2?x=y", ...).
     *
     * @throws InvalidPathException when the prefix would be refused by the dispatcher
     */
    public function bumpPrefix(string $prefix): int
    {
        self::assertPath($prefix, $this->maxPath);
        $payload = json_encode(['path' => $prefix, 'match' => 'prefix'], JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR);
        return (int) $this->redis->publish($this->channel, $payload);
    }

    /** Throws InvalidPathException with the reason when $path is not an acceptable topic. */
    public static function assertPath(string $path, int $maxLen = self::MAX_PATH_DEFAULT): void
    {
        $why = self::pathProblem($path, $maxLen);
        if ($why !== null) {
            throw new InvalidPathException($path, $why);
        }
    }

    /**
     * Why $path is not an acceptable topic, or null when it is. The rules of wm_path_check:
     * starts with "/" but not "//", printable ASCII only (no space, control character,
     * "#", "\" or byte >= 0x7f), at most $maxLen bytes, well-formed %XX escapes, no %00
     * anywhere, no %2f or %5c in the path part, and no "." or ".." segment in the path part
     * (also percent-encoded, and also before a ";param").
     */
    public static function pathProblem(string $path, int $maxLen = self::MAX_PATH_DEFAULT): ?string
    {
        $len = strlen($path);
        if ($len === 0) {
            return 'empty';
        }
        if ($len > $maxLen) {
            return 'too long';
        }
        if ($path[0] !== '/') {
            return 'must start with /';
        }
        if ($len > 1 && $path[1] === '/') {
            return 'must not start with //';
        }
        $q = strpos($path, '?');
        $base = $q === false ? $len : $q;
        for ($i = 0; $i < $len; $i++) {
            $c = ord($path[$i]);
            if ($c <= 0x20 || $c >= 0x7f) {
                return $c === 0x20 ? 'space' : 'control or non-ASCII character';
            }
            if ($c === 0x23) {
                return 'fragment';
            }
            if ($c === 0x5c) {
                return 'backslash';
            }
            if ($c !== 0x25) {
                continue;
            }
            if ($i + 2 >= $len || !ctype_xdigit($path[$i + 1]) || !ctype_xdigit($path[$i + 2])) {
                return 'bad percent-encoding';
            }
            $v = hexdec($path[$i + 1] . $path[$i + 2]);
            if ($v === 0) {
                return 'encoded NUL';
            }
            if ($i < $base && ($v === 0x2f || $v === 0x5c)) {
                return 'encoded slash';
            }
            $i += 2;
        }
        // Segments of the path part; the first is the empty one before the leading "/".
        $segments = explode('/', substr($path, 1, $base - 1));
        foreach ($segments as $seg) {
            if (self::isDotSegment($seg)) {
                return 'dot segment';
            }
        }
        return null;
    }

    /** "." or ".." once %2e is decoded, ignoring a ";param" suffix (Tomcat strips it). */
    private static function isDotSegment(string $seg): bool
    {
        $semi = strpos($seg, ';');
        if ($semi !== false) {
            $seg = substr($seg, 0, $semi);
        }
        $plain = str_ireplace('%2e', '.', $seg);
        return $plain === '.' || $plain === '..';
    }
}
