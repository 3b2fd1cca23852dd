"""GCRA rate limiting: bursts up to the limit, then one request per period/limit, with exact Retry-After."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.auth.rate_limit import InMemoryRateLimiter, RateDecision


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> InMemoryRateLimiter:
    return InMemoryRateLimiter(clock=clock)


async def test_a_burst_up_to_the_limit_is_allowed_then_refused_with_retry_after(limiter, clock):
    decisions = [await limiter.hit("ip:1", limit=3, period=60) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    # One request "costs" 60/3 = 20 s; the next becomes allowed 20 s from now.
    assert decisions[3].retry_after == pytest.approx(20.0)
    assert decisions[3].retry_after_header == "20"


async def test_waiting_retry_after_is_enough(limiter, clock):
    for _ in range(2):
        await limiter.hit("k", limit=2, period=60)
    refused = await limiter.hit("k", limit=2, period=60)
    assert not refused.allowed

    clock.advance(refused.retry_after)
    assert (await limiter.hit("k", limit=2, period=60)).allowed
    assert not (await limiter.hit("k", limit=2, period=60)).allowed


async def test_refused_requests_do_not_use_up_budget(limiter, clock):
    await limiter.hit("k", limit=1, period=10)
    for _ in range(50):
        assert not (await limiter.hit("k", limit=1, period=10)).allowed
    clock.advance(10)
    assert (await limiter.hit("k", limit=1, period=10)).allowed


async def test_keys_are_independent(limiter):
    assert (await limiter.hit("principal:a", limit=1, period=60)).allowed
    assert not (await limiter.hit("principal:a", limit=1, period=60)).allowed
    assert (await limiter.hit("principal:b", limit=1, period=60)).allowed


async def test_cost_counts_several_units(limiter):
    assert (await limiter.hit("k", limit=10, period=60, cost=8)).remaining == 2
    assert not (await limiter.hit("k", limit=10, period=60, cost=3)).allowed
    assert (await limiter.hit("k", limit=10, period=60, cost=2)).allowed


async def test_idle_keys_are_evicted(limiter, clock):
    for i in range(100):
        await limiter.hit(f"ip:{i}", limit=5, period=60)
    assert len(limiter) == 100

    clock.advance(60)  # every key's budget is whole again: nothing to remember
    await limiter.hit("ip:new", limit=5, period=60)
    assert len(limiter) == 1


async def test_memory_is_bounded_under_a_flood_of_keys(clock):
    limiter = InMemoryRateLimiter(max_keys=50, clock=clock)
    for i in range(1000):
        assert (await limiter.hit(f"ip:{i}", limit=5, period=60)).allowed
    assert len(limiter) == 50


def test_retry_after_header_rounds_up_to_whole_seconds():
    assert RateDecision(allowed=False, retry_after=0.2, remaining=0).retry_after_header == "1"
    assert RateDecision(allowed=False, retry_after=2.01, remaining=0).retry_after_header == "3"


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": 0, "period": 60}, {"limit": 1, "period": 0}, {"limit": 1, "period": 60, "cost": 0}],
)
async def test_nonsense_limits_are_rejected(limiter, kwargs):
    with pytest.raises(ValueError):
        await limiter.hit("k", **kwargs)


@given(
    limit=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), min_size=1, max_size=120),
)
def test_never_more_than_burst_plus_rate_in_any_window(limit, gaps):
    """GCRA's contract: in any interval of length w, at most limit + w * limit / period requests pass."""
    period = 60.0
    clock = FakeClock()
    limiter = InMemoryRateLimiter(clock=clock)
    allowed_at = []
    for gap in gaps:
        clock.advance(gap)
        if limiter.hit_now("k", limit=limit, period=period).allowed:
            allowed_at.append(clock.now)
    for i, start in enumerate(allowed_at):
        for j in range(i, len(allowed_at)):
            window = allowed_at[j] - start
            assert j - i + 1 <= limit + window * limit / period + 1e-6
