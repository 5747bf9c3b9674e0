/// The closed set of operations a network is made of.
///
/// Every `switch` over `Op` is exhaustive (shape inference, MACs, forward,
/// channel coupling, slicing), so adding a case breaks the build at every
/// place that has to learn about it. Families (`activation`, `binary`) take
/// a kind instead of adding a case per function. Ops on volumes
/// `[N, C, D, H, W]` (`conv3d`, `convTranspose3d`, `maxPool3d`, `avgPool3d`,
/// `resize3d`) are cases of their own whose settings are the 2-D op's for
/// the (H, W) plane plus a depth axis, and whose kernels run the 2-D kernels
/// (a conv over depth slices stacked as channels; pools and resizes as a
/// plane pass and a depth pass, being separable): the 2-D ops, their
/// attributes and every caller stay as they are, and the pruning rules of a
/// 3-D op are its 2-D counterpart's. Element-wise ops, batchnorm, concat and
/// global average pooling take any rank. The codes and attribute
/// lists that cross the C ABI are stated once: names and code order in
/// `Op.Kind`, attributes in the C ABI's `OpCoding.swift`.
public enum Op: Equatable, Sendable {
    /// `y = W * x + b`; parameters `[weight [O, I/g, kh, kw], bias [O]?]`.
    case conv2d(Conv2d)
    /// Transposed convolution, the adjoint of `conv2d` in its input (see
    /// `ConvTranspose2d`); parameters `[weight [I, O/g, kh, kw], bias [O]?]`.
    case convTranspose2d(ConvTranspose2d)
    /// Volumetric convolution of `[N, C, D, H, W]` (see `Conv3d`);
    /// parameters `[weight [O, I/g, kd, kh, kw], bias [O]?]`.
    case conv3d(Conv3d)
    /// Volumetric transposed convolution, the adjoint of `conv3d` in its
    /// input (see `ConvTranspose3d`); parameters `[weight [I, O/g, kd, kh, kw], bias [O]?]`.
    case convTranspose3d(ConvTranspose3d)
    /// `y = gamma * (x - mean) / sqrt(var + epsilon) + beta` per channel;
    /// parameters `[gamma, beta, running mean, running var]`, each `[C]`.
    case batchNorm(epsilon: Float)
    /// Normalisation over groups of channels (see `Normalization`);
    /// parameters `[weight [C], bias [C], statistics mask [C]]`.
    case normalization(Normalization)
    /// An element-wise activation `y = f(x)` (see `Activation`).
    case activation(Activation)
    /// An element-wise binary op with NumPy broadcasting: two inputs of one
    /// rank whose dimensions are equal or 1, or one input and a constant
    /// parameter shaped like one sample of it (dimensions equal or 1).
    case binary(Binary)
    /// Concatenation along channels (of `[N, C, H, W]` or `[N, C, D, H, W]` inputs).
    case concat
    case maxPool(Pool2d)
    case avgPool(Pool2d)
    /// Max pooling of `[N, C, D, H, W]` over `kd x kh x kw` windows (see `Pool3d`).
    case maxPool3d(Pool3d)
    /// Average pooling of `[N, C, D, H, W]` (see `Pool3d`).
    case avgPool3d(Pool3d)
    /// Pooling to a fixed output size: output row `i` of `oh` covers input
    /// rows `floor(i H / oh) ..< ceil((i + 1) H / oh)` (PyTorch's adaptive bins).
    case adaptivePool(height: Int, width: Int, max: Bool)
    /// `[N, C, ...] -> [N, C, 1, ...]`: the mean over every position (H, W, or D, H, W).
    case globalAvgPool
    /// `[N, C, H, W] -> [N, C * H * W]`.
    case flatten
    /// `y = x W^T + b`; parameters `[weight [O, I], bias [O]?]`.
    case linear
    /// Resizing H and W to a fixed size (see `Resize`).
    case resize(Resize)
    /// Resizing D, H and W of `[N, C, D, H, W]` to a fixed size (see `Resize3d`).
    case resize3d(Resize3d)
    /// Stereo cost volume: `y[n, d, h, w] = scale * sum_c left[n, c, h, w] * right[n, c, h, w - d]`
    /// for `d` in `0..<maxDisparity` (zero where `w - d < 0`); `scale` is
    /// `1 / C` for a mean and stays fixed when channels are pruned.
    case correlation(maxDisparity: Int, scale: Float)
    /// The 3-D stereo cost volumes `[N, C, H, W]` x2 -> `[N, K, D, H, W]`
    /// (PSMNet's concatenation, GwcNet's group-wise correlation; see `CostVolume`).
    case costVolume(CostVolume)
    /// Softmax over channels.
    case softmax
    /// Disparity regression `y[n, 0, h, w] = sum_d d * softmax_d(sign * x[n, d, h, w])` over the
    /// channels of `[N, D, H, W]`, or over `D` of a one-channel volume `[N, 1, D, H, W]`:
    /// `sign = -1` is GC-Net's soft argmin of a cost (Kendall et al. 2017), `sign = 1`
    /// PSMNet's and GwcNet's regression of a score (Chang and Chen 2018, Guo et al. 2019).
    case softArgmin(sign: Float)
    /// Passes its input through (also dropout at inference).
    case identity
    /// ShuffleNet's channel shuffle (Zhang et al. 2018): `[N, g k, H, W]`
    /// viewed as `[N, g, k, H, W]`, transposed to `[N, k, g, H, W]` and
    /// flattened back, so output channel `j g + i` is input channel `i k + j`.
    case channelShuffle(groups: Int)
    /// Part `index` of `parts` equal slices along channels (`torch.chunk`).
    case channelChunk(index: Int, parts: Int)
    /// An op the engine has no kernel for, whose output channel `c` reads
    /// only channel `c` of each input (inputs with one channel broadcast):
    /// its channels can be pruned and compacted, but the network cannot run.
    /// `shape` is its output's shape without the batch dimension.
    case channelwise(shape: [Int])
}

