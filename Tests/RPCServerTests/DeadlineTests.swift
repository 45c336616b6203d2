import Dispatch
import Foundation
import JSONValue
import RPCServer
import TestSupport
import Testing
import VolumeProtocol
import WorkerThreads

/// Deadlines count from receipt, back-ends do not starve each other, and a
/// shutdown answers everything within its drain timeout (issue 12, items 8 and 17).
@Suite("Deadlines and shutdown")
struct DeadlineTests {
    private static func line(_ id: Int, _ method: String, _ params: String = "{}") -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"# + "\n"
    }

    @Test func callQueuedBehindAStuckOneIsAnsweredByItsOwnDeadlineAndNeverStarts() throws {
        let h = try ServerHarness(requestTimeout: 0.5)
        let stuck = try h.client()
        try stuck.send(Self.line(1, "sleep", #"{"ms":2500,"key":"auth:x"}"#))
        usleep(100_000)
        let queued = try h.client()
        let start = Date()
        let reply = try JSONValue.parse(try queued.request(Self.line(2, "record", #"{"keys":["auth:x"],"tag":"late","ms":10}"#)))
        let took = Date().timeIntervalSince(start)
        #expect(reply["error"]?["data"]?["type"] == "ClusterTimeout" && took < 1.5, "queued call: \(reply) after \(took) s")
        // The stuck call ends; the one answered before its turn must not run then.
        #expect(try stuck.readLine() != nil)
        usleep(300_000)
        #expect(!h.events.all.contains("start late"), "a call answered ClusterTimeout before it started ran later: \(h.events.all)")
    }

    @Test func aCallThatWaitsOnPurposeGetsItsExtraTime() throws {
        let h = try ServerHarness(requestTimeout: 0.3)
        let ok = try h.call(Self.line(1, "patient", #"{"ms":700,"extra":2}"#))
        #expect(ok["result"] == 700, "\(ok)")
        let late = try h.call(Self.line(2, "patient", #"{"ms":1500,"extra":0.5}"#))
        #expect(late["error"]?["data"]?["type"] == "ClusterTimeout", "\(late)")
    }

    @Test func stuckCallsOnOneBackendDoNotStarveAnother() throws {
        let h = try ServerHarness(requestTimeout: 10)
        // More sleeps than the fs pool has threads, as 300 calls stuck on an MDS.
        let clients = try (0..<3).map { _ in try h.client() }
        for i in 0..<300 { try clients[i % 3].send(Self.line(i, "sleep", #"{"ms":2000}"#)) }
        usleep(300_000)
        let start = Date()
        let reply = try h.call(Self.line(1000, "monsleep", #"{"ms":10}"#))
        let took = Date().timeIntervalSince(start)
        #expect(reply["result"] == 10 && took < 1, "a mon call while the fs pool is busy: \(reply) after \(took) s")
        for i in 0..<300 { _ = try clients[i % 3].readLine() }
    }

    @Test func shutdownAnswersQueuedCallsShuttingDownAndRunningOnesWithinTheDrainTimeout() throws {
        let h = try ServerHarness { $0.drainTimeout = 1 }
        let running = try h.client()
        try running.send(Self.line(1, "sleep", #"{"ms":6000,"key":"auth:y"}"#))
        usleep(100_000)
        let queued = try h.client()
        try queued.send(Self.line(2, "record", #"{"keys":["auth:y"],"tag":"queued","ms":10}"#))
        usleep(100_000)
        let start = Date()
        h.server.shutdown()
        let took = Date().timeIntervalSince(start)
        #expect(took < 1 + 2.5, "shutdown took \(took) s with a 1 s drain timeout")
        let q = try queued.readLine().map { try JSONValue.parse($0) }
        #expect(q?["error"]?["code"] == .int(RPCErrorCode.shuttingDown.rawValue), "queued call: \(q.map { "\($0)" } ?? "no reply")")
        let r = try running.readLine().map { try JSONValue.parse($0) }
        #expect(r?["error"]?["data"]?["type"] == "ClusterTimeout", "running call: \(r.map { "\($0)" } ?? "no reply")")
        usleep(200_000)
        #expect(!h.events.all.contains("start queued"))
    }
}

@Suite("Worker pool")
struct WorkerPoolStartTests {
    /// Jobs submitted back to back while one thread is idle all start: the
    /// idle thread takes one, new threads the others. Counting a thread that
    /// was signalled but has not woken yet as idle left the others queued
    /// behind a job that hung (in a frozen MDS) although the pool had room.
    @Test func backToBackJobsNeverWaitBehindABlockedOne() throws {
        let pool = WorkerPool(maxThreads: 8)
        pool.start()
        let warm = DispatchSemaphore(value: 0)
        pool.submit { warm.signal() }
        warm.wait()
        usleep(50_000)  // the thread is idle again
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        for _ in 0..<4 {
            pool.submit {
                started.signal()
                release.wait()
            }
        }
        var count = 0
        while count < 4, started.wait(timeout: .now() + 2) == .success { count += 1 }
        #expect(count == 4, "\(count) of 4 jobs started while each blocks its thread")
        for _ in 0..<4 { release.signal() }
    }
}

@Suite("Worker pool lifecycle")
struct WorkerPoolLifecycleTests {
    /// Shutdown lets the idle threads go and refuses later work; a job still
    /// queued when it comes runs (its submitter may be waiting for it).
    @Test func shutdownReleasesIdleThreadsAndRefusesLaterWork() throws {
        let pool = WorkerPool(maxThreads: 4)
        pool.start()
        let ran = DispatchSemaphore(value: 0)
        for _ in 0..<3 { pool.submit { ran.signal() } }
        for _ in 0..<3 { #expect(ran.wait(timeout: .now() + 5) == .success) }
        #expect(pool.threadCount > 0)
        pool.shutdown()
        let deadline = Date().addingTimeInterval(10)
        while pool.threadCount > 0, Date() < deadline { usleep(10_000) }
        #expect(pool.threadCount == 0, "\(pool.threadCount) threads left after shutdown")
        pool.submit { ran.signal() }
        #expect(ran.wait(timeout: .now() + 0.5) == .timedOut, "a job submitted after shutdown ran")
        #expect(pool.submitIfIdle { ran.signal() } == false)
    }
}
