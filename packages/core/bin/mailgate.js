#!/usr/bin/env node
// A committed shim, so npm can link the `mailgate` command before dist/ is built.
import '../dist/cli.js';
