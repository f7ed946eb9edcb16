import Testing
import SutureCore
@testable import SuturePatching

/// Readback (regions and headers from maps and memory) and the existing-region check of an activation,
/// against a fake tracee.
struct RegionDecisionTests {
    let uuid = "5f0c2c1e-9a8b-4c1d-8e2f-0a1b2c3d4e5f"
    let text: UInt64 = 0x40_0000
    let region: UInt64 = 0x3fff_0000

    /// A process whose text holds `entry` at the function's site and whose region holds `header`.
    func setUp(state: PatchRegionHeader.State, entry: (PatchRegionHeader.Function) -> [UInt8])
        -> (FakeTracee, PatchRegionHeader) {
        let f = fakeFunction("work", site: text + 0x40, replacement: region + 0x1000)
        let header = PatchRegionHeader(state: state, uuid: uuid, loadBias: 0, regionSize: 0x2000, headerSize: 0x1000,
                                       buildID: "abcd", functions: [f])
        let t = FakeTracee()
        var code = [UInt8](repeating: 0x90, count: 0x1000)
        code.replaceSubrange(0x40..<0x45, with: entry(f))
        t.map(text, code, path: "/usr/bin/demo")
        var page = header.encode()
        page += [UInt8](repeating: 0, count: 0x1000 - page.count)
        t.map(region, page, perms: "r--s", path: PatchRegionMarker.mapsPathname(for: uuid) + " (deleted)")
        t.map(region + 0x1000, [UInt8](repeating: 0xc3, count: 0x1000), perms: "r-xs", path: PatchRegionMarker.mapsPathname(for: uuid) + " (deleted)")
        return (t, header)
    }

    @Test func readbackMergesTheMappingsOfOneRegionAndReadsItsHeader() throws {
        let (t, header) = setUp(state: .active, entry: { $0.detour })
        let regions = UserPatchEngine.regions(in: t, maps: t.maps)
        let r = try #require(regions.first)
        #expect(regions.count == 1)
        #expect(r.uuid == uuid && r.address == region && r.end == region + 0x2000)
        #expect(r.header == header)
        #expect(r.entriesIntact == true && r.effectiveState == .active)
    }

    @Test func anActiveRegionWhoseEntryWasRestoredReadsBackDetached() {
        let (t, _) = setUp(state: .active, entry: { $0.original })
        let r = UserPatchEngine.regions(in: t, maps: t.maps).first
        #expect(r?.entriesIntact == false && r?.effectiveState == .detached)
    }

    @Test func aPreparedRegionIsNotCheckedForDetours() {
        let (t, _) = setUp(state: .prepared, entry: { $0.original })
        let r = UserPatchEngine.regions(in: t, maps: t.maps).first
        #expect(r?.entriesIntact == nil && r?.effectiveState == .prepared)
    }

    @Test func anUnreadableHeaderHasNoState() {
        let (t, _) = setUp(state: .active, entry: { $0.detour })
        t.memory[1].bytes = [UInt8](repeating: 0, count: 0x1000)
        let r = UserPatchEngine.regions(in: t, maps: t.maps).first
        #expect(r != nil && r?.header == nil && r?.effectiveState == nil)
    }

    @Test func anActiveRegionWithItsDetoursInPlaceIsAlreadyActive() {
        let (t, header) = setUp(state: .active, entry: { $0.detour })
        #expect(ActiveRegionEntries.classify(header, in: t) == .intact)
    }

    @Test func anActiveRegionWhoseEntriesWereRestoredIsReattached() {
        let (t, header) = setUp(state: .active, entry: { $0.original })
        #expect(ActiveRegionEntries.classify(header, in: t) == .restored)
    }

    @Test func anActiveRegionWhoseEntryHoldsSomethingElseIsRefused() {
        let (t, header) = setUp(state: .active, entry: { _ in [0xcc, 0x90, 0x90, 0x90, 0x90] })
        #expect(ActiveRegionEntries.classify(header, in: t) == .foreign(header.functions[0]))
    }
}
