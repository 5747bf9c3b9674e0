import Testing
@testable import KCP

// Pooling beyond plain windows: PyTorch's ceil_mode (a last, partial window),
// dilated max pooling, and adaptive pooling to a fixed size (bins that need
// not divide the input). Literal sizes and values, the slow references of
// NetworkReference.swift, and finite differences of the backward.

let ceilPoolCases: [NetPoolCase] = [
    NetPoolCase(label: "3x3 stride 2, ceil", input: [2, 2, 8, 9],
                pool: Pool2d(kernel: (3, 3), stride: (2, 2), ceilMode: true)),
    NetPoolCase(label: "3x3 stride 2 padding 1, ceil, include pad", input: [1, 2, 6, 7],
                pool: Pool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1), countIncludePad: true, ceilMode: true)),
    NetPoolCase(label: "2x3 stride (2,2) padding (0,1,1,1), ceil, include pad", input: [2, 2, 7, 6],
                pool: Pool2d(kernel: (2, 3), stride: (2, 2), padding: (0, 1, 1, 1), countIncludePad: true, ceilMode: true)),
    NetPoolCase(label: "3x3 stride 3 padding 1, ceil drops a window starting in the padding", input: [1, 2, 5, 5],
                pool: Pool2d(kernel: (3, 3), stride: (3, 3), padding: (1, 1, 1, 1), ceilMode: true)),
    NetPoolCase(label: "2x2 stride 2, ceil, exclude pad", input: [1, 3, 5, 7],
                pool: Pool2d(kernel: (2, 2), stride: (2, 2), ceilMode: true)),
]

/// Max pooling only (average pooling has no dilation in PyTorch).
let dilatedPoolCases: [NetPoolCase] = [
    NetPoolCase(label: "3x3 dilation 2", input: [2, 2, 9, 8], pool: Pool2d(kernel: (3, 3), stride: (1, 1), dilation: (2, 2))),
    NetPoolCase(label: "3x2 stride (2,1) dilation (2,3) padding 1", input: [1, 2, 9, 10],
                pool: Pool2d(kernel: (3, 2), stride: (2, 1), padding: (1, 1, 1, 1), dilation: (2, 3))),
    NetPoolCase(label: "3x3 stride 2 dilation 2 padding 1, ceil", input: [1, 2, 8, 10],
                pool: Pool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1), ceilMode: true, dilation: (2, 2))),
]

/// Rows wide enough for whole 8-output vectors and a partial last one, for
/// each stride's phases of the padded line (`PoolLines`), the pads, ceil mode and dilation.
let widePoolCases: [NetPoolCase] = [
    NetPoolCase(label: "3x3 stride 2 padding 1 (ResNet's stem) on 23x37", input: [1, 3, 23, 37],
                pool: Pool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1))),
    NetPoolCase(label: "3x3 stride 1 padding 1, include pad, on 9x29", input: [2, 2, 9, 29],
                pool: Pool2d(kernel: (3, 3), stride: (1, 1), padding: (1, 1, 1, 1), countIncludePad: true)),
    NetPoolCase(label: "2x4 stride 3 padding (0,2,1,2), ceil, on 7x53", input: [1, 2, 7, 53],
                pool: Pool2d(kernel: (2, 4), stride: (3, 3), padding: (0, 2, 1, 2), ceilMode: true)),
    NetPoolCase(label: "3x3 stride 2 dilation 3 padding 1, ceil, on 11x41", input: [1, 2, 11, 41],
                pool: Pool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1), ceilMode: true, dilation: (3, 3))),
]

/// Input sizes and output sizes of adaptive pools, most not dividing.
let adaptiveCases: [([Int], Int, Int)] = [([2, 3, 7, 5], 3, 2), ([1, 2, 5, 5], 3, 3), ([1, 2, 4, 6], 6, 4),
                                          ([2, 2, 6, 6], 3, 2), ([1, 3, 5, 7], 1, 1)]

