<?php
// The demo's data: one JSON file per collection (users.json, articles.json, accounts.json)
// in a data directory, seeded from demo/seed.json on first use. PHP's built-in server
// runs requests in separate worker processes, so every access takes a flock on the
// directory's lock file and every write replaces the file atomically (rename).

declare(strict_types=1);

namespace WaymarkDemo;

final class Store
{
    private const COLLECTIONS = ['accounts', 'users', 'articles'];

    private string $dir;
    private string $seedFile;

    public function __construct(string $dir, string $seedFile)
    {
        $this->dir = rtrim($dir, '/');
        $this->seedFile = $seedFile;
        if (!is_dir($this->dir) && !@mkdir($this->dir, 0700, true) && !is_dir($this->dir)) {
            throw new \RuntimeException("demo data dir {$this->dir} cannot be created");
        }
    }

    /** Runs $fn(array $data): mixed with a shared lock; $data holds every collection. */
    public function read(callable $fn)
    {
        return $this->locked(LOCK_SH, function () use ($fn) {
            return $fn($this->load());
        });
    }

    /**
     * Runs $fn(array &$data): mixed with an exclusive lock and saves the collections it
     * changed. Read-modify-write (a view counter, an edit) is atomic across workers.
     */
    public function write(callable $fn)
    {
        return $this->locked(LOCK_EX, function () use ($fn) {
            $data = $this->load();
            $before = $data;
            $result = $fn($data);
            foreach (self::COLLECTIONS as $c) {
                if ($data[$c] !== $before[$c]) {
                    $this->save($c, $data[$c]);
                }
            }
            return $result;
        });
    }

    private function locked(int $mode, callable $fn)
    {
        $lock = fopen($this->dir . '/.lock', 'c');
        if ($lock === false) {
            throw new \RuntimeException('demo data dir cannot be locked');
        }
        try {
            // First use: seed under the exclusive lock, then take the lock asked for.
            if (!is_file($this->dir . '/users.json')) {
                if (!flock($lock, LOCK_EX)) {
                    throw new \RuntimeException('demo data dir cannot be locked');
                }
                $this->seedIfEmpty();
            }
            if (!flock($lock, $mode)) {
                throw new \RuntimeException('demo data dir cannot be locked');
            }
            return $fn();
        } finally {
            flock($lock, LOCK_UN);
            fclose($lock);
        }
    }

    // users.json is written last: its presence says the seed is complete.
    private function seedIfEmpty(): void
    {
        if (is_file($this->dir . '/users.json')) {
            return;
        }
        $seed = json_decode((string) file_get_contents($this->seedFile), true, 64, JSON_THROW_ON_ERROR);
        foreach (['accounts', 'articles', 'users'] as $c) {
            $this->save($c, $seed[$c]);
        }
    }

    private function load(): array
    {
        $data = [];
        foreach (self::COLLECTIONS as $c) {
            $raw = file_get_contents("{$this->dir}/$c.json");
            if ($raw === false) {
                throw new \RuntimeException("demo data file $c.json is missing");
            }
            $data[$c] = json_decode($raw, true, 64, JSON_THROW_ON_ERROR);
        }
        return $data;
    }

    private function save(string $collection, array $value): void
    {
        $tmp = tempnam($this->dir, ".$collection.");
        $json = json_encode($value, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
        if ($tmp === false || file_put_contents($tmp, $json . "\n") === false || !rename($tmp, "{$this->dir}/$collection.json")) {
            throw new \RuntimeException("demo data file $collection.json cannot be written");
        }
    }
}
