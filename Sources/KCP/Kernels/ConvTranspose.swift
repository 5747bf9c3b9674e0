/// Transposed convolution as the adjoint of `conv2dForward` (see `ConvTranspose2d`).
///
/// With `C` the convolution `t.conv` from `y`'s shape to `x`'s under the same
/// weight `W [I, O/g, kh, kw]` (read as a conv weight: `I` outputs, `O/g`
/// inputs per group), `y = C^T x + b`. So the forward pass is the conv's
/// input gradient (unfolded product `W_g^T X_g` folded back onto `y`, or with
/// stride 1 a conv with flipped kernels), and the backward pass is
/// `dL/dx = C dL/dy` (a plain conv), `dL/dW = sum_tiles X_g G_g^T` (the conv's
/// weight gradient with `dL/dy` as its input and `x` as its output gradient),
/// `dL/db[o] = sum_{n, h, w} dL/dy[n, o, h, w]`.

/// `y = C^T x + b`, `y` shaped `outputShape`.
func convTranspose2dForward(_ x: Tensor, weight: Tensor, bias: Tensor?, _ t: ConvTranspose2d,
                            outputShape: [Int]) -> Tensor
{
    let s = ConvGeometry(input: outputShape, weight: weight.shape, output: x.shape, t.conv)
    var y = conv2dInputGradient(weight: weight, s, gradient: x)
    if let bias { addChannelBias(&y, bias.data) }
    return y
}

/// Gradients of `convTranspose2dForward` given `gradient = dL/dy`.
/// - Returns: `dL/dx` shaped like `x`, `dL/dW` like `weight`, `dL/db` `[O]` if `hasBias`.
func convTranspose2dBackward(_ x: Tensor, weight: Tensor, hasBias: Bool, _ t: ConvTranspose2d,
                             gradient: Tensor) -> (input: Tensor, weight: Tensor, bias: Tensor?)
{
    let s = ConvGeometry(input: gradient.shape, weight: weight.shape, output: x.shape, t.conv)
    return (conv2dForward(gradient, weight: weight, bias: nil, t.conv, outputShape: x.shape),
            conv2dWeightGradient(gradient, s, gradient: x), hasBias ? channelSums(gradient) : nil)
}
