/// Random image augmentation of training batches: horizontal flips and
/// translations by zero padding and cropping (the CIFAR recipe of He et al.
/// 2016: pad 4, crop back at a random offset). Per-pixel targets move with
/// their images; pixels shifted in from the border get `fillLabel`.
public struct Augmentation: Sendable, Equatable {
    /// Flip each sample horizontally with probability 1/2.
    public var flip: Bool
    /// Shift each sample by up to this many pixels in each direction.
    public var shift: Int

    public init(flip: Bool = false, shift: Int = 0) { (self.flip, self.shift) = (flip, shift) }

    public static let none = Augmentation()

    /// `inputs` (each `[N, C, H, W]`) and per-pixel `targets` (`[N, H, W]`
    /// or `[N, 1, H, W]`, or nil) transformed sample by sample, the same way
    /// across inputs and targets.
    func apply(_ inputs: [Tensor], targets: Tensor?, fillLabel: Float, rng: inout SplitMix64) -> ([Tensor], Tensor?) {
        if !flip && shift == 0 { return (inputs, targets) }
        var (inputs, targets) = (inputs, targets)
        for n in 0..<inputs[0].shape[0] {
            let mirrored = flip && rng.next() & 1 == 1
            let dy = shift > 0 ? Int(rng.next() % UInt64(2 * shift + 1)) - shift : 0
            let dx = shift > 0 ? Int(rng.next() % UInt64(2 * shift + 1)) - shift : 0
            for k in inputs.indices { transform(&inputs[k], sample: n, mirrored, dy, dx, fill: 0) }
            if targets != nil { transform(&targets!, sample: n, mirrored, dy, dx, fill: fillLabel) }
        }
        return (inputs, targets)
    }
}

/// `y[c, h, w] = x[c, h - dy, w' - dx]` with `w' = W - 1 - w` if mirrored,
/// `fill` outside, for every plane of sample `n` (`[N, ..., H, W]`).
private func transform(_ t: inout Tensor, sample n: Int, _ mirrored: Bool, _ dy: Int, _ dx: Int, fill: Float) {
    let (height, width) = (t.shape[t.shape.count - 2], t.shape[t.shape.count - 1])
    let plane = height * width, planes = t.count / t.shape[0] / plane
    for p in 0..<planes {
        let base = (n * planes + p) * plane
        let source = Array(t.data[base..<(base + plane)])
        for h in 0..<height {
            for w in 0..<width {
                let (sh, sw) = (h - dy, (mirrored ? width - 1 - w : w) - dx)
                t.data[base + h * width + w] = sh >= 0 && sh < height && sw >= 0 && sw < width ? source[sh * width + sw] : fill
            }
        }
    }
}
