import Foundation
import JSONValue
import POSIXSupport

#if canImport(Glibc)
import Glibc
#endif

/// Debian's Python ceph_volume_client, driven call by call through
/// `python_v6_bench.py serve` (one JSON command per line on its stdin, one
/// JSON reply per line on its stdout). The script times each call itself, so
/// the pipe is not part of any figure.
final class PythonLibrary {
    private let process = Process()
    private let toChild = Pipe()
    private let fromChild = Pipe()
    private var buffer: [UInt8] = []
    let logPath: String
    private(set) var connectSeconds = 0.0

    init(python: String, script: String, arguments: [String], logPath: String) throws {
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "serve"] + arguments
        process.standardInput = toChild
        process.standardOutput = fromChild
        process.standardError = FileHandle(forWritingAtPath: logPath)!
        try process.run()
        let ready = try readReply()
        guard ready["ready"]?.boolValue == true else { throw BenchError("python_v6_bench.py did not start: \(ready)") }
        connectSeconds = Self.seconds(ready["connect"])
    }

    /// create_volume + authorize; seconds of each call, as ns.
    func pair(name: String, tenant: String, size: Int) throws -> (create: UInt64, authorize: UInt64) {
        let r = try request(["op": "pair", "name": .string(name), "tenant": .string(tenant), "size": size > 0 ? .int(size) : .null])
        return (Self.nanos(r["create"]), Self.nanos(r["authorize"]))
    }

    /// deauthorize, delete_volume, purge_volume; ns of each call.
    func teardown(name: String) throws -> (UInt64, UInt64, UInt64) {
        let r = try request(["op": "teardown", "name": .string(name)])
        return (Self.nanos(r["deauthorize"]), Self.nanos(r["delete"]), Self.nanos(r["purge"]))
    }

    func stop() {
        if process.isRunning {
            try? toChild.fileHandleForWriting.write(contentsOf: Array("{\"op\":\"quit\"}\n".utf8))
            try? toChild.fileHandleForWriting.close()
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
    }

    private func request(_ command: JSONValue) throws -> JSONValue {
        guard process.isRunning else { throw BenchError("python_v6_bench.py exited; see \(logPath)") }
        try toChild.fileHandleForWriting.write(contentsOf: command.serialized() + [0x0A])
        let r = try readReply()
        if let e = r["error"]?.stringValue { throw BenchError("ceph_volume_client: \(e)") }
        return r
    }

    private func readReply() throws -> JSONValue {
        let fd = fromChild.fileHandleForReading.fileDescriptor
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeFirst(nl + 1)
                // Anything that is not a JSON object (stray output) is skipped.
                if let v = try? JSONValue.parse(line), v.objectValue != nil { return v }
                continue
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = retryingOnInterrupt { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            if n <= 0 {
                let tail = (try? String(contentsOfFile: logPath, encoding: .utf8))?.suffix(2000) ?? ""
                throw BenchError("python_v6_bench.py closed its output; stderr:\n\(tail)")
            }
            buffer += chunk[0..<n]
        }
    }

    private static func seconds(_ v: JSONValue?) -> Double {
        guard case .number(let x)? = v, let d = x.doubleValue else { return 0 }
        return d
    }

    private static func nanos(_ v: JSONValue?) -> UInt64 { UInt64(max(0, seconds(v) * 1e9)) }
}
