import Ceph
import DevCluster
import Foundation
import Histogram
import JSONValue
import Synchronization
import VolumeClient

#if canImport(Glibc)
import Glibc
#endif

/// One run of the bench: the servers it started, what it measured, and what
/// it must clean up.
final class BenchRun {
    let o: VolumedBench
    let selected: Set<Workload>
    let cluster: ClusterEnvironment
    let daemonPath: String
    let scriptsDir: String

    let runID: String
    let workDir: String
    /// A private volume prefix, so that neither side's recover() touches
    /// anyone else's volumes on a shared dev cluster (removed at the end).
    let volumePrefix: String
    let tenant: String
    let startDate = Date()

    var table = Table()
    var results: [String: JSONValue] = [:]
    var targets: [Target] = []
    var errors: [String] = []

    private var daemon: ServerProcess?
    private var baseline: ServerProcess?
    /// Volumes the daemon created (auth ID = volume name) that await teardown.
    private var seqVolumes: [String] = []
    private var concVolumes: [String] = []
    /// Untimed warm-up volumes, removed with the leftovers.
    private var extraVolumes: [String] = []
    /// cephx entities of the ceiling runs, deleted at the end.
    private var ceilingEntities: [String] = []
    /// `--filler-entities`: made before the concurrent workload, removed by `finish`.
    private var fillerEntities: [String] = []
    /// Debian's Python library (the seq workload's reference), its volumes
    /// awaiting teardown, and its untimed warm-up volumes.
    private var pyLib: PythonLibrary?
    private var pyVolumes: [String] = []
    private var pyExtra: [String] = []
    private var prefixUsed = false
    /// Auth IDs whose teardown failed: their entities are deleted at the end.
    private var leftoverEntities: [String] = []
    private var fileLimit = 0

    init(options: VolumedBench, selected: Set<Workload>, cluster: ClusterEnvironment, daemonPath: String, scriptsDir: String) throws {
        o = options
        self.selected = selected
        self.cluster = cluster
        self.daemonPath = daemonPath
        self.scriptsDir = scriptsDir
        runID = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        workDir = NSTemporaryDirectory() + "volumed-bench-" + runID
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        volumePrefix = "/volumes-bench-" + runID
        tenant = "vb" + runID
    }

    private var pairs: Int { o.concurrentPairs ?? max(o.n, 16 * o.clients) }
    private var ceilingOps: Int { o.ceilingOps ?? max(pairs, 16 * o.clients) }

    // MARK: Orchestration

    func runAll() throws {
        signal(SIGPIPE, SIG_IGN)
        fileLimit = raiseFileLimit(o.idleConnections + 4 * o.clients + 256)
        log(
            "run \(runID): workloads \(Workload.allCases.filter(selected.contains).map(\.rawValue).joined(separator: ",")); cluster \(cluster.confPath); daemon \(daemonPath); RLIMIT_NOFILE \(fileLimit)"
        )
        let needsDaemon = !selected.isDisjoint(with: [.rpc, .seq, .concurrent, .teardown])
        if needsDaemon {
            daemon = try startDaemon("main")
        }
        if selected.contains(.rpc) { attempt("rpc") { try rpcWorkload() } }
        if selected.contains(.seq) { attempt("seq") { try seqWorkload() } }
        if selected.contains(.concurrent) { attempt("concurrent") { try concurrentWorkload() } }
        if selected.contains(.teardown) { attempt("teardown") { try teardownWorkload() } }
        cleanupVolumes()
        if let d = daemon {
            d.stop()
            daemon = nil
        }
        if selected.contains(.memory) { attempt("memory") { try memoryWorkload() } }
    }

    private func attempt(_ name: String, _ body: () throws -> Void) {
        do {
            try body()
        } catch {
            errors.append("\(name): \(error)")
            log("workload \(name) failed: \(error)")
            table.note("workload \(name) FAILED: \(error)")
        }
    }

    /// Stops what is still running and removes what the run created.
    func finish() {
        baseline?.stop()
        baseline = nil
        cleanupPython()
        if !seqVolumes.isEmpty || !concVolumes.isEmpty || !extraVolumes.isEmpty {
            if daemon == nil, let d = try? startDaemon("cleanup") { daemon = d }
            cleanupVolumes()
        }
        daemon?.stop()
        daemon = nil
        deleteCeilingEntities()
        deleteEntities(fillerEntities, what: "filler")
        if prefixUsed {
            for prefix in [volumePrefix, pythonPrefix] {
                let r = try? runProcess(
                    o.cephPython, [scriptsDir + "/python_v6_bench.py", "rmtree"] + pythonClusterArgs(prefix: prefix), timeout: 120)
                if r?.status != 0 { log("could not remove the volume prefix \(prefix): \(r?.stderr.suffix(1000) ?? "python did not run")") }
            }
        }
        deleteEntities(leftoverEntities, what: "leftover")
        if !o.keepLogs { try? FileManager.default.removeItem(atPath: workDir) } else { log("logs kept in \(workDir)") }
        if !errors.isEmpty { Foundation.exit(1) }
    }