extension Op {
    /// The ops without their settings, named as kcp.h (`KCP_OP_<NAME>`,
    /// upper-cased) and Python name them, in the order of their `KCP_OP_*`
    /// codes (the C ABI's op table numbers them so).
    public enum Kind: String, CaseIterable, Sendable {
        case conv2d, batchNorm = "batchnorm", activation, binary, concat, maxPool = "max_pool", avgPool = "avg_pool",
             adaptivePool = "adaptive_pool", globalAvgPool = "global_avg_pool", flatten, linear, resize, correlation,
             softmax, softArgmin = "soft_argmin", identity, channelShuffle = "channel_shuffle",
             channelChunk = "channel_chunk", channelwise, normalization, convTranspose2d = "conv_transpose2d",
             conv3d, convTranspose3d = "conv_transpose3d", maxPool3d = "max_pool3d", avgPool3d = "avg_pool3d", resize3d,
             costVolume = "cost_volume"
    }
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

/// Transposed convolution (PyTorch's `conv_transpose2d`, ONNX `ConvTranspose`):
/// every input pixel scatters its kernels,
/// `y[n, g*O/g + o, h*s + p*d - top, w*s + q*d - left] += W[g*I/g + j, o, p, q] * x[n, g*I/g + j, h, w]`
/// (entries landing outside `y` dropped), plus `b[o]`. The output is
/// `(in - 1) * stride - (top + bottom) + dilation * (k - 1) + outputPadding + 1`
/// along each axis: `conv` with these settings maps it back to the input's size.
public struct ConvTranspose2d: Equatable, Sendable {
    public var stride: (Int, Int)
    /// `(top, left, bottom, right)`: rows and columns cropped from the full scatter.
    public var padding: (Int, Int, Int, Int)
    /// Rows and columns added at the bottom and right (smaller than the stride or the dilation).
    public var outputPadding: (Int, Int)
    public var dilation: (Int, Int)
    public var groups: Int

    public init(stride: (Int, Int) = (1, 1), padding: (Int, Int, Int, Int) = (0, 0, 0, 0),
                outputPadding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1)
    {
        (self.stride, self.padding, self.outputPadding) = (stride, padding, outputPadding)
        (self.dilation, self.groups) = (dilation, groups)
    }

    /// The convolution whose input adjoint this is: it reads `y` and writes `x`'s shape, with the weight as it is.
    var conv: Conv2d { Conv2d(stride: stride, padding: padding, dilation: dilation, groups: groups) }

    public static func == (a: ConvTranspose2d, b: ConvTranspose2d) -> Bool {
        a.conv == b.conv && a.outputPadding == b.outputPadding
    }
}

/// The depth axis of a volumetric convolution: input slice `od * stride + t * dilation - front`
/// feeds output slice `od` through kernel slice `t`; `front` and `back` are zero slices padded before and after.
public struct DepthAxis: Equatable, Sendable {
    public var stride: Int, front: Int, back: Int, dilation: Int

