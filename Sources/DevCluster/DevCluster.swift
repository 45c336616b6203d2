import Foundation

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
public func runProcess(_ path: String, _ arguments: [String], timeout: TimeInterval = 60, environment: [String: String]? = nil) throws -> ProcessResult {
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