    // MARK: Servers

    private func startDaemon(_ tag: String) throws -> ServerProcess {
        let socket = workDir + "/volumed-\(tag).sock"
        let args =
            [
                "--socket", socket, "--conf", cluster.confPath, "--id", cluster.serviceID, "--cluster", cluster.clusterName,
                "--fs-name", cluster.fsName, "--instance", "bench-\(runID)-\(tag)", "--volume-prefix", volumePrefix,
            ] + o.daemonArgs
        log("starting cephfs-volumed (\(tag))")
        let d = try ServerProcess(
            name: "cephfs-volumed", executable: daemonPath, arguments: args, socketPath: socket, logPath: workDir + "/volumed-\(tag).log")
        do { try d.waitUntilReady() } catch {
            d.stop()
            throw error
        }
        return d
    }

    /// The library gets a prefix of its own: two clients creating entries in
    /// one directory, turn by turn, would make the MDS recall each one's caps
    /// on it at every turn, slowing both sides down.
    private var pythonPrefix: String { volumePrefix + "-py" }

    private func pythonClusterArgs(prefix: String? = nil) -> [String] {
        [
            "--conf", cluster.confPath, "--id", cluster.serviceID, "--cluster", cluster.clusterName, "--fs-name", cluster.fsName,
            "--volume-prefix", prefix ?? pythonPrefix,
        ]
    }

    // MARK: 1. RPC overhead

    private static let pingBlock = 1_000

    private func rpcWorkload() throws {
        guard let daemon else { throw BenchError("no daemon") }
        guard let py = Paths.which(o.python) else { throw BenchError("no \(o.python) in PATH for the baseline server") }
        let socket = workDir + "/baseline.sock"
        log("starting the Python baseline server (\(py))")
        let base = try ServerProcess(
            name: "python baseline", executable: py, arguments: [scriptsDir + "/baseline_server.py", socket], socketPath: socket,
            logPath: workDir + "/baseline.log")
        baseline = base
        defer {
            base.stop()
            baseline = nil
        }
        try base.waitUntilReady(timeout: 30)
        let servers: [(String, ServerProcess)] = [("daemon", daemon), ("baseline", base)]
        let window = o.window
        let clients = o.clients

        // Warm-up: a few thousand of each kind on each server.
        for (_, s) in servers {
            let c = try LineSocket(path: s.socketPath)
            _ = try c.pingRun(count: 2_000, window: 1)
            _ = try c.pingRun(count: 5_000, window: window)
        }
        var seq: [String: PingRun] = [:]
        var pipe: [String: PingRun] = [:]
        var agg: [String: (Histogram<UInt64>, Int, UInt64)] = [:]
        // Sequential pings alternate between the servers in blocks, so a
        // drift in the machine's speed (vCPU placement, other load) reaches
        // both sides alike instead of deciding the ratio.
        log("rpc: \(o.pingCount) sequential pings per server, alternating in blocks of \(Self.pingBlock)")
        let seqSockets = try servers.map { (name, s) in (name, try LineSocket(path: s.socketPath)) }
        var done = 0
        while done < o.pingCount {
            let n = min(Self.pingBlock, o.pingCount - done)
            for (name, c) in done / Self.pingBlock % 2 == 0 ? seqSockets : seqSockets.reversed() {
                let r = try c.pingRun(count: n, window: 1, firstID: done + 1)
                seq[name, default: PingRun()].histogram.add(r.histogram)
                seq[name]!.count += r.count
                seq[name]!.elapsedNanos += r.elapsedNanos
            }
            done += n
        }
        for (name, s) in servers {
            log("rpc: \(o.pipelinedCount) pipelined pings, window \(window) (\(name))")
            pipe[name] = try LineSocket(path: s.socketPath).pingRun(count: o.pipelinedCount, window: window)
        }
        let perConn = max(1, o.aggregateCount / clients)
        for (name, s) in servers {
            log("rpc: \(perConn * clients) pings over \(clients) connections (\(name))")
            let path = s.socketPath
            let sockets = Mutex<[Int: LineSocket]>([:])
            let runs = Mutex<[PingRun]>([])
            let wall = try runThreads(
                clients,
                prepare: { i in
                    let c = try LineSocket(path: path)
                    try c.ping(id: 0)
                    sockets.withLock { $0[i] = c }
                }
            ) { i in
                let c = sockets.withLock { $0[i]! }
                let r = try c.pingRun(count: perConn, window: 1, firstID: 1)
                runs.withLock { $0.append(r) }
            }
            var h = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
            for r in runs.withLock({ $0 }) { h.add(r.histogram) }
            agg[name] = (h, perConn * clients, wall)
        }

        // The client library's own overhead (informational).
        log("rpc: 5000 pings through VolumeClient.RPCConnection (daemon)")
        let libPath = daemon.socketPath
        let lib = try runBlocking { () async throws -> Histogram<UInt64> in
            let conn = RPCConnection(socketPath: libPath)
            for _ in 0..<500 { _ = try await conn.call("ping", timeout: 30) }
            var h = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
            for _ in 0..<5_000 {
                let t = nowNanos()
                _ = try await conn.call("ping", timeout: 30)
                _ = h.record(nowNanos() - t)
            }
            conn.close()
            return h
        }

        func rate(_ r: PingRun) -> Double { Double(r.count) / (Double(r.elapsedNanos) / 1e9) }
        let ds = LatencySummary(seq["daemon"]!.histogram)
        let bs = LatencySummary(seq["baseline"]!.histogram)
        let dp = pipe["daemon"]!
        let bp = pipe["baseline"]!
        let (dah, dan, daw) = agg["daemon"]!
        let (bah, ban, baw) = agg["baseline"]!
        let dAggRate = Double(dan) / (Double(daw) / 1e9)
        let bAggRate = Double(ban) / (Double(baw) / 1e9)

        let pingTarget = Target(
            key: "ping_p50_ratio", description: "sequential ping p50, daemon / Python baseline", measured: Double(ds.p50) / Double(bs.p50),
            limit: 0.5, atMost: true)
        let pipeTarget = Target(
            key: "pipelined_throughput_ratio", description: "pipelined ping throughput (window \(window)), daemon / Python baseline",
            measured: rate(dp) / rate(bp), limit: 2, atMost: false)
        targets += [pingTarget, pipeTarget]

        table.section("1. RPC overhead: ping on a Unix socket (reference: Python baseline server, one thread per connection)")
        table.row(
            "sequential, 1 connection: p50 / p99 / max (us)", daemon: ds.text(), reference: bs.text(), ratio: fmt(pingTarget.measured),
            target: pingTarget)
        table.row(
            "pipelined, window \(window): throughput (req/s)", daemon: fmtRate(rate(dp)), reference: fmtRate(rate(bp)),
            ratio: fmt(pipeTarget.measured), target: pipeTarget)
        table.row(
            "  round trip p50 / p99 / max (us)", daemon: LatencySummary(dp.histogram).text(), reference: LatencySummary(bp.histogram).text()
        )
        table.row(
            "\(clients) connections, sequential each: throughput (req/s)", daemon: fmtRate(dAggRate), reference: fmtRate(bAggRate),
            ratio: fmt(dAggRate / bAggRate))
        table.row("  round trip p50 / p99 / max (us)", daemon: LatencySummary(dah).text(), reference: LatencySummary(bah).text())
        table.row("sequential via VolumeClient.RPCConnection (us)", daemon: LatencySummary(lib).text())

        func side(_ s: PingRun, _ p: PingRun, _ ah: Histogram<UInt64>, _ an: Int, _ aw: UInt64) -> JSONValue {
            [
                "sequential": LatencySummary(s.histogram).json,
                "pipelined": merge(LatencySummary(p.histogram).json, ["window": .int(window), "ops_per_s": num(rate(p))]),
                "aggregate": merge(
                    LatencySummary(ah).json, ["connections": .int(clients), "ops_per_s": num(Double(an) / (Double(aw) / 1e9))]),
            ]
        }
        results["rpc"] = [
            "daemon": side(seq["daemon"]!, dp, dah, dan, daw),
            "baseline": side(seq["baseline"]!, bp, bah, ban, baw),
            "daemon_via_rpcconnection_sequential": LatencySummary(lib).json,
            "ping_p50_ratio": num(pingTarget.measured),
            "pipelined_throughput_ratio": num(pipeTarget.measured),
            "aggregate_throughput_ratio": num(dAggRate / bAggRate),
        ]
    }

