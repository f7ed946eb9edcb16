import Foundation
import SutureCore

/// An in-test host: a patch store, processes with live user patches, and kernel livepatches, with drivers
/// that record every call and can be told to fail. Implements the executor's protocols.
final class FakeHost: @unchecked Sendable {
    fileprivate let lock = NSLock()
    private var _store: [String: InstalledBundle] = [:]
    private var _processes: [Int32: (start: UInt64, live: [String: String])] = [:]   // uuid -> header state
    private var _kernel: [String: Bool] = [:]   // module -> enabled
    private var _calls: [String] = []
    /// Failure rules: call description prefix → error to throw (consumed once unless sticky).
    var userFailures: [String: UserPatchErrorCode] = [:]
    var kernelFailures: [String: KernelPatchError.Kind] = [:]
    var storeFailures: Set<String> = []

    func sync<T>(_ body: () throws -> T) rethrows -> T { lock.lock(); defer { lock.unlock() }; return try body() }

    var calls: [String] { sync { _calls } }
    func addProcess(_ pid: Int32, start: UInt64 = 100, live: [String: String] = [:]) {
        sync { _processes[pid] = (start, live) }
    }
    func killProcess(_ pid: Int32) { sync { _ = _processes.removeValue(forKey: pid) } }
    func live(_ pid: Int32) -> Set<String> { sync { Set(_processes[pid]?.live.keys.map { $0 } ?? []) } }
    func setInstalled(_ b: ResolvedBundle) { sync { _store[b.metadata.uuid] = InstalledBundle(bundle: b) } }
    func installedUUIDs() -> Set<String> { sync { Set(_store.keys) } }
    func kernelEnabled(_ m: String) -> Bool? { sync { _kernel[m] } }
    func setKernel(_ m: String, enabled: Bool) { sync { _kernel[m] = enabled } }

    fileprivate func call(_ s: String) { sync { _calls.append(s) } }
    fileprivate func userFailure(_ s: String) -> UserPatchErrorCode? {
        sync { userFailures.first { s.hasPrefix($0.key) }.map { userFailures.removeValue(forKey: $0.key); return $0.value } }
    }
    fileprivate func kernelFailure(_ s: String) -> KernelPatchError.Kind? {
        sync { kernelFailures.first { s.hasPrefix($0.key) }.map { kernelFailures.removeValue(forKey: $0.key); return $0.value } }
    }

    var store: Store { Store(host: self) }
    var probe: Probe { Probe(host: self) }
    var user: User { User(host: self) }
    var kernel: Kernel { Kernel(host: self) }

    /// A LiveState view (store and processes with markers), for orphan detection and generations.
    func liveState() -> LiveState {
        sync {
            LiveState(store: _store.values.sorted { $0.uuid < $1.uuid },
                      processes: _processes.sorted { $0.key < $1.key }.map { pid, p in
                          ProcessLiveState(pid: pid, comm: "demo", startTime: p.start,
                                           patches: p.live.sorted { $0.key < $1.key }.map {
                                               UserPatchMarker(uuid: $0.key, address: 0x1000, state: PatchRegionMarker.State(rawValue: $0.value))
                                           })
                      })
        }
    }

    struct Store: PatchStoreAccess {
        let host: FakeHost
        func installed(uuid: String) throws -> InstalledBundle? { host.sync { host._store[uuid] } }
        func install(_ bundle: ResolvedBundle) throws -> ResolvedBundle {
            let name = "install \(bundle.metadata.name)"
            host.call(name)
            if host.sync({ host.storeFailures.contains(name) }) {
                throw FakeError(message: "bundle \(bundle.path): payload sha256 mismatch")
            }
            host.sync { host._store[bundle.metadata.uuid] = InstalledBundle(bundle: bundle) }
            return bundle
        }
        func remove(uuid: String) throws {
            let name = "remove \(host.sync { host._store[uuid]?.bundle.metadata.name ?? uuid })"
            host.call(name)
            if host.sync({ host.storeFailures.contains(name) }) { throw FakeError(message: "EIO") }
            host.sync { _ = host._store.removeValue(forKey: uuid) }
        }
    }

    struct Probe: LiveProbe {
        let host: FakeHost
        func userPatch(uuid: String, pid: Int32, startTime: UInt64?) -> ProcessPatchProbe {
            host.sync {
                guard let p = host._processes[pid], startTime == nil || p.start == startTime else { return .gone }
                if let state = p.live[uuid] { return .present(state: PatchRegionMarker.State(rawValue: state)) }
                return .absent
            }
        }
        func kernelPatch(moduleName: String) -> KernelLivePatch? {
            host.sync { host._kernel[moduleName].map { KernelLivePatch(name: moduleName, enabled: $0, transition: false) } }
        }
    }

