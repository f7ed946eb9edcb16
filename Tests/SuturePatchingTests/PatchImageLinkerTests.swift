import Foundation
import Glibc
import Testing
import SutureELF
import SutureTestSupport
@testable import SuturePatching

/// The patch-image linker on gcc-built payloads. The linked image is loaded into THIS test process next
/// to a gcc-built "target" shared object (dlopen'ed) and executed, so every relocation is checked by
/// running the code it produced, not by comparing bytes.
@Suite struct PatchImageLinkerTests {
    static let targetSource = """
    int target_global = 42;
    static int target_static_counter = 7;
    static int __attribute__((noinline)) target_helper(int x) { return x * 3 + target_static_counter; }
    int target_entry(int x) { return target_helper(x) + target_global; }
    void target_set_counter(int v) { target_static_counter = v; }
    """

    static let payloadSource = """
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    extern int target_global;
    extern int target_static_counter;
    extern int target_helper(int);
    static int local_state = 5;
    static int zeroed[4];
    static const char greeting[] = "patched %d\\n";
    static int __attribute__((noinline)) add_one(int x) { return x + 1; }
    int (*fnptrs[])(int) = { add_one, target_helper };
    int fixed_compute(int x) {
        zeroed[1] += 1;
        int r = fnptrs[0](x) + fnptrs[1](x) + target_helper(x) + target_global + target_static_counter
              + local_state + zeroed[1];
        char *buf = malloc(32);
        snprintf(buf, 32, greeting, r);
        r += (int)strlen(buf);
        free(buf);
        return r;
    }
    """

    /// A gcc-built shared object loaded into this process, standing in for the target.
    final class LoadedTarget {
        let handle: UnsafeMutableRawPointer
        /// Run-time address of the link base.
        let base: UInt64
        /// name → offset from the link base, as `suture bundle create` records them.
        let offsets: [String: UInt64]

        init(dir: URL) throws {
            try CBuild.gcc(source: PatchImageLinkerTests.targetSource, named: "target.c", in: dir,
                           ["-shared", "-fPIC", "-O1", "target.c", "-o", "libtarget.so"])
            let path = dir.appendingPathComponent("libtarget.so").path
            guard let h = dlopen(path, RTLD_NOW | RTLD_LOCAL) else { throw CBuild.Failure(description: "dlopen \(path)") }
            handle = h
            let elf = try ELFObjectFile(path: path)
            let linkBase = try elf.linkBase()
            let symbols = try elf.symbols(.symtab)
            guard let entry = dlsym(h, "target_entry"), let entrySymbol = symbols.first(where: { $0.name == "target_entry" }) else {
                throw CBuild.Failure(description: "dlsym target_entry")
            }
            base = UInt64(UInt(bitPattern: entry)) - (entrySymbol.value - linkBase)
            var o: [String: UInt64] = [:]
            for s in symbols where s.isDefined && ["target_global", "target_static_counter", "target_helper"].contains(s.name) {
                o[s.name] = s.value - linkBase
            }
            offsets = o
        }

        deinit { dlclose(handle) }

        var global: UnsafeMutablePointer<Int32> {
            UnsafeMutableRawPointer(bitPattern: UInt(base + offsets["target_global"]!))!.assumingMemoryBound(to: Int32.self)
        }
    }

    /// Resolves imports from this process (dlsym RTLD_DEFAULT).
    static func resolveHere(_ name: String) -> UInt64? {
        dlsym(nil, name).map { UInt64(UInt(bitPattern: $0)) }
    }

    /// Maps `size` bytes at a free page-aligned address near `near` (MAP_FIXED_NOREPLACE), or anywhere.
    static func mapRegion(size: UInt64, near: UInt64?) throws -> UInt64 {
        let noReplace: Int32 = 0x100000
        if let near {
            for step in 1...64 {
                let hint = (near &- UInt64(step) * 0x100_0000) & ~0xfff
                let p = mmap(UnsafeMutableRawPointer(bitPattern: UInt(hint)), Int(size), PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | noReplace, -1, 0)
                if p != MAP_FAILED, let p { return UInt64(UInt(bitPattern: p)) }
            }
            throw CBuild.Failure(description: "no free range near 0x\(String(near, radix: 16))")
        }
        let p = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard p != MAP_FAILED, let p else { throw CBuild.Failure(description: "mmap failed") }
        return UInt64(UInt(bitPattern: p))
    }

