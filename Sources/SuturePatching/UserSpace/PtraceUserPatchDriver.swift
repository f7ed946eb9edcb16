import Crypto
import Foundation
import SutureCore

/// `UserPatchDriver` backed by the ptrace engine (``UserPatchEngine``).
///
/// `activate` reads the entity's payload from the bundle directory, parses it with `PatchImageLinker`
/// (before any process is touched, so a malformed payload changes nothing), and hands the engine a
/// request whose imports are resolved per process by `ImportResolver` (`.dynsym` of the loaded objects).
public struct PtraceUserPatchDriver: UserPatchDriver {
    /// Hooks passed to every engine operation (tests, benchmarks).
    public var hooks: UserPatchHooks

    /// Creates the driver.
    public init(hooks: UserPatchHooks = UserPatchHooks()) {
        self.hooks = hooks
    }

    /// Builds the engine request for `entity` of `bundle` (reads and parses the payload).
    /// - Throws: `UserPatchError` `.unpatchableFunction` for an unreadable or unlinkable payload (pid 0).
    public static func request(bundle: ResolvedBundle, entity: BundleEntity, pid: Int32 = 0) throws(UserPatchError) -> UserPatchRequest {
        let path = URL(fileURLWithPath: bundle.path).appendingPathComponent(entity.payload).path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw UserPatchError(.unpatchableFunction, pid: pid, message: "cannot read payload \(path)",
                                 hint: "check the bundle with `suture bundle verify`")
        }
        if !entity.payloadSHA256.isEmpty {
            let actual = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
            if actual != entity.payloadSHA256.lowercased() {
                throw UserPatchError(.unpatchableFunction, pid: pid,
                                     message: "payload \(entity.payload) has sha256 \(actual), patch.yaml records \(entity.payloadSHA256)",
                                     hint: "the bundle was modified after it was made; refusing before attaching")
            }
        }
        let linker: PatchImageLinker
        do {
            linker = try PatchImageLinker(object: [UInt8](data), entity: entity)
        } catch {
            throw UserPatchError(.unpatchableFunction, pid: pid, message: "payload \(entity.payload): \(error)")
        }
        var functions: [BundleEntityView.Function] = []
        for f in entity.functions ?? [] {
            functions.append(BundleEntityView.Function(symbol: f.symbol, offset: f.offset, size: f.size,
                                                       expectedBytes: PatchRegionHeader.hexBytes(f.expectedBytes) ?? [],
                                                       replacement: f.replacement))
        }
        let view = BundleEntityView(targetPath: entity.targetPath, targetBuildID: entity.targetBuildID, functions: functions)
        return UserPatchRequest(uuid: bundle.metadata.uuid, entity: view, image: linker,
                                makeImportResolver: { pid in
                                    let resolver = try? ImportResolver(pid: pid)
                                    return { name in resolver?.address(of: name) }
                                })
    }

    /// See `UserPatchDriver.activate(bundle:entity:pid:startTime:options:)`. Throws `UserPatchError`.
    public func activate(bundle: ResolvedBundle, entity: BundleEntity, pid: Int32, startTime: UInt64?,
                         options: UserPatchOptions) throws(UserPatchError) -> UserPatchOutcome {
        let request: UserPatchRequest
        do {
            request = try Self.request(bundle: bundle, entity: entity, pid: pid)
        } catch {
            var e = error
            e.comm = ProcFiles.comm(pid)
            throw e
        }
        return try UserPatchEngine.activate(request, pid: pid, startTime: startTime, options: options, hooks: hooks).outcome
    }

    /// See `UserPatchDriver.deactivate(uuid:pid:startTime:options:)`. Throws `UserPatchError`.
    public func deactivate(uuid: String, pid: Int32, startTime: UInt64?,
                           options: UserPatchOptions) throws(UserPatchError) -> UserPatchOutcome {
        try UserPatchEngine.deactivate(uuid: uuid, pid: pid, startTime: startTime, options: options, hooks: hooks).outcome
    }
}
