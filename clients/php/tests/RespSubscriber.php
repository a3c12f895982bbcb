<?php
// A plain-socket Redis subscriber for the tests: SUBSCRIBE, then read each published
// message with a deadline. phpredis' own subscribe() blocks in a callback loop, which would
// not let the same test publish afterwards.

declare(strict_types=1);

namespace Waymark\Tests;

final class RespSubscriber
{
    /** @var resource */
    private $sock;
    private string $buf = '';

    public function __construct(int $port, string ...$channels)
    {
        $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 3.0);
        if ($s === false) {
            throw new \RuntimeException("subscriber cannot connect: $errstr");
        }
        $this->sock = $s;
        $this->send(array_merge(['SUBSCRIBE'], $channels));
        foreach ($channels as $ch) {
            $reply = $this->read(3000);
            if (!is_array($reply) || $reply[0] !== 'subscribe' || $reply[1] !== $ch) {
                throw new \RuntimeException('unexpected SUBSCRIBE reply: ' . json_encode($reply));
            }
        }
    }

    /** The next message as [channel, payload], or null when none arrives within $timeoutMs. */
    public function next(int $timeoutMs = 3000): ?array
    {
        $reply = $this->read($timeoutMs);
        if ($reply === null) {
            return null;
        }
        if (!is_array($reply) || $reply[0] !== 'message') {
            throw new \RuntimeException('unexpected reply: ' . json_encode($reply));
        }
        return [$reply[1], $reply[2]];
    }

    public function close(): void
    {
        if (is_resource($this->sock)) {
            fclose($this->sock);
        }
    }

    private function send(array $args): void
    {
        $out = '*' . count($args) . "\r\n";
        foreach ($args as $a) {
            $out .= '$' . strlen($a) . "\r\n" . $a . "\r\n";
        }
        fwrite($this->sock, $out);
    }

    /** One RESP value; null on timeout. */
    private function read(int $timeoutMs)
    {
        $deadline = microtime(true) + $timeoutMs / 1000;
        while (true) {
            $pos = 0;
            $v = $this->parse($pos);
            if ($v !== false) {
                $this->buf = substr($this->buf, $pos);
                return $v[0];
            }
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                return null;
            }
            $r = [$this->sock];
            $w = $e = null;
            if (stream_select($r, $w, $e, (int) $left, (int) (fmod($left, 1.0) * 1e6)) > 0) {
                $chunk = fread($this->sock, 65536);
                if ($chunk === '' || $chunk === false) {
                    throw new \RuntimeException('redis closed the subscriber connection');
                }
                $this->buf .= $chunk;
            }
        }
    }

    /** Parses one value at $pos: [value] and advances $pos, or false when incomplete. */
    private function parse(int &$pos)
    {
        $nl = strpos($this->buf, "\r\n", $pos);
        if ($nl === false) {
            return false;
        }
        $type = $this->buf[$pos];
        $line = substr($this->buf, $pos + 1, $nl - $pos - 1);
        $next = $nl + 2;
        switch ($type) {
            case '+':
            case '-':
                $pos = $next;
                return [$line];
            case ':':
                $pos = $next;
                return [(int) $line];
            case '$':
                $n = (int) $line;
                if ($n < 0) {
                    $pos = $next;
                    return [null];
                }
                if (strlen($this->buf) < $next + $n + 2) {
                    return false;
                }
                $pos = $next + $n + 2;
                return [substr($this->buf, $next, $n)];
            case '*':
                $n = (int) $line;
                $items = [];
                $p = $next;
                for ($i = 0; $i < $n; $i++) {
                    $v = $this->parse($p);
                    if ($v === false) {
                        return false;
                    }
                    $items[] = $v[0];
                }
                $pos = $p;
                return [$items];
        }
        throw new \RuntimeException("bad RESP type byte " . json_encode($type));
    }
}
