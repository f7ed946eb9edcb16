import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import SutureCore
import SuturePatching
import SutureTestSupport

/// The real `LinuxKernelInterface` and readers on recorded 6.1 trees and on this host.
@Suite struct KernelInterfaceTests {
    static var fixtures: URL { TestSupport.fixtures.appendingPathComponent("kernel-6.1") }

    @Test func blockersOfTheRecordedHeldTransition() throws {
        let kernel = LinuxKernelInterface(root: Self.fixtures.appendingPathComponent("transition-held").path)
        #expect(try kernel.read("/sys/kernel/livepatch/livepatch_kvmlp_busy/transition") == "1\n")
        let blockers = TransitionBlockerReader.read(kernel, target: 1)
        #expect(blockers.count == 1)
        let b = try #require(blockers.first)
        #expect(b.pid == 702 && b.tid == 702)
        #expect(b.comm == "kvmlp_busy")
        #expect(b.patchState == 0)
        #expect(b.stack.contains("[<0>] kvmlp_busy_sleep+0x1a/0x30 [kvmlp_busy]"))
    }

    @Test func blockersOfTheRecordedReverseTransition() throws {
        let kernel = LinuxKernelInterface(root: Self.fixtures.appendingPathComponent("reverse-in-progress").path)
        #expect(try kernel.read("/sys/kernel/livepatch/livepatch_kvmlp_busy/enabled") == "0\n")
        // Reversing toward unpatched (0): the tasks still at 1 block; pid 1 and the kthread are at 0.
        let blockers = TransitionBlockerReader.read(kernel, target: 0)
        #expect(blockers.count == 44)
        #expect(!blockers.contains { $0.pid == 1 || $0.pid == 702 })
        #expect(blockers.allSatisfy { $0.patchState == 1 && !$0.comm.isEmpty })
    }

    @Test func noBlockersWhenSettled() throws {
        let kernel = LinuxKernelInterface(root: Self.fixtures.appendingPathComponent("enabled-settled").path)
        #expect(TransitionBlockerReader.read(kernel, target: 1).isEmpty)
        #expect(kernel.exists("/sys/kernel/livepatch/livepatch_kvmlp"))
        #expect(try kernel.list("/sys/kernel/livepatch") == ["livepatch_kvmlp"])
        #expect(try kernel.read("/sys/module/livepatch_kvmlp/taint") == "OEK\n")
    }

    @Test func readWriteListUnderARoot() throws {
        let dir = try TestSupport.temporaryDirectory("suture-kif")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("sys/x"), withIntermediateDirectories: true)
        try "0\n".write(to: dir.appendingPathComponent("sys/x/enabled"), atomically: true, encoding: .utf8)
        let kernel = LinuxKernelInterface(root: dir.path + "/")
        try kernel.write("/sys/x/enabled", "1")
        // like sysfs, the write is one write(2) at offset 0 without O_TRUNC
        #expect(try kernel.read("/sys/x/enabled") == "1\n")
        #expect(try kernel.list("/sys/x") == ["enabled"])
        #expect(kernel.exists("/sys/x/enabled"))
        #expect(!kernel.exists("/sys/x/transition"))
        let err = #expect(throws: KernelCallError.self) { try kernel.read("/sys/x/transition") }
        #expect(err?.errno == ENOENT)
        #expect(err?.errnoName == "ENOENT")
        #expect(err?.description.contains("/sys/x/transition") == true)
    }

    @Test func liveProcfsOfThisHost() throws {
        let kernel = LinuxKernelInterface()
        let release = try #require(kernel.readTrimmed("/proc/sys/kernel/osrelease"))
        var u = utsname()
        uname(&u)
        let uts = withUnsafePointer(to: u.release) { $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) } }
        #expect(release == uts)
        // our own task has a patch_state file only on CONFIG_LIVEPATCH kernels; comm is always there
        #expect(try kernel.read("/proc/self/comm").isEmpty == false)
    }

    @Test func realSyscallsReportErrno() throws {
        let kernel = LinuxKernelInterface()
        // No module of that name exists: ENOENT (EPERM without CAP_SYS_MODULE, ENOSYS on a kernel built
        // without module support, like this CI host's).
        let e1 = #expect(throws: KernelCallError.self) { try kernel.unloadModule(named: "suture_no_such_module_x") }
        #expect([ENOENT, EPERM, ENOSYS].contains(e1?.errno ?? 0))
        #expect(e1?.operation == "delete_module")
        // A relocatable object that is not a module: the kernel refuses it (ENOEXEC/EINVAL/EPERM/ENOSYS…).
        let dir = try TestSupport.temporaryDirectory("suture-kif")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (b, e) = try TestModules.bundle(in: dir, name: "not_a_module", livepatch: false)
        let path = SysfsKernelPatchDriver.modulePath(bundle: b, entity: e)
        let e2 = #expect(throws: KernelCallError.self) { try kernel.loadModule(atPath: path, parameters: "") }
        #expect(e2?.operation == "finit_module")
        #expect(e2.map { $0.errno != 0 } == true)
        let e3 = #expect(throws: KernelCallError.self) { try kernel.loadModule(atPath: dir.path + "/missing.ko", parameters: "") }
        #expect(e3?.operation == "open" && e3?.errno == ENOENT)
    }
}

