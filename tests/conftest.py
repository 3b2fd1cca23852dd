"""Shared fixtures. Each area keeps its fixtures in tests/fixtures/<area>.py."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.azurite",
    "tests.fixtures.photos",
    "tests.fixtures.checkout",
    "tests.fixtures.onnx_models",
    "tests.fixtures.moderation",
    "tests.fixtures.search_corpus",
    "tests.fixtures.payouts",
]