    // MARK: 2. Sequential create_volume + authorize

    /// The daemon's and the library's pairs are interleaved one by one (the
    /// order flips every pair), so both see the same load on a busy machine.
    private func seqWorkload() throws {
        guard let daemon else { throw BenchError("no daemon") }
        let n = o.n
        prefixUsed = true

        log("seq: starting Debian's Python ceph_volume_client (\(o.cephPython))")
        let lib = try PythonLibrary(
            python: o.cephPython, script: scriptsDir + "/python_v6_bench.py", arguments: pythonClusterArgs(),
            logPath: workDir + "/python-lib.log")
        pyLib = lib
        let socket = daemon.socketPath
        let tenant = self.tenant
        let size = o.size
        let conn = RPCConnection(socketPath: socket)
        defer { conn.close() }
        _ = try runBlocking { try await conn.call("ping", timeout: 30) }

        // One untimed pair on each side: the first calls on a fresh mount and
        // a fresh volume prefix pay one-off costs (cap recalls, directories).
        let pyWarm = "vb\(runID)-py-warm"
        let dWarm = "vb\(runID)-d-warm"
        pyExtra.append(pyWarm)
        extraVolumes.append(dWarm)
        _ = try lib.pair(name: pyWarm, tenant: tenant, size: size)
        _ = try runBlocking { try await VolumeCalls.createAndAuthorize(conn, name: dWarm, tenant: tenant, size: size) }

        log("seq: \(n) create_volume + authorize on each side, interleaved")
        var dPairs: [(UInt64, UInt64)] = []
        var pyPairs: [(UInt64, UInt64)] = []
        for i in 0..<n {
            let dName = "vb\(runID)-d-\(i)"
            let pName = "vb\(runID)-py-\(i)"
            seqVolumes.append(dName)
            pyVolumes.append(pName)
            func daemonSide() throws {
                dPairs.append(try runBlocking { try await VolumeCalls.createAndAuthorize(conn, name: dName, tenant: tenant, size: size) })
            }
            if i % 2 == 0 {
                try daemonSide()
                pyPairs.append(try lib.pair(name: pName, tenant: tenant, size: size))
            } else {
                pyPairs.append(try lib.pair(name: pName, tenant: tenant, size: size))
                try daemonSide()
            }
        }

        let dPair = LatencySummary(samples: dPairs.map { $0.0 + $0.1 })
        let pPair = LatencySummary(samples: pyPairs.map { $0.0 + $0.1 })
        let dCreate = LatencySummary(samples: dPairs.map(\.0))
        let pCreate = LatencySummary(samples: pyPairs.map(\.0))
        let dAuth = LatencySummary(samples: dPairs.map(\.1))
        let pAuth = LatencySummary(samples: pyPairs.map(\.1))
        let t = Target(
            key: "seq_pair_ratio",
            description: "sequential create_volume + authorize, mean time per pair, daemon / Python ceph_volume_client",
            measured: dPair.mean / pPair.mean, limit: 0.35, atMost: true)
        targets.append(t)

        table.section(
            "2. Sequential create_volume + authorize, N=\(n) each (reference: Debian's Python ceph_volume_client v6, in-process; interleaved)"
        )
        table.row(
            "time per pair, mean (ms)", daemon: fmt(dPair.mean / 1e6, 1), reference: fmt(pPair.mean / 1e6, 1), ratio: fmt(t.measured),
            target: t)
        table.row(
            "  pair p50 / p99 / max (ms)", daemon: dPair.text(ms: true), reference: pPair.text(ms: true),
            ratio: fmt(Double(dPair.p50) / Double(pPair.p50)))
        table.row(
            "  create_volume p50 / p99 / max (ms)", daemon: dCreate.text(ms: true), reference: pCreate.text(ms: true),
            ratio: fmt(Double(dCreate.p50) / Double(pCreate.p50)))
        table.row(
            "  authorize p50 / p99 / max (ms)", daemon: dAuth.text(ms: true), reference: pAuth.text(ms: true),
            ratio: fmt(Double(dAuth.p50) / Double(pAuth.p50)))

        results["seq"] = [
            "n": .int(n),
            "daemon": ["pair": dPair.json, "create_volume": dCreate.json, "authorize": dAuth.json],
            "python": ["pair": pPair.json, "create_volume": pCreate.json, "authorize": pAuth.json, "connect_s": num(lib.connectSeconds)],
            "ratio_mean": num(t.measured),
            "ratio_p50": num(Double(dPair.p50) / Double(pPair.p50)),
        ]
    }

