import Foundation
import Testing
@testable import SutureCore

/// `KernelLivepatchReader` on the recorded 6.1 trees and the constructed 5.10 / 6.14 trees.
@Suite struct KernelLivepatchReaderTests {
    func read(_ kernel: String, _ state: String) throws -> (KernelLiveState, [UnreadableFact]) {
        let fixture = try KernelFixture(kernel, state)
        defer { fixture.remove() }
        var facts: [UnreadableFact] = []
        let state = KernelLivepatchReader(root: fixture.path).read(unreadable: &facts)
        return (state, facts)
    }

    @Test func none61() throws {
        let (state, facts) = try read("6.1", "none")
        #expect(state.livepatchSupported)
        #expect(state.patches.isEmpty)
        #expect(state.tainted == 0)
        #expect(state.ftraceEnabled == true)
        #expect(state.blockers.isEmpty)
        #expect(state.livepatchModules.isEmpty)
        #expect(facts.isEmpty)
    }

    @Test func emptyDirectoryMattersForSupport() throws {
        // Without recreating the empty /sys/kernel/livepatch the tree would read as "unsupported".
        let fixture = try KernelFixture("6.1", "none")
        defer { fixture.remove() }
        try FileManager.default.removeItem(at: fixture.root.appendingPathComponent("sys"))
        #expect(KernelLivepatchReader(root: fixture.path).read().livepatchSupported == false)
    }

