import Ceph
import Logging
import TestSupport
import Testing

@testable import VolumeEngine

@Suite("Engine connection", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct EngineConnectionTests {
    /// The client libraries' in-memory debug ring is off unless ceph.conf
    /// sets a level (the dev cluster's conf does not).
    @Test func clientDebugLoggingIsQuietByDefault() throws {
        let engine = try connectTestEngine("ec")
        defer { engine.shutdown() }
        for (option, _, quiet) in VolumeEngine.quietClientLogging {
            #expect(try engine.cluster.confGet(option) == quiet, "\(option)")
        }
        // The mount shares the handle's configuration.
        #expect(try engine.fs.confGet("debug_client") == "0/0")
    }
}
