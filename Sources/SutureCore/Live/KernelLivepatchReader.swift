/// Reads the kernel's livepatch state under a root path.
///
/// Sources and formats:
/// - `/sys/kernel/livepatch/<patch>/{enabled,transition,replace,stack_order}` and
///   `<patch>/<object>/{patched,<func>,<sympos>/}`: Documentation/ABI/testing/sysfs-kernel-livepatch.
///   `replace` (Linux ≥ 6.11), `stack_order` (≥ 6.14) and `patched` (≥ 6.1) are feature-detected: absent
///   files are `nil`. `force` is write-only and never read.
/// - `/sys/module/<m>/{refcnt,taint,initstate}` for every patch module, and for every module whose `taint`
///   contains `K` (a livepatch module, loaded even when its patch is disabled or replaced).
/// - `/proc/sys/kernel/tainted` (decimal bit mask; bit 15 = `K`) and `/proc/sys/kernel/ftrace_enabled`.
/// - While a patch has `transition` = 1: `/proc/<pid>/task/<tid>/patch_state` (Documentation/livepatch/
///   livepatch.rst §3: `-1` no transition, `0` unpatched, `1` patched), with `comm` and `stack`, to name the
///   blockers. The transition's *target* state is the transitioning patch's `enabled` value: `1` while
///   patching, `0` while unpatching — which is also what a reverse transition (writing the opposite value to
///   `enabled` during a transition) switches it to. A task blocks when its `patch_state` is `0` or `1` and
///   differs from the target (the kernel's `task->patch_state != klp_target_state` check); `-1` only appears
///   once the transition has ended under our feet, so it never blocks.
///
/// Missing attributes are `nil`, never errors; a patch directory that vanishes while it is read (the patch
/// was freed) is left out.
public struct KernelLivepatchReader: Sendable {
    /// The root (`/` in production, a recorded tree in tests).
    public let root: String

    /// Creates a reader of `root`/sys and `root`/proc.
    public init(root: String = "/") {
        self.root = root
    }

    /// Reads the state; facts that could not be read are dropped. See ``read(unreadable:)``.
    public func read() -> KernelLiveState {
        var facts: [UnreadableFact] = []
        return read(unreadable: &facts)
    }

    /// Reads the state, appending what could not be read (permission denied, I/O errors) to `unreadable`.
    public func read(unreadable: inout [UnreadableFact]) -> KernelLiveState {
        var state = KernelLiveState()
        let livepatchDir = path(LivepatchSysfs.root)
        state.livepatchSupported = LiveFS.isDirectory(livepatchDir)
        if state.livepatchSupported {
            for name in (LiveFS.list(livepatchDir) ?? []).sorted() {
                if let patch = readPatch(name: name, dir: livepatchDir + "/" + name, unreadable: &unreadable) {
                    state.patches.append(patch)
                }
            }
        }
        state.patches.sort { lhs, rhs in
            switch (lhs.stackOrder, rhs.stackOrder) {
            case let (l?, r?) where l != r: return l < r
            case (_?, nil): return true
            case (nil, _?): return false
            default: return lhs.name < rhs.name
            }
        }
        state.livepatchModules = readLivepatchModules(patchNames: Set(state.patches.map(\.name)))
        switch LiveFS.read(path("/proc/sys/kernel/tainted")) {
        case let .content(text): state.tainted = UInt64(LiveFS.trimmed(text)) ?? 0
        case .absent: break
        case let .failed(code):
            unreadable.append(UnreadableFact(path: path("/proc/sys/kernel/tainted"), reason: LiveFS.describe(errno: code),
                                             effect: "kernel taint unknown: reported as 0"))
        }
        if let value = LiveFS.readTrimmed(path("/proc/sys/kernel/ftrace_enabled")) {
            state.ftraceEnabled = value == "1" ? true : (value == "0" ? false : nil)
        }
        if let transitioning = state.patches.first(where: \.transition) {
            state.blockers = readBlockers(target: transitioning.enabled ? 1 : 0, patch: transitioning.name,
                                          unreadable: &unreadable)
        }
        return state
    }

    private func path(_ absolute: String) -> String { LiveFS.join(root, absolute) }

    private func readBool(_ path: String) -> Bool? { LivepatchSysfs.bool(LiveFS.readTrimmed(path)) }

