import COpenBLAS
import CPlatform

/// What the engine chose for this machine, one `key value` line each:
/// `cpu` (the processor's brand string, or `unknown`), `family` and `model` (the CPU's, as the OS
/// reports them; `unknown` off x86-64), `isa` (the active `InstructionSet`), `supported` (the sets this CPU can
/// run, widest first, comma-separated), `halfwidth` (`1` where the CPU runs 512-bit operations as two
/// 256-bit halves, `InstructionSet.halfWidthUnits`, else `0`), `blas` (the kernel set OpenBLAS
/// chose at load time, its `openblas_get_corename`) and `threads`.
public var engineInfo: String {
    var (family, model): (Int32, Int32) = (0, 0)
    let known = kcp_cpu_family_model(&family, &model) != 0
    return """
    cpu \(cpuName)
    family \(known ? String(family) : "unknown")
    model \(known ? String(model) : "unknown")
    isa \(InstructionSet.active.rawValue)
    supported \(InstructionSet.supported.map(\.rawValue).joined(separator: ","))
    halfwidth \(InstructionSet.halfWidthUnits ? 1 : 0)
    blas \(String(cString: openblas_get_corename()))
    threads \(Threads.count)

    """
}

/// The processor's brand string (cpuid), blanks trimmed, or `unknown`.
private var cpuName: String {
    var buffer = [CChar](repeating: 0, count: 49)
    guard kcp_cpu_name(&buffer, Int32(buffer.count)) != 0 else { return "unknown" }
    let name = String(cString: buffer).split(separator: " ").joined(separator: " ")
    return name.isEmpty ? "unknown" : name
}
