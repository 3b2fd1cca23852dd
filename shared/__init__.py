"""Library code every service may use. Knows no service (import-linter checks)."""