    // MARK: 3. Concurrent create_volume + authorize, and the cluster's ceiling

    private static let concurrentRounds = 4

    /// The indices of `total` that round `round` of `rounds` takes.
    private func chunk(_ total: Int, _ round: Int, of rounds: Int) -> Range<Int> {
        (total * round / rounds)..<(total * (round + 1) / rounds)
    }

    private func concurrentWorkload() throws {
        guard let daemon else { throw BenchError("no daemon") }
        let m = pairs
        let clients = o.clients
        prefixUsed = true

        // The ceiling: raw auth get-or-create through librados, with one
        // shared handle and with one handle per thread. The mon's cost per
        // write drifts during a run (it grows with the cephx entities that
        // exist, and rocksdb compacts now and then), so the work is split
        // into rounds that alternate the three parts in a rotating order,
        // and each side's rate is its total over all rounds.
        let opts = ClusterOptions(
            confPath: cluster.confPath, id: cluster.serviceID, clusterName: cluster.clusterName, monOpTimeout: 60, osdOpTimeout: 60,
            mountTimeout: 60)
        let shared = try RadosCluster(opts)
        defer { shared.shutdown() }
        let ops = ceilingOps
        let rounds = Self.concurrentRounds
        // The mon's cost per cephx write grows with the entities that exist,
        // so the figures only compare at a stated count.
        if o.fillerEntities > 0 {
            log("concurrent: creating \(o.fillerEntities) filler cephx entities (untimed)")
            let names = (0..<o.fillerEntities).map { "vb\(runID)-filler-\($0)" }
            fillerEntities = names
            let prefix = volumePrefix
            _ = try runThreads(min(clients, names.count)) { i in
                for k in stride(from: i, to: names.count, by: clients) {
                    _ = try shared.monCommand([
                        "prefix": "auth get-or-create", "entity": .string("client." + names[k]),
                        "caps": ["mds", .string("allow rw path=\(prefix)/filler/\(k)"), "mon", "allow r"],
                    ])
                }
            }
        }
        func entityCount() -> Int? { (try? shared.monJSON(["prefix": "auth ls"]))??["auth_dump"]?.arrayValue?.count }
        let entitiesBefore = entityCount()
        var ceilingWall: [String: UInt64] = ["shared": 0, "per_thread": 0]
        var ceilingLat: [String: [UInt64]] = ["shared": [], "per_thread": []]
        func measureCeiling(_ mode: String, round: Int) throws {
            let part = chunk(ops, round, of: rounds)
            let entities = part.map { "vb\(runID)-ceil-\(mode == "shared" ? "s" : "t")-\($0)" }
            ceilingEntities += entities
            let handles = Mutex<[Int: RadosCluster]>([:])
            let lat = Mutex<[UInt64]>([])
            let prefix = volumePrefix
            let wall = try runThreads(
                clients,
                prepare: { i in
                    let h = mode == "shared" ? shared : try RadosCluster(opts)
                    handles.withLock { $0[i] = h }
                }
            ) { i in
                let h = handles.withLock { $0[i]! }
                for k in stride(from: i, to: entities.count, by: clients) {
                    let name = entities[k]
                    let t0 = nowNanos()
                    _ = try h.monCommand([
                        "prefix": "auth get-or-create", "entity": .string("client." + name),
                        "caps": [
                            "mds", .string("allow rw path=\(prefix)/_nogroup/\(name)"),
                            "osd", .string("allow rw pool=cephfs_data namespace=fsvolumens_\(name)"),
                            "mon", "allow r",
                        ],
                    ])
                    let dt = nowNanos() - t0
                    lat.withLock { $0.append(dt) }
                }
            }
            if mode == "per_thread" { for (_, h) in handles.withLock({ $0 }) { h.shutdown() } }
            ceilingWall[mode]! += wall
            ceilingLat[mode]! += lat.withLock { $0 }
            deleteCeilingEntities(using: shared)
        }

        let names = (0..<m).map { "vb\(runID)-c-\($0)" }
        concVolumes = names
        let socket = daemon.socketPath
        let tenant = self.tenant
        let size = o.size
        var res: [String: UInt64] = [:]
        var wall: UInt64 = 0
        func measureDaemon(round: Int) throws {
            let part = chunk(m, round, of: rounds).map { names[$0] }
            let (r, w) = try runBlocking { () async throws -> ([String: UInt64], UInt64) in
                let conns = try await VolumeCalls.connections(socket, count: clients)
                let r = try await VolumeCalls.concurrently(conns, names: part) { conn, name in
                    let (c, a) = try await VolumeCalls.createAndAuthorize(conn, name: name, tenant: tenant, size: size)
                    return c + a
                }
                for c in conns { c.close() }
                return r
            }
            res.merge(r) { a, _ in a }
            wall += w
        }
        log(
            "concurrent: \(rounds) rounds, each a share of \(m) create_volume + authorize through the daemon and of \(ops) raw auth get-or-create with a shared handle and with a handle per thread, \(clients) clients"
        )
        for round in 0..<rounds {
            let parts: [() throws -> Void] = [
                { try measureCeiling("shared", round: round) },
                { try measureDaemon(round: round) },
                { try measureCeiling("per_thread", round: round) },
            ]
            for k in 0..<parts.count { try parts[(k + round) % parts.count]() }
        }
        func ceilingRate(_ mode: String) -> Double { Double(ops) / (Double(ceilingWall[mode]!) / 1e9) }
        let ceilings = [
            "shared": (ceilingRate("shared"), LatencySummary(samples: ceilingLat["shared"]!)),
            "per_thread": (ceilingRate("per_thread"), LatencySummary(samples: ceilingLat["per_thread"]!)),
        ]
        let rate = Double(m) / (Double(wall) / 1e9)
        let pair = LatencySummary(samples: Array(res.values))
        let (sharedRate, sharedLat) = ceilings["shared"]!
        let (threadRate, threadLat) = ceilings["per_thread"]!
        let ceiling = max(sharedRate, threadRate)
        let t = Target(
            key: "concurrent_fraction_of_ceiling",
            description: "\(clients) concurrent create_volume + authorize pairs/s, as a fraction of raw auth get-or-create ops/s",
            measured: rate / ceiling, limit: 0.8, atMost: false)
        targets.append(t)

        table.section(
            "3. \(clients) concurrent clients, create_volume + authorize, \(m) pairs (reference: \(ops) raw auth get-or-create on \(clients) threads)"
        )
        let entitiesAfter = entityCount()
        table.row(
            "cephx entities in the cluster, at the start / end", daemon: "",
            reference: "\(entitiesBefore.map(String.init) ?? "?") / \(entitiesAfter.map(String.init) ?? "?")")
        table.row("ceiling, one shared librados handle (ops/s)", daemon: "", reference: fmtRate(sharedRate))
        table.row("  get-or-create p50 / p99 / max (ms)", daemon: "", reference: sharedLat.text(ms: true))
        table.row("ceiling, one handle per thread (ops/s)", daemon: "", reference: fmtRate(threadRate))
        table.row("  get-or-create p50 / p99 / max (ms)", daemon: "", reference: threadLat.text(ms: true))
        table.row(
            "throughput (pairs/s) vs ceiling (ops/s)", daemon: fmtRate(rate), reference: fmtRate(ceiling), ratio: fmt(t.measured), target: t
        )
        table.row("  pair p50 / p99 / max (ms)", daemon: pair.text(ms: true))

        results["concurrent"] = [
            "clients": .int(clients), "pairs": .int(m), "ceiling_ops": .int(ops), "rounds": .int(rounds),
            "cephx_entities_before": entitiesBefore.map { .int(Int64($0)) } ?? .null,
            "cephx_entities_after": entitiesAfter.map { .int(Int64($0)) } ?? .null,
            "daemon": merge(pair.json, ["pairs_per_s": num(rate)]),
            "ceiling_shared_handle": merge(sharedLat.json, ["ops_per_s": num(sharedRate)]),
            "ceiling_handle_per_thread": merge(threadLat.json, ["ops_per_s": num(threadRate)]),
            "ceiling_ops_per_s": num(ceiling),
            "fraction_of_ceiling": num(t.measured),
        ]
    }

