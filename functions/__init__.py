"""One package per service. A service never imports another (import-linter checks)."""
