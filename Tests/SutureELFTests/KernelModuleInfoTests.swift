import Foundation
import SutureELF
import SutureTestSupport
import Testing

/// Runs a program and fails the test when it exits non-zero.
func runTool(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(arguments.joined(separator: " ")) failed")
}

@Suite struct KernelModuleInfoTests {
    static let realModule = TestSupport.fixtures
        .appendingPathComponent("bundles/kernel-livepatch-sample/livepatch_sample.ko")

    /// A real livepatch module built by kbuild against Debian's 6.1 headers (Tests/Fixtures/bundles/make-fixtures.sh).
    @Test func readsRealLivepatchModule() throws {
        let info = try KernelModuleModinfo.read(path: Self.realModule.path)
        #expect(info.name == "livepatch_sample")
        #expect(info.nameFromModinfo)
        #expect(info.isLivepatch)
        #expect(info.license == "GPL")
        #expect(info.depends == [])
        #expect(info.vermagic?.hasPrefix("6.1.0-") == true)
        #expect(info.vermagic?.contains("SMP") == true)
        #expect(info.kernelRelease?.hasSuffix("-amd64") == true)
        #expect(info.machine == 62)
        #expect(info.value("retpoline") == "Y")
        #expect(info.entries.contains(.init(key: "livepatch", value: "Y")))
    }

    /// A gcc-built relocatable object with a hand-made `.modinfo`: repeated keys, depends list, no `name=`.
    @Test func readsHandMadeModinfo() throws {
        let tmp = try TestSupport.temporaryDirectory("modinfo")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let source = tmp.appendingPathComponent("m.c")
        try """
            #define MI(tag, text) static const char __mi_##tag[] __attribute__((section(".modinfo"), used, aligned(1))) = text
            MI(a, "license=GPL v2");
            MI(b, "depends=libcrc32c,nf_conntrack");
            MI(c, "alias=foo");
            MI(d, "alias=bar");
            MI(e, "vermagic=6.1.0-57-amd64 SMP preempt mod_unload modversions ");
            MI(f, "livepatch=Y");
            MI(g, "flag-without-value");
            static const char klp[] __attribute__((section(".klp.rela.nf_conntrack..text.nf_ct_get"), used)) = "x";
            int f(void) { return 1; }
            """.write(to: source, atomically: true, encoding: .utf8)
        let object = tmp.appendingPathComponent("my-patch.ko")
        try runTool(["gcc", "-c", "-o", object.path, source.path])
        let info = try KernelModuleModinfo.read(path: object.path)
        #expect(info.name == "my_patch")  // from the file name, '-' → '_'
        #expect(!info.nameFromModinfo)
        #expect(info.license == "GPL v2")
        #expect(info.depends == ["libcrc32c", "nf_conntrack"])
        #expect(info.entries.filter { $0.key == "alias" }.map(\.value) == ["foo", "bar"])
        #expect(info.value("flag-without-value") == "")
        #expect(info.isLivepatch)
        #expect(info.kernelRelease == "6.1.0-57-amd64")
        #expect(info.klpRelocationObjects == ["nf_conntrack"])
    }

    @Test func refusesNonModules() throws {
        let tmp = try TestSupport.temporaryDirectory("modinfo-bad")
        defer { try? FileManager.default.removeItem(at: tmp) }
        // Not ELF.
        let text = tmp.appendingPathComponent("text.ko")
        try Data("hello".utf8).write(to: text)
        let e1 = try #require(throws: KernelModuleModinfo.ReadError.self) { try KernelModuleModinfo.read(path: text.path) }
        #expect(e1.description == "\(text.path): not an ELF file")
        // An executable, not ET_REL.
        let source = tmp.appendingPathComponent("main.c")
        try "int main(void) { return 0; }\n".write(to: source, atomically: true, encoding: .utf8)
        let exe = tmp.appendingPathComponent("main")
        try runTool(["gcc", "-o", exe.path, source.path])
        let e2 = try #require(throws: KernelModuleModinfo.ReadError.self) { try KernelModuleModinfo.read(path: exe.path) }
        #expect(e2.reason.contains("expected ET_REL"))
        // A relocatable object without .modinfo.
        let object = tmp.appendingPathComponent("plain.o")
        try runTool(["gcc", "-c", "-o", object.path, source.path])
        let e3 = try #require(throws: KernelModuleModinfo.ReadError.self) { try KernelModuleModinfo.read(path: object.path) }
        #expect(e3.reason.contains("no .modinfo section"))
        // Missing file.
        let e4 = try #require(throws: KernelModuleModinfo.ReadError.self) {
            try KernelModuleModinfo.read(path: tmp.appendingPathComponent("nope.ko").path)
        }
        #expect(e4.reason.contains("cannot open"))
    }

    @Test func parsesEntriesWithPadding() {
        let bytes = Array("license=GPL\0\0\0name=x\0depends=\0".utf8)
        #expect(KernelModuleModinfo.parseEntries(bytes) == [.init(key: "license", value: "GPL"),
                                                            .init(key: "name", value: "x"),
                                                            .init(key: "depends", value: "")])
    }
}
