"""Constant folding at import: ONNX nodes whose inputs are all known are
evaluated with NumPy, so that the shape arithmetic exporters write (chains of
Shape, Gather, Slice, Concat, Cast, Unsqueeze, arithmetic, ConstantOfShape,
Range, Reshape... feeding Resize, Reshape, Pad or Expand) becomes constants.

An input is known if it is an initializer, a Constant node's output or an
earlier folded output; Shape and Size also fold on a computed tensor, whose
shape kcp knows: the importer passes such a tensor as a zero-strided array of
its shape (no memory), with the batch read as 1. The importer calls
:func:`foldable` and :func:`evaluate` on every node as it goes (one pass).
"""

import math

import numpy as np

from .format import onnx_module

LIMIT = 1 << 24  # elements of one folded constant


class FoldingError(ValueError):
    """A node that cannot be evaluated (the importer names it)."""


def shape_only(op):
    """Whether ``op`` reads only its input's shape (it folds on computed tensors)."""
    return op in ("Shape", "Size")


def foldable(op):
    return op in _OPS


def placeholder(shape):
    """An array of ``shape`` that holds no memory, for :func:`evaluate` of Shape and Size."""
    return np.broadcast_to(np.float32(0), tuple(shape))


def evaluate(op, inputs, attributes):
    """The outputs of ONNX op ``op`` on NumPy ``inputs`` (None: an omitted
    optional input) with attribute values ``attributes``, as a list of arrays."""
    outputs = _OPS[op](inputs, attributes)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    for output in outputs:
        if output.size > LIMIT:
            raise FoldingError(f"folds to a constant of {output.size} elements (more than {LIMIT})")
    return [np.asarray(o) for o in outputs]


def _count(shape):
    shape = [int(s) for s in np.reshape(shape, -1)]
    if any(s < 0 for s in shape):
        raise FoldingError(f"negative dimension in shape {shape}")
    if math.prod(shape) > LIMIT:
        raise FoldingError(f"would fold to a constant of shape {shape} (more than {LIMIT} elements)")
    return shape


def _axes(inputs, attributes, k=1):
    """``axes`` from input ``k`` (opset 13/18 forms) or the attribute, as a list, or None."""
    if len(inputs) > k and inputs[k] is not None:
        return [int(a) for a in np.reshape(inputs[k], -1)]
    return list(attributes["axes"]) if "axes" in attributes else None


def _integer_divide(a, b):
    """ONNX Div on integers truncates toward zero."""
    if np.any(b == 0):
        raise FoldingError("integer division by zero")
    q = np.abs(a) // np.abs(b)
    return (np.sign(a) * np.sign(b) * q).astype(np.result_type(a, b))


