<?php
// Waymark (PHP) against a real redis-server: the bumps it publishes arrive on the channel,
// in order and in the dispatcher's format, and a path the dispatcher would refuse throws
// before anything is published. Where build/waymark-bump exists, every path rule is also
// checked against the C implementation itself.

declare(strict_types=1);

namespace Waymark\Tests;

use PHPUnit\Framework\TestCase;
use Waymark\InvalidPathException;
use Waymark\Waymark;

final class WaymarkTest extends TestCase
{
    private static ?RedisServer $server = null;
    private ?RespSubscriber $sub = null;
    private \Redis $redis;

    public static function setUpBeforeClass(): void
    {
        self::$server = new RedisServer();
    }

    public static function tearDownAfterClass(): void
    {
        if (self::$server) {
            self::$server->stop();
            self::$server = null;
        }
    }

    protected function setUp(): void
    {
        $this->redis = self::$server->client();
    }

    protected function tearDown(): void
    {
        if ($this->sub) {
            $this->sub->close();
            $this->sub = null;
        }
        $this->redis->close();
    }

    private function subscribe(string ...$channels): RespSubscriber
    {
        $this->sub = new RespSubscriber(self::$server->port, ...$channels);
        return $this->sub;
    }

    public function testBumpPublishesThePath(): void
    {
        $sub = $this->subscribe('waymark');
        $wm = new Waymark($this->redis, 'waymark');
        $this->assertSame(1, $wm->bump('/users/1'));
        $this->assertSame(['waymark', '/users/1'], $sub->next());
    }

    public function testBumpManyKeepsOrderInOneCall(): void
    {
        $sub = $this->subscribe('waymark');
        $wm = new Waymark($this->redis);
        $this->assertSame(3, $wm->bump('/users/1', '/articles/7', '/users/1?fields=name'));
        $this->assertSame(['waymark', '/users/1'], $sub->next());
        $this->assertSame(['waymark', '/articles/7'], $sub->next());
        $this->assertSame(['waymark', '/users/1?fields=name'], $sub->next());
        // The connection is usable afterwards (the pipeline was closed).
        $this->assertSame('hello', $this->redis->echo('hello'));
    }

    public function testBumpNothingIsANoOp(): void
    {
        $wm = new Waymark($this->redis);
        $this->assertSame(0, $wm->bump());
    }

    public function testBumpPrefixSendsTheJsonForm(): void
    {
        $sub = $this->subscribe('waymark');
        $wm = new Waymark($this->redis);
        $this->assertSame(1, $wm->bumpPrefix('/users/'));
        [$ch, $payload] = $sub->next();
        $this->assertSame('waymark', $ch);
        $this->assertSame(['path' => '/users/', 'match' => 'prefix'], json_decode($payload, true));
        $this->assertStringNotContainsString('\\/', $payload);
    }

    public function testOtherChannel(): void
    {
        $sub = $this->subscribe('waymark', 'shop-bumps');
        $wm = new Waymark($this->redis, 'shop-bumps');
        $wm->bump('/cart/9');
        $this->assertSame(['shop-bumps', '/cart/9'], $sub->next());
    }

    public function testNoListenerReturnsZero(): void
    {
        $wm = new Waymark($this->redis, 'nobody-listens-here');
        $this->assertSame(0, $wm->bump('/users/1'));
    }

    public function testOneBadPathPublishesNothing(): void
    {
        $sub = $this->subscribe('waymark');
        $wm = new Waymark($this->redis);
        try {
            $wm->bump('/users/1', '/a/../admin', '/users/2');
            $this->fail('no exception for a dot segment');
        } catch (InvalidPathException $e) {
            $this->assertSame('/a/../admin', $e->getPath());
            $this->assertSame('dot segment', $e->getReason());
        }
        try {
            $wm->bumpPrefix('http://evil/');
            $this->fail('no exception for an absolute URL prefix');
        } catch (InvalidPathException $e) {
            $this->assertSame('must start with /', $e->getReason());
        }
        // The next message on the channel is the one published after the refusals.
        $wm->bump('/after');
        $this->assertSame(['waymark', '/after'], $sub->next());
    }

