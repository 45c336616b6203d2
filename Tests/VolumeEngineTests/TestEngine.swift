import Logging
import TestSupport
import Testing

@testable import VolumeEngine

/// An engine on the dev cluster under a unique instance name, for engine-level
/// tests; sessions are not evicted, so tests never disturb each other.
func connectTestEngine(_ tag: String) throws -> VolumeEngine {
    let env = try #require(TestCluster.environment)
    return try VolumeEngine.connect(
        EngineConfiguration(cluster: TestCluster.options(), fsName: env.fsName, instanceName: TestCluster.uniqueName(tag)),
        logger: Logger(label: "test"), evictStaleSessions: false)
}
