import Synchronization

/// Forms that kernels derive from a tensor's values (a conv's weights
/// packed into the blocks its kernel reads, or cropped to the taps that
/// read the input), made once and kept with the tensor while its values
/// stay the same, as onnxruntime packs a model's weights once at load.
/// Packing ResNet-50's 512 -> 512 3x3 weights took about as long as the
/// conv itself on 7x7 outputs.
///
/// Copies of a tensor share its forms until one of them changes: any change
/// to a tensor's values or shape clears them (`Tensor`'s observers), and each
/// form is kept with the address of the values it came from, which a copy
/// holds only while it shares them (copy on write).
final class DerivedForms: Sendable {
    /// What a form is: the kernel's name and the numbers that decide its layout.
    struct Key: Hashable, Sendable {
        let kind: String, layout: [Int]
    }

    private let forms = Mutex<[Key: (values: UnsafeRawPointer?, form: any Sendable)]>([:])
    /// Whether `forms` is empty, read without the lock by `clear`, which runs on every change of the values.
    private let empty = Atomic<Bool>(true)

    /// The form `key` of `values`, made by `make` unless it was already.
    func form<Form: Sendable>(_ key: Key, of values: [Float], make: () -> Form) -> Form {
        let address = values.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        return forms.withLock { forms in
            if let kept = forms[key], kept.values == address, let form = kept.form as? Form { return form }
            let form = make()
            forms[key] = (address, form)
            empty.store(false, ordering: .releasing)
            return form
        }
    }

    /// Forgets every form.
    func clear() {
        guard !empty.load(ordering: .acquiring) else { return }
        forms.withLock { forms in
            forms = [:]
            empty.store(true, ordering: .releasing)
        }
    }
}
