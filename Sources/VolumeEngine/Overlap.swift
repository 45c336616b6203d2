import Ceph
import Dispatch
import WorkerThreads

/// A cluster call started on a helper thread while the caller goes on, so
/// independent round trips overlap instead of adding up. `wait()` returns its
/// result (or throws its error) and adds its call counts to the caller's.
///
/// Only calls independent of what the caller does meanwhile are overlapped:
/// mon reads, layout xattrs, the sync of a file the caller no longer
/// writes, lookups of other names. A started call always runs to its end,
/// even when nobody waits for it. When no helper thread is idle (the daemon is busy),
/// the call runs at once on the caller's thread instead: the order is then
/// simply sequential, and no wake-up is spent on a hand-off.
final class Overlapped<T: Sendable>: @unchecked Sendable {  // `outcome` is written once, before `done` is signalled
    private let done = DispatchSemaphore(value: 0)
    private var outcome: Result<T, any Error>?
    private var counts = CallCounts()

    init(on pool: WorkerPool, _ body: @escaping @Sendable () throws -> T) {
        let tracing = CallCounter.isTracing
        let handedOff = pool.submitIfIdle { [self] in
            let (result, calls) = CallCounter.measure(trace: tracing) { Result { try body() } }
            outcome = result
            counts = calls
            done.signal()
        }
        if !handedOff {
            outcome = Result { try body() }  // counted on this thread already
            done.signal()
        }
    }

    /// A result already at hand.
    init(value: T) {
        outcome = .success(value)
        done.signal()
    }

    func wait() throws -> T {
        done.wait()
        done.signal()  // later waits return at once
        CallCounter.merge(counts)
        counts = CallCounts()
        return try outcome!.get()
    }
}
