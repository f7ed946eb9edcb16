import Foundation
import Testing
import SutureELF
import SutureTestSupport

/// `ELFRelocatableWriter` output read back by `ELFObjectFile` (libelf) and accepted by binutils.
@Suite struct ELFRelocatableWriterTests {
    static func sample() -> ELFRelocatableWriter {
        var w = ELFRelocatableWriter()
        // lea msg(%rip),%rdi ; jmp puts
        let text = w.addSection(.init(name: ".text.hello", flags: 0x6, alignment: 16,
                                      bytes: [0x48, 0x8d, 0x3d, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0]))
        let rodata = w.addSection(.init(name: ".rodata.str1.1", flags: 0x32, alignment: 1, bytes: Array("hi\0".utf8), entrySize: 1))
        let bss = w.addSection(.init(name: ".bss.counter", type: 8, flags: 0x3, alignment: 4, bytes: [], noBitsSize: 4))
        let puts = w.addSymbol(.init(name: "puts", type: 0, binding: 1, section: nil))
        w.addSymbol(.init(name: "hello", type: 2, binding: 1, section: text, value: 0, size: 12))
        w.addSymbol(.init(name: "counter", type: 1, binding: 0, section: bss, value: 0, size: 4))
        w.sections[text].relocations = [
            .init(offset: 3, type: 2, target: .section(rodata), addend: -4),
            .init(offset: 8, type: 4, target: .symbol(puts), addend: -4),
        ]
        return w
    }

    @Test func roundTripsThroughLibelf() throws {
        let bytes = Self.sample().write()
        let elf = try ELFObjectFile(bytes: bytes)
        #expect(elf.fileType == ELFObjectFile.typeRelocatable)
        #expect(elf.machine == ELFObjectFile.machineX86_64)
        #expect(elf.sections.map(\.name) == ["", ".text.hello", ".rodata.str1.1", ".bss.counter", ".rela.text.hello",
                                             ".symtab", ".strtab", ".shstrtab"])
        #expect(try elf.sectionData(2) == Array("hi\0".utf8))
        #expect(elf.sections[3].isNoBits && elf.sections[3].size == 4)
        let symbols = try elf.symbols(.symtab)
        // Null, three section symbols, the local `counter`, then the globals; sh_info = first global.
        #expect(symbols.map(\.name) == ["", "", "", "", "counter", "puts", "hello"])
        #expect(elf.section(named: ".symtab")?.info == 5)
        #expect(symbols[6].type == 2 && symbols[6].sectionIndex == 1 && symbols[6].size == 12)
        #expect(!symbols[5].isDefined)
        let rela = try elf.relocationSections()
        #expect(rela.count == 1 && rela[0].targetSectionIndex == 1)
        #expect(rela[0].relocations.map(\.symbolIndex) == [2, 5])
        #expect(rela[0].relocations.map(\.addend) == [-4, -4])
        #expect(rela[0].relocations.map(\.type) == [2, 4])
    }

    @Test func binutilsLinksIt() throws {
        let dir = try TestSupport.temporaryDirectory("suture-writer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let object = dir.appendingPathComponent("w.o")
        try Data(Self.sample().write()).write(to: object)
        try CBuild.check("/usr/bin/ld", ["-r", object.path, "-o", dir.appendingPathComponent("r.o").path])
        let dump = try CBuild.check("/usr/bin/objdump", ["-dr", object.path]).stdout
        #expect(dump.contains("R_X86_64_PC32\t.rodata.str1.1-0x4"))
        #expect(dump.contains("R_X86_64_PLT32\tputs-0x4"))
    }
}
