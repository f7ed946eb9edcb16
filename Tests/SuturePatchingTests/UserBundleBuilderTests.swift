import Foundation
import Testing
import SutureCore
import SutureELF
import SutureTestSupport
@testable import SutureBuild

/// `UserBundleBuilder` (what `suture bundle create --kind user` records and refuses) on gcc-built targets.
@Suite struct UserBundleBuilderTests {
    static let targetSource = """
    #include <stdio.h>
    #include <unistd.h>
    int request_count = 0;
    static int scale = 3;
    static int __attribute__((noinline)) compute(int x) {
        int s = 0;
        for (int i = 0; i < x; i++) s += i * scale;
        return s;
    }
    int __attribute__((noinline)) tiny(void) { return 0; }
    __asm__(".text\\n.globl loopy\\n.type loopy,@function\\nloopy:\\n nop\\n dec %edi\\n jnz loopy+1\\n ret\\n.size loopy, .-loopy\\n");
    int loopy(int);
    int main(int argc, char **argv) {
        request_count++;
        if (argc > 5) scale = argc;
        printf("%d %d %d\\n", compute(argc + 5), tiny(), loopy(3));
        return 0;
    }
    """

    static let fixSource = """
    #include <stdio.h>
    extern int request_count;
    extern int scale;
    int compute_fixed(int x) {
        request_count++;
        printf("fixed\\n");
        return x * scale;
    }
    """

    struct Built {
        let dir: URL
        let target: String
        let object: String
        func cleanup() { try? FileManager.default.removeItem(at: dir) }
    }

    static func build(_ flags: [String], fixFlags: [String] = ["-fPIC"]) throws -> Built {
        let dir = try TestSupport.temporaryDirectory("suture-bundle-create")
        try CBuild.gcc(source: targetSource, named: "t.c", in: dir, ["-O2", "-g"] + flags + ["t.c", "-o", "target"])
        try CBuild.gcc(source: fixSource, named: "fix.c", in: dir,
                       ["-c", "-O2", "-ffunction-sections", "-fdata-sections"] + fixFlags + ["fix.c", "-o", "fix.o"])
        return Built(dir: dir, target: dir.appendingPathComponent("target").path, object: dir.appendingPathComponent("fix.o").path)
    }

    static func request(_ b: Built, _ replace: [String], symbols: String? = nil, target: String? = nil) -> UserBundleRequest {
        UserBundleRequest(target: target ?? b.target, object: b.object, replacements: replace.map(UserBundleRequest.Replacement.init),
                          name: "FIX-1", version: "1", symbols: symbols, package: "demo", packageVersion: "1.0-1",
                          output: b.dir.appendingPathComponent("bundle").path)
    }

    /// Checks one recorded function against the ELF file (via readelf-independent reads of our own reader).
    static func checkFunction(_ f: FunctionPatch, in path: String, symbol: String) throws {
        let elf = try ELFObjectFile(path: path)
        let sym = try #require(try elf.symbols(.symtab).first { $0.name == symbol })
        let base = try elf.linkBase()
        #expect(f.offset == sym.value - base)
        #expect(f.size == sym.size)
        let bytes = try elf.bytes(atVirtualAddress: sym.value, count: min(16, Int(sym.size)))
        #expect(f.expectedBytes == bytes.map { String(format: "%02x", $0) }.joined())
    }

