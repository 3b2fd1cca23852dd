// Keyword suggestions complete the word being typed; the list is driven by the keyboard like a combobox.

/** The word being typed (after the last space), which is what the API completes. */
export function typedWord(query: string): string {
  if (/\s$/.test(query)) return "";
  const words = query.trim().split(/\s+/);
  const last = words[words.length - 1] ?? "";
  return last.replace(/^[-"]+/, "");
}

/** The query with its last word replaced by the chosen keyword. */
export function applySuggestion(query: string, keyword: string): string {
  const match = /^(.*?)([-"]?)(\S*)$/s.exec(query.trimStart());
  const head = match?.[1] ?? "";
  const prefix = match?.[2] ?? "";
  return `${head}${prefix}${keyword} `;
}

/** The highlighted row after a key press; -1 means the text box itself. */
export function moveHighlight(current: number, key: string, count: number): number {
  if (count === 0) return -1;
  if (key === "ArrowDown") return current + 1 >= count ? 0 : current + 1;
  if (key === "ArrowUp") return current <= 0 ? count - 1 : current - 1;
  if (key === "Home") return 0;
  if (key === "End") return count - 1;
  return current;
}
