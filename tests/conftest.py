"""Shared fixtures. Each area keeps its fixtures in tests/fixtures/<area>.py."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.azurite",
    "tests.fixtures.photos",
]
