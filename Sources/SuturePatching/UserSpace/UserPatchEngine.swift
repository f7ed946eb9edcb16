#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Test and benchmark hooks of one engine operation. They run on the ptrace thread.
public struct UserPatchHooks: Sendable {
    /// Called once after the region is prepared and before the commit stop (e.g. to kill the target in a
    /// test of "exit during activation").
    public var afterPrepare: (@Sendable (_ pid: Int32) -> Void)?
    /// Called while every thread of the target is stopped (commit and revert), after the detours are
    /// written and before the threads are resumed; receives the stopped TIDs.
    public var whileStopped: (@Sendable (_ pid: Int32, _ tids: [Int32]) -> Void)?

    /// Memberwise initializer.
    public init(afterPrepare: (@Sendable (Int32) -> Void)? = nil,
                whileStopped: (@Sendable (Int32, [Int32]) -> Void)? = nil) {
        self.afterPrepare = afterPrepare
        self.whileStopped = whileStopped
    }
}

/// What one engine operation did, with its measured pause.
public struct UserPatchEngineResult: Sendable, Hashable {
    /// The outcome.
    public var outcome: UserPatchOutcome
    /// Pause of the successful stop-the-world window: first thread stopped → last thread resumed, in
    /// nanoseconds (nil when no stop happened).
    public var pauseNanoseconds: UInt64?
    /// Number of threads stopped in that window.
    public var threads: Int
    /// Commit attempts that found the process BUSY before success.
    public var busyRetries: Int
    /// Start address of the patch region (activate) or of the removed region (deactivate).
    public var regionAddress: UInt64?
    /// Instructions single-stepped to take threads out of the replaced (or removed) code.
    public var steppedInstructions: Int = 0
}

/// A patch region found in a process by readback (no stop).
public struct UserPatchRegion: Sendable, Hashable {
    /// Patch uuid from the mapping name.
    public var uuid: String
    /// First address of the region (the header).
    public var address: UInt64
    /// One past the last mapped byte of the region.
    public var end: UInt64
    /// The decoded header, nil when unreadable or invalid.
    public var header: PatchRegionHeader?
    /// For an ACTIVE header: whether every replaced function's entry still holds the detour bytes the
    /// header records (read with process_vm_readv; nil when not checked). A debugger or another tool that
    /// wrote the original bytes back leaves an ACTIVE header whose code is no longer reached.
    public var entriesIntact: Bool? = nil

    /// The state to report: the header's (`active`, `prepared`, `inconsistent`), or `detached` when the
    /// header says ACTIVE but an entry no longer holds its detour; nil without a readable header.
    public var effectiveState: String? {
        guard let header else { return nil }
        if header.state == .active && entriesIntact == false { return "detached" }
        return "\(header.state)".lowercased()
    }
}

/// The ptrace engine: activates and deactivates user patches in running x86-64 processes.
///
/// Each operation runs entirely on its own ``PtraceThread``. Phases (docs/user-patches.md):
/// pre-flight (`/proc/PID/status`, Yama) → target match (device:inode, build-id, load bias) →
/// prepare (one thread stopped: memfd + mmap near the target by injected syscalls, contents written from
/// the tracer) → commit (every thread stopped: activeness check, entry verification, 5-byte detours,
/// header ACTIVE) with BUSY back-off. Deactivation reverses it from the region header alone.
public enum UserPatchEngine {
    /// Prefix of the memfd name; `/proc/PID/maps` shows `/memfd:suture:<uuid> (deleted)`.
    public static let memfdPrefix = "suture:"

