import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SutureCore
import SuturePatching

/// How a livepatch module behaves in `FakeKernel` once loaded.
struct FakePatchSpec: Sendable {
    /// Patched objects: `vmlinux` or module names → function names.
    var objects: [String: [String]] = ["vmlinux": ["cmdline_proc_show"]]
    /// `.replace = true` (atomic replace).
    var replace = false
    /// Virtual seconds until the patching transition completes; `nil`: held until `release(_:)`.
    var patchDuration: Double? = 0.3
    /// Virtual seconds until the unpatching transition completes; `nil`: held until `release(_:)`.
    var unpatchDuration: Double? = 0.2
    /// Virtual seconds a reversed transition needs.
    var reverseDuration: Double = 0.5
    /// The task kept in the old state while the transition is held.
    var blockerPid: Int32? = nil
}

/// A task in the fake `/proc`.
struct FakeTask: Sendable {
    var pid: Int32
    var comm: String
    var stack: [String]
}

/// An in-process kernel implementing the livepatch semantics of Linux 6.1 that the driver depends on
/// (`../shared/reference/kernel-livepatch.md` A.2/A.3, fixtures in Tests/Fixtures/kernel-6.1):
/// `finit_module` reads the real `.modinfo` of the file (vermagic, name, livepatch), refuses EEXIST,
/// ENOEXEC for another release, EPERM under lockdown for unsigned modules, EBUSY while another transition
/// runs; `enabled` writes give EINVAL for the value already held or a bad value, reverse a running
/// transition of the same patch, EBUSY during another patch's transition; a finished unpatch frees the
/// patch (its directory disappears) and the module's refcnt drops `refcntLag` virtual seconds later;
/// `force` completes the transition and makes the module unremovable; an atomic-replace patch frees every
/// older patch when its transition completes. Time is virtual: it advances only through `sleep`.
final class FakeKernel: KernelInterface, DriverClock, @unchecked Sendable {
    private let lock = NSLock()

    // Kernel facts.
    var osrelease = "6.1.0-57-amd64"
    var procVersion = "Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2025-01-01)\n"
    var ftraceEnabled = "1"
    var lockdown: String? = "[none] integrity confidentiality"
    var sigEnforce = "N"
    var livepatchSupported = true
    var bootID = "3f1e0c6a-0d36-4b1e-9d0c-6f3c1c2a9b10"
    /// Virtual seconds between a patch being freed and its module's refcnt reaching 0.
    var refcntLag = 0.3

    struct Module {
        var refcnt: Int
        var taint: String
        var params: [String: String] = [:]
        var forced = false
        var refcntDropAt: Double?
    }

    struct Patch {
        var name: String
        var enabled: Bool
        var spec: FakePatchSpec
    }

    struct Transition {
        var patch: String
        var target: Bool
        var originalTarget: Bool
        var completeAt: Double?
        var reversed = false
    }

    private(set) var time = 0.0
    private(set) var modules: [String: Module] = [:]
    private(set) var patches: [Patch] = []
    private(set) var transition: Transition?
    var tasks: [FakeTask] = [
        FakeTask(pid: 1, comm: "init", stack: ["[<0>] do_wait+0x16b/0x2e0"]),
        FakeTask(pid: 2, comm: "kthreadd", stack: ["[<0>] kthreadd+0x2d7/0x2f0"]),
        FakeTask(pid: 13, comm: "ksoftirqd/0", stack: ["[<0>] smpboot_thread_fn+0x108/0x1e0"]),
    ]
    /// Behaviour of each livepatch module, by module name.
    var specs: [String: FakePatchSpec] = [:]
    /// Called when `/sys/module/<module>/parameters/<param>` (key `module/param`) is written, with the value.
    /// Runs under the kernel's lock: use the `…Locked` controls.
    var parameterHooks: [String: @Sendable (FakeKernel, String) -> Void] = [:]

    /// Every operation, in order: `finit_module x`, `write /sys/…/enabled 0`, `delete_module x`, …
    private(set) var calls: [String] = []
    /// Writes and loads the kernel refused, with their errno name.
    private(set) var refused: [String] = []
    private var timers: [(at: Double, action: @Sendable (FakeKernel) -> Void)] = []

    // MARK: Test controls

    /// Runs `action` (under the kernel's lock) once virtual time reaches `at`.
    func at(_ at: Double, _ action: @escaping @Sendable (FakeKernel) -> Void) {
        lock.withLock { timers.append((at, action)) }
    }