    public function testMaxPath(): void
    {
        $wm = new Waymark($this->redis, 'waymark', 10);
        $this->assertSame(0, (new Waymark($this->redis, 'x', 10))->bump('/123456789'));
        $this->expectException(InvalidPathException::class);
        $wm->bump('/1234567890');
    }

    public function testExceptionMessageIsEscaped(): void
    {
        try {
            Waymark::assertPath("/a\nb\x00" . str_repeat('x', 200));
            $this->fail('no exception');
        } catch (InvalidPathException $e) {
            $this->assertStringNotContainsString("\n", $e->getMessage());
            $this->assertStringNotContainsString("\0", $e->getMessage());
            $this->assertLessThan(200, strlen($e->getMessage()));
        }
    }

    /** The cases of tests/unit/test_wm_path.c, plus a few. */
    public static function goodPaths(): array
    {
        $good = ['/', '/users/1', '/users/1?fields=name', '/users/', '/a/b/c.json',
            '/a/.hidden', '/a/...', '/a/..b', '/a/b..', '/caf%C3%A9', '/a//b',
            '/search?q=a/../b', '/x?a=%2F', '/~user/x-y_z', '/a?x=1&y=2;z', '/a/b;v=1', '/a/...;x',
            '/a?b=%5c', '/a/%41', '/x?', '/a/.../b'];
        return array_combine($good, array_map(fn ($p) => [$p], $good));
    }

    public static function badPaths(): array
    {
        $bad = ['', 'users/1', 'http://x/', '//host/x', '/a/../b', '/a/%2E%2e/b', '/a/%2e%2E',
            '/a/..', '/..', '/.', '/a/./b', '/a/%2e/b', '/a b', "/a\tb", "/a\nb", "/a\x7f",
            "/caf\xc3\xa9", '/a#frag', '/a\\b', '/a%00b', '/a%2fb', '/a%2F..', '/a%5cb',
            '/a%', '/a%2', '/a%zz', '/x?q=%00', '/a/..;x/b', '/a/.;/b', "/a\0b", '/a/..?x=1',
            ' /a', '/a '];
        $out = [];
        foreach ($bad as $i => $p) {
            $out["#$i " . addcslashes($p, "\0..\37\177..\377")] = [$p];
        }
        return $out;
    }

    /** @dataProvider goodPaths */
    public function testGoodPath(string $p): void
    {
        $this->assertNull(Waymark::pathProblem($p));
        $this->assertSame(0, (new Waymark($this->redis, 'unheard'))->bump($p));
    }

    /** @dataProvider badPaths */
    public function testBadPath(string $p): void
    {
        $this->assertNotNull(Waymark::pathProblem($p));
        $this->expectException(InvalidPathException::class);
        (new Waymark($this->redis, 'unheard'))->bump($p);
    }

    /** Same verdict as the C rules: build/waymark-bump refuses exactly what PHP refuses. */
    public function testAgreesWithWaymarkBump(): void
    {
        $bin = getenv('WAYMARK_BUILD') ?: dirname(__DIR__, 3) . '/build';
        $bin .= '/waymark-bump';
        if (!is_executable($bin)) {
            $this->markTestSkipped("$bin not built");
        }
        $paths = array_merge(array_column(self::goodPaths(), 0), array_column(self::badPaths(), 0));
        $sub = $this->subscribe('waymark-cli');
        foreach ($paths as $p) {
            if ($p === '' || strpos($p, "\0") !== false || trim($p) !== $p) {
                continue; // argv cannot carry a NUL; the CLI trims and refuses "" its own way
            }
            $proc = proc_open([$bin, '--redis-url=' . self::$server->url(), '--redis-channel=waymark-cli', '--', $p],
                [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
            $out = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
            fclose($pipes[1]);
            fclose($pipes[2]);
            $rc = proc_close($proc);
            $phpOk = Waymark::pathProblem($p) === null;
            $this->assertSame($phpOk, $rc === 0, sprintf('path %s: PHP says %s, waymark-bump exit %d: %s',
                json_encode($p), $phpOk ? 'ok' : Waymark::pathProblem($p), $rc, trim($out)));
            if ($phpOk) {
                $this->assertSame(['waymark-cli', $p], $sub->next());
            }
        }
    }
}