@Suite("Pooling: ceil mode, dilation, adaptive")
struct PoolingVariantsTests {
    @Test("PyTorch's ceil_mode sizes: MaxPool2d(3, 2, ceil_mode=True) on 56 -> 28, on 7 -> 3, ...")
    func ceilModeSizes() throws {
        let size = { (input: Int, pool: Pool2d) in
            try Op.maxPool(pool).outputShape(inputs: [[1, 1, input, input]], parameters: [])[2]
        }
        let ceil = Pool2d(kernel: (3, 3), stride: (2, 2), ceilMode: true)
        var floor = ceil
        floor.ceilMode = false
        #expect(try size(56, ceil) == 28 && size(56, floor) == 27)
        #expect(try size(7, ceil) == 3 && size(7, floor) == 3)
        #expect(try size(112, ceil) == 56 && size(112, floor) == 55) // GoogLeNet's stem
        // 3x3 stride 3 padding 1 on 5: ceil would give 3, but the last window would start in the padding.
        #expect(try size(5, Pool2d(kernel: (3, 3), stride: (3, 3), padding: (1, 1, 1, 1), ceilMode: true)) == 2)
        #expect(try size(5, Pool2d(kernel: (2, 2), stride: (2, 2), ceilMode: true)) == 3)
        // Dilation 2 spans 5 pixels: 7 -> 3 with stride 1.
        #expect(try size(7, Pool2d(kernel: (3, 3), stride: (1, 1), dilation: (2, 2))) == 3)
        for c in ceilPoolCases + dilatedPoolCases + widePoolCases {
            let shape = try Op.maxPool(c.pool).outputShape(inputs: [c.input], parameters: [])
            let expected = [naivePooledSize(c.input[2], kernel: c.pool.kernel.0, stride: c.pool.stride.0,
                                            padding: (c.pool.padding.0, c.pool.padding.2), dilation: c.pool.dilation.0,
                                            ceilMode: c.pool.ceilMode),
                            naivePooledSize(c.input[3], kernel: c.pool.kernel.1, stride: c.pool.stride.1,
                                            padding: (c.pool.padding.1, c.pool.padding.3), dilation: c.pool.dilation.1,
                                            ceilMode: c.pool.ceilMode)]
            #expect(Array(shape[2...]) == expected, "\(c.label)")
        }
    }

    @Test func literals() throws {
        // A row 1...6, windows of 3 with stride 2 and one pixel of padding each side, ceil mode:
        // windows [-1, 2), [1, 4), [3, 6), [5, 7); the last holds pixel 5 and one padded position.
        let row = Tensor(shape: [1, 1, 1, 6], data: [1, 2, 3, 4, 5, 6])
        let include = Pool2d(kernel: (1, 3), stride: (1, 2), padding: (0, 1, 0, 1), countIncludePad: true, ceilMode: true)
        netExpect(try netRunOp(.avgPool(include), [row]), shape: [1, 1, 1, 4], [1, 3, 5, 3])
        var exclude = include
        exclude.countIncludePad = false
        netExpect(try netRunOp(.avgPool(exclude), [row]), shape: [1, 1, 1, 4], [1.5, 3, 5, 6])
        netExpect(try netRunOp(.maxPool(include), [row]), shape: [1, 1, 1, 4], [2, 4, 6, 6])
        // Dilation 2 along a row: windows {0, 2}, {1, 3}, {2, 4}.
        let dilated = Pool2d(kernel: (1, 2), stride: (1, 1), dilation: (1, 2))
        netExpect(try netRunOp(.maxPool(dilated), [Tensor(shape: [1, 1, 1, 5], data: [1, 5, 2, 0, 3])]),
                  shape: [1, 1, 1, 3], [2, 5, 3])
        // Adaptive to 3 from 5: bins [0, 2), [1, 4), [3, 5).
        let five = Tensor(shape: [1, 1, 1, 5], data: [1, 2, 3, 4, 5])
        netExpect(try netRunOp(.adaptivePool(height: 1, width: 3, max: false), [five]), shape: [1, 1, 1, 3], [1.5, 3, 4.5])
        netExpect(try netRunOp(.adaptivePool(height: 1, width: 3, max: true), [five]), shape: [1, 1, 1, 3], [2, 4, 5])
        // Adaptive to more than the input: bins [0, 1), [0, 2), [1, 2) of a 2-pixel row.
        netExpect(try netRunOp(.adaptivePool(height: 1, width: 3, max: false), [Tensor(shape: [1, 1, 1, 2], data: [2, 4])]),
                  shape: [1, 1, 1, 3], [2, 3, 4])
    }

    @Test(arguments: ceilPoolCases)
    func ceilModeForward(_ c: NetPoolCase) throws {
        var rng = SplitMix64(seed: 50)
        let x = netTensor(c.input, &rng)
        netExpect(try netRunOp(.maxPool(c.pool), [x]), naivePool(x, c.pool, max: true))
        netExpect(try netRunOp(.avgPool(c.pool), [x]), naivePool(x, c.pool, max: false))
    }

    @Test(arguments: widePoolCases)
    func wideRowsForward(_ c: NetPoolCase) throws {
        var rng = SplitMix64(seed: 55)
        let x = netTensor(c.input, &rng)
        netExpect(try netRunOp(.maxPool(c.pool), [x]), naivePool(x, c.pool, max: true))
        if c.pool.dilation == (1, 1) {  // average pooling has no dilation
            netExpect(try netRunOp(.avgPool(c.pool), [x]), naivePool(x, c.pool, max: false))
        }
    }

    @Test(arguments: dilatedPoolCases)
    func dilatedMaxForward(_ c: NetPoolCase) throws {
        var rng = SplitMix64(seed: 51)
        let x = netTensor(c.input, &rng)
        netExpect(try netRunOp(.maxPool(c.pool), [x]), naivePool(x, c.pool, max: true))
    }

