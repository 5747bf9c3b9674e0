"""ONNX in and out: :func:`from_onnx` reads a model into a :class:`kcp.Network`
(folding shape arithmetic into constants with :mod:`kcp.onnx.folding`),
:func:`export` (``Network.to_onnx``) writes one; :mod:`kcp.onnx.format` holds
what both share. Needs the ``onnx`` package (``pip install 'kcp-prune[onnx]'``).
"""

from .exporter import export
from .importer import from_onnx

__all__ = ["export", "from_onnx"]
