"""Read-only calls read float32 arrays in place, and every engine call releases the GIL.

NumPy reports its data allocations to tracemalloc, so a converted copy of the
weight shows in the traced peak; the engine's own scratch memory (Swift
allocations) does not, which is what these tests rely on.
"""

import threading
import time
import tracemalloc

import numpy as np
import pytest

import kcp

SHAPE = (256, 64, 25, 25)  # 10.2 M float32 values (39 MiB), 16384 kernels


@pytest.fixture(scope="module")
def large():
    return np.random.default_rng(0).standard_normal(SHAPE, dtype=np.float32)


def traced_peak(call):
    """Peak traced memory (bytes) during `call()`."""
    return traced_call(call)[0]


def traced_call(call):
    """``(peak traced bytes, result)`` of `call()`."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        result = call()
        return tracemalloc.get_traced_memory()[1] - start, result
    finally:
        tracemalloc.stop()


def output_bytes(result):
    """Bytes of the arrays a call returns."""
    if isinstance(result, np.ndarray):
        return result.nbytes
    return sum(getattr(result, f).nbytes for f in ("keep", "pruned", "scores", "labels", "centers")
               if getattr(result, f) is not None)


@pytest.mark.parametrize("call", [
    lambda w: kcp.scores(w),
    lambda w: kcp.scores(w, "l2"),
    lambda w: kcp.cluster(w, 0.5),
    lambda w: kcp.cluster(w, 0.5, granularity="kernel"),
], ids=["scores", "scores_l2", "cluster", "cluster_kernel"])
def test_float32_weights_are_not_copied(large, call):
    assert large.flags.c_contiguous and large.flags.aligned
    peak, result = traced_call(lambda: call(large))
    allowance = 2 * output_bytes(result) + 100_000
    assert allowance < large.nbytes / 20
    assert peak < allowance, f"traced {peak} bytes for a {large.nbytes}-byte weight"


def test_read_only_float32_weights_are_not_copied(large):
    frozen = large.view()
    frozen.flags.writeable = False
    peak = traced_peak(lambda: kcp.scores(frozen))
    assert peak < large.nbytes / 100
    np.testing.assert_array_equal(kcp.scores(frozen), kcp.scores(large))


def test_float64_weights_are_converted(large):
    wide = large.astype(np.float64)
    peak = traced_peak(lambda: kcp.scores(wide))
    assert peak >= large.nbytes * 0.9, "a float64 weight must be converted to a float32 copy"
    np.testing.assert_array_equal(kcp.scores(wide), kcp.scores(large))


def test_non_contiguous_weights_are_converted(large):
    strided = large[:, ::2]
    peak = traced_peak(lambda: kcp.scores(strided))
    assert peak >= strided.nbytes * 0.9


def test_apply_mask_does_not_copy(large):
    w = large[:16].copy()
    keep = np.arange(w.shape[1]) % 3 != 0
    peak = traced_peak(lambda: kcp.apply_mask(w, keep))
    assert peak < w.nbytes / 100
    assert not w[:, ~keep].any() and w[:, keep].all()


def progress_during(call):
    """Rate (samples per second) at which the main thread counts while `call` runs in a thread.

    A sample is taken every 1000 increments; only samples well inside the
    call's own time window count.
    """
    window = {}

    def work():
        window["start"] = time.perf_counter()
        call()
        window["end"] = time.perf_counter()

    worker = threading.Thread(target=work)
    samples = []
    counter = 0
    worker.start()
    while worker.is_alive():
        counter += 1
        if counter % 1000 == 0:
            samples.append(time.perf_counter())
    worker.join()
    start, end = window["start"] + 0.02, window["end"] - 0.02
    assert end - start > 0.1, "the call was too quick to tell"
    return sum(start < t < end for t in samples) / (end - start)


def test_the_gil_is_released_while_the_engine_works():
    # FPGM on 1536 filters of 4608 values: one SGEMM of ~0.3 s on one thread.
    w = np.random.default_rng(1).standard_normal((1536, 512, 3, 3), dtype=np.float32)
    kcp.set_num_threads(1)
    idle = progress_during(lambda: time.sleep(0.3))
    busy = progress_during(lambda: kcp.scores(w, "fpgm"))
    # A call that held the GIL would let the main thread take ~0 samples.
    assert busy > 0.1 * idle, f"main thread sampled {busy:.0f}/s during the call, {idle:.0f}/s when idle"
