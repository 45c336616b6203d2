import Ceph
import Dispatch

/// A cluster call started on a helper thread while the caller goes on, so
/// independent round trips overlap instead of adding up. `wait()` returns its
/// result (or throws its error) and adds its call counts to the caller's.
///
/// Only calls that touch no lock the caller holds are overlapped: mon reads
/// and layout xattrs. A started call always runs to its end, even when
/// nobody waits for it.
final class Overlapped<T: Sendable>: @unchecked Sendable {  // `outcome` is written once, before `done` is signalled
    private let done = DispatchSemaphore(value: 0)
    private var outcome: Result<T, any Error>?
    private var counts = CallCounts()

    init(on pool: WorkerPool, _ body: @escaping @Sendable () throws -> T) {
        let tracing = CallCounter.isTracing
        pool.submit { [self] in
            let (result, calls) = CallCounter.measure(trace: tracing) { Result { try body() } }
            outcome = result
            counts = calls
            done.signal()
        }
    }

    func wait() throws -> T {
        done.wait()
        done.signal()  // later waits return at once
        CallCounter.merge(counts)
        counts = CallCounts()
        return try outcome!.get()
    }
}