    /// Deletes cephx entities `client.<name>` (absent ones are fine).
    private func deleteEntities(_ names: [String], what: String, using handle: RadosCluster? = nil) {
        guard !names.isEmpty else { return }
        let opts = ClusterOptions(
            confPath: cluster.confPath, id: cluster.serviceID, clusterName: cluster.clusterName, monOpTimeout: 60, osdOpTimeout: 60,
            mountTimeout: 60)
        guard let h = handle ?? (try? RadosCluster(opts)) else {
            log("cannot connect to delete \(names.count) \(what) entities")
            return
        }
        let failed = Mutex(0)
        let threads = min(o.clients, names.count)
        _ = try? runThreads(threads) { i in
            for k in stride(from: i, to: names.count, by: threads) {
                do {
                    _ = try h.monCommand(["prefix": "auth del", "entity": .string("client." + names[k])])
                } catch let e as CephError where e.errno == .ENOENT {
                } catch {
                    failed.withLock { $0 += 1 }
                }
            }
        }
        if handle == nil { h.shutdown() }
        if failed.withLock({ $0 }) > 0 { log("could not delete \(failed.withLock { $0 }) \(what) entities") }
    }

    private func deleteCeilingEntities(using handle: RadosCluster? = nil) {
        deleteEntities(ceilingEntities, what: "ceiling", using: handle)
        ceilingEntities = []
    }

