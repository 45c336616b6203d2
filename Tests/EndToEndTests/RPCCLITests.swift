import Foundation
import JSONValue
import POSIXSupport
import TestSupport
import Testing
import VolumeClient
import VolumeProtocol

/// The built `rpc-cli` run as a process against a daemon.
@Suite("rpc-cli", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct RPCCLITests {
    /// The daemon the tests share (whatever SharedDaemon starts), kept alive for the run.
    static let daemon = Result { try SharedDaemon.start() }

    static let pool = "cephfs_data"
    var admin: ClusterAdmin { ClusterAdmin.shared }

    /// Runs blocking work (a child process, the daemon's start) on a thread of
    /// its own rather than on the cooperative pool, which other tests share.
    static func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            Thread { c.resume(with: Result { try body() }) }.start()
        }
    }

    static func socketPath() async throws -> String {
        try await offload { try daemon.get().socketPath }
    }

    /// What a run of rpc-cli gave.
    struct Output: Sendable {
        let status: Int32
        let stdout: String
        let stderr: String
        /// Standard output as bytes (it may be binary).
        let stdoutBytes: [UInt8]
    }

    /// Runs rpc-cli with `--socket` of the shared daemon (or `socket`) appended.
    func cli(_ arguments: String..., socket: String? = nil) async throws -> Output {
        try await run(arguments, socket: socket)
    }

    func run(_ arguments: [String], socket: String? = nil) async throws -> Output {
        let path: String
        if let socket { path = socket } else { path = try await Self.socketPath() }
        return try await Self.offload { try Self.spawn(BuiltProducts.path("rpc-cli"), arguments + ["--socket", path]) }
    }

    /// Runs rpc-cli exactly as given.
    func bare(_ arguments: String...) async throws -> Output {
        try await Self.offload { try Self.spawn(BuiltProducts.path("rpc-cli"), arguments) }
    }

    struct SpawnError: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs a program to completion with posix_spawn, its output going to
    /// temporary files. Not Foundation's `Process` with pipes: under
    /// concurrent launches it closes pipe descriptors twice
    /// (swiftlang/swift#57827), which in a shared test process makes other
    /// launches fail with EBADF or never see their child exit.
    static func spawn(_ path: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> Output {
        let base = NSTemporaryDirectory() + "rpc-cli-test-\(UUID().uuidString.prefix(8))"
        let outPath = base + ".out"
        let errPath = base + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        let r = try spawnProcess(
            [path] + arguments, environment: ProcessInfo.processInfo.environment, stdin: "/dev/null", stdout: outPath, stderr: errPath,
            timeout: timeout)
        if r.timedOut { throw SpawnError(description: "\(path) \(arguments) did not finish within \(timeout) s") }
        let exit = r.status
        let out = (try? Data(contentsOf: URL(fileURLWithPath: outPath))).map { [UInt8]($0) } ?? []
        let err = (try? Data(contentsOf: URL(fileURLWithPath: errPath))).map { [UInt8]($0) } ?? []
        return Output(
            status: exit, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self),
            stdoutBytes: out)
    }

    func name(_ prefix: String) -> String { TestCluster.uniqueName(prefix) }

    func expectSuccess(_ r: Output, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 0, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
    }

    func tempFile(_ prefix: String) -> String {
        NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString.prefix(8))"
    }

    static let subcommands = [
        "ping", "call", "server-info", "create-group", "destroy-group", "create-volume", "delete-volume", "purge-volume",
        "authorize", "deauthorize", "get-authorized-ids", "evict", "get-used-bytes", "set-max-bytes",
        "create-snapshot-volume", "destroy-snapshot-volume", "create-snapshot-group", "destroy-snapshot-group",
        "clone-volume-to-existing", "put-object", "get-object", "delete-object", "put-object-versioned",
        "get-object-and-version", "get-mon-addrs", "recover",
    ]

    // MARK: Help

    @Test func helpListsEverySubcommandAndTheDefaultSocket() async throws {
        let help = try await bare("--help")
        expectSuccess(help)
        let listed = Set(
            help.stdout.split(whereSeparator: \.isNewline).compactMap { line -> String? in
                // Subcommand lines are indented by two spaces.
                guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }
                return line.split(separator: " ").first.map(String.init)
            })
        for sub in Self.subcommands {
            #expect(listed.contains(sub), "rpc-cli --help does not list \(sub)")
        }
        #expect(help.stdout.contains("/run/cephfs-volumed/volumed.sock"))

        for sub in ["create-volume", "ping", "get-object"] {
            let h = try await bare(sub, "--help")
            expectSuccess(h)
            #expect(h.stdout.contains("--socket <path>"), "\(sub)")
            // Help text is wrapped: compare with runs of white space collapsed.
            let flat = h.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(flat.contains("(default: /run/cephfs-volumed/volumed.sock)"), "\(sub): \(h.stdout)")
            #expect(h.stdout.contains("--timeout <seconds>"), "\(sub)")
            #expect(h.stdout.contains("--json"), "\(sub)")
        }
        let create = try await bare("create-volume", "--help").stdout
        for flag in ["--group", "--volume", "--size", "--data-isolated", "--no-namespace-isolated", "--mode"] {
            #expect(create.contains(flag), "create-volume --help lacks \(flag)")
        }
        let clone = try await bare("clone-volume-to-existing", "--help").stdout
        for flag in ["--dest-group", "--dest-volume", "--src-group", "--src-volume", "--snapshot"] {
            #expect(clone.contains(flag), "clone-volume-to-existing --help lacks \(flag)")
        }
        #expect(try await bare("evict", "--help").stdout.contains("--timeout-seconds"))
    }

    // MARK: Service

    @Test func serviceCommands() async throws {
        let ping = try await cli("ping")
        expectSuccess(ping)
        #expect(ping.stdout == "pong\n")
        #expect(try await cli("call", "ping").stdout == "\"pong\"\n")

        let info = try await cli("server-info")
        expectSuccess(info)
        let lines = info.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("protocol_version: \(ProtocolVersion.current)"))
        #expect(lines.contains { $0.hasPrefix("fsid: ") && $0.count > 10 })
        for key in ["version", "instance", "uptime_seconds", "connections", "in_flight"] {
            #expect(lines.contains { $0.hasPrefix("\(key): ") }, "server-info lacks \(key)")
        }
        let infoJSON = try await cli("server-info", "--json")
        expectSuccess(infoJSON)
        let parsed = try JSONValue.parse(infoJSON.stdout.trimmingCharacters(in: .newlines))
        #expect(parsed["protocol_version"] == .string(ProtocolVersion.current))
        #expect(!infoJSON.stdout.dropLast().contains("\n"), "compact: one line")

        let mons = try await cli("get-mon-addrs")
        expectSuccess(mons)
        let raw = try await cli("call", "get_mon_addrs")
        let addrs = try JSONValue.parse(raw.stdout.trimmingCharacters(in: .newlines)).arrayValue?.compactMap(\.stringValue) ?? []
        #expect(!addrs.isEmpty)
        #expect(mons.stdout == addrs.map { $0 + "\n" }.joined())
        #expect(try await cli("get-mon-addrs", "--json").stdout == raw.stdout)

        let recover = try await cli("recover")
        expectSuccess(recover)
        #expect(recover.stdout.isEmpty, "a null result prints nothing")
        #expect(try await cli("recover", "--json").stdout == "null\n")
    }

    // MARK: Groups and volumes

    @Test func groupsVolumesAndQuotas() async throws {
        let scratch = Scratch()
        let g = name("clig")
        let v = name("cliv")
        scratch.group(g)
        scratch.volume(g, v)

        let group = try await cli("create-group", "--group", g, "--mode", "0750")
        expectSuccess(group)
        #expect(group.stdout.isEmpty)
        #expect(try admin.fs.stat(VolumeLayout.groupPath(g), followSymlinks: false).mode & 0o7777 == 0o750)

        let create = try await cli("create-volume", "--group", g, "--volume", v, "--size", "10MiB")
        expectSuccess(create)
        let path = create.stdout.trimmingCharacters(in: .newlines)
        #expect(path == VolumeLayout.volumePath(g, v))
        #expect(admin.xattr(path, "ceph.quota.max_bytes") == "10485760")
        #expect(admin.xattr(path, "ceph.dir.layout.pool_namespace") == "fsvolumens_\(v)")

        let used = try await cli("get-used-bytes", "--group", g, "--volume", v)
        expectSuccess(used)
        #expect(used.stdout == "0 (0 B)\n")
        #expect(try await cli("get-used-bytes", "--group", g, "--volume", v, "--json").stdout == "0\n")

        expectSuccess(try await cli("set-max-bytes", "--group", g, "--volume", v, "--max-bytes", "1.5GiB"))
        #expect(admin.settledXattr(path, "ceph.quota.max_bytes", expecting: "1610612736") == "1610612736")
        expectSuccess(try await cli("set-max-bytes", "--group", g, "--volume", v, "--max-bytes", "4096"))
        #expect(admin.settledXattr(path, "ceph.quota.max_bytes", expecting: "4096") == "4096")
        expectSuccess(try await cli("set-max-bytes", "--group", g, "--volume", v, "--max-bytes", "none"))
        let cleared = admin.settledXattr(path, "ceph.quota.max_bytes") { $0 == nil || $0 == "0" }
        #expect(cleared == nil || cleared == "0")

        // --json prints the raw result; no namespace isolation; a mode.
        let plain = name("cliplain")
        scratch.volume(nil, plain)
        let plainJSON = try await cli("create-volume", "--volume", plain, "--no-namespace-isolated", "--mode", "700", "--json")
        expectSuccess(plainJSON)
        #expect(
            try JSONValue.parse(plainJSON.stdout.trimmingCharacters(in: .newlines))
                == ["mount_path": .string(VolumeLayout.volumePath(nil, plain))])
        #expect(admin.xattr(VolumeLayout.volumePath(nil, plain), "ceph.dir.layout.pool_namespace") == nil)
        #expect(try admin.fs.stat(VolumeLayout.volumePath(nil, plain), followSymlinks: false).mode & 0o7777 == 0o700)

        // Snapshots and a clone.
        try admin.writeFile(path + "/f.txt", Array("snapshotted".utf8))
        expectSuccess(try await cli("create-snapshot-volume", "--group", g, "--volume", v, "--snapshot", "s1"))
        #expect(admin.exists(path + "/.snap/s1"))
        expectSuccess(
            try await cli(
                "clone-volume-to-existing", "--dest-volume", plain, "--src-group", g, "--src-volume", v, "--snapshot", "s1"))
        #expect(try admin.readFile(VolumeLayout.volumePath(nil, plain) + "/f.txt") == Array("snapshotted".utf8))
        expectSuccess(try await cli("destroy-snapshot-volume", "--group", g, "--volume", v, "--snapshot", "s1"))
        #expect(!admin.exists(path + "/.snap/s1"))
        expectSuccess(try await cli("create-snapshot-group", "--group", g, "--snapshot", "gs"))
        #expect(admin.exists(VolumeLayout.groupPath(g) + "/.snap/gs"))
        expectSuccess(try await cli("destroy-snapshot-group", "--group", g, "--snapshot", "gs"))
        #expect(!admin.exists(VolumeLayout.groupPath(g) + "/.snap/gs"))

        // A group with a volume in it cannot go.
        let busy = try await cli("destroy-group", "--group", g)
        #expect(busy.status != 0)
        #expect(busy.stderr.hasPrefix("VolumeClientError: "), "\(busy.stderr)")

        for args in [["--group", g, "--volume", v], ["--volume", plain]] {
            expectSuccess(try await run(["delete-volume"] + args))
            expectSuccess(try await run(["purge-volume"] + args))
        }
        #expect(!admin.exists(path))
        expectSuccess(try await cli("destroy-group", "--group", g))
        #expect(!admin.exists(VolumeLayout.groupPath(g)))
    }

    // MARK: Authorization

    @Test func authorizeAndListIDs() async throws {
        let scratch = Scratch()
        let v = name("cliauth")
        let alice = name("clialice")
        let bob = name("clibob")
        scratch.volume(nil, v)
        scratch.authID(alice)
        scratch.authID(bob)
        expectSuccess(try await cli("create-volume", "--volume", v))

        let none = try await cli("get-authorized-ids", "--volume", v)
        expectSuccess(none)
        #expect(none.stdout == "no authorized IDs\n")
        #expect(try await cli("get-authorized-ids", "--volume", v, "--json").stdout == "null\n")

        let withTenant = try await cli("authorize", "--volume", v, "--auth-id", alice, "--tenant-id", "tenant1")
        expectSuccess(withTenant)
        let key = withTenant.stdout.trimmingCharacters(in: .newlines)
        #expect(!key.isEmpty)
        #expect(try admin.authGet(alice)?.key == key)

        let noTenant = try await cli("authorize", "--volume", v, "--auth-id", bob, "--readonly")
        expectSuccess(noTenant)
        #expect(noTenant.stdout == "authorized (no key: no tenant given)\n")

        let human = try await cli("get-authorized-ids", "--volume", v)
        expectSuccess(human)
        let expectedLines = [(alice, "rw"), (bob, "r")].sorted { $0.0 < $1.0 }.map { "\($0.0) \($0.1)\n" }.joined()
        #expect(human.stdout == expectedLines)

        let json = try await cli("get-authorized-ids", "--volume", v, "--json")
        expectSuccess(json)
        #expect(!json.stdout.dropLast().contains("\n"))
        let pairs = try JSONValue.parse(json.stdout.trimmingCharacters(in: .newlines))
        #expect(Set(pairs.arrayValue ?? []) == [[.string(alice), "rw"], [.string(bob), "r"]])

        // Another tenant may not take alice's ID.
        let other = name("cliauth2")
        scratch.volume(nil, other)
        expectSuccess(try await cli("create-volume", "--volume", other))
        let clash = try await cli("authorize", "--volume", other, "--auth-id", alice, "--tenant-id", "tenant2")
        #expect(clash.status != 0)
        #expect(clash.stderr.hasPrefix("VolumeClientError: "), "\(clash.stderr)")
        #expect(clash.stderr.contains("already in use"))

        expectSuccess(try await cli("evict", "--auth-id", alice, "--volume", v, "--timeout-seconds", "10"))
        expectSuccess(try await cli("deauthorize", "--volume", v, "--auth-id", alice))
        expectSuccess(try await cli("deauthorize", "--volume", v, "--auth-id", bob))
        #expect(try await cli("get-authorized-ids", "--volume", v).stdout == "no authorized IDs\n")

        for vol in [v, other] {
            expectSuccess(try await cli("delete-volume", "--volume", vol))
            expectSuccess(try await cli("purge-volume", "--volume", vol))
        }
    }

    // MARK: Objects

    @Test func binaryObjectsRoundTripThroughFiles() async throws {
        let object = name("cliobj")
        let input = tempFile("cli-in")
        let output = tempFile("cli-out")
        defer {
            try? FileManager.default.removeItem(atPath: input)
            try? FileManager.default.removeItem(atPath: output)
            _ = try? admin.cluster.ioContext(pool: Self.pool).remove(object)
        }
        let data: [UInt8] = [0, 0xFF, 0x0A, 0x0D, 0, 0x80] + randomBytes(100_000) + [0]
        try Data(data).write(to: URL(fileURLWithPath: input))

        let put = try await cli("put-object", "--pool", Self.pool, "--object", object, "--data-file", input)
        expectSuccess(put)
        #expect(put.stdout.isEmpty)

        let get = try await cli("get-object", "--pool", Self.pool, "--object", object, "--output", output)
        expectSuccess(get)
        #expect(get.stdout.isEmpty)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: output))) == data)

        // Raw bytes on standard output.
        let raw = try await cli("get-object", "--pool", Self.pool, "--object", object)
        expectSuccess(raw)
        #expect(raw.stdoutBytes == data)

        let asJSON = try await cli("get-object", "--pool", Self.pool, "--object", object, "--json")
        expectSuccess(asJSON)
        #expect(asJSON.stdout == "\"\(Base64.encode(data))\"\n")

        // Text to standard output, raw.
        expectSuccess(try await cli("put-object", "--pool", Self.pool, "--object", object, "--data", "hello, world"))
        #expect(try await cli("get-object", "--pool", Self.pool, "--object", object).stdout == "hello, world")

        // Versions.
        let withVersion = try await cli("get-object-and-version", "--pool", Self.pool, "--object", object)
        expectSuccess(withVersion)
        let lines = withVersion.stdout.split(separator: "\n").map(String.init)
        let version = try #require(lines.first.flatMap { $0.hasPrefix("version: ") ? UInt64($0.dropFirst(9)) : nil })
        #expect(lines.dropFirst().first == "data: \(Base64.encode(Array("hello, world".utf8)))")
        expectSuccess(
            try await cli(
                "put-object-versioned", "--pool", Self.pool, "--object", object, "--data", "v2", "--version", String(version)))
        let stale = try await cli(
            "put-object-versioned", "--pool", Self.pool, "--object", object, "--data", "v3", "--version", String(version))
        #expect(stale.status != 0)
        #expect(stale.stderr.hasPrefix("ClusterError: "), "\(stale.stderr)")
        let v2 = try await cli("get-object-and-version", "--pool", Self.pool, "--object", object, "--output", output)
        expectSuccess(v2)
        #expect(v2.stdout.hasPrefix("version: "))
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: output))) == Array("v2".utf8))
        let v2JSON = try JSONValue.parse(
            try await cli("get-object-and-version", "--pool", Self.pool, "--object", object, "--json").stdout.trimmingCharacters(
                in: .newlines))
        #expect(v2JSON["data"] == .string(Base64.encode(Array("v2".utf8))))

        expectSuccess(try await cli("delete-object", "--pool", Self.pool, "--object", object))
        let missing = try await cli("get-object", "--pool", Self.pool, "--object", object)
        #expect(missing.status != 0)
        #expect(missing.stderr.hasPrefix("ObjectNotFound: "), "\(missing.stderr)")
        #expect(missing.stdout.isEmpty)
    }

    // MARK: Errors

    @Test func errorsExitNonZeroWithTheirType() async throws {
        let bad = try await cli("create-volume", "--group", "_bad", "--volume", "v")
        #expect(bad.status != 0)
        #expect(bad.stderr.hasPrefix("RPCError -32602: "), "\(bad.stderr)")

        let unknown = try await cli("call", "no_such_method")
        #expect(unknown.status != 0)
        #expect(unknown.stderr.hasPrefix("RPCError -32601: "), "\(unknown.stderr)")

        let down = try await cli("server-info", socket: try await Self.socketPath() + ".absent")
        #expect(down.status != 0)
        #expect(down.stderr.hasPrefix("error: cannot connect"), "\(down.stderr)")

        // Invalid flag values are usage errors, before anything is sent.
        for args in [
            ["create-volume", "--volume", "v", "--size", "10XB"],
            ["create-volume", "--volume", "v", "--size", "-1"],
            ["create-volume", "--volume", "v", "--size", "99999999P"],
            ["set-max-bytes", "--volume", "v", "--max-bytes", "lots"],
            ["create-group", "--group", "g", "--mode", "0999"],
            ["put-object", "--pool", "p", "--object", "o"],
            ["put-object", "--pool", "p", "--object", "o", "--data", "x", "--data-file", "/dev/null"],
            ["evict", "--auth-id", "a", "--group", "g"],
            ["create-volume", "--group", "g"],
        ] {
            let r = try await run(args)
            #expect(r.status == 64, "\(args): exit \(r.status), \(r.stderr)")
            #expect(!r.stderr.isEmpty, "\(args)")
        }
        let size = try await bare("create-volume", "--volume", "v", "--size", "10XB")
        #expect(size.stderr.contains("invalid size '10XB'"), "\(size.stderr)")
    }
}

