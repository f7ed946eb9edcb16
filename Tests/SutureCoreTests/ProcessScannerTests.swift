import Foundation
import Testing
import SutureELF
import SutureTestSupport
@testable import SutureCore

/// `ProcessScanner` against real processes started from binaries built by gcc.
@Suite struct ProcessScannerTests {
    static func program(version: Int) -> String {
        """
        #include <stdio.h>
        #include <unistd.h>
        int version(void) { return \(version); }
        int main(void) {
            printf("main=%p version=%d\\n", (void *)main, version());
            fflush(stdout);
            for (;;) pause();
        }
        """
    }

    /// The link-time address of `main` from `nm`.
    static func symbolValue(_ binary: URL, _ name: String) throws -> UInt64 {
        let out = try GCC.run("/usr/bin/nm", [binary.path])
        for line in out.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 3, fields[2] == name { return UInt64(fields[0], radix: 16)! }
        }
        throw GCC.Failure(command: ["nm"], status: 1, stderr: "\(name) not found")
    }

    /// Starts `binary`, returns it with the runtime address of main it printed.
    static func start(_ binary: URL) throws -> (TargetProcess, UInt64) {
        let process = try TargetProcess(binary)
        let line = try process.readLine()
        let hex = line.split(separator: " ")[0].dropFirst("main=0x".count)
        return (process, UInt64(hex, radix: 16)!)
    }

    func checkFoundWithBias(flags: [String], expectPIE: Bool) throws {
        let dir = try TestSupport.temporaryDirectory("scan")
        defer { try? FileManager.default.removeItem(at: dir) }
        let binary = try GCC.compile(Self.program(version: 1), name: "target", in: dir, flags: flags)
        let buildID = try #require(try ELFFile(path: binary.path).buildID())
        #expect(try ELFFile(path: binary.path).type == (expectPIE ? .sharedObject : .executable))
        let (process, mainAddress) = try Self.start(binary)
        defer { process.stop() }
        let linkMain = try Self.symbolValue(binary, "main")

        let result = ProcessScanner().scan(targets: [TargetFile(path: binary.path, buildID: buildID)], pids: [process.pid])
        #expect(result.unreadable.isEmpty)
        let found = try #require(result.processes.first)
        #expect(result.processes.count == 1)
        #expect(found.pid == process.pid)
        #expect(found.comm == "target")
        #expect(found.startTime > 0)
        let object = try #require(found.objects.first)
        #expect(found.objects.count == 1)
        #expect(object.path == binary.path)
        #expect(object.buildID == buildID)
        #expect(!object.deleted)
        #expect(object.loadBias == mainAddress - linkMain)
        if expectPIE { #expect(object.loadBias != 0) } else { #expect(object.loadBias == 0) }
        var st = stat()
        #expect(stat(binary.path, &st) == 0)
        #expect(object.inode == UInt64(st.st_ino))
        #expect(found.patches.isEmpty)

        // The same through a full scan of /proc.
        let full = ProcessScanner().scan(targets: [TargetFile(path: binary.path, buildID: buildID)])
        #expect(full.processes.filter { $0.pid == process.pid } == [found])
        #expect(full.processesExamined > 1)
    }

    @Test func findsPIEByBuildIDWithLoadBias() throws {
        try checkFoundWithBias(flags: ["-pie", "-fPIE"], expectPIE: true)
    }

    @Test func findsNonPIEWithZeroLoadBias() throws {
        try checkFoundWithBias(flags: ["-no-pie"], expectPIE: false)
    }

    @Test func replacedBinaryMatchesOnlyItsOwnBuildID() throws {
        let dir = try TestSupport.temporaryDirectory("scan-replace")
        defer { try? FileManager.default.removeItem(at: dir) }
        let binary = try GCC.compile(Self.program(version: 1), name: "server", in: dir)
        let oldID = try #require(try ELFFile(path: binary.path).buildID())
        let (old, _) = try Self.start(binary)
        defer { old.stop() }

        // Rebuild a different program and move it over the old path (a package upgrade does the same).
        let build = dir.appendingPathComponent("build")
        try FileManager.default.createDirectory(at: build, withIntermediateDirectories: true)
        let rebuilt = try GCC.compile(Self.program(version: 2), name: "server", in: build)
        let newID = try #require(try ELFFile(path: rebuilt.path).buildID())
        #expect(newID != oldID)
        #expect(rename(rebuilt.path, binary.path) == 0)

        // The new build-id on disk must not match the old process.
        let scanner = ProcessScanner()
        let byNew = scanner.scan(targets: [TargetFile(path: binary.path, buildID: newID)], pids: [old.pid])
        #expect(byNew.processes.isEmpty)
        #expect(byNew.unreadable.isEmpty)
        // The old build-id still matches it, through map_files, flagged deleted.
        let byOld = scanner.scan(targets: [TargetFile(path: binary.path, buildID: oldID)], pids: [old.pid])
        let object = try #require(byOld.processes.first?.objects.first)
        #expect(object.buildID == oldID)
        #expect(object.deleted)
        #expect(object.path == binary.path)

        // A process of the new binary matches the new id and not the old one.
        let (new, _) = try Self.start(binary)
        defer { new.stop() }
        let both = scanner.scan(targets: [TargetFile(path: binary.path, buildID: newID),
                                          TargetFile(path: binary.path, buildID: oldID)],
                                pids: [old.pid, new.pid])
        #expect(both.processes.map(\.pid) == [old.pid, new.pid].sorted())
        let byPid = Dictionary(uniqueKeysWithValues: both.processes.map { ($0.pid, $0) })
        #expect(byPid[old.pid]?.objects.map(\.buildID) == [oldID])
        #expect(byPid[new.pid]?.objects.map(\.buildID) == [newID])
        #expect(byPid[new.pid]?.objects.first?.deleted == false)
    }

    @Test func findsACopyElsewhereByBasenameAndBuildID() throws {
        // A chroot or container sees the binary under another prefix: basename + build-id still match.
        let dir = try TestSupport.temporaryDirectory("scan-copy")
        defer { try? FileManager.default.removeItem(at: dir) }
        let binary = try GCC.compile(Self.program(version: 3), name: "svc", in: dir)
        let id = try #require(try ELFFile(path: binary.path).buildID())
        let other = dir.appendingPathComponent("chroot/usr/sbin")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let copy = other.appendingPathComponent("svc")
        try FileManager.default.copyItem(at: binary, to: copy)
        let (process, _) = try Self.start(copy)
        defer { process.stop() }
        let result = ProcessScanner().scan(targets: [TargetFile(path: "/usr/sbin/svc", buildID: id)], pids: [process.pid])
        #expect(result.processes.first?.objects.first?.path == copy.path)
        // Without an expected build-id, a basename alone is not enough.
        let loose = ProcessScanner().scan(targets: [TargetFile(path: "/usr/sbin/svc")], pids: [process.pid])
        #expect(loose.processes.isEmpty)
        // An exact path without a build-id matches any build.
        let exact = ProcessScanner().scan(targets: [TargetFile(path: copy.path)], pids: [process.pid])
        #expect(exact.processes.first?.objects.first?.buildID == id)
    }

    @Test func sharedLibraryInsideAProcess() throws {
        // A library target (libc) in a running program: the bias is where libc was loaded.
        let dir = try TestSupport.temporaryDirectory("scan-lib")
        defer { try? FileManager.default.removeItem(at: dir) }
        let binary = try GCC.compile(Self.program(version: 4), name: "uses-libc", in: dir)
        let (process, _) = try Self.start(binary)
        defer { process.stop() }
        guard case let .content(maps) = LiveFS.read("/proc/\(process.pid)/maps") else { Issue.record("no maps"); return }
        let libcEntry = try #require(ProcMapsParser.parse(maps).first { $0.pathname.hasSuffix("/libc.so.6") })
        let libcID = try #require(try ELFFile(path: libcEntry.pathname).buildID())
        let result = ProcessScanner().scan(targets: [TargetFile(path: libcEntry.pathname, buildID: libcID)], pids: [process.pid])
        let object = try #require(result.processes.first?.objects.first)
        let lowest = ProcMapsParser.parse(maps).filter { $0.inode == libcEntry.inode }.map(\.start).min()!
        #expect(object.loadBias == lowest)   // libc's first PT_LOAD is at vaddr 0
    }

    @Test func markerMappingsBecomeUserPatchMarkers() throws {
        let dir = try TestSupport.temporaryDirectory("scan-marker")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = """
        #define _GNU_SOURCE
        #include <stdio.h>
        #include <sys/mman.h>
        #include <unistd.h>
        int main(void) {
            int fd = memfd_create("suture:5f0c2c1e-9a8b-4c1d-8e2f-0a1b2c3d4e5f", MFD_CLOEXEC);
            ftruncate(fd, 8192);
            char *a = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
            /* A second mapping of the same patch, an unrelated memfd and a badly named one. */
            char *b = mmap(a + 65536, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 4096);
            int other = memfd_create("something-else", MFD_CLOEXEC);
            ftruncate(other, 4096);
            mmap(NULL, 4096, PROT_READ, MAP_SHARED, other, 0);
            int bad = memfd_create("suture:not valid", MFD_CLOEXEC);
            ftruncate(bad, 4096);
            mmap(NULL, 4096, PROT_READ, MAP_SHARED, bad, 0);
            printf("a=%p b=%p\\n", (void *)a, (void *)b);
            fflush(stdout);
            for (;;) pause();
        }
        """
        let binary = try GCC.compile(source, name: "marked", in: dir)
        let process = try TargetProcess(binary)
        defer { process.stop() }
        let line = try process.readLine()
        let a = UInt64(line.split(separator: " ")[0].dropFirst("a=0x".count), radix: 16)!
        let b = UInt64(line.split(separator: " ")[1].dropFirst("b=0x".count), radix: 16)!
        let result = ProcessScanner().scan(targets: [], pids: [process.pid])
        let found = try #require(result.processes.first)
        #expect(found.objects.isEmpty)
        #expect(found.patches == [UserPatchMarker(uuid: "5f0c2c1e-9a8b-4c1d-8e2f-0a1b2c3d4e5f", address: min(a, b))])
        #expect(found.comm == "marked")
    }

    @Test func zombiesVanishedAndKernelThreadsAreSkippedSilently() throws {
        let dir = try TestSupport.temporaryDirectory("scan-zombie")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = """
        #include <stdio.h>
        #include <unistd.h>
        int main(void) {
            pid_t child = fork();
            if (child == 0) _exit(0);
            printf("%d\\n", (int)child);
            fflush(stdout);
            for (;;) pause();
        }
        """
        let binary = try GCC.compile(source, name: "zparent", in: dir)
        let parent = try TargetProcess(binary)
        defer { parent.stop() }
        let zombie = try #require(Int32(try parent.readLine()))
        #expect(waitUntil { (LiveFS.readTrimmed("/proc/\(zombie)/stat") ?? "").contains(") Z ") })
        let result = ProcessScanner().scan(targets: [TargetFile(path: binary.path)],
                                           pids: [zombie, 2, Int32.max, parent.pid])
        #expect(result.unreadable.isEmpty)
        #expect(result.processes.map(\.pid) == [parent.pid])
    }

    @Test func fakeRootWithInodeMatchAndUnreadableMaps() throws {
        // A recorded-style tree: maps names a file that exists under the root with the same device:inode;
        // map_files is absent, so the build-id is read from the file on disk.
        let root = try TestSupport.temporaryDirectory("scan-root")
        defer { try? FileManager.default.removeItem(at: root) }
        let sbin = root.appendingPathComponent("usr/sbin")
        try FileManager.default.createDirectory(at: sbin, withIntermediateDirectories: true)
        let binary = try GCC.compile(Self.program(version: 5), name: "demo", in: sbin, flags: ["-no-pie"])
        let id = try #require(try ELFFile(path: binary.path).buildID())
        var st = stat()
        #expect(stat(binary.path, &st) == 0)
        let (major, minor) = LiveFS.split(device: UInt64(st.st_dev))
        let dev = ProcMapsParser.formatDevice(major: major, minor: minor)
        let maps = """
        00400000-00401000 r--p 00000000 \(dev) \(st.st_ino)  /usr/sbin/demo
        00401000-00402000 r-xp 00001000 \(dev) \(st.st_ino)  /usr/sbin/demo
        7f0000000000-7f0000001000 r--s 00000000 00:01 77  /memfd:suture:abc (deleted)

        """
        let proc100 = root.appendingPathComponent("proc/100")
        try FileManager.default.createDirectory(at: proc100, withIntermediateDirectories: true)
        try maps.write(to: proc100.appendingPathComponent("maps"), atomically: true, encoding: .utf8)
        try "100 (de mo) S 1 100 100 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0 0\n"
            .write(to: proc100.appendingPathComponent("stat"), atomically: true, encoding: .utf8)
        // pid 200: maps cannot be read (a directory): a fact, not a failure.
        try FileManager.default.createDirectory(at: root.appendingPathComponent("proc/200/maps"), withIntermediateDirectories: true)
        // pid 300: an empty maps file (a kernel thread).
        try FileManager.default.createDirectory(at: root.appendingPathComponent("proc/300"), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: root.appendingPathComponent("proc/300/maps").path, contents: Data())
        // Not a pid.
        try FileManager.default.createDirectory(at: root.appendingPathComponent("proc/self"), withIntermediateDirectories: true)

        let result = ProcessScanner(root: root.path).scan(targets: [TargetFile(path: "/usr/sbin/demo", buildID: id)])
        #expect(result.processesExamined == 3)
        #expect(result.processes == [ProcessLiveState(
            pid: 100, comm: "de mo", startTime: 4242,
            objects: [MappedObject(path: "/usr/sbin/demo", buildID: id, device: dev, inode: UInt64(st.st_ino), loadBias: 0)],
            patches: [UserPatchMarker(uuid: "abc", address: 0x7f0000000000)])])
        #expect(result.unreadable.map(\.path) == [root.path + "/proc/200/maps"])
        #expect(result.unreadable.first?.effect.contains("pid 200") == true)
    }
}
