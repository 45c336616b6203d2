import Foundation

/// A `cephfs-volumed` on a socket path the test chooses, such as the path of
/// a daemon that was stopped: for restarting "the same" daemon under a client
/// that stays connected to the path.
public final class SocketDaemon: @unchecked Sendable {
    public let socketPath: String
    public let logPath: String
    public let process: Process

    /// Starts the daemon on `socketPath` with the dev cluster's standard flags
    /// (``DaemonProcess/standardArguments(socket:)``) plus `extraArguments`,
    /// and waits until it answers a ping.
    public init(socketPath: String, extraArguments: [String] = [], waitReady: Bool = true) throws {
        self.socketPath = socketPath
        logPath = NSTemporaryDirectory() + "volumed-test-" + UUID().uuidString.prefix(8) + ".log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltProducts.path("cephfs-volumed"))
        process.arguments = DaemonProcess.standardArguments(socket: socketPath) + extraArguments
        let log = FileHandle(forWritingAtPath: logPath)!
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        if waitReady { try waitUntilReady() }
    }

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
        if process.isRunning { kill(process.processIdentifier, sig) }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

extension DaemonProcess {
    /// Starts a new daemon on this daemon's socket path (after ``stop(signal:timeout:)``,
    /// to restart it under connected clients).
    public func restartOnSameSocket(extraArguments: [String] = []) throws -> SocketDaemon {
        try SocketDaemon(socketPath: socketPath, extraArguments: extraArguments)
    }
}
