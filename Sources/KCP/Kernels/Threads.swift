import Dispatch
import Glibc
import Synchronization

/// The number of threads the engine's parallel loops use (OpenBLAS runs one
/// thread per call inside them; see `matrixProduct`).
public enum Threads {
    private static let configured = Atomic<Int>(0)

    /// Online processors of this machine.
    public static var available: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Current thread count (defaults to `available`).
    public static var count: Int {
        let n = configured.load(ordering: .relaxed)
        return n > 0 ? n : available
    }

    /// Sets the engine's thread count.
    public static func set(_ n: Int) throws {
        try require(n >= 1, "n", "thread count must be at least 1, got \(n)")
        configured.store(n, ordering: .relaxed)
    }
}

/// Runs `body(i)` for `i` in `0..<count` on up to `Threads.count` threads.
///
/// Work is split into contiguous, equal chunks, one per worker, so a loop
/// whose iterations write disjoint outputs gives the same result for any
/// thread count.
public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    let workers = min(Threads.count, count)
    if workers <= 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let start = count * worker / workers
            let end = count * (worker + 1) / workers
            for i in start..<end { body(i) }
        }
    }
}
