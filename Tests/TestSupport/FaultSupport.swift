import Ceph
import Foundation
import JSONValue

#if canImport(Glibc)
import Glibc
#endif

// Helpers for the fault-tolerance tests (Tests/FaultTests): daemons that can
// be killed and restarted under a fixed instance name, a synchronous JSON-RPC
// session, private dev clusters whose daemons can be stopped one by one, and
// views of the MDS map.

// MARK: Daemons that are killed and restarted

/// How a daemon process ended.
public struct DaemonExit: Sendable, CustomStringConvertible {
    public let reason: Process.TerminationReason
    public let status: Int32

    public var killedBySIGKILL: Bool { reason == .uncaughtSignal && status == SIGKILL }
    public var description: String {
        reason == .uncaughtSignal ? "killed by signal \(status)" : "exited with status \(status)"
    }
}

/// Kills, at exit of the test process, every daemon of this file still running,
/// so a failed or crashed test never leaves daemons (and their sessions) behind.
enum FaultProcessRegistry {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var pids: Set<pid_t> = []
    nonisolated(unsafe) private static var installed = false

    static func add(_ pid: pid_t) {
        lock.lock()
        defer { lock.unlock() }
        if !installed {
            installed = true
            atexit { FaultProcessRegistry.killAll() }
        }
        pids.insert(pid)
    }

    static func remove(_ pid: pid_t) {
        lock.lock()
        pids.remove(pid)
        lock.unlock()
    }

    private static func killAll() {
        lock.lock()
        let all = pids
        lock.unlock()
        for pid in all {
            kill(pid, SIGCONT)
            kill(pid, SIGTERM)
        }
    }
}

/// A `cephfs-volumed` with an explicit configuration: any cluster, a fixed
/// `--instance`, and optionally the socket of a previous run (as a restart by
/// systemd would reuse it).
public final class VolumedProcess: @unchecked Sendable {
    public let socketPath: String
    public let logPath: String
    public let instance: String
    public let process: Process
    /// When the process was launched.
    public let launchedAt: Date
    private let ownsWorkDir: String?

    /// The standard flags for a dev cluster's conf.
    public static func arguments(
        conf: String, socket: String, instance: String, id: String = "volumed", fsName: String = "cephfs", clusterName: String = "ceph"
    ) -> [String] {
        ["--socket", socket, "--conf", conf, "--id", id, "--cluster", clusterName, "--fs-name", fsName, "--instance", instance]
    }

    /// Starts a daemon. `socketPath` nil: a new private directory holds the
    /// socket and the log. The log of a given socket's runs go to separate files.
    public init(
        conf: String? = nil, instance: String, socketPath: String? = nil, extraArguments: [String] = [],
        environment: [String: String] = [:], waitReady: Bool = true, readyTimeout: TimeInterval = 60,
        crashAt: String? = nil
    ) throws {
        let conf = conf ?? TestCluster.environment!.confPath
        let dir: String
        if let socketPath {
            dir = (socketPath as NSString).deletingLastPathComponent
            self.socketPath = socketPath
            ownsWorkDir = nil
        } else {
            dir = NSTemporaryDirectory() + "volumed-fault-" + UUID().uuidString.prefix(8)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            self.socketPath = dir + "/volumed.sock"
            ownsWorkDir = dir
        }
        self.instance = instance
        logPath = dir + "/daemon-\(instance)-\(UUID().uuidString.prefix(6)).log"
        launchedAt = Date()
        // A crash point set for the test run must not reach every daemon;
        // one is armed by the variable and the flag together.
        var environment = environment
        var extraArguments = extraArguments
        if let crashAt {
            environment["VOLUMED_CRASH_AT"] = crashAt
            extraArguments.append("--enable-crash-points")
        }
        process = try launchDaemon(
            Self.arguments(conf: conf, socket: self.socketPath, instance: instance) + extraArguments,
            logPath: logPath, environment: environment, unset: ["VOLUMED_CRASH_AT"])
        FaultProcessRegistry.add(process.processIdentifier)
        if waitReady { try waitUntilReady(timeout: readyTimeout) }
    }