    public init(stride: Int = 1, front: Int = 0, back: Int = 0, dilation: Int = 1) {
        (self.stride, self.front, self.back, self.dilation) = (stride, front, back, dilation)
    }
}

/// Volumetric convolution (PyTorch's `conv3d`, ONNX `Conv` with 3-D kernels),
/// NCDHW: `y[n, o, z, h, w] = b[o] + sum_{t, j, p, q} W[o, j, t, p, q] * x[n, g*I/g + j, z*sd + t*dd - front, h*sh + p*dh - top, w*sw + q*dw - left]`.
///
/// It is a sum over the `kd` depth taps of 2-D convolutions of depth slices,
/// `y[:, :, z] = b + sum_t conv2d(x[:, :, z*sd + t*dd - front], W[:, :, t])`,
/// so its settings are a `Conv2d` for the (H, W) plane (with the groups) and
/// a `DepthAxis`, and its kernel runs the plane conv's kernels over the
/// depth taps' slices stacked as channels (`conv3dForward`). Channels are
/// pruned, compacted and scored as a conv2d's: a kernel is one
/// `kd x kh x kw` slice `W[o, j]`.
public struct Conv3d: Equatable, Sendable {
    public var depth: DepthAxis
    public var plane: Conv2d

    public init(depth: DepthAxis = DepthAxis(), plane: Conv2d = Conv2d()) { (self.depth, self.plane) = (depth, plane) }

    public var groups: Int { plane.groups }
}

/// Volumetric transposed convolution (PyTorch's `conv_transpose3d`, ONNX
/// `ConvTranspose` with 3-D kernels): every input voxel scatters its kernels,
/// `y[n, g*O/g + o, z*sd + t*dd - front, h*sh + p*dh - top, w*sw + q*dw - left] += W[g*I/g + j, o, t, p, q] * x[n, g*I/g + j, z, h, w]`
/// (entries outside `y` dropped), plus `b[o]`: the adjoint of `conv` in its
/// input, as `ConvTranspose2d` is of `Conv2d`. Each axis's output size is
/// `(in - 1) * stride - (begin + end) + dilation * (k - 1) + outputPadding + 1`.
public struct ConvTranspose3d: Equatable, Sendable {
    public var depth: DepthAxis
    /// Slices added at the back (smaller than the depth stride or dilation).
    public var depthOutputPadding: Int
    public var plane: ConvTranspose2d

    public init(depth: DepthAxis = DepthAxis(), depthOutputPadding: Int = 0, plane: ConvTranspose2d = ConvTranspose2d()) {
        (self.depth, self.depthOutputPadding, self.plane) = (depth, depthOutputPadding, plane)
    }

    public var groups: Int { plane.groups }
    /// The convolution whose input adjoint this is: it reads `y` and writes `x`'s shape, with the weight as it is.
    var conv: Conv3d { Conv3d(depth: depth, plane: plane.conv) }
}

public struct Pool2d: Equatable, Sendable {
    public var kernel: (Int, Int)
    public var stride: (Int, Int)
    /// `(top, left, bottom, right)`.
    public var padding: (Int, Int, Int, Int)
    /// Average pooling only: whether padded zeros count in the divisor.
    public var countIncludePad: Bool
    /// Whether a last, partial window is kept (PyTorch's `ceil_mode`).
    public var ceilMode: Bool
    /// The spacing of a window's taps.
    public var dilation: (Int, Int)

    public init(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int, Int, Int) = (0, 0, 0, 0),
                countIncludePad: Bool = false, ceilMode: Bool = false, dilation: (Int, Int) = (1, 1))
    {
        (self.kernel, self.stride, self.padding, self.countIncludePad) = (kernel, stride, padding, countIncludePad)
        (self.ceilMode, self.dilation) = (ceilMode, dilation)
    }

    public static func == (a: Pool2d, b: Pool2d) -> Bool {
        a.kernel == b.kernel && a.stride == b.stride && a.padding == b.padding && a.countIncludePad == b.countIncludePad
            && a.ceilMode == b.ceilMode && a.dilation == b.dilation
    }
}

/// Pooling of `[N, C, D, H, W]` over windows of `kd` slices (from `z * stride - front`,
/// taps `dilation` apart) by `kh x kw` (the `plane` settings, with `countIncludePad`
/// and `ceilMode` for every axis), as PyTorch's `max_pool3d` and `avg_pool3d`.
/// A window is the product of its depth taps and its plane window, and so
/// is the average's divisor, so the op is separable: pooling each slice's
/// plane (`plane`), then each column of the pooled slices over depth
/// (`depthPool`, a `kd x 1` pool of `[N, C, D, H'*W']`). A max pool's
/// first maximum in `(d, h, w)` order is the first slice's first maximum
/// among the slices that hold the window's maximum, so gradients go where
/// PyTorch sends them.
public struct Pool3d: Equatable, Sendable {
    public var kernel: Int, stride: Int, front: Int, back: Int, dilation: Int
    public var plane: Pool2d

