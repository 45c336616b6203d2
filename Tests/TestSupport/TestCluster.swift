import Ceph
@_exported import DevCluster
import Foundation

/// The dev cluster the tests run against (packaging/dev-cluster), found
/// through the env file it writes: `$CEPH_DEV_ENV`, or `$CEPH_DEV_DIR/env`,
/// or `/tmp/cephfs-volumed-dev/env`.
public enum TestCluster {
    public typealias Environment = ClusterEnvironment

    public static let environment: Environment? = loadEnvironment()

    /// Why the cluster cannot be used, or nil when it can.
    public static let unavailableReason: String? = {
        guard let env = environment else {
            return "no dev cluster env file found (run packaging/dev-cluster/dev-cluster up, or the README's test command)"
        }
        do {
            let c = try RadosCluster(options(env: env))
            c.shutdown()
            return nil
        } catch {
            return "dev cluster at \(env.confPath) does not answer: \(error)"
        }
    }()

    public static var isAvailable: Bool {
        if let reason = unavailableReason {
            FileHandle.standardError.write(Data("\n*** SKIPPING CLUSTER TESTS: \(reason) ***\n\n".utf8))
            return false
        }
        return true
    }

    /// CI must never skip: there, a missing cluster is a failure.
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    public static func options(env: Environment? = environment, id: String? = nil) -> ClusterOptions {
        let env = env!
        return ClusterOptions(
            confPath: env.confPath, id: id ?? env.serviceID, clusterName: env.clusterName,
            monOpTimeout: 20, osdOpTimeout: 20, mountTimeout: 20)
    }

    public static func connect(id: String? = nil) throws -> RadosCluster {
        try RadosCluster(options(id: id))
    }

    /// A mounted CephFS client on the dev file system.
    public static func mount(cluster: RadosCluster? = nil) throws -> CephFSMount {
        let c = try cluster ?? connect()
        let m = try CephFSMount(cluster: c)
        try m.mount(fsName: environment!.fsName)
        return m
    }

    /// A name no other test run uses.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
    }

    private static func loadEnvironment() -> Environment? {
        let env = ProcessInfo.processInfo.environment
        let candidates = [
            env["CEPH_DEV_ENV"],
            env["CEPH_DEV_DIR"].map { $0 + "/env" },
            "/tmp/cephfs-volumed-dev/env",
        ].compactMap { $0 }
        return candidates.lazy.compactMap(Environment.init(path:)).first
    }
}
