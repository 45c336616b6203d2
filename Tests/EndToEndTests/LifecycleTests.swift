import Foundation
import JSONValue
import TestSupport
import Testing

@Suite("Daemon lifecycle", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct LifecycleTests {
    @Test func worksUnderSystemdSocketActivation() throws {
        let env = try #require(TestCluster.environment)
        let dir = NSTemporaryDirectory() + "volumed-sa-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/activated.sock"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
        // No --socket: the daemon must use the socket systemd passes.
        p.arguments = [
            "-l", path, BuiltProducts.path("cephfs-volumed"),
            "--conf", env.confPath, "--id", env.serviceID, "--fs-name", env.fsName,
            "--instance", DaemonProcess.uniqueInstanceName(),
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer {
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
        var client: LineClient?
        for _ in 0..<100 where client == nil {
            client = try? LineClient(path: path)
            if client == nil { usleep(50_000) }
        }
        let c = try #require(client)
        let info = try JSONValue.parse(try c.request(#"{"jsonrpc":"2.0","id":1,"method":"server_info"}"#))
        #expect(info["result"]?["connections"] == 1)
        #expect(info["result"]?["fsid"]?.stringValue?.count == 36)
        #expect(try JSONValue.parse(try c.request(#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#))["result"] == "pong")
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(FileManager.default.fileExists(atPath: path), "the socket file belongs to systemd and stays")
    }

    @Test func sigtermAnswersReceivedRequestsThenExitsCleanly() throws {
        let daemon = try DaemonProcess()
        let c = try LineClient(path: daemon.socketPath)
        var text = ""
        for i in 0..<20 { text += #"{"jsonrpc":"2.0","id":\#(i),"method":"get_mon_addrs"}"# + "\n" }
        try c.send(text)
        kill(daemon.process.processIdentifier, SIGTERM)
        var ids: Set<Int64> = []
        while let line = try c.readLine() {
            let reply = try JSONValue.parse(line)
            #expect(reply["result"]?.arrayValue?.isEmpty == false)
            ids.insert(reply["id"]?.int64Value ?? -1)
        }
        #expect(ids == Set(0..<20))
        #expect(daemon.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))
        #expect(daemon.log().contains("stopped"))
    }

    @Test func configFileHoldsOptionsAndFlagsOverrideIt() throws {
        let env = try #require(TestCluster.environment)
        let dir = NSTemporaryDirectory() + "volumed-cfg-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = dir + "/volumed.json"
        let socket = dir + "/from-config.sock"
        try """
        {"socket": "\(socket)", "conf": "\(env.confPath)", "id": "\(env.serviceID)", "fs_name": "\(env.fsName)",
         "instance": "from-config", "max_line_length": 4096, "log_level": "debug"}
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: BuiltProducts.path("cephfs-volumed"))
        let flagInstance = TestCluster.uniqueName("from-flag")
        p.arguments = ["--config", config, "--instance", flagInstance]
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer {
            kill(p.processIdentifier, SIGTERM)
            p.waitUntilExit()
        }
        var client: LineClient?
        for _ in 0..<200 where client == nil {
            client = try? LineClient(path: socket)
            if client == nil { usleep(50_000) }
        }
        let c = try #require(client)
        let info = try JSONValue.parse(try c.request(#"{"jsonrpc":"2.0","id":1,"method":"server_info"}"#))
        #expect(info["result"]?["instance"] == .string(flagInstance))
        // max_line_length from the file applies.
        try c.send(String(repeating: " ", count: 5000) + "\n")
        #expect(try JSONValue.parse(try #require(try c.readLine()))["error"]?["code"] == -32002)

        let bad = dir + "/bad.json"
        try #"{"socket": "/x", "no_such_option": 1}"#.write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try runProcess(BuiltProducts.path("cephfs-volumed"), ["--config", bad])
        #expect(r.status != 0)
        #expect(r.stderr.contains("unknown option 'no_such_option'"))
    }
}
