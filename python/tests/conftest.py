"""Shared pytest configuration: a deterministic hypothesis profile, thread
hygiene, and the PyTorch tests skipped when torch is not installed."""

import pytest
from hypothesis import HealthCheck, settings
from support import TORCH_MISSING

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


class _NeedsTorch(pytest.Module):
    def collect(self):
        pytest.skip(TORCH_MISSING)


def pytest_pycollect_makemodule(module_path, parent):
    """The PyTorch tests (``test_torch*.py``) import torch at the top: without it they are skipped, with the reason."""
    if module_path.name.startswith("test_torch") and TORCH_MISSING:
        return _NeedsTorch.from_parent(parent, path=module_path)
    return None
