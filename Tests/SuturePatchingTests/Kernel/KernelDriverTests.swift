import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import SutureCore
import SuturePatching

/// `SysfsKernelPatchDriver` against `FakeKernel` (virtual time: default 15 s / 60 s deadlines cost nothing).
@Suite struct KernelDriverActivateTests {
    @Test func activateLoadsAndWaitsForTheTransition() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        rig.kernel.specs["livepatch_a"] = FakePatchSpec(patchDuration: 1.0)
        let (b, e) = try rig.module("livepatch_a")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        #expect(rig.kernel.patchNames == ["livepatch_a"])
        #expect(rig.kernel.inTransition == nil)
        #expect(try rig.kernel.read("/sys/kernel/livepatch/livepatch_a/enabled") == "1\n")
        #expect(rig.kernel.callLog.filter { $0.hasPrefix("finit_module") } == ["finit_module livepatch_a"])
        // it polled until the transition was done (1 s of virtual time at 100 ms)
        #expect(rig.kernel.now() >= 1.0)
        #expect(rig.events.kinds(.transitionFinished).count == 1)
        #expect(rig.kernel.callLog.allSatisfy { !$0.hasPrefix("write") }, "activation writes nothing to sysfs")
    }

    @Test func secondActivateIsANoOp() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        let (b, e) = try rig.module("livepatch_a")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        let before = rig.kernel.callLog
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        #expect(rig.kernel.callLog == before, "no load, no write the second time")
        #expect(rig.einvalWrites.isEmpty)
    }

    /// An activation the driver refuses before touching the kernel: the module or the kernel it is given,
    /// the error kind, and what the message names.
    struct ActivationRefusal: Sendable, CustomTestStringConvertible {
        var name: String
        var module = "livepatch_a"
        var vermagic = TestModules.vermagic
        var livepatch = true
        var declaredName: String? = nil
        var ftraceEnabled: String? = nil
        var livepatchSupported = true
        var kind: KernelPatchError.Kind
        var mentions: [String] = []
        var testDescription: String { name }
    }

    static let activationRefusals: [ActivationRefusal] = [
        ActivationRefusal(name: "another kernel's module", vermagic: "6.1.0-99-amd64 SMP preempt mod_unload modversions ",
                          kind: .vermagicMismatch, mentions: ["6.1.0-99-amd64", "6.1.0-57-amd64"]),
        ActivationRefusal(name: "SMP mismatch", vermagic: "6.1.0-57-amd64 preempt mod_unload modversions ",
                          kind: .vermagicMismatch),
        ActivationRefusal(name: "ftrace disabled", ftraceEnabled: "0", kind: .unsupported, mentions: ["ftrace_enabled"]),
        ActivationRefusal(name: "no livepatch support", livepatchSupported: false, kind: .unsupported),
        ActivationRefusal(name: "not a livepatch module", module: "plain_module", livepatch: false, kind: .unsupported,
                          mentions: ["livepatch=Y"]),
        ActivationRefusal(name: "module name differs from the bundle", declaredName: "livepatch_b", kind: .unsupported),
    ]

    @Test(arguments: activationRefusals)
    func refusesBeforeTouchingAnything(_ refusal: ActivationRefusal) throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        if let value = refusal.ftraceEnabled { rig.kernel.ftraceEnabled = value }
        rig.kernel.livepatchSupported = refusal.livepatchSupported
        let (b, e) = try rig.module(refusal.module, vermagic: refusal.vermagic, livepatch: refusal.livepatch,
                                    declaredName: refusal.declaredName)
        let err = #expect(throws: KernelPatchError.self) { try rig.driver.activate(bundle: b, entity: e, onStall: .revert) }
        #expect(err?.kind == refusal.kind)
        for text in refusal.mentions { #expect(err?.message.contains(text) == true) }
        #expect(rig.kernel.callLog.isEmpty)
    }

    @Test func lockdownRefusesUnsignedButNotSigned() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        rig.kernel.lockdown = "none [integrity] confidentiality"
        let (b, e) = try rig.module("livepatch_a")
        let err = #expect(throws: KernelPatchError.self) { try rig.driver.activate(bundle: b, entity: e, onStall: .revert) }
        #expect(err?.kind == .lockdown)
        #expect(err?.message.contains("integrity") == true)
        #expect(rig.kernel.callLog.isEmpty)

        // A signed module passes the precheck; the kernel itself decides (here: the fake accepts it).
        let (b2, e2) = try rig.module("livepatch_s", signed: true)
        try rig.driver.activate(bundle: b2, entity: e2, onStall: .revert)
        #expect(rig.kernel.patchNames == ["livepatch_s"])
    }

    @Test func sigEnforceRefusesUnsigned() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        rig.kernel.sigEnforce = "Y"
        let (b, e) = try rig.module("livepatch_a")
        let err = #expect(throws: KernelPatchError.self) { try rig.driver.activate(bundle: b, entity: e, onStall: .revert) }
        #expect(err?.kind == .lockdown)
        #expect(rig.kernel.callLog.isEmpty)
    }

    @Test func targetModuleNotLoadedIsNotedAndPatchedWhenLoaded() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        rig.kernel.specs["livepatch_busy"] = FakePatchSpec(objects: ["kvmlp_busy": ["kvmlp_busy_sleep"]])
        let (b, e) = try rig.module("livepatch_busy", target: "kvmlp_busy")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        let notes = rig.events.kinds(.note).map(\.message)
        #expect(notes.contains { $0.contains("kvmlp_busy is not loaded") && $0.contains("patched when it loads") })
        #expect(try rig.kernel.read("/sys/kernel/livepatch/livepatch_busy/kvmlp_busy/patched") == "0\n")
        rig.kernel.insertModule("kvmlp_busy")
        #expect(try rig.kernel.read("/sys/kernel/livepatch/livepatch_busy/kvmlp_busy/patched") == "1\n")
    }

    @Test func staleDisabledModuleIsRemovedBeforeLoadingAgain() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        let (b, e) = try rig.module("livepatch_a")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        // Someone disabled it by hand and did not rmmod: module loaded, directory gone.
        try rig.kernel.write("/sys/kernel/livepatch/livepatch_a/enabled", "0")
        rig.kernel.sleep(1)
        #expect(rig.kernel.patchNames.isEmpty)
        #expect(rig.kernel.moduleNames == ["livepatch_a"])
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        let log = rig.kernel.callLog
        let del = try #require(log.lastIndex(of: "delete_module livepatch_a"))
        let load = try #require(log.lastIndex(of: "finit_module livepatch_a"))
        #expect(del < load)
        #expect(rig.kernel.patchNames == ["livepatch_a"])
        #expect(rig.einvalWrites.isEmpty)
    }

    @Test func activateWhileOwnUnpatchIsRunningWaitsThenReloads() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        rig.kernel.specs["livepatch_a"] = FakePatchSpec(unpatchDuration: 2.0)
        let (b, e) = try rig.module("livepatch_a")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        try rig.kernel.write("/sys/kernel/livepatch/livepatch_a/enabled", "0")
        #expect(rig.kernel.inTransition == "livepatch_a")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        #expect(rig.kernel.patchNames == ["livepatch_a"])
        #expect(try rig.kernel.read("/sys/kernel/livepatch/livepatch_a/enabled") == "1\n")
        #expect(rig.einvalWrites.isEmpty, "never writes 1 to a patch being disabled")
    }
}

