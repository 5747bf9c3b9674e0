import Glibc
import Synchronization

/// The number of threads the engine's parallel loops use (OpenBLAS runs one
/// thread per call inside them; see `matrixProduct`).
public enum Threads {
    private static let configured = Atomic<Int>(0)

    /// Online processors of this machine, read once: glibc reads them from `/sys` on each call (5 us),
    /// which every parallel loop of an unset thread count paid.
    public static let available = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

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
/// Iterations are handed out in small runs to whichever worker is free, so
/// a worker slowed down (by another process on its core) does less of the
/// loop; a loop whose iterations write disjoint outputs gives the same
/// result for any thread count and any schedule.
public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    forEachWorker(count, workers: min(Threads.count, count)) { _, i in body(i) }
}

/// `parallelFor` whose body also gets a scratch buffer of `scratch` floats,
/// one per worker, reused across that worker's iterations (its contents on
/// entry are whatever the previous iteration left), each starting on a
/// cache line (`allocateAlignedFloats`).
func parallelFor(_ count: Int, scratch: Int, _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
    let workers = min(Threads.count, count), pitch = (scratch + 15) / 16 * 16
    let buffers = allocateAlignedFloats(workers * pitch)
    defer { buffers.deallocate() }
    forEachWorker(count, workers: workers) { worker, i in body(i, buffers + worker * pitch) }
}

/// The share of the threads' time that `parallelFor` keeps busy on jobs of these sizes (any
/// unit), run in order, each by the first thread free: `sum / (threads * the longest thread's sum)`.
func balance(_ sizes: [Int], threads: Int = Threads.count) -> Double {
    var loads = [Int](repeating: 0, count: max(1, threads))
    for size in sizes { loads[loads.indices.min { loads[$0] < loads[$1] }!] += size }
    return Double(sizes.reduce(0, +)) / Double(max(1, loads.count * loads.max()!))
}

/// Runs by `workers` workers, concurrently (`WorkerPool`): each takes the
/// next run of about `count / (8 * workers)` iterations from a shared counter
/// until none is left, calling `body(worker, i)` for each.
private func forEachWorker(_ count: Int, workers: Int, _ body: (Int, Int) -> Void) {
    if workers <= 1 {
        for i in 0..<count { body(0, i) }
        return
    }
    let run = max(1, count / (8 * workers))
    let next = Atomic<Int>(0)
    WorkerPool.run(workers: workers) { worker in
        while true {
            let start = next.wrappingAdd(run, ordering: .relaxed).oldValue
            guard start < count else { return }
            for i in start..<min(count, start + run) { body(worker, i) }
        }
    }
}
