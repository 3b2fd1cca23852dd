from functions.payouts.blueprint import bp  # noqa: F401