    func recordsFunctionTargetSymbolsAndImports(flags: [String], linkBase: UInt64) throws {
        let b = try Self.build(flags)
        defer { b.cleanup() }
        let (m, payload) = try UserBundleBuilder.makeMetadata(Self.request(b, ["compute=compute_fixed"]))
        #expect(m.kind == .user && m.target.package == "demo" && m.target.version == "1.0-1")
        let e = try #require(m.entities.first)
        #expect(e.payload == payload && payload == "target.o")
        #expect(e.targetBuildID == (try ELFObjectFile(path: b.target).buildID()))
        #expect(e.targetLinkBase == linkBase)
        let f = try #require(e.functions?.first)
        #expect(f.symbol == "compute" && f.replacement == "compute_fixed")
        try Self.checkFunction(f, in: b.target, symbol: "compute")
        // request_count (global) and scale (static) resolve into the target; printf is imported.
        let elf = try ELFObjectFile(path: b.target)
        let syms = try elf.symbols(.symtab)
        let recorded = Dictionary(uniqueKeysWithValues: (e.targetSymbols ?? []).map { ($0.symbol, $0.offset) })
        #expect(recorded["request_count"] == syms.first { $0.name == "request_count" }!.value - linkBase)
        #expect(recorded["scale"] == syms.first { $0.name == "scale" }!.value - linkBase)
        #expect(e.imports == ["printf"] || e.imports == ["puts"])
    }

    @Test func pieTarget() throws { try recordsFunctionTargetSymbolsAndImports(flags: ["-fPIE", "-pie"], linkBase: 0) }

    @Test func noPieTarget() throws { try recordsFunctionTargetSymbolsAndImports(flags: ["-no-pie"], linkBase: 0x400000) }