/// `--socket`, `--timeout` and `--json` before the subcommand (as `ceph`,
/// `git` and `kubectl` take them) and after it, against a server that
/// echoes each request, so no cluster is needed.
@Suite("rpc-cli global options in both positions")
struct RPCCLIGlobalOptionTests {
    /// Every subcommand with the arguments it needs, and the method it sends.
    static let table: [(sub: String, args: [String], method: String)] = [
        ("ping", [], "ping"),
        ("call", ["get_mon_addrs", "{}"], "get_mon_addrs"),
        ("server-info", [], "server_info"),
        ("get-mon-addrs", [], "get_mon_addrs"),
        ("recover", [], "recover"),
        ("create-group", ["--group", "g"], "create_group"),
        ("destroy-group", ["--group", "g"], "destroy_group"),
        ("create-volume", ["--group", "g", "--volume", "v", "--size", "1GiB"], "create_volume"),
        ("delete-volume", ["--volume", "v"], "delete_volume"),
        ("purge-volume", ["--volume", "v"], "purge_volume"),
        ("get-used-bytes", ["--volume", "v"], "get_used_bytes"),
        ("set-max-bytes", ["--volume", "v", "--max-bytes", "none"], "set_max_bytes"),
        ("authorize", ["--volume", "v", "--auth-id", "a", "--tenant-id", "t"], "authorize"),
        ("deauthorize", ["--volume", "v", "--auth-id", "a"], "deauthorize"),
        ("get-authorized-ids", ["--volume", "v"], "get_authorized_ids"),
        ("evict", ["--auth-id", "a", "--volume", "v"], "evict"),
        ("create-snapshot-volume", ["--volume", "v", "--snapshot", "s"], "create_snapshot_volume"),
        ("destroy-snapshot-volume", ["--volume", "v", "--snapshot", "s"], "destroy_snapshot_volume"),
        ("create-snapshot-group", ["--group", "g", "--snapshot", "s"], "create_snapshot_group"),
        ("destroy-snapshot-group", ["--group", "g", "--snapshot", "s"], "destroy_snapshot_group"),
        ("clone-volume-to-existing", ["--dest-volume", "d", "--src-volume", "v", "--snapshot", "s"], "clone_volume_to_existing"),
        ("put-object", ["--pool", "p", "--object", "o", "--data", "x"], "put_object"),
        ("put-object-versioned", ["--pool", "p", "--object", "o", "--data", "x", "--version", "3"], "put_object_versioned"),
        ("get-object", ["--pool", "p", "--object", "o"], "get_object"),
        ("get-object-and-version", ["--pool", "p", "--object", "o"], "get_object_and_version"),
        ("delete-object", ["--pool", "p", "--object", "o"], "delete_object"),
    ]