    @Test func enabledSettled61() throws {
        let (state, facts) = try read("6.1", "enabled-settled")
        #expect(facts.isEmpty)
        #expect(state.tainted == 45056)
        #expect(state.tainted & (1 << 15) != 0)
        let patch = try #require(state.patches.first)
        #expect(state.patches.count == 1)
        #expect(patch.name == "livepatch_kvmlp")
        #expect(patch.enabled)
        #expect(!patch.transition)
        #expect(patch.replace == nil)       // 6.11+
        #expect(patch.stackOrder == nil)    // 6.14+
        #expect(patch.objects == [KernelPatchObject(name: "vmlinux", patched: true,
                                                    functions: [KernelPatchFunction(name: "cmdline_proc_show", sympos: 1)])])
        #expect(patch.module == KernelModuleInfo(refcount: 1, taint: "OEK", initState: "live"))
        #expect(state.livepatchModules == ["livepatch_kvmlp": KernelModuleInfo(refcount: 1, taint: "OEK", initState: "live")])
        #expect(state.blockers.isEmpty)
    }

    @Test func twoStacked61() throws {
        let (state, _) = try read("6.1", "two-stacked")
        #expect(state.patches.map(\.name) == ["livepatch_kvmlp", "livepatch_kvmlp_version"])
        #expect(state.patches.allSatisfy { $0.enabled && !$0.transition && $0.objects.first?.patched == true })
        #expect(state.patches[1].objects[0].functions == [KernelPatchFunction(name: "version_proc_show", sympos: 1)])
        #expect(state.patches.allSatisfy { $0.module?.refcount == 1 })
        #expect(state.blockers.isEmpty)
    }

    @Test func transitionHeld61() throws {
        let (state, facts) = try read("6.1", "transition-held")
        #expect(facts.isEmpty)
        let patch = try #require(state.patches.first)
        #expect(patch.name == "livepatch_kvmlp_busy")
        #expect(patch.enabled && patch.transition)
        #expect(patch.objects == [KernelPatchObject(name: "kvmlp_busy", patched: true,
                                                    functions: [KernelPatchFunction(name: "kvmlp_busy_sleep", sympos: 1)])])
        // The target module is not a livepatch module (taint OE, no K) and is not listed.
        #expect(state.livepatchModules.keys.sorted() == ["livepatch_kvmlp_busy"])
        // Target state 1 (patching): only the kthread still at 0 blocks.
        #expect(state.blockers.count == 1)
        let blocker = try #require(state.blockers.first)
        #expect(blocker.pid == 702 && blocker.tid == 702)
        #expect(blocker.comm == "kvmlp_busy")
        #expect(blocker.patchState == 0)
        #expect(blocker.stack.contains { $0.contains("kvmlp_busy_sleep+0x1a/0x30 [kvmlp_busy]") })
        #expect(blocker.stack.first == "[<0>] msleep+0x29/0x40")
    }

    @Test func reverseInProgress61() throws {
        let (state, _) = try read("6.1", "reverse-in-progress")
        let patch = try #require(state.patches.first)
        #expect(!patch.enabled && patch.transition)
        #expect(patch.objects.first?.patched == true)   // stays 1 during the reversal
        // Reversed: the target is now 0, so the 44 tasks still at 1 block; the kthread and pid 1 (at 0) do not.
        #expect(state.blockers.count == 44)
        #expect(state.blockers.allSatisfy { $0.patchState == 1 })
        #expect(!state.blockers.contains { $0.pid == 702 || $0.pid == 1 })
        #expect(state.blockers.map(\.pid) == state.blockers.map(\.pid).sorted())
    }

    @Test func disabledModuleLoaded61() throws {
        let (state, _) = try read("6.1", "disabled-module-loaded")
        #expect(state.livepatchSupported)
        #expect(state.patches.isEmpty)
        #expect(state.livepatchModules == ["livepatch_kvmlp": KernelModuleInfo(refcount: 0, taint: "OEK", initState: "live")])
        #expect(state.tainted == 45056)
        #expect(state.blockers.isEmpty)
    }

    @Test func stackedTransition510() throws {
        let (state, facts) = try read("5.10", "stacked-transition")
        #expect(facts.isEmpty)
        #expect(state.patches.map(\.name) == ["livepatch_cmdline", "livepatch_ext4"])
        for patch in state.patches {
            #expect(patch.replace == nil)
            #expect(patch.stackOrder == nil)
            #expect(patch.objects.allSatisfy { $0.patched == nil })
        }
        let ext4 = state.patches[1]
        #expect(ext4.transition && ext4.enabled)
        #expect(ext4.objects == [KernelPatchObject(name: "ext4", patched: nil, functions: [
            KernelPatchFunction(name: "ext4_file_read_iter", sympos: 1),
            KernelPatchFunction(name: "ext4_map_blocks", sympos: 2)])])
        // ext4 itself is not a livepatch module.
        #expect(state.livepatchModules.keys.sorted() == ["livepatch_cmdline", "livepatch_ext4"])
        #expect(state.blockers.map { "\($0.pid)/\($0.tid)" } == ["412/413", "977/977"])
        let thread = state.blockers[0]
        #expect(thread.comm == "io worker")       // the task's comm, not the process's
        #expect(thread.stack.count == 6)
        #expect(thread.stack[1].contains("ext4_map_blocks"))
    }

    @Test func unsupported510() throws {
        let (state, facts) = try read("5.10", "unsupported")
        #expect(!state.livepatchSupported)
        #expect(state.patches.isEmpty)
        #expect(state.blockers.isEmpty)
        #expect(facts.isEmpty)
    }

    @Test func replaceStacked614() throws {
        let (state, facts) = try read("6.14", "replace-stacked")
        #expect(facts.isEmpty)
        // Sorted by stack_order, not by name.
        #expect(state.patches.map(\.name) == ["livepatch_zeta_cumulative", "livepatch_alpha_fix"])
        #expect(state.patches.map(\.stackOrder) == [1, 2])
        #expect(state.patches.map(\.replace) == [true, false])
        let cumulative = state.patches[0]
        #expect(cumulative.objects.map(\.name) == ["nfsd", "vmlinux"])
        #expect(cumulative.objects[0].patched == false)   // target module not loaded
        #expect(cumulative.objects[0].functions == [KernelPatchFunction(name: "nfsd4_open", sympos: 1)])
        #expect(cumulative.objects[1].functions.map(\.name) == ["cmdline_proc_show", "version_proc_show"])
        // The replaced module has no livepatch directory but is still loaded.
        #expect(state.livepatchModules["livepatch_old_cumulative"] == KernelModuleInfo(refcount: 0, taint: "OEK", initState: "live"))
        #expect(state.livepatchModules["nfs"] == nil)
        #expect(state.livepatchModules.count == 3)
        #expect(state.blockers.isEmpty)
    }

    @Test func replaceTransition614() throws {
        let (state, _) = try read("6.14", "replace-transition")
        #expect(state.patches.map(\.name) == ["livepatch_cumulative_v1", "livepatch_cumulative_v2"])
        #expect(state.patches.map(\.transition) == [false, true])
        #expect(state.patches.allSatisfy { $0.replace == true })
        #expect(state.blockers.count == 1)
        #expect(state.blockers.first?.pid == 733)
        #expect(state.blockers.first?.comm == "cat")
        #expect(state.blockers.first?.stack.contains { $0.contains("meminfo_proc_show") } == true)
    }

    @Test func missingRootReadsAsNothing() throws {
        let state = KernelLivepatchReader(root: "/nonexistent-suture-root").read()
        #expect(state == KernelLiveState())
    }

    @Test func functionDirectoryNames() {
        #expect(KernelLivepatchReader.parseFunctionDirectory("cmdline_proc_show,1")
                == KernelPatchFunction(name: "cmdline_proc_show", sympos: 1))
        #expect(KernelLivepatchReader.parseFunctionDirectory("a,b,3") == KernelPatchFunction(name: "a,b", sympos: 3))
        #expect(KernelLivepatchReader.parseFunctionDirectory("patched") == nil)
        #expect(KernelLivepatchReader.parseFunctionDirectory(",1") == nil)
        #expect(KernelLivepatchReader.parseFunctionDirectory("f,x") == nil)
    }

    @Test func unreadableEnabledIsAFactNotACrash() throws {
        // Root ignores file modes, so make `enabled` a directory: open+read fails with EISDIR.
        let fixture = try KernelFixture("6.1", "enabled-settled")
        defer { fixture.remove() }
        let enabled = fixture.root.appendingPathComponent("sys/kernel/livepatch/livepatch_kvmlp/enabled")
        try FileManager.default.removeItem(at: enabled)
        try FileManager.default.createDirectory(at: enabled, withIntermediateDirectories: false)
        var facts: [UnreadableFact] = []
        let state = KernelLivepatchReader(root: fixture.path).read(unreadable: &facts)
        #expect(state.patches.isEmpty)
        #expect(facts.count == 1)
        #expect(facts.first?.path.hasSuffix("livepatch_kvmlp/enabled") == true)
    }
}