@Suite struct KernelDriverStallTests {
    /// A target module whose kthread (pid 702) sits in the patched function while `hold` is Y, like
    /// Tests/KernelVM's busy module.
    static func heldRig(_ configure: (inout KernelDriverOptions) -> Void = { _ in }) throws -> DriverRig {
        let rig = try DriverRig(configure: configure)
        rig.kernel.tasks.append(FakeTask(pid: 702, comm: "kvmlp_busy", stack: [
            "[<0>] msleep+0x2d/0x40", "[<0>] kvmlp_busy_sleep+0x2a/0x50 [kvmlp_busy]",
            "[<0>] kvmlp_busy_thread+0x3f/0x80 [kvmlp_busy]", "[<0>] kthread+0xe8/0x110",
        ]))
        rig.kernel.insertModule("kvmlp_busy", params: ["hold": "Y"])
        rig.kernel.specs["livepatch_busy"] = FakePatchSpec(objects: ["kvmlp_busy": ["kvmlp_busy_sleep"]],
                                                           patchDuration: nil, blockerPid: 702)
        rig.kernel.parameterHooks["kvmlp_busy/hold"] = { k, v in
            if v.hasPrefix("N") || v.hasPrefix("0") { k.releaseLocked("livepatch_busy") }
        }
        return rig
    }

