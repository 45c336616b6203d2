import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing

/// Crash-safety and fault-tolerance tests of cephfs-volumed. Every suite is
/// nested here, so the whole target runs one test at a time: they kill
/// daemons, stop cluster daemons and measure restart times, and must not
/// compete with each other for the two or so cores of a dev box.
@Suite("Fault tolerance", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct FaultTests {}

// MARK: Helpers shared by the suites

/// A directory for one test's sockets and logs, removed with the value.
final class WorkDir: @unchecked Sendable {
    let path: String
    init(_ tag: String) {
        path = NSTemporaryDirectory() + "volumed-fault-\(tag)-" + UUID().uuidString.prefix(8)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    var socket: String { path + "/volumed.sock" }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A short random suffix for names no other run uses.
func tag() -> String { String(UInt32.random(in: 0...UInt32.max), radix: 36) }

/// The invariant checker on the shared dev cluster, for daemons under `prefix`.
func sharedChecker(prefix: String = "/volumes") -> InvariantChecker {
    InvariantChecker(fs: ClusterAdmin.shared.fs, cluster: ClusterAdmin.shared.cluster, prefix: prefix)
}

/// The crash tests' daemons work under a volume prefix of their own. Every
/// daemon's startup recovery locks each auth metadata file under its prefix,
/// and a daemon killed while it waits for one of those locks leaves a dead
/// session holding the lock request and the file's caps until the MDS drops
/// the session (up to 300 s): other suites on the shared cluster would wait
/// for that too.
let crashPrefix = "/volumes-crash"
let crashPrefixArguments = ["--volume-prefix", crashPrefix]

/// Params of the volume calls.
func vp(_ v: VolumeRef) -> JSONValue { volumePathParam(v) }

func authorizeParams(_ v: VolumeRef, _ id: String, readonly: Bool = false) -> JSONValue {
    ["volume_path": vp(v), "auth_id": .string(id), "readonly": .bool(readonly)]
}

func deauthorizeParams(_ v: VolumeRef, _ id: String) -> JSONValue {
    ["volume_path": vp(v), "auth_id": .string(id)]
}

/// Formats seconds as "1.234".
func secs(_ t: TimeInterval) -> String { String(format: "%.3f", t) }

/// Pads to a column width.
func col(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }

/// Runs `count` threads of `body(index)` and waits for them (at most `timeout`); false on timeout.
@discardableResult
func runThreads(_ count: Int, timeout: TimeInterval = 300, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        let t = Thread {
            body(i)
            group.leave()
        }
        t.stackSize = 1 << 20
        t.start()
    }
    return group.wait(timeout: .now() + timeout) == .success
}

/// A flag threads poll.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    var isSet: Bool { lock.withLock { stopped } }
    func set() { lock.withLock { stopped = true } }
}

/// Thread-safe tallies of call outcomes under load.
final class LoadTally: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var ok = 0
    private(set) var errors: [String: Int] = [:]
    private(set) var malformed: [String] = []
    private(set) var dropped = 0

    func record(_ method: String, _ outcome: RPCOutcome) {
        lock.withLock {
            if outcome.ok {
                ok += 1
            } else {
                errors["\(method): \(outcome.errorType ?? "code \(outcome.errorCode ?? 0)")", default: 0] += 1
            }
        }
    }

    func record(_ method: String, _ error: any Error) {
        lock.withLock {
            if case RPCSessionError.dropped = error { dropped += 1 } else { malformed.append("\(method): \(error)") }
        }
    }

    var errorCount: Int { lock.withLock { errors.values.reduce(0, +) } }
    var summary: String {
        lock.withLock {
            "ok \(ok), errors \(errors.values.reduce(0, +))\(errors.isEmpty ? "" : " \(errors.sorted { $0.key < $1.key })"), dropped \(dropped), malformed \(malformed.count)"
        }
    }
}

/// Fails the test with the daemon's log tail attached.
func expectNoViolations(
    _ violations: [String], _ context: String, daemon: VolumedProcess? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    if !violations.isEmpty {
        let list = violations.joined(separator: "\n  ")
        let log = daemon.map { "\n--- daemon log tail ---\n\($0.logTail(40))" } ?? ""
        Issue.record("\(context): \(violations.count) invariant violation(s):\n  \(list)\(log)", sourceLocation: sourceLocation)
    }
}

/// SIGKILLs a (wedged) daemon, then starts and cleanly stops one under the same
/// instance name: its start-up eviction removes the dead session, which would
/// otherwise hold caps on the shared cluster until it went stale.
func killAndEvict(_ daemon: VolumedProcess, socket: String, conf: String? = nil) {
    daemon.kill9()
    if let again = try? VolumedProcess(conf: conf, instance: daemon.instance, socketPath: socket) {
        again.stop()
    }
}
