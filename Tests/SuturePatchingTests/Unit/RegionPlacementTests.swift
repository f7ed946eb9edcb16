import Testing
@testable import SuturePatching

/// Where the patch region goes: within rel32 reach of the whole target object, in a hole with a guard
/// page on each side, nearest below the object first, never at the bottom of the hole above the heap.
struct RegionPlacementTests {
    let page: UInt64 = 4096
    let min: UInt64 = 0x10000

    func mapping(_ start: UInt64, _ end: UInt64, _ path: String = "") -> ProcMapping {
        ProcMapping(start: start, end: end, perms: "r-xp", offset: 0, device: "00:00", inode: 0, path: path)
    }

    func choose(_ maps: [ProcMapping], target: (UInt64, UInt64), size: UInt64 = 0x3000,
                excluded: [(UInt64, UInt64)] = []) -> UInt64? {
        RegionPlacement.chooseAddress(maps: maps, target: (low: target.0, high: target.1), size: size,
                                      excluded: excluded, minAddress: min)
    }

    @Test func theTopOfTheHoleRightBelowTheObjectWins() {
        // PIE-like object at 0x5555_5555_0000 with a library far above: the hole below ends at the object.
        let obj = (UInt64(0x5555_5555_0000), UInt64(0x5555_5556_0000))
        let maps = [mapping(obj.0, obj.1, "/usr/bin/demo"), mapping(0x7f00_0000_0000, 0x7f00_0010_0000, "/lib/libc.so.6")]
        let a = choose(maps, target: obj)
        #expect(a == obj.0 - page - 0x3000)
    }

    @Test func theAddressIsPageAlignedAndKeepsAGuardPage() throws {
        let obj = (UInt64(0x40_0000), UInt64(0x40_5000))
        let maps = [mapping(0x30_0000, 0x3f_f800), mapping(obj.0, obj.1, "/usr/bin/demo")]
        let a = try #require(choose(maps, target: obj, size: 0x2000))
        #expect(a % page == 0)
        for m in maps { #expect(a + 0x2000 + page <= m.start || a >= m.end + page) }
    }

    @Test func theBottomOfTheHoleAboveTheHeapIsNotUsed() throws {
        // Non-PIE: object at 0x400000, heap right after it. The brk heap grows into the hole above it.
        let obj = (UInt64(0x40_0000), UInt64(0x40_3000))
        let heap = mapping(0x40_3000, 0x42_4000, "[heap]")
        let maps = [mapping(obj.0, obj.1, "/usr/bin/demo"), heap, mapping(0x7f00_0000_0000, 0x7f00_0001_0000)]
        let a = try #require(choose(maps, target: obj))
        #expect(a < obj.0)
        // With no room below the object, the hole above the heap is used from its top, not its bottom
        // (which would be nearer the object).
        let crowded = [mapping(min, obj.0 - 1), mapping(obj.0, obj.1, "/usr/bin/demo"), heap,
                       mapping(0x8000_0000, 0x7f00_0001_0000)]
        #expect(choose(crowded, target: obj) == 0x8000_0000 - page - 0x3000)
    }

    @Test func excludedRangesAreSkipped() throws {
        let obj = (UInt64(0x5555_5555_0000), UInt64(0x5555_5556_0000))
        let maps = [mapping(obj.0, obj.1, "/usr/bin/demo")]
        let first = try #require(choose(maps, target: obj))
        let second = try #require(choose(maps, target: obj, excluded: [(first, first + 0x3000)]))
        #expect(second != first)
        #expect(second + 0x3000 <= first || second >= first + 0x3000)
    }

    @Test func nothingOutOfRel32ReachIsChosen() {
        // The only hole is 16 TiB below the object.
        let obj = (UInt64(0x4000_0000_0000), UInt64(0x4000_0001_0000))
        let maps = [mapping(min, 0x3000_0000_0000), mapping(0x3000_0010_0000, obj.0),
                    mapping(obj.0, obj.1, "/usr/bin/demo"), mapping(obj.1, 0x7fff_ffff_f000)]
        #expect(choose([mapping(min, 0x3000_0000_0000), mapping(obj.0, obj.1, "/usr/bin/demo"),
                        mapping(obj.1, 0x7fff_ffff_f000)], target: obj) != nil)
        #expect(choose(maps, target: obj) == nil)
    }

    @Test func everyByteIsWithinReachOfAWideObject() throws {
        // A 1.5 GiB object: the region must be reachable from its far end too.
        let obj = (UInt64(0x2000_0000_0000), UInt64(0x2000_6000_0000))
        let maps = [mapping(obj.0, obj.1, "/usr/bin/big")]
        let a = try #require(choose(maps, target: obj))
        let reach: UInt64 = (1 << 31) - 1
        #expect(a + 0x3000 <= obj.0 && obj.1 - a <= reach)
    }
}
