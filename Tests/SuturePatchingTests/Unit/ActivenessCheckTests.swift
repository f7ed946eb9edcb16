import Testing
@testable import SuturePatching

/// The activeness check of one stopped thread against a fake tracee's registers and stack: the pc, the
/// unwound return addresses and the stack scan, and which hits single-stepping can clear (`pcOnly`).
struct ActivenessCheckTests {
    let code: UInt64 = 0x40_1000
    let stack: UInt64 = 0x7ffd_0000_0000
    var ranges: ActivenessRanges { ActivenessRanges(ranges: [(code, code + 0x40, "work")]) }

    func setUp(rip: UInt64, stackWords: [UInt64] = []) -> FakeTracee {
        let t = FakeTracee()
        t.map(code - 0x1000, [UInt8](repeating: 0x90, count: 0x3000))
        t.map(stack, [UInt8](repeating: 0, count: 0x2000), perms: "rw-p", path: "[stack]")
        t.setThread(7, rip: rip, rsp: stack + 0x1000)
        for (i, w) in stackWords.enumerated() { t.poke(w, at: stack + 0x1000 + UInt64(8 * i)) }
        return t
    }

    func hit(_ t: FakeTracee, frames: [UInt64]? = nil) throws -> ActiveThreadHit? {
        try ActivenessCheck.hit(tid: 7, tracee: t, ranges: ranges, maps: t.maps, returnAddresses: { frames })
    }

    @Test func anIdleThreadIsNotActive() throws {
        let t = setUp(rip: code + 0x100, stackWords: [code + 0x41, 0x1234])
        #expect(try hit(t, frames: [code + 0x200]) == nil)
    }

    @Test func aPcInsideTheRangeIsAPcOnlyHit() throws {
        let t = setUp(rip: code + 0x10)
        let h = try #require(try hit(t, frames: []))
        #expect(h.pcOnly && h.tid == 7)
        #expect(h.message == "thread 7 is executing work (frame #0, pc 0x\(String(code + 0x10, radix: 16)))")
    }

    @Test func aReturnAddressJustPastTheRangeCounts() throws {
        // A call as the last instruction of the function returns to the first byte after it.
        let t = setUp(rip: code + 0x100)
        let h = try #require(try hit(t, frames: [0x40_5000, code + 0x40]))
        #expect(!h.pcOnly)
        #expect(h.message.contains("will return into work (frame #2"))
    }

    @Test func theStackScanFindsACodeAddressTheUnwinderMissed() throws {
        let t = setUp(rip: code + 0x100, stackWords: [0x1111, code + 0x20])
        let h = try #require(try hit(t, frames: nil))
        #expect(!h.pcOnly)
        #expect(h.message.contains("has a code address of work on its stack at 0x\(String(stack + 0x1008, radix: 16))"))
    }

    @Test func theRedZoneBelowTheStackPointerIsScanned() throws {
        let t = setUp(rip: code + 0x100)
        t.poke(code + 0x8, at: stack + 0x1000 - 64)
        #expect(try hit(t)?.pcOnly == false)
    }

    @Test func aPcHitKeepsItsMessageWhenDeeperFramesAlsoHit() throws {
        let t = setUp(rip: code + 0x4, stackWords: [code + 0x20])
        let h = try #require(try hit(t))
        #expect(!h.pcOnly && h.message.contains("is executing work (frame #0"))
    }

    @Test func aVanishedThreadReportsExited() {
        let t = setUp(rip: code)
        t.registerSets = [:]
        #expect(throws: PtraceFailure.self) { try hit(t) }
    }
}

/// Which ranges a commit and a revert check, and which instructions step-out refuses to single-step.
struct ActivenessRangesTests {
    let f = fakeFunction("work", site: 0x40_1004, replacement: 0x3fff_1000)

    func header() -> PatchRegionHeader {
        PatchRegionHeader(state: .active, uuid: "5f0c2c1e-9a8b-4c1d-8e2f-0a1b2c3d4e5f", loadBias: 0, regionSize: 0x2000,
                          headerSize: 0x1000, buildID: "", functions: [f])
    }

    @Test func aCommitChecksTheWholeReplacedFunctions() {
        let r = ActivenessRanges.commit(header())
        #expect(r.name(of: f.entry) == "work" && r.name(of: f.entry + f.size - 1) == "work")
        #expect(r.name(of: f.entry + f.size) == nil)
    }

    @Test func aRevertChecksTheRegionAndTheDetourInteriorOnly() {
        let r = ActivenessRanges.revert(uuid: "u", regionStart: 0x3fff_0000, regionEnd: 0x3fff_2000, header: header())
        #expect(r.name(of: 0x3fff_0000) == "the patch region of u" && r.name(of: 0x3fff_1fff) == "the patch region of u")
        #expect(r.name(of: 0x3fff_2000) == nil)
        #expect(r.name(of: f.site) == nil)  // the jump itself: a whole instruction either way
        for a in f.site + 1..<f.site + 5 { #expect(r.name(of: a) == "the detour of work") }
        #expect(r.name(of: f.site + 5) == nil)
    }

    @Test(arguments: [([0x0f, 0x05], true), ([0x0f, 0x34], true), ([0xcd, 0x80], true),
                      ([0x0f, 0x1f], false), ([0xcd, 0x03], false), ([0x90, 0x05], false)] as [([UInt8], Bool)])
    func stepOutNeverStepsIntoTheKernel(opcode: [UInt8], enters: Bool) {
        #expect(EngineSession.entersKernel(opcode) == enters)
    }
}
