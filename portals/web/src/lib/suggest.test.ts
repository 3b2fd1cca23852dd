import { describe, expect, it } from "vitest";
import { applySuggestion, moveHighlight, typedWord } from "./suggest";

describe("keyword suggestions", () => {
  it("complete the word being typed, not the whole query", () => {
    expect(typedWord("red bicy")).toBe("bicy");
    expect(typedWord("red ")).toBe("");
    expect(typedWord('-cat')).toBe("cat");
    expect(applySuggestion("red bicy", "bicycle")).toBe("red bicycle ");
    expect(applySuggestion("espresso -ca", "cat")).toBe("espresso -cat ");
    expect(applySuggestion("tr", "travel")).toBe("travel ");
  });

  it("wrap around with the arrow keys and stay put with no suggestions", () => {
    expect(moveHighlight(-1, "ArrowDown", 3)).toBe(0);
    expect(moveHighlight(2, "ArrowDown", 3)).toBe(0);
    expect(moveHighlight(0, "ArrowUp", 3)).toBe(2);
    expect(moveHighlight(-1, "ArrowUp", 3)).toBe(2);
    expect(moveHighlight(1, "End", 3)).toBe(2);
    expect(moveHighlight(1, "ArrowDown", 0)).toBe(-1);
  });
});
