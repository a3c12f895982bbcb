<?php
// PSR-4 autoloader for Waymark\ without Composer (the demo and the tests use it; with
// Composer, require vendor/autoload.php instead).

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    $prefix = 'Waymark\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $rel = substr($class, strlen($prefix));
    if (strncmp($rel, 'Tests\\', 6) === 0) {
        $file = __DIR__ . '/tests/' . str_replace('\\', '/', substr($rel, 6)) . '.php';
    } else {
        $file = __DIR__ . '/src/' . str_replace('\\', '/', $rel) . '.php';
    }
    if (is_file($file)) {
        require $file;
    }
});
