import Foundation
import SutureCore
import SuturePatching
import SutureTestSupport

/// Builds module files for the driver tests: real ELF relocatable objects compiled by gcc with a real
/// `.modinfo` section (NUL-separated `key=value` strings, as `__MODULE_INFO` emits them), optionally
/// with the module-signature trailer appended.
enum TestModules {
    static let vermagic = "6.1.0-57-amd64 SMP preempt mod_unload modversions "

    struct BuildError: Error, CustomStringConvertible {
        var description: String
    }

    /// Compiles `<dir>/<name>.ko` and returns a bundle + entity pointing at it.
    static func bundle(in dir: URL, name: String, vermagic: String = vermagic, livepatch: Bool = true,
                       signed: Bool = false, target: String = "vmlinux", replace: Bool? = false,
                       declaredName: String? = nil) throws -> (ResolvedBundle, BundleEntity) {
        let src = dir.appendingPathComponent("\(name).c")
        var info = ["vermagic=\(vermagic)", "name=\(name)", "license=GPL", "retpoline=Y"]
        if livepatch { info.append("livepatch=Y") }
        var c = ""
        for (i, entry) in info.enumerated() {
            c += "__attribute__((section(\".modinfo\"), used, aligned(1))) static const char mi\(i)[] = \"\(entry)\";\n"
        }
        c += "int \(name)_init(void) { return 0; }\n"
        try c.write(to: src, atomically: true, encoding: .utf8)
        let ko = dir.appendingPathComponent("\(name).ko")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/gcc")
        p.arguments = ["-c", "-o", ko.path, src.path]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw BuildError(description: "gcc failed for \(name)") }
        if signed {
            let h = try FileHandle(forWritingTo: ko)
            h.seekToEndOfFile()
            h.write(Data(repeating: 0xA5, count: 64) + Data(ModuleFile.signatureMagic.utf8))
            try h.close()
        }
        let entity = BundleEntity(targetPath: target, targetBuildID: "", payload: "\(name).ko", payloadSHA256: "",
                                  moduleName: declaredName ?? name, replace: replace)
        let meta = BundleMetadata(name: "CVE-test-\(name)", version: "1", release: "1",
                                  uuid: UUID().uuidString.lowercased(), kind: .kernel, description: "test",
                                  target: BundleTarget(package: "kernel", version: "6.1.0-57-amd64", arch: "x86_64"),
                                  entities: [entity], patches: [])
        return (ResolvedBundle(metadata: meta, path: dir.path, digest: ""), entity)
    }
}

/// A driver on a fake kernel with small deadlines in virtual time, plus its recorded events.
struct DriverRig {
    let kernel: FakeKernel
    let events = EventLog()
    let driver: SysfsKernelPatchDriver
    let dir: URL

    init(kernel: FakeKernel = FakeKernel(), configure: (inout KernelDriverOptions) -> Void = { _ in }) throws {
        self.kernel = kernel
        dir = try TestSupport.temporaryDirectory("suture-kernel")
        var o = KernelDriverOptions()
        o.stateDirectory = dir.appendingPathComponent("var/lib/suture").path
        configure(&o)
        let log = events
        driver = SysfsKernelPatchDriver(kernel: kernel, clock: kernel, options: o, events: { log.record($0) })
    }

    func cleanup() { try? FileManager.default.removeItem(at: dir) }

    /// Builds a module named `name` in the rig's directory.
    func module(_ name: String, vermagic: String = TestModules.vermagic, livepatch: Bool = true, signed: Bool = false,
                target: String = "vmlinux", replace: Bool? = false, declaredName: String? = nil) throws -> (ResolvedBundle, BundleEntity) {
        let d = dir.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return try TestModules.bundle(in: d, name: name, vermagic: vermagic, livepatch: livepatch, signed: signed,
                                      target: target, replace: replace, declaredName: declaredName)
    }

    /// Writes to `enabled` the kernel refused with EINVAL (the driver must never cause one).
    var einvalWrites: [String] { kernel.refusedLog.filter { $0.hasPrefix("write") && $0.hasSuffix("EINVAL") } }
    /// Writes to any `force` attribute.
    var forceWrites: [String] { kernel.callLog.filter { $0.hasPrefix("write") && $0.contains("/force ") } }
}