    func cli(_ arguments: [String], timeout: TimeInterval = 60) async throws -> RPCCLITests.Output {
        try await RPCCLITests.offload { try RPCCLITests.spawn(BuiltProducts.path("rpc-cli"), arguments, timeout: timeout) }
    }

    @Test func theTableCoversEverySubcommand() {
        #expect(Set(Self.table.map(\.sub)) == Set(RPCCLITests.subcommands))
    }

    /// The same request reaches the server, and `--json` prints it, whether
    /// the global options come before the subcommand, after it, or as
    /// `--name=value` before it.
    @Test(arguments: table.map(\.sub))
    func globalOptionsWorkBeforeAndAfterTheSubcommand(_ sub: String) async throws {
        let row = try #require(Self.table.first { $0.sub == sub })
        let server = try EchoServer()
        defer { server.stop() }
        let forms: [(String, [String])] = [
            ("after", [sub] + row.args + ["--socket", server.path, "--timeout", "30", "--json"]),
            ("before", ["--socket", server.path, "--timeout", "30", "--json", sub] + row.args),
            ("before, --name=value", ["--json", "--socket=\(server.path)", "--timeout=30", sub] + row.args),
            ("split", ["--json", sub] + row.args + ["--socket", server.path]),
        ]
        var outputs: [String] = []
        for (label, argv) in forms {
            let r = try await cli(argv)
            #expect(r.status == 0, "\(label): rpc-cli \(argv.joined(separator: " ")): exit \(r.status): \(r.stderr)")
            let echoed = try? JSONValue.parse(r.stdout.trimmingCharacters(in: .newlines))
            #expect(echoed?["method"] == .string(row.method), "\(label): \(r.stdout)")
            outputs.append(r.stdout)
        }
        #expect(Set(outputs).count == 1, "the same request in every position: \(outputs)")
        #expect(server.requests == forms.count)
    }

