import Foundation
import Testing
@testable import SuturePatching
import SutureCore
import CLinuxShim

/// Integration tests of the ptrace engine on real processes built by gcc from
/// Tests/Fixtures/c/engine_target.c. Serialized: they stop whole processes and measure behaviour on a
/// 2-core machine.
@Suite(.serialized) struct EngineTests {
    @Test func singleThreadedActivateAndRevert() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("busy", "0")
        defer { p.stop() }
        #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
        let request = try fx.computeRequest()
        let sym = try fx.symbol("compute")

        let r = try UserPatchEngine.activate(request, pid: p.pid)
        #expect(r.outcome == .activated)
        let c = p.settle(expectNew: true)
        #expect(c?.new ?? 0 > 0 && c?.old == 0 && c?.wrong == 0)

        // Readback: the marker and an ACTIVE header, without stopping the process.
        let regions = UserPatchEngine.readback(pid: p.pid)
        #expect(regions.count == 1)
        #expect(regions.first?.uuid == request.uuid)
        #expect(regions.first?.header?.state == .active)
        #expect(regions.first?.header?.buildID == fx.buildID)
        let maps = try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8)
        #expect(maps.contains("/memfd:suture:\(request.uuid)"))
        // W^X: no mapping of the region is writable and executable.
        for line in maps.split(separator: "\n") where line.contains("/memfd:suture:") {
            let perms = line.split(separator: " ")[1]
            #expect(!(perms.contains("w") && perms.contains("x")))
        }

        let d = try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid)
        #expect(d.outcome == .deactivated)
        let c2 = p.settle(expectNew: false)
        #expect(c2?.old ?? 0 > 0 && c2?.new == 0 && c2?.wrong == 0)
        #expect(UserPatchEngine.readback(pid: p.pid).isEmpty)
        // After revert the text bytes equal the ELF file's.
        let bias = regions.first?.header?.loadBias ?? 0
        #expect(peek(p.pid, bias + sym.offset, Int(sym.size)) == sym.bytes)
        #expect(p.isAlive)
        #expect(p.stderrText().isEmpty)
    }

    @Test func nonPIETargetAndApplyTwiceIsNoOp() throws {
        let fx = try EngineFixture(pie: false)
        defer { fx.cleanup() }
        let p = try fx.start("busy", "1")
        defer { p.stop() }
        let request = try fx.computeRequest()
        #expect(try UserPatchEngine.activate(request, pid: p.pid).outcome == .activated)
        #expect(p.settle(expectNew: true)?.new ?? 0 > 0)
        #expect(UserPatchEngine.readback(pid: p.pid).first?.header?.loadBias == 0)
        // Second activation: a successful no-op, no stop.
        let again = try UserPatchEngine.activate(request, pid: p.pid)
        #expect(again.outcome == .alreadyActive)
        #expect(again.pauseNanoseconds == nil)
        #expect(UserPatchEngine.readback(pid: p.pid).count == 1)
        #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid).outcome == .deactivated)
        #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
        let sym = try fx.symbol("compute")
        #expect(peek(p.pid, 0x400000 + sym.offset, Int(sym.size)) == sym.bytes)
        // Deactivating again: nothing there.
        #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid).outcome == .notPresent)
    }

    @Test func otherBuildIDIsNotApplicableAndTouchesNothing() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("busy", "1")
        defer { p.stop() }
        var request = try fx.computeRequest()
        request.entity.targetBuildID = String(repeating: "ab", count: 20)
        let before = try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8)
        #expect {
            try UserPatchEngine.activate(request, pid: p.pid)
        } throws: { ($0 as? UserPatchError)?.code == .notApplicable }
        let after = try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8)
        #expect(before == after)
        #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
    }

    @Test func alwaysRunningEventLoopIsBusy() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("loop")
        defer { p.stop() }
        let s = try fx.symbol("event_loop")
        let request = UserPatchRequest(
            uuid: UUID().uuidString.lowercased(),
            entity: BundleEntityView(targetPath: fx.target, targetBuildID: fx.buildID, functions: [
                .init(symbol: "event_loop", offset: s.offset, size: s.size, expectedBytes: Array(s.bytes.prefix(16)),
                      replacement: "compute_v2"),
            ]),
            image: RawCodeImage(code: fx.replacement, symbols: ["compute_v2": 0]))
        let started = Date()
        var caught: UserPatchError?
        do {
            _ = try UserPatchEngine.activate(request, pid: p.pid, options: UserPatchOptions(busyDeadline: 0.5))
        } catch {
            caught = error
        }
        #expect(caught?.code == .busy)
        #expect(caught?.message.contains("event_loop") == true)
        #expect(caught?.message.contains("thread \(p.pid)") == true)
        #expect(Date().timeIntervalSince(started) < 30)
        // Target unaffected: still serving, original code, no region left behind.
        p.send("e still-here")
        #expect(p.waitFor("echo") == "echo still-here")
        #expect(UserPatchEngine.readback(pid: p.pid).isEmpty)
        let bias = try #require(loadBias(p.pid, fx.target))
        #expect(peek(p.pid, bias + s.offset, Int(s.size)) == s.bytes)
    }

    @Test func threadBlockedInReadReadsNextLineOnce() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("idle", "0")
        defer { p.stop() }
        // The only thread is blocked in read(0): it is the injection thread and its read must restart.
        let request = try fx.computeRequest()
        #expect(try UserPatchEngine.activate(request, pid: p.pid).outcome == .activated)
        p.send("e one")
        #expect(p.readLine() == "echo one")
        p.send("e two")
        #expect(p.readLine() == "echo two")
        #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid).outcome == .deactivated)
        p.send("e three")
        #expect(p.readLine() == "echo three")
        p.send("e four")
        #expect(p.readLine() == "echo four")
        #expect(p.isAlive)
    }

    @Test func seccompFilterKillingExecMmapIsBlockedAndTargetSurvives() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("seccomp")
        defer { p.stop() }
        let before = try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8)
        var caught: UserPatchError?
        do { _ = try UserPatchEngine.activate(try fx.computeRequest(), pid: p.pid) } catch let e as UserPatchError { caught = e }
        #expect(caught?.code == .seccompBlocked)
        // The filter was evaluated, not guessed from "Seccomp: 2": it names the call and the action.
        #expect(caught?.message.contains("mmap(PROT_READ|PROT_EXEC") == true)
        #expect(caught?.message.contains("KILL_PROCESS") == true)
        p.send("e alive")
        #expect(p.waitFor("echo") == "echo alive")
        #expect(try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8) == before)
    }

    @Test func seccompFilterDenyingMemfdIsBlockedBeforeAnyInjection() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("seccomp-memfd")
        defer { p.stop() }
        let before = try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8)
        var caught: UserPatchError?
        do { _ = try UserPatchEngine.activate(try fx.computeRequest(), pid: p.pid) } catch let e as UserPatchError { caught = e }
        #expect(caught?.code == .seccompBlocked)
        #expect(caught?.message.contains("memfd_create") == true)
        #expect(caught?.message.contains("ERRNO(1)") == true)
        p.send("e alive")
        #expect(p.waitFor("echo") == "echo alive")
        #expect(try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8) == before)
    }

    /// A seccomp-confined service whose filters allow what the engine injects is patched normally (the
    /// filters are read with PTRACE_SECCOMP_GET_FILTER and evaluated), and its filter still works after.
    @Test func seccompFilterAllowingTheInjectedCallsIsPatched() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("seccomp-allow")
        defer { p.stop() }
        p.send("u")
        #expect(p.waitFor("uname") == "uname -1 \(EPERM)")
        let request = try fx.computeRequest()
        #expect(try UserPatchEngine.activate(request, pid: p.pid).outcome == .activated)
        let c = p.settle(expectNew: true)
        #expect(c?.new ?? 0 > 0 && c?.old == 0 && c?.wrong == 0)
        #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid).outcome == .deactivated)
        #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
        #expect(UserPatchEngine.readback(pid: p.pid).isEmpty)
        p.send("u")
        #expect(p.waitFor("uname") == "uname -1 \(EPERM)")
        #expect(p.isAlive)
    }

    @Test func alreadyTracedIsPermission() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("idle", "1")
        defer { p.stop() }
        let tracer = PtraceThread(name: "test-tracer")
        defer { tracer.shutdown() }
        let seized: Bool = tracer.run {
            do throws(PtraceFailure) { try Ptrace.seize(p.pid, options: 0); return true } catch { return false }
        }
        #expect(seized)
        var caught: UserPatchError?
        do { _ = try UserPatchEngine.activate(try fx.computeRequest(), pid: p.pid) } catch let e as UserPatchError { caught = e }
        #expect(caught?.code == .permission)
        #expect(caught?.message.contains("already traced") == true)
        _ = tracer.run { Ptrace.detach(p.pid) }
        p.send("e ok")
        #expect(p.waitFor("echo") == "echo ok")
    }

    @Test func targetExitingDuringActivationIsTargetExited() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("busy", "2")
        defer { p.stop() }
        let hooks = UserPatchHooks(afterPrepare: { pid in
            kill(pid, SIGKILL)
            // Wait until it is a zombie (the test is its parent and has not reaped it).
            for _ in 0..<3000 {
                if let st = ProcFiles.stat(pid), st.state == "Z" { return }
                usleep(1000)
            }
        })
        var caught: UserPatchError?
        do { _ = try UserPatchEngine.activate(try fx.computeRequest(), pid: p.pid, hooks: hooks) } catch let e as UserPatchError { caught = e }
        #expect(caught?.code == .targetExited)
        #expect(caught?.pid == p.pid)
    }

    @Test func parentWaitingWithWUNTRACEDSeesNoStop() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try TargetProcess(fx.target, ["parent"])
        defer { p.stop() }
        let childLine = try #require(p.waitFor("child "))
        let child = try #require(Int32(childLine.dropFirst(6)))
        defer { kill(child, SIGKILL) }
        #expect(p.waitFor("ready") != nil)
        let request = try fx.computeRequest()
        for _ in 0..<5 {
            #expect(try UserPatchEngine.activate(request, pid: child).outcome == .activated)
            #expect(p.settle(expectNew: true)?.new ?? 0 > 0)
            #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: child).outcome == .deactivated)
            #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
        }
        p.send("e done")
        #expect(p.waitFor("echo") == "echo done")
        #expect(!p.seen.contains { $0.hasPrefix("PARENT saw") })
    }

    @Test func threadChurnNoThreadRunsWhileStopped() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("churn")
        defer { p.stop() }
        let line = try #require(p.seen.first { $0.hasPrefix("counters ") })
        let parts = line.split(separator: " ")
        let countersAddr = try #require(UInt64(parts[1].dropFirst(2), radix: 16))
        let churnAddr = try #require(UInt64(parts[2].dropFirst(2), radix: 16))
        let observations = Observations()
        let hooks = UserPatchHooks(whileStopped: { pid, tids in
            let a = (peek(pid, countersAddr, 64 * 8), peek(pid, churnAddr, 8))
            usleep(5000)
            let b = (peek(pid, countersAddr, 64 * 8), peek(pid, churnAddr, 8))
            observations.add(frozen: a.0 != nil && a.0 == b.0 && a.1 == b.1, threads: tids.count)
        })
        let request = try fx.computeRequest()
        for _ in 0..<10 {
            #expect(try UserPatchEngine.activate(request, pid: p.pid, hooks: hooks).outcome == .activated)
            #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid, hooks: hooks).outcome == .deactivated)
        }
        let (frozen, total, maxThreads) = observations.summary
        #expect(total == 20)
        #expect(frozen == total)
        #expect(maxThreads >= 5)
        #expect(p.isAlive)
        #expect(p.counts()?.wrong == 0)
    }

    @Test func sixteenBusyThreadsManyCycles() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("busy", "16")
        defer { p.stop() }
        let request = try fx.computeRequest()
        let cycles = Int(ProcessInfo.processInfo.environment["SUTURE_ENGINE_CYCLES"] ?? "") ?? 200
        var switched = 0
        var retries = 0
        var pauses: [UInt64] = []
        let started = Date()
        for i in 0..<cycles {
            let a = try UserPatchEngine.activate(request, pid: p.pid, options: UserPatchOptions(busyDeadline: 10))
            retries += a.busyRetries
            pauses.append(a.pauseNanoseconds ?? 0)
            #expect(a.outcome == .activated)
            #expect(a.threads == 17)
            // Verify the switch on every 10th cycle (each check needs the busy target's main thread).
            if i % 10 == 0, let c = p.settle(expectNew: true), c.new > 0, c.old == 0 { switched += 1 }
            let d = try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid, options: UserPatchOptions(busyDeadline: 10))
            #expect(d.outcome == .deactivated)
            if i % 10 == 0, let c = p.settle(expectNew: false), c.old > 0, c.new == 0 { switched += 1 }
        }
        pauses.sort()
        print("16 busy threads: \(cycles) cycles in \(Date().timeIntervalSince(started)) s, busy retries \(retries), activation pause p50 \(pauses[cycles / 2] / 1000) us, max \(pauses.last! / 1000) us")
        #expect(switched == 2 * cycles / 10)
        #expect(p.isAlive)
        #expect(p.counts()?.wrong == 0)
        #expect(p.stderrText().isEmpty)
        #expect(UserPatchEngine.readback(pid: p.pid).isEmpty)
    }
}

