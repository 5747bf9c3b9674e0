import KCP

/// A `kcp_progress` callback from C.
public typealias ProgressCallback = @convention(c) (UnsafeMutableRawPointer?, Int64, Int64, Double) -> Int32

/// `progress` (may be nil) throttled to a call every 0.2 s at most, and
/// always at the last step, as a Swift closure: `(step, steps, loss)` ->
/// whether to go on.
func throttled(_ progress: ProgressCallback?, _ context: UnsafeMutableRawPointer?) -> (Int, Int, Double) -> Bool {
    var lastCall = monotonicSeconds()
    return { step, steps, loss in
        guard let progress else { return true }
        let now = monotonicSeconds()
        if step < steps && now - lastCall < 0.2 { return true }
        lastCall = now
        return progress(context, Int64(step), Int64(steps), loss) == 0
    }
}