    /// `--timeout` before the subcommand is the one applied.
    @Test(arguments: ["before", "after"])
    func timeoutAppliesInEitherPosition(_ position: String) async throws {
        let server = try EchoServer()
        defer { server.stop() }
        let globals = ["--socket", server.path, "--timeout", "1"]
        let call = ["call", EchoServer.silentMethod]
        let r = try await cli(position == "before" ? globals + call : call + globals, timeout: 100)
        #expect(r.status != 0)
        #expect(r.stderr.contains("no reply within the call timeout"), "\(r.stderr)")
    }

    @Test func helpAndUnknownOptionsStayClear() async throws {
        let help = try await cli(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("SUBCOMMANDS"), "\(help.stdout)")
        let subHelp = try await cli(["--socket", "/x", "ping", "--help"])
        #expect(subHelp.status == 0, "\(subHelp.stderr)")
        #expect(subHelp.stdout.contains("--socket <path>"))

        for argv in [["--bogus", "ping"], ["ping", "--bogus"], ["--socket", "/x", "--bogus", "ping"]] {
            let r = try await cli(argv)
            #expect(r.status == 64, "\(argv): exit \(r.status)")
            #expect(r.stderr.contains("Unknown option '--bogus'"), "\(argv): \(r.stderr)")
        }
        // Global options with no subcommand after them.
        for argv in [["--socket", "/x"], ["--socket"], ["--json"]] {
            let r = try await cli(argv)
            #expect(r.status == 64, "\(argv): exit \(r.status): \(r.stderr)")
            #expect(r.stderr.hasPrefix("Error: "), "\(argv): \(r.stderr)")
        }
        let unknownSub = try await cli(["--socket", "/x", "nope"])
        #expect(unknownSub.status == 64)
        #expect(unknownSub.stderr.contains("nope"), "\(unknownSub.stderr)")
    }
}

