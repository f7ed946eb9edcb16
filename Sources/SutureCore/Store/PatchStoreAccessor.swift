import Foundation

/// The real patch store (`PatchStore`) behind the executor's `PatchStoreAccess` protocol.
///
/// A separate type rather than a conformance of `PatchStore` itself, because the protocol's
/// `install(_:) -> ResolvedBundle` would overload `PatchStore.install(_:) -> InstallResult` by return type.
public struct PatchStoreAccessor: PatchStoreAccess {
    /// The store.
    public let store: PatchStore

    /// Wraps `store`.
    public init(store: PatchStore) {
        self.store = store
    }

    /// `PatchStore.entry(uuid:)`: re-verified, problems listed, `nil` when absent. Never throws.
    public func installed(uuid: String) throws -> InstalledBundle? {
        store.entry(uuid: uuid)
    }

    /// `PatchStore.install(_:)`; installing the same digest again is a no-op.
    /// - Throws: `DiagnosticError` (store unchanged).
    public func install(_ bundle: ResolvedBundle) throws -> ResolvedBundle {
        try store.install(bundle).bundle
    }

    /// `PatchStore.remove(uuid:)`; absent is not an error.
    /// - Throws: `DiagnosticError`.
    public func remove(uuid: String) throws {
        _ = try store.remove(uuid: uuid)
    }
}

extension PatchStore {
    /// This store as the executor's `PatchStoreAccess`.
    public var accessor: PatchStoreAccessor { PatchStoreAccessor(store: self) }
}