    /// Lets a held transition of `patch` complete at the next tick. Call under the lock only from hooks.
    func releaseLocked(_ patch: String) {
        if var t = transition, t.patch == patch, t.completeAt == nil {
            t.completeAt = time
            transition = t
        }
    }

    /// Lets a held transition of `patch` complete at the next tick.
    func release(_ patch: String) { lock.withLock { releaseLocked(patch) } }

    /// Pre-loads a module (e.g. a target module with a kthread) without going through `finit_module`.
    func insertModule(_ name: String, taint: String = "OE", params: [String: String] = [:]) {
        lock.withLock { modules[name] = Module(refcnt: 0, taint: taint, params: params) }
    }

    /// Pre-loads a livepatch in a given state (enabled and settled, or with a transition held).
    func insertPatch(_ name: String, spec: FakePatchSpec, enabled: Bool = true, transitionHeld: Bool = false) {
        lock.withLock {
            specs[name] = spec
            modules[name] = Module(refcnt: 1, taint: "OEK")
            patches.append(Patch(name: name, enabled: enabled, spec: spec))
            if transitionHeld {
                transition = Transition(patch: name, target: enabled, originalTarget: enabled, completeAt: nil)
            }
        }
    }

    var patchNames: [String] { lock.withLock { patches.map(\.name) } }
    var moduleNames: [String] { lock.withLock { modules.keys.sorted() } }
    var callLog: [String] { lock.withLock { calls } }
    var refusedLog: [String] { lock.withLock { refused } }
    var inTransition: String? { lock.withLock { transition?.patch } }
    var now0: Double { lock.withLock { time } }

    // MARK: DriverClock

    func now() -> Double { lock.withLock { time } }

    func sleep(_ seconds: Double) {
        lock.withLock {
            time += max(seconds, 0)
            settleLocked()
        }
    }

    private func settleLocked() {
        while let i = timers.firstIndex(where: { $0.at <= time }) {
            let t = timers.remove(at: i)
            t.action(self)
        }
        if let t = transition, let at = t.completeAt, at <= time { completeLocked() }
        for (name, var m) in modules where !m.forced {
            if let at = m.refcntDropAt, at <= time {
                m.refcnt = 0
                m.refcntDropAt = nil
                modules[name] = m
            }
        }
    }

    private func completeLocked() {
        guard let t = transition, let i = patches.firstIndex(where: { $0.name == t.patch }) else { return }
        transition = nil
        if t.target {
            if patches[i].spec.replace {
                let others = patches.filter { $0.name != t.patch }.map(\.name)
                patches.removeAll { $0.name != t.patch }
                for o in others { freeLocked(o) }
            }
        } else {
            patches.remove(at: i)
            freeLocked(t.patch)
        }
    }

    /// The patch was freed: `module_put` runs asynchronously, so refcnt drops `refcntLag` later.
    private func freeLocked(_ name: String) {
        guard var m = modules[name], !m.forced else { return }
        m.refcntDropAt = time + refcntLag
        modules[name] = m
        if refcntLag <= 0 { settleLocked() }
    }

    private func startLocked(_ patch: String, target: Bool, duration: Double?) {
        transition = Transition(patch: patch, target: target, originalTarget: target,
                                completeAt: duration.map { time + $0 })
        // klp_try_complete_transition runs once right away.
        if let d = duration, d <= 0 { completeLocked() }
    }

    // MARK: KernelInterface

    func loadModule(atPath path: String, parameters: String) throws(KernelCallError) {
        let result: Int32? = lock.withLock {
            guard let file = try? ModuleFile.read(path: path), let raw = file.name else {
                calls.append("finit_module ? \(path)")
                return ENOEXEC
            }
            let name = SysfsKernelPatchDriver.normalizedModuleName(raw)
            calls.append("finit_module \(name)")
            if modules[name] != nil { return EEXIST }
            if file.kernelRelease != osrelease { return ENOEXEC }
            if !file.signed && (lockdown.map { !$0.contains("[none]") } ?? false || sigEnforce == "Y") { return EPERM }
            guard file.isLivepatch else {
                modules[name] = Module(refcnt: 0, taint: "OE")
                return nil
            }
            if !livepatchSupported { return ENODEV }
            if transition != nil { return EBUSY }
            if ftraceEnabled != "1" { return ENODEV }
            let spec = specs[name] ?? FakePatchSpec()
            modules[name] = Module(refcnt: 1, taint: "OEK")
            patches.append(Patch(name: name, enabled: true, spec: spec))
            startLocked(name, target: true, duration: spec.patchDuration)
            return nil
        }
        if let e = result {
            lock.withLock { refused.append("finit_module \(path) \(KernelCallError("", "", errno: e).errnoName)") }
            throw KernelCallError("finit_module", path, errno: e)
        }
    }