    public init(kernel: Int, stride: Int, front: Int = 0, back: Int = 0, dilation: Int = 1, plane: Pool2d) {
        (self.kernel, self.stride, self.front, self.back, self.dilation) = (kernel, stride, front, back, dilation)
        self.plane = plane
    }

    /// The depth pass, pooling `[N, C, D, H'*W']` over `kd x 1` windows.
    var depthPool: Pool2d {
        Pool2d(kernel: (kernel, 1), stride: (stride, 1), padding: (front, 0, back, 0), countIncludePad: plane.countIncludePad,
               ceilMode: plane.ceilMode, dilation: (dilation, 1))
    }
}

/// Resizing `[N, C, D, H, W]` to `depth x height x width`, each axis as
/// `Resize` maps it (nearest, or linear: trilinear, PyTorch's
/// `F.interpolate(mode="trilinear")`). Trilinear weights are products of one
/// weight per axis, so the op is separable: resizing each slice's plane
/// (`plane`), then each column of the resized slices over depth
/// (`depthResize`, a resize of `[N, C, D, H'*W']` that keeps its width).
public struct Resize3d: Equatable, Sendable {
    public var depth: Int
    public var plane: Resize

    public init(depth: Int, plane: Resize) { (self.depth, self.plane) = (depth, plane) }

    /// The depth pass, resizing `[N, C, D, columns]` to `[N, C, depth, columns]`.
    func depthResize(columns: Int) -> Resize {
        Resize(height: depth, width: columns, mode: plane.mode, alignCorners: plane.alignCorners)
    }
}

public enum UpsampleMode: Int32, Sendable {
    case nearest = 0
    case bilinear = 1
}

/// Resizing to `height x width`. Nearest: `src = floor(dst * in / out)`
/// (PyTorch `nearest`, ONNX `asymmetric` + `floor`). Bilinear: half-pixel
/// centers, `src = (dst + 0.5) * in / out - 0.5` clamped to the edges
/// (`align_corners=False`), or `src = dst * (in - 1) / (out - 1)` (`alignCorners`).
public struct Resize: Equatable, Sendable {
    public var height: Int
    public var width: Int
    public var mode: UpsampleMode
    public var alignCorners: Bool

    public init(height: Int, width: Int, mode: UpsampleMode, alignCorners: Bool = false) {
        (self.height, self.width, self.mode, self.alignCorners) = (height, width, mode, alignCorners)
    }
}

extension Op {
    /// Whether the op multiplies feature channels and sums them (DispNetC's
    /// correlation, a group correlation volume): a pruned channel must be 0
    /// there in the masked network, not `f(0)` of an activation.
    var multipliesFeatures: Bool {
        switch self {
        case .correlation: return true
        case let .costVolume(volume): return volume.kind == .groupCorrelation
        default: return false
        }
    }
}

/// A stereo cost volume over disparities `d < maxDisparity` from left and
/// right features `[N, C, H, W]`, zero where `w < d` (the right image has no
/// pixel `w - d` there):
/// - `concatenation` (PSMNet, Chang and Chen 2018; GwcNet's `build_concat_volume`):
///   `[N, 2C, D, H, W]`, `y[n, c, d, h, w] = left[n, c, h, w]` and
///   `y[n, C + c, d, h, w] = right[n, c, h, w - d]` for `w >= d`;
///   `groups = 1`, `scale = 1`.
/// - `groupCorrelation` (GwcNet, Guo et al. 2019, `build_gwc_volume`):
///   `[N, G, D, H, W]`, `y[n, g, d, h, w] = scale * sum_{c in group g} left[n, c, h, w] * right[n, c, h, w - d]`
///   over the `C / G` channels of group `g`; `scale = G / C` for GwcNet's mean.
///
/// DispNetC's `correlation` is the group correlation with `G = 1` and the
/// volume's single channel squeezed (it shares the kernel); it stays its own
/// op so that the C ABI's codes and the ONNX files of existing models keep
/// their meaning. `scale` stays fixed when channels are pruned, so that a
/// compact volume equals the masked one (every group loses the same
/// positions; pruned channels are zero in the masked network).
public struct CostVolume: Equatable, Sendable {
    public enum Kind: Int32, CaseIterable, Sendable {
        case concatenation = 0
        case groupCorrelation = 1
    }

