/// Splits a byte stream into `\n`-terminated lines, with a bound on line length.
///
/// It is a pure value: feed it bytes as they arrive, in any chunking, and take
/// complete lines out. A line longer than `maxLineLength` (without its
/// newline) is reported once as `.tooLong`; the caller answers and closes.
public struct LineFramer: Sendable {
    public enum Event: Equatable, Sendable {
        case line([UInt8])
        case tooLong
    }

    public let maxLineLength: Int
    private var buffer: [UInt8] = []
    private var scanned = 0
    private var overflowed = false

    public init(maxLineLength: Int) {
        self.maxLineLength = maxLineLength
    }

    /// Bytes held for an incomplete line.
    public var pendingByteCount: Int { buffer.count }

    /// Memory held for an incomplete line: the buffer's capacity, which is
    /// what a budget on buffered bytes must count.
    public var reservedByteCount: Int { buffer.capacity }

    /// Appends bytes and returns the events they complete, in order.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [Event] {
        if overflowed { return [] }
        // Nothing carried over: take lines straight from the input.
        if buffer.isEmpty, let events = bytes.withContiguousStorageIfAvailable({ feedDirect($0) }) { return events }
        // Doubling, but never past what the longest line needs: a line near
        // the limit would otherwise hold twice its size.
        let needed = buffer.count + bytes.count
        if needed > buffer.capacity {
            buffer.reserveCapacity(max(needed, min(buffer.capacity * 2, min(maxLineLength, Int.max / 4) + 2)))
        }
        buffer.append(contentsOf: bytes)
        var events: [Event] = []
        var lineStart = 0
        var i = scanned
        while i < buffer.count {
            if buffer[i] == 0x0A {
                var end = i
                if end > lineStart, buffer[end - 1] == 0x0D { end -= 1 }  // tolerate CRLF
                if end - lineStart > maxLineLength {
                    overflowed = true
                    buffer.removeAll()
                    events.append(.tooLong)
                    return events
                }
                events.append(.line(Array(buffer[lineStart..<end])))
                lineStart = i + 1
            }
            i += 1
        }
        if lineStart > 0 {
            // What a connection holds between lines counts against the server's budget.
            if lineStart == buffer.count {
                buffer.removeAll()
            } else if buffer.capacity > 64 * 1024, buffer.count - lineStart < buffer.capacity / 4 {
                buffer = Array(buffer[lineStart...])  // give back what a long line took
            } else {
                buffer.removeSubrange(0..<lineStart)
            }
        }
        scanned = buffer.count
        if buffer.count > maxLineLength + 1 {
            overflowed = true
            buffer.removeAll()
            events.append(.tooLong)
        }
        return events
    }

    private mutating func feedDirect(_ input: UnsafeBufferPointer<UInt8>) -> [Event] {
        var events: [Event] = []
        var lineStart = 0
        while let nl = input[lineStart...].firstIndex(of: 0x0A) {
            var end = nl
            if end > lineStart, input[end - 1] == 0x0D { end -= 1 }  // tolerate CRLF
            if end - lineStart > maxLineLength {
                overflowed = true
                events.append(.tooLong)
                return events
            }
            events.append(.line(Array(input[lineStart..<end])))
            lineStart = nl + 1
        }
        let rest = input.count - lineStart
        if rest > maxLineLength + 1 {
            overflowed = true
            events.append(.tooLong)
        } else if rest > 0 {
            buffer.append(contentsOf: input[lineStart...])
            scanned = buffer.count
        }
        return events
    }

    /// The unterminated rest at end of stream, as a line (or `.tooLong`), if any.
    public mutating func finish() -> Event? {
        defer {
            buffer.removeAll()
            scanned = 0
        }
        if buffer.isEmpty || overflowed { return nil }
        var line = buffer
        if line.last == 0x0D { line.removeLast() }
        if line.count > maxLineLength {
            overflowed = true
            return .tooLong
        }
        return .line(line)
    }
}
