import Synchronization

/// Which steps of a network's inference run on one thread.
///
/// Sharing a step's parallel loops among threads costs the wake-up of the
/// other workers, 10-30 us on a virtual machine, which a small step does not
/// earn back: a 1x1 conv of 256 channels on 7x7 takes 37 us on one thread
/// and 66 on two, and MobileNetV3-Large's 67 layers of under 50 us took
/// 0.95 ms on one thread and 1.26 on two (AMD EPYC Zen 5, 2 cores). Each
/// step that takes under `trialLimit` on all threads (the second time it
/// runs: the first makes the weights' forms) is timed once on one, and keeps
/// the faster way for the later passes at that batch size and thread count.
/// Every parallel loop's result is independent of the thread count, so the
/// choice changes the time, never the outputs.
final class StepThreading: Sendable {
    /// The most seconds on all threads for which one thread is tried.
    static let trialLimit = 200e-6

    private struct Key: Hashable {
        let step: Int, batch: Int, threads: Int
    }

    private enum State {
        case seen
        case shared(seconds: Double)
        case decided(serially: Bool)
    }

    private let states = Mutex<[Key: State]>([:])

    /// Runs step `step` of a pass over `batch` samples (`body`) as chosen so far, timing it while the
    /// choice is open.
    func run(step: Int, batch: Int, _ body: () -> Void) {
        let threads = Threads.count
        guard threads > 1 else { return body() }
        let key = Key(step: step, batch: batch, threads: threads)
        switch states.withLock({ $0[key] }) {
        case let .decided(serially)?:
            serially ? Threads.serially(body) : body()
        case let .shared(seconds)?:
            let alone = Self.seconds { Threads.serially(body) }
            states.withLock { $0[key] = .decided(serially: alone < seconds) }
        case .seen?:
            let seconds = Self.seconds(body)
            let state = seconds < Self.trialLimit ? State.shared(seconds: seconds) : .decided(serially: false)
            states.withLock { $0[key] = state }
        case nil:
            body()
            states.withLock { $0[key] = .seen }
        }
    }

    private static func seconds(_ body: () -> Void) -> Double {
        let start = monotonicSeconds()
        body()
        return monotonicSeconds() - start
    }
}
