import { describe, expect, it } from "vitest";
import { commandForKey, current, EMPTY, reduceQueue, targets, type Action, type QueueState } from "./moderationKeys";

function run(actions: Action[], start: QueueState = EMPTY): QueueState {
  return actions.reduce(reduceQueue, start);
}

const loaded = run([{ type: "load", ids: ["a", "b", "c", "d", "e"] }]);

describe("moderation keyboard", () => {
  it("moves with j and k and stops at the ends", () => {
    expect(current(loaded)).toBe("a");
    const press = (state: QueueState, key: string) => {
      const command = commandForKey(state, { key });
      return command ? reduceQueue(state, command) : state;
    };
    let state = press(loaded, "k");
    expect(current(state)).toBe("a");
    state = ["j", "j", "j", "j", "j", "j"].reduce(press, state);
    expect(current(state)).toBe("e");
    expect(current(press(state, "k"))).toBe("d");
  });

  it("a approves and r rejects the image shown when nothing is selected, the selection when there is one", () => {
    expect(commandForKey(loaded, { key: "a" })).toEqual({ type: "approve" });
    expect(targets(loaded)).toEqual(["a"]);
    const selected = run([{ type: "toggle" }, { type: "next" }, { type: "next" }, { type: "toggle" }], loaded);
    expect(targets(selected)).toEqual(["a", "c"]);
    expect(current(selected)).toBe("c");
  });

  it("r opens the reason picker; a number picks the reason, Escape closes it, letters do nothing there", () => {
    const open = reduceQueue(loaded, commandForKey(loaded, { key: "r" })!);
    expect(open.rejecting).toBe(true);
    expect(commandForKey(open, { key: "1" })).toEqual({ type: "reason", code: "poor_quality" });
    expect(commandForKey(open, { key: "8" })).toEqual({ type: "reason", code: "other" });
    expect(commandForKey(open, { key: "9" })).toBeNull();
    expect(commandForKey(open, { key: "a" })).toBeNull();
    expect(commandForKey(open, { key: "Escape" })).toEqual({ type: "closeReject" });
  });

  it("ignores keys typed into text fields and with modifiers", () => {
    expect(commandForKey(loaded, { key: "a", inTextField: true })).toBeNull();
    expect(commandForKey(loaded, { key: "r", ctrlKey: true })).toBeNull();
    expect(commandForKey(EMPTY, { key: "a" })).toBeNull(); // nothing to approve
  });

  it("shift-click selects the range from the last click", () => {
    const state = run([{ type: "click", index: 1, shift: false }, { type: "click", index: 3, shift: true }], loaded);
    expect(state.selected).toEqual(["b", "c", "d"]);
    const backwards = run([{ type: "click", index: 4, shift: false }, { type: "click", index: 2, shift: true }], loaded);
    expect(backwards.selected.sort()).toEqual(["c", "d", "e"]);
    expect(run([{ type: "clearSelection" }], state).selected).toEqual([]);
  });

  it("after a decision the decided images leave and the reviewer lands on the next one", () => {
    const at = run([{ type: "focus", index: 2 }], loaded); // on c
    const after = reduceQueue(at, { type: "decided", ids: ["c"] });
    expect(after.ids).toEqual(["a", "b", "d", "e"]);
    expect(current(after)).toBe("d");
    const bulk = run([{ type: "selectAll" }, { type: "decided", ids: ["a", "b", "c", "d", "e"] }], at);
    expect(bulk).toMatchObject({ ids: [], cursor: -1, selected: [] });
    const last = run([{ type: "focus", index: 4 }, { type: "decided", ids: ["e"] }], loaded);
    expect(current(last)).toBe("d");
  });

  it("a reload keeps the reviewer on the same image and drops selections that left", () => {
    const state = run([{ type: "focus", index: 3 }, { type: "toggle" }], loaded); // on d, d selected
    const reloaded = reduceQueue(state, { type: "load", ids: ["d", "e", "f"] });
    expect(current(reloaded)).toBe("d");
    expect(reloaded.selected).toEqual(["d"]);
  });
});