extension EngineTests {
    /// Regression (adversarial review, issue 3): a small function called back to back by 16 threads was
    /// never found empty, so deactivation stayed BUSY for ever. Threads whose only hit is their pc are now
    /// run out of the code (short run slices ended by PTRACE_INTERRUPT) before the check is repeated.
    @Test func hotSmallFunctionActivatesAndDeactivatesUnderSixteenThreads() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("hot", "16")
        defer { p.stop() }
        let request = try fx.computeRequest()
        var stepped = 0, retries = 0
        for _ in 0..<20 {
            let a = try UserPatchEngine.activate(request, pid: p.pid, options: UserPatchOptions(busyDeadline: 10))
            #expect(a.outcome == .activated)
            let d = try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid, options: UserPatchOptions(busyDeadline: 10))
            #expect(d.outcome == .deactivated)
            stepped += a.steppedInstructions + d.steppedInstructions
            retries += a.busyRetries + d.busyRetries
        }
        print("hot function, 16 threads: 20 cycles, \(stepped) instructions stepped, \(retries) busy retries")
        // With 16 threads running compute() back to back, threads inside it at a stop are the rule.
        #expect(stepped > 0)
        #expect(try UserPatchEngine.activate(request, pid: p.pid, options: UserPatchOptions(busyDeadline: 10)).outcome == .activated)
        let c = p.settle(expectNew: true)
        #expect(c?.new ?? 0 > 0 && c?.old == 0)
        #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid, options: UserPatchOptions(busyDeadline: 10)).outcome == .deactivated)
        let c2 = p.settle(expectNew: false)
        #expect(c2?.old ?? 0 > 0 && c2?.new == 0)
        #expect(p.isAlive)
        #expect(p.counts()?.wrong == 0)
        #expect(p.stderrText().isEmpty)
        #expect(UserPatchEngine.readback(pid: p.pid).isEmpty)
    }
}

