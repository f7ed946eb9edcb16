import Foundation
import SutureBuild
import SutureCore
import SutureTestSupport
import Testing

@Suite struct KernelBundleBuilderTests {
    static let fixture = TestSupport.fixtures.appendingPathComponent("bundles/kernel-livepatch-sample")
    static let module = fixture.appendingPathComponent("livepatch_sample.ko")

    @Test func buildsBundleFromRealLivepatchModule() throws {
        let tmp = try TestSupport.temporaryDirectory("kernel-bundle")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = tmp.appendingPathComponent("klp")
        let bundle = try KernelBundleBuilder.build(
            .init(module: Self.module, name: "KLP-cmdline", uuid: "9b8e7d6c-5a4b-4c3d-8e2f-1a0b9c8d7e6f",
                  description: "Sample livepatch replacing cmdline_proc_show", replace: true,
                  patches: [Self.fixture.appendingPathComponent("livepatch-sample.patch")]),
            to: out)
        let m = bundle.metadata
        #expect(m.kind == .kernel)
        #expect(m.target.package == "kernel")
        #expect(m.target.version.hasSuffix("-amd64"))
        #expect(m.target.arch == "x86_64")
        let e = try #require(m.entities.first)
        #expect(e.targetPath == "vmlinux")
        #expect(e.moduleName == "livepatch_sample")
        #expect(e.replace == true)
        #expect(e.payload == "livepatch_sample.ko")
        #expect(e.payloadSHA256 == BundleDigest.sha256(of: try Data(contentsOf: Self.module)))
        // Identical to the fixture the shell script wrote: same metadata, same files, same digest.
        let fixture = try BundleReader.read(directory: Self.fixture)
        #expect(m == fixture.metadata)
        #expect(bundle.digest == fixture.digest)
        #expect(try BundleReader.read(directory: out).digest == bundle.digest)
    }

    @Test func defaultsComeFromModinfo() throws {
        let (m, info) = try KernelBundleBuilder.metadata(for: .init(module: Self.module))
        #expect(m.name == "livepatch_sample")
        #expect(BundleReader.isUUID(m.uuid))
        #expect(m.entities.first?.replace == false)
        #expect(m.entities.first?.targetPath == "vmlinux")
        #expect(m.target.version == info.kernelRelease)
        #expect(m.patches.isEmpty)
    }

    @Test func targetModuleInferredFromKlpRelaSections() throws {
        let tmp = try TestSupport.temporaryDirectory("kernel-bundle-mod")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let source = tmp.appendingPathComponent("m.c")
        try """
            static const char a[] __attribute__((section(".modinfo"), used, aligned(1))) = "livepatch=Y";
            static const char b[] __attribute__((section(".modinfo"), used, aligned(1))) = "name=klp_nfct";
            static const char c[] __attribute__((section(".modinfo"), used, aligned(1))) = "vermagic=6.1.0-57-amd64 SMP ";
            static const char k[] __attribute__((section(".klp.rela.nf_conntrack..text"), used)) = "x";
            """.write(to: source, atomically: true, encoding: .utf8)
        let object = tmp.appendingPathComponent("klp_nfct.ko")
        let gcc = Process()
        gcc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gcc.arguments = ["gcc", "-c", "-o", object.path, source.path]
        try gcc.run()
        gcc.waitUntilExit()
        try #require(gcc.terminationStatus == 0)
        let (m, _) = try KernelBundleBuilder.metadata(for: .init(module: object))
        #expect(m.entities.first?.targetPath == "nf_conntrack")
        #expect(m.entities.first?.moduleName == "klp_nfct")
        // An explicit target the module does not relocate against is refused.
        let error = try #require(throws: DiagnosticError.self) {
            try KernelBundleBuilder.metadata(for: .init(module: object, targetObject: "ext4"))
        }
        #expect(error.description.contains("'ext4' is not among the objects"))
    }

    @Test func refusesNonLivepatchModule() throws {
        let tmp = try TestSupport.temporaryDirectory("kernel-bundle-bad")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let source = tmp.appendingPathComponent("m.c")
        try """
            static const char a[] __attribute__((section(".modinfo"), used, aligned(1))) = "license=GPL";
            int f(void) { return 0; }
            """.write(to: source, atomically: true, encoding: .utf8)
        let object = tmp.appendingPathComponent("plain.ko")
        let gcc = Process()
        gcc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gcc.arguments = ["gcc", "-c", "-o", object.path, source.path]
        try gcc.run()
        gcc.waitUntilExit()
        try #require(gcc.terminationStatus == 0)
        let error = try #require(throws: DiagnosticError.self) {
            try KernelBundleBuilder.build(.init(module: object), to: tmp.appendingPathComponent("out"))
        }
        #expect(error.description.contains("not a livepatch module"))
        #expect(!FileManager.default.fileExists(atPath: tmp.appendingPathComponent("out").path))
    }
}
