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


def conv_transpose_model():
    """A decoder of ConvTranspose nodes: stride 2 with asymmetric pads and output_padding, a grouped one
    (dilation 2, no bias) after a skip Concat, and a depthwise one (multiplier 2)."""
    nodes = [conv("c1", "x", "w1", "b1", pads=[1, 1, 1, 1]), node("Relu", ["c1"], "r1"),
             conv("c2", "r1", "w2", "b2", pads=[1, 1, 1, 1], strides=[2, 2]), node("Relu", ["c2"], "r2"),
             helper.make_node("ConvTranspose", ["r2", "t1", "tb1"], ["u1"], name="u1", strides=[2, 2],
                              pads=[1, 0, 1, 2], output_padding=[1, 1], kernel_shape=[3, 3]),
             node("Relu", ["u1"], "ru1"), node("Concat", ["ru1", "r1"], "cat", axis=1),
             helper.make_node("ConvTranspose", ["cat", "t2"], ["u2"], name="u2", pads=[2, 2, 2, 2],
                              dilations=[2, 2], group=2),
             node("Relu", ["u2"], "ru2"),
             helper.make_node("ConvTranspose", ["ru2", "t3", "tb3"], ["u3"], name="u3", strides=[2, 2], group=6),
             node("Relu", ["u3"], "ru3"), conv("out", "ru3", "w4", "b4")]
    initializers = {"w1": weight((8, 3, 3, 3), 1), "b1": weight((8,), 2), "w2": weight((12, 8, 3, 3), 3),
                    "b2": weight((12,), 4), "t1": weight((12, 6, 3, 3), 5), "tb1": weight((6,), 6),
                    "t2": weight((14, 3, 3, 3), 7), "t3": weight((6, 2, 2, 2), 8), "tb3": weight((12,), 9),
                    "w4": weight((4, 12, 1, 1), 10), "b4": weight((4,), 11)}
    return make_model(nodes, [("x", ["N", 3, 8, 8])], [("out", None)], initializers)


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


def test_conv_transpose_imports_runs_exports_and_prunes():
    net = check_everywhere(conv_transpose_model())
    ups = {layer.name: [int(a) for a in layer.attributes] for layer in net.layers if layer.op == "conv_transpose2d"}
    assert ups == {"u1": [2, 2, 1, 0, 1, 2, 1, 1, 1, 1, 1], "u2": [1, 1, 2, 2, 2, 2, 0, 0, 2, 2, 2],
                   "u3": [2, 2, 0, 0, 0, 0, 0, 0, 1, 1, 6]}
    compact = kcp.plan(net, ratio=0.5).apply(net)
    assert compact.parameters["t3"].shape[1] == 2 and next(
        layer for layer in compact.layers if layer.name == "u3").attributes[-1] == compact.parameters["t3"].shape[0]


@pytest.mark.parametrize("op", ["LRN", "LSTM"])
def test_unsupported_op_names_the_op_and_the_node(op):
    attributes = {"hidden_size": 2} if op == "LSTM" else {"size": 3}
    message = import_error(one_conv_then([helper.make_node(op, ["c1"], ["y"], name="mystery", **attributes)]))
    assert op in message and "'mystery'" in message


@pytest.mark.parametrize(("nodes", "expected"), [
    ([helper.make_node("Resize", ["c1", "", "s"], ["y"], name="r", mode="cubic")], "'r' (Resize): mode 'cubic'"),
    ([helper.make_node("Resize", ["c1", "", "s"], ["y"], name="r", mode="linear",
                       coordinate_transformation_mode="asymmetric")], "'asymmetric'"),
    ([helper.make_node("Resize", ["c1", "", "s3"], ["y"], name="r")], "'r' (Resize): kcp resizes the spatial axes only"),
    ([helper.make_node("Concat", ["c1", "c1"], ["y"], name="cat", axis=2)], "'cat' (Concat): only axis 1"),
    ([helper.make_node("Reshape", ["c1", "shape"], ["y"], name="view")], "'view' (Reshape): kcp reads a Reshape"),
    ([helper.make_node("Add", ["c1", "b"], ["y"], name="plus")], "'plus' (Add)"),
    ([helper.make_node("Conv", ["c1", "w_missing"], ["y"], name="c2")], "'w_missing'"),
    ([helper.make_node("Conv", ["c1", "w"], ["y"], name="c2", strides=1.5)], "'c2' (Conv): malformed"),
    ([helper.make_node("LRN", ["c1"], ["y"], name="line\nbreak", size=3)], "'line\\nbreak'"),
    ([helper.make_node("ConvTranspose", ["c1", "w"], ["y"], name="up", output_shape=[9, 9])],
     "'up' (ConvTranspose): output_shape"),
])
def test_unsupported_forms_name_the_node(nodes, expected):
    initializers = {"s": np.array([1, 1, 2, 2], np.float32), "s3": np.array([1, 2, 2, 2], np.float32),
                    "shape": np.array([1, 64, 4], np.int64)}
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


# -- constant folding ------------------------------------------------------------

INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


def ints(*values):
    return np.array(values, np.int64)


