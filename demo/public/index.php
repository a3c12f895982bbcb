<?php
// Front controller of the Waymark demo backend, also the router script for PHP's built-in
// server:  php -S 127.0.0.1:8080 demo/public/index.php   (see demo/README.md for the env).

declare(strict_types=1);

$root = dirname(__DIR__, 2);
require $root . '/clients/php/autoload.php';
require $root . '/demo/lib/Store.php';
require $root . '/demo/lib/App.php';

WaymarkDemo\App::fromEnv()->handle($_SERVER['REQUEST_METHOD'] ?? 'GET', $_SERVER['REQUEST_URI'] ?? '/');
