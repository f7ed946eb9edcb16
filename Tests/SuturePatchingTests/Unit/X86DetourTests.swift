import Testing
@testable import SuturePatching

/// The x86-64 detour rules (`jmp rel32`, `endbr64`, minimum size, branch-into-detour) that `bundle create`
/// and the engine share. Expected encodings computed by hand from the Intel SDM's `E9 cd` form.
struct X86DetourTests {
    @Test func siteAndMinimumSizeDependOnEndbr64() {
        let plain: [UInt8] = [0x55, 0x48, 0x89, 0xe5, 0x90, 0x90]
        let cet: [UInt8] = [0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x90]
        #expect(X86Detour.siteOffset(entryBytes: plain) == 0)
        #expect(X86Detour.minimumFunctionSize(entryBytes: plain) == 5)
        #expect(X86Detour.siteOffset(entryBytes: cet) == 4)
        #expect(X86Detour.minimumFunctionSize(entryBytes: cet) == 9)
        // Fewer than four bytes cannot be endbr64.
        #expect(X86Detour.siteOffset(entryBytes: [0xf3, 0x0f, 0x1e] as [UInt8]) == 0)
    }

    @Test func jumpEncodesRel32FromTheEndOfTheJump() {
        // Forward: target - (site + 5) = 0x1000 - 5 = 0xffb.
        #expect(X86Detour.jump(at: 0x40_0000, to: 0x40_1000) == [0xe9, 0xfb, 0x0f, 0x00, 0x00])
        // Backward by 0x10 from the jump's end: rel = -0x15.
        #expect(X86Detour.jump(at: 0x40_0010, to: 0x40_0000) == [0xe9, 0xeb, 0xff, 0xff, 0xff])
        // The two ends of rel32 reach, and one byte past each.
        let site: UInt64 = 0x7f00_0000_0000
        #expect(X86Detour.jump(at: site, to: site + 5 + UInt64(Int32.max)) == [0xe9, 0xff, 0xff, 0xff, 0x7f])
        #expect(X86Detour.jump(at: site, to: site + 5 + UInt64(Int32.max) + 1) == nil)
        #expect(X86Detour.jump(at: site, to: site + 5 - (1 << 31)) == [0xe9, 0x00, 0x00, 0x00, 0x80])
        #expect(X86Detour.jump(at: site, to: site + 5 - (1 << 31) - 1) == nil)
    }

    @Test func jumpTargetInvertsTheEncoding() throws {
        for (site, target) in [(UInt64(0x40_0000), UInt64(0x40_1000)), (0x7f12_3456_0000, 0x7f12_0000_1000)] {
            let bytes = try #require(X86Detour.jump(at: site, to: target))
            #expect(X86Detour.jumpTarget(bytes, at: site) == target)
        }
        #expect(X86Detour.jumpTarget([0xe8, 0, 0, 0, 0], at: 0x1000) == nil)
        #expect(X86Detour.jumpTarget([0xe9, 0, 0, 0], at: 0x1000) == nil)
    }

    @Test func onlyTheFourInteriorBytesAreForbiddenBranchTargets() {
        let site: UInt64 = 0x1000
        #expect(!X86Detour.landsInside(site, site: site))
        for a in site + 1..<site + 5 { #expect(X86Detour.landsInside(a, site: site)) }
        #expect(!X86Detour.landsInside(site + 5, site: site))
        #expect(!X86Detour.landsInside(site - 1, site: site))
    }

    @Test func detouredOrBreakpointedEntriesAreRecognised() {
        #expect(X86Detour.looksDetoured(entryBytes: [0xe9, 1, 2, 3, 4] as [UInt8]))
        #expect(X86Detour.looksDetoured(entryBytes: [0xcc, 0x90] as [UInt8]))
        #expect(X86Detour.looksDetoured(entryBytes: [0xf3, 0x0f, 0x1e, 0xfa, 0xe9, 0, 0, 0, 0] as [UInt8]))
        #expect(!X86Detour.looksDetoured(entryBytes: [0xf3, 0x0f, 0x1e, 0xfa, 0x55] as [UInt8]))
        #expect(!X86Detour.looksDetoured(entryBytes: [0x55, 0x48] as [UInt8]))
    }
}
