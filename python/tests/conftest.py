"""Shared pytest configuration: a deterministic hypothesis profile and thread hygiene."""

import pytest
from hypothesis import HealthCheck, settings

import kcp

settings.register_profile(
    "kcp",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("kcp")


@pytest.fixture(autouse=True)
def restore_threads():
    """Every test leaves the engine's thread count as it found it."""
    before = kcp.get_num_threads()
    yield
    kcp.set_num_threads(before)
