"""The 53 conv weight shapes of torchvision's ResNet-50 (about 23.5M parameters)."""


def resnet50_conv_shapes():
    """``[O, I, kh, kw]`` of every conv of ResNet-50, in network order."""
    shapes = [(64, 3, 7, 7)]
    inplanes = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for block in range(blocks):
            shapes += [(width, inplanes, 1, 1), (width, width, 3, 3), (width * 4, width, 1, 1)]
            if block == 0:
                shapes.append((width * 4, inplanes, 1, 1))
            inplanes = width * 4
    return shapes