    private func readPatch(name: String, dir: String, unreadable: inout [UnreadableFact]) -> KernelLivePatch? {
        guard LiveFS.isDirectory(dir) else { return nil }
        let enabledPath = path(LivepatchSysfs.path(name, .enabled))
        switch LiveFS.read(enabledPath) {
        case let .content(text):
            if LivepatchSysfs.bool(text) == nil {
                unreadable.append(UnreadableFact(path: enabledPath, reason: "unexpected value \(LiveFS.trimmed(text))",
                                                 effect: "livepatch \(name) ignored"))
                return nil
            }
        case .absent:
            return nil   // freed while we read
        case let .failed(code):
            unreadable.append(UnreadableFact(path: enabledPath, reason: LiveFS.describe(errno: code),
                                             effect: "livepatch \(name) ignored"))
            return nil
        }
        let read: (String) -> String? = { LiveFS.readTrimmed(path($0)) }
        guard var patch = LivepatchSysfs.state(of: name, read: read) else { return nil }   // freed while we read
        patch.replace = LivepatchSysfs.bool(read(LivepatchSysfs.path(name, .replace)))
        patch.stackOrder = read(LivepatchSysfs.path(name, .stackOrder)).flatMap { Int($0) }
        for entry in (LiveFS.list(dir) ?? []).sorted() where LiveFS.isDirectory(dir + "/" + entry) {
            let objectDir = dir + "/" + entry
            var object = KernelPatchObject(name: entry, patched: readBool(objectDir + "/patched"))
            for function in (LiveFS.list(objectDir) ?? []) where LiveFS.isDirectory(objectDir + "/" + function) {
                if let parsed = Self.parseFunctionDirectory(function) { object.functions.append(parsed) }
            }
            object.functions.sort { ($0.name, $0.sympos) < ($1.name, $1.sympos) }
            patch.objects.append(object)
        }
        patch.module = readModule(name)
        return patch
    }

    /// Parses a `<function>,<sympos>` directory name (the kernel prints sympos 0 as 1); nil if it has no
    /// `,<number>` suffix.
    public static func parseFunctionDirectory(_ name: String) -> KernelPatchFunction? {
        guard let comma = name.lastIndex(of: ","), comma != name.startIndex,
              let sympos = Int(name[name.index(after: comma)...]), sympos >= 0 else { return nil }
        return KernelPatchFunction(name: String(name[..<comma]), sympos: sympos)
    }

    private func readModule(_ name: String) -> KernelModuleInfo? {
        let dir = path("/sys/module/\(name)")
        guard LiveFS.isDirectory(dir) else { return nil }
        return KernelModuleInfo(refcount: LiveFS.readTrimmed(dir + "/refcnt").flatMap { Int($0) },
                                taint: LiveFS.readTrimmed(dir + "/taint"),
                                initState: LiveFS.readTrimmed(dir + "/initstate"))
    }

    /// Every `/sys/module/<m>` whose `taint` contains `K`, plus the patch modules.
    private func readLivepatchModules(patchNames: Set<String>) -> [String: KernelModuleInfo] {
        var result: [String: KernelModuleInfo] = [:]
        for name in LiveFS.list(path("/sys/module")) ?? [] {
            let taint = LiveFS.readTrimmed(path("/sys/module/\(name)/taint"))
            guard patchNames.contains(name) || (taint?.contains("K") ?? false) else { continue }
            if let info = readModule(name) { result[name] = info }
        }
        return result
    }

    private func readBlockers(target: Int, patch: String, unreadable: inout [UnreadableFact]) -> [TransitionBlocker] {
        var blockers: [TransitionBlocker] = []
        var unreadableCount = 0
        var firstUnreadable: (String, Int32)? = nil
        let proc = path("/proc")
        let pids = (LiveFS.list(proc) ?? []).compactMap { Int32($0) }.sorted()
        for pid in pids {
            let processDir = proc + "/\(pid)"
            guard let tids = LiveFS.list(processDir + "/task") else { continue }   // vanished
            for tid in tids.compactMap({ Int32($0) }).sorted() {
                let taskDir = processDir + "/task/\(tid)"
                let stateValue: Int
                switch LiveFS.read(taskDir + "/patch_state") {
                case let .content(text):
                    guard let value = Int(LiveFS.trimmed(text)) else { continue }
                    stateValue = value
                case .absent:
                    continue
                case let .failed(code):
                    unreadableCount += 1
                    if firstUnreadable == nil { firstUnreadable = (taskDir + "/patch_state", code) }
                    continue
                }
                guard stateValue >= 0, stateValue != target else { continue }
                let comm = LiveFS.readTrimmed(taskDir + "/comm") ?? LiveFS.readTrimmed(processDir + "/comm") ?? ""
                var stack: [String] = []
                if case let .content(text) = LiveFS.read(taskDir + "/stack") {
                    stack = text.split(separator: "\n").map { LiveFS.trimmed(String($0)) }.filter { !$0.isEmpty }
                }
                blockers.append(TransitionBlocker(pid: pid, tid: tid, comm: comm, patchState: stateValue, stack: stack))
            }
        }
        if let (first, code) = firstUnreadable {
            unreadable.append(UnreadableFact(
                path: first, reason: LiveFS.describe(errno: code),
                effect: "patch_state of \(unreadableCount) task(s) unknown: blockers of \(patch) may be missing"))
        }
        return blockers
    }
}