    public var pid: pid_t { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Waits until the socket answers a ping; returns the seconds since launch.
    @discardableResult
    public func waitUntilReady(timeout: TimeInterval = 60) throws -> TimeInterval {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning {
                throw DaemonError("daemon \(instance) exited (\(exit.map { "\($0)" } ?? "?")): \(logTail())")
            }
            if let c = try? LineClient(path: socketPath, receiveTimeout: 5),
                let reply = try? c.request(#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#), reply.contains("pong")
            {
                return Date().timeIntervalSince(launchedAt)
            }
            usleep(20_000)
        }
        throw DaemonError("daemon \(instance) not ready after \(timeout) s: \(logTail())")
    }

    /// How the process ended, or nil while it runs.
    public var exit: DaemonExit? {
        process.isRunning ? nil : DaemonExit(reason: process.terminationReason, status: process.terminationStatus)
    }

    /// Waits up to `timeout` seconds for the process to end.
    public func waitForExit(timeout: TimeInterval) -> DaemonExit? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { return nil }
        process.waitUntilExit()
        FaultProcessRegistry.remove(pid)
        return exit
    }

    /// SIGKILL, as a crash would; returns how it ended.
    @discardableResult
    public func kill9() -> DaemonExit? {
        if process.isRunning { kill(pid, SIGKILL) }
        return waitForExit(timeout: 30)
    }

    public func signal(_ sig: Int32) { if process.isRunning { kill(pid, sig) } }

    /// SIGTERM (clean shutdown: the daemon unmounts and closes its session),
    /// SIGKILL after `timeout`.
    @discardableResult
    public func stop(timeout: TimeInterval = 30) -> DaemonExit? {
        if process.isRunning {
            kill(pid, SIGCONT)
            kill(pid, SIGTERM)
        }
        if let e = waitForExit(timeout: timeout) { return e }
        kill(pid, SIGKILL)
        return waitForExit(timeout: 30)
    }

    public func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The Swift runtime's report of a crash in the log (the crashed thread's
    /// frames), or nil.
    public func crashReport(maxLines: Int = 60) -> String? {
        let lines = log().split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.contains("*** Signal") || $0.contains("Fatal error") || $0.contains(" crashed:") })
        else { return nil }
        return lines[start...].prefix(maxLines).joined(separator: "\n")
    }

    /// Copies the log somewhere that outlives the test; returns the path.
    @discardableResult
    public func preserveLog(_ name: String) -> String {
        let dir = NSTemporaryDirectory() + "volumed-fault-logs"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/" + name + ".log"
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.copyItem(atPath: logPath, toPath: path)
        return path
    }

    public func logTail(_ lines: Int = 30) -> String { fileTail(logPath, lines: lines) }

    /// The resident set size from /proc, in KiB.
    public func rssKiB() -> Int? { residentSetKiB(pid: pid) }

    deinit {
        // A daemon that died of a signal nobody sent it crashed: keep its log.
        if !process.isRunning, process.terminationReason == .uncaughtSignal,
            ![SIGKILL, SIGTERM].contains(process.terminationStatus)
        {
            let kept = preserveLog("crash-\(instance)")
            print("cephfs-volumed \(instance) died of signal \(process.terminationStatus); log kept at \(kept)")
        }
        stop()
        if let ownsWorkDir { try? FileManager.default.removeItem(atPath: ownsWorkDir) }
    }
}

// MARK: A synchronous JSON-RPC session

/// The outcome of one call: a result or an error object.
public struct RPCOutcome: Sendable, CustomStringConvertible {
    public let id: JSONValue?
    public let result: JSONValue?
    public let error: JSONValue?

    public var ok: Bool { error == nil && result != nil }
    public var errorCode: Int64? { error?["code"]?.int64Value }
    public var errorType: String? { error?["data"]?["type"]?.stringValue }
    public var errorMessage: String? { error?["message"]?.stringValue }

    /// Parses a reply line; nil when it is not a JSON-RPC 2.0 response.
    public init?(line: String) {
        guard let v = try? JSONValue.parse(line), v["jsonrpc"] == .string("2.0"), v.objectValue != nil else { return nil }
        id = v["id"]
        result = v["result"]
        error = v["error"]
        if (result == nil) == (error == nil) { return nil }
        if let error, error["code"]?.int64Value == nil || error["message"]?.stringValue == nil { return nil }
    }

    public var description: String {
        if let error { return "error \(error)" }
        return "result \(result.map { "\($0)" } ?? "?")"
    }
}

public enum RPCSessionError: Error, CustomStringConvertible {
    /// The connection ended (or failed) before the reply: the daemon died or closed it.
    case dropped(String)
    /// The reply was not a JSON-RPC response for the request.
    case malformed(String)

    public var description: String {
        switch self {
        case .dropped(let s): "connection dropped: \(s)"
        case .malformed(let s): "malformed reply: \(s)"
        }
    }
}

/// One connection, one call at a time.
public final class RPCSession: @unchecked Sendable {
    public let client: LineClient
    private var nextID: Int64 = 1

