#!/usr/bin/env node
// A committed shim, so npm can link the `mailgate` command before dist/ is built.
// SIGHUP's default action ends the process: a reload sent while the gateway is still
// loading (systemctl reload right after start) must not kill it. `serve` reloads TLS on it.
process.on('SIGHUP', () => {});
await import('../dist/cli.js');
