import Foundation
import Testing
import SutureELF
import SutureTestSupport

/// Builds real ELF files with gcc and checks `ELFFile` against binutils' `readelf`.
@Suite struct ELFFileTests {
    static let program = """
    #include <stdio.h>
    int value = 42;
    int main(void) { printf("%d\\n", value); return 0; }
    """

    /// `Build ID: <hex>` from `readelf -n`, or nil.
    static func readelfBuildID(_ path: String) throws -> String? {
        let out = try GCC.run("/usr/bin/readelf", ["-n", path])
        for line in out.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("Build ID: ") { return String(trimmed.dropFirst("Build ID: ".count)) }
        }
        return nil
    }

    /// `(type, vaddr)` of every program header from `readelf -lW`.
    static func readelfSegments(_ path: String) throws -> [(String, UInt64)] {
        let out = try GCC.run("/usr/bin/readelf", ["-lW", path])
        var result: [(String, UInt64)] = []
        var inTable = false
        for line in out.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.first == "Type" { inTable = true; continue }
            if inTable, fields.count >= 3, fields[1].hasPrefix("0x"), fields[2].hasPrefix("0x") {
                result.append((String(fields[0]), UInt64(fields[2].dropFirst(2), radix: 16)!))
            }
            if line.contains("Section to Segment mapping") { break }
        }
        return result
    }

    static func readelfType(_ path: String) throws -> String {
        let out = try GCC.run("/usr/bin/readelf", ["-hW", path])
        let line = out.split(separator: "\n").first { $0.contains("Type:") }!
        return String(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }

    static func checkAgainstReadelf(_ path: String) throws -> ELFFile {
        let elf = try ELFFile(path: path)
        #expect(try elf.buildID() == readelfBuildID(path))
        let segments = try readelfSegments(path)
        #expect(elf.programHeaders.count == segments.count)
        let loads = segments.filter { $0.0 == "LOAD" }.map(\.1)
        #expect(elf.loadSegments.map(\.vaddr) == loads)
        #expect(elf.linkBase == loads.min())
        #expect(elf.type.description == "ET_" + (try readelfType(path)))
        #expect(elf.machine == ELFFile.machineX86_64)
        #expect(elf.is64Bit)
        return elf
    }

    @Test func pieWithBuildID() throws {
        let dir = try TestSupport.temporaryDirectory("elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bin = try GCC.compile(Self.program, name: "pie", in: dir, flags: ["-pie", "-fPIE", "-Wl,--build-id=sha1"])
        let elf = try Self.checkAgainstReadelf(bin.path)
        #expect(elf.type == .sharedObject)
        #expect(elf.linkBase == 0)
        let id = try #require(try elf.buildID())
        #expect(id.count == 40)
        #expect(id == id.lowercased())
    }

    @Test func nonPIEWithBuildID() throws {
        let dir = try TestSupport.temporaryDirectory("elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bin = try GCC.compile(Self.program, name: "nopie", in: dir, flags: ["-no-pie", "-Wl,--build-id=sha1"])
        let elf = try Self.checkAgainstReadelf(bin.path)
        #expect(elf.type == .executable)
        #expect(elf.linkBase == 0x400000)
        #expect(try elf.buildID() != nil)
    }

    @Test func withoutBuildID() throws {
        let dir = try TestSupport.temporaryDirectory("elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, flags) in [("pie", ["-pie", "-fPIE"]), ("nopie", ["-no-pie"])] {
            let bin = try GCC.compile(Self.program, name: name, in: dir, flags: flags + ["-Wl,--build-id=none"])
            let elf = try Self.checkAgainstReadelf(bin.path)
            #expect(try elf.buildID() == nil)
        }
    }

    @Test func md5BuildIDHasItsOwnLength() throws {
        let dir = try TestSupport.temporaryDirectory("elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bin = try GCC.compile(Self.program, name: "md5", in: dir, flags: ["-Wl,--build-id=md5"])
        let elf = try Self.checkAgainstReadelf(bin.path)
        #expect(try elf.buildID()?.count == 32)
    }

    @Test func relocatableObjectBuildIDFromSection() throws {
        let dir = try TestSupport.temporaryDirectory("elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("obj.c")
        try Self.program.write(to: src, atomically: true, encoding: .utf8)
        let obj = dir.appendingPathComponent("obj.o").path
        let linked = dir.appendingPathComponent("linked.o").path
        try GCC.run("/usr/bin/gcc", ["-c", "-o", obj, src.path])
        try GCC.run("/usr/bin/ld", ["-r", "--build-id=sha1", "-o", linked, obj])
        let plain = try Self.checkAgainstReadelf(obj)
        #expect(plain.type == .relocatable)
        #expect(plain.programHeaders.isEmpty)
        #expect(plain.linkBase == nil)
        #expect(try plain.buildID() == nil)
        let withID = try Self.checkAgainstReadelf(linked)
        #expect(withID.type == .relocatable)
        #expect(try withID.buildID() != nil)
    }

    @Test func sharedLibraryFromSystem() throws {
        // The C library of this machine: a real distro-built ET_DYN with a build-id.
        let libc = "/lib/x86_64-linux-gnu/libc.so.6"
        try #require(FileManager.default.fileExists(atPath: libc))
        let elf = try Self.checkAgainstReadelf(libc)
        #expect(elf.type == .sharedObject)
        #expect(try elf.buildID() != nil)
    }

    @Test func openFromFileDescriptorOfDeletedFile() throws {
        let dir = try TestSupport.temporaryDirectory("elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bin = try GCC.compile(Self.program, name: "gone", in: dir)
        let expected = try Self.readelfBuildID(bin.path)
        let fd = open(bin.path, O_RDONLY)
        try #require(fd >= 0)
        try FileManager.default.removeItem(at: bin)
        let elf = try ELFFile(fileDescriptor: fd, description: "fd \(fd)", closeOnDeinit: true)
        #expect(elf.path == "fd \(fd)")
        #expect(try elf.buildID() == expected)
    }

    @Test func errorsAreTyped() throws {
        let dir = try TestSupport.temporaryDirectory("elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing").path
        #expect(throws: ELFError.cannotOpen(path: missing, errno: ENOENT)) { try ELFFile(path: missing) }
        let text = dir.appendingPathComponent("text")
        try "not an elf file at all\n".write(to: text, atomically: true, encoding: .utf8)
        #expect(throws: ELFError.notELF(path: text.path)) { try ELFFile(path: text.path) }
        let empty = dir.appendingPathComponent("empty")
        _ = FileManager.default.createFile(atPath: empty.path, contents: Data())
        #expect(throws: ELFError.self) { try ELFFile(path: empty.path) }
        let error = ELFError.cannotOpen(path: missing, errno: ENOENT)
        #expect(error.description.contains("No such file"))
        #expect(error.path == missing)
    }

    @Test func truncatedELFIsAnError() throws {
        let dir = try TestSupport.temporaryDirectory("elf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bin = try GCC.compile(Self.program, name: "whole", in: dir)
        let data = try Data(contentsOf: bin)
        let cut = dir.appendingPathComponent("cut")
        try data.prefix(40).write(to: cut)
        #expect(throws: ELFError.self) { try ELFFile(path: cut.path) }
    }
}