    @Test func revertAtHardDeadlineReportsBlockersReversesAndUnloads() throws {
        let rig = try Self.heldRig()
        defer { rig.cleanup() }
        let (b, e) = try rig.module("livepatch_busy", target: "kvmlp_busy")
        let err = #expect(throws: KernelPatchError.self) { try rig.driver.activate(bundle: b, entity: e, onStall: .revert) }
        let error = try #require(err)
        #expect(error.kind == .stalled)
        #expect(error.transitionLeftRunning == false)
        #expect(error.blockers.map(\.pid) == [702])
        #expect(error.blockers.first?.comm == "kvmlp_busy")
        #expect(error.blockers.first?.patchState == 0)
        #expect(error.blockers.first?.stack.contains { $0.contains("kvmlp_busy_sleep") } == true)
        #expect(error.message.contains("pid 702 (kvmlp_busy)"))
        // soft deadline (15 s) reported the blocker before the hard deadline (60 s)
        let soft = rig.events.kinds(.softDeadline)
        #expect(!soft.isEmpty)
        #expect(soft.first?.blockers.map(\.pid) == [702])
        #expect(rig.events.kinds(.hardDeadline).count == 1)
        #expect(rig.kernel.now() >= 60)
        // reversed with one write of 0, then unloaded
        #expect(rig.kernel.callLog.filter { $0.contains("/enabled") } == ["write /sys/kernel/livepatch/livepatch_busy/enabled 0"])
        #expect(rig.kernel.patchNames.isEmpty)
        #expect(rig.kernel.moduleNames == ["kvmlp_busy"])
        #expect(rig.forceWrites.isEmpty)
        #expect(rig.einvalWrites.isEmpty)
    }

    @Test func shortDeadlinesAreConfigurable() throws {
        let rig = try Self.heldRig { $0.softDeadline = 1; $0.hardDeadline = 3 }
        defer { rig.cleanup() }
        let (b, e) = try rig.module("livepatch_busy", target: "kvmlp_busy")
        #expect(throws: KernelPatchError.self) { try rig.driver.activate(bundle: b, entity: e, onStall: .revert) }
        #expect(rig.kernel.now() >= 3 && rig.kernel.now() < 10)
        #expect(rig.events.kinds(.softDeadline).count >= 1)
    }

    @Test func failLeavesTheTransitionRunning() throws {
        let rig = try Self.heldRig()
        defer { rig.cleanup() }
        let (b, e) = try rig.module("livepatch_busy", target: "kvmlp_busy")
        let err = #expect(throws: KernelPatchError.self) { try rig.driver.activate(bundle: b, entity: e, onStall: .fail) }
        #expect(err?.kind == .stalled)
        #expect(err?.transitionLeftRunning == true)
        #expect(err?.blockers.map(\.pid) == [702])
        #expect(rig.kernel.inTransition == "livepatch_busy")
        #expect(rig.kernel.callLog.allSatisfy { !$0.hasPrefix("write") })
    }

    @Test func waitConvergesWhenTheHolderIsReleased() throws {
        let rig = try Self.heldRig()
        defer { rig.cleanup() }
        // The holder is released 90 s in: after the hard deadline, before the wait limit.
        rig.kernel.at(90) { k in k.releaseLocked("livepatch_busy") }
        let (b, e) = try rig.module("livepatch_busy", target: "kvmlp_busy")
        try rig.driver.activate(bundle: b, entity: e, onStall: .wait)
        #expect(rig.kernel.inTransition == nil)
        #expect(rig.kernel.patchNames == ["livepatch_busy"])
        #expect(rig.events.kinds(.hardDeadline).count == 1)
        #expect(rig.kernel.now() >= 90)
        #expect(rig.kernel.callLog.allSatisfy { !$0.hasPrefix("write") })
    }