    // MARK: 4. Teardown

    private func teardownWorkload() throws {
        guard let daemon else { throw BenchError("no daemon") }
        let socket = daemon.socketPath
        let tenant = self.tenant
        let size = o.size
        let clients = o.clients
        prefixUsed = true
        // Volumes to tear down: those of the seq and concurrent workloads, or
        // fresh ones (created untimed) when those did not run.
        if seqVolumes.isEmpty {
            let names = (0..<o.n).map { "vb\(runID)-ts-\($0)" }
            seqVolumes = names
            log("teardown: creating \(names.count) volumes (untimed)")
            _ = try runBlocking {
                let conns = try await VolumeCalls.connections(socket, count: clients)
                return try await VolumeCalls.concurrently(conns, names: names) { conn, name in
                    _ = try await VolumeCalls.createAndAuthorize(conn, name: name, tenant: tenant, size: size)
                }.wall
            }
        }
        if concVolumes.isEmpty {
            let names = (0..<pairs).map { "vb\(runID)-tc-\($0)" }
            concVolumes = names
            log("teardown: creating \(names.count) volumes (untimed)")
            _ = try runBlocking {
                let conns = try await VolumeCalls.connections(socket, count: clients)
                return try await VolumeCalls.concurrently(conns, names: names) { conn, name in
                    _ = try await VolumeCalls.createAndAuthorize(conn, name: name, tenant: tenant, size: size)
                }.wall
            }
        }

        // Sequential: the daemon's volumes, interleaved with the library's
        // (when the seq workload left some) one by one, order flipping.
        let seqNames = seqVolumes
        let pyNames = pyVolumes
        log(
            "teardown: \(seqNames.count) deauthorize + delete_volume + purge_volume, sequential\(pyNames.isEmpty ? "" : ", interleaved with the Python library's")"
        )
        let conn = RPCConnection(socketPath: socket)
        _ = try runBlocking { try await conn.call("ping", timeout: 30) }
        var seqTimes: [(UInt64, UInt64, UInt64)] = []
        var pyTimes: [(UInt64, UInt64, UInt64)] = []
        var daemonNanos: UInt64 = 0
        for i in 0..<max(seqNames.count, pyNames.count) {
            func daemonSide() throws {
                guard i < seqNames.count else { return }
                let name = seqNames[i]
                let t0 = nowNanos()
                seqTimes.append(try runBlocking { try await VolumeCalls.teardown(conn, name: name) })
                daemonNanos += nowNanos() - t0
            }
            func pySide() throws {
                guard i < pyNames.count, let lib = pyLib else { return }
                pyTimes.append(try lib.teardown(name: pyNames[i]))
            }
            if i % 2 == 0 {
                try daemonSide()
                try pySide()
            } else {
                try pySide()
                try daemonSide()
            }
        }
        conn.close()
        seqVolumes = []
        pyVolumes = []
        let seqWall = daemonNanos
        let seqRes = Dictionary(uniqueKeysWithValues: zip(seqNames, seqTimes))
        let concNames = concVolumes
        log("teardown: \(concNames.count) deauthorize + delete_volume + purge_volume, \(clients) clients")
        let (concRes, concWall) = try runBlocking {
            let conns = try await VolumeCalls.connections(socket, count: clients)
            return try await VolumeCalls.concurrently(conns, names: concNames) { conn, name in
                try await VolumeCalls.teardown(conn, name: name)
            }
        }
        concVolumes = []

        let sv = Array(seqRes.values)
        let cv = Array(concRes.values)
        let sTriple = LatencySummary(samples: sv.map { $0.0 + $0.1 + $0.2 })
        let sDeauth = LatencySummary(samples: sv.map(\.0))
        let sDelete = LatencySummary(samples: sv.map(\.1))
        let sPurge = LatencySummary(samples: sv.map(\.2))
        let cTriple = LatencySummary(samples: cv.map { $0.0 + $0.1 + $0.2 })
        let sRate = Double(sv.count) / (Double(seqWall) / 1e9)
        let cRate = Double(cv.count) / (Double(concWall) / 1e9)
        let py = LatencySummary(samples: pyTimes.map { $0.0 + $0.1 + $0.2 })

        table.section("4. deauthorize + delete_volume + purge_volume (reference: Python ceph_volume_client, sequential, same N)")
        table.row(
            "sequential, per volume p50 / p99 / max (ms)", daemon: sTriple.text(ms: true), reference: py.text(ms: true),
            ratio: py.count > 0 ? fmt(Double(sTriple.p50) / Double(py.p50)) : "")
        table.row("  throughput (volumes/s)", daemon: fmt(sRate, 1), reference: py.count > 0 ? fmt(1e9 / py.mean, 1) : "")
        table.row(
            "  deauthorize / delete / purge p50 (ms)",
            daemon: [sDeauth.p50, sDelete.p50, sPurge.p50].map { fmtTime($0, ms: true) }.joined(separator: " / "))
        table.row("\(clients) clients: throughput (volumes/s)", daemon: fmt(cRate, 1), ratio: "", target: nil)
        table.row("  per volume p50 / p99 / max (ms)", daemon: cTriple.text(ms: true))

        results["teardown"] = [
            "sequential": merge(
                sTriple.json,
                [
                    "volumes_per_s": num(sRate), "deauthorize": sDeauth.json, "delete_volume": sDelete.json, "purge_volume": sPurge.json,
                ]),
            "concurrent": merge(cTriple.json, ["clients": .int(clients), "volumes_per_s": num(cRate)]),
            "python_sequential": py.count > 0 ? merge(py.json, ["volumes_per_s": num(1e9 / py.mean)]) : .null,
        ]
    }

