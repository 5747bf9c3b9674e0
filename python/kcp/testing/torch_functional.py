"""kcp networks evaluated by PyTorch: each layer of ``net.layers`` as a
``torch.nn.functional`` call, the stereo correlation and soft-argmin written
out from their definitions. Used to check the engine against PyTorch and to
compare their speed; needs ``torch``.
"""

import torch
import torch.nn.functional as F


def torch_forward(net, parameters, inputs, training):
    """The outputs of ``net`` computed by PyTorch from ``parameters`` ({name: tensor}).

    In training mode batchnorm normalises by batch statistics and updates the
    running statistics in ``parameters`` in place (momentum 0.1), as
    ``model.train()`` does.
    """
    values = {value.name: x for value, x in zip(net.inputs, inputs)}
    for layer in net.layers:
        x = [values[name] for name in layer.inputs]
        p = [parameters[name] for name in layer.parameters]
        a = [int(v) if float(v).is_integer() else v for v in layer.attributes]
        if layer.op == "conv2d":
            sh, sw, top, left, bottom, right, dh, dw, groups = a
            y = F.conv2d(F.pad(x[0], (left, right, top, bottom)), p[0], p[1] if len(p) > 1 else None,
                         stride=(sh, sw), dilation=(dh, dw), groups=groups)
        elif layer.op == "batchnorm":
            y = F.batch_norm(x[0], p[2], p[3], p[0], p[1], training=training, momentum=0.1, eps=layer.attributes[0])
        elif layer.op == "relu":
            y = F.relu(x[0])
        elif layer.op == "leaky_relu":
            y = F.leaky_relu(x[0], layer.attributes[0])
        elif layer.op == "sigmoid":
            y = torch.sigmoid(x[0])
        elif layer.op == "add":
            y = x[0] + x[1]
        elif layer.op == "mul":
            y = x[0] * x[1]
        elif layer.op == "concat":
            y = torch.cat(x, dim=1)
        elif layer.op in ("max_pool", "avg_pool"):
            kh, kw, sh, sw, top, left, bottom, right, include = a
            assert (top, left) == (bottom, right)
            if layer.op == "max_pool":
                y = F.max_pool2d(x[0], (kh, kw), (sh, sw), (top, left))
            else:
                y = F.avg_pool2d(x[0], (kh, kw), (sh, sw), (top, left), count_include_pad=bool(include))
        elif layer.op == "global_avg_pool":
            y = F.adaptive_avg_pool2d(x[0], 1)
        elif layer.op == "flatten":
            y = torch.flatten(x[0], 1)
        elif layer.op == "linear":
            y = F.linear(x[0], p[0], p[1] if len(p) > 1 else None)
        elif layer.op == "upsample":
            scale, mode = a
            y = F.interpolate(x[0], scale_factor=scale, mode="bilinear" if mode else "nearest",
                              **({"align_corners": False} if mode else {}))
        elif layer.op == "correlation":
            disparities, scale = int(a[0]), layer.attributes[1]
            left, right = x
            width = left.shape[3]
            y = torch.cat([(left * F.pad(right, (d, 0))[..., :width]).sum(1, keepdim=True) * scale
                           for d in range(disparities)], dim=1)
        elif layer.op == "softmax":
            y = torch.softmax(x[0], dim=1)
        elif layer.op == "soft_argmin":
            d = torch.arange(x[0].shape[1], dtype=x[0].dtype).view(1, -1, 1, 1)
            y = (torch.softmax(-x[0], dim=1) * d).sum(1, keepdim=True)
        elif layer.op == "identity":
            y = x[0]
        else:
            raise NotImplementedError(layer.op)
        values[layer.name] = y
    return [values[v.name] for v in net.outputs]