    @Test(arguments: adaptiveCases)
    func adaptiveForward(_ input: [Int], _ height: Int, _ width: Int) throws {
        var rng = SplitMix64(seed: 52)
        let x = netTensor(input, &rng)
        for useMax in [true, false] {
            netExpect(try netRunOp(.adaptivePool(height: height, width: width, max: useMax), [x]),
                      naiveAdaptivePool(x, height: height, width: width, max: useMax))
        }
    }

    @Test func adaptiveAverageToOneIsGlobalAverage() throws {
        var rng = SplitMix64(seed: 53)
        let x = netTensor([2, 3, 5, 7], &rng)
        let adaptive = try netRunOp(.adaptivePool(height: 1, width: 1, max: false), [x])
        let global = try netRunOp(.globalAvgPool, [x])
        #expect(adaptive.shape == global.shape)
        #expect(zip(adaptive.data, global.data).allSatisfy { abs($0 - $1) <= 1e-6 })
    }

    @Test(arguments: ceilPoolCases + dilatedPoolCases + widePoolCases)
    func finiteDifferences(_ c: NetPoolCase) {
        var rng = SplitMix64(seed: 54)
        // Values 0.05 apart: a step of 0.01 never changes a window's maximum.
        let x = fdDistinct(c.input, &rng)
        fdCheckOp(.maxPool(c.pool), [x], seed: 55)
        if c.pool.dilation == (1, 1) { fdCheckOp(.avgPool(c.pool), [x], seed: 56) }
    }

    @Test("max pooling passes a window's NaN on, and its gradient goes to the first maximal element of each window (or its first NaN; the first element where all are -inf)",
          arguments: widePoolCases + [NetPoolCase(label: "ResNet's stem, 3x3 stride 2 padding 1", input: [1, 3, 12, 20],
                                                  pool: Pool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1)))])
    func maxTiesAndNaN(_ c: NetPoolCase) throws {
        var rng = SplitMix64(seed: 60)
        let (height, width) = (c.input[2], c.input[3]), plane = height * width
        // Values in {0, 1, 2} (ties in every window), a few NaNs, and the last plane all -inf.
        let values: [Float] = (0..<c.input.reduce(1, *)).map { k in
            let u = rng.next() % 64
            return k >= c.input.reduce(1, *) - plane ? -.infinity : u == 0 ? .nan : Float(u % 3)
        }
        let x = Tensor(shape: c.input, data: values)
        let y = try netRunOp(.maxPool(c.pool), [x])
        let gradient = Tensor(shape: y.shape, data: (0..<y.count).map { Float($0 % 7 + 1) })
        let dx = pool2dBackward(x, c.pool, max: true, gradient: gradient)
        // The reference: each window's elements in row-major order inside the input.
        var expected = [Float](repeating: 0, count: x.count)
        let (outHeight, outWidth) = (y.shape[2], y.shape[3])
        for planeIndex in 0..<(c.input[0] * c.input[1]) {
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    var elements: [Int] = []
                    for p in 0..<c.pool.kernel.0 {
                        let iy = oy * c.pool.stride.0 - c.pool.padding.0 + p * c.pool.dilation.0
                        for q in 0..<c.pool.kernel.1 {
                            let ix = ox * c.pool.stride.1 - c.pool.padding.1 + q * c.pool.dilation.1
                            if iy >= 0 && iy < height && ix >= 0 && ix < width {
                                elements.append(planeIndex * plane + iy * width + ix)
                            }
                        }
                    }
                    let out = (planeIndex * outHeight + oy) * outWidth + ox
                    let nan = elements.first { values[$0].isNaN }
                    let best = elements.map { values[$0] }.max()!
                    #expect(nan == nil ? y.data[out] == best : y.data[out].isNaN, "output \(out)")
                    expected[nan ?? elements.first { values[$0] == best }!] += gradient.data[out]
                }
            }
        }
        let wrong = zip(dx.data, expected).filter { $0 != $1 }.count
        #expect(wrong == 0, "\(wrong) of \(x.count) gradients differ")
    }

    @Test("adaptive max pooling passes a bin's NaN on, and its gradient goes to the bin's first NaN")
    func adaptiveMaxNaN() throws {
        let x = Tensor(shape: [1, 1, 1, 6], data: [1, .nan, 3, 4, .nan, 2])
        let y = try netRunOp(.adaptivePool(height: 1, width: 2, max: true), [x])  // bins [0, 3), [3, 6)
        #expect(y.data[0].isNaN && y.data[1].isNaN)
        let dx = adaptivePoolBackward(x, max: true, gradient: Tensor(shape: [1, 1, 1, 2], data: [5, 7]))
        #expect(dx.data == [0, 5, 0, 0, 7, 0])
    }

    @Test(arguments: adaptiveCases)
    func adaptiveFiniteDifferences(_ input: [Int], _ height: Int, _ width: Int) {
        var rng = SplitMix64(seed: 57)
        let x = fdDistinct(input, &rng)
        fdCheckOp(.adaptivePool(height: height, width: width, max: true), [x], seed: 58)
        fdCheckOp(.adaptivePool(height: height, width: width, max: false), [x], seed: 59)
    }
}
