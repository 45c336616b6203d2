import Ceph
import Logging
import RPCServer
import VolumeEngine

/// The wiring: the engine's operations as the RPC server's handlers, with the
/// engine's errors mapped to wire errors and each call's cluster round trips counted.
package enum EngineService {
    package static func makeDispatcher(
        engine: VolumeEngine, pools: BackendPools, logger: Logger, stats: ServerStats = ServerStats(), requestTimeout: Double
    ) -> RPCDispatcher {
        RPCDispatcher(
            methods: EngineMethods.handlers(engine: engine, stats: stats), pools: pools, logger: logger, stats: stats,
            requestTimeout: requestTimeout,
            mapError: ErrorMapping.rpcError,
            measure: { trace, body in
                let (result, counted) = try CallCounter.measure(trace: trace, body)
                return (result, "\(counted)")
            })
    }
}