    /// Tears down (untimed) volumes a workload left behind; the cephx
    /// entities of those that fail are deleted at the end, and the prefix
    /// directory removal takes the rest.
    private func cleanupVolumes() {
        cleanupPython()
        let names = seqVolumes + concVolumes + extraVolumes
        seqVolumes = []
        concVolumes = []
        extraVolumes = []
        guard !names.isEmpty else { return }
        guard let socket = daemon?.socketPath else {
            leftoverEntities += names
            return
        }
        log("cleanup: tearing down \(names.count) volumes of the daemon (untimed)")
        let clients = o.clients
        let failed = Mutex<[String]>([])
        do {
            _ = try runBlocking {
                let conns = try await VolumeCalls.connections(socket, count: clients)
                return try await VolumeCalls.concurrently(conns, names: names) { conn, name in
                    do { _ = try await VolumeCalls.teardown(conn, name: name) } catch { failed.withLock { $0.append(name) } }
                }.wall
            }
        } catch {
            failed.withLock { $0 = names }
        }
        leftoverEntities += failed.withLock { $0 }
    }

    private func cleanupPython() {
        guard let lib = pyLib else { return }
        let names = pyVolumes + pyExtra
        if !names.isEmpty { log("cleanup: tearing down \(names.count) volumes of the Python library (untimed)") }
        for name in names {
            do { _ = try lib.teardown(name: name) } catch { leftoverEntities.append(name) }
        }
        pyVolumes = []
        pyExtra = []
        lib.stop()
        pyLib = nil
    }

    // MARK: 5. Memory

