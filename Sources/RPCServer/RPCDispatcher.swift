import Dispatch
import JSONValue
import Logging
import POSIXSupport
import Synchronization
import VolumeProtocol
import WorkerThreads

/// A decoded, validated call, ready to run once its keys are free.
package struct PreparedCall: Sendable {
    /// Serialisation keys; empty for calls that need none.
    package let keys: [String]
    /// Seconds added to the request timeout for this call, for one that
    /// waits on purpose (evict's own `timeout`).
    package let extraTime: Double
    package let execute: @Sendable () throws -> JSONValue

    package init(keys: [String] = [], extraTime: Double = 0, execute: @escaping @Sendable () throws -> JSONValue) {
        self.keys = keys
        self.extraTime = extraTime
        self.execute = execute
    }
}

extension Backend {
    /// Most threads per back-end; calls beyond wait for one (and their deadline).
    package var maxThreads: Int {
        switch self {
        case .fs: 256
        case .mon: 32
        case .osd: 64
        case .local: 8
        }
    }
}

/// One worker pool per back-end, so a stuck MDS cannot take the threads that
/// mon-only or OSD-only calls need. Made once by the owner of the server's
/// life (the daemon), started, injected into the dispatcher, and shut down
/// after the server has drained.
package struct BackendPools: Sendable {
    private let pools: [Backend: WorkerPool]

    package init(_ pools: [Backend: WorkerPool]) {
        precondition(Set(pools.keys) == Set(Backend.allCases), "a pool for every back-end")
        self.pools = pools
    }

    /// The daemon's pools: `Backend.maxThreads` threads each, named `volumed-<backend>`.
    package static func standard() -> BackendPools {
        BackendPools(
            Dictionary(
                uniqueKeysWithValues: Backend.allCases.map {
                    ($0, WorkerPool(maxThreads: $0.maxThreads, name: "volumed-\($0.rawValue)"))
                }))
    }

    package subscript(_ backend: Backend) -> WorkerPool { pools[backend]! }

    package func start() { for b in Backend.allCases { pools[b]!.start() } }
    package func shutdown() { for b in Backend.allCases { pools[b]!.shutdown() } }
}

/// One served method: decodes and validates params into a prepared call.
package struct MethodHandler: Sendable {
    package let name: String
    /// Mutating calls are logged with the peer's identity.
    package let mutating: Bool
    /// Inline calls never block (no cluster round trip), so they run on the
    /// event loop thread that read them instead of a worker thread.
    package let inline: Bool
    /// The thread pool the call runs on.
    package let backend: Backend
    package let prepare: @Sendable (Params) throws -> PreparedCall

    package init(
        _ name: String, mutating: Bool = false, inline: Bool = false, backend: Backend = .fs,
        prepare: @escaping @Sendable (Params) throws -> PreparedCall
    ) {
        self.name = name
        self.mutating = mutating
        self.inline = inline
        self.backend = backend
        self.prepare = prepare
    }
}

/// How the service above the server turns its failures into wire errors.
/// The default passes `RPCError`s through, maps `InvalidIdentifier` to
/// -32602 and anything else to an `Internal` engine error.
package typealias ErrorMapper = @Sendable (any Error) -> RPCError

/// Wraps each call that runs on a worker, e.g. to count the cluster round trips
/// it makes; returns the result and a summary for the debug log.
package typealias CallMeasure = @Sendable (_ trace: Bool, _ body: () throws -> JSONValue) throws -> (JSONValue, String)

package enum DefaultErrorMapping {
    package static func rpcError(_ error: any Error) -> RPCError {
        switch error {
        case let e as RPCError: e
        case let e as InvalidIdentifier: .invalidParams(e.description)
        default: .engine(.internal, "internal error: \(error)")
        }
    }
}