extension EngineTests {
    /// No free range within rel32 reach of the target: NO_NEAR_SPACE, nothing stopped or mapped.
    @Test func crowdedAddressSpaceIsNoNearSpace() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("crowded")
        defer { p.stop() }
        let before = try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8)
        var caught: UserPatchError?
        let request = try fx.computeRequest()
        do { _ = try UserPatchEngine.activate(request, pid: p.pid) } catch { caught = error }
        #expect(caught?.code == .noNearSpace)
        #expect(try String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8) == before)
        #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
        #expect(p.isAlive)
    }

    /// A vfork child shares the memory and cannot be stopped with the threads: BUSY while it lives (named),
    /// then the retry succeeds once it exits.
    @Test func vforkChildSharingTheMemoryIsBusyUntilItExits() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("busy", "1")
        defer { p.stop() }
        let request = try fx.computeRequest()
        p.send("v 60000")
        let line = try #require(p.waitFor("vchild "))
        let child = try #require(Int32(line.dropFirst(7)))
        var caught: UserPatchError?
        do { _ = try UserPatchEngine.activate(request, pid: p.pid, options: UserPatchOptions(busyDeadline: 0.3)) } catch { caught = error }
        #expect(caught?.code == .busy)
        #expect(caught?.message.contains("vfork child \(child)") == true)
        #expect(UserPatchEngine.readback(pid: p.pid).isEmpty)
        // The child exits (as it would by exec or _exit): the next attempt goes through.
        kill(child, SIGKILL)
        let a = try UserPatchEngine.activate(request, pid: p.pid, options: UserPatchOptions(busyDeadline: 10))
        #expect(a.outcome == .activated)
        #expect(p.settle(expectNew: true)?.new ?? 0 > 0)
        #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid).outcome == .deactivated)
        #expect(p.isAlive)
    }

    /// The target execs between prepare and commit: EXEC_RACE (or TARGET_EXITED-free), the new image runs on
    /// untouched, no tracer left attached.
    @Test func execBetweenPrepareAndCommitIsExecRace() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("busy", "2")
        defer { p.stop() }
        let target = fx.target
        let hooks = UserPatchHooks(afterPrepare: { pid in
            p.send("X")
            for _ in 0..<10_000 {
                if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"), exe != target { return }
                usleep(1000)
            }
        })
        var caught: UserPatchError?
        let request = try fx.computeRequest()
        do { _ = try UserPatchEngine.activate(request, pid: p.pid, hooks: hooks) } catch { caught = error }
        #expect(caught?.code == .execRace)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(p.pid)/exe") == "/usr/bin/sleep")
        #expect(ProcFiles.status("/proc/\(p.pid)/status")?["TracerPid"] == "0")
        #expect(!((try? String(contentsOfFile: "/proc/\(p.pid)/maps", encoding: .utf8)) ?? "").contains("memfd:suture"))
        #expect(p.isAlive)
    }

    /// Signals sent while the process is stopped (process- and thread-directed, real-time so none
    /// coalesce) are delivered exactly once after the window — including those that arrive while a thread
    /// is being run out of the patched code.
    @Test func signalsArrivingWhileStoppedAreDeliveredExactlyOnce() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("hot", "8")
        defer { p.stop() }
        let sent = Observations()
        let rt = __libc_current_sigrtmin()
        let hooks = UserPatchHooks(whileStopped: { pid, tids in
            kill(pid, rt)
            if let t = tids.last { _ = cls_tgkill(pid, t, rt) }
            sent.add(frozen: true, threads: tids.count)
        })
        let request = try fx.computeRequest()
        var stepped = 0
        for _ in 0..<10 {
            let a = try UserPatchEngine.activate(request, pid: p.pid, options: UserPatchOptions(busyDeadline: 10), hooks: hooks)
            #expect(a.outcome == .activated)
            let d = try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid, options: UserPatchOptions(busyDeadline: 10), hooks: hooks)
            #expect(d.outcome == .deactivated)
            stepped += a.steppedInstructions + d.steppedInstructions
        }
        let windows = sent.summary.1
        #expect(windows == 20)
        var delivered = -1
        for _ in 0..<200 {
            p.send("g")
            delivered = Int(p.waitFor("signals ")?.dropFirst(8) ?? "") ?? -1
            if delivered >= 2 * windows { break }
            usleep(20_000)
        }
        print("signals: sent \(2 * windows), delivered \(delivered), \(stepped) instructions stepped")
        #expect(delivered == 2 * windows)
        #expect(p.isAlive)
        #expect(p.counts()?.wrong == 0)
    }
}