    func unloadModule(named name: String) throws(KernelCallError) {
        let result: Int32? = lock.withLock {
            calls.append("delete_module \(name)")
            guard let m = modules[name] else { return ENOENT }
            if m.refcnt > 0 || patches.contains(where: { $0.name == name }) { return EAGAIN }
            modules[name] = nil
            return nil
        }
        if let e = result {
            lock.withLock { refused.append("delete_module \(name) \(KernelCallError("", "", errno: e).errnoName)") }
            throw KernelCallError("delete_module", name, errno: e)
        }
    }

    private func parseBool(_ v: String) -> Bool? {
        switch v.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() {
        case "1", "y", "yes", "on": return true
        case "0", "n", "no", "off": return false
        default: return nil
        }
    }

    func write(_ path: String, _ value: String) throws(KernelCallError) {
        let result: Int32? = lock.withLock {
            calls.append("write \(path) \(value)")
            let parts = path.split(separator: "/").map(String.init)
            if parts.count == 5, parts[0] == "sys", parts[1] == "kernel", parts[2] == "livepatch" {
                let name = parts[3]
                guard let i = patches.firstIndex(where: { $0.name == name }) else { return ENOENT }
                switch parts[4] {
                case "enabled":
                    guard let v = parseBool(value) else { return EINVAL }
                    if v == patches[i].enabled { return EINVAL }
                    if var t = transition, t.patch == name {
                        // klp_reverse_transition
                        patches[i].enabled = v
                        t.target = v
                        t.reversed.toggle()
                        t.completeAt = time + patches[i].spec.reverseDuration
                        transition = t
                        return nil
                    }
                    if transition != nil { return EBUSY }
                    if v { return EINVAL } // a disabled, not-in-transition patch cannot be re-enabled
                    patches[i].enabled = false
                    startLocked(name, target: false, duration: patches[i].spec.unpatchDuration)
                    return nil
                case "force":
                    guard let v = parseBool(value) else { return EINVAL }
                    if !v { return nil }
                    guard transition?.patch == name else { return EINVAL }
                    modules[name]?.forced = true
                    completeLocked()
                    return nil
                default:
                    return exists(locked: path) ? EACCES : ENOENT
                }
            }
            if parts.count == 5, parts[0] == "sys", parts[1] == "module", parts[3] == "parameters" {
                guard modules[parts[2]]?.params[parts[4]] != nil else { return ENOENT }
                modules[parts[2]]?.params[parts[4]] = value.trimmingCharacters(in: .whitespacesAndNewlines)
                parameterHooks["\(parts[2])/\(parts[4])"]?(self, value)
                return nil
            }
            return exists(locked: path) ? EACCES : ENOENT
        }
        if let e = result {
            lock.withLock { refused.append("write \(path) \(value) \(KernelCallError("", "", errno: e).errnoName)") }
            throw KernelCallError("write", path, errno: e)
        }
    }

    private func taskState(_ pid: Int32) -> Int {
        guard let t = transition else { return -1 }
        let blocker = patches.first { $0.name == t.patch }?.spec.blockerPid
        let orig = t.originalTarget ? 1 : 0
        // Every task switched to the original target except the blocker; after a reversal the blocker
        // already is at the new target and the others must switch back.
        return pid == blocker ? 1 - orig : orig
    }

