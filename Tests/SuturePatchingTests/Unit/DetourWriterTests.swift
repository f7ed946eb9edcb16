import Testing
@testable import SuturePatching

/// Commit and revert decisions against a fake tracee's text: what is written, in which order, and how a
/// partial write is undone.
struct DetourWriterTests {
    let text: UInt64 = 0x40_0000
    let region: UInt64 = 0x3ff0_0000

    /// Two functions 0x100 apart in a text block holding their original bytes.
    func setUp() -> (FakeTracee, [PatchRegionHeader.Function]) {
        let t = FakeTracee()
        var bytes = [UInt8](repeating: 0x90, count: 0x200)
        let fs = [fakeFunction("a", site: text, replacement: region + 0x1000),
                  fakeFunction("b", site: text + 0x100, replacement: region + 0x1100)]
        for f in fs { bytes.replaceSubrange(Int(f.site - text)..<Int(f.site - text) + 5, with: f.original) }
        t.map(text, bytes)
        return (t, fs)
    }

    func bytes(_ t: FakeTracee, _ f: PatchRegionHeader.Function) -> [UInt8]? { t.read(5, at: f.site) }

    @Test func commitWritesEveryDetourThenMarksTheHeaderActive() {
        let (t, fs) = setUp()
        var states: [PatchRegionHeader.State] = []
        let outcome = DetourWriter.commit(fs, text: t, setState: { states.append($0); return true })
        #expect(outcome == .committed)
        #expect(fs.allSatisfy { bytes(t, $0) == $0.detour })
        #expect(t.writes.map(\.address) == [text, text + 0x100])
        #expect(states == [.active])
    }

    @Test func commitRefusesAnEntryThatChangedAndWritesNothing() {
        let (t, fs) = setUp()
        _ = t.write([0xcc], at: fs[1].site)  // a debugger breakpoint
        let before = t.writes.count
        var states: [PatchRegionHeader.State] = []
        let outcome = DetourWriter.commit(fs, text: t, setState: { states.append($0); return true })
        #expect(outcome == .foreign(fs[1], found: [0xcc, 0x48, 0x89, 0xe5, 0x90]))
        #expect(t.writes.count == before && states.isEmpty)
    }

    @Test func aFailedDetourWriteRestoresTheEarlierOnes() {
        let (t, fs) = setUp()
        t.failingWrites = [fs[1].site]
        var states: [PatchRegionHeader.State] = []
        let outcome = DetourWriter.commit(fs, text: t, setState: { states.append($0); return true })
        #expect(outcome == .detourWriteFailed(fs[1], rollbackFailed: false))
        #expect(fs.allSatisfy { bytes(t, $0) == $0.original })
        #expect(states.isEmpty)
    }

    @Test func aFailedHeaderWriteRestoresEveryDetour() {
        let (t, fs) = setUp()
        var states: [PatchRegionHeader.State] = []
        let outcome = DetourWriter.commit(fs, text: t, setState: { states.append($0); return $0 != .active })
        #expect(outcome == .headerWriteFailed(rollbackFailed: false))
        #expect(fs.allSatisfy { bytes(t, $0) == $0.original })
        // Restored in reverse order of writing.
        #expect(t.writes.map(\.address) == [text, text + 0x100, text + 0x100, text])
        #expect(states == [.active])
    }

    @Test func aFailedRollbackMarksTheRegionInconsistent() {
        let (t, fs) = setUp()
        var states: [PatchRegionHeader.State] = []
        var failHeader = true
        let outcome = DetourWriter.commit(fs, text: t, setState: { s in
            states.append(s)
            if s == .active && failHeader { failHeader = false; t.failingWrites = [fs[0].site]; return false }
            return true
        })
        #expect(outcome == .headerWriteFailed(rollbackFailed: true))
        #expect(bytes(t, fs[0]) == fs[0].detour && bytes(t, fs[1]) == fs[1].original)
        #expect(states == [.active, .inconsistent])
    }

    @Test func revertRestoresDetouredEntriesAndLeavesRestoredOnesAlone() {
        let (t, fs) = setUp()
        _ = t.write(fs[0].detour, at: fs[0].site)  // fs[1] was already put back by someone else
        let before = t.writes.count
        var states: [PatchRegionHeader.State] = []
        let outcome = DetourWriter.revert(fs, text: t, setState: { states.append($0); return true })
        #expect(outcome == .reverted)
        #expect(fs.allSatisfy { bytes(t, $0) == $0.original })
        #expect(t.writes.dropFirst(before).map(\.address) == [fs[0].site])
        #expect(states == [.prepared])
    }

    @Test func revertRefusesForeignBytesAndRestoresNothing() {
        let (t, fs) = setUp()
        for f in fs { _ = t.write(f.detour, at: f.site) }
        _ = t.write([0xe9, 0, 0, 0, 0], at: fs[1].site)  // another tool's jump
        let before = t.writes.count
        var states: [PatchRegionHeader.State] = []
        let outcome = DetourWriter.revert(fs, text: t, setState: { states.append($0); return true })
        #expect(outcome == .foreign(fs[1], found: [0xe9, 0, 0, 0, 0]))
        #expect(t.writes.count == before && states.isEmpty)
    }

    @Test(arguments: [false, true])
    func aFailedRestorePutsTheDetoursBack(reapplyFails: Bool) {
        let (t, fs) = setUp()
        for f in fs { _ = t.write(f.detour, at: f.site) }
        var states: [PatchRegionHeader.State] = []
        t.failingWrites = [fs[1].site]
        // The restore of fs[0] succeeds, fs[1] fails; then the re-apply of fs[0] (same address) fails too
        // when asked: the fake fails every write at a listed address, so list fs[0] only after its restore.
        let watcher = WriteWatcher(t, failAfterFirstAt: reapplyFails ? fs[0].site : nil)
        let outcome = DetourWriter.revert(fs, text: watcher, setState: { states.append($0); return true })
        #expect(outcome == .restoreFailed(fs[1], reapplyFailed: reapplyFails))
        #expect(bytes(t, fs[1]) == fs[1].detour)
        #expect(bytes(t, fs[0]) == (reapplyFails ? fs[0].original : fs[0].detour))
        #expect(states == (reapplyFails ? [.inconsistent] : []))
    }
}

/// Wraps a fake's text so that writes at one address fail after the first success there.
final class WriteWatcher: TraceeText {
    let inner: FakeTracee
    let address: UInt64?
    var seen = false
    init(_ inner: FakeTracee, failAfterFirstAt address: UInt64?) {
        self.inner = inner
        self.address = address
    }
    func read(_ count: Int, at address: UInt64) -> [UInt8]? { inner.read(count, at: address) }
    func write(_ bytes: [UInt8], at address: UInt64) -> Bool {
        if address == self.address {
            if seen { return false }
            seen = true
        }
        return inner.write(bytes, at: address)
    }
}