    /// Writes the image's segments into its (already mapped RW) region and applies the final protections.
    static func install(_ image: PatchImage) {
        for seg in image.segments {
            let dst = UnsafeMutableRawPointer(bitPattern: UInt(seg.address))!
            seg.bytes.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: seg.bytes.count) }
            _ = mprotect(dst, seg.bytes.count, seg.protection)
        }
    }

    static func call(_ address: UInt64, _ x: Int32) -> Int32 {
        let f = unsafeBitCast(UnsafeRawPointer(bitPattern: UInt(address))!, to: (@convention(c) (Int32) -> Int32).self)
        return f(x)
    }

    static func expected(x: Int32, global: Int32, call n: Int32) -> Int32 {
        let r0 = (x + 1) + 2 * (x * 3 + 7) + global + 7 + 5 + n
        return r0 + Int32("patched \(r0)\n".utf8.count)
    }

    static func relocationTypes(_ object: URL) throws -> Set<UInt32> {
        let elf = try ELFObjectFile(path: object.path)
        return Set(try elf.relocationSections().filter { !$0.section.name.contains("eh_frame") }
            .flatMap { $0.relocations.map(\.type) })
    }

    /// Builds the payload with `flags`, links it next to the loaded target, runs it twice.
    func linkAndRun(flags: [String], expectTypes: Set<UInt32>) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = try LoadedTarget(dir: dir)
        try CBuild.gcc(source: Self.payloadSource, named: "fix.c", in: dir, ["-c", "-O2"] + flags + ["fix.c", "-o", "fix.o"])
        let object = dir.appendingPathComponent("fix.o")
        let types = try Self.relocationTypes(object)
        #expect(expectTypes.isSubset(of: types), "relocation types present: \(types.sorted())")

        let linker = try PatchImageLinker(object: Array(try Data(contentsOf: object)), targetSymbols: target.offsets,
                                          requiredFunctions: ["fixed_compute"])
        #expect(Set(linker.imports) == ["free", "malloc", "snprintf", "strlen"])
        #expect(linker.layout.gotSlots >= 4, "every import reached through a GOT slot")
        #expect(linker.layout.textSize > 0 && linker.layout.dataSize > 0)
        #expect(linker.layout.totalSize % 4096 == 0)
        let base = try Self.mapRegion(size: linker.layout.totalSize, near: target.base)
        defer { munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), Int(linker.layout.totalSize)) }
        let image = try linker.link(base: base, targetBase: target.base, resolveImport: Self.resolveHere)
        #expect(image.size == linker.layout.totalSize)
        #expect(image.segments.first?.kind == .text && image.segments.first?.address == base)
        #expect(image.segments.allSatisfy { $0.protection & PROT_WRITE == 0 || $0.protection & PROT_EXEC == 0 })
        // The GOT (start of the data segment) holds the run-time addresses of the imports.
        let data = try #require(image.segments.first { $0.kind == .data })
        let slots = (0..<linker.layout.gotSlots).map { i in
            data.bytes[i * 8..<i * 8 + 8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        }
        #expect(slots.contains(try #require(Self.resolveHere("malloc"))))
        #expect(image.imports["strlen"] == Self.resolveHere("strlen"))
        Self.install(image)
        let fn = try #require(image.functions["fixed_compute"])
        target.global.pointee = 100
        #expect(Self.call(fn, 10) == Self.expected(x: 10, global: 100, call: 1))
        target.global.pointee = 42
        #expect(Self.call(fn, 3) == Self.expected(x: 3, global: 42, call: 2))
    }

    @Test func pic() throws {
        // PLT32 (imports via PLT stubs, target static function direct), REX_GOTPCRELX (target globals), 64.
        try linkAndRun(flags: ["-fPIC", "-ffunction-sections", "-fdata-sections"], expectTypes: [1, 4, 42])
    }

    @Test func pieDefaultWithoutFPIC() throws {
        // Debian gcc's default -fPIE: target globals by PC32.
        try linkAndRun(flags: ["-ffunction-sections", "-fdata-sections"], expectTypes: [1, 2, 4])
    }

    @Test func noPLTGivesGOTPCRELX() throws {
        try linkAndRun(flags: ["-fPIC", "-fno-plt"], expectTypes: [41, 42])
    }

    @Test func unrelaxedGOTPCREL() throws {
        try linkAndRun(flags: ["-fPIC", "-Wa,-mrelax-relocations=no"], expectTypes: [9])
    }

    static let absoluteSource = """
    static int table[4] = {10, 20, 30, 40};
    int *table_addr(void) { return table; }
    int table_at(long i) { return table[i]; }
    """

    @Test func absolute32And32SInLowMemoryAndOverflowFarAway() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CBuild.gcc(source: Self.absoluteSource, named: "abs.c", in: dir,
                       ["-c", "-O2", "-fno-pic", "-mcmodel=small", "abs.c", "-o", "abs.o"])
        let object = dir.appendingPathComponent("abs.o")
        #expect(try Self.relocationTypes(object).isSuperset(of: [10, 11]))
        let linker = try PatchImageLinker(object: Array(try Data(contentsOf: object)), targetSymbols: [:],
                                          requiredFunctions: ["table_at", "table_addr"])
        // Far away (a typical PIE/library address): the absolute 32-bit relocations cannot hold it.
        #expect {
            _ = try linker.link(base: 0x7f00_0000_0000, targetBase: 0, resolveImport: { _ in nil })
        } throws: { e in
            let e = e as! PatchLinkError
            return e.kind == .relocationOverflow && e.message.contains("R_X86_64_32") && e.message.contains("does not fit")
        }
        // Below 2 GiB it links and runs.
        let base = try Self.mapRegion(size: linker.layout.totalSize, near: 0x4000_0000)
        defer { munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), Int(linker.layout.totalSize)) }
        let image = try linker.link(base: base, targetBase: 0, resolveImport: { _ in nil })
        Self.install(image)
        let at = unsafeBitCast(UnsafeRawPointer(bitPattern: UInt(image.functions["table_at"]!))!,
                               to: (@convention(c) (Int) -> Int32).self)
        #expect(at(2) == 30 && at(3) == 40)
        let addr = unsafeBitCast(UnsafeRawPointer(bitPattern: UInt(image.functions["table_addr"]!))!,
                                 to: (@convention(c) () -> UInt).self)
        let data = try #require(image.segments.first { $0.kind == .data })
        #expect(UInt64(addr()) >= data.address && UInt64(addr()) < data.address + UInt64(data.bytes.count))
    }

    @Test func pc32OverflowWhenTheTargetIsOutOfReach() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CBuild.gcc(source: Self.payloadSource, named: "fix.c", in: dir, ["-c", "-O2", "fix.c", "-o", "fix.o"])
        let offsets: [String: UInt64] = ["target_global": 0x4010, "target_static_counter": 0x4014, "target_helper": 0x1100]
        let linker = try PatchImageLinker(object: Array(try Data(contentsOf: dir.appendingPathComponent("fix.o"))),
                                          targetSymbols: offsets, requiredFunctions: ["fixed_compute"])
        let base: UInt64 = 0x5555_0000_0000
        // 1 GiB away links; 3 GiB away must fail naming a 32-bit PC-relative relocation to a target symbol.
        _ = try linker.link(base: base, targetBase: base + 0x4000_0000, resolveImport: { _ in 0x7f00_0000_1000 })
        #expect {
            _ = try linker.link(base: base, targetBase: base + 0xC000_0000, resolveImport: { _ in 0x7f00_0000_1000 })
        } throws: { e in
            let e = e as! PatchLinkError
            return e.kind == .relocationOverflow && e.message.contains("target_") &&
                (e.message.contains("R_X86_64_PC32") || e.message.contains("R_X86_64_PLT32"))
        }
        // Imports are never reached by rel32 from code (GOT slots hold them), so a far libc is fine.
        _ = try linker.link(base: base, targetBase: base + 0x1000_0000, resolveImport: { _ in 0x7fff_0000_0000 })
        #expect(throws: PatchLinkError.self) {
            _ = try linker.link(base: base + 1, targetBase: base, resolveImport: { _ in 1 })
        }
    }

    @Test func unresolvedImportIsNamed() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CBuild.gcc(source: Self.payloadSource, named: "fix.c", in: dir, ["-c", "-O2", "-fPIC", "fix.c", "-o", "fix.o"])
        let linker = try PatchImageLinker(object: Array(try Data(contentsOf: dir.appendingPathComponent("fix.o"))),
                                          targetSymbols: [:], requiredFunctions: [])
        #expect(linker.imports.contains("target_helper"), "not a recorded target symbol, so an import")
        #expect {
            _ = try linker.link(base: 0x5555_0000_0000, targetBase: 0, resolveImport: { $0 == "malloc" ? 0x1000 : nil })
        } throws: { e in
            let e = e as! PatchLinkError
            return e.kind == .undefinedSymbol && e.message.contains("target_helper") && e.message.contains("snprintf")
        }
    }

    func refusal(_ source: String, compiler: String = "/usr/bin/gcc", flags: [String] = ["-c", "-O2", "-fPIC"],
                 required: [String] = [], kind: PatchLinkError.Kind, mentioning: String) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ext = compiler.hasSuffix("g++") ? "cc" : "c"
        try source.write(to: dir.appendingPathComponent("p.\(ext)"), atomically: true, encoding: .utf8)
        try CBuild.check(compiler, flags + ["p.\(ext)", "-o", "p.o"], in: dir)
        let bytes = Array(try Data(contentsOf: dir.appendingPathComponent("p.o")))
        #expect {
            _ = try PatchImageLinker(object: bytes, targetSymbols: [:], requiredFunctions: required)
        } throws: { e in
            let e = e as! PatchLinkError
            return e.kind == kind && e.message.contains(mentioning)
        }
    }

    /// A payload the linker refuses: its source, how it is compiled, what it must provide, the error kind
    /// and what the message names.
    struct LinkRefusal: Sendable, CustomTestStringConvertible {
        var name: String
        var source: String
        var compiler = "/usr/bin/gcc"
        var required: [String] = []
        var kind: PatchLinkError.Kind
        var mentioning: String
        var testDescription: String { name }
    }

    static let linkRefusals: [LinkRefusal] = [
        LinkRefusal(name: "TLS", source: "__thread int t; int f(void) { return ++t; }", kind: .unsupportedSection,
                    mentioning: "thread-local"),
        LinkRefusal(name: "C++ exception tables",
                    source: "int f(int x) { try { if (x) throw x; } catch (int e) { return e + 1; } return 0; }",
                    compiler: "/usr/bin/g++", kind: .unsupportedSection, mentioning: ".gcc_except_table"),
        LinkRefusal(name: "constructors",
                    source: "int v; __attribute__((constructor)) static void init(void) { v = 1; } int f(void) { return v; }",
                    kind: .unsupportedSection, mentioning: ".init_array"),
        LinkRefusal(name: "missing replacement function", source: "int f(void) { return 1; } int g;", required: ["g"],
                    kind: .missingFunction, mentioning: "g"),
    ]

    @Test(arguments: linkRefusals)
    func refuses(_ refusal: LinkRefusal) throws {
        try self.refusal(refusal.source, compiler: refusal.compiler, required: refusal.required, kind: refusal.kind,
                         mentioning: refusal.mentioning)
    }

    @Test func refusesNonRelocatableObjects() throws {
        try refusal("int f(void) { return 1; }", flags: ["-shared", "-fPIC"], kind: .invalidObject, mentioning: "ET_REL")
        #expect(throws: PatchLinkError.self) {
            _ = try PatchImageLinker(object: [0x7f, 0x45, 0x4c], targetSymbols: [:], requiredFunctions: [])
        }
    }

    @Test func commonSymbolsAndUnresolvedWeakImports() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = """
        int shared_counter;                                   /* -fcommon: SHN_COMMON */
        extern int maybe_present(void) __attribute__((weak));
        int bump(void) { return ++shared_counter + (maybe_present ? maybe_present() : 100); }
        """
        try CBuild.gcc(source: source, named: "c.c", in: dir, ["-c", "-O2", "-fPIC", "-fcommon", "c.c", "-o", "c.o"])
        let object = dir.appendingPathComponent("c.o")
        let elf = try ELFObjectFile(path: object.path)
        #expect(try elf.symbols(.symtab).contains { $0.name == "shared_counter" && $0.sectionIndex == ELFSymbol.sectionCommon })
        let linker = try PatchImageLinker(object: Array(try Data(contentsOf: object)), targetSymbols: [:], requiredFunctions: ["bump"])
        let base = try Self.mapRegion(size: linker.layout.totalSize, near: nil)
        defer { munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), Int(linker.layout.totalSize)) }
        let image = try linker.link(base: base, targetBase: 0, resolveImport: { _ in nil })
        #expect(image.imports["maybe_present"] == 0, "an unresolved weak import is 0, not an error")
        Self.install(image)
        let bump = unsafeBitCast(UnsafeRawPointer(bitPattern: UInt(image.functions["bump"]!))!, to: (@convention(c) () -> Int32).self)
        #expect(bump() == 101 && bump() == 102)
    }
}
