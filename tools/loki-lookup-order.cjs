// Makes LokiJS look up by the most selective indexed key first; required by azurite-blob.cjs (see there why).
// An $and returns the same rows whatever the order of its terms, so only the cost changes.
"use strict";

const Loki = require("lokijs");

// Indexed keys from the most selective: one blob or block by name, else one container's blobs (a listing of
// `incoming` then reads the backlog, not every blob stored). A block's own name (its id) repeats across
// blobs, so a block is found by its blob's name first. Azurite's collections index all three.
const SELECTIVE_KEYS = ["blobName", "name", "containerName"];

function isPlainEquality(value) {
  return typeof value === "string" || typeof value === "number";
}

const find = Loki.Resultset.prototype.find;
Loki.Resultset.prototype.find = function (query, firstOnly) {
  if (query && typeof query === "object" && !this.filterInitialized) {
    const keys = Object.keys(query);
    const first = SELECTIVE_KEYS.find(
      (key) =>
        keys.length > 1 &&
        keys[0] !== key &&
        Object.prototype.hasOwnProperty.call(query, key) &&
        isPlainEquality(query[key]) &&
        this.collection.binaryIndices[key] !== undefined,
    );
    if (first !== undefined) {
      const reordered = { [first]: query[first] };
      for (const key of keys) {
        if (key !== first) reordered[key] = query[key];
      }
      query = reordered;
    }
  }
  return find.call(this, query, firstOnly);
};
