import Foundation
import Histogram
import JSONValue

/// Percentiles of a latency histogram (values in ns).
struct LatencySummary: Sendable {
    var count: Int
    var p50: UInt64
    var p99: UInt64
    var max: UInt64
    var mean: Double

    init(_ h: Histogram<UInt64>) {
        count = Int(h.totalCount)
        p50 = h.valueAtPercentile(50)
        p99 = h.valueAtPercentile(99)
        max = h.maxRecorded
        mean = h.mean
    }

    /// Exact summary of a few samples (the Ceph workloads record tens, not
    /// thousands, of values); percentiles by nearest rank.
    init(samples: [UInt64]) {
        var h = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
        for s in samples { _ = h.record(s) }
        self.init(h)
        let sorted = samples.sorted()
        if !sorted.isEmpty {
            func rank(_ p: Double) -> UInt64 { sorted[Swift.max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1)] }
            p50 = rank(50)
            p99 = rank(99)
            max = sorted.last!
            mean = Double(sorted.reduce(0, +)) / Double(sorted.count)
        }
    }

    /// `p50 / p99 / max` in µs or ms.
    func text(ms: Bool = false) -> String {
        guard count > 0 else { return "-" }
        return [p50, p99, max].map { fmtTime($0, ms: ms) }.joined(separator: " / ")
    }

    var json: JSONValue {
        [
            "count": .int(count),
            "p50_us": num(Double(p50) / 1000), "p99_us": num(Double(p99) / 1000),
            "max_us": num(Double(max) / 1000), "mean_us": num(mean / 1000),
        ]
    }
}

func fmtTime(_ ns: UInt64, ms: Bool) -> String {
    ms ? String(format: "%.1f", Double(ns) / 1e6) : String(format: "%.1f", Double(ns) / 1e3)
}

func fmt(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }

func fmtRate(_ v: Double) -> String {
    v >= 1000 ? String(format: "%.0f", v) : String(format: "%.1f", v)
}

/// A JSON number rounded to 4 significant decimals, null when not finite.
func num(_ v: Double) -> JSONValue {
    guard v.isFinite else { return .null }
    let r = (v * 1000).rounded() / 1000
    return .number(JSONNumber(r))
}

/// One target of the issue, checked.
struct Target: Sendable {
    let key: String
    let description: String
    let measured: Double
    let limit: Double
    let atMost: Bool

    var pass: Bool { atMost ? measured <= limit : measured >= limit }
    var verdict: String { measured.isFinite ? (pass ? "PASS" : "MISS") : "n/a" }
    var limitText: String { (atMost ? "<= " : ">= ") + fmt(limit) }

    var json: JSONValue {
        [
            "key": .string(key), "description": .string(description), "measured": num(measured),
            "limit": num(limit), "comparison": .string(atMost ? "<=" : ">="),
            "pass": measured.isFinite ? .bool(pass) : .null,
        ]
    }
}

/// The plain table: sections of rows with the daemon's figure, the
/// reference's, their ratio and the target.
struct Table {
    struct Row {
        var metric: String
        var daemon: String
        var reference: String
        var ratio: String
        var target: String
        var verdict: String
    }

    enum Line {
        case section(String)
        case row(Row)
        case note(String)
    }

    var lines: [Line] = []

    mutating func section(_ title: String) { lines.append(.section(title)) }
    mutating func note(_ text: String) { lines.append(.note(text)) }
    mutating func row(
        _ metric: String, daemon: String, reference: String = "", ratio: String = "", target: Target? = nil
    ) {
        lines.append(
            .row(
                Row(
                    metric: metric, daemon: daemon, reference: reference, ratio: ratio,
                    target: target?.limitText ?? "", verdict: target?.verdict ?? "")))
    }

    func render() -> String {
        let header = Row(metric: "metric", daemon: "cephfs-volumed", reference: "reference", ratio: "ratio", target: "target", verdict: "")
        let rows = lines.compactMap { if case .row(let r) = $0 { return r } else { return nil } } + [header]
        let w = [
            rows.map(\.metric.count).max()!, rows.map(\.daemon.count).max()!, rows.map(\.reference.count).max()!,
            rows.map(\.ratio.count).max()!, rows.map(\.target.count).max()!,
        ]
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: Swift.max(0, n - s.count)) }
        func render(_ r: Row) -> String {
            let cells = [
                pad(r.metric, w[0]), pad(r.daemon, w[1]), pad(r.reference, w[2]), pad(r.ratio, w[3]), pad(r.target, w[4]), r.verdict,
            ]
            var line = "  " + cells.joined(separator: "  ")
            while line.last == " " { line.removeLast() }
            return line
        }
        var out = [render(header), "  " + String(repeating: "-", count: w.reduce(0, +) + 2 * 5 + 4)]
        for line in lines {
            switch line {
            case .section(let t): out.append(t)
            case .row(let r): out.append(render(r))
            case .note(let n): out.append("    " + n)
            }
        }
        return out.joined(separator: "\n")
    }
}
