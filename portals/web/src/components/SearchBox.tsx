"use client";
import { useRouter } from "next/navigation";
import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { api } from "@/lib/api";
import { formatCount } from "@/lib/money";
import { applySuggestion, moveHighlight, typedWord } from "@/lib/suggest";

type Suggestion = { keyword: string; images: number };

/** The search box: words go to /?q=..., and the word being typed gets keyword suggestions. */
export function SearchBox({ initial = "", big = false, autoFocus = false }: { initial?: string; big?: boolean; autoFocus?: boolean }) {
  const router = useRouter();
  const [query, setQuery] = useState(initial);
  const [suggestions, setSuggestions] = useState<Suggestion[]>([]);
  const [open, setOpen] = useState(false);
  const [highlight, setHighlight] = useState(-1);
  const input = useRef<HTMLInputElement>(null);
  const listId = useId();

  useEffect(() => setQuery(initial), [initial]);

  useEffect(() => {
    const word = typedWord(query);
    if (!open || word.length < 2) {
      setSuggestions([]);
      return;
    }
    let current = true;
    const timer = setTimeout(() => {
      api
        .GET("/api/keywords/suggest", { params: { query: { q: word.slice(0, 64), limit: 8 } } })
        .then(({ data }) => {
          if (current) {
            setSuggestions(data?.suggestions ?? []);
            setHighlight(-1);
          }
        })
        .catch(() => current && setSuggestions([])); // suggestions are a help; searching still works
    }, 150);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [query, open]);

  function go(words: string) {
    setOpen(false);
    const q = words.trim();
    router.push(q ? `/?${new URLSearchParams({ q }).toString()}` : "/");
  }

  function choose(s: Suggestion) {
    const next = applySuggestion(query, s.keyword);
    setQuery(next);
    setSuggestions([]);
    go(next);
  }

  function onKeyDown(event: KeyboardEvent<HTMLInputElement>) {
    if (event.key === "Escape") {
      setOpen(false);
      return;
    }
    if (event.key === "Enter" && highlight >= 0 && suggestions[highlight]) {
      event.preventDefault();
      choose(suggestions[highlight]);
      return;
    }
    if (["ArrowDown", "ArrowUp"].includes(event.key) && suggestions.length) {
      event.preventDefault();
      setOpen(true);
      setHighlight((h) => moveHighlight(h, event.key, suggestions.length));
    }
  }

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    go(query);
  }

  const expanded = open && suggestions.length > 0;
  return (
    <form role="search" className={`searchbox${big ? " big" : ""}`} onSubmit={onSubmit} aria-label="Search images">
      <label htmlFor={`${listId}-input`} className="visually-hidden">
        Search images
      </label>
      <input
        ref={input}
        id={`${listId}-input`}
        type="search"
        name="q"
        value={query}
        placeholder="Search photos: mountains, coffee, city at night…"
        autoComplete="off"
        autoFocus={autoFocus}
        maxLength={200}
        role="combobox"
        aria-expanded={expanded}
        aria-controls={`${listId}-list`}
        aria-autocomplete="list"
        aria-activedescendant={expanded && highlight >= 0 ? `${listId}-opt-${highlight}` : undefined}
        onChange={(e) => {
          setQuery(e.target.value);
          setOpen(true);
        }}
        onKeyDown={onKeyDown}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
      />
      <button type="submit" className="button">
        Search
      </button>
      <ul id={`${listId}-list`} role="listbox" aria-label="Keyword suggestions" className="suggestions" hidden={!expanded}>
        {suggestions.map((s, i) => (
          <li
            key={s.keyword}
            id={`${listId}-opt-${i}`}
            role="option"
            aria-selected={i === highlight}
            onMouseDown={(e) => {
              e.preventDefault();
              choose(s);
            }}
          >
            <span>{s.keyword}</span>
            <span className="muted">{formatCount(s.images)}</span>
          </li>
        ))}
      </ul>
    </form>
  );
}