extension EngineTests {
    /// Regression (new-user trial): the planner matches processes by build-id, so a copy of the target
    /// installed at another path is planned; the engine found it only by device:inode or path and answered
    /// NOT_APPLICABLE while apply reported success. The engine now falls back to the build-id.
    @Test func sameBuildAtAnotherPathIsPatched() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let copy = fx.dir.appendingPathComponent("elsewhere/engine_target_copy").path
        try FileManager.default.createDirectory(atPath: (copy as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fx.target, toPath: copy)
        let p = try TargetProcess(copy, ["busy", "1"])
        defer { p.stop() }
        #expect(p.waitFor("ready") != nil)
        let request = try fx.computeRequest() // targets fx.target, not the copy
        #expect(try UserPatchEngine.activate(request, pid: p.pid).outcome == .activated)
        #expect(p.settle(expectNew: true)?.new ?? 0 > 0)
        #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid).outcome == .deactivated)
        #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
        // Another build at the target's path is still NOT_APPLICABLE.
        var other = request
        other.entity.targetBuildID = String(repeating: "cd", count: 20)
        var caught: UserPatchError?
        do { _ = try UserPatchEngine.activate(other, pid: p.pid) } catch { caught = error }
        #expect(caught?.code == .notApplicable)
    }
}

extension EngineTests {
    /// Regression (adversarial review): a target with RLIMIT_FSIZE below the patch region size was killed
    /// by SIGXFSZ (the injected ftruncate hit its limit). The tracer now sizes the memfd itself.
    @Test func fileSizeLimitedTargetIsPatchedAndSurvives() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("fsize")
        defer { p.stop() }
        let request = try fx.computeRequest()
        #expect(try UserPatchEngine.activate(request, pid: p.pid).outcome == .activated)
        #expect(p.settle(expectNew: true)?.new ?? 0 > 0)
        #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid).outcome == .deactivated)
        #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
        #expect(p.isAlive)
    }
}

