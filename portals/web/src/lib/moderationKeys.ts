// The moderation queue's keyboard and selection rules, as a pure reducer (Gmail- and reviewer-style):
// j/k move, x selects, shift-click selects a range, a approves, r asks for a reason picked by number.
// The component turns key presses into commands with `commandForKey` and runs the decisions itself.

export const REJECT_REASONS = [
  { code: "poor_quality", label: "Poor quality (blur, noise, exposure)" },
  { code: "duplicate", label: "Duplicate of another image" },
  { code: "trademark_or_logo", label: "Shows a trademark or logo" },
  { code: "person_without_release", label: "Recognisable person without a release" },
  { code: "nudity", label: "Nudity" },
  { code: "violence", label: "Violence" },
  { code: "not_a_photo", label: "Not a photo" },
  { code: "other", label: "Other (say why)" },
] as const;

export type RejectCode = (typeof REJECT_REASONS)[number]["code"];

export interface QueueState {
  ids: string[];
  cursor: number; // index of the image shown large; -1 when the queue is empty
  selected: string[];
  anchor: number | null; // where the last plain click or x was, for shift ranges
  rejecting: boolean; // the reason picker is open
}

export type Command =
  | { type: "next" }
  | { type: "prev" }
  | { type: "toggle" } // x: select or unselect the current image
  | { type: "approve" }
  | { type: "openReject" }
  | { type: "closeReject" }
  | { type: "reason"; code: RejectCode }
  | { type: "clearSelection" }
  | { type: "help" };

export type Action =
  | Command
  | { type: "load"; ids: string[] }
  | { type: "focus"; index: number }
  | { type: "click"; index: number; shift: boolean }
  | { type: "selectAll" }
  | { type: "decided"; ids: string[] };

export const EMPTY: QueueState = { ids: [], cursor: -1, selected: [], anchor: null, rejecting: false };

function clamp(index: number, length: number): number {
  return length === 0 ? -1 : Math.min(Math.max(index, 0), length - 1);
}

export function current(state: QueueState): string | null {
  return state.ids[state.cursor] ?? null;
}

/** What a decision applies to: the selection if there is one, else the image shown. */
export function targets(state: QueueState): string[] {
  if (state.selected.length) return state.ids.filter((id) => state.selected.includes(id));
  const id = current(state);
  return id ? [id] : [];
}

export function reduceQueue(state: QueueState, action: Action): QueueState {
  switch (action.type) {
    case "load": {
      // Keep the reviewer's place: same image if still there, else the same position.
      const keep = current(state);
      const at = keep ? action.ids.indexOf(keep) : -1;
      const cursor = at >= 0 ? at : clamp(state.cursor < 0 ? 0 : state.cursor, action.ids.length);
      return {
        ...state,
        ids: action.ids,
        cursor,
        selected: state.selected.filter((id) => action.ids.includes(id)),
        anchor: null,
      };
    }
    case "next":
      return { ...state, cursor: clamp(state.cursor + 1, state.ids.length) };
    case "prev":
      return { ...state, cursor: clamp(state.cursor - 1, state.ids.length) };
    case "focus":
      return { ...state, cursor: clamp(action.index, state.ids.length) };
    case "toggle": {
      const id = current(state);
      if (!id) return state;
      const selected = state.selected.includes(id) ? state.selected.filter((s) => s !== id) : [...state.selected, id];
      return { ...state, selected, anchor: state.cursor };
    }
    case "click": {
      const id = state.ids[action.index];
      if (id === undefined) return state;
      if (action.shift && state.anchor !== null) {
        const [from, to] = [Math.min(state.anchor, action.index), Math.max(state.anchor, action.index)];
        const range = state.ids.slice(from, to + 1);
        const selected = [...state.selected, ...range.filter((r) => !state.selected.includes(r))];
        return { ...state, selected, cursor: action.index };
      }
      const selected = state.selected.includes(id) ? state.selected.filter((s) => s !== id) : [...state.selected, id];
      return { ...state, selected, anchor: action.index, cursor: action.index };
    }
    case "selectAll":
      return { ...state, selected: [...state.ids] };
    case "clearSelection":
      return { ...state, selected: [], anchor: null };
    case "openReject":
      return targets(state).length ? { ...state, rejecting: true } : state;
    case "closeReject":
      return { ...state, rejecting: false };
    case "decided": {
      // Decided images leave the queue; the reviewer lands on what came after the current one.
      const gone = new Set(action.ids);
      const before = state.ids.slice(0, Math.max(state.cursor, 0)).filter((id) => !gone.has(id)).length;
      const ids = state.ids.filter((id) => !gone.has(id));
      return {
        ids,
        cursor: clamp(before, ids.length),
        selected: state.selected.filter((id) => !gone.has(id)),
        anchor: null,
        rejecting: false,
      };
    }
    case "approve":
    case "reason":
    case "help":
      return state; // decisions are the component's job (they call the API); the state changes on "decided"
  }
}

export interface KeyPress {
  key: string;
  shiftKey?: boolean;
  ctrlKey?: boolean;
  metaKey?: boolean;
  altKey?: boolean;
  /** The key went to a text field, where letters are typing, not commands. */
  inTextField?: boolean;
}

export function commandForKey(state: QueueState, press: KeyPress): Command | null {
  if (press.ctrlKey || press.metaKey || press.altKey) return null;
  if (state.rejecting) {
    if (press.key === "Escape") return { type: "closeReject" };
    const n = Number.parseInt(press.key, 10);
    const reason = Number.isInteger(n) ? REJECT_REASONS[n - 1] : undefined;
    return reason && !press.inTextField ? { type: "reason", code: reason.code } : null;
  }
  if (press.inTextField) return null;
  switch (press.key) {
    case "j":
      return { type: "next" };
    case "k":
      return { type: "prev" };
    case "x":
      return { type: "toggle" };
    case "a":
      return targets(state).length ? { type: "approve" } : null;
    case "r":
      return targets(state).length ? { type: "openReject" } : null;
    case "Escape":
      return state.selected.length ? { type: "clearSelection" } : null;
    case "?":
      return { type: "help" };
    default:
      return null;
  }
}
