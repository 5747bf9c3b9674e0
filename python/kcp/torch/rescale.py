"""Means over groups of channels in a compact model.

GwcNet's group-wise correlation averages each of ``G`` groups of channels
(``x.view(N, G, C / G, H, W).mean(2)``). Pruning keeps the same positions in
every group (:func:`kcp.torch.ops.group_mean_layer`), so the compact model's
mean divides by the ``k'`` channels left where the masked model's divides by
all ``k``: the compact mean is ``k / k'`` times the masked one. The conv and
linear layers that read it, through crops, pads, stacks and concats (linear
ops that keep its channels apart), have their weight columns over it scaled
by ``k' / k`` when the model is compacted, so that the compact model's
outputs equal the masked model's. A mean read any other way (a batchnorm, an
activation, an op kcp does not follow, the model's output) cannot be made up
for, nor a mean of channels an activation with ``f(0) != 0`` produces (a
masked channel would add ``sigmoid(0)`` products to the model's mean): the
channels it averages are kept.
"""

import numpy as np

from ..network import COST_VOLUMES, Network

#: Ops that pass a mean's channels on unchanged in scale.
PASSING = ("channelwise", "concat", "identity")
#: Ops whose weight's dimension 1 reads their input's channels.
READING = ("conv2d", "conv3d", "linear")


def mean_readers(net, classes, tensors, divisors):
    """``({class labels of a mean: (averaged value, channels per group, [(model tensor, input value)])},
    [averaged values whose mean is read otherwise])`` for the traced ``net``,
    ``classes`` (value name -> class label per channel), ``tensors`` (the
    names of the model's tensors) and ``divisors`` (:attr:`Traced.divisors`)."""
    readers, unscalable = {}, []
    groups, outputs = {}, {value.name for value in net.outputs}
    for value, (source, count) in divisors.items():
        labels = frozenset(int(label) for label in classes[value])
        groups.setdefault(labels, (source, count, []))[2].append(value)
    for labels, (source, count, means) in groups.items():
        carrying = {name for name, per_channel in classes.items() if labels & set(int(c) for c in per_channel)}
        reading, ok = [], not carrying & outputs  # a mean the model returns (or an op kcp does not follow reads)
        averaged = frozenset(int(label) for label in classes[source])
        for layer in net.layers:
            if layer.op == "activation" and averaged & set(int(c) for c in classes[layer.name]) and \
                    not _keeps_zero(layer.attributes):
                ok = False
        for layer in net.layers:
            if layer.name in carrying and layer.name not in means and layer.op not in PASSING:
                ok = False
            for x in layer.inputs:
                if x not in carrying or layer.op in PASSING:
                    continue
                weight = layer.parameters[0] if layer.parameters else None
                groups_attribute = layer.attributes[-1] if layer.op in ("conv2d", "conv3d") else 1
                if layer.op in READING and weight in tensors and layer.inputs[0] == x and groups_attribute == 1:
                    reading.append((weight, x))
                else:
                    ok = False
        if ok:
            readers[labels] = (source, count, reading)
        else:
            unscalable.append(source)
    return readers, unscalable


def _keeps_zero(attributes):
    """Whether the engine's activation with these attributes maps 0 to 0."""
    net = Network()
    net.output(net.layer("activation", [net.input("x", (1, 1, 1, 1))], attributes))
    return net(np.zeros((1, 1, 1, 1), np.float32))[0].item() == 0


def native_scales(net, classes, tensors):
    """Per model tensor, ``(its dimension-1 indices over a mean, k' / k)`` for
    the means of a compact native network ``net`` whose model divides by the
    ``k'`` channels per group left where the engine keeps ``1 / k``: group-wise
    cost volumes (``scale = 1 / k``) and group means (weight ``1 / k``)."""
    divisors, factors = {}, {}
    for layer in net.layers:
        if layer.op == "cost_volume" and layer.attributes[0] == COST_VOLUMES["group_correlation"]:
            groups, share = int(layer.attributes[2]), float(layer.attributes[3])
        elif layer.op == "conv2d" and layer.parameters and layer.parameters[0].endswith(".group_mean"):
            groups, share = int(layer.attributes[-1]), float(net.parameters[layer.parameters[0]].flat[0])
        else:
            continue
        per_group = len(classes[layer.inputs[0]]) // groups
        divisors[layer.name] = (layer.inputs[0], per_group)
        factors[frozenset(int(label) for label in classes[layer.name])] = per_group * share
    readers, _ = mean_readers(net, classes, tensors, divisors)
    return {name: (np.flatnonzero(np.isin(classes[x], list(labels))), factors[labels])
            for labels, (_, _, reading) in readers.items() if factors[labels] != 1 for name, x in reading}


def column_scales(readers, classes, keep_classes):
    """Per model tensor, ``(its kept dimension-1 indices over a mean, k' / k)``
    for the means that lose channels under ``keep_classes``."""
    scales = {}
    for labels, (source, count, reading) in readers.items():
        kept = int(keep_classes[classes[source]][:count].sum())  # group 0's positions: every group keeps as many
        if kept == count:
            continue
        for name, x in reading:
            reads = np.isin(classes[x], list(labels))[keep_classes[classes[x]]]
            scales[name] = (np.flatnonzero(reads), kept / count)
    return scales