FOLDING_CASES = {
    "div_truncates": ("Div", [ints(-7, 7, -8, 9), ints(2, -2, 3, 3)], {}),
    "div_float": ("Div", [np.array([1, -3], np.float32), np.array([4, 2], np.float32)], {}),
    "mod": ("Mod", [ints(-7, 7, 5), ints(3, -3, 5)], {}),
    "fmod": ("Mod", [np.array([-7.5, 7.5], np.float32), np.array([2, -2], np.float32)], {"fmod": 1}),
    "mul_sub_add": ("Mul", [ints(2, 3), ints(4)], {}),
    "floor": ("Floor", [np.array([-1.5, 1.5, 2.0], np.float32)], {}),
    "ceil": ("Ceil", [np.array([-1.5, 1.5, 2.0], np.float32)], {}),
    "sqrt": ("Sqrt", [np.array([4, 2], np.float32)], {}),
    "slice_reversed": ("Slice", [np.arange(24).reshape(2, 3, 4), ints(-1), ints(INT64_MIN + 1), ints(2), ints(-1)], {}),
    "slice_axes": ("Slice", [np.arange(24).reshape(2, 3, 4), ints(0, 1), ints(INT64_MAX, 3), ints(0, -2)], {}),
    "slice_step": ("Slice", [np.arange(10), ints(1), ints(9), ints(0), ints(3)], {}),
    "reshape_zero_minus_one": ("Reshape", [np.arange(24).reshape(2, 3, 4), ints(0, -1)], {}),
    "reshape_allowzero": ("Reshape", [np.zeros((0, 3)), ints(3, 0)], {"allowzero": 1}),
    "unsqueeze": ("Unsqueeze", [ints(1, 2, 3), ints(0, -1)], {}),
    "squeeze": ("Squeeze", [np.zeros((3, 1, 2, 1)), ints(1)], {}),
    "squeeze_all": ("Squeeze", [np.zeros((3, 1, 2, 1))], {}),
    "gather_scalar": ("Gather", [ints(5, 6, 7, 8), np.array(-1, np.int64)], {}),
    "gather_axis1": ("Gather", [np.arange(6).reshape(3, 2), ints(1, 0, 1)], {"axis": 1}),
    "concat": ("Concat", [ints(1, 2), ints(3)], {"axis": 0}),
    "cast": ("Cast", [np.array([1.7, -1.7, 2.5], np.float32)], {"to": TensorProto.INT64}),
    "cast_float": ("Cast", [ints(3, -2)], {"to": TensorProto.FLOAT}),
    "shape_range": ("Shape", [np.zeros((2, 3, 4, 5), np.float32)], {"start": 1, "end": -1}),
    "size": ("Size", [np.zeros((2, 3, 4), np.float32)], {}),
    "expand": ("Expand", [np.arange(3).reshape(3, 1), ints(2, 1, 4)], {}),
    "constant_of_shape": ("ConstantOfShape", [ints(2, 3)], {"value": numpy_helper.from_array(ints(7))}),
    "constant_of_shape_default": ("ConstantOfShape", [ints(4)], {}),
    "range": ("Range", [np.array(1, np.int64), np.array(10, np.int64), np.array(3, np.int64)], {}),
    "range_float": ("Range", [np.array(0, np.float32), np.array(1, np.float32), np.array(0.25, np.float32)], {}),
    "range_down": ("Range", [np.array(5, np.int64), np.array(0, np.int64), np.array(-2, np.int64)], {}),
    "where": ("Where", [np.array([True, False]), ints(1, 2), ints(3, 4)], {}),
    "equal": ("Equal", [ints(1, 2), ints(1, 3)], {}),
    "tile": ("Tile", [ints(1, 2), ints(3)], {}),
    "transpose": ("Transpose", [np.arange(6).reshape(2, 3)], {"perm": [1, 0]}),
    "flatten": ("Flatten", [np.zeros((2, 3, 4))], {"axis": 2}),
    "reduce_prod": ("ReduceProd", [np.arange(1, 7).reshape(2, 3)], {"axes": [1], "keepdims": 0}),
    "reduce_sum": ("ReduceSum", [np.arange(6).reshape(2, 3), ints(0)], {}),
    "clip": ("Clip", [ints(-5, 3, 9), np.array(0, np.int64), np.array(4, np.int64)], {}),
    "max": ("Max", [ints(1, 5), ints(3, 2), ints(0)], {}),
    "split": ("Split", [np.arange(6), ints(2, 4)], {"axis": 0}),
    "neg_abs": ("Abs", [ints(-3, 2)], {}),
}


@pytest.mark.parametrize("case", FOLDING_CASES, ids=FOLDING_CASES)
def test_folding_agrees_with_the_onnx_reference(case):
    from onnx.reference import ReferenceEvaluator

    from kcp.onnx import folding

    op, inputs, attributes = FOLDING_CASES[case]
    names = [f"in{k}" for k in range(len(inputs))]
    outputs = ["out0", "out1"] if op == "Split" else ["out0"]
    graph = helper.make_graph(
        [helper.make_node(op, names, outputs, **attributes)], "one",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
         for n, a in zip(names, inputs)], [helper.make_empty_tensor_value_info(o) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    expected = ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))
    got = folding.evaluate(op, list(inputs), {k: v for k, v in attributes.items()})
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_array_equal(g, e)


def test_folding_refuses_huge_constants():
    from kcp.onnx import folding

    with pytest.raises(folding.FoldingError, match="more than"):
        folding.evaluate("ConstantOfShape", [ints(1 << 13, 1 << 13)], {})
    with pytest.raises(folding.FoldingError, match="delta 0"):
        folding.evaluate("Range", [np.array(0), np.array(5), np.array(0)], {})


def shape_of(prefix, x, start, end):
    """PyTorch's ``x.shape[start:end]``: Shape then Slice."""
    return [node("Shape", [x], f"{prefix}.shape"),
            node("Slice", [f"{prefix}.shape", f"{prefix}.start", f"{prefix}.end"], prefix)], \
        {f"{prefix}.start": ints(start), f"{prefix}.end": ints(end)}


def view_model():
    """``x.view(x.size(0), -1)`` as PyTorch writes it (Shape, Gather, Unsqueeze, Concat, Reshape), batch symbolic."""
    nodes = [conv("c1", "x", "w1", "b1", pads=[1, 1, 1, 1]), node("Relu", ["c1"], "r1"),
             node("Shape", ["r1"], "shape"), node("Gather", ["shape", "zero"], "n", axis=0),
             node("Unsqueeze", ["n", "axis0"], "n1"), node("Concat", ["n1", "minus_one"], "target", axis=0),
             node("Reshape", ["r1", "target"], "flat"),
             helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["fc"], name="fc", transB=1)]
    initializers = {"w1": weight((6, 3, 3, 3), 1), "b1": weight((6,), 2), "fc.w": weight((5, 6 * 7 * 7), 3),
                    "fc.b": weight((5,), 4), "zero": np.array(0, np.int64), "axis0": ints(0),
                    "minus_one": ints(-1)}
    return make_model(nodes, [("x", ["N", 3, 7, 7])], [("fc", ["N", 5])], initializers)


def torch_pad(prefix, pads):
    """The chain PyTorch writes for ``F.pad``'s pads: ConstantOfShape, Concat, Reshape, a reversing Slice,
    Transpose, Reshape, Cast."""
    p = prefix
    nodes = [helper.make_node("ConstantOfShape", [f"{p}.four"], [f"{p}.zeros"], name=f"{p}.zeros",
                              value=numpy_helper.from_array(ints(0))),
             node("Concat", [f"{p}.given", f"{p}.zeros"], f"{p}.all", axis=0),
             node("Reshape", [f"{p}.all", f"{p}.pairs_shape"], f"{p}.pairs"),
             node("Slice", [f"{p}.pairs", f"{p}.minus_one", f"{p}.most_negative", f"{p}.zero_axis",
                            f"{p}.minus_one"], f"{p}.reversed"),
             node("Transpose", [f"{p}.reversed"], f"{p}.transposed", perm=[1, 0]),
             node("Reshape", [f"{p}.transposed", f"{p}.minus_one"], f"{p}.flat"),
             node("Cast", [f"{p}.flat"], f"{p}.pads", to=TensorProto.INT64)]
    initializers = {f"{p}.four": ints(4), f"{p}.given": ints(*pads), f"{p}.pairs_shape": ints(-1, 2),
                    f"{p}.minus_one": ints(-1), f"{p}.most_negative": ints(INT64_MIN + 1), f"{p}.zero_axis": ints(0)}
    return nodes, initializers


