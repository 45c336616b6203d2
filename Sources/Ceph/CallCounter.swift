#if canImport(Glibc)
import Glibc
#endif

/// Calls into the cluster made by one operation: mon and mgr commands, MDS
/// commands, libcephfs calls (an upper bound of MDS round trips: some are
/// answered from the client's cache) and RADOS object operations.
public struct CallCounts: Sendable, Equatable, CustomStringConvertible {
    public var mon = 0
    public var mgr = 0
    public var mds = 0
    public var fs = 0
    public var rados = 0

    /// Each call's name and duration in microseconds, in order; filled only
    /// when `measure` is asked to trace.
    public var trace: [(String, Double)] = []

    public init() {}

    public var description: String {
        let base = "mon=\(mon) mgr=\(mgr) mds=\(mds) fs=\(fs) rados=\(rados)"
        guard !trace.isEmpty else { return base }
        let total = trace.reduce(0) { $0 + ($1.0.hasPrefix("∥") ? 0 : $1.1) }
        let calls = trace.map { "\($0.0) \(Int($0.1.rounded()))" }.joined(separator: ", ")
        return base + " in \(Int(total.rounded())) us: " + calls
    }

    public static func == (a: CallCounts, b: CallCounts) -> Bool {
        (a.mon, a.mgr, a.mds, a.fs, a.rados) == (b.mon, b.mgr, b.mds, b.fs, b.rados)
    }
}

/// Counts the calls of the current thread while `measure` runs. An engine
/// call runs on one thread, so the counts are those of that call alone.
public enum CallCounter {
    fileprivate final class Box {
        var counts = CallCounts()
        var tracing = false
    }

    nonisolated(unsafe) fileprivate static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// Runs `body` and returns what it called; with `trace`, also each call's duration.
    public static func measure<T>(trace: Bool = false, _ body: () throws -> T) rethrows -> (T, CallCounts) {
        let previous = pthread_getspecific(key)
        let box = Box()
        box.tracing = trace
        let pointer = Unmanaged.passRetained(box).toOpaque()
        pthread_setspecific(key, pointer)
        defer {
            pthread_setspecific(key, previous)
            Unmanaged<Box>.fromOpaque(pointer).release()
        }
        let result = try body()
        return (result, box.counts)
    }

    @inline(__always)
    static func count(_ field: WritableKeyPath<CallCounts, Int>) {
        guard let p = pthread_getspecific(key) else { return }
        Unmanaged<Box>.fromOpaque(p).takeUnretainedValue().counts[keyPath: field] += 1
    }

    /// Times `body` under `name` when tracing, without counting it.
    @inline(__always)
    static func traced<T, E: Error>(_ name: @autoclosure () -> String, _ body: () throws(E) -> T) throws(E) -> T {
        guard let p = pthread_getspecific(key) else { return try body() }
        return try record(Unmanaged<Box>.fromOpaque(p).takeUnretainedValue(), name(), body)
    }

    /// Counts one call and, when tracing, times `body` under `name`.
    @inline(__always)
    static func timed<T, E: Error>(
        _ field: WritableKeyPath<CallCounts, Int>, _ name: @autoclosure () -> String, _ body: () throws(E) -> T
    ) throws(E) -> T {
        guard let p = pthread_getspecific(key) else { return try body() }
        let box = Unmanaged<Box>.fromOpaque(p).takeUnretainedValue()
        box.counts[keyPath: field] += 1
        return try record(box, name(), body)
    }

    /// Runs `body`, adding its duration to the trace when the box traces.
    private static func record<T, E: Error>(_ box: Box, _ name: @autoclosure () -> String, _ body: () throws(E) -> T) throws(E) -> T {
        guard box.tracing else { return try body() }
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        defer {
            var end = timespec()
            clock_gettime(CLOCK_MONOTONIC, &end)
            let us = Double(end.tv_sec - start.tv_sec) * 1e6 + Double(end.tv_nsec - start.tv_nsec) / 1e3
            box.counts.trace.append((name(), us))
        }
        return try body()
    }
}

extension CallCounter {
    /// True when the current thread's calls are being traced.
    public static var isTracing: Bool {
        guard let p = pthread_getspecific(key) else { return false }
        return Unmanaged<Box>.fromOpaque(p).takeUnretainedValue().tracing
    }

    /// Adds calls made on a helper thread to the current thread's counts;
    /// their trace entries are marked as run in parallel.
    public static func merge(_ other: CallCounts) {
        guard let p = pthread_getspecific(key) else { return }
        let box = Unmanaged<Box>.fromOpaque(p).takeUnretainedValue()
        box.counts.mon += other.mon
        box.counts.mgr += other.mgr
        box.counts.mds += other.mds
        box.counts.fs += other.fs
        box.counts.rados += other.rados
        box.counts.trace += other.trace.map { ("∥" + $0.0, $0.1) }
    }
}