    public var kind: Kind
    public var maxDisparity: Int
    public var groups: Int
    public var scale: Float

    public init(_ kind: Kind, maxDisparity: Int, groups: Int = 1, scale: Float = 1) {
        (self.kind, self.maxDisparity, self.groups, self.scale) = (kind, maxDisparity, groups, scale)
    }
}

/// The element-wise activations: one op, a kind and up to two constants.
public struct Activation: Equatable, Sendable {
    public enum Kind: Int32, CaseIterable, Sendable {
        /// `max(x, 0)`.
        case relu = 0
        /// `min(max(x, alpha), beta)` (ReLU6: `alpha = 0`, `beta = 6`).
        case clip = 1
        /// `x` where `x >= 0`, else `alpha * x`.
        case leakyRelu = 2
        /// `1 / (1 + exp(-x))`.
        case sigmoid = 3
        case tanh = 4
        /// `x * sigmoid(x)` (SiLU, swish).
        case silu = 5
        /// `x Phi(x) = x / 2 * (1 + erf(x / sqrt 2))` (Hendrycks and Gimpel 2016).
        case gelu = 6
        /// `x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))`.
        case geluTanh = 7
        /// `x * min(max(x / 6 + 1 / 2, 0), 1)` (MobileNetV3, Howard et al. 2019).
        case hardswish = 8
        /// `min(max(alpha * x + beta, 0), 1)` (PyTorch: `alpha = 1/6`, `beta = 1/2`).
        case hardsigmoid = 9
        /// `x` where `x > 0`, else `alpha * (exp(x) - 1)`.
        case elu = 10
        /// `x * tanh(softplus(x))` (Misra 2019).
        case mish = 11
        /// `log(1 + exp(alpha x)) / alpha`, or `x` where `alpha x > beta` (PyTorch's threshold).
        case softplus = 12
        /// `alpha * x + beta` (a scalar multiply and add).
        case affine = 13
    }

    public var kind: Kind
    public var alpha: Float
    public var beta: Float

    public init(_ kind: Kind, alpha: Float = 0, beta: Float = 0) { (self.kind, self.alpha, self.beta) = (kind, alpha, beta) }

    public static let relu = Activation(.relu)
    public static let sigmoid = Activation(.sigmoid)

    /// Whether `f(0) = 0`, so that a pruned (zero) channel stays zero through it.
    public var keepsZero: Bool {
        switch kind {
        case .relu, .leakyRelu, .tanh, .silu, .gelu, .geluTanh, .hardswish, .elu, .mish: return true
        case .clip: return alpha <= 0 && beta >= 0
        case .sigmoid, .hardsigmoid, .softplus: return false
        case .affine: return beta == 0
        }
    }
}

/// Normalisation over groups of channels, one op for LayerNorm over
/// channels at each position (`groups = 1`, not `spatial`: ConvNeXt),
/// GroupNorm (`spatial`; Wu and He 2018) and InstanceNorm (`groups = C`,
/// `spatial`). Per sample and group (and position, unless `spatial`):
/// `y_c = (x_c - mean) / sqrt(var + epsilon) * weight_c + bias_c`, with
/// `mean = sum s_c x_c / m` and `var = sum s_c (x_c - mean)^2 / m` over the
/// group's channels (and positions), `s_c` the statistics mask (1, or 0
/// where a masked network pruned the channel, so that its statistics are
/// the compact network's) and `m` the number of entries it counts (both
/// moments are 0 where it counts none).
public struct Normalization: Equatable, Sendable {
    public var groups: Int
    public var spatial: Bool
    public var epsilon: Float

    public init(groups: Int, spatial: Bool, epsilon: Float) {
        (self.groups, self.spatial, self.epsilon) = (groups, spatial, epsilon)
    }
}

/// An element-wise binary op `y = a op b`; with a constant parameter `c`,
/// `y = x op c`, or `c op x` if `constantFirst`.
public struct Binary: Equatable, Sendable {
    public enum Kind: Int32, CaseIterable, Sendable {
        case add = 0, sub = 1, mul = 2, div = 3
    }

    public var kind: Kind
    public var constantFirst: Bool

    public init(_ kind: Kind, constantFirst: Bool = false) { (self.kind, self.constantFirst) = (kind, constantFirst) }

    public static let add = Binary(.add)
    public static let mul = Binary(.mul)
}