def padded_model(mode):
    """``F.pad(x, (1, 2, 0, 1), mode)`` before a Conv (zero pads fold into it) or, for ``"before_pool"``, a MaxPool."""
    pad_nodes, initializers = torch_pad("pad", (1, 2, 0, 1))
    onnx_mode = "constant" if mode in ("zero", "before_pool") else mode
    follow = (node("MaxPool", ["padded"], "c2", kernel_shape=[2, 2]) if mode == "before_pool"
              else conv("c2", "padded", "w2", "b2"))
    nodes = [conv("c1", "x", "w1", "b1"), node("Relu", ["c1"], "r1"), *pad_nodes,
             helper.make_node("Pad", ["r1", "pad.pads"], ["padded"], name="pad", mode=onnx_mode), follow,
             conv("out", "c2", "w3", "b3")]
    initializers.update({"w1": weight((8, 3, 1, 1), 1), "b1": weight((8,), 2), "w2": weight((8, 8, 3, 3), 3),
                         "b2": weight((8,), 4), "w3": weight((4, 8, 1, 1), 5), "b3": weight((4,), 6)})
    return make_model(nodes, [("x", ["N", 3, 8, 8])], [("out", None)], initializers)


def computed_resize_model():
    """Resize to sizes ``x.shape[:2] + 2 * x.shape[2:]`` and by scales ``1.5 = 12 / 8`` computed from shapes."""
    nodes_a, init_a = shape_of("nc", "r1", 0, 2)
    nodes_b, init_b = shape_of("hw", "r1", 2, 4)
    nodes = [conv("c1", "x", "w1", "b1", pads=[1, 1, 1, 1]), node("Relu", ["c1"], "r1"), *nodes_a, *nodes_b,
             node("Mul", ["hw", "two"], "hw2"), node("Concat", ["nc", "hw2"], "sizes", axis=0),
             helper.make_node("Resize", ["r1", "", "", "sizes"], ["up"], name="up", mode="linear"),
             node("Cast", ["hw", ], "hw_float", to=TensorProto.FLOAT), node("Div", ["twelve", "hw_float"], "ratio"),
             node("Concat", ["ones", "ratio"], "scales", axis=0),
             helper.make_node("Resize", ["r1", "", "scales"], ["up2"], name="up2", mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             conv("out", "up", "w2", "b2"), conv("out2", "up2", "w3", "b3")]
    initializers = {**init_a, **init_b, "w1": weight((6, 3, 3, 3), 1), "b1": weight((6,), 2),
                    "w2": weight((4, 6, 1, 1), 3), "b2": weight((4,), 4), "w3": weight((3, 6, 1, 1), 5),
                    "b3": weight((3,), 6), "two": ints(2), "twelve": np.array(12, np.float32),
                    "ones": np.ones(2, np.float32)}
    return make_model(nodes, [("x", ["N", 3, 8, 8])], [("out", None), ("out2", None)], initializers)


def check_everywhere(model, batch=2, ratio=0.5, prunable=True):
    """Imports ``model``; the native network (where it runs), kcp's export (at
    the model's opset), and the masked and compact networks' exports agree
    with onnxruntime and each other. The plan cuts MACs, or, where
    ``prunable`` is false, cuts nothing."""
    net = kcp.from_onnx(model)
    opset = model.opset_import[0].version
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((batch, *v.shape[1:])).astype(np.float32) for v in net.inputs]
    expected = run_onnxruntime(model, xs)
    native = all(layer.op != "channelwise" for layer in net.layers)
    if native:
        assert_close(net(*xs), expected)
    again = net.to_onnx(opset=opset)
    onnx.checker.check_model(again, full_check=True)
    assert_close(run_onnxruntime(again, xs), expected)
    chosen = kcp.plan(net, ratio=ratio)
    masked, compact = chosen.apply(net, "mask"), chosen.apply(net, "compact")
    assert (compact.cost()[1] < net.cost()[1]) == prunable
    masked_out = run_onnxruntime(masked.to_onnx(opset=opset), xs)
    compact_out = run_onnxruntime(compact.to_onnx(opset=opset), xs)
    assert_close(compact_out, masked_out)
    if native:
        assert_close(compact(*xs), compact_out)
        assert_close(masked(*xs), masked_out)
    return net


def kinds(net):
    """The layers but convs, as op names (activations and binary ops by kind, channelwise by the ONNX op)."""
    from kcp.network import ACTIVATIONS, BINARY

    from kcp.onnx.format import recall_form

    names = {"activation": {c: k for k, c in ACTIVATIONS.items()}, "binary": {c: k for k, c in BINARY.items()}}
    found = []
    for layer in net.layers:
        if layer.op in names:
            found.append(names[layer.op][int(layer.attributes[0])])
        elif layer.op == "channelwise":
            found.append(f"channelwise:{recall_form(net, layer.name)['op_type']}")
        elif layer.op != "conv2d":
            found.append(layer.op)
    return found


def test_shape_arithmetic_folds_to_a_flatten():
    net = check_everywhere(view_model(), batch=3)
    assert kinds(net) == ["relu", "flatten", "linear"]


@pytest.mark.parametrize("mode", ["zero", "reflect", "edge", "before_pool"])
def test_pytorch_pads_fold(mode):
    net = check_everywhere(padded_model(mode))
    if mode == "zero":
        assert kinds(net) == ["relu"] and net.layers[2].attributes[2:6] == (0, 1, 1, 2)
    else:
        assert kinds(net)[:2] == ["relu", "channelwise:Pad"]


def test_resize_sizes_and_scales_computed_from_shapes():
    net = check_everywhere(computed_resize_model())
    resized = [layer.attributes for layer in net.layers if layer.op == "resize"]
    assert resized == [(16, 16, 1, 0), (12, 12, 0, 0)]


def test_folding_errors_name_the_node():
    big = helper.make_node("ConstantOfShape", ["huge"], ["zeros"], name="big")
    message = import_error(one_conv_then([big, node("Add", ["c1", "zeros"], "y")], {"huge": ints(1 << 13, 1 << 13)}))
    assert "'big' (ConstantOfShape)" in message and "more than" in message
    message = import_error(one_conv_then([node("Shape", ["c1"], "s"), node("Gather", ["c1", "s"], "y")]))
    assert "'y' (Gather): unsupported op type 'Gather'" in message


# -- ops read from ONNX ------------------------------------------------------------

