"""ONNX in and out, checked against onnxruntime.

Every network of the zoo, dense and compact, is exported, checked, run by
onnxruntime and read back; models written here with onnx.helper (not by kcp)
are imported, run against onnxruntime, pruned, exported again and run again.
Outputs agree within 1e-4 of the output's scale.
"""

import numpy as np
import pytest

import kcp

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from test_network_zoo import ZOO, inputs_for, randomize_batchnorm  # noqa: E402

FLOAT = TensorProto.FLOAT


def run_onnxruntime(model, arrays):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: a for i, a in zip(session.get_inputs(), arrays)})


def assert_close(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-4 * max(float(np.abs(e).max()), 1e-6))


def check_export(net, xs, **options):
    """Exports ``net``; onnxruntime and the re-imported network agree with its forward."""
    model = net.to_onnx(**options)
    onnx.checker.check_model(model, full_check=True)
    expected = net(*xs)
    assert_close(run_onnxruntime(model, xs), expected)
    again = kcp.from_onnx(model.SerializeToString())
    assert_close(again(*xs), expected)
    return model, again


# -- kcp -> ONNX -> kcp --------------------------------------------------------

@pytest.mark.parametrize("compact", [False, True], ids=["dense", "compact"])
@pytest.mark.parametrize("build", ZOO, ids=[f.__name__ for f in ZOO])
def test_zoo_exports_and_reimports(build, compact):
    net = build()
    randomize_batchnorm(net)
    if compact:
        net = kcp.plan(net, ratio=0.5).apply(net)
    _, again = check_export(net, inputs_for(net))
    assert [(l.name, l.op, l.attributes, l.parameters) for l in again.layers] == \
           [(l.name, l.op, l.attributes, l.parameters) for l in net.layers]
    assert again.cost() == net.cost()
    assert [v.name for v in again.inputs] == [v.name for v in net.inputs]


def every_op():
    """The ops the zoo does not use: leaky relu, mul, pools, nearest upsampling, softmax, identity."""
    net = kcp.Network(seed=8)
    x = net.leaky_relu(net.conv2d(net.input("image", (2, 3, 9, 9)), 8, 3, padding=1), 0.2)
    x = net.mul(x, net.sigmoid(net.conv2d(x, 8, 1)))
    x = net.max_pool(x, 3, 2, 1)
    x = net.avg_pool(net.conv2d(x, 8, 3, padding=1), 3, 1, 1, count_include_pad=True)
    x = net.upsample(net.avg_pool(net.identity(x), 2), 2, "nearest")
    net.output(net.softmax(net.conv2d(x, 4, 1)), net.softmax(net.linear(net.flatten(x), 3)))
    return net


@pytest.mark.parametrize("compact", [False, True], ids=["dense", "compact"])
def test_every_op_exports(compact, tmp_path):
    net = every_op()
    if compact:
        net = kcp.plan(net, ratio=0.5).apply(net)
    xs = inputs_for(net)
    model, _ = check_export(net, xs)
    resize = next(n for n in model.graph.node if n.op_type == "Resize")
    assert {a.name: helper.get_attribute_value(a) for a in resize.attribute} == {
        "mode": b"nearest", "coordinate_transformation_mode": b"asymmetric", "nearest_mode": b"floor"}
    net.to_onnx(tmp_path / "net.onnx")
    assert_close(kcp.from_onnx(tmp_path / "net.onnx")(*xs), net(*xs))


def test_stereo_ops_are_local_functions_at_opset_13():
    net = ZOO[3]()
    model, _ = check_export(net, inputs_for(net), opset=13)
    assert {(f.domain, f.name) for f in model.functions} == {("ai.kcp", "Correlation"), ("ai.kcp", "SoftArgmin")}
    for function in model.functions:
        assert all(n.domain == "" for n in function.node)
    resize = [n for n in ZOO[2]().to_onnx().graph.node if n.op_type == "Resize"]
    assert all(helper.get_attribute_value(a) in (b"linear", b"half_pixel") for n in resize for a in n.attribute)