    public init(socket: String, timeout: TimeInterval = 120) throws {
        client = try LineClient(path: socket, receiveTimeout: timeout)
    }

    /// Calls `method`; throws `RPCSessionError` when the connection drops or the reply is not a response to it.
    public func call(_ method: String, _ params: JSONValue? = nil) throws -> RPCOutcome {
        let id = nextID
        nextID += 1
        var request: [String: JSONValue] = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method)]
        if let params { request["params"] = params }
        let line: String?
        do {
            try client.send(JSONValue.object(request).description + "\n")
            line = try client.readLine()
        } catch {
            throw RPCSessionError.dropped("\(error)")
        }
        guard let line else { throw RPCSessionError.dropped("end of stream") }
        guard let outcome = RPCOutcome(line: line) else { throw RPCSessionError.malformed(line) }
        guard outcome.id == .int(id) else {
            throw RPCSessionError.malformed("id \(outcome.id.map { "\($0)" } ?? "none") for request \(id): \(line)")
        }
        return outcome
    }

    /// Calls `method` and returns its result, throwing on any error.
    @discardableResult
    public func require(_ method: String, _ params: JSONValue? = nil) throws -> JSONValue {
        let o = try call(method, params)
        guard let r = o.result, o.error == nil else { throw DaemonError("\(method) \(params.map { "\($0)" } ?? ""): \(o)") }
        return r
    }
}

/// `{"group_id": g, "volume_id": v}`.
public func volumePathParam(_ v: VolumeRef) -> JSONValue {
    ["group_id": v.group.map { .string($0) } ?? .null, "volume_id": .string(v.volume)]
}

// MARK: Timing

/// Runs `body` and returns its result and duration in seconds.
public func timed<T>(_ body: () throws -> T) rethrows -> (T, TimeInterval) {
    let start = Date()
    let r = try body()
    return (r, Date().timeIntervalSince(start))
}

/// A random delay in [lo, hi] milliseconds.
public func sleepMilliseconds(_ ms: Int) { usleep(useconds_t(ms * 1000)) }

/// A small deterministic PRNG (SplitMix64), for reproducible fuzzing.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: Private dev clusters

