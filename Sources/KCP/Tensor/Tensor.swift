/// A dense, row-major float32 array the engine owns (NCHW for activations).
public struct Tensor: Equatable, Sendable {
    public var shape: [Int] { didSet { forms.clear() } }
    public var data: [Float] { didSet { forms.clear() } }
    /// Forms of the values that kernels made from them (`DerivedForms`).
    let forms = DerivedForms()

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not match \(data.count) elements")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// A tensor whose every element `fill` writes (the memory is not zeroed first).
    init(shape: [Int], filling fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = shape.reduce(1, *)
        self.init(shape: shape, data: [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(buffer)
            initialized = count
        })
    }

    public var count: Int { data.count }

    /// Equal shapes and values (the derived forms aside).
    public static func == (a: Tensor, b: Tensor) -> Bool { a.shape == b.shape && a.data == b.data }

    /// The form `kind` (of layout `layout`) that `make` derives from these values, made once.
    func derived<Form: Sendable>(_ kind: String, layout: [Int], make: () -> Form) -> Form {
        forms.form(DerivedForms.Key(kind: kind, layout: layout), of: data, make: make)
    }

    /// Samples `range` of a tensor whose first axis is the batch.
    func samples(_ range: Range<Int>) -> Tensor {
        let size = count / shape[0]
        return Tensor(shape: [range.count] + shape.dropFirst(),
                      data: Array(data[(range.lowerBound * size)..<(range.upperBound * size)]))
    }
}
