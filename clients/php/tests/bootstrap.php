<?php
// PHPUnit bootstrap: Composer's autoloader when installed, the bundled PSR-4 one otherwise.

declare(strict_types=1);

if (!extension_loaded('redis')) {
    fwrite(STDERR, "the phpredis extension is missing (Debian package php-redis)\n");
    exit(1);
}
$composer = dirname(__DIR__) . '/vendor/autoload.php';
require is_file($composer) ? $composer : dirname(__DIR__) . '/autoload.php';
