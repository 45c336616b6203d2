import DevCluster
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Monotonic nanoseconds.
@inline(__always)
func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("[bench] \(message)\n".utf8))
}

/// Runs `body(i)` on `count` threads of their own and waits for all of them.
/// Each thread first runs `prepare(i)` (connecting, say); the bodies start
/// together once every thread is prepared. Returns the wall time of the
/// bodies in nanoseconds.
@discardableResult
func runThreads(
    _ count: Int, prepare: @escaping @Sendable (Int) throws -> Void = { _ in },
    _ body: @escaping @Sendable (Int) throws -> Void
) throws -> UInt64 {
    let ready = DispatchGroup()
    let done = DispatchGroup()
    let go = DispatchSemaphore(value: 0)
    let failure = Mutex<(any Error)?>(nil)
    for i in 0..<count {
        ready.enter()
        done.enter()
        let t = Thread {
            var prepared = false
            do {
                try prepare(i)
                prepared = true
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
            ready.leave()
            go.wait()
            if prepared {
                do { try body(i) } catch { failure.withLock { if $0 == nil { $0 = error } } }
            }
            done.leave()
        }
        t.stackSize = 1 << 20
        t.start()
    }
    ready.wait()
    let start = nowNanos()
    for _ in 0..<count { go.signal() }
    done.wait()
    let elapsed = nowNanos() - start
    if let e = failure.withLock({ $0 }) { throw e }
    return elapsed
}

/// Runs async work from synchronous code (the main thread, which is not one of
/// the cooperative pool's threads) and waits for its result.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let result = Mutex<Result<T, any Error>?>(nil)
    let sem = DispatchSemaphore(value: 0)
    Task {
        let r: Result<T, any Error>
        do { r = .success(try await body()) } catch { r = .failure(error) }
        result.withLock { $0 = r }
        sem.signal()
    }
    sem.wait()
    return try result.withLock { $0! }.get()
}

// MARK: The dev cluster

extension ClusterEnvironment {
    static func defaultPath() -> String {
        let env = ProcessInfo.processInfo.environment
        if let d = env["CEPH_DEV_DIR"], !d.isEmpty { return d + "/env" }
        return "/tmp/cephfs-volumed-dev/env"
    }

    static func load(_ path: String) throws -> ClusterEnvironment {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw BenchError("cannot read the dev cluster env file \(path) (start it with packaging/dev-cluster/dev-cluster up)")
        }
        guard ClusterEnvironment.parse(text)["CEPH_CONF"] != nil, let env = ClusterEnvironment(path: path) else {
            throw BenchError("\(path) sets no CEPH_CONF")
        }
        return env
    }
}

// MARK: Paths

enum Paths {
    /// The directory of the running executable.
    static let executableDirectory: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent
    }()

    /// packaging/bench: beside the sources of this file, or above the build
    /// directory, or under the current directory.
    static func scriptsDirectory() -> String? {
        let marker = "baseline_server.py"
        var candidates: [String] = []
        if let d = ProcessInfo.processInfo.environment["VOLUMED_BENCH_SCRIPTS"] { candidates.append(d) }
        var dir = executableDirectory
        for _ in 0..<5 {
            candidates.append(dir + "/packaging/bench")
            dir = (dir as NSString).deletingLastPathComponent
        }
        let source = ((#filePath as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        candidates.append(((source as NSString).deletingLastPathComponent) + "/packaging/bench")
        candidates.append(FileManager.default.currentDirectoryPath + "/packaging/bench")
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/" + marker) }
    }

    /// Looks a program up in PATH, as a shell would.
    static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}

// MARK: Processes

/// A server the bench started: the daemon or the Python baseline.
final class ServerProcess: @unchecked Sendable {
    let name: String
    let socketPath: String
    let logPath: String
    let process: Process

    init(name: String, executable: String, arguments: [String], socketPath: String, logPath: String) throws {
        self.name = name
        self.socketPath = socketPath
        self.logPath = logPath
        process = try launchLogged(executable, arguments, logPath: logPath)
    }

    var pid: Int32 { process.processIdentifier }

    /// Waits until the socket answers a ping.
    func waitUntilReady(timeout: TimeInterval = 90) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning {
                throw BenchError("\(name) exited with status \(process.terminationStatus); log \(logPath):\n\(logTail())")
            }
            if let s = try? LineSocket(path: socketPath, connectTimeout: 1), (try? s.ping(id: 0)) != nil { return }
            usleep(50_000)
        }
        throw BenchError("\(name) not ready after \(Int(timeout)) s; log \(logPath):\n\(logTail())")
    }

    func logTail(lines: Int = 20) -> String { fileTail(logPath, lines: lines) }

    /// VmRSS in KiB, from /proc/<pid>/status.
    func rssKiB() throws -> Int {
        guard let kib = residentSetKiB(pid: pid) else { throw BenchError("cannot read VmRSS in /proc/\(pid)/status") }
        return kib
    }

    /// SIGTERM, then SIGKILL after `timeout` seconds.
    @discardableResult
    func stop(timeout: TimeInterval = 30) -> Int32 { stopProcess(process, timeout: timeout) }
}

/// Raises the soft RLIMIT_NOFILE to at least `want` (up to the hard limit).
func raiseFileLimit(_ want: Int) -> Int {
    var rl = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    if rl.rlim_cur < rlim_t(want) {
        var target = rlim_t(want)
        if rl.rlim_max != rlim_t.max, rl.rlim_max < target {
            // Try to raise the hard limit too (works as root).
            var raised = rlimit(rlim_cur: target, rlim_max: target)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return want }
            target = rl.rlim_max
        }
        rl.rlim_cur = target
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    }
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    return Int(clamping: rl.rlim_cur)
}