    @Test func waitReleasedThroughTheModuleParameter() throws {
        let rig = try Self.heldRig()
        defer { rig.cleanup() }
        rig.kernel.at(20) { k in
            // what `echo N > /sys/module/kvmlp_busy/parameters/hold` does in the guest
            k.releaseLocked("livepatch_busy")
        }
        let (b, e) = try rig.module("livepatch_busy", target: "kvmlp_busy")
        try rig.driver.activate(bundle: b, entity: e, onStall: .wait)
        #expect(rig.kernel.patchNames == ["livepatch_busy"])
        // and the parameter hook path works too
        try rig.kernel.write("/sys/module/kvmlp_busy/parameters/hold", "N")
        #expect(try rig.kernel.read("/sys/module/kvmlp_busy/parameters/hold") == "N\n")
    }

    @Test func waitGivesUpAtTheWaitLimitLeavingItRunning() throws {
        let rig = try Self.heldRig { $0.waitLimit = 120 }
        defer { rig.cleanup() }
        let (b, e) = try rig.module("livepatch_busy", target: "kvmlp_busy")
        let err = #expect(throws: KernelPatchError.self) { try rig.driver.activate(bundle: b, entity: e, onStall: .wait) }
        #expect(err?.kind == .stalled)
        #expect(err?.transitionLeftRunning == true)
        #expect(rig.kernel.now() >= 120)
        #expect(rig.kernel.inTransition == "livepatch_busy")
    }

    @Test func forceOnlyWhenAskedAndRecordsRebootRequired() throws {
        let rig = try Self.heldRig { $0.forceTransition = true }
        defer { rig.cleanup() }
        let (b, e) = try rig.module("livepatch_busy", target: "kvmlp_busy")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        #expect(rig.forceWrites == ["write /sys/kernel/livepatch/livepatch_busy/force 1"])
        #expect(rig.kernel.inTransition == nil)
        let records = RebootRequiredRecord.read(stateDirectory: rig.driver.options.stateDirectory)
        #expect(records.map(\.module) == ["livepatch_busy"])
        #expect(records.first?.bootID == rig.kernel.bootID)
        #expect(records.first?.reason.contains("kvmlp_busy") == true)
        // A forced module can never be removed: deactivate disables it (not live any more), warns, and leaves
        // the module; activating it again is refused as stuck until reboot; the record stays.
        try rig.driver.deactivate(moduleName: "livepatch_busy", onStall: .revert)
        #expect(rig.kernel.patchNames.isEmpty)
        #expect(rig.kernel.moduleNames.contains("livepatch_busy"))
        #expect(!rig.kernel.callLog.contains("delete_module livepatch_busy"))
        #expect(rig.events.kinds(.warning).contains { $0.message.contains("until reboot") })
        let err = #expect(throws: KernelPatchError.self) { try rig.driver.activate(bundle: b, entity: e, onStall: .revert) }
        #expect(err?.kind == .stuck)
        #expect(err?.message.contains("reboot") == true)
        #expect(RebootRequiredRecord.read(stateDirectory: rig.driver.options.stateDirectory).count == 1)
    }
}

@Suite struct KernelDriverBusyTests {
    @Test func ebusyOnLoadIsRetriedUntilTheOtherTransitionEnds() throws {
        let rig = try KernelDriverStallTests.heldRig()
        defer { rig.cleanup() }
        rig.kernel.insertPatch("livepatch_busy", spec: rig.kernel.specs["livepatch_busy"]!, transitionHeld: true)
        rig.kernel.at(2.5) { k in k.releaseLocked("livepatch_busy") }
        let (b, e) = try rig.module("livepatch_a")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        let retries = rig.events.kinds(.busyRetry)
        #expect(retries.count >= 2)
        #expect(retries.first?.message.contains("livepatch_busy is in transition") == true)
        #expect(rig.kernel.patchNames == ["livepatch_busy", "livepatch_a"])
        #expect(rig.kernel.refusedLog.filter { $0.hasSuffix("EBUSY") }.count == retries.count)
    }

