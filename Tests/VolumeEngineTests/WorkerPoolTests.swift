import Dispatch
import Glibc
import Testing
import WorkerThreads

@Suite("Worker pool")
struct WorkerPoolTests {
    /// `submitIfIdle` hands work over only to an idle thread (or while the
    /// pool is below its spare threads); otherwise the caller runs it.
    @Test func submitIfIdleNeverQueuesBehindBusyThreads() throws {
        let pool = WorkerPool(maxThreads: 8)
        pool.start()
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        #expect(
            pool.submitIfIdle(spare: 1) {
                started.signal()
                release.wait()
            })
        started.wait()
        // The only thread is busy and the pool is at its spare count.
        #expect(!pool.submitIfIdle(spare: 1) {})
        release.signal()
        // Once that thread is idle again, it takes the next job.
        let ran = DispatchSemaphore(value: 0)
        var handedOff = false
        for _ in 0..<200 where !handedOff {
            handedOff = pool.submitIfIdle(spare: 1) { ran.signal() }
            if !handedOff { usleep(5_000) }
        }
        #expect(handedOff)
        #expect(ran.wait(timeout: .now() + 10) == .success)
    }
}