/// A throwaway cluster of its own (packaging/dev-cluster in a temporary
/// directory), whose daemons the tests may stop and start without disturbing
/// the shared dev cluster.
public final class PrivateCluster: @unchecked Sendable {
    public let directory: String
    public var confPath: String { directory + "/ceph.conf" }
    public static let script: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("packaging/dev-cluster/dev-cluster").path
    }()
    private let lock = NSLock()
    private var isDown = false

    /// Runs `dev-cluster up` in a new temporary directory.
    public init() throws {
        directory = NSTemporaryDirectory() + "volumed-private-cluster-" + UUID().uuidString.prefix(8)
        PrivateClusterRegistry.add(directory)
        let r = try Self.runScript(["up", directory], timeout: 150)
        if r.status != 0 {
            _ = try? Self.runScript(["down", directory], timeout: 60)
            PrivateClusterRegistry.remove(directory)
            throw DaemonError("dev-cluster up \(directory) failed (\(r.status)): \(r.output.suffix(3000))")
        }
    }

    /// `dev-cluster down`; idempotent.
    public func down() {
        lock.lock()
        let already = isDown
        isDown = true
        lock.unlock()
        if already { return }
        let r = try? Self.runScript(["down", directory], timeout: 90)
        if r?.status != 0 { print("dev-cluster down \(directory): \(r.map { $0.output } ?? "failed to run")") }
        PrivateClusterRegistry.remove(directory)
    }

    deinit { down() }

    /// Stops one daemon (mon.a, mgr.x, osd.0, mds.a, mds.b, mds.c). The
    /// memstore osd.0 loses all its data: use `freezeDaemon` for an OSD outage.
    public func stopDaemon(_ name: String) throws {
        let r = try Self.runScript(["stop-daemon", directory, name], timeout: 40)
        if r.status != 0 { throw DaemonError("dev-cluster stop-daemon \(name): \(r.output)") }
    }

    /// Starts one daemon again as `up` did.
    public func startDaemon(_ name: String) throws {
        let r = try Self.runScript(["start-daemon", directory, name], timeout: 40)
        if r.status != 0 { throw DaemonError("dev-cluster start-daemon \(name): \(r.output)") }
    }

    /// SIGSTOPs one daemon: it answers nothing until thawed, and keeps its data.
    public func freezeDaemon(_ name: String) throws {
        let r = try Self.runScript(["freeze-daemon", directory, name], timeout: 20)
        if r.status != 0 { throw DaemonError("dev-cluster freeze-daemon \(name): \(r.output)") }
    }

    /// SIGCONTs a frozen daemon.
    public func thawDaemon(_ name: String) throws {
        let r = try Self.runScript(["thaw-daemon", directory, name], timeout: 20)
        if r.status != 0 { throw DaemonError("dev-cluster thaw-daemon \(name): \(r.output)") }
    }

    /// The recorded PID of a daemon.
    public func daemonPID(_ name: String) -> pid_t? {
        (try? String(contentsOfFile: "\(directory)/pid/\(name).pid", encoding: .utf8)).flatMap {
            pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// The ceph CLI as client.admin, with a time limit.
    public func ceph(_ args: [String], timeout: TimeInterval = 30) throws -> ProcessResult {
        var env = ProcessInfo.processInfo.environment
        for k in ["PYTHONHOME", "PYTHONPATH", "CEPH_ARGS"] { env[k] = nil }
        return try runProcess(
            "/usr/bin/timeout",
            ["\(Int(timeout))", "/usr/bin/ceph", "-c", confPath, "-n", "client.admin", "--connect-timeout", "\(max(1, Int(timeout) - 1))"]
                + args,
            timeout: timeout + 5, environment: env)
    }

    /// The ceph CLI's JSON output.
    public func cephJSON(_ args: [String], timeout: TimeInterval = 30) throws -> JSONValue {
        let r = try ceph(args + ["-f", "json"], timeout: timeout)
        guard r.status == 0 else { throw DaemonError("ceph \(args.joined(separator: " ")): \(r.status) \(r.stderr)") }
        return try JSONValue.parse(r.stdout)
    }

    /// Waits until `ceph -s` answers (the mon has quorum); returns the seconds waited.
    public func waitForQuorum(timeout: TimeInterval) -> TimeInterval? {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if let r = try? ceph(["-s"], timeout: 10), r.status == 0 { return Date().timeIntervalSince(start) }
            usleep(200_000)
        }
        return nil
    }

    /// The file system's MDS map (`fs dump`).
    public func mdsMap(fsName: String = "cephfs") throws -> MDSMapView {
        try MDSMapView(fsDump: try cephJSON(["fs", "dump"], timeout: 15), fsName: fsName)
    }

    /// Waits until the file system has `active` active ranks and `standbys` standbys.
    @discardableResult
    public func waitForMDS(active: Int = 2, standbys: Int = 1, timeout: TimeInterval = 90) -> MDSMapView? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let m = try? mdsMap(), m.activeRanks.count == active, m.standbyNames.count >= standbys {
                return m
            }
            usleep(300_000)
        }
        return nil
    }

    /// An admin handle (client.volumed has mon 'allow *').
    public func connect(id: String = "volumed", timeout: Int = 15) throws -> RadosCluster {
        try RadosCluster(ClusterOptions(confPath: confPath, id: id, monOpTimeout: timeout, osdOpTimeout: timeout, mountTimeout: timeout))
    }

    /// A mount of the whole file system.
    public func mount(cluster: RadosCluster) throws -> CephFSMount {
        let m = try CephFSMount(cluster: cluster)
        try m.mount(fsName: "cephfs")
        return m
    }

    public struct ScriptResult: Sendable {
        public let status: Int32
        public let output: String
    }

    /// Runs the dev-cluster script with its output in a file. Not through
    /// Foundation's Process: on Linux it learns that a child ended from a
    /// socket the child inherits, and the daemons the script leaves running
    /// inherit it too, so the script would never seem to end. The script
    /// also gets no descriptor of this process beyond stdin/out/err.
    public static func runScript(_ args: [String], timeout: TimeInterval) throws -> ScriptResult {
        let logPath = NSTemporaryDirectory() + "dev-cluster-\(UUID().uuidString.prefix(8)).out"
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        var env = ProcessInfo.processInfo.environment
        env["CEPH_DEV_DIR"] = nil
        env["DEV_CLUSTER_LOG"] = logPath
        let closeAndExec =
            #"for f in /proc/$$/fd/*; do n=${f##*/}; case $n in 0|1|2) ;; *) eval "exec $n>&-" 2>/dev/null ;; esac; done; exec "$0" "$@" </dev/null >"$DEV_CLUSTER_LOG" 2>&1"#
        let status = try spawnAndWait(["/bin/bash", "-c", closeAndExec, script] + args, environment: env, timeout: timeout)
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return ScriptResult(status: status, output: text)
    }
}