    @Test func ebusyExhaustedIsReportedAndNothingIsLeftLoaded() throws {
        let rig = try KernelDriverStallTests.heldRig()
        defer { rig.cleanup() }
        rig.kernel.insertPatch("livepatch_busy", spec: rig.kernel.specs["livepatch_busy"]!, transitionHeld: true)
        let (b, e) = try rig.module("livepatch_a")
        let err = #expect(throws: KernelPatchError.self) { try rig.driver.activate(bundle: b, entity: e, onStall: .revert) }
        #expect(err?.kind == .busy)
        #expect(err?.message.contains("livepatch_busy") == true)
        #expect(rig.events.kinds(.busyRetry).count == rig.driver.options.busyRetries)
        #expect(!rig.kernel.moduleNames.contains("livepatch_a"))
        #expect(rig.kernel.inTransition == "livepatch_busy", "the other transition is left alone")
    }

    @Test func ebusyOnDisableIsRetried() throws {
        let rig = try KernelDriverStallTests.heldRig()
        defer { rig.cleanup() }
        let (b, e) = try rig.module("livepatch_a")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        rig.kernel.insertPatch("livepatch_busy", spec: rig.kernel.specs["livepatch_busy"]!, transitionHeld: true)
        let t0 = rig.kernel.now()
        rig.kernel.at(t0 + 3) { k in k.releaseLocked("livepatch_busy") }
        try rig.driver.deactivate(moduleName: "livepatch_a", onStall: .revert)
        #expect(rig.events.kinds(.busyRetry).count >= 2)
        #expect(!rig.kernel.moduleNames.contains("livepatch_a"))
        #expect(rig.einvalWrites.isEmpty)
    }
}

@Suite struct KernelDriverDeactivateTests {
    @Test func deactivateDisablesWaitsForDirAndRefcntThenUnloads() throws {
        let kernel = FakeKernel()
        kernel.refcntLag = 2.0
        let rig = try DriverRig(kernel: kernel)
        defer { rig.cleanup() }
        rig.kernel.specs["livepatch_a"] = FakePatchSpec(unpatchDuration: 1.0)
        let (b, e) = try rig.module("livepatch_a")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        try rig.driver.deactivate(moduleName: "livepatch_a", onStall: .revert)
        #expect(rig.kernel.patchNames.isEmpty)
        #expect(rig.kernel.moduleNames.isEmpty)
        let writes = rig.kernel.callLog.filter { $0.hasPrefix("write") }
        #expect(writes == ["write /sys/kernel/livepatch/livepatch_a/enabled 0"])
        // delete_module was called only after refcnt dropped: the kernel never refused it.
        #expect(rig.kernel.refusedLog.isEmpty)
        #expect(rig.kernel.callLog.filter { $0.hasPrefix("delete_module") } == ["delete_module livepatch_a"])
        #expect(rig.events.kinds(.unloaded).count == 1)
    }