def _div(inputs, attributes):
    a, b = inputs
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        return _integer_divide(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(a / b, dtype=np.result_type(a, b))


def _mod(inputs, attributes):
    a, b = inputs
    if np.issubdtype(a.dtype, np.integer) and np.any(b == 0):
        raise FoldingError("integer modulo by zero")
    return np.fmod(a, b) if attributes.get("fmod", 0) else np.mod(a, b)


def _elementwise(function):
    def apply(inputs, attributes):
        arrays = [i for i in inputs if i is not None]
        _count(np.broadcast_shapes(*(a.shape for a in arrays)))
        with np.errstate(all="ignore"):
            result = function(*arrays)
        dtype = arrays[0].dtype if function not in _BOOLEAN else np.bool_
        return np.asarray(result).astype(dtype, copy=False)
    return apply


_BOOLEAN = {np.equal, np.less, np.greater, np.less_equal, np.greater_equal, np.logical_and, np.logical_or,
            np.logical_xor, np.logical_not}


def _variadic(function):
    def apply(inputs, attributes):
        arrays = [i for i in inputs if i is not None]
        _count(np.broadcast_shapes(*(a.shape for a in arrays)))
        result = arrays[0]
        for array in arrays[1:]:
            result = function(result, array)
        return np.asarray(result)
    return apply


def _tensor(proto):
    """A tensor attribute as an array; a tensor stored outside the model, or
    one whose data does not match its type and shape, is refused."""
    if proto.data_location == proto.EXTERNAL:
        raise FoldingError(f"tensor '{proto.name}': kcp reads no external data for node attributes")
    try:
        return onnx_module().numpy_helper.to_array(proto)
    except Exception as error:  # onnx raises ValueError, ValidationError or struct.error, depending on the defect
        raise FoldingError(f"tensor '{proto.name}': cannot read its data ({error})") from None


def _constant(inputs, attributes):
    if len(attributes) != 1 or next(iter(attributes)) not in ("value", "value_float", "value_floats", "value_int",
                                                               "value_ints"):
        raise FoldingError(f"kcp reads a Constant with one numeric value attribute, got {sorted(attributes)}")
    (key, value), = attributes.items()
    if key == "value":
        return _tensor(value)
    return np.asarray(value, np.float32 if key.startswith("value_float") else np.int64)


def _shape(inputs, attributes):
    shape = inputs[0].shape
    start, end = attributes.get("start", 0), attributes.get("end", None)
    return np.array(shape[start:end], np.int64)


def _cast(inputs, attributes):
    dtype = onnx_module().helper.tensor_dtype_to_np_dtype(attributes["to"])
    with np.errstate(all="ignore"):
        return inputs[0].astype(dtype)


def _gather(inputs, attributes):
    data, indices = inputs
    axis = attributes.get("axis", 0)
    return np.take(data, indices.astype(np.int64), axis=axis)


def _unsqueeze(inputs, attributes):
    axes = _axes(inputs, attributes)
    if axes is None:
        raise FoldingError("needs axes")
    return np.expand_dims(inputs[0], tuple(axes))


def _squeeze(inputs, attributes):
    axes = _axes(inputs, attributes)
    return np.squeeze(inputs[0], axis=None if axes is None else tuple(axes))


def _concat(inputs, attributes):
    arrays = [i for i in inputs if i is not None]
    _count([sum(a.size for a in arrays)])
    return np.concatenate(arrays, axis=attributes["axis"])


def _slice(inputs, attributes):
    data, starts, ends = inputs[:3]
    rank = data.ndim
    axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else np.arange(len(starts))
    steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else np.ones(len(starts), np.int64)
    index = [slice(None)] * rank
    for start, end, axis, step in zip(*(np.reshape(v, -1).tolist() for v in (starts, ends, axes, steps))):
        if step == 0:
            raise FoldingError("slice step 0")
        index[axis % rank if -rank <= axis < rank else rank] = slice(start, end, step)  # a bad axis: IndexError
    return data[tuple(index)]


def _reshape(inputs, attributes):
    data, shape = inputs
    shape = [int(s) for s in np.reshape(shape, -1)]
    if not attributes.get("allowzero", 0):
        shape = [data.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return data.reshape(shape)


def _transpose(inputs, attributes):
    perm = attributes.get("perm")
    return np.transpose(inputs[0], None if perm is None else tuple(perm))


def _expand(inputs, attributes):
    data, shape = inputs
    return np.broadcast_to(data, _count(np.broadcast_shapes(data.shape, tuple(_count(shape))))).copy()


def _tile(inputs, attributes):
    data, repeats = inputs
    repeats = _count(repeats)
    _count([data.size * math.prod(repeats)])
    return np.tile(data, repeats)


def _constant_of_shape(inputs, attributes):
    value = attributes.get("value")
    fill = _tensor(value).reshape(-1) if value is not None else np.zeros(1, np.float32)
    if fill.size != 1:
        raise FoldingError(f"ConstantOfShape: value must hold one element, got {fill.size}")
    return np.full(_count(inputs[0]), fill[0], fill.dtype)


def _range(inputs, attributes):
    start, limit, delta = (np.asarray(i).reshape(()) for i in inputs)
    if delta == 0:
        raise FoldingError("Range with delta 0")
    count = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
    _count([count])
    return (start + np.arange(count) * delta).astype(start.dtype)


def _flatten(inputs, attributes):
    data = inputs[0]
    axis = attributes.get("axis", 1) % max(data.ndim, 1) if data.ndim else 0
    return data.reshape(math.prod(data.shape[:axis]), -1)


def _reduce(function):
    def apply(inputs, attributes):
        axes = _axes(inputs, attributes) or None
        if axes is None and attributes.get("noop_with_empty_axes", 0):
            return inputs[0]
        return function(inputs[0], axis=None if axes is None else tuple(axes),
                        keepdims=bool(attributes.get("keepdims", 1)))
    return apply


def _split(inputs, attributes, outputs=None):
    data = inputs[0]
    axis = attributes.get("axis", 0)
    if len(inputs) > 1 and inputs[1] is not None:
        sizes = np.reshape(inputs[1], -1).tolist()
    elif "split" in attributes:
        sizes = list(attributes["split"])
    else:
        parts = attributes.get("num_outputs")
        if parts is None:
            raise FoldingError("needs split sizes or num_outputs")
        size = -(-data.shape[axis] // parts)
        sizes = [min(size, data.shape[axis] - k * size) for k in range(parts)]
    return np.split(data, np.cumsum(sizes)[:-1].tolist(), axis=axis)


def _where(inputs, attributes):
    condition, a, b = inputs
    _count(np.broadcast_shapes(condition.shape, a.shape, b.shape))
    return np.where(condition, a, b)


def _clip(inputs, attributes):
    x = inputs[0]
    low = inputs[1] if len(inputs) > 1 and inputs[1] is not None else attributes.get("min")
    high = inputs[2] if len(inputs) > 2 and inputs[2] is not None else attributes.get("max")
    return np.clip(x, low, high).astype(x.dtype)


def _erf(x):
    return np.vectorize(math.erf, otypes=[x.dtype])(x) if x.size else x


_OPS = {
    "Constant": _constant, "Identity": lambda inputs, attributes: inputs[0], "Shape": _shape,
    "Size": lambda inputs, attributes: np.array(inputs[0].size, np.int64), "Cast": _cast,
    "CastLike": lambda inputs, attributes: inputs[0].astype(inputs[1].dtype), "Gather": _gather,
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Concat": _concat, "Slice": _slice, "Reshape": _reshape,
    "Transpose": _transpose, "Expand": _expand, "Tile": _tile, "ConstantOfShape": _constant_of_shape,
    "Range": _range, "Flatten": _flatten, "Split": _split, "Where": _where, "Clip": _clip,
    "Add": _elementwise(np.add), "Sub": _elementwise(np.subtract), "Mul": _elementwise(np.multiply), "Div": _div,
    "Mod": _mod, "Pow": _elementwise(np.power), "Neg": _elementwise(np.negative), "Abs": _elementwise(np.abs),
    "Floor": _elementwise(np.floor), "Ceil": _elementwise(np.ceil), "Round": _elementwise(np.round),
    "Sqrt": _elementwise(np.sqrt), "Exp": _elementwise(np.exp), "Log": _elementwise(np.log),
    "Reciprocal": _elementwise(np.reciprocal), "Sign": _elementwise(np.sign), "Erf": _elementwise(_erf),
    "Relu": _elementwise(lambda x: np.maximum(x, 0)), "Sigmoid": _elementwise(lambda x: 1 / (1 + np.exp(-x))),
    "Tanh": _elementwise(np.tanh), "Max": _variadic(np.maximum), "Min": _variadic(np.minimum),
    "Sum": _variadic(np.add), "Equal": _elementwise(np.equal), "Less": _elementwise(np.less),
    "Greater": _elementwise(np.greater), "LessOrEqual": _elementwise(np.less_equal),
    "GreaterOrEqual": _elementwise(np.greater_equal), "And": _elementwise(np.logical_and),
    "Or": _elementwise(np.logical_or), "Xor": _elementwise(np.logical_xor), "Not": _elementwise(np.logical_not),
    "ReduceProd": _reduce(np.prod), "ReduceSum": _reduce(np.sum), "ReduceMean": _reduce(np.mean),
    "ReduceMax": _reduce(np.max), "ReduceMin": _reduce(np.min),
}