/// Spawns `argv` and waits for it with `waitpid` (SIGKILL after `timeout`).
/// Returns the exit status, or 128 + signal when a signal ended it.
public func spawnAndWait(_ argv: [String], environment: [String: String], timeout: TimeInterval) throws -> Int32 {
    try spawnProcess(argv, environment: environment, timeout: timeout, pollInterval: 50_000).status
}

/// Private clusters still up at exit of the test process are taken down.
enum PrivateClusterRegistry {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var dirs: Set<String> = []
    nonisolated(unsafe) private static var installed = false

    static func add(_ d: String) {
        lock.lock()
        defer { lock.unlock() }
        if !installed {
            installed = true
            atexit { PrivateClusterRegistry.downAll() }
        }
        dirs.insert(d)
    }

    static func remove(_ d: String) {
        lock.lock()
        dirs.remove(d)
        lock.unlock()
    }

    private static func downAll() {
        lock.lock()
        let all = dirs
        lock.unlock()
        for d in all { _ = try? PrivateCluster.runScript(["down", d], timeout: 60) }
    }
}

// MARK: MDS map

/// What the tests need of `fs dump`.
public struct MDSMapView: Sendable {
    public struct Daemon: Sendable {
        public let gid: Int64
        public let name: String
        public let state: String
        public let rank: Int?
        public let laggy: Bool
    }

    /// rank → gid of the daemon holding it (`mdsmap.up`).
    public let up: [Int: Int64]
    /// gid → daemon (`mdsmap.info`).
    public let info: [Int64: Daemon]
    public let failed: [Int]
    public let standbyNames: [String]

    public init(fsDump: JSONValue, fsName: String) throws {
        guard let fs = fsDump["filesystems"]?.arrayValue?.first(where: { $0["mdsmap"]?["fs_name"]?.stringValue == fsName }),
            let map = fs["mdsmap"]
        else { throw DaemonError("fs dump has no file system \(fsName)") }
        var up: [Int: Int64] = [:]
        for (k, v) in map["up"]?.objectValue ?? [:] {
            if k.hasPrefix("mds_"), let r = Int(k.dropFirst(4)), let g = v.int64Value { up[r] = g }
        }
        var info: [Int64: Daemon] = [:]
        for (_, v) in map["info"]?.objectValue ?? [:] {
            guard let g = v["gid"]?.int64Value else { continue }
            let laggy = v["laggy_since"].map { !$0.isNull && $0.stringValue != "" && $0.stringValue != "0.000000" } ?? false
            info[g] = Daemon(
                gid: g, name: v["name"]?.stringValue ?? "?", state: v["state"]?.stringValue ?? "?",
                rank: v["rank"]?.int64Value.map(Int.init), laggy: laggy)
        }
        self.up = up
        self.info = info
        failed = map["failed"]?.arrayValue?.compactMap { $0.int64Value.map(Int.init) } ?? []
        standbyNames = fsDump["standbys"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
    }

    /// The daemon holding `rank`, if any.
    public func holder(rank: Int) -> Daemon? { up[rank].flatMap { info[$0] } }

    public var activeRanks: [Int] {
        up.keys.sorted().filter { holder(rank: $0)?.state == "up:active" }
    }

    public var summary: String {
        let ranks = up.keys.sorted().map { r in
            "rank \(r): \(holder(rank: r).map { "mds.\($0.name) \($0.state)\($0.laggy ? " laggy" : "")" } ?? "?")"
        }
        return (ranks + (failed.isEmpty ? [] : ["failed \(failed)"]) + ["standbys \(standbyNames)"]).joined(separator: "; ")
    }
}

/// The client sessions of one MDS daemon (`session ls`).
public func mdsSessions(_ fs: CephFSMount, gid: Int64) throws -> [JSONValue] {
    let out = try fs.mdsCommand(String(gid), ["prefix": "session ls"])
    return try out.json()?.arrayValue ?? []
}

/// The session ids, on every rank of `map`, of clients whose metadata has `volumed_instance=instance`.
public func volumedSessions(_ fs: CephFSMount, map: MDSMapView, instance: String) throws -> [Int: [Int64]] {
    var out: [Int: [Int64]] = [:]
    for (rank, gid) in map.up {
        let ids = try mdsSessions(fs, gid: gid).filter {
            $0["client_metadata"]?["volumed_instance"]?.stringValue == instance
        }.compactMap { $0["id"]?.int64Value }
        if !ids.isEmpty { out[rank] = ids }
    }
    return out
}