    struct User: UserPatchDriver {
        let host: FakeHost
        func activate(bundle: ResolvedBundle, entity: BundleEntity, pid: Int32, startTime: UInt64?,
                      options: UserPatchOptions) throws(UserPatchError) -> UserPatchOutcome {
            let name = "activate \(bundle.metadata.name) \(pid)"
            host.call(name)
            if let code = host.userFailure(name) { throw UserPatchError(code, pid: pid, comm: "demo", message: "injected") }
            host.lock.lock(); defer { host.lock.unlock() }
            guard var p = host._processes[pid] else {
                throw UserPatchError(.targetExited, pid: pid, message: "exited")
            }
            if p.live[bundle.metadata.uuid] == "active" { return .alreadyActive }
            p.live[bundle.metadata.uuid] = "active"
            host._processes[pid] = p
            return .activated
        }
        func deactivate(uuid: String, pid: Int32, startTime: UInt64?,
                        options: UserPatchOptions) throws(UserPatchError) -> UserPatchOutcome {
            let name = "deactivate \(host.sync { host._store[uuid]?.bundle.metadata.name ?? uuid }) \(pid)"
            host.call(name)
            if let code = host.userFailure(name) { throw UserPatchError(code, pid: pid, comm: "demo", message: "injected") }
            host.lock.lock(); defer { host.lock.unlock() }
            guard var p = host._processes[pid] else {
                throw UserPatchError(.targetExited, pid: pid, message: "exited")
            }
            guard p.live.removeValue(forKey: uuid) != nil else { return .notPresent }
            host._processes[pid] = p
            return .deactivated
        }
    }

    struct Kernel: KernelPatchDriver {
        let host: FakeHost
        func activate(bundle: ResolvedBundle, entity: BundleEntity, onStall: StallPolicy) throws(KernelPatchError) {
            let module = entity.moduleName ?? entity.targetPath
            let name = "kactivate \(module)"
            host.call(name)
            if let kind = host.kernelFailure(name) {
                if kind == .stalled && onStall != .revert { host.setKernel(module, enabled: true) }
                throw KernelPatchError(kind, patch: module, message: "injected",
                                       transitionLeftRunning: kind == .stalled && onStall != .revert)
            }
            host.setKernel(module, enabled: true)
        }
        func deactivate(moduleName: String, onStall: StallPolicy) throws(KernelPatchError) {
            let name = "kdeactivate \(moduleName)"
            host.call(name)
            if let kind = host.kernelFailure(name) { throw KernelPatchError(kind, patch: moduleName, message: "injected") }
            host.sync { _ = host._kernel.removeValue(forKey: moduleName) }
        }
    }
}

struct FakeError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Builders for bundles, desired patches and plans.
enum Fixture {
    static func bundle(_ name: String, kind: PatchKind = .user, dir: String = "/nonexistent") -> ResolvedBundle {
        let uuid = uuidFor(name)
        let entity = kind == .user
            ? BundleEntity(targetPath: "/usr/sbin/demo", targetBuildID: "ab", payload: "p.o", payloadSHA256: "00")
            : BundleEntity(targetPath: "vmlinux", targetBuildID: "", payload: "p.ko", payloadSHA256: "00",
                           moduleName: "livepatch_\(name.replacingOccurrences(of: "-", with: "_"))")
        let meta = BundleMetadata(name: name, version: "1", release: "1", uuid: uuid, kind: kind,
                                  description: "test", target: BundleTarget(package: "demo", version: "1.0", arch: "x86_64"),
                                  entities: [entity], patches: [])
        return ResolvedBundle(metadata: meta, path: dir + "/" + name, digest: "digest-" + name)
    }

    static func uuidFor(_ name: String) -> String {
        let hex = name.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }
        let h = String(format: "%016llx", hex)
        return "\(h.prefix(8))-\(h.dropFirst(8).prefix(4))-4\(h.dropFirst(12).prefix(3))-8000-000000000000"
    }

    static func desired(_ bundles: [ResolvedBundle], allowPartial: Bool = false, onStall: StallPolicy = .revert) -> DesiredState {
        DesiredState(patches: bundles.map {
            DesiredPatch(name: $0.metadata.name, state: .activated,
                         target: $0.metadata.kind == .kernel ? .kernel(release: "6.1") : .path("/usr/sbin/demo"),
                         bundle: $0, allowPartial: allowPartial, onStall: onStall, patchSet: "test",
                         location: SourceLocation(file: "m.yaml", line: 1, column: 1))
        }, manifestDigest: "mdigest")
    }

    static func install(_ b: ResolvedBundle) -> PlanAction {
        PlanAction(kind: .install, patch: b.metadata.name, uuid: b.metadata.uuid, patchKind: b.metadata.kind, reason: "declared")
    }
    static func remove(_ b: ResolvedBundle) -> PlanAction {
        PlanAction(kind: .remove, patch: b.metadata.name, uuid: b.metadata.uuid, patchKind: b.metadata.kind, reason: "declared absent")
    }
    static func activate(_ b: ResolvedBundle, pid: Int32? = nil) -> PlanAction {
        PlanAction(kind: .activate, patch: b.metadata.name, uuid: b.metadata.uuid, patchKind: b.metadata.kind,
                   pid: pid, comm: pid == nil ? nil : "demo", startTime: pid == nil ? nil : 100,
                   targetPath: b.metadata.kind == .user ? "/usr/sbin/demo" : nil, reason: "declared activated")
    }
    static func deactivate(_ b: ResolvedBundle, pid: Int32? = nil) -> PlanAction {
        PlanAction(kind: .deactivate, patch: b.metadata.name, uuid: b.metadata.uuid, patchKind: b.metadata.kind,
                   pid: pid, comm: pid == nil ? nil : "demo", startTime: pid == nil ? nil : 100,
                   targetPath: b.metadata.kind == .user ? "/usr/sbin/demo" : nil, reason: "declared deactivated")
    }
}
