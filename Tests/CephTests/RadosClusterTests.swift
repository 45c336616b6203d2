import Ceph
import JSONValue
import TestSupport
import Testing

@Test("the dev cluster is reachable (CI never skips cluster tests)")
func clusterIsReachable() throws {
    if let reason = TestCluster.unavailableReason {
        if TestCluster.isCI {
            Issue.record("CI=true but the cluster is unavailable: \(reason)")
        } else {
            print("*** cluster tests are skipped: \(reason) ***")
        }
    }
}

@Suite("RadosCluster", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct RadosClusterTests {
    @Test func connectsAndReadsConfiguration() throws {
        let c = try TestCluster.connect()
        defer { c.shutdown() }
        #expect(try c.confGet("rados_mon_op_timeout").hasPrefix("20"))
        #expect(try c.confGet("client_mount_timeout").hasPrefix("20"))
        #expect(try c.fsid().count == 36)
        #expect(try c.instanceID() > 0)
    }

    @Test func monCommandDecodesJSON() throws {
        let c = try TestCluster.connect()
        defer { c.shutdown() }
        let dump = try #require(try c.monJSON(["prefix": "mon dump"]))
        let mons = try #require(dump["mons"]?.arrayValue)
        #expect(mons.count == 1)
        #expect(mons[0]["addr"]?.stringValue?.hasPrefix("127.0.0.1:") == true)
    }

    @Test func failingMonCommandCarriesErrnoAndStatus() throws {
        let c = try TestCluster.connect()
        defer { c.shutdown() }
        do {
            _ = try c.monCommand(["prefix": "osd pool get", "pool": .string("no-such-pool-\(UInt32.random(in: 0...9999))"), "var": "size"])
            Issue.record("expected a failure")
        } catch {
            #expect(error.errno == .ENOENT)
            #expect(error.operation.contains("osd pool get"))
            #expect(error.detail?.isEmpty == false)
        }
        #expect(throws: CephError.self) { try c.monCommand(["prefix": "no such command"]) }
    }

    @Test func mgrCommandAnswers() throws {
        let c = try TestCluster.connect()
        defer { c.shutdown() }
        // Served by the mgr's volumes module, not by the mons.
        let volumes = try #require(try c.mgrCommand(["prefix": "fs volume ls"]).json()?.arrayValue)
        #expect(volumes.contains { $0["name"] == "cephfs" })
    }

    @Test func waitsForLatestOSDMap() throws {
        let c = try TestCluster.connect()
        defer { c.shutdown() }
        try c.waitForLatestOSDMap()
    }

    @Test func unknownIdentityFailsToConnect() {
        #expect(throws: CephError.self) { try TestCluster.connect(id: "nobody-\(UInt32.random(in: 0...9999))") }
    }

    @Test func callsAfterShutdownFailCleanly() throws {
        let c = try TestCluster.connect()
        c.shutdown()
        c.shutdown()
        do {
            _ = try c.fsid()
            Issue.record("expected ESHUTDOWN")
        } catch {
            #expect(error.errno == .ESHUTDOWN)
        }
    }

    @Test func concurrentCommandsFromManyThreads() async throws {
        let c = try TestCluster.connect()
        defer { c.shutdown() }
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<16 {
                group.addTask { try c.monJSON(["prefix": "mon dump"])?["mons"]?.arrayValue?.count ?? 0 }
            }
            for try await n in group { #expect(n == 1) }
        }
    }
}
