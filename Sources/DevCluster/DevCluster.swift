import Foundation
import POSIXSupport

#if canImport(Glibc)
import Glibc
#endif

// The dev cluster (packaging/dev-cluster) and the processes run against it,
// as the tests and the bench both need them.

/// The dev cluster as its env file describes it (`export KEY='value'` lines).
public struct ClusterEnvironment: Sendable {
    public let path: String
    public let values: [String: String]
    public var confPath: String { values["CEPH_CONF"]! }
    public var serviceID: String { values["CEPH_ID"] ?? "volumed" }
    public var clusterName: String { values["CEPH_CLUSTER"] ?? "ceph" }
    public var fsName: String { values["CEPH_FS_NAME"] ?? "cephfs" }
    public var directory: String { values["CEPH_DEV_DIR"] ?? (confPath as NSString).deletingLastPathComponent }

    /// The file at `path`; nil when it cannot be read or sets no CEPH_CONF.
    public init?(path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let values = Self.parse(text)
        guard values["CEPH_CONF"] != nil else { return nil }
        self.path = path
        self.values = values
    }

    /// The variables of an env file; comments and other lines are skipped.
    public static func parse(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for raw in text.split(separator: "\n") {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasPrefix("export ") { line.removeFirst(7) }
            guard let eq = line.firstIndex(of: "=") else { continue }
            var value = String(line[line.index(after: eq)...])
            if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f {
                value = String(value.dropFirst().dropLast())
            }
            values[String(line[..<eq])] = value
        }
        return values
    }
}

// MARK: Processes

/// The result of running a command to completion.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs an executable to completion, with a time limit. Output goes to
/// temporary files, not pipes: Foundation's Process can close a pipe's
/// descriptors twice when several processes start at once.
public func runProcess(_ path: String, _ arguments: [String], timeout: TimeInterval = 60, environment: [String: String]? = nil) throws
    -> ProcessResult
{
    let dir = NSTemporaryDirectory() + "volumed-run-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let outPath = dir + "/out"
    let errPath = dir + "/err"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    defer {
        try? out.close()
        try? err.close()
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    if let environment { p.environment = environment }
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning, Date() < deadline { usleep(20_000) }
    if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
    }
    p.waitUntilExit()
    return ProcessResult(
        status: p.terminationStatus,
        stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// Starts `executable` with `arguments`, its output appended to `logPath`,
/// and `environment` on top of this process's own without the variables
/// named in `unset`.
public func launchLogged(
    _ executable: String, _ arguments: [String], logPath: String, environment: [String: String] = [:], unset: [String] = []
) throws -> Process {
    _ = FileManager.default.createFile(atPath: logPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if !environment.isEmpty || !unset.isEmpty {
        var env = ProcessInfo.processInfo.environment
        for name in unset { env[name] = nil }
        env.merge(environment) { _, new in new }
        process.environment = env
    }
    let log = FileHandle(forWritingAtPath: logPath)!
    process.standardOutput = log
    process.standardError = log
    process.standardInput = FileHandle.nullDevice
    try process.run()
    try? log.close()  // the child has its own descriptor
    return process
}

/// Sends `sig` (SIGTERM by default), SIGKILL after `timeout` seconds, and
/// returns the exit status.
@discardableResult
public func stopProcess(_ process: Process, signal sig: Int32 = SIGTERM, timeout: TimeInterval = 30) -> Int32 {
    if process.isRunning { kill(process.processIdentifier, sig) }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning, Date() < deadline { usleep(20_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    return process.terminationStatus
}

/// The last `lines` lines of a text file ("" when it cannot be read).
public func fileTail(_ path: String, lines: Int) -> String {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
}

/// A process's resident set size (VmRSS) in KiB, from /proc; nil when gone.
public func residentSetKiB(pid: pid_t) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
    }
    return nil
}

/// How a spawned program ended.
public struct SpawnResult: Sendable {
    /// The exit status, or 128 + signal when a signal ended it.
    public let status: Int32
    /// Killed (SIGKILL) for running past its time limit.
    public let timedOut: Bool
}

public struct SpawnError: Error, CustomStringConvertible {
    public let description: String
}

/// Runs `argv` with posix_spawn and waits for it with waitpid, SIGKILL after
/// `timeout` seconds. Not Foundation's `Process`: on Linux it learns that a
/// child ended from a descriptor that the child's own children inherit, and
/// under concurrent launches it can close pipe descriptors twice
/// (swiftlang/swift#57827). `stdin`, `stdout` and `stderr` name files for
/// descriptors 0 to 2 (output files are truncated); nil inherits ours.
public func spawnProcess(
    _ argv: [String], environment: [String: String], stdin: String? = nil, stdout: String? = nil, stderr: String? = nil,
    timeout: TimeInterval, pollInterval: useconds_t = 5_000
) throws(SpawnError) -> SpawnResult {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let stdin { posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0) }
    for (fd, path) in [(Int32(1), stdout), (2, stderr)] {
        if let path { posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_TRUNC, 0o600) }
    }
    let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    let cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in cArgs { free(p) }
        for p in cEnv { free(p) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
    guard rc == 0 else { throw SpawnError(description: "posix_spawn \(argv[0]): \(String(cString: strerror(rc)))") }
    let deadline = Date().addingTimeInterval(timeout)
    var status: Int32 = 0
    var timedOut = false
    while true {
        let w = waitpid(pid, &status, WNOHANG)
        if w == pid { break }
        if w < 0 && errno != EINTR { throw SpawnError(description: "waitpid \(pid): \(String(cString: strerror(errno)))") }
        if Date() >= deadline {
            kill(pid, SIGKILL)
            _ = retryingOnInterrupt { waitpid(pid, &status, 0) }
            timedOut = true
            break
        }
        usleep(pollInterval)
    }
    // WIFEXITED / WEXITSTATUS, else the signal.
    let low = status & 0x7f
    return SpawnResult(status: low == 0 ? (status >> 8) & 0xff : 128 + low, timedOut: timedOut)
}
