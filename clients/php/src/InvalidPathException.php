<?php
// Thrown by Waymark::bump() and bumpPrefix() for a path the dispatcher would refuse.

declare(strict_types=1);

namespace Waymark;

final class InvalidPathException extends \InvalidArgumentException
{
    private string $path;
    private string $reason;

    public function __construct(string $path, string $reason)
    {
        // The path goes into the message escaped and cut short: it may hold anything.
        $shown = addcslashes(strlen($path) > 80 ? substr($path, 0, 80) . '...' : $path, "\0..\37\177..\377");
        parent::__construct(sprintf('Waymark: invalid path "%s": %s', $shown, $reason));
        $this->path = $path;
        $this->reason = $reason;
    }

    public function getPath(): string
    {
        return $this->path;
    }

    /** The short reason, e.g. "dot segment". */
    public function getReason(): string
    {
        return $this->reason;
    }
}