def test_batch_is_symbolic_in_the_export():
    net = ZOO[0]()
    model = net.to_onnx()
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    xs = [np.random.default_rng(1).standard_normal((5, 3, 12, 12)).astype(np.float32)]
    assert_close(run_onnxruntime(model, xs), net(*xs))


# -- ONNX written by hand -> kcp -----------------------------------------------

def weight(shape, seed):
    rng = np.random.default_rng(seed)
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)


def batchnorm_parameters(prefix, channels, seed):
    rng = np.random.default_rng(seed)
    return {f"{prefix}.{part}": value.astype(np.float32) for part, value in (
        ("scale", rng.uniform(0.5, 1.5, channels)), ("bias", rng.normal(0, 0.5, channels)),
        ("mean", rng.normal(0, 0.5, channels)), ("var", rng.uniform(0.5, 2, channels)))}


def make_model(nodes, inputs, outputs, initializers, opset=17, check=True):
    """A checked model; ``inputs``/``outputs`` are ``(name, shape)`` pairs (shape None: 4-D, sizes unknown)."""
    def info(name, shape):
        return helper.make_tensor_value_info(name, FLOAT, [None] * 4 if shape is None else shape)

    graph = helper.make_graph(nodes, "handwritten", [info(n, s) for n, s in inputs], [info(n, s) for n, s in outputs],
                              [numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    return model


def conv(name, x, w, b=None, **attributes):
    return helper.make_node("Conv", [x, w] + ([b] if b else []), [name], name=name, **attributes)


def node(op, inputs, output, **attributes):
    return helper.make_node(op, inputs, [output], name=output, **attributes)


def residual_model():
    """conv-bn-relu chain with a residual Add, a sigmoid gate (Mul), a Constant weight, Dropout and Identity."""
    bn1, bn2 = batchnorm_parameters("bn1", 8, 1), batchnorm_parameters("bn2", 8, 2)
    w2 = helper.make_tensor("w2", FLOAT, (8, 8, 3, 3), weight((8, 8, 3, 3), 3).reshape(-1))
    nodes = [
        conv("conv1", "x", "w1", "b1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["conv1", *bn1], ["bn1_out"], name="bn1", epsilon=1e-3),
        node("Relu", ["bn1_out"], "relu1"),
        helper.make_node("Constant", [], ["w2"], name="w2_constant", value=w2),
        conv("conv2", "relu1", "w2", kernel_shape=[3, 3], auto_pad="SAME_UPPER"),
        helper.make_node("BatchNormalization", ["conv2", *bn2], ["bn2_out"], name="bn2"),
        conv("shortcut", "x", "w3", "b3"),
        node("Add", ["bn2_out", "shortcut"], "sum"),
        node("LeakyRelu", ["sum"], "act", alpha=0.1),
        helper.make_node("Dropout", ["act"], ["dropped"], name="dropout"),
        node("Sigmoid", ["dropped"], "gate"),
        node("Mul", ["dropped", "gate"], "gated"),
        node("Identity", ["gated"], "same"),
        conv("head", "same", "w4", "b4", strides=[2, 2], dilations=[2, 2], pads=[2, 1, 2, 2]),
    ]
    initializers = {"w1": weight((8, 4, 3, 3), 1), "b1": weight((8,), 2), "w3": weight((8, 4, 1, 1), 4),
                    "b3": weight((8,), 5), "w4": weight((5, 8, 3, 3), 6), "b4": weight((5,), 7), **bn1, **bn2}
    return make_model(nodes, [("x", [1, 4, 10, 10])], [("head", None)], initializers)


def gemm_head_model():
    """conv, GlobalAveragePool, Flatten, then Gemm (transB 1 with alpha and beta, and 0), MatMul + Add bias and
    Softmax; two outputs."""
    nodes = [
        conv("stem", "x", "w", "b", strides=[2, 2], auto_pad="SAME_LOWER", kernel_shape=[3, 3]),
        node("Relu", ["stem"], "relu"), node("GlobalAveragePool", ["relu"], "pooled"),
        node("Flatten", ["pooled"], "flat"),
        helper.make_node("Gemm", ["flat", "fc1.w", "fc1.b"], ["fc1"], name="fc1", transB=1, alpha=0.5, beta=2.0),
        node("Relu", ["fc1"], "fc1_relu"),
        helper.make_node("Gemm", ["fc1_relu", "fc2.w"], ["fc2"], name="fc2"),
        node("Relu", ["fc2"], "fc2_relu"),
        node("MatMul", ["fc2_relu", "fc3.w"], "fc3_matmul"), node("Add", ["fc3.b", "fc3_matmul"], "fc3"),
        node("Softmax", ["fc3"], "probabilities"),
    ]
    initializers = {"w": weight((16, 3, 3, 3), 1), "b": weight((16,), 2), "fc1.w": weight((12, 16), 3),
                    "fc1.b": weight((12,), 4), "fc2.w": weight((12, 10), 5), "fc3.w": weight((10, 6), 6),
                    "fc3.b": weight((6,), 7)}
    return make_model(nodes, [("x", [1, 3, 9, 9])], [("probabilities", [1, 6]), ("fc1", [1, 12])], initializers)


RESIZE_MODES = {"nearest_asymmetric": {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                                       "nearest_mode": "floor"},
                "nearest_default": {"mode": "nearest"},
                "linear_half_pixel": {"mode": "linear", "coordinate_transformation_mode": "half_pixel"},
                "linear_pytorch": {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}}


def concat_resize_model(mode):
    """An encoder-decoder: MaxPool down, Resize up (scales, then sizes), Concat skips."""
    nodes = [
        conv("e1", "x", "w1", "b1", pads=[1, 1, 1, 1]), node("Relu", ["e1"], "e1_relu"),
        node("MaxPool", ["e1_relu"], "down", kernel_shape=[2, 2], strides=[2, 2]),
        conv("e2", "down", "w2", "b2", pads=[1, 1, 1, 1]), node("Relu", ["e2"], "e2_relu"),
        helper.make_node("Resize", ["e2_relu", "", "scales"], ["up"], name="up", **RESIZE_MODES[mode]),
        helper.make_node("Concat", ["up", "e1_relu"], ["skip"], name="skip", axis=-3),
        conv("d1", "skip", "w3", "b3", pads=[1, 1, 1, 1]), node("Relu", ["d1"], "d1_relu"),
        helper.make_node("Resize", ["d1_relu", "", "", "sizes"], ["up2"], name="up2", **RESIZE_MODES[mode]),
        helper.make_node("Concat", ["up2", "x2"], ["skip2"], name="skip2", axis=1),
        conv("out", "skip2", "w4", "b4"),
    ]
    initializers = {"w1": weight((8, 3, 3, 3), 1), "b1": weight((8,), 2), "w2": weight((12, 8, 3, 3), 3),
                    "b2": weight((12,), 4), "w3": weight((6, 20, 3, 3), 5), "b3": weight((6,), 6),
                    "w4": weight((2, 9, 1, 1), 7), "b4": weight((2,), 8),
                    "scales": np.array([1, 1, 2, 2], np.float32), "sizes": np.array([1, 6, 36, 36], np.int64)}
    return make_model(nodes, [("x", [1, 3, 12, 12]), ("x2", [1, 3, 36, 36])], [("out", None)], initializers)


POOLS = {
    "max_k3s2p1": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "max_ceil": ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
    "max_asymmetric_pads": ("MaxPool", {"kernel_shape": [3, 2], "strides": [1, 2], "pads": [0, 1, 1, 0]}),
    "max_same_upper": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    "avg_exclude_pad": ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    "avg_include_pad": ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    "avg_ceil": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    "avg_valid": ("AveragePool", {"kernel_shape": [2, 3], "strides": [2, 1], "auto_pad": "VALID"}),
}


def pool_model(variant):
    op, attributes = POOLS[variant]
    nodes = [conv("c1", "x", "w1", "b1", pads=[1, 1, 1, 1]), node("Relu", ["c1"], "r1"),
             helper.make_node(op, ["r1"], ["pool"], name="pool", **attributes), conv("c2", "pool", "w2", "b2")]
    initializers = {"w1": weight((8, 3, 3, 3), 1), "b1": weight((8,), 2), "w2": weight((4, 8, 1, 1), 3),
                    "b2": weight((4,), 4)}
    return make_model(nodes, [("x", [1, 3, 11, 11])], [("c2", None)], initializers)


def shared_model():
    """One initializer pair used by two Convs (a Siamese extractor, once through an Identity), then a fusion conv.
    The second pair shares only its weight."""
    nodes = [conv("left_conv", "left", "w", "b", pads=[1, 1, 1, 1]), node("Relu", ["left_conv"], "left_relu"),
             node("Identity", ["w"], "w_alias"),  # how PyTorch exports a reused weight
             conv("right_conv", "right", "w_alias", "b", pads=[1, 1, 1, 1]), node("Relu", ["right_conv"], "right_relu"),
             conv("left_conv2", "left_relu", "w2", "b2"), conv("right_conv2", "right_relu", "w2", "b2_right"),
             node("Add", ["left_conv2", "right_conv2"], "sum"), conv("fuse", "sum", "w3", "b3")]
    initializers = {"w": weight((8, 3, 3, 3), 1), "b": weight((8,), 2), "w2": weight((8, 8, 1, 1), 3),
                    "b2": weight((8,), 4), "b2_right": weight((8,), 5), "w3": weight((2, 8, 1, 1), 6),
                    "b3": weight((2,), 7)}
    return make_model(nodes, [("left", [1, 3, 8, 8]), ("right", [1, 3, 8, 8])], [("fuse", None)], initializers)


def symbolic_batch_model():
    nodes = [conv("c1", "x", "w1", "b1", pads=[1, 1, 1, 1]), node("Relu", ["c1"], "r1"),
             conv("c2", "r1", "w2", "b2"), node("Flatten", ["c2"], "flat")]
    initializers = {"w1": weight((6, 2, 3, 3), 1), "b1": weight((6,), 2), "w2": weight((3, 6, 1, 1), 3),
                    "b2": weight((3,), 4)}
    return make_model(nodes, [("x", ["N", 2, 5, 5])], [("flat", ["N", 75])], initializers)


HANDWRITTEN = {"residual": residual_model, "gemm_head": gemm_head_model, "shared": shared_model,
               "symbolic_batch": symbolic_batch_model,
               **{f"resize_{m}": (lambda m=m: concat_resize_model(m)) for m in RESIZE_MODES},
               **{f"pool_{v}": (lambda v=v: pool_model(v)) for v in POOLS}}


@pytest.mark.parametrize("build", HANDWRITTEN.values(), ids=HANDWRITTEN.keys())
def test_handwritten_model_imports_runs_and_prunes(build):
    model = build()
    net = kcp.from_onnx(model)
    batch = 3 if build is symbolic_batch_model else 1
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((batch, *v.shape[1:])).astype(np.float32) for v in net.inputs]
    assert_close(net(*xs), run_onnxruntime(model, xs))
    compact = kcp.plan(net, ratio=0.5).apply(net)
    assert compact.cost()[1] < net.cost()[1]
    exported = compact.to_onnx()
    onnx.checker.check_model(exported, full_check=True)
    assert_close(run_onnxruntime(exported, xs), compact(*xs))


def test_import_keeps_names_and_shares_initializers():
    net = kcp.from_onnx(shared_model())
    layers = {l.name: l for l in net.layers}
    assert layers["left_conv"].parameters == layers["right_conv"].parameters == ("w", "b")
    assert layers["left_conv2"].parameters == ("w2", "b2") and layers["right_conv2"].parameters == ("w2", "b2_right")
    assert [v.name for v in net.inputs] == ["left", "right"] and net.inputs[0].shape == (1, 3, 8, 8)
    compact = kcp.plan(net, ratio=0.5).apply(net)
    assert compact.parameters["w"].shape[0] == 4 and compact.parameters["w2"].shape == (4, 4, 1, 1)
    names = {l.name for l in kcp.from_onnx(gemm_head_model()).layers}
    assert {"stem", "fc1", "fc2", "fc3_matmul", "probabilities"} <= names and "fc3" not in names
    assert kcp.from_onnx(symbolic_batch_model()).inputs[0].shape == (1, 2, 5, 5)


# -- errors ----------------------------------------------------------------------

def one_conv_then(op_nodes, initializers=None, input_shape=(1, 3, 8, 8), opset=17):
    nodes = [conv("c1", "x", "w", "b", pads=[1, 1, 1, 1]), *op_nodes]
    values = {"w": weight((4, 3, 3, 3), 1), "b": weight((4,), 2), **(initializers or {})}
    return make_model(nodes, [("x", list(input_shape))], [(op_nodes[-1].output[0] if op_nodes else "c1", None)],
                      values, opset, check=False)


def import_error(source):
    with pytest.raises(ValueError) as info:
        kcp.from_onnx(source)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("op", ["LRN", "LSTM"])
def test_unsupported_op_names_the_op_and_the_node(op):
    message = import_error(one_conv_then([helper.make_node(op, ["c1"], ["y"], name="mystery", hidden_size=2)
                                          if op == "LSTM" else helper.make_node(op, ["c1"], ["y"], name="mystery", size=3)]))
    assert op in message and "'mystery'" in message


@pytest.mark.parametrize(("nodes", "expected"), [
    ([helper.make_node("Resize", ["c1", "", "s"], ["y"], name="r", mode="cubic")], "'r' (Resize): mode 'cubic'"),
    ([helper.make_node("Resize", ["c1", "", "s"], ["y"], name="r", mode="linear",
                       coordinate_transformation_mode="asymmetric")], "'asymmetric'"),
    ([helper.make_node("Resize", ["c1", "", "s3"], ["y"], name="r")], "'r' (Resize): kcp resizes H and W only"),
    ([helper.make_node("Concat", ["c1", "c1"], ["y"], name="cat", axis=2)], "'cat' (Concat): only axis 1"),
    ([helper.make_node("Reshape", ["c1", "shape"], ["y"], name="view")], "'view' (Reshape): kcp reads a Reshape"),
    ([helper.make_node("Add", ["c1", "b"], ["y"], name="plus")], "'plus' (Add)"),
    ([helper.make_node("Conv", ["c1", "w_missing"], ["y"], name="c2")], "'w_missing'"),
    ([helper.make_node("Conv", ["c1", "w"], ["y"], name="c2", strides=1.5)], "'c2' (Conv): malformed"),
    ([helper.make_node("LRN", ["c1"], ["y"], name="line\nbreak", size=3)], "'line\\nbreak'"),
])
def test_unsupported_forms_name_the_node(nodes, expected):
    initializers = {"s": np.array([1, 1, 2, 2], np.float32), "s3": np.array([1, 2, 2, 2], np.float32),
                    "shape": np.array([1, 4, 64], np.int64)}
    assert expected in import_error(one_conv_then(nodes, initializers))


def test_unreadable_files_give_one_line_errors(tmp_path):
    assert "not an ONNX model" in import_error(b"definitely not an onnx model")
    assert "not an ONNX model" in import_error(b"")
    data = residual_model().SerializeToString()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    message = import_error(tmp_path / "truncated.onnx")
    assert "truncated.onnx" in message and "not an ONNX model" in message
    assert "cannot read" in import_error(str(tmp_path / "missing.onnx"))
    with pytest.raises(TypeError):
        kcp.from_onnx(42)


def test_missing_initializer_and_dynamic_shapes_are_reported():
    model = residual_model()
    del model.graph.initializer[0]  # w1
    assert "'w1'" in import_error(model) and "missing initializer" in import_error(model)
    assert "dimension 2 is dynamic (H)" in import_error(one_conv_then([], input_shape=("N", 3, "H", 8)))
    assert "opset 13" in import_error(one_conv_then([], opset=11))
    assert "dynamic" in import_error(one_conv_then([], input_shape=(1, 3, 8, None)))


def test_upsample_is_read_as_nearest():
    model = one_conv_then([helper.make_node("Upsample", ["c1", "s"], ["y"], name="up", mode="nearest")],
                          {"s": np.array([1, 1, 3, 3], np.float32)})
    net = kcp.from_onnx(model)
    assert net.layers[-1].op == "resize" and net.layers[-1].attributes == (24, 24, 0, 0)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    y = net(x)[0]
    np.testing.assert_array_equal(y, np.repeat(np.repeat(y[:, :, ::3, ::3], 3, 2), 3, 3))
