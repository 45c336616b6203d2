import Foundation
import JSONValue
import TestSupport
import Testing
import VolumeClient
import VolumeService

/// The Debian package: built once per test run with packaging/build-deb (a
/// release build in its own scratch directory, .build/deb, which later runs
/// reuse), then unpacked with `dpkg -x` into a scratch root whose binaries
/// the tests run. Only the last two tests need the dev cluster.
@Suite("Debian package", .serialized)
struct PackagingTests {
    // MARK: contents and control data

    @Test func containsTheExpectedFiles() throws {
        let pkg = try DebianPackage.get()
        let listing = try command("dpkg-deb", ["-c", pkg.deb])
        #expect(listing.status == 0, "\(listing.stderr)")
        // "drwxr-xr-x root/root 0 2026-11-26 01:00 ./usr/sbin/cephfs-volumed": the path is the 6th field.
        let entries = listing.stdout.split(separator: "\n").map { line -> (mode: String, path: String) in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return (String(fields[0]), String(fields[5].dropFirst()))
        }
        let files = Dictionary(entries.map { ($0.path, $0.mode) }, uniquingKeysWith: { a, _ in a })
        let expected: [String: String] = [
            "/usr/sbin/cephfs-volumed": "-rwxr-xr-x",
            "/usr/bin/rpc-cli": "-rwxr-xr-x",
            "/lib/systemd/system/cephfs-volumed.service": "-rw-r--r--",
            "/lib/systemd/system/cephfs-volumed.socket": "-rw-r--r--",
            "/usr/lib/sysusers.d/cephfs-volumed.conf": "-rw-r--r--",
            "/etc/cephfs-volumed/volumed.json": "-rw-r--r--",
            "/usr/share/man/man8/cephfs-volumed.8.gz": "-rw-r--r--",
            "/usr/share/man/man1/rpc-cli.1.gz": "-rw-r--r--",
            "/usr/share/doc/cephfs-volumed/copyright": "-rw-r--r--",
            "/usr/share/doc/cephfs-volumed/changelog.Debian.gz": "-rw-r--r--",
            "/usr/share/doc/cephfs-volumed/README.Debian": "-rw-r--r--",
            "/usr/share/doc/cephfs-volumed/OPERATIONS.md": "-rw-r--r--",
            "/usr/share/lintian/overrides/cephfs-volumed": "-rw-r--r--",
        ]
        for (path, mode) in expected {
            #expect(files[path] == mode, "\(path): \(files[path] ?? "missing")")
        }
        #expect(listing.stdout.contains(" root/root "))
        #expect(!listing.stdout.contains("libswift"), "the Swift runtime is linked statically, not shipped")
        let conffiles = try String(contentsOfFile: pkg.control + "/conffiles", encoding: .utf8)
        #expect(conffiles == "/etc/cephfs-volumed/volumed.json\n")
        for script in ["postinst", "prerm", "postrm"] {
            #expect(FileManager.default.isExecutableFile(atPath: pkg.control + "/" + script), "\(script)")
            let syntax = try command("sh", ["-n", pkg.control + "/" + script])
            #expect(syntax.status == 0, "\(script): \(syntax.stderr)")
        }
    }

