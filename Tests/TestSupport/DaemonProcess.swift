import Foundation

/// Where `swift build` put the executables: `$VOLUMED_BIN_DIR`, else beside
/// the test bundle, else the package's `.build/debug`.
public enum BuiltProducts {
    public static let directory: String = {
        if let d = ProcessInfo.processInfo.environment["VOLUMED_BIN_DIR"] { return d }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [beside, beside.deletingLastPathComponent()]
        where
            FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("cephfs-volumed").path)
        {
            return dir.path
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug").path
    }()

    public static func path(_ name: String) -> String { directory + "/" + name }
}

/// A `cephfs-volumed` process the test started, with its socket and log file.
public protocol LaunchedDaemon: AnyObject {
    var socketPath: String { get }
    var logPath: String { get }
    var process: Process { get }
}

extension LaunchedDaemon {
    /// Waits until the socket accepts a ping.
    public func waitUntilReady(timeout: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning {
                throw DaemonError("daemon exited with \(process.terminationStatus): \(log())")
            }
            if let c = try? LineClient(path: socketPath),
                let reply = try? c.request(#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#),
                reply.contains("pong")
            {
                return
            }
            usleep(50_000)
        }
        throw DaemonError("daemon not ready after \(timeout) s: \(log())")
    }

    public func log() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Sends `sig` (SIGTERM by default) and waits for the exit status.
    @discardableResult
    public func stop(signal sig: Int32 = SIGTERM, timeout: TimeInterval = 30) -> Int32 {
        stopProcess(process, signal: sig, timeout: timeout)
    }
}

/// Starts the built `cephfs-volumed` with `arguments`, its output appended
/// to `logPath`, and `environment` on top of the test's own without the
/// variables named in `unset`.
func launchDaemon(
    _ arguments: [String], logPath: String, environment: [String: String] = [:], unset: [String] = []
) throws -> Process {
    try launchLogged(BuiltProducts.path("cephfs-volumed"), arguments, logPath: logPath, environment: environment, unset: unset)
}

/// A `cephfs-volumed` started against the dev cluster on a private socket.
public final class DaemonProcess: LaunchedDaemon, @unchecked Sendable {
    public let socketPath: String
    public let logPath: String
    public let process: Process
    private let workDir: String

    /// The standard flags for the dev cluster. Each daemon gets its own
    /// instance name unless `instance` is false: two daemons sharing one on a
    /// host refuse to run, as they would evict each other's sessions.
    public static func standardArguments(socket: String, instance: Bool = true) -> [String] {
        let env = TestCluster.environment!
        let base = [
            "--socket", socket, "--conf", env.confPath, "--id", env.serviceID, "--cluster", env.clusterName, "--fs-name", env.fsName,
        ]
        return instance ? base + ["--instance", uniqueInstanceName()] : base
    }

    public static func uniqueInstanceName() -> String { "test-" + UUID().uuidString.prefix(8).lowercased() }

    public init(extraArguments: [String] = [], environment: [String: String] = [:], waitReady: Bool = true) throws {
        workDir = NSTemporaryDirectory() + "volumed-test-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        socketPath = workDir + "/volumed.sock"
        logPath = workDir + "/daemon.log"
        process = try launchDaemon(
            Self.standardArguments(socket: socketPath, instance: !extraArguments.contains("--instance")) + extraArguments,
            logPath: logPath, environment: environment)
        if waitReady { try waitUntilReady() }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: workDir)
    }
}

public struct DaemonError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