def between_convs(op_nodes, initializers=None, opset=17, head="conv", size=8):
    """``x [N, 3, size, size]`` -> Conv ``c1`` (8 channels) -> ``op_nodes`` (reading ``c1``, ending in ``y``)
    -> a 1x1 Conv (``head="conv"``) or a Gemm (``head="gemm"``, for a 2-D ``y``)."""
    final = (conv("out", "y", "w2", "b2") if head == "conv"
             else helper.make_node("Gemm", ["y", "fc.w", "fc.b"], ["out"], name="out", transB=1))
    values = {"w1": weight((8, 3, 3, 3), 1), "b1": weight((8,), 2), "w2": weight((4, 8, 1, 1), 3),
              "b2": weight((4,), 4), "fc.w": weight((4, 8), 5), "fc.b": weight((4,), 6), **(initializers or {})}
    used = {name for n in [conv("c1", "x", "w1", "b1"), *op_nodes, final] for name in n.input}
    return make_model([conv("c1", "x", "w1", "b1", pads=[1, 1, 1, 1]), *op_nodes, final],
                      [("x", ["N", 3, size, size])], [("out", None if head == "conv" else ["N", 4])],
                      {k: v for k, v in values.items() if k in used}, opset)


def scalar(value):
    return np.array(value, np.float32)


def per_channel(seed, shape=(8, 1, 1), low=0.5, high=1.5):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def se_gate(op):
    """A squeeze-excitation gate: ``c1 op Sigmoid(conv(GlobalAveragePool(c1)))`` ([N, 8, 1, 1] against [N, 8, H, W])."""
    return [node("GlobalAveragePool", ["c1"], "pooled"), conv("squeeze", "pooled", "ws", "bs"),
            node("Sigmoid", ["squeeze"], "gate"), node(op, ["c1", "gate"], "y")]


def channels_last(op_nodes, last, after=()):
    """``op_nodes`` between a Transpose of ``c1`` to channels-last (``last``) and one back (``back``) from
    ``last``, then ``after`` (ending in ``y``; default: ``back`` is ``y``)."""
    back = "back" if after else "y"
    return [node("Transpose", ["c1"], "last", perm=[0, 2, 3, 1]), *op_nodes,
            node("Transpose", [last], back, perm=[0, 3, 1, 2]), *after]


AFFINE = {"scale": per_channel(21, (8,)), "shift": per_channel(22, (8,), -0.5, 0.5)}
AFFINE_3D = {name: value.reshape(8, 1, 1) for name, value in AFFINE.items()}


def layer_norm_written_out(x, out, axis, axes_input=False, twice=False):
    """LayerNorm of ``x`` over ``axis`` as PyTorch writes it before opset 17 (ReduceMean, Sub, Pow, ReduceMean,
    Add, Sqrt, Div, Mul, Add; ``axes_input``: the axes as an input, from opset 18; ``twice``: ``x - mean``
    computed again for the Div, as ConvNeXt's own LayerNorm reads)."""
    def mean(a, output):
        return node("ReduceMean", [a, "axes"], output) if axes_input else node("ReduceMean", [a], output, axes=[axis])

    again = [node("Sub", [x, "mean"], "centred_again")] if twice else []
    return [mean(x, "mean"), node("Sub", [x, "mean"], "centred"), *again, node("Pow", ["centred", "two"], "square"),
            mean("square", "variance"), node("Add", ["variance", "epsilon"], "shifted"),
            node("Sqrt", ["shifted"], "root"),
            node("Div", [again[0].output[0] if twice else "centred", "root"], "normed"),
            node("Mul", ["scale", "normed"], "scaled"),
            node("Add", ["scaled", "shift"], out)]


WRITTEN_OUT = {"two": scalar(2), "epsilon": scalar(1e-6), "axes": ints(-1)}


def group_norm_pytorch(per_channel_affine=True):
    """GroupNorm of ``c1`` in 4 groups as torch.onnx.export writes it before opset 18: the affine per channel
    after the Reshape back (or, without ``per_channel_affine``, per group in the InstanceNormalization)."""
    back = "back" if per_channel_affine else "y"
    return [node("Reshape", ["c1", "view"], "grouped"), node("Shape", ["c1"], "shape"),
            node("InstanceNormalization", ["grouped", "scale4", "shift4"], "normed"),
            node("Reshape", ["normed", "shape"], back),
            *([node("Mul", [back, "scale"], "scaled"), node("Add", ["scaled", "shift"], "y")] * per_channel_affine)]


