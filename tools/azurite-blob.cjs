#!/usr/bin/env node
// Starts Azurite's blob service (the same entry point as node_modules/.bin/azurite-blob) after one fix to
// how its LokiJS metadata store finds blobs, so that a migration of 100k files does not slow with every file.
//
// Azurite looks blobs up with queries such as {accountName, containerName, name}. LokiJS runs such a query as an
// $and in the order of its keys and can use an index only for the first one. When accountName comes first
// (deleting a blob, counting its snapshots, listing a container or a blob's blocks), it matches every blob of
// the account, so each such request scanned them all: measured, Azurite's CPU per migrated file grew by about
// 3.6 ms for every 1,000 blobs stored (bench/azurite_scaling.py). Running the most selective indexed equality
// first (a blob's or block's name, else the container's) gives the same rows, since an $and does not depend on
// the order of its terms, from an index lookup.
"use strict";

require("./loki-lookup-order.cjs");
require("azurite/dist/src/blob/main.js");
