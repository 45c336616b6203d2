import Testing

@testable import VolumeEngine

/// `evict` with a volume reaches the sessions mounted at the volume or below it (issue 12, item 3).
@Suite("evict path match")
struct EvictionPathTests {
    @Test func matchesTheRootAndWhatIsBelowItByComponent() {
        let root = "/volumes/g/v"
        for inside in ["/volumes/g/v", "/volumes/g/v/", "/volumes/g/v/sub", "/volumes/g/v/sub/deeper", "//volumes/g//v/sub"] {
            #expect(VolumeEngine.path(inside, isWithin: root), "\(inside)")
        }
        for outside in ["/volumes/g/v2", "/volumes/g/v2/sub", "/volumes/g", "/", "/volumes/g/w", "/volumes/g/v.meta", "/volumes/gg/v"] {
            #expect(!VolumeEngine.path(outside, isWithin: root), "\(outside)")
        }
    }
}