    @Test func strippedTargetNeedsSymbolsWithTheSameBuildID() throws {
        let b = try Self.build(["-fPIE", "-pie"])
        defer { b.cleanup() }
        let stripped = b.dir.appendingPathComponent("target.stripped").path
        try CBuild.check("/usr/bin/strip", ["-o", stripped, b.target])
        #expect {
            _ = try UserBundleBuilder.makeMetadata(Self.request(b, ["compute=compute_fixed"], target: stripped))
        } throws: { ($0 as! UserBundleError).message.contains("stripped") }
        let (m, _) = try UserBundleBuilder.makeMetadata(Self.request(b, ["compute=compute_fixed"], symbols: b.target, target: stripped))
        let f = try #require(m.entities.first?.functions?.first)
        try Self.checkFunction(f, in: b.target, symbol: "compute")
        #expect(m.entities.first?.targetPath == stripped)
        // A debug-only file (objcopy --only-keep-debug) works too: code bytes come from the target.
        let debug = b.dir.appendingPathComponent("target.debug").path
        try CBuild.check("/usr/bin/objcopy", ["--only-keep-debug", b.target, debug])
        let (m2, _) = try UserBundleBuilder.makeMetadata(Self.request(b, ["compute=compute_fixed"], symbols: debug, target: stripped))
        #expect(m2.entities.first?.functions == m.entities.first?.functions)
        // Symbols from another build are refused.
        let other = try Self.build(["-fPIE", "-pie", "-DOTHER=1", "-O1"])
        defer { other.cleanup() }
        #expect {
            _ = try UserBundleBuilder.makeMetadata(Self.request(b, ["compute=compute_fixed"], symbols: other.target, target: stripped))
        } throws: { ($0 as! UserBundleError).message.contains("build-id") }
    }

    @Test func tooShortFunctionRefused() throws {
        let b = try Self.build(["-fPIE", "-pie"])
        defer { b.cleanup() }
        // `tiny` is `xor %eax,%eax; ret` (3 bytes): a 5-byte detour would clobber the next function.
        #expect {
            _ = try UserBundleBuilder.makeMetadata(Self.request(b, ["tiny=compute_fixed"]))
        } throws: { ($0 as! UserBundleError).message.contains("shorter than") }
    }

    @Test func branchIntoTheDetourRefused() throws {
        let b = try Self.build(["-fPIE", "-pie"])
        defer { b.cleanup() }
        // `loopy` loops back to entry+1.
        #expect {
            _ = try UserBundleBuilder.makeMetadata(Self.request(b, ["loopy=compute_fixed"]))
        } throws: { e in
            let m = (e as! UserBundleError).message
            return m.contains("entry+1") && m.contains("loopy")
        }
    }

    @Test func payloadProblemsAreRefusedAtCreateTime() throws {
        let b = try Self.build(["-fPIE", "-pie"])
        defer { b.cleanup() }
        #expect {
            _ = try UserBundleBuilder.makeMetadata(Self.request(b, ["compute=no_such_function"]))
        } throws: { ($0 as! UserBundleError).message.contains("no_such_function") }
        #expect {
            _ = try UserBundleBuilder.makeMetadata(Self.request(b, ["no_such_target_fn=compute_fixed"]))
        } throws: { ($0 as! UserBundleError).message.contains("not found") }
        var r = Self.request(b, ["compute=compute_fixed"])
        r.object = b.target
        #expect(throws: UserBundleError.self) { _ = try UserBundleBuilder.makeMetadata(r) }
    }

    @Test func writesABundleThatReadsBack() throws {
        let b = try Self.build(["-fPIE", "-pie"])
        defer { b.cleanup() }
        let patch = b.dir.appendingPathComponent("fix.patch")
        try "--- a/t.c\n+++ b/t.c\n@@ -1 +1 @@\n-a\n+b\n".write(to: patch, atomically: true, encoding: .utf8)
        var r = Self.request(b, ["compute=compute_fixed"])
        r.patches = [patch.path]
        let out = try UserBundleBuilder.build(r)
        let back = try BundleReader.read(directory: out.directory)
        #expect(back.metadata == out.metadata)
        let e = try #require(back.metadata.entities.first)

        #expect(e.payloadSHA256 == BundleDigest.sha256(of: try Data(contentsOf: URL(fileURLWithPath: b.object))))
        #expect(e.targetSymbols?.map(\.symbol).sorted() == ["request_count", "scale"])
        #expect(e.targetLinkBase == 0)
        #expect(back.metadata.patches.map(\.file) == ["fix.patch"])
        // Refuses to overwrite.
        #expect(throws: UserBundleError.self) { _ = try UserBundleBuilder.build(r) }
    }

    @Test func scannerMatchesObjdumpOnRealCode() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Self.targetSource + "\n" + """
        #include <string.h>
        double mix(double *v, int n, const char *s) {
            double acc = 0;
            for (int i = 0; i < n; i++) { if (v[i] > 2.5) acc += v[i] * 1.5; else if (s[i % 7] == 'x') acc -= 3; }
            switch (n & 7) { case 1: return acc + strlen(s); case 2: return acc * 2; case 5: return -acc; default: break; }
            return acc;
        }
        """
        try CBuild.gcc(source: src, named: "m.c", in: dir, ["-O3", "-mavx2", "-c", "m.c", "-o", "m.o"])
        let path = dir.appendingPathComponent("m.o").path
        let elf = try ELFObjectFile(path: path)
        let dump = try CBuild.check("/usr/bin/objdump", ["-d", "--no-show-raw-insn", path]).stdout
        for sym in try elf.symbols(.symtab) where sym.type == ELFSymbol.typeFunction && sym.size > 0 {
            let sec = elf.sections[Int(sym.sectionIndex)]
            let code = Array(try elf.sectionData(sec.index)[Int(sym.value)..<Int(sym.value + sym.size)])
            let result = X86BranchScanner.branchTargets(in: code)
            #expect(result.decoded, "decoder gave up on \(sym.name)")
            // objdump's direct branch targets inside the same section (relocated calls show as 0).
            var expected: Set<Int64> = []
            var inFunction = false
            for line in dump.split(separator: "\n") {
                if line.hasSuffix(">:") { inFunction = line.contains("<\(sym.name)>:"); continue }
                guard inFunction else { continue }
                let parts = line.split(separator: "\t")
                guard parts.count >= 2 else { continue }
                let insn = parts[1].split(separator: " ", omittingEmptySubsequences: true)
                guard let mnem = insn.first, mnem.hasPrefix("j") || mnem.hasPrefix("call") || mnem.hasPrefix("loop"),
                      insn.count >= 2, !insn[1].hasPrefix("*"), let addr = Int64(insn[1], radix: 16) else { continue }
                expected.insert(addr - Int64(sym.value))
            }
            let ours = Set(result.targets)
            #expect(expected.isSubset(of: ours), "\(sym.name): objdump \(expected.sorted()) ours \(ours.sorted())")
        }
    }
}

