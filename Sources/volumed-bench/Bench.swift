import ArgumentParser
import DevCluster
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The workloads, in the order they run.
enum Workload: String, CaseIterable, ExpressibleByArgument {
    case rpc, seq, concurrent, teardown, memory
}

@main
struct VolumedBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volumed-bench",
        abstract:
            "Benchmarks cephfs-volumed against a Python JSON-RPC baseline, Debian's ceph_volume_client and raw librados, on the dev cluster.",
        discussion: """
            Starts its own daemon (the cephfs-volumed beside this executable, or --daemon) on a \
            temporary socket with a unique --instance and a private --volume-prefix, the Python \
            baseline server, and the Python library bench, all against the dev cluster named by \
            --env. Prints a table, then one line `RESULT {json}` (the last line of stdout). \
            Progress goes to stderr. See packaging/bench/README.md.
            """)

    @Option(name: .long, help: "The dev cluster's env file (default: $CEPH_DEV_DIR/env, else /tmp/cephfs-volumed-dev/env).")
    var env: String?

    @Option(name: .long, help: "Comma-separated workloads: rpc,seq,concurrent,teardown,memory (default: all).")
    var only: String?

    @Option(name: .short, help: "Volumes (create_volume + authorize pairs) per side in the sequential workload.")
    var n = 40

    @Option(name: .long, help: "Concurrent clients (connections, threads).")
    var clients = 16

    @Option(name: .long, help: "Pairs in the concurrent workload, and volumes in the concurrent teardown (default: max(n, 16 x clients)).")
    var concurrentPairs: Int?

    @Option(
        name: .long,
        help:
            "cephx entities to create (untimed, removed at the end) before the concurrent workload: the mon's cost per cephx write grows with their number."
    )
    var fillerEntities = 0

    @Option(name: .long, help: "auth get-or-create calls per ceiling run (default: max(concurrent pairs, 16 x clients)).")
    var ceilingOps: Int?

    @Option(name: .long, help: "Requests kept in flight on the pipelined connection.")
    var window = 100

    @Option(name: .long, help: "Sequential pings per server.")
    var pingCount = 20_000

    @Option(name: .long, help: "Pipelined pings per server.")
    var pipelinedCount = 100_000

    @Option(name: .long, help: "Pings per server across all connections of the aggregate run (each connection is sequential).")
    var aggregateCount = 64_000

    @Option(name: .long, help: "Idle connections opened in the memory workload.")
    var idleConnections = 1_000

    @Option(name: .long, help: "Pipelined warm-up pings before the memory growth measurement.")
    var memoryWarmup = 10_000

    @Option(name: .long, help: "Pipelined pings whose RSS growth the memory workload measures.")
    var memoryRequests = 100_000

    @Option(name: .long, help: "The cephfs-volumed binary (default: beside this executable).")
    var daemon: String?

    @Option(
        name: .customLong("daemon-arg"), parsing: .unconditionalSingleValue,
        help: "An extra argument for the daemon (repeatable), e.g. --daemon-arg=--log-level=warning.")
    var daemonArgs: [String] = []

    @Option(name: .long, help: "The interpreter that runs the baseline server.")
    var python = "python3"

    @Option(name: .long, help: "The interpreter that can import ceph_volume_client (Debian's).")
    var cephPython = "/usr/bin/python3"

    @Option(name: .long, help: "The directory of baseline_server.py and python_v6_bench.py (default: found from the build or source tree).")
    var scripts: String?

    @Option(name: .long, help: "Bytes of quota set by every create_volume (both sides); 0 for none.")
    var size = 1 << 30

    @Flag(name: .long, help: "Keep the temporary directory (daemon and baseline logs).")
    var keepLogs = false

    func validate() throws {
        guard n >= 1, clients >= 1, window >= 1, pingCount >= 1, pipelinedCount >= 1, aggregateCount >= 1 else {
            throw ValidationError("counts must be positive")
        }
        _ = try workloads()
    }

    func workloads() throws -> Set<Workload> {
        guard let only else { return Set(Workload.allCases) }
        var set = Set<Workload>()
        for part in only.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let w = Workload(rawValue: name) else {
                throw ValidationError("unknown workload '\(name)'; use rpc,seq,concurrent,teardown,memory")
            }
            set.insert(w)
        }
        return set
    }

    func run() throws {
        let selected = try workloads()
        let cluster = try ClusterEnvironment.load(env ?? ClusterEnvironment.defaultPath())
        let daemonPath = daemon ?? Paths.executableDirectory + "/cephfs-volumed"
        guard FileManager.default.isExecutableFile(atPath: daemonPath) else {
            throw BenchError(
                "no cephfs-volumed at \(daemonPath): build it (swift build -c release --product cephfs-volumed) or pass --daemon")
        }
        guard let scriptsDir = scripts ?? Paths.scriptsDirectory() else {
            throw BenchError("cannot find packaging/bench (baseline_server.py); pass --scripts")
        }
        let bench = try BenchRun(
            options: self, selected: selected, cluster: cluster, daemonPath: daemonPath, scriptsDir: scriptsDir)
        defer { bench.finish() }
        do { try bench.runAll() } catch {
            bench.errors.append("setup: \(error)")
            log("setup failed: \(error)")
        }
        print(bench.report())
        print("RESULT " + bench.resultJSON().description)
    }
}
