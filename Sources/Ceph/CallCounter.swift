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

    public init() {}

    public var description: String { "mon=\(mon) mgr=\(mgr) mds=\(mds) fs=\(fs) rados=\(rados)" }
}

/// Counts the calls of the current thread while `measure` runs. An engine
/// call runs on one thread, so the counts are those of that call alone.
public enum CallCounter {
    private final class Box {
        var counts = CallCounts()
    }

    nonisolated(unsafe) private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// Runs `body` and returns what it called.
    public static func measure<T>(_ body: () throws -> T) rethrows -> (T, CallCounts) {
        let previous = pthread_getspecific(key)
        let box = Box()
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
}
