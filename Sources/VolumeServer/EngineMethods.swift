import JSONValue
import VolumeEngine
import VolumeProtocol

/// The method table: wire names and params mapped onto the engine.
public enum EngineMethods {
    public static func handlers(engine: VolumeEngine) -> [MethodHandler] {
        [
            MethodHandler(Method.ping) { p, _ in
                try p.allowOnly([])
                return "pong"
            },
            MethodHandler(Method.getMonAddrs) { p, _ in
                try p.allowOnly([])
                return .array(try engine.getMonAddrs().map { .string($0) })
            },
        ]
    }
}