    @Test func controlDeclaresVersionAndDependencies() throws {
        let pkg = try DebianPackage.get()
        let info = try command("dpkg-deb", ["-f", pkg.deb, "Package", "Version", "Architecture", "Depends"])
        #expect(info.status == 0, "\(info.stderr)")
        var fields: [String: String] = [:]
        for line in info.stdout.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        #expect(fields["Package"] == "cephfs-volumed")
        #expect(fields["Version"]?.hasPrefix(VolumedVersion.string + "-") == true, "\(fields["Version"] ?? "")")
        let arch = try command("dpkg", ["--print-architecture"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(fields["Architecture"] == arch)
        #expect(pkg.deb.hasSuffix("/cephfs-volumed_\(fields["Version"] ?? "")_\(arch).deb"))
        let depends = (fields["Depends"] ?? "").split(separator: ",").map {
            String($0.trimmingCharacters(in: .whitespaces).prefix { $0 != " " })
        }
        for lib in ["librados2", "libcephfs2", "libc6", "libstdc++6"] {
            #expect(depends.contains(lib), "Depends: \(fields["Depends"] ?? "")")
        }
        #expect(depends.contains("systemd"), "systemd-sysusers runs in postinst")
    }

    @Test func binariesRunWithoutTheSwiftToolchain() throws {
        let pkg = try DebianPackage.get()
        let daemon = pkg.root + "/usr/sbin/cephfs-volumed"
        let cli = pkg.root + "/usr/bin/rpc-cli"
        for exe in [daemon, cli] {
            let ldd = try command("ldd", [exe])
            #expect(ldd.status == 0)
            #expect(
                !ldd.stdout.contains("libswift") && !ldd.stdout.contains("/opt/swift") && !ldd.stdout.contains("not found"),
                "\(ldd.stdout)")
            let file = try command("readelf", ["-dW", exe])
            #expect(!file.stdout.contains("RUNPATH") && !file.stdout.contains("RPATH"), "\(file.stdout)")
        }
        // A clean environment: no LD_LIBRARY_PATH, nothing from the toolchain on PATH.
        let version = try clean(daemon, ["--version"])
        #expect(version.status == 0, "\(version.stderr)")
        #expect(version.stdout == VolumedVersion.string + "\n")
        let help = try clean(daemon, ["--help"])
        #expect(help.status == 0, "\(help.stderr)")
        #expect(help.stdout.contains("USAGE: cephfs-volumed"))
        let cliHelp = try clean(cli, ["--help"])
        #expect(cliHelp.status == 0, "\(cliHelp.stderr)")
        #expect(cliHelp.stdout.contains("USAGE: rpc-cli"))
        let pingHelp = try clean(cli, ["ping", "--help"])
        #expect(pingHelp.stdout.contains(VolumeClient.defaultSocketPath), "the socket unit's path is rpc-cli's default")
    }

    // MARK: configuration and documentation

    @Test func defaultConfigHoldsEveryOptionWithItsDefault() throws {
        let pkg = try DebianPackage.get()
        let text = try String(contentsOfFile: pkg.root + "/etc/cephfs-volumed/volumed.json", encoding: .utf8)
        let config = try #require(try JSONValue.parse(text).objectValue)
        let options = try daemonOptions(pkg)
        let documented = Set(options.compactMap(\.key))
        #expect(Set(config.keys) == documented, "keys of volumed.json vs. the [keys] in --help")
        for option in options {
            guard let key = option.key, let value = config[key] else { continue }
            switch key {
            case "socket": #expect(value.isNull, "systemd passes the socket")
            case "conf": #expect(value == "/etc/ceph/ceph.conf")
            case "id": #expect(value == "volumed")
            case "allow_uids", "allow_gids": #expect(value == [])
            default:
                let def = try #require(option.defaultText, "--\(option.name) documents no default")
                if def.hasPrefix("the ") {
                    #expect(value.isNull, "\(key): the default is computed (\(def))")
                } else if def == "16 MiB" {
                    #expect(value == .int(16 * 1024 * 1024), "\(key)")
                } else if let number = Double(def) {
                    guard case .number(let n) = value else {
                        Issue.record("\(key) is \(value), not a number")
                        continue
                    }
                    #expect(n.doubleValue == number, "\(key): \(n) vs. the documented \(def)")
                } else {
                    #expect(value == .string(def), "\(key)")
                }
            }
        }
    }

    @Test func manPagesDocumentEveryOptionAndSubcommand() throws {
        let pkg = try DebianPackage.get()
        let daemonPage = try gunzip(pkg.root + "/usr/share/man/man8/cephfs-volumed.8.gz")
        #expect(daemonPage.contains(".TH CEPHFS\\-VOLUMED 8"))
        #expect(daemonPage.contains("cephfs-volumed \(VolumedVersion.string)"))
        #expect(!daemonPage.contains("@VERSION@") && !daemonPage.contains("@DATE@"))
        let readme = try String(contentsOfFile: pkg.root + "/usr/share/doc/cephfs-volumed/README.Debian", encoding: .utf8)
        for option in try daemonOptions(pkg) {
            let flag = "\\-\\-" + option.name.replacingOccurrences(of: "-", with: "\\-")
            #expect(daemonPage.contains(flag), "cephfs-volumed.8 lacks --\(option.name)")
            if let key = option.key {
                #expect(daemonPage.contains("[\\fB\(key)\\fR"), "cephfs-volumed.8 lacks [\(key)]")
                #expect(readme.contains("  \(key) "), "README.Debian lacks \(key)")
            }
        }

        let cliPage = try gunzip(pkg.root + "/usr/share/man/man1/rpc-cli.1.gz")
        #expect(cliPage.contains(".Dt RPC-CLI 1"))
        let cli = try dumpHelp(pkg.root + "/usr/bin/rpc-cli")
        let subcommands = cli["command"]?["subcommands"]?.arrayValue ?? []
        #expect(subcommands.count >= 2)
        var optionsBySubcommand: [String: Set<String>] = [:]
        for sub in subcommands {
            let name = try #require(sub["commandName"]?.stringValue)
            #expect(cliPage.contains(".It Em \(name)\n"), "rpc-cli.1 lacks the subcommand \(name)")
            var names: Set<String> = []
            for argument in sub["arguments"]?.arrayValue ?? [] {
                for n in argument["names"]?.arrayValue ?? [] where n["kind"] == "long" {
                    names.insert(n["name"]?.stringValue ?? "")
                }
            }
            optionsBySubcommand[name] = names
        }
        // The hand-written examples appended to the generated page use real subcommands and options.
        var examples = 0
        for line in cliPage.split(separator: "\n") where line.hasPrefix("rpc-cli ") {
            let words = line.split(separator: " ").map(String.init)
            // Global options may come before the subcommand (`rpc-cli --socket P --json ping`).
            let globals: [String: Bool] = ["--socket": true, "--timeout": true, "--json": false]  // takes a value?
            var i = 1
            while i < words.count, let takesValue = globals[words[i]] { i += takesValue ? 2 : 1 }
            let sub = try #require(i < words.count ? words[i] : nil, "rpc-cli.1 example has no subcommand: \(line)")
            let known = try #require(optionsBySubcommand[sub], "rpc-cli.1 example uses an unknown subcommand: \(line)")
            for word in words where word.hasPrefix("--") {
                #expect(known.contains(String(word.dropFirst(2))), "rpc-cli.1 example: \(sub) has no \(word)")
            }
            examples += 1
        }
        #expect(examples >= 3)
    }

    @Test func manPagesRenderWithoutWarnings() throws {
        let pkg = try DebianPackage.get()
        for page in ["man8/cephfs-volumed.8.gz", "man1/rpc-cli.1.gz"] {
            // What lintian runs for its manpage-has-errors-from-man check.
            let r = try command(
                "man", ["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", pkg.root + "/usr/share/man/" + page],
                environment: ["MANROFFSEQ": "", "MANWIDTH": "80"])
            #expect(r.status == 0, "\(page): \(r.stderr)")
            #expect(r.stderr.isEmpty, "\(page): \(r.stderr)")
        }
    }

    // MARK: systemd, users, lintian

    /// `systemd-analyze verify` checks that ExecStart's binary exists on this
    /// host, and `--root=` (systemd 252) then looks for every unit, even
    /// sysinit.target, under the root. So verify copies of the shipped units
    /// whose ExecStart points into the scratch root, and let its man page
    /// check (Documentation=man:...) look in the package's man pages.
    @Test func systemdUnitsVerify() throws {
        let pkg = try DebianPackage.get()
        let units = pkg.work + "/verify-units"
        try? FileManager.default.removeItem(atPath: units)
        try FileManager.default.createDirectory(atPath: units, withIntermediateDirectories: true)
        let service = try String(contentsOfFile: pkg.root + "/lib/systemd/system/cephfs-volumed.service", encoding: .utf8)
        let socket = try String(contentsOfFile: pkg.root + "/lib/systemd/system/cephfs-volumed.socket", encoding: .utf8)

        let execStart = try #require(service.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        #expect(execStart == "ExecStart=/usr/sbin/cephfs-volumed --config /etc/cephfs-volumed/volumed.json")
        #expect(socket.contains("\nListenStream=\(VolumeClient.defaultSocketPath)\n"))
        for setting in [
            "SocketMode=0660", "SocketUser=cephfs-volumed", "SocketGroup=cephfs-volumed", "RemoveOnStop=yes", "WantedBy=sockets.target",
        ] {
            #expect(socket.contains("\n\(setting)\n"), "\(setting)")
        }
        for setting in [
            "Requires=cephfs-volumed.socket", "User=cephfs-volumed", "Group=cephfs-volumed", "NoNewPrivileges=yes",
            "ProtectSystem=strict", "MemoryDenyWriteExecute=yes", "CapabilityBoundingSet=",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "Restart=on-failure", "KillSignal=SIGTERM",
        ] {
            #expect(service.contains("\n\(setting)\n"), "\(setting)")
        }
        #expect(!service.split(separator: "\n").contains { $0.hasPrefix("RuntimeDirectory") }, "the socket unit owns /run/cephfs-volumed")

        try service.replacingOccurrences(of: "ExecStart=/usr/sbin/", with: "ExecStart=\(pkg.root)/usr/sbin/")
            .write(toFile: units + "/cephfs-volumed.service", atomically: true, encoding: .utf8)
        try socket.write(toFile: units + "/cephfs-volumed.socket", atomically: true, encoding: .utf8)
        let r = try command(
            "systemd-analyze", ["verify", units + "/cephfs-volumed.socket", units + "/cephfs-volumed.service"],
            environment: ["MANPATH": pkg.root + "/usr/share/man"])
        #expect(r.status == 0)
        // verify reports unknown keys and bad values as warnings and still exits 0.
        #expect((r.stdout + r.stderr).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(r.stdout)\(r.stderr)")
    }

    @Test func sysusersCreatesTheSystemUser() throws {
        let pkg = try DebianPackage.get()
        let root = pkg.work + "/sysusers-root"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        let r = try command("systemd-sysusers", ["--root=" + root, pkg.root + "/usr/lib/sysusers.d/cephfs-volumed.conf"])
        #expect(r.status == 0, "\(r.stderr)")
        let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
        let user = try #require(passwd.split(separator: "\n").first { $0.hasPrefix("cephfs-volumed:") }).split(
            separator: ":", omittingEmptySubsequences: false)
        #expect(user.count == 7)
        #expect(Int(user[2]).map { $0 > 0 && $0 < 1000 } == true, "a system uid")
        #expect(user[5] == "/nonexistent")
        #expect(user[6].hasSuffix("nologin"))
        let group = try String(contentsOfFile: root + "/etc/group", encoding: .utf8)
        #expect(group.contains("\ncephfs-volumed:x:\(user[3]):") || group.hasPrefix("cephfs-volumed:x:\(user[3]):"))
        let postinst = try String(contentsOfFile: pkg.control + "/postinst", encoding: .utf8)
        #expect(postinst.contains("systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} cephfs-volumed.conf"))
    }

