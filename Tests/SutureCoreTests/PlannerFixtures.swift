import SutureCore

/// Hand-built desired and live states for planner tests.
enum PF {
    static let demo = "/usr/sbin/demo"
    static let demoBuild = "aaaa1111bbbb2222cccc3333dddd4444eeee5555"
    static let otherBuild = "ffff0000ffff0000ffff0000ffff0000ffff0000"
    static let manifest = "manifests/web.yaml"

    static func userBundle(_ name: String, uuid: String, path: String = demo, buildID: String = demoBuild,
                           symbols: [String] = ["parse_request"], digest: String? = nil) -> ResolvedBundle {
        let entity = BundleEntity(
            targetPath: path, targetBuildID: buildID, payload: "\(name).o", payloadSHA256: String(repeating: "1", count: 64),
            functions: symbols.map { FunctionPatch(symbol: $0, offset: 0x1000, size: 64, expectedBytes: "f30f1efa", replacement: "\($0)_new") })
        let meta = BundleMetadata(name: name, version: "1", release: "1", uuid: uuid, kind: .user, description: "",
                                  target: BundleTarget(package: "demo", version: "1.0-1", arch: "x86_64"),
                                  entities: [entity], patches: [])
        return ResolvedBundle(metadata: meta, path: "/bundles/\(name)", digest: digest ?? "d-\(uuid)")
    }

    static func kernelBundle(_ name: String, uuid: String, module: String, replace: Bool = false,
                             digest: String? = nil) -> ResolvedBundle {
        let entity = BundleEntity(targetPath: "vmlinux", targetBuildID: "", payload: "\(module).ko",
                                  payloadSHA256: String(repeating: "2", count: 64), moduleName: module, replace: replace)
        let meta = BundleMetadata(name: name, version: "1", release: "1", uuid: uuid, kind: .kernel, description: "",
                                  target: BundleTarget(package: "kernel", version: "6.1.0-57-amd64", arch: "x86_64"),
                                  entities: [entity], patches: [])
        return ResolvedBundle(metadata: meta, path: "/bundles/\(name)", digest: digest ?? "d-\(uuid)")
    }

    static func declare(_ bundle: ResolvedBundle?, name: String? = nil, _ state: DesiredPatchState, line: Int = 7,
                        target: PatchTargetSelector? = nil, allowPartial: Bool = false) -> DesiredPatch {
        let kernel = bundle?.metadata.kind == .kernel
        return DesiredPatch(name: name ?? bundle!.metadata.name, state: state,
                            target: target ?? (kernel ? .kernel(release: "6.1.0-57-amd64") : .package(name: "demo", version: "1.0-1")),
                            bundle: bundle, allowPartial: allowPartial, patchSet: "web",
                            location: SourceLocation(file: manifest, line: line, column: 7))
    }

    static func process(_ pid: Int32, start: UInt64 = 1000, comm: String = "demo", path: String = demo,
                        buildID: String = demoBuild, markers: [String] = []) -> ProcessLiveState {
        ProcessLiveState(pid: pid, comm: comm, startTime: start,
                         objects: [MappedObject(path: path, buildID: buildID, device: "08:01", inode: 42, loadBias: 0x5555_0000_0000)],
                         patches: markers.enumerated().map { UserPatchMarker(uuid: $1, address: 0x7000_0000 + UInt64($0) * 0x1000, state: .active) })
    }

    static func installed(_ bundle: ResolvedBundle, problems: [String] = []) -> InstalledBundle {
        var b = bundle
        b.path = "/var/lib/suture/store/\(bundle.metadata.uuid)"
        return InstalledBundle(bundle: b, problems: problems)
    }

    static func live(store: [InstalledBundle] = [], processes: [ProcessLiveState] = [],
                     kernel: [KernelLivePatch] = [], blockers: [TransitionBlocker] = [],
                     packages: [String: [String]] = ["demo": ["1.0-1"]]) -> LiveState {
        LiveState(hostname: "web-1", bootID: "boot-1", kernelRelease: "6.1.0-57-amd64",
                  kernel: KernelLiveState(livepatchSupported: true, patches: kernel, blockers: blockers),
                  store: store, processes: processes, packages: packages)
    }

    static func lp(_ name: String, enabled: Bool = true, transition: Bool = false, replace: Bool? = nil) -> KernelLivePatch {
        KernelLivePatch(name: name, enabled: enabled, transition: transition, replace: replace,
                        objects: [KernelPatchObject(name: "vmlinux", patched: true)])
    }
}

extension Plan {
    /// `kind patch pid/module` per action, for compact assertions.
    var steps: [String] {
        actions.map { a in
            var s = "\(a.kind.rawValue) \(a.patch)"
            if let pid = a.pid { s += " \(pid)" }
            if let module = a.module { s += " \(module)" }
            return s
        }
    }

    func drift(_ kind: Drift.Kind) -> [Drift] { drift.filter { $0.kind == kind } }
}
