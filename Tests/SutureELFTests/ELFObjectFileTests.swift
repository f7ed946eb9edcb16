import Foundation
import Testing
import SutureTestSupport
@testable import SutureELF

/// `ELFObjectFile` on objects built by gcc, checked against binutils `readelf`.
@Suite struct ELFObjectFileTests {
    static let source = """
    #include <stdio.h>
    int counter;
    static int hidden = 3;
    extern int external_value;
    static int helper(int x) { return x + hidden; }
    int exported(int x) { counter++; printf("%d\\n", x); return helper(x) + external_value; }
    int (*table[])(int) = { exported, helper };
    """

    /// Parses `readelf -sW` output for one table into (value, size, type, bind, ndx, name).
    static func readelfSymbols(_ file: String, table: String) throws -> [(UInt64, UInt64, String, String, String, String)] {
        let out = try CBuild.check("/usr/bin/readelf", [table == ".dynsym" ? "--dyn-syms" : "-s", "-W", file]).stdout
        var rows: [(UInt64, UInt64, String, String, String, String)] = []
        var inTable = false
        for line in out.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("Symbol table") { inTable = line.contains("'\(table)'"); continue }
            guard inTable else { continue }
            let f = line.split(separator: " ", maxSplits: 7, omittingEmptySubsequences: true)
            guard f.count >= 7, f[0].hasSuffix(":"), let value = UInt64(f[1], radix: 16) else { continue }
            let size = f[2].hasPrefix("0x") ? UInt64(f[2].dropFirst(2), radix: 16)! : UInt64(f[2])!
            var name = f.count > 7 ? String(f[7]) : ""
            if let paren = name.range(of: " (") { name = String(name[..<paren.lowerBound]) }
            rows.append((value, size, String(f[3]), String(f[4]), String(f[6]), name))
        }
        return rows
    }

    static let typeNames: [UInt8: String] = [0: "NOTYPE", 1: "OBJECT", 2: "FUNC", 3: "SECTION", 4: "FILE", 6: "TLS", 10: "IFUNC"]
    static let bindNames: [UInt8: String] = [0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "UNIQUE"]

    static func ndx(_ s: ELFSymbol) -> String {
        switch s.sectionIndex {
        case 0: return "UND"
        case 0xfff1: return "ABS"
        case 0xfff2: return "COM"
        default: return String(s.sectionIndex)
        }
    }

    @Test func symtabOfRelocatableObjectMatchesReadelf() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CBuild.gcc(source: Self.source, named: "t.c", in: dir,
                       ["-c", "-O2", "-fPIC", "-ffunction-sections", "-fdata-sections", "t.c", "-o", "t.o"])
        let path = dir.appendingPathComponent("t.o").path
        let elf = try ELFObjectFile(path: path)
        #expect(elf.fileType == ELFObjectFile.typeRelocatable)
        #expect(elf.machine == ELFObjectFile.machineX86_64)
        let ours = try elf.symbols(.symtab)
        let theirs = try Self.readelfSymbols(path, table: ".symtab")
        #expect(ours.count == theirs.count)
        for (s, r) in zip(ours, theirs) {
            #expect(s.value == r.0 && s.size == r.1, "\(s.name)")
            #expect(Self.typeNames[s.type] == r.2, "\(s.name)")
            #expect(Self.bindNames[s.binding] == r.3, "\(s.name)")
            #expect(Self.ndx(s) == r.4, "\(s.name)")
            // readelf names section symbols by their section; we leave them empty.
            if s.type != ELFSymbol.typeSection { #expect(s.name == r.5) }
        }
        let exported = try #require(ours.first { $0.name == "exported" })
        #expect(exported.type == ELFSymbol.typeFunction && exported.binding == ELFSymbol.bindGlobal)
        #expect(elf.sections[Int(exported.sectionIndex)].name == ".text.exported")
        #expect(ours.contains { $0.name == "external_value" && !$0.isDefined })
    }

    @Test func relocationsMatchReadelf() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CBuild.gcc(source: Self.source, named: "t.c", in: dir,
                       ["-c", "-O2", "-fPIC", "-ffunction-sections", "-fdata-sections", "t.c", "-o", "t.o"])
        let path = dir.appendingPathComponent("t.o").path
        let out = try CBuild.check("/usr/bin/readelf", ["-rW", path]).stdout
        var expected: [String: [(UInt64, UInt64, Int64)]] = [:]
        var current = ""
        for line in out.split(separator: "\n") {
            if line.hasPrefix("Relocation section '") {
                current = String(line.split(separator: "'")[1])
                continue
            }
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 3, let off = UInt64(f[0], radix: 16), let info = UInt64(f[1], radix: 16) else { continue }
            // Addend: the last token, after a "+" or "-".
            var addend: Int64 = 0
            if f.count >= 2, let sign = f.dropLast().last, sign == "+" || sign == "-" {
                addend = Int64(f.last!, radix: 16)! * (sign == "-" ? -1 : 1)
            } else if let v = Int64(f.last!, radix: 16), f.count == 4 {
                addend = v  // "Type  Addend" rows without a symbol
            }
            expected[current, default: []].append((off, info, addend))
        }
        let elf = try ELFObjectFile(path: path)
        let sections = try elf.relocationSections()
        #expect(Set(sections.map(\.section.name)) == Set(expected.keys))
        var types: Set<UInt32> = []
        for rs in sections {
            let exp = try #require(expected[rs.section.name])
            #expect(rs.relocations.count == exp.count, "\(rs.section.name)")
            for (r, e) in zip(rs.relocations, exp) {
                #expect(r.offset == e.0, "\(rs.section.name)")
                #expect(UInt64(r.symbolIndex) << 32 | UInt64(r.type) == e.1, "\(rs.section.name)")
                #expect(r.addend == e.2, "\(rs.section.name) +0x\(String(r.offset, radix: 16))")
                types.insert(r.type)
            }
            #expect(elf.sections[rs.targetSectionIndex].name == String(rs.section.name.dropFirst(5)))
        }
        // -fPIC code: a PLT32 call to printf and a GOT load of external_value.
        #expect(types.contains(4))
        #expect(types.contains(42) || types.contains(9))
        #expect(types.contains(1))
    }

    @Test func dynsymExportLookupOnLibcFromFileDescriptor() throws {
        let libc = "/lib/x86_64-linux-gnu/libc.so.6"
        let fd = open(libc, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let elf = try ELFObjectFile(fileDescriptor: fd, origin: libc)
        #expect(elf.fileType == ELFObjectFile.typeShared)
        let theirs = try Self.readelfSymbols(libc, table: ".dynsym")
        let ours = try elf.symbols(.dynsym)
        #expect(ours.count == theirs.count)
        // memcpy has an old hidden version (GLIBC_2.2.5) and the default one (GLIBC_2.14).
        let memcpy = try #require(try elf.exportedSymbol(named: "memcpy"))
        #expect(memcpy.isDefaultVersion)
        let defaultRow = try #require(theirs.first { $0.5.hasPrefix("memcpy@@") })
        #expect(memcpy.value == defaultRow.0)
        #expect("memcpy@@" + (memcpy.version ?? "") == defaultRow.5)
        let old = try #require(try elf.exportedSymbol(named: "memcpy", version: "GLIBC_2.2.5"))
        #expect(!old.isDefaultVersion)
        #expect(old.value == theirs.first { $0.5 == "memcpy@GLIBC_2.2.5" }?.0)
        let printf = try #require(try elf.exportedSymbol(named: "printf"))
        #expect(printf.value == theirs.first { $0.5.hasPrefix("printf@@") }?.0)
        #expect(try elf.exportedSymbol(named: "no_such_symbol_in_libc") == nil)
        #expect(try elf.buildID()?.count == 40)
        #expect(try elf.linkBase() == 0)
    }

    @Test func executableLinkBaseBuildIDAndBytes() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CBuild.gcc(source: Self.source + "\nint external_value = 1;\nint main(void) { return exported(1); }\n",
                       named: "t.c", in: dir, ["-O1", "-no-pie", "-Wl,--build-id", "t.c", "-o", "t"])
        let path = dir.appendingPathComponent("t").path
        let elf = try ELFObjectFile(path: path)
        #expect(elf.fileType == ELFObjectFile.typeExecutable)
        #expect(try elf.linkBase() == 0x400000)
        let notes = try CBuild.check("/usr/bin/readelf", ["-n", path]).stdout
        let id = try #require(try elf.buildID())
        #expect(notes.contains("Build ID: \(id)"))
        let sym = try #require(try elf.symbols(.symtab).first { $0.name == "exported" })
        let bytes = try elf.bytes(atVirtualAddress: sym.value, count: 16)
        let dump = try CBuild.check("/usr/bin/objdump", ["-d", "--start-address=0x\(String(sym.value, radix: 16))",
                                                         "--stop-address=0x\(String(sym.value + 4, radix: 16))", path]).stdout
        var objdumpBytes: [String] = []
        for line in dump.split(separator: "\n") {
            let cols = line.split(separator: "\t")
            guard cols.count >= 2, cols[0].hasSuffix(":"), cols[0].hasPrefix(" ") else { continue }
            objdumpBytes += cols[1].split(separator: " ").map(String.init)
        }
        #expect(Array(objdumpBytes.prefix(4)) == bytes.prefix(4).map { String(format: "%02x", $0) })
        #expect(throws: ELFObjectError.self) { _ = try ELFObjectFile(path: dir.appendingPathComponent("t.c").path) }
    }
}
