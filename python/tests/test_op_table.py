"""The op table is stated once, in the engine (Sources/KCPC/OpCoding.swift):
Python reads it from the extension, and kcp.h restates it for C callers.
These tests fail when the header and the engine disagree."""

import re
from pathlib import Path

import kcp.network as network

HEADER = Path(__file__).resolve().parents[2] / "Sources" / "KCPC" / "include" / "kcp.h"


def _enum(prefix):
    """``{name: value}`` of the ``prefix``-named constants of kcp.h, names lower-cased without the prefix."""
    return {name.lower(): int(value) for name, value in re.findall(rf"\b{prefix}([A-Z0-9_]+) = (\d+)", HEADER.read_text())}


def test_header_op_codes_match_the_engine_table():
    assert _enum("KCP_OP_") == {name: code for name, code in network.OPS.items()}


def test_header_enumerations_match_the_engine_table():
    assert _enum("KCP_ACTIVATION_") == network.ACTIVATIONS
    assert _enum("KCP_BINARY_") == network.BINARY
    assert _enum("KCP_RESIZE_MODE_") == network.UPSAMPLE_MODES


def test_every_op_has_an_attribute_schema_and_every_builder_uses_it():
    assert set(network.ATTRIBUTES) == set(network.OPS)
    assert network.ATTRIBUTES["channelwise"] is None  # its output shape, of any rank
    assert network.ATTRIBUTES["activation"] == ("kind", "alpha", "beta")
    net = network.Network()
    x = net.input("x", (1, 4, 6, 6))
    for value in (net.relu(x), net.max_pool(x, 2), net.resize(x, (3, 3)), net.adaptive_pool(x, 2)):
        layer = next(layer for layer in net.layers if layer.name == value.name)
        assert len(layer.attributes) == len(network.ATTRIBUTES[layer.op])