extension EngineTests {
    /// Regression (adversarial review): another tool writes the original entry bytes back over our detour.
    /// Readback must call the region `detached` (not live), and activating again re-commits the detours to
    /// the same region (threads may still be inside it, so it is not replaced).
    @Test func entryRestoredByAnotherToolIsDetachedAndReattached() throws {
        let fx = try EngineFixture()
        defer { fx.cleanup() }
        let p = try fx.start("busy", "2")
        defer { p.stop() }
        let request = try fx.computeRequest()
        #expect(try UserPatchEngine.activate(request, pid: p.pid).outcome == .activated)
        let region = try #require(UserPatchEngine.readback(pid: p.pid).first)
        #expect(region.effectiveState == .active && region.entriesIntact == true)
        let f = try #require(region.header?.functions.first)
        // "Another tool": restore the original bytes through /proc/PID/mem.
        let mem = try #require(ProcMem(pid: p.pid))
        #expect(mem.write(f.original, at: f.site))
        #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
        let detached = try #require(UserPatchEngine.readback(pid: p.pid).first)
        #expect(detached.effectiveState == .detached && detached.entriesIntact == false)
        // Activating again repairs it in place.
        let again = try UserPatchEngine.activate(request, pid: p.pid)
        #expect(again.outcome == .activated && again.regionAddress == region.address)
        #expect(p.settle(expectNew: true)?.new ?? 0 > 0)
        #expect(UserPatchEngine.readback(pid: p.pid).first?.effectiveState == .active)
        #expect(try UserPatchEngine.deactivate(uuid: request.uuid, pid: p.pid).outcome == .deactivated)
        #expect(p.settle(expectNew: false)?.old ?? 0 > 0)
        #expect(UserPatchEngine.readback(pid: p.pid).isEmpty)
        #expect(p.isAlive)
        #expect(p.counts()?.wrong == 0)
    }
}

final class Observations: @unchecked Sendable {
    private let lock = NSLock()
    private var frozen = 0, total = 0, maxThreads = 0
    func add(frozen f: Bool, threads: Int) {
        lock.lock()
        total += 1
        if f { frozen += 1 }
        maxThreads = max(maxThreads, threads)
        lock.unlock()
    }
    var summary: (Int, Int, Int) { lock.lock(); defer { lock.unlock() }; return (frozen, total, maxThreads) }
}

/// Load bias of `path` in `pid` (engine's matcher).
func loadBias(_ pid: Int32, _ path: String) -> UInt64? {
    guard let maps = ProcMapping.read(pid: pid), let t = TargetObject.find(pid: pid, targetPath: path, maps: maps) else { return nil }
    return t.loadBias &+ t.linkBase
}