    /// Activates `request` in `pid`.
    /// - Throws: `UserPatchError`; `.alreadyApplied` is returned as `.alreadyActive` instead.
    public static func activate(_ request: UserPatchRequest, pid: Int32, startTime: UInt64? = nil,
                                options: UserPatchOptions = UserPatchOptions(),
                                hooks: UserPatchHooks = UserPatchHooks()) throws(UserPatchError) -> UserPatchEngineResult {
        // A tracer that dies while a thread runs injected registers or single-steps leaves it to crash:
        // SIGINT/SIGTERM/SIGHUP/SIGQUIT wait for the operation's end (when `suture` installed the deferral)
        // and the OOM killer is told to pick someone else meanwhile. SIGKILL cannot be deferred.
        cls_critical_enter()
        defer { cls_critical_leave() }
        let thread = PtraceThread(name: "suture-ptrace")
        defer { thread.shutdown() }
        let result: Result<UserPatchEngineResult, UserPatchError> = thread.run {
            let session = EngineSession(pid: pid, options: options, hooks: hooks)
            do throws(UserPatchError) {
                return .success(try session.activate(request, startTime: startTime))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Deactivates patch `uuid` in `pid` using only the region header found in the process.
    /// - Throws: `UserPatchError`.
    public static func deactivate(uuid: String, pid: Int32, startTime: UInt64? = nil,
                                  options: UserPatchOptions = UserPatchOptions(),
                                  hooks: UserPatchHooks = UserPatchHooks()) throws(UserPatchError) -> UserPatchEngineResult {
        // A tracer that dies while a thread runs injected registers or single-steps leaves it to crash:
        // SIGINT/SIGTERM/SIGHUP/SIGQUIT wait for the operation's end (when `suture` installed the deferral)
        // and the OOM killer is told to pick someone else meanwhile. SIGKILL cannot be deferred.
        cls_critical_enter()
        defer { cls_critical_leave() }
        let thread = PtraceThread(name: "suture-ptrace")
        defer { thread.shutdown() }
        let result: Result<UserPatchEngineResult, UserPatchError> = thread.run {
            let session = EngineSession(pid: pid, options: options, hooks: hooks)
            do throws(UserPatchError) {
                return .success(try session.deactivate(uuid: uuid.lowercased(), startTime: startTime))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Lists Suture patch regions in `pid` from `/proc/PID/maps` and their headers (process_vm_readv);
    /// never stops the process. Empty when the process is gone.
    public static func readback(pid: Int32) -> [UserPatchRegion] {
        guard let maps = ProcMapping.read(pid: pid) else { return [] }
        return regions(pid: pid, maps: maps)
    }

    static func regions(pid: Int32, maps: [ProcMapping]) -> [UserPatchRegion] {
        var byUUID: [String: (start: UInt64, end: UInt64)] = [:]
        var order: [String] = []
        for m in maps {
            guard let uuid = markerUUID(m.path) else { continue }
            if let r = byUUID[uuid] {
                byUUID[uuid] = (min(r.start, m.start), max(r.end, m.end))
            } else {
                byUUID[uuid] = (m.start, m.end)
                order.append(uuid)
            }
        }
        return order.map { uuid in
            let r = byUUID[uuid]!
            let header = readHeader(pid: pid, at: r.start)
            var region = UserPatchRegion(uuid: uuid, address: r.start, end: r.end, header: header)
            if let header, header.state == .active {
                region.entriesIntact = header.functions.allSatisfy {
                    Ptrace.readMemory(pid: pid, address: $0.site, count: $0.detour.count) == $0.detour
                }
            }
            return region
        }
    }

    /// `/memfd:suture:<uuid> (deleted)` → uuid.
    static func markerUUID(_ path: String) -> String? {
        let prefix = "/memfd:" + memfdPrefix
        guard path.hasPrefix(prefix) else { return nil }
        var rest = path.dropFirst(prefix.count)
        if rest.hasSuffix(" (deleted)") { rest = rest.dropLast(10) }
        return rest.isEmpty ? nil : String(rest)
    }

    static func readHeader(pid: Int32, at address: UInt64) -> PatchRegionHeader? {
        guard let fixed = Ptrace.readMemory(pid: pid, address: address, count: PatchRegionHeader.fixedSize) else {
            return nil
        }
        var size = 0
        for i in 0..<4 { size |= Int(fixed[48 + i]) << (8 * i) }
        guard size >= PatchRegionHeader.fixedSize, size <= 1 << 20,
              let all = Ptrace.readMemory(pid: pid, address: address, count: size) else { return nil }
        return PatchRegionHeader.decode(all)
    }
}

/// Per-thread state during a stop-the-world window.
struct StoppedThread {
    var stopped = false
    /// A signal the thread stopped with, to pass on at detach (0 = none).
    var pendingSignal: Int32 = 0
    /// Further signals that arrived while the thread was single-stepped; re-raised with tgkill after detach.
    var laterSignals: [Int32] = []

    /// Keeps `signal` for delivery once the thread is released.
    mutating func keep(_ signal: Int32) {
        if pendingSignal == 0 { pendingSignal = signal } else { laterSignals.append(signal) }
    }
}

/// Which code ranges make a thread "active" for the operation.
struct ActivenessRanges {
    /// Half-open ranges `[start, end)` with the function name for messages.
    var ranges: [(start: UInt64, end: UInt64, name: String)]

    /// The name of the range holding `address`, or nil.
    func name(of address: UInt64) -> String? {
        for r in ranges where address >= r.start && address < r.end { return r.name }
        return nil
    }
}

/// Why one stopped thread makes a commit or revert unsafe.
struct ActiveThreadHit {
    let tid: Int32
    /// Frame #0 (the pc) is in a range, no deeper frame is: single-stepping the thread can take it out.
    let pcOnly: Bool
    let message: String
}

/// Everything one operation on one process does; lives on the ptrace thread only.
final class EngineSession {
    let pid: Int32
    let comm: String
    let options: UserPatchOptions
    let hooks: UserPatchHooks
    /// Threads seized in the current window.
    var threads: [Int32: StoppedThread] = [:]
    var firstStopNs: UInt64 = 0
    /// Instructions single-stepped to take threads out of the patched code (whole operation).
    var stepOutInstructions = 0
    /// `/proc/PID/status` said `Seccomp: 2` (filter mode).
    var seccompFiltered = false
    /// Seccomp filters per injecting thread, read once per operation.
    var seccompFilters: [Int32: SeccompFilterSet] = [:]
    var gadget: UInt64?
    var savedScheduler: (policy: Int32, priority: Int32)?
    /// libdwfl state for CFI unwinding, created once per operation outside the stopped window.
    var unwinder: StackUnwinder?
    var unwinderTried = false

    func prepareUnwinder() {
        if unwinderTried { return }
        unwinderTried = true
        unwinder = StackUnwinder(pid: pid)
    }

    init(pid: Int32, options: UserPatchOptions, hooks: UserPatchHooks) {
        self.pid = pid
        self.comm = ProcFiles.comm(pid)
        self.options = options
        self.hooks = hooks
    }

    func error(_ code: UserPatchErrorCode, _ message: String, hint: String = "") -> UserPatchError {
        UserPatchError(code, pid: pid, comm: comm, message: message, hint: hint)
    }

    func processGone() -> Bool {
        guard let st = ProcFiles.stat(pid) else { return true }
        return st.state == "Z" || st.state == "X"
    }

    /// Maps a ptrace-level failure to a stable error.
    func map(_ f: PtraceFailure, phase: String) -> UserPatchError {
        switch f {
        case .exited:
            return error(.targetExited, "the process exited during \(phase)")
        case .exec:
            return error(.execRace, "the process called execve during \(phase)",
                         hint: "retry: the new program image is not patched")
        case let .permission(tid, e):
            return error(.permission, "PTRACE_SEIZE of thread \(tid) failed: \(String(cString: strerror(e)))",
                         hint: "needs root (CAP_SYS_PTRACE); check Yama, SELinux deny_ptrace and existing tracers")
        case let .timeout(tid):
            return error(.unstoppable, "thread \(tid) did not stop within \(options.stopDeadline) s during \(phase)",
                         hint: "the thread may be in uninterruptible sleep (D state) or in a frozen cgroup; retry later")
        case let .failed(request, tid, e):
            if processGone() { return error(.targetExited, "the process exited during \(phase)") }
            return error(.unstoppable, "\(request) on thread \(tid) failed during \(phase): \(String(cString: strerror(e)))")
        }
    }

    // MARK: - Pre-flight

    func preflight(startTime: UInt64?) throws(UserPatchError) {
        guard let st = ProcFiles.stat(pid), st.state != "Z", st.state != "X" else {
            throw error(.targetExited, "the process does not exist (or is a zombie)")
        }
        if let startTime, startTime != st.startTime {
            throw error(.targetExited, "the process started at tick \(startTime) is gone; pid \(pid) now belongs to another process")
        }
        if pid == getpid() {
            throw error(.permission, "refusing to patch the running suture process itself")
        }
        guard let status = ProcFiles.status("/proc/\(pid)/status") else {
            throw error(.targetExited, "the process exited before pre-flight")
        }
        if let tracer = status["TracerPid"].flatMap({ Int32($0) }), tracer != 0 {
            throw error(.permission, "already traced by pid \(tracer) (\(ProcFiles.comm(tracer)))",
                        hint: "detach the debugger or tracer (gdb, strace) first")
        }
        if let scope = ProcFiles.text("/proc/sys/kernel/yama/ptrace_scope")?.sutureTrim("\n "), scope == "3" {
            throw error(.permission, "Yama ptrace_scope is 3: no process may be traced",
                        hint: "ptrace_scope 3 cannot be lowered without a reboot")
        }
        if let mode = status["Seccomp"], mode == "1" {
            throw error(.seccompBlocked, "the process runs under seccomp strict mode: only read, write, _exit and sigreturn are allowed",
                        hint: "Suture cannot inject the memfd_create/mmap it needs; restart the service to pick up the fixed binary")
        }
        // Filter mode: the filters of the injecting thread are read and evaluated once it is stopped
        // (seccompFilterSet), so only system calls they allow are injected.
        seccompFiltered = status["Seccomp"] == "2"
    }

    // MARK: - Activate

    func activate(_ request: UserPatchRequest, startTime: UInt64?) throws(UserPatchError) -> UserPatchEngineResult {
        raiseScheduler()
        defer { restoreScheduler() }
        try preflight(startTime: startTime)
        guard let uuidBytes = PatchRegionHeader.uuidBytes(request.uuid), uuidBytes.count == 16 else {
            throw error(.notApplicable, "patch uuid '\(request.uuid)' is not a uuid")
        }
        _ = uuidBytes
        let uuid = request.uuid.lowercased()
        guard let maps = ProcMapping.read(pid: pid) else { throw error(.targetExited, "the process exited") }
        if maps.isEmpty { throw error(.notApplicable, "kernel thread (no memory map)") }
        let entity = request.entity
        guard let target = TargetObject.find(pid: pid, targetPath: entity.targetPath, buildID: entity.targetBuildID, maps: maps) else {
            throw error(.notApplicable, "\(entity.targetPath) is not mapped in this process")
        }
        if target.buildID != entity.targetBuildID.lowercased() {
            throw error(.notApplicable,
                        "\(target.path) has build-id \(target.buildID.isEmpty ? "(none)" : target.buildID), the patch targets \(entity.targetBuildID)")
        }
        if entity.functions.isEmpty { throw error(.unpatchableFunction, "the patch replaces no function") }

        // An existing region of this patch?
        var orphan: UserPatchRegion?
        if let existing = UserPatchEngine.regions(pid: pid, maps: maps).first(where: { $0.uuid == uuid }) {
            guard let header = existing.header else {
                throw error(.inconsistent, "a region named suture:\(uuid) exists but its header is unreadable",
                            hint: "restart the process")
            }
            switch header.state {
            case .active:
                var intact = true, pristine = true
                for f in header.functions {
                    let cur = Ptrace.readMemory(pid: pid, address: f.site, count: f.detour.count)
                    if cur != f.detour { intact = false }
                    if cur != Array(f.original.prefix(f.detour.count)) { pristine = false }
                }
                if intact {
                    return UserPatchEngineResult(outcome: .alreadyActive, pauseNanoseconds: nil, threads: 0,
                                                 busyRetries: 0, regionAddress: existing.address)
                }
                guard pristine else {
                    let f = header.functions.first { Ptrace.readMemory(pid: pid, address: $0.site, count: $0.detour.count) != $0.detour }
                    throw error(.foreignModification,
                                "patch is marked ACTIVE but \(f?.symbol ?? "an entry") at 0x\(hex(f?.site ?? 0)) holds neither its detour nor the original bytes",
                                hint: "another tool rewrote the entry; restart the process")
                }
                // Every entry holds its original bytes again (a debugger or another tool restored them): the
                // region is intact but unreached. Threads may still be inside it, so it is not replaced: the
                // detours are committed again, pointing at it (whole process stopped, as for a new patch).
                return try reattach(existing: existing, header: header)
            case .inconsistent:
                throw error(.inconsistent, "the region of this patch is marked INCONSISTENT by an earlier failed rollback",
                            hint: "restart the process")
            case .prepared:
                orphan = existing
            }
        }

        // Plan each detour from the live entry bytes (nothing is touched yet).
        struct Planned { var fn: BundleEntityView.Function; var entry: UInt64; var site: UInt64; var original: [UInt8] }
        var planned: [Planned] = []
        for f in entity.functions {
            let entry = target.loadBias &+ target.linkBase &+ f.offset
            guard let cur = Ptrace.readMemory(pid: pid, address: entry, count: 16) else {
                throw error(.unpatchableFunction, "\(f.symbol) at 0x\(hex(entry)) is not readable (offset 0x\(hex(f.offset)) outside the object?)")
            }
            if !f.expectedBytes.isEmpty, !cur.starts(with: f.expectedBytes.prefix(16)) {
                throw error(.foreignModification,
                            "\(f.symbol) at 0x\(hex(entry)) holds \(PatchRegionHeader.hexString(cur)), expected \(PatchRegionHeader.hexString(f.expectedBytes))",
                            hint: cur.first == 0xe9 || cur.first == 0xcc || cur.starts(with: [0xf3, 0x0f, 0x1e, 0xfa, 0xe9])
                                ? "another live patch or a debugger breakpoint is on this function" : "the bundle was made for other bytes")
            }
            let skip: UInt64 = cur.starts(with: [0xf3, 0x0f, 0x1e, 0xfa]) ? 4 : 0
            if f.size < skip + 5 {
                throw error(.unpatchableFunction, "\(f.symbol) is \(f.size) bytes, shorter than the \(skip + 5)-byte detour",
                            hint: "patch its caller instead")
            }
            planned.append(Planned(fn: f, entry: entry, site: entry + skip,
                                   original: Array(cur[Int(skip)..<(Int(skip) + 5)])))
        }

        // Layout.
        let page = 4096
        let headerSize = PatchRegionHeader.size(functionCount: planned.count, pageSize: page)
        let specs = request.image.segments
        var segmentOffsets: [Int] = []
        var total = headerSize
        for s in specs {
            segmentOffsets.append(total)
            total += (max(s.size, 1) + page - 1) / page * page
        }

        var resolveImport: ((String) -> UInt64?)?
        var attemptMaps = maps
        var excluded: [(UInt64, UInt64)] = []
        for _ in 0..<8 {
            guard let base = chooseRegionAddress(maps: attemptMaps, target: target, size: UInt64(total),
                                                 excluded: excluded) else {
                throw error(.noNearSpace,
                            "no free \(total)-byte range within ±2 GiB of \(target.path) [0x\(hex(target.low)), 0x\(hex(target.high)))",
                            hint: "the address space around the target is full")
            }
            let firstSegment = base + UInt64(headerSize)
            let pid = self.pid
            if resolveImport == nil {
                resolveImport = request.makeImportResolver?(pid) ?? { _ in nil }
            }
            let resolver = resolveImport!
            let linked: UserPatchLinkedImage
            do {
                linked = try request.image.linkImage(base: firstSegment, targetBase: target.loadBias &+ target.linkBase,
                                                resolveImport: resolver)
            } catch let e {
                let text = "\(e)"
                if text.lowercased().contains("overflow") {
                    throw error(.noNearSpace, "linking the patch at 0x\(hex(firstSegment)) failed: \(text)")
                }
                throw error(.unpatchableFunction, "linking the patch failed: \(text)")
            }
            guard linked.segments.count == specs.count else {
                throw error(.unpatchableFunction, "the linked image has \(linked.segments.count) segments, its layout \(specs.count)")
            }
            var functions: [PatchRegionHeader.Function] = []
            for p in planned {
                guard let repl = linked.replacements[p.fn.replacement] else {
                    throw error(.unpatchableFunction, "replacement symbol \(p.fn.replacement) for \(p.fn.symbol) is not in the payload")
                }
                let rel = Int64(bitPattern: repl &- (p.site + 5))
                guard rel >= Int64(Int32.min), rel <= Int64(Int32.max) else {
                    throw error(.noNearSpace, "\(p.fn.symbol): replacement at 0x\(hex(repl)) is out of rel32 reach of 0x\(hex(p.site))")
                }
                let r = UInt32(bitPattern: Int32(rel))
                let detour: [UInt8] = [0xe9, UInt8(r & 0xff), UInt8((r >> 8) & 0xff), UInt8((r >> 16) & 0xff), UInt8(r >> 24)]
                functions.append(PatchRegionHeader.Function(entry: p.entry, site: p.site, size: p.fn.size,
                                                            replacement: repl, original: p.original, detour: detour,
                                                            symbol: p.fn.symbol))
            }
            var header = PatchRegionHeader(state: .prepared, uuid: uuid, loadBias: target.loadBias,
                                           regionSize: UInt64(total), headerSize: UInt32(headerSize),
                                           buildID: target.buildID, functions: functions)
            var image = [(offset: Int, bytes: [UInt8], size: Int, prot: RegionProtection)]()
            image.append((0, header.encode(), headerSize, .read))
            for (i, s) in specs.enumerated() {
                image.append((segmentOffsets[i], linked.segments[i], (max(s.size, 1) + page - 1) / page * page, s.protection))
            }

            // Prepare: one thread stopped.
            let prepared: PreparedRegion
            do throws(PrepareFailure) {
                prepared = try prepare(uuid: uuid, base: base, total: total, image: image, orphan: orphan)
            } catch {
                switch error {
                case .addressTaken:
                    excluded.append((base, base + UInt64(total)))
                    guard let fresh = ProcMapping.read(pid: pid) else { throw self.error(.targetExited, "the process exited") }
                    attemptMaps = fresh
                    continue
                case let .engine(e):
                    throw e
                }
            }
            orphan = nil
            hooks.afterPrepare?(pid)

            // Commit with BUSY back-off; the prepared region is unmapped again when the commit gives up
            // (nothing references it), except when the process is gone or the region is INCONSISTENT.
            let ((pause, count), retries) = try retryingBusy({ () throws(CommitFailure) in
                try commitDetours(region: prepared, header: &header)
            }, onGiveUp: { _ in
                cleanupPreparedRegion(prepared)
            }, onFatal: { e in
                if e.code != .targetExited && e.code != .execRace && e.code != .inconsistent { cleanupPreparedRegion(prepared) }
            })
            return UserPatchEngineResult(outcome: .activated, pauseNanoseconds: pause, threads: count,
                                         busyRetries: retries, regionAddress: base,
                                         steppedInstructions: stepOutInstructions)
        }
        throw error(.noNearSpace, "every free range near \(target.path) was taken concurrently (8 attempts)")
    }

    /// Re-commits the detours of an ACTIVE region whose entries were restored to their original bytes by
    /// someone else ("detached"), with the same BUSY back-off as an activation. The region is left as it is
    /// when this fails.
    func reattach(existing: UserPatchRegion, header: PatchRegionHeader) throws(UserPatchError) -> UserPatchEngineResult {
        let mapName = "/proc/\(pid)/map_files/\(hex(existing.address))-\(hex(existing.address + UInt64(header.headerSize)))"
        let file = open(mapName, O_RDWR | O_CLOEXEC)
        if file < 0 {
            throw error(.permission, "cannot open the region header \(mapName): \(String(cString: strerror(errno)))")
        }
        defer { close(file) }
        let region = PreparedRegion(base: existing.address, size: Int(existing.end - existing.address), file: file)
        var h = header
        let ((pause, count), retries) = try retryingBusy { () throws(CommitFailure) in
            try commitDetours(region: region, header: &h)
        }
        return UserPatchEngineResult(outcome: .activated, pauseNanoseconds: pause, threads: count, busyRetries: retries,
                                     regionAddress: existing.address, steppedInstructions: stepOutInstructions)
    }

    /// Runs one stop-the-world `attempt` until it succeeds, retrying BUSY after 1 ms, 2 ms, 4 ms … until
    /// `options.busyDeadline`. `onGiveUp` runs before the last BUSY error is thrown at the deadline,
    /// `onFatal` before a fatal one is.
    /// - Returns: the attempt's result and the number of BUSY retries.
    func retryingBusy<T>(_ attempt: () throws(CommitFailure) -> T, onGiveUp: (UserPatchError) -> Void = { _ in },
                         onFatal: (UserPatchError) -> Void = { _ in }) throws(UserPatchError) -> (T, Int) {
        let deadline = cls_monotonic_ns() + UInt64(options.busyDeadline * 1e9)
        var backoffNs: UInt64 = 1_000_000
        var retries = 0
        while true {
            do throws(CommitFailure) {
                return (try attempt(), retries)
            } catch {
                switch error {
                case let .busy(e):
                    retries += 1
                    if cls_monotonic_ns() + backoffNs > deadline {
                        onGiveUp(e)
                        throw e
                    }
                    var ts = timespec(tv_sec: Int(backoffNs / 1_000_000_000), tv_nsec: Int(backoffNs % 1_000_000_000))
                    nanosleep(&ts, nil)
                    backoffNs *= 2
                case let .fatal(e):
                    onFatal(e)
                    throw e
                }
            }
        }
    }

    /// Picks a page-aligned address for `size` bytes such that every byte of the region is within
    /// ±2 GiB (rel32 reach) of every byte of the target object, in a hole of `maps` with a one-page gap on
    /// both sides. Prefers holes below the object (the brk heap grows upward right after a non-PIE
    /// executable), nearest first.
    func chooseRegionAddress(maps: [ProcMapping], target: TargetObject, size: UInt64,
                             excluded: [(UInt64, UInt64)]) -> UInt64? {
        let page: UInt64 = 4096
        let reach: UInt64 = (1 << 31) - 1
        let minText = ProcFiles.text("/proc/sys/vm/mmap_min_addr")?.sutureTrim("\n ") ?? ""
        let minAddr = max(UInt64(minText) ?? 65536, 65536)
        // Window for the region start: [high - reach, low + reach - size].
        let lowLimit = target.high > reach ? target.high - reach : 0
        let highLimit = target.low + reach - size
        let sorted = maps.sorted { $0.start < $1.start }
        var holes: [(UInt64, UInt64)] = []
        var prevEnd = minAddr
        for m in sorted {
            if m.start > prevEnd { holes.append((prevEnd, m.start)) }
            prevEnd = max(prevEnd, m.end)
        }
        holes.append((prevEnd, 0x7fff_ffff_f000))
        let heapEnd = sorted.first(where: { $0.path == "[heap]" })?.end
        var best: (addr: UInt64, distance: UInt64)?
        for (hs, he) in holes {
            let start = hs + page, end = he >= page ? he - page : 0
            guard end > start, end - start >= size else { continue }
            var candidates: [UInt64] = []
            // Top of the hole (closest to an object above it) and bottom (closest to an object below).
            candidates.append((end - size) & ~(page - 1))
            if hs != heapEnd { candidates.append((start + page - 1) & ~(page - 1)) }
            for c in candidates {
                guard c >= start, c + size <= end, c >= lowLimit, c <= highLimit else { continue }
                if excluded.contains(where: { c < $0.1 && c + size > $0.0 }) { continue }
                let distance = c + size <= target.low ? target.low - (c + size) : (c >= target.high ? c - target.high : 0)
                // Slightly prefer below-the-object placements.
                let weighted = c < target.low ? distance : distance + (1 << 30)
                if best == nil || weighted < best!.distance { best = (c, weighted) }
            }
        }
        return best?.addr
    }

    // MARK: - Prepare (one thread stopped)

    enum PrepareFailure: Error {
        case addressTaken
        case engine(UserPatchError)
    }

    struct PreparedRegion {
        var base: UInt64
        var size: Int
        /// Tracer-side descriptor of the memfd (`/proc/PID/fd/N` reopened), for header updates.
        var file: Int32
    }

    func prepare(uuid: String, base: UInt64, total: Int,
                 image: [(offset: Int, bytes: [UInt8], size: Int, prot: RegionProtection)],
                 orphan: UserPatchRegion?) throws(PrepareFailure) -> PreparedRegion {
        var taken = false
        let result: PreparedRegion?
        do {
            result = try withInjectionThread(phase: "prepare") { (inj) throws(UserPatchError) -> PreparedRegion? in
                if let orphan {
                    _ = try inj.syscall(11 /* munmap */, orphan.address, orphan.end - orphan.address)
                }
                // memfd_create(name, MFD_CLOEXEC | MFD_EXEC); MFD_EXEC (6.3+) keeps vm.memfd_noexec=1 from
                // sealing it non-executable; older kernels reject the flag with EINVAL.
                let name = Array((UserPatchEngine.memfdPrefix + uuid).utf8) + [0]
                let fdRaw = try inj.withScratchBytes(name) { (addr) throws(UserPatchError) -> Int64 in
                    // MFD_CLOEXEC|MFD_EXEC (Linux 6.3+; EINVAL before), else MFD_CLOEXEC alone; a seccomp
                    // filter that allows only the latter gets only the latter.
                    var r = inj.allows(319, addr, 0x1 | 0x10) ? try inj.syscall(319, addr, 0x1 | 0x10) : -Int64(EINVAL)
                    if r == -Int64(EINVAL) { r = try inj.syscall(319, addr, 0x1) }
                    return r
                }
                guard fdRaw >= 0 else {
                    throw self.injectedFailure("memfd_create", fdRaw,
                                               hint: fdRaw == -Int64(EACCES) ? "vm.memfd_noexec=2 forbids executable memfds" : "")
                }
                let fd = UInt64(fdRaw)
                var mapped: [(UInt64, UInt64)] = []
                func undo() {
                    for (a, l) in mapped { _ = try? inj.syscall(11, a, l) }
                    _ = try? inj.syscall(3, fd)
                }
                // The tracer opens the memfd through /proc/PID/fd and sizes and fills it itself: the size is
                // checked against the tracer's RLIMIT_FSIZE, not the target's (an injected ftruncate past a
                // service's `LimitFSIZE=` failed with EFBIG and queued SIGXFSZ, which kills by default), and
                // no writable+executable mapping ever exists in the target.
                let file = open("/proc/\(self.pid)/fd/\(fd)", O_RDWR | O_CLOEXEC)
                if file < 0 {
                    let e = errno
                    undo()
                    throw self.error(.permission, "cannot open the patch memfd via /proc/\(self.pid)/fd/\(fd): \(String(cString: strerror(e)))")
                }
                if ftruncate(file, off_t(total)) != 0 {
                    let e = errno
                    close(file)
                    undo()
                    throw self.error(.permission, "sizing the patch memfd to \(total) bytes failed: \(String(cString: strerror(e)))",
                                     hint: "out of memory, or suture's own RLIMIT_FSIZE is too small")
                }
                for seg in image {
                    let addr = base + UInt64(seg.offset)
                    // mmap(addr, len, prot, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, offset)
                    let r = try inj.syscall(9, addr, UInt64(seg.size), UInt64(seg.prot.mmapBits), 0x01 | 0x100000, fd,
                                            UInt64(seg.offset))
                    if r == -Int64(EEXIST) || (r >= 0 && UInt64(r) != addr) {
                        if r >= 0 { _ = try? inj.syscall(11, UInt64(r), UInt64(seg.size)) }
                        close(file)
                        undo()
                        taken = true
                        return nil
                    }
                    if r < 0 { close(file); undo(); throw self.injectedFailure("mmap", r) }
                    mapped.append((addr, UInt64(seg.size)))
                }
                for seg in image where !seg.bytes.isEmpty {
                    let ok = seg.bytes.withUnsafeBytes { pwrite(file, $0.baseAddress, $0.count, off_t(seg.offset)) == $0.count }
                    if !ok {
                        close(file)
                        undo()
                        throw self.error(.inconsistent, "writing the patch image into the memfd failed")
                    }
                }
                let cr = try inj.syscall(3 /* close */, fd)
                if cr < 0 { close(file); undo(); throw self.injectedFailure("close", cr) }
                return PreparedRegion(base: base, size: total, file: file)
            }
        } catch {
            throw .engine(error)
        }
        if taken { throw .addressTaken }
        guard let result else { throw .engine(self.error(.inconsistent, "prepare produced no region")) }
        return result
    }

    func injectedFailure(_ name: String, _ r: Int64, hint: String = "") -> UserPatchError {
        let e = Int32(-r)
        let text = "injected \(name) failed: \(String(cString: strerror(e)))"
        if e == EPERM || e == EACCES {
            return error(.permission, text, hint: hint.isEmpty ? "an LSM (SELinux execmem, AppArmor) or policy denied it" : hint)
        }
        if e == ENOMEM { return error(.noNearSpace, text, hint: hint) }
        return error(.permission, text, hint: hint)
    }

    /// Removes a prepared (inert) region after a failed commit; best effort.
    func cleanupPreparedRegion(_ region: PreparedRegion) {
        close(region.file)
        _ = try? withInjectionThread(phase: "cleanup") { (inj) throws(UserPatchError) in
            _ = try inj.syscall(11, region.base, UInt64(region.size))
        }
    }

    /// Finds an existing `syscall` instruction (0f 05) in an executable mapping: the vDSO first (8 KiB),
    /// then libc, then any other r-x mapping. Nothing is written into the target's text.
    func findSyscallGadget() -> UInt64? {
        if let gadget { return gadget }
        guard let maps = ProcMapping.read(pid: pid) else { return nil }
        let exec = maps.filter { $0.executable && $0.readable }
        let ordered = exec.filter { $0.path == "[vdso]" } + exec.filter { $0.path.contains("/libc") }
            + exec.filter { $0.path != "[vdso]" && !$0.path.contains("/libc") && !$0.path.hasPrefix("/memfd:") }
        for m in ordered {
            var addr = m.start
            while addr < m.end {
                let n = Int(min(m.end - addr, 65536))
                guard let b = Ptrace.readMemory(pid: pid, address: addr, count: n) else { break }
                var i = 0
                while i + 1 < b.count {
                    if b[i] == 0x0f && b[i + 1] == 0x05 {
                        gadget = addr + UInt64(i)
                        return gadget
                    }
                    i += 1
                }
                addr += UInt64(max(n - 1, 1))
            }
        }
        return nil
    }

    /// Seizes one thread (preferring one blocked in a syscall, never one inside an rseq critical section),
    /// runs `body` with an injector, restores the thread's registers exactly and detaches it.
    func withInjectionThread<T>(phase: String, _ body: (Injector) throws(UserPatchError) -> T) throws(UserPatchError) -> T {
        guard let gadget = findSyscallGadget() else {
            throw error(.unpatchableFunction, "no syscall instruction found in any executable mapping")
        }
        let deadline = cls_monotonic_ns() + UInt64(options.stopDeadline * 1e9)
        while true {
            let all = ProcFiles.tids(pid)
            if all.isEmpty { throw error(.targetExited, "the process exited during \(phase)") }
            let inSyscall = all.filter { ProcFiles.inSyscall(pid: pid, tid: $0) }
            let ordered = inSyscall + all.filter { !inSyscall.contains($0) }
            for tid in ordered where vforkChild(of: tid) == nil {
                do throws(PtraceFailure) {
                    try Ptrace.seize(tid, options: Int(CLS_PTRACE_O_TRACEEXEC))
                } catch {
                    if case .exited = error { continue }
                    throw map(error, phase: phase)
                }
                var pending: [Int32] = []
                var saved = user_regs_struct()
                do throws(PtraceFailure) {
                    try Ptrace.interrupt(tid)
                    let report = try Ptrace.waitStop(tid, deadline: deadline)
                    if report == .gone { continue }
                    if let s = report.deliverableSignal { pending.append(s) }
                    saved = try Ptrace.getRegisters(tid)
                } catch {
                    Ptrace.detach(tid, signal: pending.first ?? 0)
                    if case .exited = error { continue }
                    throw map(error, phase: phase)
                }
                if inRseqCriticalSection(tid: tid, rip: saved.rip) {
                    Ptrace.detach(tid, signal: pending.first ?? 0)
                    continue
                }
                var filters: SeccompFilterSet?
                do throws(UserPatchError) {
                    filters = try seccompFilterSet(tid: tid, gadget: gadget)
                } catch {
                    Ptrace.detach(tid, signal: pending.first ?? 0)
                    throw error
                }
                let inj = Injector(pid: pid, tid: tid, saved: saved, gadget: gadget, deadline: deadline, session: self)
                inj.pendingSignals = pending
                inj.seccomp = filters
                let result: Result<T, UserPatchError>
                do throws(UserPatchError) {
                    result = .success(try body(inj))
                } catch {
                    result = .failure(error)
                }
                // Restore registers exactly (orig_rax and an -ERESTART* rax included, so an interrupted
                // syscall restarts), then detach passing on the first pending signal and re-raising others.
                let restored: Bool
                do throws(PtraceFailure) {
                    try Ptrace.setRegisters(tid, saved)
                    restored = true
                } catch {
                    restored = false
                }
                Ptrace.detach(tid, signal: inj.pendingSignals.first ?? 0)
                for s in inj.pendingSignals.dropFirst() { _ = cls_tgkill(pid, tid, s) }
                if !restored && !processGone() {
                    throw error(.inconsistent, "could not restore the registers of thread \(tid)", hint: "restart the process")
                }
                return try result.get()
            }
            if cls_monotonic_ns() > deadline {
                throw error(.unstoppable, "no thread could be stopped outside an rseq critical section within \(options.stopDeadline) s")
            }
            var ts = timespec(tv_sec: 0, tv_nsec: 1_000_000)
            nanosleep(&ts, nil)
        }
    }

    /// The system calls the engine injects, with the flag arguments it uses (addresses are checked again
    /// with their real values at each injection): memfd_create(MFD_CLOEXEC[|MFD_EXEC]),
    /// mmap(PROT_READ / PROT_READ|PROT_WRITE / PROT_READ|PROT_EXEC, MAP_SHARED|MAP_FIXED_NOREPLACE), close,
    /// munmap.
    static let injectedSyscallShapes: [(name: String, nr: Int32, args: [UInt64])] = [
        ("mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) for the memfd name", 9, [0, 4096, 0x3, 0x22, UInt64.max, 0]),
        ("memfd_create(MFD_CLOEXEC)", 319, [0, 0x1]),
        ("mmap(PROT_READ, MAP_SHARED|MAP_FIXED_NOREPLACE)", 9, [0, 4096, 0x1, 0x100001, 3, 0]),
        ("mmap(PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED_NOREPLACE)", 9, [0, 4096, 0x3, 0x100001, 3, 0]),
        ("mmap(PROT_READ|PROT_EXEC, MAP_SHARED|MAP_FIXED_NOREPLACE)", 9, [0, 4096, 0x5, 0x100001, 3, 0]),
        ("close", 3, [3]),
        ("munmap", 11, [0, 4096]),
    ]

    /// For a process in seccomp filter mode: reads the filters of stopped thread `tid` and checks that they
    /// allow every system call the engine injects (`injectedSyscallShapes`, run from `gadget`). Returns nil
    /// when the process has no filter.
    /// - Throws: SECCOMP_BLOCKED naming the system call and the filter's action, or when the filters cannot
    ///   be read (nothing has been injected at that point).
    func seccompFilterSet(tid: Int32, gadget: UInt64) throws(UserPatchError) -> SeccompFilterSet? {
        guard seccompFiltered else { return nil }
        if let cached = seccompFilters[tid] { return cached }
        let set: SeccompFilterSet
        do throws(SeccompFilterSet.ReadFailure) {
            set = try SeccompFilterSet.read(tid: tid)
        } catch {
            throw self.error(.seccompBlocked, "the process runs under a seccomp filter that cannot be read (\(error)); nothing was injected",
                             hint: "needs CAP_SYS_ADMIN and a kernel with CONFIG_CHECKPOINT_RESTORE to evaluate the filter")
        }
        for shape in EngineSession.injectedSyscallShapes {
            let action = set.action(for: SeccompData(nr: shape.nr, instructionPointer: gadget &+ 2, args: shape.args))
            if SeccompFilterSet.allows(action) { continue }
            // memfd_create: MFD_EXEC is tried first and MFD_CLOEXEC alone is the fallback; either will do.
            if shape.nr == 319 {
                let withExec = set.action(for: SeccompData(nr: 319, instructionPointer: gadget &+ 2, args: [0, 0x11]))
                if SeccompFilterSet.allows(withExec) { continue }
            }
            throw self.error(.seccompBlocked,
                             "the seccomp filter of thread \(tid) answers \(shape.name) with \(SeccompFilterSet.describe(action)); nothing was injected",
                             hint: "Suture injects only system calls the process's filters allow; restart the service to pick up the fixed binary")
        }
        seccompFilters[tid] = set
        return set
    }

    /// Whether `rip` lies in the thread's current rseq critical section (struct rseq.rseq_cs →
    /// struct rseq_cs {version, flags, start_ip, post_commit_offset, abort_ip}; linux/rseq.h).
    func inRseqCriticalSection(tid: Int32, rip: UInt64) -> Bool {
        guard let area = Ptrace.rseqArea(tid),
              let csPtr = Ptrace.readMemory(pid: pid, address: area + 8, count: 8) else { return false }
        let cs = csPtr.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        if cs == 0 { return false }
        guard let d = Ptrace.readMemory(pid: pid, address: cs, count: 32) else { return true }
        func u(_ o: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(d[o + $1]) << (8 * UInt64($1)) } }
        let start = u(8), len = u(16)
        return rip >= start && rip < start &+ len
    }

    // MARK: - Stop the world

    /// Seizes and interrupts every thread until the set of TIDs in `/proc/PID/task` is stable and every
    /// one is stopped. New threads created meanwhile are auto-attached (`PTRACE_O_TRACECLONE`).
    func stopAll(phase: String) throws(UserPatchError) {
        threads = [:]
        firstStopNs = 0
        if processGone() { throw error(.targetExited, "the process exited before \(phase)") }
        // Checked before anything is seized (the suspended thread could not be stopped, nor released).
        for tid in ProcFiles.tids(pid) {
            if let child = vforkChild(of: tid) {
                throw error(.busy, "thread \(tid) is suspended in vfork(): vfork child \(child) shares the memory and has not exec'd or exited yet",
                            hint: "retry in a moment")
            }
        }
        let deadline = cls_monotonic_ns() + UInt64(options.stopDeadline * 1e9)
        let opts = Int(CLS_PTRACE_O_TRACECLONE | CLS_PTRACE_O_TRACEEXEC)
        // A zombie leader (main thread called pthread_exit) never reports a stop.
        let leaderZombie = ProcFiles.text("/proc/\(pid)/task/\(pid)/stat").map { t -> Bool in
            guard let c = t.lastIndex(of: ")") else { return false }
            return t[t.index(after: c)...].dropFirst().first == "Z"
        } ?? false
        do throws(PtraceFailure) {
            while true {
                let listed = ProcFiles.tids(pid)
                if listed.isEmpty { throw PtraceFailure.exited(tid: pid) }
                var fresh = false
                for tid in listed where threads[tid] == nil {
                    if tid == pid && leaderZombie { continue }
                    fresh = true
                    do throws(PtraceFailure) {
                        try Ptrace.seize(tid, options: opts)
                        threads[tid] = StoppedThread()
                        try Ptrace.interrupt(tid)
                    } catch {
                        switch error {
                        case .exited:
                            threads[tid] = nil
                        case .permission:
                            // Already ours: auto-attached by TRACECLONE before we saw its clone event.
                            let tracer = ProcFiles.status("/proc/\(pid)/task/\(tid)/status")?["TracerPid"]
                            if tracer == String(getpid()) {
                                threads[tid] = StoppedThread()
                            } else if ProcFiles.status("/proc/\(pid)/task/\(tid)/status") == nil {
                                threads[tid] = nil
                            } else {
                                throw error
                            }
                        default:
                            throw error
                        }
                    }
                }
                var waited = false
                for tid in Array(threads.keys) where threads[tid]?.stopped == false {
                    waited = true
                    let report = try Ptrace.waitStop(tid, deadline: deadline)
                    switch report {
                    case .gone:
                        threads[tid] = nil
                    case let .stopped(sig, event):
                        if firstStopNs == 0 { firstStopNs = cls_monotonic_ns() }
                        threads[tid]?.stopped = true
                        if event == Int32(CLS_PTRACE_EVENT_CLONE) {
                            let child = Int32(truncatingIfNeeded: Ptrace.eventMessage(tid))
                            if child > 0, threads[child] == nil { threads[child] = StoppedThread() }
                        } else if event == 0 {
                            threads[tid]?.pendingSignal = sig
                        }
                    }
                }
                if !fresh && !waited { break }
            }
        } catch {
            resumeAll()
            throw map(error, phase: phase)
        }
    }

    /// Detaches every seized thread, passing on its pending signal; returns the time of the last detach.
    @discardableResult
    func resumeAll() -> UInt64 {
        for (tid, t) in threads {
            Ptrace.detach(tid, signal: t.stopped ? t.pendingSignal : 0)
            for s in t.laterSignals { _ = cls_tgkill(pid, tid, s) }
        }
        let end = cls_monotonic_ns()
        threads = [:]
        return end
    }

    /// Runs the ptrace thread at SCHED_FIFO for the whole operation (prepare, every stopped window and
    /// the detaches): busy targets would otherwise starve the tracer between its polls and detaches
    /// (measured: seconds instead of microseconds). The previous policy is restored when the operation ends.
    func raiseScheduler() {
        if savedScheduler != nil { return }
        var prio: Int32 = 0
        let policy = cls_get_thread_scheduler(&prio)
        guard policy >= 0 else { return }
        if cls_set_thread_scheduler(SCHED_FIFO, 10) == 0 {
            savedScheduler = (policy, prio)
        }
    }

    func restoreScheduler() {
        if let s = savedScheduler {
            _ = cls_set_thread_scheduler(s.policy, s.priority)
            savedScheduler = nil
        }
    }

    /// BUSY when another process shares our target's memory (a `vfork`/`posix_spawn` child that has not
    /// exec'd yet): it is not in `/proc/PID/task`, so it cannot be stopped with the threads.
    func sharedMemoryChild() -> Int32? {
        for tid in threads.keys {
            if let child = vforkChild(of: tid) { return child }
        }
        return nil
    }

    /// The child of thread `tid` that still shares the process's memory (`kcmp(KCMP_VM)`): `tid` is
    /// suspended in `vfork()` until that child execs or exits, in a killable sleep that `PTRACE_INTERRUPT`
    /// cannot end, so it must never be seized meanwhile (a seized thread that cannot stop cannot be
    /// detached either).
    func vforkChild(of tid: Int32) -> Int32? {
        for child in ProcFiles.children(pid: pid, tid: tid) where cls_kcmp(pid, child, 1 /* KCMP_VM */, 0, 0) == 0 {
            return child
        }
        return nil
    }

    enum CommitFailure: Error {
        case busy(UserPatchError)
        case fatal(UserPatchError)
    }

    /// Finds a thread executing in, or returning into, one of `ranges`: `rip`, the return addresses found
    /// by unwinding its stack with libdw CFI, and (safety net) every word of its used stack. A thread whose
    /// only hit is its pc (a hot leaf function, the common case for small patched functions) is first
    /// single-stepped out of the ranges (`stepOut`) and checked again; only what remains is reported.
    /// - Returns: a description of the first thread still active (tid, function, frame), or nil.
    func activeThread(ranges: ActivenessRanges, maps: [ProcMapping]) throws(CommitFailure) -> String? {
        for tid in threads.keys.sorted() {
            guard var hit = try activeHit(tid: tid, ranges: ranges, maps: maps) else { continue }
            if hit.pcOnly, options.stepOutLimit > 0 {
                let steps = try stepOut(tid: tid, ranges: ranges)
                if let steps {
                    stepOutInstructions += steps
                    guard let again = try activeHit(tid: tid, ranges: ranges, maps: maps) else { continue }
                    hit = again
                }
            }
            return hit.message
        }
        return nil
    }

    /// The activeness check of one stopped thread.
    func activeHit(tid: Int32, ranges: ActivenessRanges, maps: [ProcMapping]) throws(CommitFailure) -> ActiveThreadHit? {
        guard threads[tid] != nil else { return nil }
        let lowest = ranges.ranges.map(\.start).min() ?? 0
        let highest = ranges.ranges.map(\.end).max() ?? 0
        let regs: user_regs_struct
        do throws(PtraceFailure) {
            regs = try Ptrace.getRegisters(tid)
        } catch {
            if case .exited = error, !processGone() { return nil }
            throw .fatal(map(error, phase: "the activeness check"))
        }
        let pcHit = ranges.name(of: regs.rip).map {
            "thread \(tid) is executing \($0) (frame #0, pc 0x\(hex(regs.rip)))"
        }
        if let frames = unwinder?.returnAddresses(tid: tid) {
            for (i, pc) in frames.enumerated() {
                // A return address belongs to the call instruction before it.
                if let name = ranges.name(of: pc &- 1) {
                    return ActiveThreadHit(tid: tid, pcOnly: false, message: pcHit
                        ?? "thread \(tid) will return into \(name) (frame #\(i + 1), pc 0x\(hex(pc)))")
                }
            }
        }
        let rsp = regs.rsp
        if let m = maps.first(where: { rsp >= $0.start && rsp < $0.end }) {
            let from = max(m.start, rsp >= 128 ? rsp - 128 : 0) & ~7
            let to = min(m.end, from + (8 << 20))
            if let words = Ptrace.readMemory(pid: pid, address: from, count: Int(to - from)) {
                var found: (UInt64, String)?
                words.withUnsafeBytes { raw in
                    let w = raw.bindMemory(to: UInt64.self)
                    var i = 0
                    let n = w.count
                    while i < n {
                        let v = w[i]
                        // Fast reject: one comparison pair per word against the union bounds.
                        if v >= lowest && v <= highest, let name = ranges.name(of: v) ?? ranges.name(of: v &- 1) {
                            found = (from + UInt64(i * 8), name)
                            break
                        }
                        i += 1
                    }
                }
                if let (at, name) = found {
                    return ActiveThreadHit(tid: tid, pcOnly: false, message: pcHit
                        ?? "thread \(tid) has a code address of \(name) on its stack at 0x\(hex(at)) (stack scan)")
                }
            }
        }
        return pcHit.map { ActiveThreadHit(tid: tid, pcOnly: true, message: $0) }
    }

    /// Single-steps stopped thread `tid` (`PTRACE_SINGLESTEP`) until its pc leaves `ranges`, at most
    /// `options.stepOutLimit` instructions. Never steps a thread that is inside a system call (it could
    /// block or restart), about to enter the kernel (`syscall`, `sysenter`, `int 0x80`), or inside an rseq
    /// critical section.
    /// Signals that arrive meanwhile are kept and passed on at detach.
    /// - Returns: the number of instructions stepped when the thread left the ranges (or exited), nil when
    ///   it did not (the caller reports BUSY and retries later).
    /// - Throws: `.fatal` when ptrace fails for another reason than the thread exiting.
    func stepOut(tid: Int32, ranges: ActivenessRanges) throws(CommitFailure) -> Int? {
        let deadline = cls_monotonic_ns() + UInt64(options.stopDeadline * 1e9)
        var steps = 0
        do throws(PtraceFailure) {
            var regs = try Ptrace.getRegisters(tid)
            // orig_rax != -1: stopped inside a system call (restart semantics must stay untouched).
            if regs.orig_rax != UInt64.max || inRseqCriticalSection(tid: tid, rip: regs.rip) { return nil }
            while ranges.name(of: regs.rip) != nil {
                if steps >= options.stepOutLimit { return nil }
                // syscall (0f 05), sysenter (0f 34), int 0x80 (cd 80): entering the kernel could block.
                guard let op = Ptrace.readMemory(pid: pid, address: regs.rip, count: 2),
                      op != [0x0F, 0x05], op != [0x0F, 0x34], op != [0xCD, 0x80] else {
                    return nil
                }
                try Ptrace.singleStep(tid)
                switch try Ptrace.waitStop(tid, deadline: deadline) {
                case .gone:
                    threads[tid] = nil
                    return steps
                case let .stopped(sig, event):
                    // The trap of the step itself is SIGTRAP; any other signal arrived meanwhile.
                    if event == 0 && sig != SIGTRAP { threads[tid]?.keep(sig) }
                }
                steps += 1
                regs = try Ptrace.getRegisters(tid)
            }
            return steps
        } catch {
            if case .exited = error, !processGone() {
                threads[tid] = nil
                return steps
            }
            throw .fatal(map(error, phase: "stepping thread \(tid) out of the patched code"))
        }
    }

    /// One whole-process window shared by commit and revert: stop every thread; check that the region
    /// (`regionStart`, marker `uuid`) is still mapped (else TARGET_EXITED / EXEC_RACE), that no vfork child
    /// shares the memory and that no thread is active in `ranges` (BUSY with `busyHint`); run `body` with
    /// `/proc/PID/mem`; call the test hook; release every thread.
    /// - Returns: the pause (first thread stopped → last thread released, ns) and the number of threads.
    func stoppedWindow(phase: String, regionStart: UInt64, uuid: String, ranges: ActivenessRanges, busyHint: String,
                       _ body: (ProcMem) throws(CommitFailure) -> Void) throws(CommitFailure) -> (UInt64, Int) {
        prepareUnwinder()
        do {
            try stopAll(phase: phase)
        } catch {
            throw error.code == .busy ? .busy(error) : .fatal(error)
        }
        let count = threads.count
        do throws(CommitFailure) {
            guard let maps = ProcMapping.read(pid: pid) else {
                throw CommitFailure.fatal(error(.targetExited, "the process exited during \(phase)"))
            }
            guard maps.contains(where: { $0.start == regionStart && UserPatchEngine.markerUUID($0.path) == uuid }) else {
                if processGone() { throw CommitFailure.fatal(error(.targetExited, "the process exited during \(phase)")) }
                throw CommitFailure.fatal(error(.execRace, "the patch region disappeared during \(phase) (the process exec'd)",
                                                hint: "retry: the new program image is not patched"))
            }
            if let child = sharedMemoryChild() {
                throw CommitFailure.busy(error(.busy, "memory is shared with vfork child \(child), which has not exec'd yet",
                                               hint: "retry in a moment"))
            }
            if let who = try activeThread(ranges: ranges, maps: maps) {
                throw CommitFailure.busy(error(.busy, who, hint: busyHint))
            }
            guard let mem = ProcMem(pid: pid) else {
                throw CommitFailure.fatal(error(.targetExited, "cannot open /proc/\(pid)/mem"))
            }
            try body(mem)
            hooks.whileStopped?(pid, threads.keys.sorted())
        } catch {
            resumeAll()
            throw error
        }
        let first = firstStopNs
        let end = resumeAll()
        return (first == 0 ? 0 : end - first, count)
    }

    /// One commit attempt: in a stopped window, verify the original bytes, write the detours, header ACTIVE.
    func commitDetours(region: PreparedRegion, header: inout PatchRegionHeader) throws(CommitFailure) -> (UInt64, Int) {
        let ranges = ActivenessRanges(ranges: header.functions.map { ($0.entry, $0.entry + $0.size, $0.symbol) })
        let functions = header.functions
        let result = try stoppedWindow(phase: "commit", regionStart: region.base, uuid: header.uuid, ranges: ranges,
                                       busyHint: "the function is running or on a stack; retry later, or patch a function that returns") {
            (mem) throws(CommitFailure) in
            for f in functions {
                let cur = mem.read(f.detour.count, at: f.site)
                if cur == f.original { continue }
                throw CommitFailure.fatal(error(.foreignModification,
                    "\(f.symbol) at 0x\(hex(f.site)) holds \(cur.map(PatchRegionHeader.hexString) ?? "unreadable bytes"), expected \(PatchRegionHeader.hexString(f.original))",
                    hint: "another tool changed the function since the check; nothing was written"))
            }
            var written: [PatchRegionHeader.Function] = []
            for f in functions {
                if mem.write(f.detour, at: f.site) {
                    written.append(f)
                    continue
                }
                let failed = rollback(mem: mem, written: written, region: region)
                throw CommitFailure.fatal(failed
                    ? error(.inconsistent, "writing the detour of \(f.symbol) failed and the rollback failed", hint: "restart the process")
                    : error(.permission, "writing the detour of \(f.symbol) into /proc/\(pid)/mem failed; rolled back",
                            hint: "proc_mem.force_override=never forbids text writes"))
            }
            if !writeState(.active, file: region.file) {
                let failed = rollback(mem: mem, written: written, region: region)
                throw CommitFailure.fatal(failed
                    ? error(.inconsistent, "updating the region header failed and the rollback failed", hint: "restart the process")
                    : error(.permission, "updating the region header failed; rolled back"))
            }
        }
        header.state = .active
        return result
    }

    /// Restores the original bytes of `written` functions; marks the header INCONSISTENT if that fails.
    /// Returns true when the rollback itself failed.
    func rollback(mem: ProcMem, written: [PatchRegionHeader.Function], region: PreparedRegion) -> Bool {
        var failed = false
        for f in written.reversed() where !mem.write(f.original, at: f.site) { failed = true }
        if failed { _ = writeState(.inconsistent, file: region.file) }
        return failed
    }

    func writeState(_ state: PatchRegionHeader.State, file: Int32) -> Bool {
        var v = state.rawValue.littleEndian
        return withUnsafeBytes(of: &v) { pwrite(file, $0.baseAddress, 4, off_t(PatchRegionHeader.stateOffset)) == 4 }
    }

    // MARK: - Deactivate

    func deactivate(uuid: String, startTime: UInt64?) throws(UserPatchError) -> UserPatchEngineResult {
        raiseScheduler()
        defer { restoreScheduler() }
        try preflight(startTime: startTime)
        guard let maps = ProcMapping.read(pid: pid) else { throw error(.targetExited, "the process exited") }
        guard let region = UserPatchEngine.regions(pid: pid, maps: maps).first(where: { $0.uuid == uuid }) else {
            return UserPatchEngineResult(outcome: .notPresent, pauseNanoseconds: nil, threads: 0, busyRetries: 0,
                                         regionAddress: nil)
        }
        guard let header = region.header else {
            throw error(.inconsistent, "the region of patch \(uuid) has no valid header", hint: "restart the process")
        }
        if header.state == .inconsistent {
            throw error(.inconsistent, "the region of patch \(uuid) is marked INCONSISTENT", hint: "restart the process")
        }
        let mapName = "/proc/\(pid)/map_files/\(hex(region.address))-\(hex(region.address + UInt64(header.headerSize)))"
        let file = open(mapName, O_RDWR | O_CLOEXEC)
        if file < 0 {
            throw error(.permission, "cannot open the region header \(mapName): \(String(cString: strerror(errno)))")
        }
        defer { close(file) }
        if header.state == .prepared {
            // Inert region (no detour references it): just unmap it.
            try withInjectionThread(phase: "cleanup") { (inj) throws(UserPatchError) in
                let r = try inj.syscall(11, region.address, region.end - region.address)
                if r < 0 { throw self.injectedFailure("munmap", r) }
            }
            return UserPatchEngineResult(outcome: .notPresent, pauseNanoseconds: nil, threads: 0, busyRetries: 0,
                                         regionAddress: region.address)
        }
        var ranges = [(start: UInt64, end: UInt64, name: String)]()
        ranges.append((region.address, region.end, "the patch region of \(uuid)"))
        for f in header.functions where f.detour.count > 1 {
            ranges.append((f.site + 1, f.site + UInt64(f.detour.count), "the detour of \(f.symbol)"))
        }
        let ((pause, count), retries) = try retryingBusy { () throws(CommitFailure) in
            try revertOnce(region: region, header: header, ranges: ActivenessRanges(ranges: ranges), file: file)
        }
        return UserPatchEngineResult(outcome: .deactivated, pauseNanoseconds: pause, threads: count, busyRetries: retries,
                                     regionAddress: region.address, steppedInstructions: stepOutInstructions)
    }

    func revertOnce(region: UserPatchRegion, header: PatchRegionHeader, ranges: ActivenessRanges,
                    file: Int32) throws(CommitFailure) -> (UInt64, Int) {
        let result = try stoppedWindow(phase: "revert", regionStart: region.address, uuid: header.uuid, ranges: ranges,
                                       busyHint: "a thread is inside the patch code; retry later") {
            (mem) throws(CommitFailure) in
            var toRestore: [PatchRegionHeader.Function] = []
            for f in header.functions {
                let cur = mem.read(f.detour.count, at: f.site)
                if cur == f.detour { toRestore.append(f); continue }
                if cur == f.original { continue }
                throw CommitFailure.fatal(error(.foreignModification,
                    "\(f.symbol) at 0x\(hex(f.site)) holds \(cur.map(PatchRegionHeader.hexString) ?? "unreadable bytes"), neither our detour nor the original",
                    hint: "another tool changed the entry; nothing was restored"))
            }
            var restored: [PatchRegionHeader.Function] = []
            for f in toRestore {
                if mem.write(f.original, at: f.site) { restored.append(f); continue }
                var failed = false
                for r in restored.reversed() where !mem.write(r.detour, at: r.site) { failed = true }
                if failed { _ = writeState(.inconsistent, file: file) }
                throw CommitFailure.fatal(failed
                    ? error(.inconsistent, "restoring \(f.symbol) failed and re-applying the detours failed", hint: "restart the process")
                    : error(.permission, "restoring \(f.symbol) through /proc/\(pid)/mem failed; the patch stays active"))
            }
            _ = writeState(.prepared, file: file)
        }
        // Unmap the now-inert region (header PREPARED, no detour points into it, no thread was in it)
        // after the whole-process window, with one thread borrowed for the munmap: keeps the injection
        // out of the pause. If it fails the region stays mapped and inert; a later deactivate removes it.
        _ = try? withInjectionThread(phase: "cleanup") { (inj) throws(UserPatchError) in
            _ = try inj.syscall(11, region.address, region.end - region.address)
        }
        return result
    }
}

/// Injects raw system calls into one stopped thread by pointing `rip` at an existing `syscall`
/// instruction and single-stepping it. Writes no code and calls no function in the target.
final class Injector {
    let pid: Int32
    let tid: Int32
    let saved: user_regs_struct
    let gadget: UInt64
    let deadline: UInt64
    unowned let session: EngineSession
    /// Signals that arrived while injecting (suppressed, passed on at detach).
    var pendingSignals: [Int32] = []
    /// The thread's seccomp filters (nil: none): each injection is checked against them first.
    var seccomp: SeccompFilterSet?

    init(pid: Int32, tid: Int32, saved: user_regs_struct, gadget: UInt64, deadline: UInt64, session: EngineSession) {
        self.pid = pid
        self.tid = tid
        self.saved = saved
        self.gadget = gadget
        self.deadline = deadline
        self.session = session
    }

    /// Whether the thread's seccomp filters (if any) allow system call `nr` with these arguments from the
    /// gadget.
    func allows(_ nr: UInt64, _ args: UInt64...) -> Bool {
        guard let seccomp else { return true }
        return SeccompFilterSet.allows(seccomp.action(for: SeccompData(nr: Int32(truncatingIfNeeded: nr),
                                                                       instructionPointer: gadget &+ 2, args: args)))
    }

    /// Runs syscall `nr` with up to six arguments; returns the raw result (negative errno on failure).
    /// `orig_rax = -1` keeps the kernel's syscall-restart logic from rewinding `rip` when the thread was
    /// stopped inside an interrupted syscall.
    /// Test hook: `SUTURE_TEST_SIGTERM_AT_INJECTION=N` makes the tracer send itself SIGTERM right after the
    /// N-th injected system call of the process has set the thread's registers (the moment a dying tracer
    /// would leave the target to crash), so a test can prove the signal waits for the operation's end.
    nonisolated(unsafe) static var injectionsDone = 0
    static let sigtermAtInjection = getenv("SUTURE_TEST_SIGTERM_AT_INJECTION").flatMap { Int(String(cString: $0)) }

    func syscall(_ nr: UInt64, _ a: UInt64 = 0, _ b: UInt64 = 0, _ c: UInt64 = 0, _ d: UInt64 = 0, _ e: UInt64 = 0,
                 _ f: UInt64 = 0) throws(UserPatchError) -> Int64 {
        if let seccomp {
            let action = seccomp.action(for: SeccompData(nr: Int32(truncatingIfNeeded: nr), instructionPointer: gadget &+ 2,
                                                         args: [a, b, c, d, e, f]))
            if !SeccompFilterSet.allows(action) {
                // Checked before anything is injected (seccompFilterSet); reaching this means an address
                // argument made the difference.
                throw session.error(.seccompBlocked,
                                    "the seccomp filter of thread \(tid) answers system call \(nr) with \(SeccompFilterSet.describe(action)); it was not injected")
            }
        }
        var r = saved
        r.rip = gadget
        r.rax = nr
        r.orig_rax = UInt64.max
        r.rdi = a
        r.rsi = b
        r.rdx = c
        r.r10 = d
        r.r8 = e
        r.r9 = f
        do throws(PtraceFailure) {
            try Ptrace.setRegisters(tid, r)
            if let n = Injector.sigtermAtInjection {
                Injector.injectionsDone += 1
                if Injector.injectionsDone == n { kill(getpid(), SIGTERM) }
            }
            for _ in 0..<64 {
                try Ptrace.singleStep(tid)
                let report = try Ptrace.waitStop(tid, deadline: deadline)
                guard case let .stopped(sig, event) = report else { throw PtraceFailure.exited(tid: tid) }
                let now = try Ptrace.getRegisters(tid)
                // SIGXFSZ can only come from a file-size limit hit by the call we injected: never pass it on.
                if event == 0 && sig != SIGTRAP && sig != SIGXFSZ { pendingSignals.append(sig) }
                if now.rip == gadget &+ 2 { return Int64(bitPattern: now.rax) }
                if now.rip != gadget {
                    throw PtraceFailure.failed(request: "PTRACE_SINGLESTEP (unexpected pc 0x\(hex(now.rip)))", tid: tid, errno: EIO)
                }
                try Ptrace.setRegisters(tid, r)
            }
            throw PtraceFailure.timeout(tid: tid)
        } catch {
            throw session.map(error, phase: "syscall injection")
        }
    }

    /// Puts `bytes` into a private anonymous page mapped for the purpose (injected `mmap`), runs `body` with
    /// their address, and unmaps the page. Not the thread's stack: a stack allocated on the heap (coroutines,
    /// green threads) could hold live data of running threads below `rsp`, which a write-then-restore would
    /// race with.
    func withScratchBytes<T>(_ bytes: [UInt8], _ body: (UInt64) throws(UserPatchError) -> T) throws(UserPatchError) -> T {
        let page: UInt64 = 4096
        // mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        let r = try syscall(9, 0, page, 0x3, 0x22, UInt64.max, 0)
        guard r >= 0 else { throw session.injectedFailure("mmap (scratch page)", r) }
        let addr = UInt64(r)
        defer { _ = try? syscall(11, addr, page) }
        guard bytes.count <= Int(page), Ptrace.writeMemory(pid: pid, address: addr, bytes: bytes) else {
            throw session.error(.permission, "cannot write to the scratch page at 0x\(hex(addr)) of thread \(tid)")
        }
        return try body(addr)
    }
}
