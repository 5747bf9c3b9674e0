import COpenBLAS

/// What the engine chose for this machine, one `key value` line each:
/// `isa` (the active `InstructionSet`), `supported` (the sets this CPU can
/// run, widest first, comma-separated), `blas` (the kernel set OpenBLAS
/// chose at load time, its `openblas_get_corename`) and `threads`.
public var engineInfo: String {
    """
    isa \(InstructionSet.active.rawValue)
    supported \(InstructionSet.supported.map(\.rawValue).joined(separator: ","))
    blas \(String(cString: openblas_get_corename()))
    threads \(Threads.count)

    """
}
