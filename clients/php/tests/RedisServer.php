<?php
// A private redis-server for the tests: a free loopback port, no persistence, stopped at
// the end. Readiness is read from its own "Ready to accept connections" line.

declare(strict_types=1);

namespace Waymark\Tests;

final class RedisServer
{
    /** @var resource */
    private $proc;
    /** @var resource */
    private $stdout;
    public int $port;
    private string $dir;

    public function __construct(int $timeoutMs = 10000)
    {
        $this->port = self::freePort();
        $this->dir = sys_get_temp_dir() . '/waymark-php-redis-' . getmypid() . '-' . bin2hex(random_bytes(4));
        mkdir($this->dir);
        $cmd = ['redis-server', '--port', (string) $this->port, '--bind', '127.0.0.1', '--save', '',
            '--appendonly', 'no', '--dir', $this->dir, '--daemonize', 'no', '--loglevel', 'notice'];
        $proc = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
        if (!is_resource($proc)) {
            throw new \RuntimeException('cannot start redis-server (Debian package redis-server)');
        }
        $this->proc = $proc;
        $this->stdout = $pipes[1];
        $this->waitReady($timeoutMs);
    }

    /** A port nothing listens on right now, chosen by the kernel. */
    public static function freePort(): int
    {
        $s = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        if ($s === false) {
            throw new \RuntimeException("no free port: $errstr");
        }
        $name = stream_socket_get_name($s, false);
        fclose($s);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    private function waitReady(int $timeoutMs): void
    {
        $deadline = microtime(true) + $timeoutMs / 1000;
        $seen = '';
        while (true) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                $this->stop();
                throw new \RuntimeException("redis-server not ready after {$timeoutMs} ms:\n$seen");
            }
            $r = [$this->stdout];
            $w = $e = null;
            $n = stream_select($r, $w, $e, (int) $left, (int) (fmod($left, 1.0) * 1e6));
            if ($n === 0) {
                continue;
            }
            $line = fgets($this->stdout);
            if ($line === false) {
                $this->stop();
                throw new \RuntimeException("redis-server exited during startup:\n$seen");
            }
            $seen .= $line;
            if (strpos($line, 'Ready to accept connections') !== false) {
                // Keep draining its output so a full pipe never blocks it.
                stream_set_blocking($this->stdout, false);
                return;
            }
        }
    }

    public function url(): string
    {
        return "redis://127.0.0.1:{$this->port}";
    }

    public function client(): \Redis
    {
        $r = new \Redis();
        if (!$r->connect('127.0.0.1', $this->port, 3.0)) {
            throw new \RuntimeException('cannot connect to the test redis-server');
        }
        return $r;
    }

    public function stop(): void
    {
        if (is_resource($this->proc)) {
            proc_terminate($this->proc, 15);
            // Closing the pipe first: proc_close waits for the process to exit.
            if (is_resource($this->stdout)) {
                fclose($this->stdout);
            }
            proc_close($this->proc);
        }
        if (is_dir($this->dir)) {
            foreach (glob($this->dir . '/*') ?: [] as $f) {
                unlink($f);
            }
            rmdir($this->dir);
        }
    }
}
