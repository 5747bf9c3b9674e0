import Synchronization
import Testing
@testable import KCP

// Every instruction set this CPU runs, on the conv paths whose inner loops
// it builds (the direct kernel's register tiles, the fused epilogue on
// direct, unfolded and tap-product tiles): each against the naive reference, and all of
// them bitwise equal (the builds do the same float operations in the same
// order). Serialized: only this suite switches `InstructionSet.active`, so
// nothing else can switch it back while a case runs.

/// `InstructionSet.active` is process-wide while the suites run side by
/// side: the switches happen under this lock (`withInstructionSet`), and the
/// tests elsewhere that compare several conv runs bitwise hold it
/// (`withSteadyInstructionSet`), or a switch between their runs (AVX-512's
/// pointwise kernel on one, OpenBLAS on the next) would show as a difference.
private let instructionSetSwitch = Mutex(())

/// `body` with `set` active, while no other test switches the set or compares runs.
func withInstructionSet<R>(_ set: InstructionSet, _ body: () -> R) -> R {
    instructionSetSwitch.withLock { _ in InstructionSet.with(set, body) }
}

/// `body` while no test switches the instruction set.
func withSteadyInstructionSet<R>(_ body: () throws -> R) throws -> R {
    try instructionSetSwitch.withLock { _ in try body() }
}

@Suite("Instruction sets", .serialized)
struct InstructionSetTests {
    @Test("the default is the widest supported set, and KCP_ISA names are the raw values")
    func defaultIsTheWidest() {
        #expect(!InstructionSet.supported.isEmpty)
        #expect(InstructionSet.allCases.map(\.rawValue) == ["avx512", "avx2", "native"])
        #if arch(x86_64)
        #expect(InstructionSet.supported.last == .avx2)
        #endif
    }

    @Test("each set's epilogue activations are activationForward's, bitwise, past the clamps and on infinities and NaN")
    func epilogueActivations() {
        let values: [Float] = (0..<37).map { Float($0 - 18) / 3 } + [-0.0, .infinity, -.infinity, .nan]  // 2 vectors, 9 more
        for set in InstructionSet.supported {
            for kind in ConvEpilogue.activations {
                var line = [Float](repeating: 0, count: values.count)
                withInstructionSet(set) {
                    convEpilogue(values, valuePitch: 0, to: &line, linePitch: 0, rows: 1, count: values.count, bias: nil,
                                 scale: nil, shift: nil, channelStep: 0, residual: nil, relu: kind == .relu,
                                 hardswish: kind == .hardswish)
                }
                let expected = activationForward(Tensor(shape: [values.count], data: values), Activation(kind)).data
                #expect(line.map(\.bitPattern) == expected.map(\.bitPattern), "\(set), \(kind)")
            }
        }
    }

    @Test("each supported set matches the naive conv, with the fused epilogue, bitwise equal to the others",
          arguments: directCases + depthwiseVectorCases + winogradCases + tapCases + unfoldCases.filter {
              // Those the channel-vector and pointwise kernels take on some sets only (`wideKernelAgrees`).
              $0.conv.padding.0 >= 0 && $0.conv.padding.1 >= 0 && !ChannelVectorConvolution.pays(geometry($0))
                  && !PointwiseConvolution.pays(geometry($0))
          })
    func everyPathAgrees(_ c: ConvCase) {
        agree(c) { x, w, b, shape, epilogue in
            conv2dForward(x, weight: w, bias: b, c.conv, outputShape: shape, normalization: epilogue?.normalization,
                          residual: epilogue?.residual, activation: epilogue?.activation)
        }
    }

    @Test("each supported set runs the kernels written for AVX-512 as the naive conv, with the fused epilogue, bitwise equal",
          arguments: WideKernel.allCases.flatMap { kernel in kernel.cases.map { (kernel, $0) } })
    func wideKernelAgrees(_ kernel: WideKernel, _ c: ConvCase) {
        agree(c) { x, w, b, _, epilogue in
            pathForward(kernel.path, x, weight: w, bias: b, c, normalization: epilogue?.normalization,
                        residual: epilogue?.residual, activation: epilogue?.activation)
        }
    }

    /// The epilogue of a case: per-channel `(scale, shift)`, a residual or none, and an activation.
    typealias Epilogue = (normalization: (scale: [Float], shift: [Float]), residual: Tensor?, activation: Activation.Kind)

    /// Case `c` by `conv` (input, weight, bias, output shape, and the epilogue or nil) on every supported set, plain,
    /// with each activation of the epilogue and a residual, and with a hardswish and none (kernels with the channels
    /// along the lanes apply that epilogue there): each against the naive reference, all bitwise equal.
    private func agree(_ c: ConvCase, _ conv: (Tensor, Tensor, Tensor?, [Int], Epilogue?) -> Tensor) {
        var rng = SplitMix64(seed: 31)
        let s = geometry(c), x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng)
        let b = c.bias ? netTensor([c.weight[0]], &rng) : nil
        let affine = (scale: netTensor([s.outputs], &rng).data, shift: netTensor([s.outputs], &rng).data)
        let shape = [s.batch, s.outputs, s.outHeight, s.outWidth], residual = netTensor(shape, &rng)
        let reference = naiveConv2d(x, w, b, c.conv)
        /// The reference through the epilogue, then `f`.
        func expected(residual: Tensor? = residual, _ f: (Double) -> Double) -> NetReference {
            NetReference(shape: shape, data: reference.data.enumerated().map { k, v in
                let o = k / (s.outHeight * s.outWidth) % s.outputs
                return f(v * Double(affine.scale[o]) + Double(affine.shift[o]) + Double(residual?.data[k] ?? 0))
            })
        }
        let results = InstructionSet.supported.map { set in
            withInstructionSet(set) {
                [conv(x, w, b, shape, nil)] + [Activation.Kind.relu, .hardswish].map { conv(x, w, b, shape, (affine, residual, $0)) }
                    + [conv(x, w, b, shape, (affine, nil, .hardswish))]
            }
        }
        let hardswish = { (v: Double) in v * min(max(v / 6 + 0.5, 0), 1) }
        for (set, result) in zip(InstructionSet.supported, results) {
            netExpect(result[0], reference)
            netExpect(result[1], expected { max($0, 0) })
            netExpect(result[2], expected(hardswish))
            netExpect(result[3], expected(residual: nil, hardswish))
            #expect(result == results[0], "\(set) differs from \(InstructionSet.supported[0])")
        }
    }
}

/// The kernels written for AVX-512's registers (convs take the channel-vector kernel on AVX2's short rows too),
/// each called itself on its cases.
enum WideKernel: String, CaseIterable, Sendable {
    case channelVector, pointwise

    var path: ConvPath { self == .channelVector ? channelVectorConv2d : pointwiseConv2d }
    var cases: [ConvCase] { self == .channelVector ? channelVectorCases : pointwiseKernelCases }
}
