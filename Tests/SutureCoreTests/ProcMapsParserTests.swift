import Testing
@testable import SutureCore

/// `/proc/PID/maps` lines, including the awkward ones.
@Suite struct ProcMapsParserTests {
    @Test func ordinaryFileMapping() throws {
        let entries = ProcMapsParser.parse(
            "7f3c1a000000-7f3c1a028000 r--p 00000000 fd:01 1311                       /usr/lib/x86_64-linux-gnu/libc.so.6\n")
        let entry = try #require(entries.first)
        #expect(entries.count == 1)
        #expect(entry.start == 0x7f3c1a000000)
        #expect(entry.end == 0x7f3c1a028000)
        #expect(entry.permissions == "r--p")
        #expect(entry.offset == 0)
        #expect(entry.deviceMajor == 0xfd && entry.deviceMinor == 1)
        #expect(entry.device == "fd:01")
        #expect(entry.inode == 1311)
        #expect(entry.pathname == "/usr/lib/x86_64-linux-gnu/libc.so.6")
        #expect(!entry.deleted)
        #expect(entry.kind == .file)
        #expect(entry.isReadable && !entry.isExecutable)
        #expect(entry.mapFilesName == "7f3c1a000000-7f3c1a028000")
    }

    @Test func pathWithSpacesAndDeleted() throws {
        let text = """
        55d0c8a00000-55d0c8a01000 r-xp 00001000 08:02 262147                     /opt/my app/bin/server (deleted)
        55d0c8a01000-55d0c8a02000 r--p 00002000 08:02 262148                     /opt/my app/bin/two  spaces
        55d0c8a02000-55d0c8a03000 r--p 00002000 08:02 262149                     /tmp/file (deleted) (deleted)
        """
        let entries = ProcMapsParser.parse(text)
        #expect(entries.count == 3)
        #expect(entries[0].pathname == "/opt/my app/bin/server")
        #expect(entries[0].deleted)
        #expect(entries[0].isExecutable)
        #expect(entries[0].offset == 0x1000)
        #expect(entries[1].pathname == "/opt/my app/bin/two  spaces")
        #expect(!entries[1].deleted)
        // Only the last " (deleted)" is the kernel's.
        #expect(entries[2].pathname == "/tmp/file (deleted)")
        #expect(entries[2].deleted)
    }

