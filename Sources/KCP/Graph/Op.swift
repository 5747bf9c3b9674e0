/// The closed set of operations a network is made of.
///
/// Every `switch` over `Op` is exhaustive (shape inference, MACs, forward,
/// channel coupling, slicing), so adding a case breaks the build at every
/// place that has to learn about it.
public enum Op: Equatable, Sendable {
    /// `y = W * x + b`; parameters `[weight [O, I/g, kh, kw], bias [O]?]`.
    case conv2d(Conv2d)
    /// `y = gamma * (x - mean) / sqrt(var + epsilon) + beta` per channel;
    /// parameters `[gamma, beta, running mean, running var]`, each `[C]`.
    case batchNorm(epsilon: Float)
    case relu
    /// `x` where `x >= 0`, else `alpha * x`.
    case leakyRelu(alpha: Float)
    case sigmoid
    /// Element-wise sum of two equally shaped inputs.
    case add
    /// Element-wise product of two equally shaped inputs.
    case mul
    /// Concatenation along channels.
    case concat
    case maxPool(Pool2d)
    case avgPool(Pool2d)
    /// `[N, C, H, W] -> [N, C, 1, 1]`.
    case globalAvgPool
    /// `[N, C, H, W] -> [N, C * H * W]`.
    case flatten
    /// `y = x W^T + b`; parameters `[weight [O, I], bias [O]?]`.
    case linear
    /// Integer-factor upsampling (bilinear: half-pixel centers, edges clamped).
    case upsample(scale: Int, mode: UpsampleMode)
    /// Stereo cost volume: `y[n, d, h, w] = scale * sum_c left[n, c, h, w] * right[n, c, h, w - d]`
    /// for `d` in `0..<maxDisparity` (zero where `w - d < 0`); `scale` is
    /// `1 / C` for a mean and stays fixed when channels are pruned.
    case correlation(maxDisparity: Int, scale: Float)
    /// Softmax over channels.
    case softmax
    /// Disparity regression `y[n, 0] = sum_d d * softmax_d(-x[n, d])` (GC-Net).
    case softArgmin
    /// Passes its input through (also dropout at inference).
    case identity
}

public struct Conv2d: Equatable, Sendable {
    public var stride: (Int, Int)
    /// `(top, left, bottom, right)`.
    public var padding: (Int, Int, Int, Int)
    public var dilation: (Int, Int)
    public var groups: Int

    public init(stride: (Int, Int) = (1, 1), padding: (Int, Int, Int, Int) = (0, 0, 0, 0),
                dilation: (Int, Int) = (1, 1), groups: Int = 1)
    {
        (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
    }

    public static func == (a: Conv2d, b: Conv2d) -> Bool {
        a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation && a.groups == b.groups
    }
}

public struct Pool2d: Equatable, Sendable {
    public var kernel: (Int, Int)
    public var stride: (Int, Int)
    /// `(top, left, bottom, right)`.
    public var padding: (Int, Int, Int, Int)
    /// Average pooling only: whether padded zeros count in the divisor.
    public var countIncludePad: Bool

    public init(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int, Int, Int) = (0, 0, 0, 0),
                countIncludePad: Bool = false)
    {
        (self.kernel, self.stride, self.padding, self.countIncludePad) = (kernel, stride, padding, countIncludePad)
    }

    public static func == (a: Pool2d, b: Pool2d) -> Bool {
        a.kernel == b.kernel && a.stride == b.stride && a.padding == b.padding && a.countIncludePad == b.countIncludePad
    }
}

public enum UpsampleMode: Int32, Sendable {
    case nearest = 0
    case bilinear = 1
}