@Suite struct ModuleFileTests {
    @Test func readsModinfoOfAGccBuiltObject() throws {
        let dir = try TestSupport.temporaryDirectory("suture-modinfo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (b, e) = try TestModules.bundle(in: dir, name: "livepatch_m")
        let file = try ModuleFile.read(path: SysfsKernelPatchDriver.modulePath(bundle: b, entity: e))
        #expect(file.name == "livepatch_m")
        #expect(file.vermagic == TestModules.vermagic)
        #expect(file.kernelRelease == "6.1.0-57-amd64")
        #expect(file.isLivepatch)
        #expect(file.value("license") == "GPL")
        #expect(!file.signed)
    }

    @Test func detectsTheSignatureTrailer() throws {
        let dir = try TestSupport.temporaryDirectory("suture-modinfo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (b, e) = try TestModules.bundle(in: dir, name: "livepatch_s", signed: true)
        let file = try ModuleFile.read(path: SysfsKernelPatchDriver.modulePath(bundle: b, entity: e))
        #expect(file.signed)
        #expect(file.name == "livepatch_s")
    }

    @Test func rejectsFilesWithoutModinfo() throws {
        let dir = try TestSupport.temporaryDirectory("suture-modinfo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let junk = dir.appendingPathComponent("junk.ko")
        try Data("not an elf file at all".utf8).write(to: junk)
        let e1 = #expect(throws: ModuleFileError.self) { try ModuleFile.read(path: junk.path) }
        #expect(e1?.message.contains("ELF") == true)
        let e2 = #expect(throws: ModuleFileError.self) { try ModuleFile.read(path: "/bin/sh") }
        #expect(e2?.message.contains(".modinfo") == true)
        #expect(throws: ModuleFileError.self) { try ModuleFile.read(path: dir.path + "/missing.ko") }
    }

    @Test func parsesPaddedModinfo() {
        let bytes = Array("vermagic=6.1 SMP \0\0\0name=x\0garbage\0depends=\0".utf8)
        let entries = ModuleFile.parseModinfo(bytes)
        #expect(entries == [ModinfoEntry(key: "vermagic", value: "6.1 SMP "), ModinfoEntry(key: "name", value: "x"),
                            ModinfoEntry(key: "depends", value: "")])
    }

    @Test func vermagicDecision() {
        let v = "Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3"
        #expect(VermagicCheck.problem(vermagic: "6.1.0-57-amd64 SMP preempt mod_unload modversions ",
                                      osrelease: "6.1.0-57-amd64", procVersion: v) == nil)
        #expect(VermagicCheck.problem(vermagic: "6.1.0-58-amd64 SMP preempt mod_unload modversions ",
                                      osrelease: "6.1.0-57-amd64", procVersion: v)?.contains("6.1.0-58-amd64") == true)
        #expect(VermagicCheck.problem(vermagic: "6.1.0-57-amd64 preempt mod_unload ",
                                      osrelease: "6.1.0-57-amd64", procVersion: v) != nil)
        #expect(VermagicCheck.problem(vermagic: "6.1.0-57-amd64 preempt mod_unload ",
                                      osrelease: "6.1.0-57-amd64", procVersion: nil) == nil)
        #expect(VermagicCheck.problem(vermagic: "  ", osrelease: "6.1.0-57-amd64", procVersion: nil) != nil)
    }

    @Test func environmentOverridesOptions() {
        let o = KernelDriverOptions().overridden(by: ["SUTURE_KERNEL_HARD_DEADLINE": "3", "SUTURE_KERNEL_SOFT_DEADLINE": "1.5",
                                                      "SUTURE_KERNEL_POLL": "x", "SUTURE_KERNEL_BUSY_RETRIES": "2"])
        #expect(o.hardDeadline == 3)
        #expect(o.softDeadline == 1.5)
        #expect(o.pollInterval == 0.1)
        #expect(o.busyRetries == 2)
        #expect(o.forceTransition == false)
    }
}
