import Ceph
import Foundation
import JSONValue

#if canImport(Glibc)
import Glibc
#endif

// Helpers for the end-to-end tests of the volume methods: a shared daemon,
// admin access to cephx and the file system for checking what the daemon
// did, guest mounts, and polling.

// MARK: Shared daemons

/// A `cephfs-volumed` shared by the tests of a file, under a watchdog: a
/// `static let` is never deinitialised, and the test process may end any
/// way, so the daemon runs under a small shell that waits for end of file on
/// its stdin (a pipe this process holds) and then stops it: SIGTERM, then,
/// if it is still there after 15 s, SIGKILL and an eviction of its MDS
/// sessions, so that a killed daemon's caps do not block later tests. Its
/// directory (socket and log) is removed after a clean stop, and kept for
/// inspection otherwise.
///
/// Each has its own `--instance`: at start-up a daemon evicts the sessions
/// of its instance name (a crashed predecessor's), so daemons sharing the
/// default name (the hostname) evict one another.
public final class WatchedDaemon: @unchecked Sendable {
    public let socketPath: String
    public let logPath: String
    public let instance: String
    private let process: Process
    private let lifeline: Pipe

    static let watchdog = #"""
        inst=$1; conf=$2; id=$3; fs=$4; dir=$5; shift 5
        "$@" </dev/null &
        pid=$!
        cat >/dev/null
        kill -TERM $pid 2>/dev/null
        i=0
        while kill -0 $pid 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done
        if kill -0 $pid 2>/dev/null; then
            echo "watchdog: no exit 15 s after SIGTERM; SIGKILL and evicting instance $inst" >&2
            kill -KILL $pid 2>/dev/null
            for r in 0 1 2; do
                timeout 20 ceph -c "$conf" --id "$id" tell "mds.$fs:$r" session evict \
                    "client_metadata.volumed_instance=$inst" >/dev/null 2>&1
            done
        else
            rm -rf "$dir"
        fi
        """#

    public init(extraArguments: [String] = []) throws {
        let env = TestCluster.environment!
        let dir = NSTemporaryDirectory() + "volumed-e2e-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        socketPath = dir + "/volumed.sock"
        logPath = dir + "/daemon.log"
        instance = "e2e-\(getpid())-\(UUID().uuidString.prefix(8))"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!
        lifeline = Pipe()
        // Only the watchdog may hold the read end, and no other child the
        // write end, or end of file would never come.
        _ = fcntl(lifeline.fileHandleForWriting.fileDescriptor, F_SETFD, FD_CLOEXEC)
        _ = fcntl(lifeline.fileHandleForReading.fileDescriptor, F_SETFD, FD_CLOEXEC)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments =
            [
                "-c", Self.watchdog, "watchdog", instance, env.confPath, env.serviceID, env.fsName, dir,
                BuiltProducts.path("cephfs-volumed"),
            ]
            + DaemonProcess.standardArguments(socket: socketPath) + ["--instance", instance] + extraArguments
        process.standardInput = lifeline
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try waitUntilReady()
    }

    private func waitUntilReady(timeout: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning { throw DaemonError("daemon exited: \(log())") }
            if let c = try? LineClient(path: socketPath),
                let reply = try? c.request(#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#), reply.contains("pong")
            {
                return
            }
            usleep(50_000)
        }
        throw DaemonError("daemon not ready after \(timeout) s: \(log())")
    }

    public func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}

/// Daemons shared by the tests of a file, started once and signalled at
/// exit (a `static let` is never deinitialised, so its process would
/// otherwise outlive the test run). `WatchedDaemon` also covers a test
/// process that dies without running its exit handlers.
///
/// Each gets its own `--instance`: at start-up a daemon evicts the
/// sessions of its instance name (a crashed predecessor's), so daemons
/// sharing the default name (the hostname) evict one another.
public enum SharedDaemon {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var pids: [pid_t] = []

    public static func start(extraArguments: [String] = []) throws -> DaemonProcess {
        let instance = "e2e-\(getpid())-\(UUID().uuidString.prefix(8))"
        let daemon = try DaemonProcess(extraArguments: ["--instance", instance] + extraArguments)
        lock.lock()
        if pids.isEmpty { atexit { SharedDaemon.killAll() } }
        pids.append(daemon.process.processIdentifier)
        lock.unlock()
        return daemon
    }

    private static func killAll() {
        lock.lock()
        let all = pids
        lock.unlock()
        for pid in all { kill(pid, SIGTERM) }
    }
}

// MARK: Polling and threads

/// Polls `condition` until it holds or `timeout` seconds pass; true when it held.
public func waitUntil(
    timeout: TimeInterval, interval: TimeInterval = 0.25, _ condition: () throws -> Bool
) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return true }
        if Date() >= deadline { return false }
        Thread.sleep(forTimeInterval: interval)
    }
}

/// The outcome of a call run on its own thread with a time limit.
public enum TimedOutcome<T: Sendable>: Sendable {
    case returned(T)
    case threw(any Error)
    case timedOut
}

private final class Box<T>: @unchecked Sendable {
    var value: T?
    let done = DispatchSemaphore(value: 0)
}

/// Runs `body` on a detached thread and waits at most `timeout` seconds for it.
/// A call that hangs (as calls of a blocklisted client may) is left behind.
public func runWithTimeout<T: Sendable>(
    _ timeout: TimeInterval, _ body: @escaping @Sendable () throws -> T
) -> TimedOutcome<T> {
    let box = Box<TimedOutcome<T>>()
    let thread = Thread {
        do { box.value = .returned(try body()) } catch { box.value = .threw(error) }
        box.done.signal()
    }
    thread.start()
    if box.done.wait(timeout: .now() + timeout) == .timedOut { return .timedOut }
    return box.value ?? .timedOut
}

public func randomBytes(_ count: Int) -> [UInt8] {
    var g = SystemRandomNumberGenerator()
    var out = [UInt8](repeating: 0, count: count)
    var i = 0
    while i < count {
        var word = g.next()
        for _ in 0..<8 where i < count {
            out[i] = UInt8(truncatingIfNeeded: word)
            word >>= 8
            i += 1
        }
    }
    return out
}

// MARK: Admin access

/// A cephx entity as `auth get` shows it.
public struct AuthEntity: Sendable, Equatable {
    public let key: String
    public let caps: [String: String]

    /// The comma-separated grants of one service's caps, trimmed.
    public func tokens(_ service: String) -> [String] {
        (caps[service] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }
}

/// The cluster as client.volumed (mon 'allow *') sees it, for checking and
/// arranging state behind the daemon's back. Shared and thread-safe.
public final class ClusterAdmin: @unchecked Sendable {
    public static let shared: ClusterAdmin = {
        do {
            let admin = try ClusterAdmin()
            _ = closeAtExit
            return admin
        } catch {
            fatalError("cannot reach the dev cluster as admin: \(error)")
        }
    }()

    public let cluster: RadosCluster
    public let fs: CephFSMount

    public init() throws {
        cluster = try TestCluster.connect()
        fs = try TestCluster.mount(cluster: cluster)
    }

    /// The shared admin, unmounted cleanly at exit: a session left behind
    /// holds caps on /volumes, and every later create waits for it to go stale.
    private static let closeAtExit: Void = { atexit { ClusterAdmin.closeShared() } }()
    private static func closeShared() {
        _ = runWithTimeout(10) {
            ClusterAdmin.shared.fs.close()
            ClusterAdmin.shared.cluster.shutdown()
        }
    }

    // cephx

    public func authGet(_ id: String) throws -> AuthEntity? {
        let reply: JSONValue?
        do throws(CephError) {
            reply = try cluster.monJSON(["prefix": "auth get", "entity": .string("client.\(id)")])
        } catch {
            if error.errno == .ENOENT { return nil }
            throw error
        }
        guard let first = reply?.arrayValue?.first, let key = first["key"]?.stringValue else { return nil }
        var caps: [String: String] = [:]
        for (service, v) in first["caps"]?.objectValue ?? [:] { caps[service] = v.stringValue }
        return AuthEntity(key: key, caps: caps)
    }

    /// `auth get-or-create` with caps given as service → cap string.
    public func authCreate(_ id: String, caps: [String: String]) throws {
        _ = try cluster.monCommand([
            "prefix": "auth get-or-create", "entity": .string("client.\(id)"),
            "caps": .array(Self.capList(caps)),
        ])
    }

    /// `auth caps`: replaces every cap of the entity.
    public func authSetCaps(_ id: String, caps: [String: String]) throws {
        _ = try cluster.monCommand([
            "prefix": "auth caps", "entity": .string("client.\(id)"), "caps": .array(Self.capList(caps)),
        ])
    }

    public func authDelete(_ id: String) {
        _ = try? cluster.monCommand(["prefix": "auth del", "entity": .string("client.\(id)")])
    }

    static func capList(_ caps: [String: String]) -> [JSONValue] {
        caps.keys.sorted().flatMap { [JSONValue.string($0), .string(caps[$0]!)] }
    }

    /// Evicts the MDS sessions matching `filters` (e.g.
    /// `client_metadata.volumed_instance=<name>`) on every active rank, so a
    /// killed client's caps are released at once. Failures are ignored.
    public func evictSessions(filters: [String]) {
        guard let dump = try? cluster.monJSON(["prefix": "fs dump"]) else { return }
        let fsName = TestCluster.environment!.fsName
        for f in dump["filesystems"]?.arrayValue ?? [] where f["mdsmap"]?["fs_name"]?.stringValue == fsName {
            for (name, gid) in f["mdsmap"]?["up"]?.objectValue ?? [:] where name.hasPrefix("mds_") {
                guard let g = gid.int64Value else { continue }
                _ = try? fs.mdsCommand(String(g), ["prefix": "session evict", "filters": .array(filters.map { .string($0) })])
            }
        }
    }

    // Pools

    public func poolNames() throws -> Set<String> {
        let dump = try cluster.monJSON(["prefix": "osd dump"])
        return Set(dump?["pools"]?.arrayValue?.compactMap { $0["pool_name"]?.stringValue } ?? [])
    }

    public func poolID(_ name: String) throws -> Int64? {
        let dump = try cluster.monJSON(["prefix": "osd dump"])
        return dump?["pools"]?.arrayValue?.first { $0["pool_name"]?.stringValue == name }?["pool"]?.int64Value
    }

    /// The data pool ids of the test file system.
    public func dataPoolIDs() throws -> [Int64] {
        let dump = try cluster.monJSON(["prefix": "fs dump"])
        let fsName = TestCluster.environment!.fsName
        for f in dump?["filesystems"]?.arrayValue ?? [] where f["mdsmap"]?["fs_name"]?.stringValue == fsName {
            return f["mdsmap"]?["data_pools"]?.arrayValue?.compactMap(\.int64Value) ?? []
        }
        return []
    }

    /// Detaches and deletes a pool, ignoring failures (cleanup).
    public func deletePool(_ name: String) {
        _ = try? cluster.monCommand([
            "prefix": "fs rm_data_pool", "fs_name": .string(TestCluster.environment!.fsName), "pool": .string(name),
        ])
        _ = try? cluster.monCommand([
            "prefix": "osd pool delete", "pool": .string(name), "pool2": .string(name),
            "yes_i_really_really_mean_it": true,
        ])
    }

    // Files

    public func exists(_ path: String) -> Bool {
        (try? fs.stat(path, followSymlinks: false)) != nil
    }

    public func readFile(_ path: String) throws -> [UInt8] {
        let f = try fs.open(path, flags: O_RDONLY)
        defer { f.close() }
        return try f.readAll()
    }

    /// The JSON in a metadata file (padded with spaces by the daemon).
    public func readJSON(_ path: String) throws -> JSONValue {
        try JSONValue.parse(try readFile(path))
    }

    public func writeFile(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644) throws {
        let f = try fs.open(path, flags: O_CREAT | O_WRONLY | O_TRUNC, mode: mode)
        defer { f.close() }
        if !bytes.isEmpty { try f.write(bytes, offset: 0) }
        try f.fsync()
        try fs.chmod(path, mode: mode)
    }

    /// A layout xattr names a pool only once this client's OSD map knows it
    /// (a pool another client just made shows as its number), so the map is
    /// brought up to date first.
    public func xattr(_ path: String, _ name: String) -> String? {
        if name.hasPrefix("ceph.dir.layout") || name.hasPrefix("ceph.file.layout") {
            try? cluster.waitForLatestOSDMap()
        }
        return try? fs.getxattrString(path, name)
    }

    /// An xattr another client just changed. The MDS tells this client of a
    /// quota change asynchronously, so a value `accept` refuses is re-read for up
    /// to `timeout` seconds; the last value read is returned either way.
    public func settledXattr(
        _ path: String, _ name: String, timeout: TimeInterval = 10, until accept: (String?) -> Bool
    ) -> String? {
        var value: String?
        _ = waitUntil(timeout: timeout, interval: 0.05) {
            value = xattr(path, name)
            return accept(value)
        }
        return value
    }

    public func settledXattr(_ path: String, _ name: String, expecting expected: String?) -> String? {
        settledXattr(path, name) { $0 == expected }
    }

    public func names(_ dir: String) -> Set<String> {
        Set((try? fs.listDirectory(dir))?.map(\.name) ?? [])
    }

    /// Removes a tree (and the snapshots taken on its directories), ignoring failures.
    public func removeTree(_ path: String) {
        guard let st = try? fs.stat(path, followSymlinks: false) else { return }
        if st.isDirectory {
            for snap in (try? fs.listDirectory(path + "/.snap")) ?? [] where !snap.name.hasPrefix("_") {
                try? fs.rmdir(path + "/.snap/" + snap.name)
            }
            for e in (try? fs.listDirectory(path)) ?? [] { removeTree(path + "/" + e.name) }
            try? fs.rmdir(path)
        } else {
            try? fs.unlink(path)
        }
    }
}

// MARK: Volume layout (as the daemon lays volumes out by default)

public enum VolumeLayout {
    public static let prefix = "/volumes"
    public static func groupPath(_ g: String) -> String { "\(prefix)/\(g)" }
    public static func volumePath(_ g: String?, _ v: String) -> String { "\(prefix)/\(g ?? "_nogroup")/\(v)" }
    public static func trashPath(_ v: String) -> String { "\(prefix)/_deleting/\(v)" }
    public static func volumeMeta(_ g: String?, _ v: String) -> String { "\(prefix)/_\(g ?? ""):\(v).meta" }
    public static func authMeta(_ id: String) -> String { "\(prefix)/$\(id).meta" }
    public static func namespace(_ v: String) -> String { "fsvolumens_\(v)" }
    public static func pool(_ v: String) -> String { "fsvolume_\(v)" }
}

/// Everything a test made, removed (best effort, through the admin handles)
/// when the test's scratch goes away, whatever the test's outcome.
public final class Scratch: @unchecked Sendable {
    private let lock = NSLock()
    private var volumes: [(String?, String)] = []
    private var groups: [String] = []
    private var authIDs: [String] = []
    private var pools: [String] = []
    private var files: [String] = []

    public init() {}

    public func volume(_ g: String?, _ v: String) { lock.withLock { volumes.append((g, v)) } }
    public func group(_ g: String) { lock.withLock { groups.append(g) } }
    public func authID(_ id: String) { lock.withLock { authIDs.append(id) } }
    public func pool(_ p: String) { lock.withLock { pools.append(p) } }
    public func file(_ path: String) { lock.withLock { files.append(path) } }

    deinit {
        let admin = ClusterAdmin.shared
        for (g, v) in volumes {
            admin.removeTree(VolumeLayout.volumePath(g, v))
            admin.removeTree(VolumeLayout.trashPath(v))
            try? admin.fs.unlink(VolumeLayout.volumeMeta(g, v))
        }
        for id in authIDs {
            admin.authDelete(id)
            try? admin.fs.unlink(VolumeLayout.authMeta(id))
            try? FileManager.default.removeItem(atPath: GuestMount.keyringPath(id))
        }
        for g in groups { admin.removeTree(VolumeLayout.groupPath(g)) }
        for p in pools { admin.deletePool(p) }
        for f in files { try? FileManager.default.removeItem(atPath: f) }
    }
}

// MARK: Guests

/// A CephFS client of a guest auth ID, mounted at its volume, as a consumer of
/// the volume would be. Its keyring is written where the dev cluster's conf
/// looks for it.
public final class GuestMount: @unchecked Sendable {
    public let authID: String
    public let root: String
    public let cluster: RadosCluster
    public let fs: CephFSMount

    /// Parked guests: never deinitialised, as a blocklisted client's shutdown may hang.
    nonisolated(unsafe) private static var parked: [GuestMount] = []
    private static let parkLock = NSLock()

    public static func keyringPath(_ id: String) -> String {
        TestCluster.environment!.directory + "/ceph.client.\(id).keyring"
    }

    public static func writeKeyring(id: String, key: String) throws {
        try "[client.\(id)]\n\tkey = \(key)\n".write(toFile: keyringPath(id), atomically: true, encoding: .utf8)
    }

    /// Mounts `root` as `client.<id>`; the keyring must exist.
    public init(id: String, root: String) throws {
        authID = id
        self.root = root
        var options = TestCluster.options(id: id)
        options.monOpTimeout = 10
        options.osdOpTimeout = 10
        options.mountTimeout = 15
        cluster = try RadosCluster(options)
        do {
            fs = try CephFSMount(cluster: cluster)
            try fs.mount(root: root, fsName: TestCluster.environment!.fsName)
        } catch {
            Self.park(nil, cluster)
            throw error
        }
        Self.parkLock.withLock { Self.parked.append(self) }
    }

    /// Tears the guest down. A live guest unmounts cleanly (an aborted
    /// session would hold its caps until it goes stale, a minute later, and
    /// block every change of its volume until then); an evicted one is
    /// aborted on a detached thread, as its unmount may hang. Either way the
    /// objects stay alive, so no deinit blocks.
    public func dispose(evicted: Bool = false) {
        let (fs, cluster) = (self.fs, self.cluster)
        if evicted {
            Thread.detachNewThread {
                fs.abort()
                cluster.shutdown()
            }
        } else {
            _ = runWithTimeout(15) {
                fs.close()
                cluster.shutdown()
            }
        }
    }

    private static func park(_ fs: CephFSMount?, _ cluster: RadosCluster) {
        Thread.detachNewThread {
            fs?.abort()
            cluster.shutdown()
        }
    }
}

/// The errno a Ceph call fails with, or nil when it succeeds.
public func cephErrno(_ body: () throws(CephError) -> Void) -> Errno? {
    do throws(CephError) {
        try body()
        return nil
    } catch {
        return error.errno
    }
}
