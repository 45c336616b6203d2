import Foundation
import JSONValue
import TestSupport
import Testing

/// Issue 12: what one client can make the daemon hold (memory, descriptors,
/// CPU), and names librados cannot represent. Memory is read from the
/// daemon's /proc status; bounds on memory and CPU are resource bounds, not
/// timings, and are generous.
@Suite("Resource limits", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct ResourceLimitsTests {
    // MARK: NUL in names (item 6)

    @Test func namesWithNULAreRefusedAndNeverReachLibrados() throws {
        let d = try DaemonProcess()
        let c = try LineClient(path: d.socketPath)
        let victim = TestCluster.uniqueName("victim")
        defer { _ = try? c.request(call("delete_object", #"{"pool_name":"cephfs_data","object_name":"\#(victim)"}"#)) }
        let original = "b3JpZ2luYWw="  // "original"
        #expect(try result(c, "put_object", #"{"pool_name":"cephfs_data","object_name":"\#(victim)","data":"\#(original)"}"#) == .null)

        let attempts: [(String, String)] = [
            ("put_object", #"{"pool_name":"cephfs_data","object_name":"\#(victim)\u0000evil","data":"ZXZpbA=="}"#),
            ("put_object_versioned", #"{"pool_name":"cephfs_data","object_name":"\#(victim)\u0000evil","data":"ZXZpbA==","version":null}"#),
            ("delete_object", #"{"pool_name":"cephfs_data","object_name":"\#(victim)\u0000"}"#),
            ("delete_object", #"{"pool_name":"cephfs_data\u0000evil","object_name":"\#(victim)"}"#),
            ("put_object", #"{"pool_name":"cephfs_data\u0000x","object_name":"\#(victim)","data":"ZXZpbA=="}"#),
            ("get_object", #"{"pool_name":"cephfs_data","object_name":"\#(victim)\u0000x"}"#),
            ("get_object_and_version", #"{"pool_name":"cephfs_data","object_name":"\#(victim)\u0000x"}"#),
        ]
        for (method, params) in attempts {
            let reply = try JSONValue.parse(try c.request(call(method, params)))
            #expect(reply["error"]?["code"] == -32602, "\(method) \(params): \(reply)")
            // The victim is untouched after every attempt.
            #expect(
                try result(c, "get_object", #"{"pool_name":"cephfs_data","object_name":"\#(victim)"}"#) == .string(original),
                "after \(method) \(params)")
        }
    }

    // MARK: get_object memory and speed (item 12)

    @Test func concurrentGetObjectKeepsMemoryBounded() throws {
        let d = try DaemonProcess()
        let pid = d.process.processIdentifier
        let name = TestCluster.uniqueName("small")
        let setup = try LineClient(path: d.socketPath)
        defer { _ = try? setup.request(call("delete_object", #"{"pool_name":"cephfs_data","object_name":"\#(name)"}"#)) }
        #expect(
            try result(setup, "put_object", #"{"pool_name":"cephfs_data","object_name":"\#(name)","data":"MDEyMzQ1Njc4OQ=="}"#) == .null)
        let before = try ProcStatus(pid: pid)

        // 24 calls at once: 4 connections with 6 pipelined each, 3 rounds.
        let clients = try (0..<4).map { _ in try LineClient(path: d.socketPath) }
        let line = call("get_object", #"{"pool_name":"cephfs_data","object_name":"\#(name)"}"#) + "\n"
        for _ in 0..<3 {
            for c in clients { try c.send(String(repeating: line, count: 6)) }
            for c in clients {
                for _ in 0..<6 {
                    let reply = try JSONValue.parse(try #require(try c.readLine()))
                    #expect(reply["result"] == "MDEyMzQ1Njc4OQ==", "\(reply)")
                }
            }
        }
        let after = try ProcStatus(pid: pid)
        let growth = after.hwmKiB - before.hwmKiB
        print("get_object x24 concurrent: peak RSS \(before.hwmKiB / 1024) -> \(after.hwmKiB / 1024) MiB (+\(growth / 1024) MiB)")
        #expect(growth < 64 * 1024, "peak RSS grew by \(growth / 1024) MiB")

        // Reported, not asserted: the cost of one small get_object.
        let kib = TestCluster.uniqueName("kib")
        defer { _ = try? setup.request(call("delete_object", #"{"pool_name":"cephfs_data","object_name":"\#(kib)"}"#)) }
        let data = Data(repeating: 0x61, count: 1024).base64EncodedString()
        _ = try result(setup, "put_object", #"{"pool_name":"cephfs_data","object_name":"\#(kib)","data":"\#(data)"}"#)
        let n = 50
        let start = Date()
        for _ in 0..<n {
            #expect(try result(setup, "get_object", #"{"pool_name":"cephfs_data","object_name":"\#(kib)"}"#) == .string(data))
        }
        print("get_object of 1 KiB: \(String(format: "%.3f", Date().timeIntervalSince(start) * 1000 / Double(n))) ms per call")
    }

    // MARK: A client that never reads (item 10)

    @Test func pipeliningClientThatNeverReadsIsStoppedNotBuffered() throws {
        let d = try DaemonProcess()
        let pid = d.process.processIdentifier
        let before = try ProcStatus(pid: pid)
        let c = try LineClient(path: d.socketPath, receiveTimeout: 30)
        let flags = fcntl(c.fd, F_GETFL)
        _ = fcntl(c.fd, F_SETFL, flags | O_NONBLOCK)
        // Long ids, which every reply echoes, make the replies as big as the requests.
        let id = String(repeating: "x", count: 8000)
        let line = Array(#"{"jsonrpc":"2.0","id":"\#(id)","method":"ping"}"#.utf8) + [0x0A]
        let chunk = [UInt8]((0..<8).flatMap { _ in line })
        var sent = 0
        var offset = 0
        var lastProgress = Date()
        let start = Date()
        // Until 256 MiB went out, 15 s passed, or the daemon stopped taking bytes for 2 s.
        while sent < 256 << 20, Date().timeIntervalSince(start) < 15, Date().timeIntervalSince(lastProgress) < 2 {
            let n = chunk.withUnsafeBytes { send(c.fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                sent += n
                offset = (offset + n) % chunk.count
                lastProgress = Date()
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                usleep(1000)
            } else {
                Issue.record("send: \(String(cString: strerror(errno)))")
                break
            }
        }
        let after = try ProcStatus(pid: pid)
        let growth = after.hwmKiB - before.hwmKiB
        print("never-reading client: sent \(sent >> 20) MiB in \(Int(Date().timeIntervalSince(start))) s; peak RSS +\(growth / 1024) MiB")
        #expect(growth < 64 * 1024, "peak RSS grew by \(growth / 1024) MiB")

        // Nothing was lost: every complete line sent is answered once the client reads.
        _ = fcntl(c.fd, F_SETFL, flags)
        let lines = sent / line.count
        var received = 0
        while received < lines, let reply = try c.readLine() {
            if received == 0 { #expect(reply.contains("pong")) }
            received += 1
        }
        #expect(received == lines)
    }

    // MARK: Partial lines (item 11)

    @Test func partialLinesHaveAGlobalBudget() throws {
        let d = try DaemonProcess()
        let pid = d.process.processIdentifier
        let before = try ProcStatus(pid: pid)
        let prefix = Array(#"{"jsonrpc":"2.0","id":1,"method":"ping","pad":""#.utf8)
        let body = [UInt8](repeating: 0x61, count: 15 << 20)
        var clients: [LineClient] = []
        for _ in 0..<24 {
            let c = try LineClient(path: d.socketPath, receiveTimeout: 2)
            clients.append(c)
            // A refused peer may see its send fail once the daemon closed.
            try? c.send(prefix + body)
        }
        usleep(300_000)
        let held = try ProcStatus(pid: pid)
        let growth = held.hwmKiB - before.hwmKiB
        // A newcomer is still served while the big lines are held.
        #expect(try LineClient(path: d.socketPath).request(#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#).contains("pong"))
        var refused = 0
        for c in clients {
            if let reply = try? c.readLine(), reply.contains("-32002") { refused += 1 }
        }
        print("24 x 15 MiB partial lines: \(refused) refused; peak RSS +\(growth / 1024) MiB")
        #expect(refused > 0)
        #expect(refused <= 20, "the budget (128 MiB) holds several 15 MiB lines")
        #expect(growth < 192 * 1024, "peak RSS grew by \(growth / 1024) MiB")
    }

    // MARK: Connections per peer (item 13)

    /// Run as root, forks children that drop to other uids (in the socket's
    /// group): peer A opens `count` connections and holds them while peer B
    /// connects once.
    static let twoPeers = #"""
        import json, os, socket, sys
        path, count = sys.argv[1], int(sys.argv[2])
        PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
        def ping(s):
            s.settimeout(30)
            s.connect(path)
            s.sendall(PING)
            buf = b''
            while not buf.endswith(b'\n'):
                d = s.recv(4096)
                if not d:
                    break
                buf += d
            return buf.decode().strip()
        def as_uid(uid, body):
            r, w = os.pipe()
            hold_r, hold_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r); os.close(hold_w)
                os.setgroups([]); os.setgid(60000); os.setuid(uid)
                socks = [socket.socket(socket.AF_UNIX) for _ in range(body)]
                out = [ping(s) for s in socks]
                os.write(w, (json.dumps(out) + '\n').encode())
                os.read(hold_r, 1)  # hold the connections until released
                os._exit(0)
            os.close(w); os.close(hold_r)
            with os.fdopen(r) as f:
                return pid, hold_w, json.loads(f.readline())
        a_pid, a_hold, a = as_uid(60001, count)
        b_pid, b_hold, b = as_uid(60002, 1)
        os.close(a_hold); os.close(b_hold)
        os.waitpid(a_pid, 0); os.waitpid(b_pid, 0)
        print(json.dumps({"a": a, "b": b}))
        """#

    /// Peer A's replies and peer B's, with A trying `attempts` connections.
    func twoPeers(_ d: DaemonProcess, attempts: Int) throws -> (a: [String], b: [String]) {
        let script = NSTemporaryDirectory() + "two-peers-\(UUID().uuidString.prefix(8)).py"
        try Self.twoPeers.write(toFile: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: script) }
        let r = try runProcess("/usr/bin/python3", [script, d.socketPath, "\(attempts)"], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONValue.parse(Array(r.stdout.utf8))
        let a = (out["a"]?.arrayValue ?? []).compactMap(\.stringValue)
        let b = (out["b"]?.arrayValue ?? []).compactMap(\.stringValue)
        print("peer A: \(a.filter { $0.contains("pong") }.count) served, \(a.filter { $0.contains("-32002") }.count) refused; peer B: \(b)")
        return (a, b)
    }

    @Test func onePeerCannotTakeEveryConnection() throws {
        let d = try DaemonProcess(extraArguments: ["--socket-group", "60000", "--max-connections", "8"])
        let (a, b) = try twoPeers(d, attempts: 8)
        // Half of the 8 slots by default; the rest of A's attempts are refused.
        #expect(a.filter { $0.contains("pong") }.count == 4, "\(a)")
        #expect(a.filter { $0.contains("-32002") }.count == 4, "\(a)")
        #expect(b.count == 1 && b[0].contains("pong"), "peer B while A holds its maximum: \(b)")
        // Root is not limited per peer.
        let root = try (0..<6).map { _ in try LineClient(path: d.socketPath) }
        for c in root { #expect(try c.request(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).contains("pong")) }
    }

    @Test func perPeerLimitIsConfigurable() throws {
        let d = try DaemonProcess(extraArguments: [
            "--socket-group", "60000", "--max-connections", "8", "--max-connections-per-peer", "2",
        ])
        let (a, b) = try twoPeers(d, attempts: 5)
        #expect(a.filter { $0.contains("pong") }.count == 2, "\(a)")
        #expect(a.filter { $0.contains("too many connections from uid 60001") }.count == 3, "\(a)")
        #expect(b.count == 1 && b[0].contains("pong"), "\(b)")
    }

    @Test func limitOptionsAreChecked() throws {
        let base = DaemonProcess.standardArguments(socket: NSTemporaryDirectory() + "unused-\(UUID().uuidString.prefix(8)).sock")
        for (extra, message) in [
            (["--line-buffer-budget", "1000"], "line_buffer_budget"),
            (["--max-connections-per-peer", "0"], "max_connections_per_peer"),
        ] {
            let r = try runProcess(BuiltProducts.path("cephfs-volumed"), base + extra, timeout: 60)
            #expect(r.status != 0, "\(extra)")
            #expect(r.stderr.contains(message), "\(extra): \(r.stderr)")
        }
    }

    // MARK: Descriptor exhaustion (item 14)

    @Test func descriptorExhaustionBacksOffInsteadOfSpinning() throws {
        let d = try DaemonProcess()
        let pid = d.process.processIdentifier
        // 64 as in the report, or room for about 30 peers if the daemon already holds more.
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
        let nofile = max(64, fds + 30)
        let limit = try runProcess("/usr/bin/prlimit", ["--pid", "\(pid)", "--nofile=\(nofile):\(nofile)"])
        try #require(limit.status == 0, "\(limit.stderr)")
        var clients: [LineClient] = []
        for _ in 0..<200 { clients.append(try LineClient(path: d.socketPath, receiveTimeout: 5)) }
        usleep(500_000)
        let linesBefore = d.log().split(separator: "\n").count
        let cpuBefore = try cpuTicks(pid)
        sleep(5)
        let cpu = Double(try cpuTicks(pid) - cpuBefore) / Double(sysconf(Int32(_SC_CLK_TCK))) / 5
        let logged = d.log().split(separator: "\n").count - linesBefore
        print("200 peers at RLIMIT_NOFILE \(nofile): \(Int(cpu * 100))% of a CPU, \(logged) log lines in 5 s")
        #expect(d.log().contains("Too many open files"), "the daemon did run out of descriptors")
        #expect(cpu < 0.3)
        #expect(logged < 100)

        // Once the peers go, descriptors come back and a new client is served.
        clients.removeAll()
        let served = waitUntil(timeout: 60) {
            (try? LineClient(path: d.socketPath, receiveTimeout: 5).request(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))?.contains("pong")
                == true
        }
        #expect(served)
    }
}

// MARK: Helpers

private func call(_ method: String, _ params: String) -> String {
    #"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":\#(params)}"#
}

/// The result of one call; records an issue for an error reply.
private func result(_ c: LineClient, _ method: String, _ params: String, sourceLocation: SourceLocation = #_sourceLocation) throws
    -> JSONValue?
{
    let reply = try JSONValue.parse(try c.request(call(method, params)))
    if let e = reply["error"] { Issue.record("\(method): \(e)", sourceLocation: sourceLocation) }
    return reply["result"]
}

/// Memory figures of a process, in KiB.
struct ProcStatus {
    let rssKiB: Int
    let hwmKiB: Int

    init(pid: Int32) throws {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ name: String) -> Int {
            for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
                return Int(line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? 0
            }
            return 0
        }
        rssKiB = field("VmRSS")
        hwmKiB = field("VmHWM")
    }
}

/// User plus system CPU time of a process, in clock ticks.
func cpuTicks(_ pid: Int32) throws -> Int {
    let text = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = text[text.index(after: text.lastIndex(of: ")")!)...].split(separator: " ")
    return (Int(rest[11]) ?? 0) + (Int(rest[12]) ?? 0)  // utime, stime: fields 14 and 15
}
