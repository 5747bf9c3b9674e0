"""What kcp's ONNX files share: the custom domain, the batch dimension's
name, and the lazy import of ``onnx``.

Every kcp op has a standard ONNX form (opset 13 or later) except the
stereo ops, which are written as model-local ONNX functions in the domain
``ai.kcp`` whose bodies use standard ops only, so onnxruntime runs the file
unmodified; the importer recognises them by domain and op type:

- ``Correlation(left, right)``, attributes ``max_disparity``, ``scale``:
  ``y[n, d, h, w] = scale * sum_c left[n, c, h, w] * right[n, c, h, w - d]``,
  zero where ``w - d < 0``;
- ``ConcatenationVolume(left, right)``, attribute ``max_disparity``:
  PSMNet's ``[N, 2C, D, H, W]`` volume, ``y[n, c, d, h, w] = left[n, c, h, w]``
  and ``y[n, C + c, d, h, w] = right[n, c, h, w - d]``, zero where ``w < d``;
- ``GroupCorrelationVolume(left, right)``, attributes ``max_disparity``,
  ``groups``, ``scale``: GwcNet's ``[N, G, D, H, W]`` volume,
  ``y[n, g, d, h, w] = scale * sum_{c in group g} left[n, c, h, w] * right[n, c, h, w - d]``,
  zero where ``w < d``;
- ``SoftArgmin(x)``, attribute ``sign`` (-1 if absent):
  ``y[n, 0] = sum_d d * softmax_d(sign * x[n, d])`` over the channels of
  ``[N, D, H, W]`` or over ``D`` of ``[N, 1, D, H, W]``.

``onnx`` is imported on first use, so ``import kcp`` does not need it.

A ``channelwise`` layer (an elementwise op the engine has no kernel for) read
from ONNX keeps the node it came from -- op type, attributes, constant
inputs -- so that the exporter writes it back (:func:`remember_form`,
:func:`recall_form`). The network keeps the form by layer name (in its
``_forms``), and the networks derived from it (masked, compact, fine-tuned)
copy it.
"""

DOMAIN = "ai.kcp"
BATCH = "batch"


def onnx_module():
    """The ``onnx`` package, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError("kcp's ONNX support needs the onnx package: pip install 'kcp-prune[onnx]'") from None
    return onnx


def fresh_name(name, taken):
    """``name``, or ``name_1``, ``name_2``... if taken; reserves it."""
    candidate, k = name, 0
    while candidate in taken:
        k += 1
        candidate = f"{name}_{k}"
    taken.add(candidate)
    return candidate


def remember_form(net, layer_name, form):
    """Keeps ``form`` (a dict: ``op_type``, ``domain``, ``attributes`` as
    AttributeProtos, ``inputs``: per ONNX input the index of the layer's input
    value, a constant array, or None) for the layer ``layer_name`` of ``net``."""
    net._forms[layer_name] = form


def recall_form(net, layer_name):
    """The form :func:`remember_form` kept for ``layer_name`` (in ``net`` or a network derived from it), or None."""
    return net._forms.get(layer_name)