    private func readLocked(_ path: String) -> Result<String, KernelCallError> {
        let parts = path.split(separator: "/").map(String.init)
        func ok(_ s: String) -> Result<String, KernelCallError> { .success(s + "\n") }
        let enoent = Result<String, KernelCallError>.failure(KernelCallError("read", path, errno: ENOENT))
        switch path {
        case "/proc/sys/kernel/osrelease": return ok(osrelease)
        case "/proc/version": return .success(procVersion)
        case "/proc/sys/kernel/ftrace_enabled": return ok(ftraceEnabled)
        case "/proc/sys/kernel/random/boot_id": return ok(bootID)
        case "/sys/kernel/security/lockdown": return lockdown.map(ok) ?? enoent
        case "/sys/module/module/parameters/sig_enforce": return ok(sigEnforce)
        default: break
        }
        if parts.count >= 5, parts[0] == "sys", parts[1] == "kernel", parts[2] == "livepatch", livepatchSupported {
            guard let p = patches.first(where: { $0.name == parts[3] }) else { return enoent }
            if parts.count == 5 {
                switch parts[4] {
                case "enabled": return ok(p.enabled ? "1" : "0")
                case "transition": return ok(transition?.patch == p.name ? "1" : "0")
                case "force": return .failure(KernelCallError("read", path, errno: EACCES))
                default: return enoent
                }
            }
            if parts.count == 6, parts[5] == "patched", p.spec.objects[parts[4]] != nil {
                return ok(parts[4] == "vmlinux" || modules[parts[4]] != nil ? "1" : "0")
            }
            return enoent
        }
        if parts.count >= 4, parts[0] == "sys", parts[1] == "module", let m = modules[parts[2]] {
            if parts.count == 4 {
                switch parts[3] {
                case "refcnt": return ok(String(m.refcnt))
                case "taint": return ok(m.taint)
                case "initstate": return ok("live")
                default: return enoent
                }
            }
            if parts.count == 5, parts[3] == "parameters", let v = m.params[parts[4]] { return ok(v) }
            return enoent
        }
        if parts.count >= 3, parts[0] == "proc", let pid = Int32(parts[1]), let task = tasks.first(where: { $0.pid == pid }) {
            let rest = parts.count >= 5 && parts[2] == "task" && parts[3] == String(pid) ? Array(parts[4...])
                : Array(parts[2...])
            switch rest {
            case ["comm"]: return ok(task.comm)
            case ["patch_state"]: return ok(String(taskState(pid)))
            case ["stack"]: return .success(task.stack.map { $0 + "\n" }.joined())
            default: return enoent
            }
        }
        return enoent
    }

    private func listLocked(_ path: String) -> [String]? {
        let parts = path.split(separator: "/").map(String.init)
        switch parts.count {
        case 2 where parts == ["sys", "module"]: return modules.keys.sorted()
        case 1 where parts == ["proc"]: return tasks.map { String($0.pid) } + ["sys", "self"]
        case 3 where parts == ["sys", "kernel", "livepatch"]: return livepatchSupported ? patches.map(\.name) : nil
        case 4 where parts[0] == "sys" && parts[2] == "livepatch":
            guard let p = patches.first(where: { $0.name == parts[3] }) else { return nil }
            return ["enabled", "transition", "force"] + p.spec.objects.keys.sorted()
        case 3 where parts[0] == "sys" && parts[1] == "module":
            guard let m = modules[parts[2]] else { return nil }
            return ["refcnt", "taint", "initstate", "holders"] + (m.params.isEmpty ? [] : ["parameters"])
        case 3 where parts[0] == "proc" && parts[2] == "task":
            guard let pid = Int32(parts[1]), tasks.contains(where: { $0.pid == pid }) else { return nil }
            return [parts[1]]
        default: return nil
        }
    }

    private func exists(locked path: String) -> Bool {
        if case .success = readLocked(path) { return true }
        if listLocked(path) != nil { return true }
        let parts = path.split(separator: "/").map(String.init)
        if parts.count >= 5, parts[0] == "sys", parts[2] == "livepatch",
           let p = patches.first(where: { $0.name == parts[3] }) {
            if parts.count == 5 { return parts[4] == "force" || p.spec.objects[parts[4]] != nil }
            if parts.count == 6, let funcs = p.spec.objects[parts[4]] {
                return funcs.contains { "\($0),1" == parts[5] }
            }
        }
        return path == "/sys/kernel" || path == "/sys" || path == "/proc"
    }

    func read(_ path: String) throws(KernelCallError) -> String {
        try lock.withLock { readLocked(path) }.get()
    }

    func list(_ path: String) throws(KernelCallError) -> [String] {
        guard let names = lock.withLock({ listLocked(path) }) else { throw KernelCallError("list", path, errno: ENOENT) }
        return names
    }

    func exists(_ path: String) -> Bool { lock.withLock { exists(locked: path) } }
}

/// Thread-safe event recorder for the driver's `events` callback.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [KernelDriverEvent] = []
    func record(_ e: KernelDriverEvent) { lock.withLock { items.append(e) } }
    var events: [KernelDriverEvent] { lock.withLock { items } }
    func kinds(_ k: KernelDriverEvent.Kind) -> [KernelDriverEvent] { events.filter { $0.kind == k } }
}
