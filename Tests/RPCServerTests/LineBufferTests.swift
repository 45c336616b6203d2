import Testing
import VolumeProtocol

/// The framer's buffer is what the server's partial-line budget counts
/// (issue 12, item 11): it must not keep what a long line took, nor grow
/// to twice the longest line.
@Suite("Line buffer accounting")
struct LineBufferTests {
    @Test func longLineCapacityIsGivenBackOnceComplete() {
        var f = LineFramer(maxLineLength: 1 << 20)
        _ = f.feed([UInt8](repeating: 0x61, count: 10))  // a partial line starts the buffer
        for _ in 0..<15 { _ = f.feed([UInt8](repeating: 0x61, count: 64 * 1024)) }
        #expect(f.reservedByteCount >= 15 * 64 * 1024)
        #expect(f.feed([0x0A]).count == 1)
        #expect(f.reservedByteCount == 0)
        // A short rest after a long line keeps a small buffer, not the long one's.
        _ = f.feed([UInt8](repeating: 0x62, count: 10))
        for _ in 0..<15 { _ = f.feed([UInt8](repeating: 0x62, count: 64 * 1024)) }
        _ = f.feed([0x0A, 0x63, 0x64])
        #expect(f.pendingByteCount == 2)
        #expect(f.reservedByteCount < 64 * 1024)
    }

    @Test func bufferNeverGrowsPastTheLongestLine() {
        let max = 1 << 20
        var f = LineFramer(maxLineLength: max)
        _ = f.feed([0x61])
        var sent = 1
        while sent + 64 * 1024 <= max {
            #expect(f.feed([UInt8](repeating: 0x61, count: 64 * 1024)).isEmpty)
            sent += 64 * 1024
        }
        #expect(f.reservedByteCount <= max + 64 * 1024, "\(f.reservedByteCount) bytes reserved for a \(sent)-byte line")
    }
}
