import CPlatform
import Glibc
import Synchronization

/// The helper threads that run the engine's parallel loops beside the
/// calling thread. After a loop each helper spins for the next one for
/// `spinSeconds` before it sleeps (where the threads fit the processors),
/// as onnxruntime's and OpenBLAS's threads do: a sleeping thread takes
/// 10-30 us to wake (a futex wake-up through the hypervisor; AMD EPYC Zen 5
/// VM, libdispatch's `concurrentPerform`), and a network's steps each start
/// one to three loops of often less than 100 us.
///
/// One loop runs at a time. A loop started while another runs (from a
/// helper, within a loop's body, or from a second thread of the caller's)
/// runs on its calling thread alone, with the same result, since every
/// parallel loop's result is independent of its schedule. A child process
/// made by `fork` starts without helpers, and makes its own.
final class WorkerPool: @unchecked Sendable {
    /// How long a helper waits for the next loop, spinning, before it sleeps.
    static let spinSeconds = 100e-6

    /// The pool, or nil before the first loop (and in a forked child). Held for the whole of a loop.
    private static let shared = Mutex<WorkerPool?>(nil)
    private static let forkHandler: Void = {
        _ = pthread_atfork(nil, nil) { _ = WorkerPool.shared.withLockIfAvailable { $0 = nil } }
    }()

    /// One helper's view of the loops: the number of the last one it was given (`joined` when it
    /// started, which the thread may first read after the loop that started it is given).
    private final class Helper: @unchecked Sendable {
        let pool: WorkerPool, worker: Int, joined: Int
        let ticket: Atomic<Int>
        init(pool: WorkerPool, worker: Int, joined: Int) {
            (self.pool, self.worker, self.joined) = (pool, worker, joined)
            ticket = Atomic(joined)
        }
    }

    private var helpers: [Helper] = []
    /// Loops started, and helpers still in the current one.
    private var loops = 0
    private let unfinished = Atomic<Int>(0)
    /// The current loop's body, given the worker's number (the caller is worker 0).
    private var body: ((Int) -> Void)?
    /// Helpers asleep, and the lock and condition they sleep on.
    private let sleepers = Atomic<Int>(0)
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    private init() {
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
    }

    /// Runs `body(w)` for `w` in `0..<workers`, concurrently: `body(0)` on the
    /// calling thread, the others on helpers. Where another loop holds the
    /// pool, runs `body(0)` alone, and where the system refuses helper threads,
    /// with fewer: `body` must do all of the loop's work in the workers that
    /// run (as a loop over a shared counter does).
    static func run(workers: Int, _ body: (Int) -> Void) {
        _ = forkHandler
        let started: Void? = shared.withLockIfAvailable { pool in
            if pool == nil { pool = WorkerPool() }
            pool!.run(workers: workers, body)
        }
        if started == nil { body(0) }
    }

    /// Runs `body(0)` here and `body(w)` on helpers `w` of `1..<workers`, or on as many as the system
    /// let start.
    private func run(workers: Int, _ body: (Int) -> Void) {
        while helpers.count < workers - 1 && startHelper() {}
        let helping = min(workers - 1, helpers.count)
        withoutActuallyEscaping(body) { body in
            self.body = body
            loops += 1
            unfinished.store(helping, ordering: .relaxed)
            for helper in helpers.prefix(helping) { helper.ticket.store(loops, ordering: .sequentiallyConsistent) }
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(lock)
                pthread_cond_broadcast(wake)
                pthread_mutex_unlock(lock)
            }
            body(0)
            var spins = 0
            while unfinished.load(ordering: .acquiring) > 0 {
                kcp_spin_pause()
                spins += 1
                if spins % 4096 == 0 { sched_yield() }  // a helper preempted by another process
            }
            self.body = nil
        }
    }

    /// Starts one more helper; false where the system refuses a thread (its loops then share fewer).
    private func startHelper() -> Bool {
        let helper = Helper(pool: self, worker: helpers.count + 1, joined: loops)
        let context = Unmanaged.passRetained(helper)
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { context in
            let helper = Unmanaged<Helper>.fromOpaque(context!).takeRetainedValue()
            helper.pool.serve(helper)
        }, context.toOpaque())
        guard started == 0 else {
            context.release()
            return false
        }
        pthread_detach(thread)
        helpers.append(helper)
        return true
    }

    /// A helper's life: wait for a loop past the last it ran, run its part, say it is done.
    private func serve(_ helper: Helper) -> Never {
        var last = helper.joined
        while true {
            last = next(after: last, helper)
            body!(helper.worker)
            unfinished.subtract(1, ordering: .releasing)
        }
    }

    /// The helper's next loop past `last`: spins for it for `spinSeconds` (not at all where the
    /// threads outnumber the processors, and a spinning helper would hold up a working one), then
    /// sleeps until it comes.
    private func next(after last: Int, _ helper: Helper) -> Int {
        let deadline = monotonicSeconds() + (Threads.count <= Threads.available ? Self.spinSeconds : 0)
        var spins = 0
        while true {
            let ticket = helper.ticket.load(ordering: .acquiring)
            if ticket != last { return ticket }
            kcp_spin_pause()
            spins += 1
            if spins % 64 == 0 && monotonicSeconds() > deadline { break }
        }
        pthread_mutex_lock(lock)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        var ticket = helper.ticket.load(ordering: .sequentiallyConsistent)
        while ticket == last {
            pthread_cond_wait(wake, lock)
            ticket = helper.ticket.load(ordering: .sequentiallyConsistent)
        }
        sleepers.subtract(1, ordering: .relaxed)
        pthread_mutex_unlock(lock)
        return ticket
    }
}