    /// Installs, reinstalls (an upgrade), removes and purges the package in a
    /// private root: dpkg --force-script-chrootless runs the maintainer
    /// scripts here with DPKG_ROOT set, which systemd-sysusers and
    /// deb-systemd-helper honour, and the scripts leave the running systemd alone.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/deb-systemd-helper"), "needs init-system-helpers"))
    func maintainerScriptsInstallUpgradeRemovePurge() throws {
        let pkg = try DebianPackage.get()
        let root = pkg.work + "/dpkg-root"
        try? FileManager.default.removeItem(atPath: root)
        for dir in ["/var/lib/dpkg/updates", "/var/lib/dpkg/info", "/etc"] {
            try FileManager.default.createDirectory(atPath: root + dir, withIntermediateDirectories: true)
        }
        _ = FileManager.default.createFile(atPath: root + "/var/lib/dpkg/status", contents: Data())
        func dpkg(_ arguments: [String]) throws {
            let r = try command(
                "dpkg",
                [
                    "--root=" + root, "--instdir=" + root, "--admindir=" + root + "/var/lib/dpkg",
                    "--force-depends", "--force-script-chrootless", "--force-not-root",
                ] + arguments)
            #expect(r.status == 0, "dpkg \(arguments): \(r.stdout)\(r.stderr)")
        }
        func exists(_ path: String) -> Bool {
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: root + path, isDirectory: &isDir)
                || (try? FileManager.default.destinationOfSymbolicLink(atPath: root + path)) != nil
        }
        let enabled = [
            "/etc/systemd/system/sockets.target.wants/cephfs-volumed.socket",
            "/etc/systemd/system/multi-user.target.wants/cephfs-volumed.service",
        ]

