import Foundation

/// A `cephfs-volumed` on a socket path the test chooses, such as the path of
/// a daemon that was stopped: for restarting "the same" daemon under a client
/// that stays connected to the path.
public final class SocketDaemon: LaunchedDaemon, @unchecked Sendable {
    public let socketPath: String
    public let logPath: String
    public let process: Process

    /// Starts the daemon on `socketPath` with the dev cluster's standard flags
    /// (``DaemonProcess/standardArguments(socket:)``) plus `extraArguments`,
    /// and waits until it answers a ping.
    public init(socketPath: String, extraArguments: [String] = [], waitReady: Bool = true) throws {
        self.socketPath = socketPath
        logPath = NSTemporaryDirectory() + "volumed-test-" + UUID().uuidString.prefix(8) + ".log"
        process = try launchDaemon(DaemonProcess.standardArguments(socket: socketPath) + extraArguments, logPath: logPath)
        if waitReady { try waitUntilReady() }
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