/// A line-delimited JSON-RPC server on a Unix socket that answers each
/// request with `{"method": ..., "params": ...}` of that request, and never
/// answers `silentMethod`.
final class EchoServer: @unchecked Sendable {
    static let silentMethod = "never_answered"
    let path: String
    private let dir: String
    private let fd: Int32
    private let lock = NSLock()
    private var count = 0
    private var open: [Int32] = []

    var requests: Int { lock.withLock { count } }

    init() throws {
        dir = NSTemporaryDirectory() + "echo-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        path = dir + "/s.sock"
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let r = UnixSocketAddress(path: path)!.withSockaddr { bind(fd, $0, $1) }
        guard r == 0, listen(fd, 16) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        Thread { [self] in acceptLoop() }.start()
    }

    private func acceptLoop() {
        while true {
            let c = retryingOnInterrupt { accept(fd, nil, nil) }
            if c < 0 {
                close(fd)  // here, not in stop(): the number must not be reused while accept may still run
                return
            }
            lock.withLock { open.append(c) }
            Thread { [self] in serve(c) }.start()
        }
    }

    private func serve(_ c: Int32) {
        defer {
            lock.withLock {
                open.removeAll { $0 == c }
                close(c)
            }
        }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(c, &chunk, chunk.count)
            if n <= 0 { return }
            buffer += chunk[0..<n]
            while let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                guard let request = try? JSONValue.parse(line) else { continue }
                lock.withLock { count += 1 }
                if request["method"] == .string(Self.silentMethod) { continue }
                let result: JSONValue = ["method": request["method"] ?? .null, "params": request["params"] ?? .null]
                let reply: JSONValue = ["jsonrpc": "2.0", "id": request["id"] ?? .null, "result": result]
                let out = Array((reply.description + "\n").utf8)
                _ = out.withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
            }
        }
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        lock.withLock {
            for c in open { shutdown(c, Int32(SHUT_RDWR)) }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}
