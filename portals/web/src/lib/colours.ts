// Swatches for the named colours search uses (shared/imaging names them).
const COLOURS: Record<string, string> = {
  red: "#d93025", orange: "#f28b20", yellow: "#f9d923", green: "#34a853", teal: "#14a3a3", blue: "#1a73e8",
  purple: "#8e44ad", pink: "#e75480", brown: "#8b5a2b", black: "#111111", gray: "#8a8f98", grey: "#8a8f98",
  white: "#ffffff",
};

export function swatch(name: string): string {
  return COLOURS[name] ?? name;
}