    @Test func specialMappings() {
        let text = """
        55d0c9000000-55d0c9021000 rw-p 00000000 00:00 0                          [heap]
        7ffd4b2e0000-7ffd4b301000 rw-p 00000000 00:00 0                          [stack]
        7ffd4b3f2000-7ffd4b3f6000 r--p 00000000 00:00 0                          [vvar]
        7ffd4b3f6000-7ffd4b3f8000 r-xp 00000000 00:00 0                          [vdso]
        ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
        7f0000000000-7f0000001000 rw-p 00000000 00:00 0                          [anon:glibc malloc arena]
        7f0000001000-7f0000002000 rw-s 00000000 00:01 2050                       [anon_shmem:ring]
        7f0000002000-7f0000003000 rw-p 00000000 00:00 0
        7f0000003000-7f0000004000 r-xs 00000000 00:01 4711                       /memfd:suture:5f0c2c1e-9a8b-4c1d-8e2f-0a1b2c3d4e5f (deleted)
        7f0000004000-7f0000005000 rw-s 00000000 00:01 4712                       /memfd: odd name (deleted)
        7f0000005000-7f0000006000 r--p 00000000 00:00 0                          [uprobes]
        7f0000006000-7f0000007000 rw-s 00000000 00:0e 13                         anon_inode:[perf_event]
        7ffd4b2d0000-7ffd4b2e0000 rw-p 00000000 00:00 0                          [stack:1234]
        """
        let kinds = ProcMapsParser.parse(text).map(\.kind)
        #expect(kinds == [
            .heap, .stack, .vvar, .vdso, .vsyscall,
            .namedAnonymous(name: "glibc malloc arena"), .namedAnonymous(name: "ring"), .anonymous,
            .memfd(name: "suture:5f0c2c1e-9a8b-4c1d-8e2f-0a1b2c3d4e5f"), .memfd(name: " odd name"),
            .special(name: "uprobes"), .other, .stack,
        ])
        let entries = ProcMapsParser.parse(text)
        #expect(entries[4].start == 0xffffffffff600000)
        #expect(entries[4].permissions == "--xp")
        #expect(entries[7].pathname.isEmpty && entries[7].inode == 0)
        #expect(entries[8].deleted)
        #expect(entries[8].deviceMajor == 0 && entries[8].deviceMinor == 1)
        #expect(entries[11].device == "00:0e")
    }

    @Test func largeNumbersAndMinorDevices() throws {
        let entries = ProcMapsParser.parse(
            "7fffffffe000-7ffffffff000 r--p fffffffff000 103:1f 18446744073709551615 /big\n")
        let entry = try #require(entries.first)
        #expect(entry.offset == 0xfffffffff000)
        #expect(entry.deviceMajor == 0x103 && entry.deviceMinor == 0x1f)
        #expect(entry.device == "103:1f")
        #expect(entry.inode == UInt64.max)
    }

    @Test func malformedAndTruncatedLinesAreSkipped() {
        let text = """
        garbage
        7f00-7f10 r-x
        7f00-7f10 r-xp 0000 fd:01
        7f00-7f10 r-xp 0000 fd:01 12x /bad
        7f00-7f10 r-xp 0000 fd01 12 /bad
        zz00-7f10 r-xp 0000 fd:01 12 /bad
        7f00-7f10 r-xp 0000 fd:01 99999999999999999999999 /overflow

        7f00-7f10 r-xp 00000000 fd:01 12 /good
        7f10-7f20 r-xp 00000000 fd:01 13 /truncated-last-line-without-newline
        """
        let entries = ProcMapsParser.parse(text)
        #expect(entries.map(\.pathname) == ["/good", "/truncated-last-line-without-newline"])
    }

    @Test func escapedNewlineStaysOnOneLine() {
        // The kernel escapes '\n' in names as the four characters \012.
        let entries = ProcMapsParser.parse("1000-2000 r--p 00000000 08:01 5   /tmp/a\\012b\n")
        #expect(entries.map(\.pathname) == ["/tmp/a\\012b"])
    }

    @Test func realMapsOfThisProcessParse() throws {
        guard case let .content(text) = LiveFS.read("/proc/self/maps") else {
            Issue.record("cannot read /proc/self/maps"); return
        }
        let entries = ProcMapsParser.parse(text)
        let lineCount = text.split(separator: "\n").count
        #expect(entries.count == lineCount)
        #expect(entries.contains { $0.kind == .stack })
        #expect(entries.contains { $0.pathname.hasSuffix("libc.so.6") })
        #expect(entries.allSatisfy { $0.start < $0.end })
    }

    @Test func rawLineHelpers() {
        let text = "1000-2000 r--p 00000000 08:01 5   /usr/sbin/demo (deleted)\n"
        var seen = 0
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            ProcMapsParser.forEachLine(UnsafeRawBufferPointer(buffer)) { line in
                seen += 1
                #expect(line.deleted)
                #expect(line.pathnameHasPrefix("/usr/"))
                #expect(!line.pathnameHasPrefix("/usr/sbin/demo-longer"))
                #expect(Array("/demo".utf8).withUnsafeBytes { line.pathnameHasSuffix($0) })
                #expect(Array("/usr/sbin/demo".utf8).withUnsafeBytes { line.pathnameEquals($0) })
                #expect(!Array("/usr/sbin/dem".utf8).withUnsafeBytes { line.pathnameEquals($0) })
            }
        }
        #expect(seen == 1)
    }

    @Test func statWithAwkwardComm() throws {
        let text = "4242 (my (odd) ) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
        let fields = try #require(ProcStat.parse(text))
        #expect(fields.comm == "my (odd) ) proc")
        #expect(fields.state == "S")
        #expect(fields.flags == 4194560)
        #expect(fields.startTime == 987654)
        #expect(!fields.isKernelThread && !fields.isZombie)
        let kthread = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 1 0 0 0 0 0\n"
        #expect(try #require(ProcStat.parse(kthread)).isKernelThread)
        let zombie = "77 (gone) Z 1 77 77 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 5000 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
        #expect(try #require(ProcStat.parse(zombie)).isZombie)
        #expect(ProcStat.parse("1 (x S 1") == nil)
        #expect(ProcStat.parse("1 (x) S 1 2") == nil)
    }

    @Test func markerNames() {
        #expect(PatchRegionMarker.memfdName(for: "5f0c2c1e-9a8b-4c1d-8e2f-0a1b2c3d4e5f") == "suture:5f0c2c1e-9a8b-4c1d-8e2f-0a1b2c3d4e5f")
        #expect(PatchRegionMarker.patchID(fromMapsPathname: "/memfd:suture:abc-1 (deleted)") == "abc-1")
        #expect(PatchRegionMarker.patchID(fromMapsPathname: "/memfd:suture:abc-1") == "abc-1")
        #expect(PatchRegionMarker.patchID(fromMapsPathname: "/memfd:suture: (deleted)") == nil)
        #expect(PatchRegionMarker.patchID(fromMapsPathname: "/memfd:suture:a b (deleted)") == nil)
        #expect(PatchRegionMarker.patchID(fromMapsPathname: "/memfd:other (deleted)") == nil)
        #expect(!PatchRegionMarker.isValidID(String(repeating: "a", count: 65)))
    }
}
