import Foundation
import JSONValue
import POSIXSupport
import TestSupport
import Testing
import VolumeClient
import VolumeProtocol

@Suite("cephfs-volumed daemon", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct DaemonTests {
    /// The mons' addresses as the cluster reports them, for comparison.
    func expectedMonAddrs() throws -> [String] {
        let c = try TestCluster.connect()
        defer { c.shutdown() }
        let mons = try #require(try c.monJSON(["prefix": "mon dump"])?["mons"]?.arrayValue)
        return mons.compactMap { $0["addr"]?.stringValue?.components(separatedBy: "/").first }
    }

    @Test func answersPingAndMonAddrsOverItsSocket() throws {
        let daemon = try DaemonProcess()
        let client = try LineClient(path: daemon.socketPath)
        let pong = try JSONValue.parse(try client.request(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))
        #expect(pong == ["jsonrpc": "2.0", "id": 1, "result": "pong"])

        let reply = try JSONValue.parse(try client.request(#"{"jsonrpc":"2.0","id":"m","method":"get_mon_addrs"}"#))
        #expect(reply["id"] == "m")
        let result = try #require(reply["result"]?.arrayValue)
        let addrs = result.compactMap(\.stringValue)
        #expect(addrs == (try expectedMonAddrs()))
        #expect(addrs.allSatisfy { $0.hasPrefix("127.0.0.1:") && !$0.contains("/") })
        #expect(daemon.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath), "socket file is removed on exit")
    }

    @Test func swiftClientLibraryCalls() async throws {
        let daemon = try DaemonProcess()
        let client = VolumeClient(socketPath: daemon.socketPath, callTimeout: 30)
        #expect(try await client.ping() == "pong")
        #expect(try await client.getMonAddrs() == (try expectedMonAddrs()))
        do {
            _ = try await client.call("no_such_method")
            Issue.record("expected method not found")
        } catch let e as RPCError {
            #expect(e.code == .methodNotFound)
        }
    }

    @Test func rpcCLIRunsAsAProcess() throws {
        let daemon = try DaemonProcess()
        let cli = BuiltProducts.path("rpc-cli")
        let ping = try runProcess(cli, ["ping", "--socket", daemon.socketPath])
        #expect(ping.status == 0)
        #expect(ping.stdout == "pong\n")
        // Global options before the subcommand, as issue 2 specified.
        let first = try runProcess(cli, ["--socket", daemon.socketPath, "ping"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout == "pong\n")
        let json = try runProcess(cli, ["--socket", daemon.socketPath, "--json", "call", "ping", "{}"])
        #expect(json.stdout == "\"pong\"\n", "\(json.stderr)")

        let mons = try runProcess(cli, ["call", "--socket", daemon.socketPath, "get_mon_addrs"])
        #expect(mons.status == 0, "\(mons.stderr)")
        let parsed = try JSONValue.parse(mons.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(parsed.arrayValue?.compactMap(\.stringValue) == (try expectedMonAddrs()))

        let withParams = try runProcess(cli, ["call", "--socket", daemon.socketPath, "ping", "{}"])
        #expect(withParams.stdout == "\"pong\"\n")

        let unknown = try runProcess(cli, ["call", "--socket", daemon.socketPath, "nope"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("method not found"))

        let badJSON = try runProcess(cli, ["call", "--socket", daemon.socketPath, "ping", "{oops"])
        #expect(badJSON.status != 0)

        let noDaemon = try runProcess(cli, ["ping", "--socket", daemon.socketPath + ".absent"])
        #expect(noDaemon.status != 0)
        #expect(noDaemon.stderr.contains("cannot connect"))
    }

    @Test func refusesASocketHeldByALiveServer() throws {
        let daemon = try DaemonProcess()
        let second = try runProcess(
            BuiltProducts.path("cephfs-volumed"), DaemonProcess.standardArguments(socket: daemon.socketPath), timeout: 60)
        #expect(second.status != 0)
        #expect(second.stderr.contains("already listens"), "\(second.stderr)")
        // The first daemon is unharmed.
        let client = try LineClient(path: daemon.socketPath)
        #expect(try client.request(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).contains("pong"))
    }

    @Test func removesAStaleSocketFile() throws {
        let dir = NSTemporaryDirectory() + "volumed-stale-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/s.sock"
        // Leave a socket file behind that nobody listens on, as a crashed daemon does.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        _ = UnixSocketAddress(path: path)!.withSockaddr { bind(fd, $0, $1) }
        close(fd)
        #expect(FileManager.default.fileExists(atPath: path))

        let p = Process()
        p.executableURL = URL(fileURLWithPath: BuiltProducts.path("cephfs-volumed"))
        p.arguments = DaemonProcess.standardArguments(socket: path)
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer {
            kill(p.processIdentifier, SIGTERM)
            p.waitUntilExit()
        }
        let deadline = Date().addingTimeInterval(60)
        var answered = false
        while Date() < deadline, !answered {
            answered = (try? LineClient(path: path).request(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))?.contains("pong") ?? false
            if !answered { usleep(50_000) }
        }
        #expect(answered)
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attrs[.posixPermissions] as? Int) == 0o660)
    }

    @Test func exitsWithOneClearLineWhenTheClusterIsUnreachable() throws {
        let dir = NSTemporaryDirectory() + "volumed-nocluster-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A conf pointing at a port where no mon listens.
        let conf = dir + "/ceph.conf"
        try "[global]\nmon host = 127.0.0.1:1\nauth client required = none\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let start = Date()
        let r = try runProcess(
            BuiltProducts.path("cephfs-volumed"),
            ["--socket", dir + "/s.sock", "--conf", conf, "--id", "volumed", "--instance", DaemonProcess.uniqueInstanceName()],
            timeout: 90)
        #expect(r.status != 0)
        let errorLines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        #expect(errorLines.count == 1, "\(r.stderr)")
        #expect(errorLines.first?.contains("cannot reach the cluster") == true)
        #expect(Date().timeIntervalSince(start) < 60)
        #expect(!FileManager.default.fileExists(atPath: dir + "/s.sock"))
    }

    @Test func unknownFlagsAreRefused() throws {
        let r = try runProcess(BuiltProducts.path("cephfs-volumed"), ["--socket", "/tmp/x", "--bogus"])
        #expect(r.status != 0)
        let help = try runProcess(BuiltProducts.path("cephfs-volumed"), ["--help"])
        for flag in ["--socket", "--conf", "--id", "--cluster", "--fs-name", "--volume-prefix", "--namespace-prefix"] {
            #expect(help.stdout.contains(flag), "help lists \(flag)")
        }
    }

    /// Every `[key]` the help names is one the config file reads and checks:
    /// a flag added without its config key (or the reverse) shows here.
    @Test func everyConfigKeyInTheHelpIsReadFromTheFile() throws {
        let exe = BuiltProducts.path("cephfs-volumed")
        let dump = try JSONValue.parse(try runProcess(exe, ["--experimental-dump-help"]).stdout)
        var keys: [String] = []
        for argument in dump["command"]?["arguments"]?.arrayValue ?? [] where argument["kind"] == "option" {
            let abstract = argument["abstract"]?.stringValue ?? ""
            guard let open = abstract.firstIndex(of: "["), let close = abstract[open...].firstIndex(of: "]") else { continue }
            keys.append(String(abstract[abstract.index(after: open)..<close]))
        }
        #expect(keys.count >= 20)
        let dir = NSTemporaryDirectory() + "volumed-keys-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for key in keys {
            // An object is no option's type: a known key is refused for its value.
            let path = dir + "/\(key).json"
            try #"{"\#(key)": {}}"#.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try runProcess(exe, ["--config", path])
            #expect(r.status != 0)
            #expect(r.stderr.contains("'\(key)' must be"), "\(key): \(r.stderr)")
        }
    }

    /// A busy-poll outside 0...10000 µs is refused with one clear line, before
    /// anything is touched.
    @Test(arguments: ["-5", "10001"])
    func outOfRangeBusyPollIsRefused(_ value: String) throws {
        let env = try #require(TestCluster.environment)
        let r = try runProcess(
            BuiltProducts.path("cephfs-volumed"),
            [
                "--socket", NSTemporaryDirectory() + "bp-\(value).sock", "--conf", env.confPath, "--id", env.serviceID,
                "--instance", DaemonProcess.uniqueInstanceName(), "--busy-poll-us=\(value)",
            ])
        #expect(r.status != 0)
        #expect(r.stderr.contains("busy_poll_us must be between 0 and 10000"), "\(r.stderr)")
    }

    // MARK: The instance lock

    /// Asks `socket` to create and remove a group: calls that need the
    /// daemon's CephFS session, which an eviction would have ended.
    func expectMountWorks(_ socket: String, _ label: String) throws {
        let scratch = Scratch()
        let g = TestCluster.uniqueName("lockg")
        scratch.group(g)
        let c = try LineClient(path: socket)
        for method in ["create_group", "destroy_group"] {
            let reply = try JSONValue.parse(try c.request(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":{"group_id":"\#(g)"}}"#))
            #expect(reply["error"] == nil, "\(label): \(method): \(reply)")
        }
    }

    /// A second daemon under the same instance name, cephx ID and cluster
    /// would evict the first one's sessions: it is refused with one line,
    /// and the first keeps its session.
    @Test func sameInstanceIDAndClusterIsRefused() throws {
        let instance = DaemonProcess.uniqueInstanceName()
        let first = try DaemonProcess(extraArguments: ["--instance", instance])
        let dir = NSTemporaryDirectory() + "volumed-lock-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let second = try runProcess(
            BuiltProducts.path("cephfs-volumed"),
            DaemonProcess.standardArguments(socket: dir + "/s.sock", instance: false) + ["--instance", instance], timeout: 90)
        #expect(second.status != 0)
        let errorLines = second.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        #expect(errorLines.count == 1, "\(second.stderr)")
        #expect(errorLines.first?.contains("instance '\(instance)' is already running") == true, "\(second.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/s.sock"))
        try expectMountWorks(first.socketPath, "the first daemon")
    }

    /// Eviction matches the cephx ID too: a daemon of another ID may share
    /// the instance name (the default one, the hostname, in practice).
    @Test func sameInstanceWithAnotherCephxIDRuns() throws {
        let env = try #require(TestCluster.environment)
        let admin = ClusterAdmin.shared
        let other = TestCluster.uniqueName("lockid")
        let scratch = Scratch()
        scratch.authID(other)
        try admin.authCreate(other, caps: try #require(try admin.authGet(env.serviceID)).caps)
        let key = try #require(try admin.authGet(other)).key
        let dir = NSTemporaryDirectory() + "volumed-lockid-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keyring = dir + "/keyring"
        try "[client.\(other)]\n\tkey = \(key)\n".write(toFile: keyring, atomically: true, encoding: .utf8)
        chmod(keyring, 0o600)
        let conf = dir + "/ceph.conf"
        try (try String(contentsOfFile: env.confPath, encoding: .utf8) + "\n[client.\(other)]\nkeyring = \(keyring)\n")
            .write(toFile: conf, atomically: true, encoding: .utf8)

        let instance = DaemonProcess.uniqueInstanceName()
        let first = try DaemonProcess(extraArguments: ["--instance", instance])
        let second = try DaemonProcess(extraArguments: ["--instance", instance, "--conf", conf, "--id", other])
        #expect(second.log().contains("as client.\(other), instance \(instance)"), "\(second.log())")
        try expectMountWorks(second.socketPath, "client.\(other)")
        try expectMountWorks(first.socketPath, "client.\(env.serviceID)")
        #expect(second.stop() == 0, "\(second.log())")
        #expect(first.stop() == 0, "\(first.log())")
    }

    /// Eviction matches one cluster: a daemon of another cluster may share
    /// the instance name and cephx ID (a share host serving two backends).
    @Test func sameInstanceAndIDOnAnotherClusterRuns() throws {
        let instance = DaemonProcess.uniqueInstanceName()
        let first = try DaemonProcess(extraArguments: ["--instance", instance])
        let cluster = try PrivateCluster()
        defer { cluster.down() }
        let second = try VolumedProcess(conf: cluster.confPath, instance: instance)
        #expect(second.isRunning, "\(second.logTail())")
        try expectMountWorks(first.socketPath, "the dev cluster's daemon")
        #expect(second.stop()?.status == 0, "\(second.logTail())")
        #expect(first.stop() == 0)
    }
}