/// Applies JSON-RPC 2.0 to one received line: parse, batch, notification and
/// id rules, then runs the method on the work queue and hands back the reply bytes.
package final class RPCDispatcher: Sendable {
    package let methods: [String: MethodHandler]
    let serializer = KeyedSerializer()
    private let pools: BackendPools
    let logger: Logger
    package let stats: ServerStats
    /// Seconds from receipt until the caller gets `ClusterTimeout`; 0 disables.
    let requestTimeout: Double
    private let calls: DeadlineSweeper
    /// Set once shutdown has cut calls off: later calls get -32003.
    private let refusing = Atomic<Bool>(false)
    /// Calls inside `execute`, including those already answered by their deadline.
    private let executing = Atomic<Int>(0)
    private let mapError: ErrorMapper
    private let measure: CallMeasure

    package init(
        methods: [MethodHandler], pools: BackendPools, logger: Logger, stats: ServerStats = ServerStats(), requestTimeout: Double = 0,
        mapError: @escaping ErrorMapper = DefaultErrorMapping.rpcError,
        measure: @escaping CallMeasure = { _, body in (try body(), "") }
    ) {
        self.mapError = mapError
        self.measure = measure
        self.methods = Dictionary(methods.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        self.pools = pools
        self.logger = logger
        self.stats = stats
        self.requestTimeout = requestTimeout
        calls = DeadlineSweeper(timeout: requestTimeout)
    }

    /// Calls still running in the cluster, answered or not: while any is, an
    /// unmount would wait for it.
    package var executingCount: Int { executing.load(ordering: .relaxed) }

    /// Ends a shutdown's drain: answers every call not yet answered, those not
    /// started with -32003 (they never will be), those still running with
    /// `ClusterTimeout` (they may yet take effect), and refuses later calls
    /// with -32003. Returns how many of each were answered.
    @discardableResult
    package func cutOffForShutdown() -> (queued: Int, running: Int) {
        refusing.store(true, ordering: .sequentiallyConsistent)
        return calls.cutOffAll()
    }

    /// Handles one line; `reply` is called once, with nil when nothing is to be sent.
    package func handle(line: [UInt8], context: RequestContext, reply: @escaping @Sendable ([UInt8]?) -> Void) {
        let document: JSONValue
        do {
            document = try JSONValue.parse(line)
        } catch {
            reply(Self.encode(RPCResponse(id: .null, error: RPCError(code: .parseError, message: "parse error: \(error)"))))
            return
        }
        switch document {
        case .array(let items):
            guard !items.isEmpty else {
                reply(Self.encode(RPCResponse(id: .null, error: RPCError(code: .invalidRequest, message: "empty batch"))))
                return
            }
            handleBatch(items, context: context, reply: reply)
        default:
            handleOne(document, context: context) { response in reply(response.map { Self.encode($0) }) }
        }
    }

    private func handleBatch(_ items: [JSONValue], context: RequestContext, reply: @escaping @Sendable ([UInt8]?) -> Void) {
        let collector = BatchCollector(count: items.count) { responses in
            reply(responses.isEmpty ? nil : Self.encode(.array(responses.map(\.json))))
        }
        for (i, item) in items.enumerated() {
            handleOne(item, context: context) { collector.set(i, $0) }
        }
    }

    private func handleOne(_ value: JSONValue, context: RequestContext, done: @escaping @Sendable (RPCResponse?) -> Void) {
        let request: RPCRequest
        switch RPCRequest.decode(value) {
        case .failure(let f):
            done(RPCResponse(id: f.id, error: f.error))
            return
        case .success(let r):
            request = r
        }
        let respond: @Sendable (Result<JSONValue, RPCError>) -> Void = { outcome in
            done(request.id.map { RPCResponse(id: $0, outcome: outcome) })
        }
        guard let method = methods[request.method] else {
            respond(.failure(RPCError(code: .methodNotFound, message: "method not found: \(request.method)")))
            return
        }
        let call: PreparedCall
        do {
            call = try method.prepare(try Params(request.params))
        } catch {
            respond(.failure(mapError(error)))
            return
        }
        if method.mutating {
            let peer = context.peer.map { "uid=\($0.uid) pid=\($0.pid)" } ?? "unknown peer"
            logger.info("\(method.name) from \(peer) keys=\(call.keys)")
        }
        if method.inline {
            do {
                respond(.success(try call.execute()))
            } catch {
                respond(.failure(mapError(error)))
            }
            return
        }
        if refusing.load(ordering: .relaxed) {
            respond(.failure(RPCError(code: .shuttingDown, message: "shutting down: \(method.name) not started")))
            return
        }
        stats.inFlight.add(1, ordering: .relaxed)
        // The first of the result and a cut-off (the deadline, counted from
        // receipt, or a shutdown) answers the caller. A call cut off before it
        // started never starts, so an answered call cannot take effect later;
        // one already running runs to its end (a Ceph call cannot be
        // interrupted) and keeps its keys until then, so later calls on the
        // same keys still see its effects in order.
        let once = Once()
        let finish: @Sendable (Result<JSONValue, RPCError>) -> Void = { [stats] outcome in
            guard once.claim() else { return }
            stats.inFlight.subtract(1, ordering: .relaxed)
            respond(outcome)
        }
        let received = DispatchTime.now()
        let ticket = calls.add(extraTime: call.extraTime) { [requestTimeout] cutoff in
            switch cutoff {
            case .deadline:
                finish(
                    .failure(
                        .engine(
                            .clusterTimeout, "\(method.name) did not finish within \(requestTimeout + call.extraTime) s",
                            errno: Errno.ETIMEDOUT.rawValue, errnoName: Errno.ETIMEDOUT.name)))
            case .shutdownQueued:
                finish(.failure(RPCError(code: .shuttingDown, message: "shutting down: \(method.name) not started")))
            case .shutdownRunning:
                finish(
                    .failure(
                        .engine(
                            .clusterTimeout, "shutting down: \(method.name) did not finish before the drain timeout",
                            errno: Errno.ETIMEDOUT.rawValue, errnoName: Errno.ETIMEDOUT.name)))
            }
        }
        serializer.submit(keys: call.keys, pool: pools[method.backend]) { [self, logger, calls] in
            guard calls.start(ticket) else {
                logger.info("\(method.name) not started: already answered (deadline or shutdown) before its turn")
                return
            }
            let started = DispatchTime.now()
            executing.add(1, ordering: .relaxed)
            defer { executing.subtract(1, ordering: .relaxed) }
            do {
                let (result, counted) = try measure(logger.logLevel <= .debug) { try call.execute() }
                logger.debug(
                    "\(method.name): waited \((started.uptimeNanoseconds - received.uptimeNanoseconds) / 1000) us, ran \((DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1000) us\(counted.isEmpty ? "" : "; " + counted)"
                )
                calls.remove(ticket)
                finish(.success(result))
            } catch {
                calls.remove(ticket)
                let e = mapError(error)
                if e.code == .engineError { logger.notice("\(method.name) failed: \(e)") }
                finish(.failure(e))
            }
        }
    }

    /// A reply line for one response.
    static func encode(_ response: RPCResponse) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(96)
        response.write(into: &out)
        out.append(0x0A)
        return out
    }

    /// A reply line: compact JSON plus the newline that frames it.
    static func encode(_ value: JSONValue) -> [UInt8] {
        var out = value.serialized()
        out.append(0x0A)
        return out
    }
}

/// Gathers a batch's responses in request order and reports once all are in.
private final class BatchCollector: Sendable {
    private struct State {
        var slots: [RPCResponse?]
        var remaining: Int
    }
    private let state: Mutex<State>
    private let finish: @Sendable ([RPCResponse]) -> Void

    init(count: Int, finish: @escaping @Sendable ([RPCResponse]) -> Void) {
        state = Mutex(State(slots: Array(repeating: nil, count: count), remaining: count))
        self.finish = finish
    }

    func set(_ index: Int, _ response: RPCResponse?) {
        let complete: [RPCResponse]? = state.withLock { s in
            s.slots[index] = response
            s.remaining -= 1
            return s.remaining == 0 ? s.slots.compactMap { $0 } : nil
        }
        if let complete { finish(complete) }
    }
}

/// True for the first caller only.
private final class Once: Sendable {
    private let done = Atomic<Bool>(false)
    func claim() -> Bool { !done.exchange(true, ordering: .acquiringAndReleasing) }
}
