#!/usr/bin/env node
// Starts Azurite's blob service (the same entry point as node_modules/.bin/azurite-blob) with three fixes to how
// its LokiJS metadata store works (azurite-loki-fixes.cjs), so that a migration of 100k files does not slow
// with every file stored. Measured before them (bench/azurite_scaling.py, profiled with node --cpu-prof):
// Azurite's CPU per migrated file grew by about 3.6 ms for every 1,000 blobs stored, and at 10,000 blobs a
// profile showed 42% of it rebuilding every index after each single delete, 10% writing the whole database
// as JSON every 5 seconds, and 10% scanning every blob of the account for lookups whose first term
// (accountName) matches them all. With those fixed, a profile of a 100k-file migration put 36% of Azurite's CPU in
// copying the whole blob list through a filter on every delete (23 ms per file at 100k blobs, bench/azurite_deletes.py);
// the delete fix now splices instead. The fixes keep every answer the same (tests/unit/test_azurite_loki_fixes.py).
"use strict";

require("./azurite-loki-fixes.cjs");
require("azurite/dist/src/blob/main.js");
