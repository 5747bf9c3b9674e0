"""kcp.Network is a view: the engine holds the structure, Python reads it
through the C ABI and keeps nothing of it but a cache of what it read."""

import numpy as np
import pytest

import kcp
from kcp import _native
from kcp.network import Layer


def small():
    """x [1, 2, 4, 4] and y [1, 3, 4, 4]; a conv, a Siamese twin sharing its weights, a concat in three chunks."""
    net = kcp.Network(seed=0)
    x, y = net.input("x", (1, 2, 4, 4)), net.input("y", (1, 3, 4, 4))
    a = net.conv2d(x, 3, 1, bias=False, name="a")
    b = net.conv2d(x, 3, 1, share="a", name="twin")
    top, bottom, _ = net.chunk(net.concat(a, b, y, name="cat"), 3, name="part")
    net.output(bottom, top)
    return net


def test_layers_inputs_outputs_and_parameters_are_read_from_the_engine():
    net = small()
    conv = (1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0)
    assert net.layers == [
        Layer("a", "conv2d", conv, ("x",), ("a.weight",)),
        Layer("twin", "conv2d", conv, ("x",), ("a.weight",)),
        Layer("cat", "concat", (), ("a", "twin", "y"), ()),
        Layer("part.0", "channel_chunk", (0.0, 3.0), ("cat",), ()),
        Layer("part.1", "channel_chunk", (1.0, 3.0), ("cat",), ()),
        Layer("part.2", "channel_chunk", (2.0, 3.0), ("cat",), ()),
    ]
    assert [v.name for v in net.inputs] == ["x", "y"] and [v.name for v in net.outputs] == ["part.1", "part.0"]
    assert [(v.index, v.name) for v in net._all_values()] == list(enumerate(
        ["x", "y", "a", "twin", "cat", "part.0", "part.1", "part.2"]))
    assert net._value_ops() == ["input", "input", "conv2d", "conv2d", "concat"] + ["channel_chunk"] * 3
    assert net._parameter_indices() == {"a.weight": 0} and list(net.parameters) == ["a.weight"]


def test_the_python_object_holds_no_copy_of_the_structure():
    net = small()
    net.layers, net.inputs, net.parameters  # fill the cache
    assert set(vars(net)) == {"_handle", "_rng", "_forms", "_cached_graph", "_lock", "_depth"}
    assert net._forms == {}
    # The cache is what the engine held at its revision; any change of structure makes it stale.
    cached = net._cached_graph
    assert cached.counts == _native.network_counts(net._handle)
    net.relu(net.outputs[0], name="late")
    assert net.layers[-1].name == "late" and net._cached_graph is not cached


def test_a_parameter_write_keeps_the_cached_structure():
    net = small()
    net.layers
    cached = net._cached_graph
    net.set_parameter("a.weight", np.ones((3, 2, 1, 1), np.float32))
    net.layers
    assert net._cached_graph is cached


def test_a_failed_step_truncates_the_engine_and_the_view_follows():
    net = small()
    before = (net.layers, net.parameters.keys(), _native.network_counts(net._handle)[:5])
    with pytest.raises(ValueError, match="groups"):
        net.conv2d(net.outputs[0], 4, 1, groups=2, name="bad")  # 2 groups do not divide 3 channels
    with pytest.raises(ValueError, match="kernel"):
        net.conv2d(net.outputs[0], 4, 9, name="bad")  # parameters added, then the node refused
    assert (net.layers, net.parameters.keys(), _native.network_counts(net._handle)[:5]) == before
    assert net.conv2d(net.outputs[0], 4, 1, name="bad").name == "bad"


def test_names_cross_the_abi_whole():
    net = kcp.Network()
    names = ["x y", "é\nz", "名前", "a" * 1000]
    x = net.input(names[0], (1, 1, 2, 2))
    for name in names[1:]:
        x = net.relu(x, name=name)
    assert [v.name for v in net._all_values()] == names
    assert [layer.inputs for layer in net.layers] == [(n,) for n in names[:-1]]
    with pytest.raises(ValueError, match="name: must be a new"):
        net.relu(x, name="é\nz")


def test_a_derived_network_reads_its_own_engine_network_and_keeps_the_forms():
    net = small()
    net._forms["a"] = {"op_type": "Example"}
    plan = kcp.plan(net, ratio=0.5)
    compact = plan.apply(net, mode="compact")
    assert [layer.name for layer in compact.layers] == [layer.name for layer in net.layers]
    assert compact._forms == {"a": {"op_type": "Example"}} and compact._forms is not net._forms
    assert compact.layers[0].parameters == ("a.weight",)
    assert compact.parameters["a.weight"].shape[0] <= 3


def test_unknown_parameters_and_name_kinds_are_refused_by_name():
    net = small()
    with pytest.raises(ValueError, match="parameters: no parameter 'nope'"):
        net.layer("linear", [net.inputs[0]], (), ["nope"])
    with pytest.raises(ValueError, match="name: no parameter 'nope'"):
        net.set_parameter("nope", np.zeros(1))
    with pytest.raises(ValueError, match="kind"):
        _native.network_names(net._handle, 2)
    with pytest.raises(ValueError, match="kind"):
        _native.network_find(net._handle, -1, "x")
    assert _native.network_find(net._handle, 0, "cat") == 4 and _native.network_find(net._handle, 1, "cat") == -1


def test_a_name_taken_between_checking_it_and_adding_the_node_is_refused():
    net = kcp.Network()
    x = net.input("x", (1, 1, 2, 2))
    name = net._name(None, "relu")
    assert net._name(None, "relu") == name  # nothing reserves a name: the engine holds the names there are
    net._node("identity", [x], name=name, reserved=True)
    with pytest.raises(ValueError, match=f"name: must be a new non-empty string, got '{name}'"):
        net._node("identity", [x], name=name, reserved=True)