    private func memoryWorkload() throws {
        let d = try startDaemon("memory")
        defer { d.stop() }
        prefixUsed = true
        let idle = o.idleConnections
        let window = o.window
        guard fileLimit >= idle + 64 else { throw BenchError("RLIMIT_NOFILE is \(fileLimit), too low for \(idle) connections") }
        usleep(1_000_000)
        let rssIdle = try d.rssKiB()
        log("memory: \(idle) idle connections")
        var sockets: [LineSocket] = []
        sockets.reserveCapacity(idle)
        for i in 0..<idle {
            let s = try LineSocket(path: d.socketPath)
            try s.ping(id: i + 1)
            sockets.append(s)
        }
        usleep(1_000_000)
        let rssConns = try d.rssKiB()
        sockets.removeAll()
        usleep(1_000_000)
        let rssClosed = try d.rssKiB()

        log("memory: \(o.memoryWarmup) + \(o.memoryRequests) pipelined pings")
        let c = try LineSocket(path: d.socketPath)
        _ = try c.pingRun(count: o.memoryWarmup, window: window, firstID: 1)
        usleep(500_000)
        let rssWarm = try d.rssKiB()
        _ = try c.pingRun(count: o.memoryRequests, window: window, firstID: o.memoryWarmup + 1)
        usleep(500_000)
        let rssAfter = try d.rssKiB()

        let perConn = Double(rssConns - rssIdle) / Double(idle)
        let growth = Double(rssAfter - rssWarm) / Double(rssWarm) * 100
        let t1 = Target(
            key: "rss_per_idle_connection_kib", description: "daemon RSS growth per idle connection (KiB)", measured: perConn, limit: 64,
            atMost: true)
        let t2 = Target(
            key: "rss_growth_percent",
            description: "daemon RSS growth across \(o.memoryRequests) pipelined requests after a \(o.memoryWarmup) warm-up (%)",
            measured: growth, limit: 5, atMost: true)
        targets += [t1, t2]

        table.section("5. Memory: daemon VmRSS (a fresh daemon)")
        table.row("RSS idle (KiB)", daemon: String(rssIdle))
        table.row("RSS with \(idle) idle connections (KiB)", daemon: String(rssConns))
        table.row("  per idle connection (KiB)", daemon: fmt(perConn, 1), target: t1)
        table.row("RSS after closing them (KiB)", daemon: String(rssClosed))
        table.row("RSS after \(o.memoryWarmup) warm-up pings (KiB)", daemon: String(rssWarm))
        table.row("RSS after \(o.memoryRequests) more pings (KiB)", daemon: String(rssAfter))
        table.row("  growth over \(o.memoryRequests) requests (%)", daemon: fmt(growth, 2), target: t2)

        results["memory"] = [
            "rss_idle_kib": .int(rssIdle), "idle_connections": .int(idle), "rss_with_idle_connections_kib": .int(rssConns),
            "rss_after_closing_kib": .int(rssClosed), "per_idle_connection_kib": num(perConn),
            "warmup_requests": .int(o.memoryWarmup), "rss_after_warmup_kib": .int(rssWarm),
            "requests": .int(o.memoryRequests), "rss_after_requests_kib": .int(rssAfter), "growth_percent": num(growth),
        ]
    }

    // MARK: Output

    func report() -> String {
        var u = utsname()
        uname(&u)
        let kernel = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        var out =
            "volumed-bench run \(runID), \(ISO8601DateFormatter().string(from: startDate)), \(ProcessInfo.processInfo.activeProcessorCount) CPUs, Linux \(kernel)\n"
        out += "daemon \(daemonPath); cluster \(cluster.confPath); volume prefix \(volumePrefix)\n\n"
        out += table.render()
        if !targets.isEmpty {
            let passed = targets.filter(\.pass).count
            out += "\n\ntargets: \(passed)/\(targets.count) PASS"
            for t in targets where !t.pass { out += "\n  MISS \(t.key): \(fmt(t.measured)) (target \(t.limitText))" }
        }
        if !errors.isEmpty { out += "\n\nerrors:\n" + errors.map { "  " + $0 }.joined(separator: "\n") }
        return out
    }

    func resultJSON() -> JSONValue {
        var u = utsname()
        uname(&u)
        let kernel = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        var r = results
        r["run_id"] = .string(runID)
        r["date"] = .string(ISO8601DateFormatter().string(from: startDate))
        r["host"] = ["nproc": .int(ProcessInfo.processInfo.activeProcessorCount), "kernel": .string(kernel)]
        r["params"] = [
            "n": .int(o.n), "clients": .int(o.clients), "window": .int(o.window), "concurrent_pairs": .int(pairs),
            "filler_entities": .int(o.fillerEntities),
            "ping_count": .int(o.pingCount), "pipelined_count": .int(o.pipelinedCount), "aggregate_count": .int(o.aggregateCount),
            "idle_connections": .int(o.idleConnections), "size": .int(o.size),
            "workloads": .array(Workload.allCases.filter(selected.contains).map { .string($0.rawValue) }),
        ]
        r["targets"] = .array(targets.map(\.json))
        r["errors"] = .array(errors.map { .string($0) })
        return .object(r)
    }
}

func merge(_ a: JSONValue, _ b: [String: JSONValue]) -> JSONValue {
    var o = a.objectValue ?? [:]
    for (k, v) in b { o[k] = v }
    return .object(o)
}
