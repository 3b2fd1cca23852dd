// Rules of the details editor: keywords are trimmed, unique regardless of case and at most 50 (what the
// API accepts); AI tags become suggestions; a save sends only what changed.

export const MAX_KEYWORDS = 50;
const MAX_KEYWORD_LENGTH = 100;

export function addKeywords(current: string[], added: string[]): string[] {
  const next = [...current];
  const seen = new Set(current.map((k) => k.toLocaleLowerCase()));
  for (const raw of added) {
    const keyword = raw.trim().replace(/\s+/g, " ").slice(0, MAX_KEYWORD_LENGTH);
    const folded = keyword.toLocaleLowerCase();
    if (!keyword || seen.has(folded) || next.length >= MAX_KEYWORDS) continue;
    seen.add(folded);
    next.push(keyword);
  }
  return next;
}

/** The model's tags worth offering, most confident first, as keywords a person would type. */
export function suggestionsFrom(tags: { label: string; confidence: number }[], minConfidence = 0.05): string[] {
  return addKeywords(
    [],
    [...tags]
      .filter((t) => t.confidence >= minConfidence)
      .sort((a, b) => b.confidence - a.confidence)
      .map((t) => t.label.replace(/_/g, " ")),
  );
}

export interface Details {
  title: string;
  description: string;
  keywords: string[];
  category: string | null;
}

/** The PATCH body: only the fields that changed (null category removes it); null when nothing did. */
export function changedFields(before: Details, after: Details): Partial<Details> | null {
  const patch: Partial<Details> = {};
  if (after.title.trim() !== before.title) patch.title = after.title.trim();
  if (after.description.trim() !== before.description) patch.description = after.description.trim();
  if (after.keywords.join("\u0000") !== before.keywords.join("\u0000")) patch.keywords = after.keywords;
  if ((after.category || null) !== (before.category || null)) patch.category = after.category || null;
  return Object.keys(patch).length ? patch : null;
}
