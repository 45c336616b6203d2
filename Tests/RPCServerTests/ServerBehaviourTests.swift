import Dispatch
import Foundation
import JSONValue
import RPCServer
import Synchronization
import TestSupport
import Testing
import VolumeProtocol

@Suite("Keyed serialisation")
struct KeyedSerializationTests {
    @Test func sameKeyNeverInterleavesAndKeepsArrivalOrder() throws {
        let h = try ServerHarness()
        let c = try h.client()
        for i in 0..<8 {
            try c.send(
                #"{"jsonrpc":"2.0","id":\#(i),"method":"record","params":{"keys":["auth:a","volume:g/v"],"tag":"\#(i)","ms":30}}"# + "\n")
        }
        for _ in 0..<8 { _ = try c.readLine() }
        let expected = (0..<8).flatMap { ["start \($0)", "end \($0)"] }
        #expect(h.events.all == expected)
    }

    @Test func overlappingKeySetsSerialiseAndDoNotDeadlock() throws {
        let h = try ServerHarness()
        let c = try h.client()
        let keySets = [["auth:a", "volume:x"], ["volume:x", "auth:b"], ["auth:b", "auth:a"], ["auth:a"]]
        for (i, keys) in keySets.enumerated() {
            let k = keys.map { "\"\($0)\"" }.joined(separator: ",")
            try c.send(#"{"jsonrpc":"2.0","id":\#(i),"method":"record","params":{"keys":[\#(k)],"tag":"\#(i)","ms":40}}"# + "\n")
        }
        for _ in keySets { #expect(try c.readLine() != nil) }
        // Each call shares a key with the one before it, so all run one at a time.
        #expect(h.events.all == (0..<4).flatMap { ["start \($0)", "end \($0)"] })
    }

    @Test func disjointKeysRunInParallel() throws {
        let h = try ServerHarness()
        let c = try h.client()
        let start = Date()
        for i in 0..<6 {
            try c.send(#"{"jsonrpc":"2.0","id":\#(i),"method":"record","params":{"keys":["volume:v\#(i)"],"tag":"\#(i)","ms":400}}"# + "\n")
        }
        for _ in 0..<6 { _ = try c.readLine() }
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed < 6 * 0.4 * 0.6, "six 400 ms calls on distinct keys took \(elapsed) s")
        // All started before any ended.
        let events = h.events.all
        let firstEnd = try #require(events.firstIndex { $0.hasPrefix("end") })
        #expect(events[..<firstEnd].count == 6)
    }

    @Test func aSlowCallDoesNotBlockPing() throws {
        let h = try ServerHarness()
        let slow = try h.client()
        try slow.send(#"{"jsonrpc":"2.0","id":1,"method":"record","params":{"keys":["volume:v"],"tag":"slow","ms":1500}}"# + "\n")
        usleep(100_000)
        let start = Date()
        #expect(try h.call(#"{"jsonrpc":"2.0","id":2,"method":"echo"}"#)["id"] == 2)
        #expect(Date().timeIntervalSince(start) < 1)
    }
}

@Suite("Server limits and lifecycle")
struct ServerLimitTests {
    @Test func overlongLineGetsAnErrorAndTheConnectionCloses() throws {
        var limits = ServerLimits()
        limits.maxLineLength = 1024
        let h = try ServerHarness(limits: limits)
        let c = try h.client()
        try c.send(Array(repeating: UInt8(ascii: "x"), count: 5000))
        let reply = try JSONValue.parse(try #require(try c.readLine()))
        #expect(reply["id"] == .null)
        #expect(reply["error"]?["code"] == .int(RPCErrorCode.limitExceeded.rawValue))
        #expect(try c.readLine() == nil, "the connection is closed")
        // A line of exactly the limit is fine.
        let exact = #"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"p":""# + String(repeating: "a", count: 0) + #""}}"#
        let padded = exact + String(repeating: " ", count: 1024 - exact.utf8.count)
        #expect(try h.call(padded)["id"] == 1)
    }

    @Test func connectionLimitRefusesExtraPeers() throws {
        var limits = ServerLimits()
        limits.maxConnections = 2
        let h = try ServerHarness(limits: limits)
        let a = try h.client()
        let b = try h.client()
        _ = try a.request(#"{"jsonrpc":"2.0","id":1,"method":"echo"}"#)
        _ = try b.request(#"{"jsonrpc":"2.0","id":1,"method":"echo"}"#)
        let c = try h.client()
        let refusal = try JSONValue.parse(try #require(try c.readLine()))
        #expect(refusal["error"]?["code"] == .int(RPCErrorCode.limitExceeded.rawValue))
        #expect(try c.readLine() == nil)
    }

    @Test func backPressureStopsReadingAtTheInFlightLimit() throws {
        var limits = ServerLimits()
        limits.maxInFlightPerConnection = 2
        let h = try ServerHarness(limits: limits)
        let c = try h.client()
        for i in 0..<6 {
            try c.send(#"{"jsonrpc":"2.0","id":\#(i),"method":"sleep","params":{"ms":300}}"# + "\n")
        }
        usleep(150_000)
        #expect(h.dispatcher.stats.inFlightCount <= 2)
        for _ in 0..<6 { #expect(try c.readLine() != nil) }
    }

    @Test func requestDeadlineAnswersClusterTimeout() throws {
        let h = try ServerHarness(requestTimeout: 0.3)
        let start = Date()
        let r = try h.call(#"{"jsonrpc":"2.0","id":1,"method":"sleep","params":{"ms":2000}}"#)
        #expect(Date().timeIntervalSince(start) < 1.5)
        #expect(r["error"]?["data"]?["type"] == "ClusterTimeout")
        #expect(r["error"]?["data"]?["errno_name"] == "ETIMEDOUT")
        // The C library's number, not a literal.
        #expect(r["error"]?["data"]?["errno"] == .int(ETIMEDOUT))
    }

    @Test func idleConnectionsAreClosed() throws {
        var limits = ServerLimits()
        limits.idleTimeout = 0.3
        let h = try ServerHarness(limits: limits)
        let c = try h.client()
        _ = try c.request(#"{"jsonrpc":"2.0","id":1,"method":"echo"}"#)
        #expect(try c.readLine() == nil, "closed after being idle")
    }

    @Test func refusedPeerGetsOneErrorLine() throws {
        // Admit nobody: not even root, by using a group and uid the test process does not have.
        let h = try ServerHarness { config in
            config.socketGroup = 65534
            config.socketMode = 0o666
        }
        // Run the client as nobody:nogroup, who is neither root nor in an allowed group.
        let script = """
            import socket
            s = socket.socket(socket.AF_UNIX)
            s.connect("\(h.socketPath)")
            s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"echo"}\\n')
            print(s.makefile().read())
            """
        let r = try runProcess("/usr/bin/setpriv", ["--reuid=65533", "--regid=65533", "--clear-groups", "/usr/bin/python3", "-c", script])
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 1, "stdout: \(r.stdout) stderr: \(r.stderr)")
        let reply = try JSONValue.parse(String(lines.first ?? ""))
        #expect(reply["error"]?["code"] == .int(RPCErrorCode.accessDenied.rawValue))
        // The socket's group is admitted.
        /// The one reply line a peer printed; on failure, what it printed and why.
        func replyLine(_ r: ProcessResult) -> JSONValue? {
            let v = try? JSONValue.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            if v == nil { Issue.record("no reply line; stdout: \(r.stdout) stderr: \(r.stderr)") }
            return v
        }
        let admitted = try runProcess(
            "/usr/bin/setpriv",
            [
                "--reuid=65533", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c",
                script.replacingOccurrences(of: "read()", with: "readline()"),
            ])
        #expect(replyLine(admitted)?["result"] == [:])
        // So is a peer that has it only as a supplementary group.
        let member = try runProcess(
            "/usr/bin/setpriv",
            [
                "--reuid=65533", "--regid=65533", "--groups=65534", "/usr/bin/python3", "-c",
                script.replacingOccurrences(of: "read()", with: "readline()"),
            ])
        #expect(replyLine(member)?["result"] == [:])
    }

    @Test func socketFileIsGroupReadableOnly() throws {
        let h = try ServerHarness()
        let attrs = try FileManager.default.attributesOfItem(atPath: h.socketPath)
        #expect((attrs[.posixPermissions] as? Int) == 0o660)
    }

    @Test func shutdownAnswersEverythingAlreadyReceived() throws {
        let h = try ServerHarness()
        let c = try h.client()
        // Ten requests; the server is shut down while most are unread or running.
        var text = ""
        for i in 0..<10 { text += #"{"jsonrpc":"2.0","id":\#(i),"method":"sleep","params":{"ms":200,"key":"k"}}"# + "\n" }
        try c.send(text)
        usleep(50_000)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            h.server.shutdown()
            done.signal()
        }
        var ids: Set<Int64> = []
        while let line = try c.readLine() { ids.insert(try JSONValue.parse(line)["id"]?.int64Value ?? -1) }
        #expect(ids == Set(0..<10))
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(!FileManager.default.fileExists(atPath: h.socketPath))
        #expect(throws: (any Error).self) { try LineClient(path: h.socketPath) }
    }

    /// Peers that connected before the shutdown but were not accepted yet
    /// (still in the listen backlog) are served too, not reset.
    @Test func shutdownServesPeersStillInTheBacklog() throws {
        let h = try ServerHarness()
        var clients: [LineClient] = []
        for i in 0..<40 {
            let c = try h.client()
            try c.send(#"{"jsonrpc":"2.0","id":\#(i),"method":"echo","params":{"n":\#(i)}}"# + "\n")
            clients.append(c)
        }
        // At once: some of these connections are still waiting to be accepted.
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            h.server.shutdown()
            done.signal()
        }
        for (i, c) in clients.enumerated() {
            let line = try c.readLine()
            #expect(line.map { try? JSONValue.parse($0)["id"] } == .some(.int(Int64(i))), "client \(i): \(line ?? "nil")")
        }
        #expect(done.wait(timeout: .now() + 10) == .success)
    }

    /// While a loop busy-polls one peer's socket, its other peers are still
    /// served (also lines split across writes), and the polled peer's
    /// departure is noticed and its connection closed.
    @Test func busyPollingOnePeerStillServesTheOthers() throws {
        var limits = ServerLimits()
        limits.busyPollMicroseconds = 10_000
        let h = try ServerHarness(limits: limits)
        let quick = #"{"jsonrpc":"2.0","id":0,"method":"quick"}"#
        // Used by one thread at a time: the loop below, then this one.
        nonisolated(unsafe) let spinner = try h.client()
        #expect(try JSONValue.parse(spinner.request(quick))["result"] == "quick")
        let stop = Atomic<Bool>(false)
        let spun = Atomic<Int>(0)
        let spinnerDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            while !stop.load(ordering: .relaxed), (try? spinner.request(quick)) != nil {
                spun.add(1, ordering: .relaxed)
            }
            spinnerDone.signal()
        }
        let started = Date() + 10
        while spun.load(ordering: .relaxed) < 10, Date() < started { usleep(1_000) }
        try #require(spun.load(ordering: .relaxed) >= 10, "the spinning peer got no replies")
        // More peers than loops: some share the spinner's loop.
        let others = try (0..<8).map { _ in try h.client() }
        for (i, c) in others.enumerated() {
            let line = Array(#"{"jsonrpc":"2.0","id":\#(i),"method":"echo","params":{"n":\#(i)}}"#.utf8) + [0x0A]
            try c.send(Array(line[..<20]))
            usleep(2_000)
            try c.send(Array(line[20...]))
            let text = try #require(try c.readLine())
            let reply = try JSONValue.parse(text)
            #expect(reply["result"]?["n"] == .int(Int64(i)), "peer \(i)")
            #expect(try JSONValue.parse(c.request(quick))["result"] == "quick")
        }
        stop.store(true, ordering: .relaxed)
        #expect(spinnerDone.wait(timeout: .now() + 10) == .success)
        // Leave right after a reply, while the loop polls this socket.
        #expect(try JSONValue.parse(spinner.request(quick))["result"] == "quick")
        spinner.shutdownWrite()
        let deadline = Date() + 5
        while h.server.connectionCount > others.count, Date() < deadline { usleep(5_000) }
        #expect(h.server.connectionCount == others.count)
        #expect(try spinner.readLine() == nil)
    }
}