        try dpkg(["-i", pkg.deb])
        let passwd = (try? String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)) ?? ""
        #expect(passwd.contains("cephfs-volumed:x:"), "postinst creates the user: \(passwd)")
        for link in enabled {
            #expect(exists(link), "postinst enables \(link)")
        }
        #expect(exists("/usr/sbin/cephfs-volumed") && exists("/etc/cephfs-volumed/volumed.json"))

        try dpkg(["-i", pkg.deb])
        #expect(enabled.allSatisfy(exists), "an upgrade keeps the units enabled")

        try dpkg(["-r", "cephfs-volumed"])
        #expect(!exists("/usr/sbin/cephfs-volumed"))
        #expect(exists("/etc/cephfs-volumed/volumed.json"), "remove keeps the conffile")
        #expect(
            (try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/etc/systemd/system/cephfs-volumed.service"))
                == "/dev/null",
            "remove masks the units, as dh_installsystemd does")

        try dpkg(["-P", "cephfs-volumed"])
        #expect(!exists("/etc/cephfs-volumed/volumed.json"))
        #expect(!exists("/etc/systemd/system/cephfs-volumed.service") && !enabled.contains(where: exists), "purge unmasks and disables")
        let after = (try? String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)) ?? ""
        #expect(after.contains("cephfs-volumed:x:"), "the system user stays")
    }

    @Test func lintianIsClean() throws {
        let pkg = try DebianPackage.get()
        // build-deb ran lintian already and failed on errors; here warnings count too.
        let r = try command("lintian", ["--fail-on", "error,warning", pkg.deb], timeout: 600)
        let tags = r.stdout.split(separator: "\n").filter { $0.hasPrefix("E:") || $0.hasPrefix("W:") }
        #expect(r.status == 0 && tags.isEmpty, "\(r.stdout)\(r.stderr)")
    }

    // MARK: the installed daemon against the dev cluster

    /// The scratch root's daemon with the shipped config, cluster flags on
    /// top, under the seccomp rules of the unit's MemoryDenyWriteExecute=,
    /// RestrictAddressFamilies= and NoNewPrivileges=: it connects, serves
    /// volume calls, and stops cleanly on SIGTERM.
    @Test(.enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
    func daemonAcceptsTheShippedConfigUnderTheUnitSandbox() throws {
        let pkg = try DebianPackage.get()
        let env = try #require(TestCluster.environment)
        let dir = pkg.work + "/run-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/volumed.sock"
        let instance = TestCluster.uniqueName("pkgtest")
        let sandbox = try DebianPackage.sandbox()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: sandbox)
        p.arguments =
            [pkg.root + "/usr/sbin/cephfs-volumed", "--config", pkg.root + "/etc/cephfs-volumed/volumed.json"]
            + clusterFlags(env, instance: instance) + ["--socket", socket]
        p.environment = ["PATH": "/usr/bin:/bin"]
        let log = dir + "/daemon.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: log)
        p.standardError = FileHandle(forWritingAtPath: log)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer {
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
        let c = try connect(socket, process: p, log: log)
        try exerciseVolumeCalls(c, instance: instance)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "\(text)")
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    /// The unit's own ExecStart (with the scratch root's paths and cluster
    /// flags on top, no --socket) under systemd-socket-activate and the
    /// sandbox: the daemon serves the passed socket and leaves its file.
    @Test(.enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
    func daemonWorksUnderSocketActivation() throws {
        let pkg = try DebianPackage.get()
        let env = try #require(TestCluster.environment)
        let dir = pkg.work + "/activate-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/volumed.sock"
        let instance = TestCluster.uniqueName("pkgtest")

        let service = try String(contentsOfFile: pkg.root + "/lib/systemd/system/cephfs-volumed.service", encoding: .utf8)
        let execStart = try #require(service.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        let argv = execStart.dropFirst("ExecStart=".count).split(separator: " ").map { word in
            word.hasPrefix("/") ? pkg.root + word : String(word)
        }
        #expect(!argv.contains("--socket"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
        // systemd-socket-activate execs the sandbox, which execs the daemon: one pid, as LISTEN_PID requires.
        p.arguments = ["-l", socket, try DebianPackage.sandbox()] + argv + clusterFlags(env, instance: instance)
        p.environment = ["PATH": "/usr/bin:/bin"]
        let log = dir + "/daemon.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: log)
        p.standardError = FileHandle(forWritingAtPath: log)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer {
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
        let c = try connect(socket, process: p, log: log)
        try exerciseVolumeCalls(c, instance: instance)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(p.terminationStatus == 0, "\(text)")
        #expect(text.contains("listening on a socket passed by systemd"), "\(text)")
        #expect(FileManager.default.fileExists(atPath: socket), "the socket file belongs to systemd")
    }

    // MARK: helpers

    private func clusterFlags(_ env: TestCluster.Environment, instance: String) -> [String] {
        // A unique instance: the default (the host name) would evict the sessions of other daemons on this host.
        ["--conf", env.confPath, "--id", env.serviceID, "--cluster", env.clusterName, "--fs-name", env.fsName, "--instance", instance]
    }

    private func connect(_ socket: String, process p: Process, log: String) throws -> LineClient {
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline {
            if !p.isRunning {
                throw DaemonError("daemon exited with \(p.terminationStatus): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            if let c = try? LineClient(path: socket), let reply = try? c.request(#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#),
                reply.contains("pong")
            {
                return c
            }
            usleep(100_000)
        }
        throw DaemonError("daemon not ready after 90 s: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    /// server_info, then a volume's life: create, quota, authorize, evict,
    /// deauthorize, delete, purge. These touch librados, libcephfs, the MDS
    /// and the mons, all under the sandbox.
    private func exerciseVolumeCalls(_ c: LineClient, instance: String) throws {
        var id = 0
        func call(_ method: String, _ params: String = "{}") throws -> JSONValue {
            id += 1
            let reply = try JSONValue.parse(try c.request(#"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#))
            #expect(reply["error"] == nil, "\(method): \(reply)")
            return reply["result"] ?? .null
        }
        let info = try call("server_info")
        #expect(info["version"] == .string(VolumedVersion.string))
        #expect(info["instance"] == .string(instance))
        let group = TestCluster.uniqueName("pkggroup")
        let auth = TestCluster.uniqueName("pkgguest")
        let volume = #"{"group_id":"\#(group)","volume_id":"v1"}"#
        _ = try call("create_group", #"{"group_id":"\#(group)"}"#)
        let created = try call("create_volume", #"{"volume_path":\#(volume),"size":1073741824}"#)
        #expect(created["mount_path"] == .string("/volumes/\(group)/v1"))
        let key = try call("authorize", #"{"volume_path":\#(volume),"auth_id":"\#(auth)","tenant_id":"pkgtest"}"#)
        #expect(key["auth_key"]?.stringValue?.isEmpty == false)
        _ = try call("evict", #"{"auth_id":"\#(auth)","volume_path":\#(volume)}"#)
        _ = try call("deauthorize", #"{"volume_path":\#(volume),"auth_id":"\#(auth)"}"#)
        _ = try call("delete_volume", #"{"volume_path":\#(volume)}"#)
        _ = try call("purge_volume", #"{"volume_path":\#(volume)}"#)
        _ = try call("destroy_group", #"{"group_id":"\#(group)"}"#)
    }

    private struct DaemonOption {
        let name: String
        let key: String?
        let defaultText: String?
    }

    /// cephfs-volumed's options with their config-file keys ("[key]") and
    /// documented defaults ("(default: ...)"), from its own help.
    private func daemonOptions(_ pkg: DebianPackage) throws -> [DaemonOption] {
        let help = try dumpHelp(pkg.root + "/usr/sbin/cephfs-volumed")
        var options: [DaemonOption] = []
        for argument in help["command"]?["arguments"]?.arrayValue ?? [] where argument["kind"] == "option" {
            guard let name = argument["preferredName"]?["name"]?.stringValue, name != "help", name != "version" else { continue }
            let abstract = argument["abstract"]?.stringValue ?? ""
            var key: String?
            if let open = abstract.firstIndex(of: "["), let close = abstract[open...].firstIndex(of: "]") {
                key = String(abstract[abstract.index(after: open)..<close])
            }
            var def: String?
            if let range = abstract.range(of: "(default: "), let close = abstract[range.upperBound...].firstIndex(of: ")") {
                def = String(abstract[range.upperBound..<close])
            }
            options.append(DaemonOption(name: name, key: key, defaultText: def))
        }
        #expect(options.count >= 20)
        #expect(options.filter { $0.key == nil }.map(\.name) == ["config"])
        return options
    }

    private func dumpHelp(_ exe: String) throws -> JSONValue {
        let r = try clean(exe, ["--experimental-dump-help"])
        #expect(r.status == 0, "\(r.stderr)")
        return try JSONValue.parse(r.stdout)
    }

    private func gunzip(_ path: String) throws -> String {
        let r = try command("gzip", ["-dc", path])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout
    }
}

/// Runs a command found on PATH.
private func command(_ name: String, _ arguments: [String], timeout: TimeInterval = 120, environment: [String: String] = [:]) throws
    -> ProcessResult
{
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { _, new in new }
    return try runProcess("/usr/bin/env", [name] + arguments, timeout: timeout, environment: env)
}

/// Runs an executable with nothing in its environment but a system PATH, so
/// the Swift toolchain's libraries cannot be found.
private func clean(_ path: String, _ arguments: [String]) throws -> ProcessResult {
    try runProcess(path, arguments, timeout: 60, environment: ["PATH": "/usr/bin:/bin"])
}

/// The package built for this test run.
private struct DebianPackage: Sendable {
    let deb: String
    /// The `dpkg -x` scratch root.
    let root: String
    /// The `dpkg -e` control directory.
    let control: String
    /// This run's scratch directory.
    let work: String

    static func get() throws -> DebianPackage { try built.get() }

    private static let built = Result<DebianPackage, any Error> { try build() }

    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    private static let workPath = NSTemporaryDirectory() + "cephfs-volumed-pkgtest-" + String(getpid())

    private static func build() throws -> DebianPackage {
        let base = NSTemporaryDirectory() + "cephfs-volumed-pkgtest-"
        // Leftovers of earlier runs whose process is gone.
        let tmp = (base as NSString).deletingLastPathComponent
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [] where entry.hasPrefix("cephfs-volumed-pkgtest-") {
            if let pid = Int32(entry.dropFirst("cephfs-volumed-pkgtest-".count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                try? FileManager.default.removeItem(atPath: tmp + "/" + entry)
            }
        }
        let work = workPath
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        // About 250 MB: gone when the test process exits.
        atexit { try? FileManager.default.removeItem(atPath: DebianPackage.workPath) }

        // Lintian runs inside build-deb (errors fail the build) and again in lintianIsClean.
        // Niced: the first, cold release build takes minutes of both cores while other suites run.
        let r = try runProcess(
            "/usr/bin/nice", ["-n", "10", repository + "/packaging/build-deb", work + "/out"], timeout: 3600,
            environment: ProcessInfo.processInfo.environment)
        guard r.status == 0, let deb = r.stdout.split(separator: "\n").last.map(String.init), deb.hasSuffix(".deb") else {
            throw DaemonError("packaging/build-deb failed (\(r.status)):\n\(r.stderr.suffix(6000))")
        }
        let root = work + "/root"
        let control = work + "/DEBIAN"
        for (flag, dir) in [("-x", root), ("-e", control)] {
            let x = try command("dpkg-deb", [flag, deb, dir])
            guard x.status == 0 else { throw DaemonError("dpkg-deb \(flag): \(x.stderr)") }
        }
        return DebianPackage(deb: deb, root: root, control: control, work: work)
    }

    static func sandbox() throws -> String { try sandboxBuilt.get() }

    private static let sandboxBuilt = Result<String, any Error> {
        let work = try get().work
        try sandboxSource.write(toFile: work + "/sandbox.c", atomically: true, encoding: .utf8)
        var errors = ""
        for compiler in ["clang", "cc"] {
            let r = try command(compiler, ["-O2", "-Wall", "-o", work + "/sandbox", work + "/sandbox.c"])
            if r.status == 0 { return work + "/sandbox" }
            errors += "\(compiler): \(r.stderr)\n"
        }
        throw DaemonError("cannot compile the seccomp sandbox:\n\(errors)")
    }

    /// Runs a command under the seccomp filters systemd 252 installs for the
    /// unit's MemoryDenyWriteExecute=yes (no W+X mappings, no mprotect to
    /// executable, no SHM_EXEC), RestrictAddressFamilies=AF_UNIX AF_INET
    /// AF_INET6 (other socket() families fail with EAFNOSUPPORT) and
    /// SystemCallArchitectures=native, after NoNewPrivileges=yes.
    private static let sandboxSource = #"""
        #include <errno.h>
        #include <linux/audit.h>
        #include <linux/filter.h>
        #include <linux/seccomp.h>
        #include <stddef.h>
        #include <stdio.h>
        #include <sys/mman.h>
        #include <sys/prctl.h>
        #include <sys/shm.h>
        #include <sys/socket.h>
        #include <sys/syscall.h>
        #include <unistd.h>

        #if defined(__x86_64__)
        #define ARCH AUDIT_ARCH_X86_64
        #elif defined(__aarch64__)
        #define ARCH AUDIT_ARCH_AARCH64
        #else
        #error unsupported architecture
        #endif

        #define ARG(i) (offsetof(struct seccomp_data, args) + 8 * (i))
        #define LD(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
        #define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
        #define AND(k) BPF_STMT(BPF_ALU | BPF_AND | BPF_K, (k))
        #define RET(k) BPF_STMT(BPF_RET | BPF_K, (k))
        #define ERR(e) RET(SECCOMP_RET_ERRNO | (e))
        #define ALLOW RET(SECCOMP_RET_ALLOW)
        /* Five instructions: syscall nr fails with EPERM when (arg & mask) == mask. */
        #define DENY_MASK(nr, arg, mask) JEQ(nr, 0, 5), LD(ARG(arg)), AND(mask), JEQ(mask, 0, 1), ERR(EPERM), ALLOW

        int main(int argc, char **argv) {
            if (argc < 2) {
                fprintf(stderr, "usage: %s command [args...]\n", argv[0]);
                return 2;
            }
            struct sock_filter filter[] = {
                LD(offsetof(struct seccomp_data, arch)),
                JEQ(ARCH, 1, 0),
                RET(SECCOMP_RET_KILL_PROCESS),
                LD(offsetof(struct seccomp_data, nr)),
                DENY_MASK(__NR_mmap, 2, PROT_WRITE | PROT_EXEC),
                DENY_MASK(__NR_mprotect, 2, PROT_EXEC),
                DENY_MASK(__NR_pkey_mprotect, 2, PROT_EXEC),
                DENY_MASK(__NR_shmat, 2, SHM_EXEC),
                JEQ(__NR_socket, 0, 6),
                LD(ARG(0)),
                JEQ(AF_UNIX, 3, 0),
                JEQ(AF_INET, 2, 0),
                JEQ(AF_INET6, 1, 0),
                ERR(EAFNOSUPPORT),
                ALLOW,
                ALLOW,
            };
            struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
                perror("seccomp");
                return 2;
            }
            execv(argv[1], argv + 1);
            perror(argv[1]);
            return 127;
        }
        """#
}