GELU_TAIL = {  # the nodes after Erf's Add: x * a * 0.5 in the orders exporters write
    "gelu_pattern": [node("Mul", ["c1", "erf1"], "xa"), node("Mul", ["xa", "half"], "y")],
    "gelu_pattern_half_first": [node("Mul", ["erf1", "half"], "ah"), node("Mul", ["c1", "ah"], "y")],
}
OP_CASES = {
    # name: (nodes after c1, initializers, opset, head, kinds expected after the first conv)
    "relu6": ([node("Clip", ["c1", "zero", "six"], "y")], {"zero": scalar(0), "six": scalar(6)}, 17, "conv",
              ["clip"]),
    "clip_min": ([node("Clip", ["c1", "low"], "y")], {"low": scalar(-0.2)}, 17, "conv", ["clip"]),
    "clip_max": ([node("Clip", ["c1", "", "high"], "y")], {"high": scalar(0.3)}, 17, "conv", ["clip"]),
    "clip_as_relu": ([node("Clip", ["c1", "zero"], "y")], {"zero": scalar(0)}, 17, "conv", ["relu"]),
    "hardswish": ([node("HardSwish", ["c1"], "y")], {}, 17, "conv", ["hardswish"]),
    "hardsigmoid": ([node("HardSigmoid", ["c1"], "y", alpha=0.3, beta=0.4)], {}, 17, "conv", ["hardsigmoid"]),
    "tanh": ([node("Tanh", ["c1"], "y")], {}, 17, "conv", ["tanh"]),
    "elu": ([node("Elu", ["c1"], "y", alpha=0.7)], {}, 17, "conv", ["elu"]),
    "leaky_relu": ([node("LeakyRelu", ["c1"], "y", alpha=0.2)], {}, 17, "conv", ["leaky_relu"]),
    "softplus": ([node("Softplus", ["c1"], "y")], {}, 17, "conv", ["softplus"]),
    "mish": ([node("Mish", ["c1"], "y")], {}, 18, "conv", ["mish"]),
    "gelu": ([node("Gelu", ["c1"], "y")], {}, 20, "conv", ["gelu"]),
    "gelu_tanh": ([node("Gelu", ["c1"], "y", approximate="tanh")], {}, 20, "conv", ["gelu_tanh"]),
    "silu_pattern": ([node("Sigmoid", ["c1"], "s"), node("Mul", ["s", "c1"], "y")], {}, 17, "conv", ["silu"]),
    "mish_pattern": ([node("Softplus", ["c1"], "sp"), node("Tanh", ["sp"], "t"), node("Mul", ["c1", "t"], "y")], {},
                     17, "conv", ["mish"]),
    **{name: ([helper.make_node("Constant", [], ["sqrt2"], value=numpy_helper.from_array(scalar(np.sqrt(2)))),
               node("Div", ["c1", "sqrt2"], "scaled"), node("Erf", ["scaled"], "erf"),
               helper.make_node("Constant", [], ["one"], value=numpy_helper.from_array(scalar(1))),
               node("Add", ["erf", "one"], "erf1"),
               helper.make_node("Constant", [], ["half"], value=numpy_helper.from_array(scalar(0.5))), *tail],
              {}, 17, "conv", ["gelu"])  # Constant nodes where PyTorch writes them
       for name, tail in GELU_TAIL.items()},
    "gelu_pattern_mul": ([node("Mul", ["c1", "rsqrt2"], "scaled"), node("Erf", ["scaled"], "erf"),
                          node("Add", ["one", "erf"], "erf1"), *GELU_TAIL["gelu_pattern"]],
                         {"rsqrt2": scalar(np.sqrt(0.5)), "one": scalar(1), "half": scalar(0.5)}, 17, "conv",
                         ["gelu"]),
    "erf_alone": ([node("Erf", ["c1"], "y")], {}, 17, "conv", ["channelwise:Erf"]),
    "not_quite_gelu": ([node("Div", ["c1", "two"], "scaled"), node("Erf", ["scaled"], "y")], {"two": scalar(2)}, 17,
                       "conv", ["affine", "channelwise:Erf"]),
    "scalar_mul": ([node("Mul", ["c1", "s"], "y")], {"s": scalar(2.5)}, 17, "conv", ["affine"]),
    "scalar_mul_first": ([node("Mul", ["s", "c1"], "y")], {"s": scalar(-1.5)}, 17, "conv", ["affine"]),
    "scalar_add": ([node("Add", ["c1", "s"], "y")], {"s": np.full((1, 1, 1, 1), 0.5, np.float32)}, 17, "conv",
                   ["affine"]),
    "scalar_sub": ([node("Sub", ["c1", "s"], "y")], {"s": scalar(0.5)}, 17, "conv", ["affine"]),
    "scalar_sub_first": ([node("Sub", ["s", "c1"], "y")], {"s": scalar(0.5)}, 17, "conv", ["affine"]),
    "scalar_div": ([node("Div", ["c1", "s"], "y")], {"s": scalar(4)}, 17, "conv", ["affine"]),
    "scalar_div_first": ([node("Sigmoid", ["c1"], "p"), node("Div", ["s", "p"], "y")], {"s": scalar(2)}, 17, "conv",
                         ["sigmoid", "div"]),
    "neg": ([node("Neg", ["c1"], "y")], {}, 17, "conv", ["affine"]),
    "channel_mul": ([node("Mul", ["c1", "k"], "y")], {"k": per_channel(1)}, 17, "conv", ["mul"]),
    "channel_add_4d_first": ([node("Add", ["k", "c1"], "y")], {"k": per_channel(2, (1, 8, 1, 1))}, 17, "conv",
                             ["add"]),
    "channel_sub_first": ([node("Sub", ["k", "c1"], "y")], {"k": per_channel(3)}, 17, "conv", ["sub"]),
    "channel_div": ([node("Div", ["c1", "k"], "y")], {"k": per_channel(4)}, 17, "conv", ["div"]),
    "spatial_mul": ([node("Mul", ["c1", "k"], "y")], {"k": per_channel(5, (1, 8))}, 17, "conv", ["mul"]),
    "se_mul": (se_gate("Mul"), {"ws": weight((8, 8, 1, 1), 7), "bs": weight((8,), 8)}, 17, "conv",
               ["global_avg_pool", "sigmoid", "mul"]),
    "se_add": (se_gate("Add"), {"ws": weight((8, 8, 1, 1), 7), "bs": weight((8,), 8)}, 17, "conv",
               ["global_avg_pool", "sigmoid", "add"]),
    "equal_sub": ([node("Relu", ["c1"], "r"), node("Sub", ["c1", "r"], "y")], {}, 17, "conv", ["relu", "sub"]),
    "equal_div": ([node("Sigmoid", ["c1"], "p"), node("Div", ["c1", "p"], "y")], {}, 17, "conv", ["sigmoid", "div"]),
    "pow": ([node("Pow", ["c1", "two"], "y")], {"two": scalar(2)}, 17, "conv", ["channelwise:Pow"]),
    "abs": ([node("Abs", ["c1"], "y")], {}, 17, "conv", ["channelwise:Abs"]),
    "max_of_two": ([node("Relu", ["c1"], "r"), node("Max", ["c1", "r", "floor"], "y")], {"floor": scalar(0.1)}, 17,
                   "conv", ["relu", "channelwise:Max"]),
    "max_scalar": ([node("Max", ["c1", "low"], "y")], {"low": scalar(-0.1)}, 17, "conv", ["clip"]),
    "min_scalar": ([node("Min", ["high", "c1"], "y")], {"high": scalar(0.2)}, 17, "conv", ["clip"]),
    "max_zero": ([node("Max", ["c1", "zero"], "y")], {"zero": scalar(0)}, 17, "conv", ["relu"]),
    "prelu_scalar": ([node("PRelu", ["c1", "slope"], "y")], {"slope": scalar(0.25)}, 17, "conv", ["leaky_relu"]),
    "prelu_per_channel": ([node("PRelu", ["c1", "slope"], "y")], {"slope": per_channel(9, (8, 1, 1), -0.5, 0.5)}, 17,
                          "conv", ["affine", "relu", "mul", "relu", "add"]),
    "min_of_two": ([node("Sigmoid", ["c1"], "p"), node("Min", ["c1", "p"], "y")], {}, 17, "conv",
                   ["sigmoid", "channelwise:Min"]),
    "reduce_mean": ([node("ReduceMean", ["c1"], "y", axes=[2, 3])], {}, 17, "conv", ["global_avg_pool"]),
    "reduce_mean_flat": ([node("ReduceMean", ["c1"], "y", axes=[-1, -2], keepdims=0)], {}, 17, "gemm",
                         ["global_avg_pool", "flatten", "linear"]),
    "reduce_mean_opset18": ([node("ReduceMean", ["c1", "axes"], "y")], {"axes": ints(2, 3)}, 18, "conv",
                            ["global_avg_pool"]),
    "reduce_max": ([node("ReduceMax", ["c1"], "y", axes=[2, 3])], {}, 17, "conv", ["adaptive_pool"]),
    "global_max": ([node("GlobalMaxPool", ["c1"], "y")], {}, 17, "conv", ["adaptive_pool"]),
    "squeeze": ([node("GlobalAveragePool", ["c1"], "g"), node("Squeeze", ["g", "axes"], "y")], {"axes": ints(2, 3)},
                17, "gemm", ["global_avg_pool", "flatten", "linear"]),
    "cast_expand_identity": ([node("Cast", ["c1"], "f", to=TensorProto.FLOAT), node("Expand", ["f", "one"], "y")],
                             {"one": ints(1, 1)}, 17, "conv", ["identity", "identity"]),
    "max_pool_ceil": ([node("MaxPool", ["c1"], "y", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)], {}, 17,
                      "conv", ["max_pool"]),
    "max_pool_dilated": ([node("MaxPool", ["c1"], "y", kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1])],
                         {}, 17, "conv", ["max_pool"]),
    "avg_pool_ceil_include": ([node("AveragePool", ["c1"], "y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                    ceil_mode=1, count_include_pad=1)], {}, 17, "conv", ["avg_pool"]),
    "avg_pool_ceil": ([node("AveragePool", ["c1"], "y", kernel_shape=[2, 2], strides=[3, 3], ceil_mode=1)], {}, 17,
                      "conv", ["avg_pool"]),
    "avg_pool_dilated_opset19": ([node("AveragePool", ["c1"], "y", kernel_shape=[2, 2], dilations=[2, 2])], {}, 19,
                                 "conv", ["avg_pool"]),
    "instance_norm": ([node("InstanceNormalization", ["c1", "scale", "shift"], "y", epsilon=1e-3)], AFFINE, 17, "conv",
                      ["normalization"]),
    "group_norm_opset21": ([node("GroupNormalization", ["c1", "scale", "shift"], "y", num_groups=2)], AFFINE, 21,
                           "conv", ["normalization"]),
    "group_norm_pytorch": (group_norm_pytorch(), {**AFFINE_3D, "view": ints(0, 4, -1), "scale4": np.ones(4, np.float32),
                                                  "shift4": np.zeros(4, np.float32)}, 17, "conv", ["normalization"]),
    "group_norm_per_group": (group_norm_pytorch(False), {"view": ints(0, 4, -1), "scale4": per_channel(25, (4,)),
                                                         "shift4": per_channel(26, (4,), -0.5, 0.5)}, 17, "conv",
                             ["normalization"]),
    "layer_norm_channels_last": (channels_last([node("LayerNormalization", ["last", "scale", "shift"], "normed",
                                                     epsilon=1e-6)], "normed"), AFFINE, 17, "conv", ["normalization"]),
    "layer_norm_written_out": (layer_norm_written_out("c1", "y", 1), {**AFFINE_3D, **WRITTEN_OUT}, 17, "conv",
                               ["normalization"]),
    "layer_norm_written_out_channels_last": (channels_last(layer_norm_written_out("last", "ln", -1, True, True),
                                                           "ln"), {**AFFINE, **WRITTEN_OUT}, 18, "conv",
                                             ["normalization"]),
    "layer_norm_2d": ([node("GlobalAveragePool", ["c1"], "g"), node("Flatten", ["g"], "flat"),
                       node("LayerNormalization", ["flat", "scale"], "y", axis=1)], AFFINE, 17, "gemm",
                      ["global_avg_pool", "flatten", "normalization", "linear"]),
    "convnext_block": (channels_last([
        node("LayerNormalization", ["last", "scale", "shift"], "normed", epsilon=1e-6),
        node("MatMul", ["normed", "up"], "up_mm"), node("Add", ["up_b", "up_mm"], "up_out"),
        node("Div", ["up_out", "sqrt2"], "scaled"), node("Erf", ["scaled"], "erf"), node("Add", ["erf", "one"], "erf1"),
        node("Mul", ["up_out", "erf1"], "xa"), node("Mul", ["xa", "half"], "gelu"),
        node("MatMul", ["gelu", "down"], "down_mm"), node("Add", ["down_mm", "down_b"], "down_out")], "down_out",
        [node("Mul", ["layer_scale", "back"], "scaled_back"), node("Add", ["scaled_back", "c1"], "y")]),
        {**AFFINE, "up": weight((8, 16), 11), "up_b": weight((16,), 12), "down": weight((16, 8), 13),
         "down_b": weight((8,), 14), "layer_scale": per_channel(15), "sqrt2": scalar(np.sqrt(2)), "one": scalar(1),
         "half": scalar(0.5)}, 17, "conv", ["normalization", "gelu", "mul", "add"]),
}
RESIZES = {  # name: (scales, sizes, attributes, expected resize attributes)
    "linear_sizes": (None, ints(1, 8, 13, 11), {"mode": "linear"}, (13, 11, 1, 0)),
    "linear_down": (None, ints(1, 8, 5, 3), {"mode": "linear"}, (5, 3, 1, 0)),
    "linear_pytorch_half_pixel": (np.array([1, 1, 2, 1.5], np.float32), None,
                                  {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
                                  (16, 12, 1, 0)),
    "linear_align_corners": (None, ints(1, 8, 13, 11),
                             {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, (13, 11, 1, 1)),
    "nearest_sizes": (None, ints(1, 8, 16, 24), {"mode": "nearest"}, (16, 24, 0, 0)),
    "nearest_floor": (np.array([1, 1, 3, 2], np.float32), None,
                      {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
                      (24, 16, 0, 0)),
    "nearest_floor_sizes": (None, ints(1, 8, 12, 20), {"mode": "nearest", "coordinate_transformation_mode":
                                                       "asymmetric", "nearest_mode": "floor"}, (12, 20, 0, 0)),
    "axes_opset18": (None, ints(12, 10), {"mode": "linear", "axes": [2, 3]}, (12, 10, 1, 0)),
}


# Cases where c1, the only prunable conv, divides: a divisor's channels are frozen (docs/algorithm.md).
DIVIDES_BY_C1 = {"scalar_div_first", "equal_div"}


@pytest.mark.parametrize("case", OP_CASES)
def test_op_imports_runs_exports_and_prunes(case):
    nodes, initializers, opset, head, expected = OP_CASES[case]
    net = check_everywhere(between_convs(nodes, initializers, opset, head), prunable=case not in DIVIDES_BY_C1)
    assert kinds(net) == expected


@pytest.mark.parametrize("case", RESIZES, ids=RESIZES)
def test_resize_modes(case):
    scales, sizes, attributes, expected = RESIZES[case]
    inputs = ["c1", "", "scales" if scales is not None else "", "sizes" if sizes is not None else ""]
    model = between_convs([helper.make_node("Resize", inputs[:4 if sizes is not None else 3], ["y"], name="resize",
                                            **attributes)],
                          {"scales": scales, "sizes": sizes} if scales is None or sizes is None else {},
                          18 if "axes" in attributes else 17)
    net = check_everywhere(model, batch=1 if sizes is not None and "axes" not in attributes else 2)
    assert [layer.attributes for layer in net.layers if layer.op == "resize"] == [expected]


def test_channelwise_runs_nowhere_natively_and_exports_only_from_onnx():
    net = kcp.from_onnx(between_convs([node("Erf", ["c1"], "y")]))
    with pytest.raises((ValueError, kcp.KCPError), match="y"):
        net(np.zeros((1, 3, 8, 8), np.float32))
    built = kcp.Network()
    x = built.input("x", (1, 3, 4, 4))
    built.output(built.layer("channelwise", [built.conv2d(x, 4, 1)], (4, 4, 4), name="mystery"))
    with pytest.raises(ValueError, match="'mystery'.*not read from ONNX"):
        built.to_onnx()


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh", "mish", "hardswish", "silu", "softplus_beta"])
@pytest.mark.parametrize("opset", [13, 17, 20])
def test_activations_export_at_every_opset(activation, opset):
    net = kcp.Network(seed=3)
    x = net.conv2d(net.input("x", (2, 3, 6, 6)), 4, 3, padding=1)
    y = net.softplus(x, 2.0) if activation == "softplus_beta" else net.activation(x, activation)
    net.output(net.conv2d(y, 2, 1))
    check_export(net, inputs_for(net), opset=opset)


def test_adaptive_pools_export():
    """Global pools and pools whose kernel is their stride read back; uneven bins are written as one
    Slice and reduction per bin, which onnxruntime runs and kcp does not read back."""
    net = kcp.Network(seed=4)
    x = net.conv2d(net.input("x", (2, 3, 8, 9)), 4, 3, padding=1)
    net.output(net.adaptive_pool(x, 1), net.adaptive_pool(x, (4, 3), max=True))
    again = check_export(net, inputs_for(net))[1]
    assert [layer.op for layer in again.layers] == ["conv2d", "global_avg_pool", "max_pool"]
    uneven = kcp.Network(seed=4)
    x = uneven.conv2d(uneven.input("x", (2, 3, 7, 9)), 4, 3, padding=1)
    uneven.output(uneven.adaptive_pool(x, (3, 4)), uneven.adaptive_pool(x, (7, 2), max=True))
    model = uneven.to_onnx()
    onnx.checker.check_model(model, full_check=True)
    xs = inputs_for(uneven)
    assert_close(run_onnxruntime(model, xs), uneven(*xs))


def test_channel_shuffle_and_chunk_read_back():
    net = kcp.Network(seed=5)
    x = net.relu(net.conv2d(net.input("x", (2, 3, 6, 6)), 8, 3, padding=1))
    a, b = net.chunk(net.channel_shuffle(x, 4), 2)
    net.output(net.conv2d(net.concat(net.relu(a), net.conv2d(b, 4, 1)), 3, 1))
    _, again = check_export(net, inputs_for(net))
    assert [layer.op for layer in again.layers] == [layer.op for layer in net.layers]
    check_everywhere(net.to_onnx())


@pytest.mark.parametrize(("nodes", "expected"), [
    ([node("Slice", ["c1", "s", "e", "axis1"], "y")], "only into equal parts"),
    ([helper.make_node("Split", ["c1", "sizes"], ["y", "z"], name="split", axis=1)], "'split' (Split): kcp splits"),
    ([node("Transpose", ["c1"], "y", perm=[0, 1, 3, 2])], "'y' (Transpose): kcp reads a Transpose only"),
    ([node("Reshape", ["c1", "grouped"], "g"), node("Relu", ["g"], "y")], "'y' (Relu): input 'g' is a view"),
])
def test_channel_slicing_errors_name_the_node(nodes, expected):
    initializers = {"s": ints(1), "e": ints(4), "axis1": ints(1), "sizes": ints(1, 3), "grouped": ints(1, 2, 2, 8, 8)}
    assert expected in import_error(one_conv_then(nodes, initializers))


# -- normalization ------------------------------------------------------------------

def test_group_normalization_opset18_scales_per_group():
    """Opset 18's GroupNormalization (which onnxruntime no longer runs) scales and shifts per group: it reads
    as opset 21's with each group's scale and bias repeated over its channels."""
    per_group = {"scale": per_channel(23, (2,)), "shift": per_channel(24, (2,), -0.5, 0.5)}
    norm = node("GroupNormalization", ["c1", "scale", "shift"], "y", num_groups=2)
    old = between_convs([norm], per_group, 21)
    old.opset_import[0].version = 18
    old = kcp.from_onnx(old)
    new = kcp.from_onnx(between_convs([norm], {k: np.repeat(v, 4) for k, v in per_group.items()}, 21))
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    assert_close(old(x), new(x))


def normalized_network():
    """conv -> LayerNorm over channels -> conv -> GroupNorm -> conv -> InstanceNorm -> conv -> pool -> LayerNorm
    of [N, C] -> linear, with random affines."""
    net = kcp.Network(seed=9)
    x = net.conv2d(net.input("x", (2, 3, 8, 8)), 8, 3, padding=1)
    x = net.conv2d(net.layer_norm(x, name="ln"), 12, 3, padding=1)
    x = net.conv2d(net.relu(net.group_norm(x, 4, name="gn")), 8, 3, padding=1)
    x = net.conv2d(net.instance_norm(x, epsilon=1e-3, name="in"), 6, 1)
    net.output(net.linear(net.layer_norm(net.flatten(net.global_avg_pool(x)), name="ln2d"), 4))
    rng = np.random.default_rng(1)
    for name, value in net.parameters.items():
        if name.endswith((".weight", ".bias")) and name.split(".")[0] in ("ln", "gn", "in", "ln2d"):
            net.set_parameter(name, rng.uniform(0.5, 1.5, value.shape) if name.endswith(".weight")
                              else rng.normal(0, 0.5, value.shape))
    return net


@pytest.mark.parametrize(("opset", "expected"), [
    (13, {"InstanceNormalization"}),  # LayerNorm and GroupNorm as formulas
    (17, {"LayerNormalization", "InstanceNormalization"}),  # GroupNorm as PyTorch writes it
    (21, {"LayerNormalization", "InstanceNormalization", "GroupNormalization"})])
def test_normalizations_export_dense_masked_and_compact(opset, expected):
    """Each export agrees with the engine in onnxruntime; the dense one reads back where no formula was needed."""
    net = normalized_network()
    xs = inputs_for(net)
    chosen = kcp.plan(net, ratio=0.5)
    masked = chosen.apply(net, "mask")
    assert all((masked.parameters[f"{n}.statistics_mask"] == 0).any() for n in ("ln", "gn", "in"))  # as formulas
    for exported in (net, masked, chosen.apply(net, "compact")):
        model = exported.to_onnx(opset=opset)
        onnx.checker.check_model(model, full_check=True)
        assert_close(run_onnxruntime(model, xs), exported(*xs))
    model = net.to_onnx(opset=opset)
    assert {n.op_type for n in model.graph.node} & {"LayerNormalization", "InstanceNormalization",
                                                     "GroupNormalization"} == expected
    if opset >= 17:
        assert not any(i.name.endswith("statistics_mask") for i in model.graph.initializer)
        assert [(l.name, l.op, l.attributes, l.parameters) for l in kcp.from_onnx(model).layers] == \
            [(l.name, l.op, l.attributes, l.parameters) for l in net.layers]


@pytest.mark.parametrize(("nodes", "expected"), [
    ([node("LayerNormalization", ["c1", "chw"], "y", axis=1)], "'y' (LayerNormalization): kcp reads "
                                                               "LayerNormalization over the channels only"),
    (channels_last([node("Softmax", ["last"], "soft")], "soft"), "'soft' (Softmax): input 'last' is channels-last"),
    ([node("Transpose", ["c1"], "last", perm=[0, 2, 3, 1]), node("Add", ["last", "c1"], "y")],
     "'y' (Add): input 'c1' is channels-first"),
    ([node("Transpose", ["c1"], "last", perm=[0, 2, 3, 1]), node("Mul", ["last", "k"], "y")],
     "'y' (Mul): constant 'k' of shape (8,)"),
    ([node("Transpose", ["c1"], "y", perm=[0, 2, 3, 1])], "graph output 'y' is channels-last"),
    (channels_last([node("ReduceMean", ["last"], "mean", axes=[1, 2])], "mean"),
     "'mean' (ReduceMean): kcp reduces over H and W only (axes [2, 3] of [N, C, H, W]) or, in LayerNorm written "
     "out, over the channels; got axes [1, 2] of a channels-last tensor"),
    ([node("Reshape", ["c1", "view"], "y")], "graph output 'y' is a view of the channels in groups"),
    ([node("GroupNormalization", ["c1", "k", "k"], "y", num_groups=3)], "'y' (GroupNormalization): num_groups 3"),
    ([node("InstanceNormalization", ["c1", "k", "k4"], "y")], "'y' (InstanceNormalization): bias 'k4' must have 8"),
])
def test_normalization_errors_name_the_node(nodes, expected):
    initializers = {"chw": np.ones((8, 8, 8), np.float32), "k": np.ones(8, np.float32),
                    "k4": np.ones(4, np.float32), "view": ints(0, 2, -1)}
    model = make_model([conv("c1", "x", "w1", "b1", pads=[1, 1, 1, 1]), *nodes], [("x", [1, 3, 8, 8])],
                       [(nodes[-1].output[0], None)], {"w1": weight((8, 3, 3, 3), 1), "b1": weight((8,), 2),
                                                       **initializers}, 21, check=False)
    assert expected in import_error(model)


# -- volumes [N, C, D, H, W] -----------------------------------------------------

def volume_model():
    """A 3-D aggregation as PyTorch writes it: Conv with 3-D kernels (asymmetric pads, a strided one),
    BatchNormalization, a residual Add, MaxPool and AveragePool (ceil_mode, count_include_pad), a
    ConvTranspose back up (output_padding), Resize on D, H and W (linear, half-pixel), a Concat."""
    bn = batchnorm_parameters("bn", 6, 3)
    nodes = [conv("c1", "x", "w1", "b1", pads=[1, 1, 1, 1, 1, 1]),
             node("BatchNormalization", ["c1", *bn], "n1"), node("Relu", ["n1"], "r1"),
             conv("c2", "r1", "w2", "b2", pads=[1, 1, 1, 1, 1, 1]), node("Add", ["c2", "r1"], "sum"),
             node("Relu", ["sum"], "r2"),
             conv("down", "r2", "w3", "b3", strides=[2, 2, 2], pads=[1, 0, 1, 1, 1, 0]), node("Relu", ["down"], "r3"),
             helper.make_node("ConvTranspose", ["r3", "t1", "tb1"], ["up"], name="up", strides=[2, 2, 2],
                              pads=[1, 1, 1, 1, 1, 1], output_padding=[1, 1, 1]),
             node("MaxPool", ["r2"], "mp", kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
             node("AveragePool", ["mp"], "ap", kernel_shape=[3, 3, 3], strides=[1, 1, 1], pads=[1, 1, 1, 1, 1, 1],
                  count_include_pad=1, ceil_mode=1),
             helper.make_node("Resize", ["ap", "", "scales"], ["rs"], name="rs", mode="linear",
                              coordinate_transformation_mode="half_pixel"),
             node("Concat", ["up", "rs"], "cat", axis=1), node("Relu", ["cat"], "r4"), conv("out", "r4", "w4", "b4")]
    initializers = {"w1": weight((6, 2, 3, 3, 3), 1), "b1": weight((6,), 2), "w2": weight((6, 6, 3, 3, 3), 4),
                    "b2": weight((6,), 5), "w3": weight((8, 6, 3, 3, 3), 6), "b3": weight((8,), 7),
                    "t1": weight((8, 4, 3, 3, 3), 8), "tb1": weight((4,), 9), "w4": weight((3, 10, 1, 1, 1), 10),
                    "b4": weight((3,), 11), "scales": np.array([1, 1, 2, 2, 2], np.float32), **bn}
    return make_model(nodes, [("x", ["N", 2, 4, 6, 8])], [("out", [None] * 5)], initializers)


def test_volume_model_imports_runs_exports_and_prunes():
    net = check_everywhere(volume_model())
    ops = {layer.name: layer.op for layer in net.layers}
    assert {ops[n] for n in ("c1", "c2", "down", "out")} == {"conv3d"} and ops["up"] == "conv_transpose3d"
    assert (ops["mp"], ops["ap"], ops["rs"]) == ("max_pool3d", "avg_pool3d", "resize3d")
    down = next(layer for layer in net.layers if layer.name == "down")
    assert [int(a) for a in down.attributes] == [2, 2, 2, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1]


def volume_ops():
    """The 3-D ops the zoo's volume network does not use: a dilated max pool, a ceil_mode average pool,
    nearest and align_corners trilinear resizing, global average pooling."""
    net = kcp.Network(seed=12)
    x = net.relu(net.conv3d(net.input("volume", (2, 3, 5, 6, 7)), 6, 3, padding=1))
    x = net.max_pool(x, (2, 3, 3), (1, 2, 2), (1, 1, 1), dilation=(2, 1, 1))
    x = net.avg_pool(net.conv3d(x, 6, 3, padding=(1, 1, 0)), 2, 2, ceil_mode=True)
    x = net.resize(net.resize(x, (5, 6, 7), "trilinear", align_corners=True), (7, 9, 8))
    net.output(net.conv3d(x, 2, 1), net.global_avg_pool(net.conv3d(x, 3, 1)))
    return net


@pytest.mark.parametrize("compact", [False, True], ids=["dense", "compact"])
def test_volume_ops_export(compact):
    net = volume_ops()
    if compact:
        net = kcp.plan(net, ratio=0.5).apply(net)
    _, again = check_export(net, inputs_for(net))
    assert [(l.op, l.attributes) for l in again.layers] == [(l.op, l.attributes) for l in net.layers]
