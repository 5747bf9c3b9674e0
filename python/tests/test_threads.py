"""kcp.set_num_threads / get_num_threads, and calls from several Python threads at once."""

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import kcp


@pytest.mark.parametrize("n", [1, 2, 3, 1, np.int64(2), np.uint8(4)])
def test_round_trip(n):
    assert kcp.set_num_threads(n) is None
    assert kcp.get_num_threads() == int(n)
    assert type(kcp.get_num_threads()) is int


def test_default_is_the_number_of_online_processors():
    code = "import kcp; print(kcp.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == os.cpu_count()


@pytest.mark.parametrize(("n", "kind"), [(0, ValueError), (-1, ValueError), (1025, ValueError),
                                       (2**40, ValueError), (1.5, TypeError), (2.0, TypeError),
                                       ("2", TypeError), (None, TypeError), (True, TypeError)])
def test_bad_values_leave_the_count_unchanged(n, kind):
    kcp.set_num_threads(2)
    with pytest.raises(kind, match=r"^n:"):
        kcp.set_num_threads(n)
    assert kcp.get_num_threads() == 2


def test_concurrent_calls_agree_with_serial_ones():
    rng = np.random.default_rng(5)
    weights = [rng.standard_normal((32, 16 + i, 3, 3)).astype(np.float32) for i in range(8)]

    def work(w):
        return (kcp.scores(w), kcp.scores(w, "fpgm"), kcp.cluster(w, 0.5, centers=3, seed=1).keep,
                kcp.cluster(w, 0.5, center="median").keep)

    serial = [work(w) for w in weights]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            for got, expected in zip(pool.map(work, weights), serial):
                for a, b in zip(got, expected):
                    np.testing.assert_array_equal(a, b)


def test_concurrent_errors_keep_their_own_messages():
    good = np.ones((4, 4, 3, 3), np.float32)

    def work(i):
        if i % 2:
            return kcp.scores(good, groups=4).shape
        try:
            kcp.scores(good, groups=3)
        except ValueError as error:
            return str(error)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(200)))
    assert all(r == (16,) for r in results[1::2])
    assert all(r == "groups: 3 groups do not divide the 4 output channels" for r in results[0::2])


def test_conv_results_do_not_depend_on_the_thread_count():
    """Convs whose products are split into blocks of output channels by thread count (a 7x7 layer of
    512 outputs, a 1x1 of 1024 at batch 1) and convs that are not (batch 8) give the same bytes."""
    net = kcp.Network(seed=2)
    x = net.input("x", (1, 64, 7, 7))
    y = net.relu(net.batchnorm(net.conv2d(x, 512, 3, padding=1)))
    net.output(net.add(net.conv2d(y, 1024, 1), net.conv2d(x, 1024, 1)))
    for batch in (1, 8):
        image = np.random.default_rng(batch).standard_normal((batch, 64, 7, 7)).astype(np.float32)
        results = []
        for n in (1, 2, 3, 8):
            kcp.set_num_threads(n)
            results.append(net(image)[0])
        for result in results[1:]:
            assert np.array_equal(result, results[0])


def test_a_forked_child_runs_parallel_loops():
    """A child made by fork after parallel loops ran makes helper threads of its own, and gives the
    parent's bytes (the parent's helpers do not exist in the child)."""
    net = kcp.Network(seed=3)
    x = net.input("x", (2, 16, 24, 24))
    net.output(net.relu(net.conv2d(net.relu(net.conv2d(x, 32, 3, padding=1)), 32, 3, padding=1)))
    image = np.random.default_rng(3).standard_normal((2, 16, 24, 24)).astype(np.float32)
    kcp.set_num_threads(2)
    expected = net(image)[0]
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's outcome is its exit status)
        try:
            signal.alarm(60)  # a child waiting for helpers that do not exist ends here
            same = all(np.array_equal(net(image)[0], expected) for _ in range(20))
            os.write(write, b"1" if same else b"0")
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(child, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert answer == b"1"
