// Three fixes to LokiJS as Azurite uses it, each keeping its answers; required by azurite-blob.cjs.
// Each made Azurite's CPU per request grow with the number of blobs stored (bench/azurite_scaling.py).
"use strict";

const Loki = require("lokijs");

// 1. Lookups. LokiJS runs a query of several keys as an $and in key order and uses an index only for the
// first key; Azurite often puts accountName first, which matches every blob. An $and gives the same rows in
// any order, so the most selective indexed equality goes first. Indexed keys from the most selective: one blob or block by name, else one container's blobs (a listing of
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
    const best = SELECTIVE_KEYS.find(
      (key) =>
        Object.prototype.hasOwnProperty.call(query, key) &&
        isPlainEquality(query[key]) &&
        this.collection.binaryIndices[key] !== undefined,
    );
    if (keys.length > 1 && best !== undefined && keys[0] !== best) {
      const reordered = { [best]: query[best] };
      for (const key of keys) {
        if (key !== best) reordered[key] = query[key];
      }
      query = reordered;
    }
  }
  return find.call(this, query, firstOnly);
};

// 2. Deletes. Removing a few documents (Azurite deletes one blob at a time) rebuilt every index of the collection from
// scratch: a full sort per index per delete. Updating each index in place for the removed positions is what
// LokiJS does for a single remove. Then, with the indices fixed, a profile of a 100k-file migration still put
// 36% of Azurite's CPU in the same function: it copies the whole data and id arrays through a filter callback
// per delete. Splicing the few positions out moves the same elements natively. A large batch (a container
// deleted) keeps LokiJS's own path, cheaper there. Same steps in the same order as LokiJS 1.5.12's.
const SMALL_BATCH = 32;
const removeBatchByPositions = Loki.Collection.prototype.removeBatchByPositions;
Loki.Collection.prototype.removeBatchByPositions = function (positions) {
  if (positions.length > SMALL_BATCH) {
    return removeBatchByPositions.call(this, positions);
  }
  try {
    this.startTransaction();
    this.ensureId();
    for (const view of this.DynamicViews) {
      view.removeDocument(positions);
    }
    if (this.adaptiveBinaryIndices) {
      for (const key of Object.keys(this.binaryIndices)) {
        this.adaptiveBinaryIndexRemove(positions, key);
      }
    } else {
      this.flagBinaryIndexesDirty();
    }
    for (const key of this.uniqueNames) {
      const index = this.getUniqueIndex(key);
      if (!index) continue;
      for (const position of positions) {
        const value = this.data[position][key];
        if (value !== null && value !== undefined) index.remove(value);
      }
    }
    if (!this.disableChangesApi || this.events.delete.length > 1) {
      for (const position of positions) this.emit("delete", this.data[position]);
    }
    if (this.isIncremental) {
      for (const position of positions) this.dirtyIds.push(this.idIndex[position]);
    }
    for (const position of [...positions].sort((a, b) => b - a)) {
      this.data.splice(position, 1);
      this.idIndex.splice(position, 1);
    }
    this.commit();
    this.dirty = true;
  } catch (err) {
    this.rollback();
    this.flagBinaryIndexesDirty(); // the indices may have been told of a removal that did not happen
    this.lokiConsoleWrapper.error(err.message);
    this.emit("error", err);
    return null;
  }
};

// 3. Autosave. It writes the whole database as one JSON document every 5 seconds, so its cost grows with every blob
// stored. Keep it to about 5% of the time: after a save that took d ms, the next waits at least 19 d.
const SAVE_SHARE = 0.05;
Loki.prototype.autosaveEnable = function (options, callback) {
  this.autosave = true;
  const delay = this.autosaveInterval ?? 5000;
  let notBefore = 0;
  this.autosaveHandle = setInterval(() => {
    if (!this.autosaveDirty() || this.ignoreAutosave || Date.now() < notBefore) {
      return;
    }
    const began = Date.now();
    notBefore = Number.POSITIVE_INFINITY; // one save at a time
    this.saveDatabase((error) => {
      notBefore = Date.now() + ((Date.now() - began) * (1 - SAVE_SHARE)) / SAVE_SHARE;
      if (callback) callback(error);
    });
  }, delay);
};
