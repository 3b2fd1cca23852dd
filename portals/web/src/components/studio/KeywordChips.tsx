"use client";
import { useId, useState, type KeyboardEvent } from "react";
import { addKeywords, MAX_KEYWORDS } from "@/lib/keywords";

/** Keywords as removable chips; type and press Enter or comma to add; AI suggestions one click away. */
export function KeywordChips({
  value,
  onChange,
  suggestions,
}: {
  value: string[];
  onChange: (next: string[]) => void;
  suggestions: string[];
}) {
  const [draft, setDraft] = useState("");
  const id = useId();
  const offered = suggestions.filter((s) => !value.some((k) => k.toLowerCase() === s.toLowerCase()));

  const commit = () => {
    if (!draft.trim()) return;
    onChange(addKeywords(value, draft.split(",")));
    setDraft("");
  };
  const onKey = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key === "Enter" || event.key === ",") {
      event.preventDefault();
      commit();
    } else if (event.key === "Backspace" && !draft && value.length) {
      onChange(value.slice(0, -1));
    }
  };

  return (
    <div className="stack keyword-editor">
      <label htmlFor={id}>
        Keywords <span className="muted">({value.length} of {MAX_KEYWORDS})</span>
      </label>
      <ul className="chips" aria-label="Keywords">
        {value.map((keyword) => (
          <li key={keyword} className="chip applied">
            {keyword}
            <button
              type="button"
              className="chip-remove"
              aria-label={`Remove keyword ${keyword}`}
              onClick={() => onChange(value.filter((k) => k !== keyword))}
            >
              ×
            </button>
          </li>
        ))}
      </ul>
      {value.length === 0 && (
        <p className="muted small">
          No keywords yet. Buyers search by them: type what the photo shows
          {offered.length ? ", or add the suggestions below" : ""}.
        </p>
      )}
      <input
        id={id}
        type="text"
        value={draft}
        placeholder="Type a keyword, then Enter"
        onChange={(e) => setDraft(e.target.value)}
        onKeyDown={onKey}
        onBlur={commit}
        disabled={value.length >= MAX_KEYWORDS}
      />
      {offered.length > 0 && (
        <div className="suggested" aria-label="Suggested keywords" role="group">
          <p className="muted">Suggested from the photo:</p>
          <ul className="chips">
            {offered.map((s) => (
              <li key={s}>
                <button
                  type="button"
                  className="chip"
                  onClick={() => onChange(addKeywords(value, [s]))}
                  aria-label={`Add suggested keyword ${s}`}
                >
                  + {s}
                </button>
              </li>
            ))}
            <li>
              <button type="button" className="chip all" onClick={() => onChange(addKeywords(value, offered))}>
                Add all {offered.length}
              </button>
            </li>
          </ul>
        </div>
      )}
    </div>
  );
}