    @Test func deactivateOfAnAbsentPatchIsANoOp() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        try rig.driver.deactivate(moduleName: "livepatch-a", onStall: .revert)
        #expect(rig.kernel.callLog.isEmpty)
    }

    @Test func deactivateDoesNotRewriteAPatchAlreadyBeingDisabled() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        rig.kernel.specs["livepatch_a"] = FakePatchSpec(unpatchDuration: 3.0)
        let (b, e) = try rig.module("livepatch_a")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        try rig.kernel.write("/sys/kernel/livepatch/livepatch_a/enabled", "0")
        try rig.driver.deactivate(moduleName: "livepatch_a", onStall: .revert)
        #expect(rig.kernel.callLog.filter { $0.hasPrefix("write") }.count == 1, "only the test's own write")
        #expect(rig.kernel.moduleNames.isEmpty)
        #expect(rig.einvalWrites.isEmpty)
    }

    @Test func deactivateRemovesALeftoverModuleWithoutDirectory() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        let (b, e) = try rig.module("livepatch_a")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        try rig.kernel.write("/sys/kernel/livepatch/livepatch_a/enabled", "0")
        rig.kernel.sleep(0.25)  // freed, refcnt not yet dropped (lag 0.3 s)
        #expect(rig.kernel.patchNames.isEmpty)
        try rig.driver.deactivate(moduleName: "livepatch_a", onStall: .revert)
        #expect(rig.kernel.moduleNames.isEmpty)
        #expect(rig.kernel.refusedLog.isEmpty)
    }

    @Test func refusesToUnloadANonLivepatchModule() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        rig.kernel.insertModule("e1000", taint: "")
        let err = #expect(throws: KernelPatchError.self) { try rig.driver.deactivate(moduleName: "e1000", onStall: .revert) }
        #expect(err?.kind == .unsupported)
        #expect(rig.kernel.moduleNames == ["e1000"])
        #expect(rig.kernel.callLog.isEmpty)
    }

    @Test func stalledUnpatchIsReversedBackToEnabled() throws {
        let rig = try KernelDriverStallTests.heldRig { $0.hardDeadline = 5 }
        defer { rig.cleanup() }
        rig.kernel.specs["livepatch_busy"]?.patchDuration = 0.2
        rig.kernel.specs["livepatch_busy"]?.unpatchDuration = nil
        let (b, e) = try rig.module("livepatch_busy", target: "kvmlp_busy")
        try rig.driver.activate(bundle: b, entity: e, onStall: .revert)
        let err = #expect(throws: KernelPatchError.self) { try rig.driver.deactivate(moduleName: "livepatch_busy", onStall: .revert) }
        #expect(err?.kind == .stalled)
        #expect(err?.transitionLeftRunning == false)
        #expect(err?.message.contains("still enabled") == true)
        #expect(try rig.kernel.read("/sys/kernel/livepatch/livepatch_busy/enabled") == "1\n")
        #expect(rig.kernel.inTransition == nil)
        #expect(rig.kernel.callLog.filter { $0.contains("/enabled") } == [
            "write /sys/kernel/livepatch/livepatch_busy/enabled 0",
            "write /sys/kernel/livepatch/livepatch_busy/enabled 1",
        ])
        #expect(rig.einvalWrites.isEmpty)
    }
}

@Suite struct KernelDriverReplaceTests {
    @Test func atomicReplaceRemovesTheReplacedModules() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        rig.kernel.specs["livepatch_v1"] = FakePatchSpec(replace: true)
        rig.kernel.specs["livepatch_v2"] = FakePatchSpec(replace: true, patchDuration: 1.0)
        let (b1, e1) = try rig.module("livepatch_v1", replace: true)
        let (b2, e2) = try rig.module("livepatch_v2", replace: true)
        try rig.driver.activate(bundle: b1, entity: e1, onStall: .revert)
        try rig.driver.activate(bundle: b2, entity: e2, onStall: .revert)
        #expect(rig.kernel.patchNames == ["livepatch_v2"])
        #expect(rig.kernel.moduleNames == ["livepatch_v2"])
        #expect(rig.events.kinds(.replacedRemoved).map(\.patch) == ["livepatch_v1"])
        #expect(rig.kernel.refusedLog.isEmpty)
        // rollback = load v1 again (it replaces v2)
        try rig.driver.activate(bundle: b1, entity: e1, onStall: .revert)
        #expect(rig.kernel.patchNames == ["livepatch_v1"])
        #expect(rig.kernel.moduleNames == ["livepatch_v1"])
    }

    @Test func nonReplacePatchesStack() throws {
        let rig = try DriverRig()
        defer { rig.cleanup() }
        let (b1, e1) = try rig.module("livepatch_a")
        let (b2, e2) = try rig.module("livepatch_b")
        try rig.driver.activate(bundle: b1, entity: e1, onStall: .revert)
        try rig.driver.activate(bundle: b2, entity: e2, onStall: .revert)
        #expect(rig.kernel.patchNames == ["livepatch_a", "livepatch_b"])
        #expect(rig.kernel.moduleNames == ["livepatch_a", "livepatch_b"])
    }
}
