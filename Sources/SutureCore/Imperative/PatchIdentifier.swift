import Foundation

/// Resolves a patch identifier the way SysCare's CLI takes it (../shared/reference/syscare.md §2):
/// a uuid, `TARGET/NAME` (`demo-1.0/demo-fix`, also with `-VERSION-RELEASE` after the name), a
/// `NAME-VERSION-RELEASE`, or a bare `NAME` when exactly one known patch has it.
public enum PatchIdentifier {
    /// Errors of resolution.
    public struct ResolveError: Error, Sendable, CustomStringConvertible {
        /// The identifier given.
        public var identifier: String
        /// Candidates when ambiguous (qualified names with uuids); empty when nothing matched.
        public var candidates: [String]
        /// Known identifiers to suggest when nothing matched.
        public var known: [String]

        /// `no patch matches 'x' (known: …)` or `'x' is ambiguous: …`.
        public var description: String {
            if candidates.isEmpty {
                return "no patch matches '\(identifier)'"
                    + (known.isEmpty ? " (no patches are known: none installed or declared)"
                                     : " (known: \(known.joined(separator: ", ")))")
            }
            return "'\(identifier)' is ambiguous; use TARGET/NAME or the uuid: \(candidates.joined(separator: ", "))"
        }
    }

    /// The bundles of `known` that `identifier` names (several bundles with the same uuid count once; the
    /// first wins).
    /// - Throws: `ResolveError` when none or more than one distinct patch matches.
    public static func resolve(_ identifier: String, among known: [ResolvedBundle]) throws(ResolveError) -> ResolvedBundle {
        var unique: [String: ResolvedBundle] = [:]
        var order: [String] = []
        for b in known where unique[b.metadata.uuid] == nil {
            unique[b.metadata.uuid] = b
            order.append(b.metadata.uuid)
        }
        let all = order.compactMap { unique[$0] }
        let id = identifier.hasSuffix("/") ? String(identifier.dropLast()) : identifier
        func full(_ m: BundleMetadata) -> String { "\(m.name)-\(m.version)-\(m.release)" }
        let exact = all.filter { b in
            let m = b.metadata
            return m.uuid.lowercased() == id.lowercased() || m.qualifiedName == id
                || "\(m.target.displayName)/\(full(m))" == id || full(m) == id
        }
        let matches = exact.isEmpty ? all.filter { $0.metadata.name == id } : exact
        if matches.count == 1 { return matches[0] }
        throw ResolveError(identifier: identifier,
                           candidates: matches.map { "\($0.metadata.qualifiedName) (\($0.metadata.uuid))" },
                           known: matches.isEmpty ? all.map(\.metadata.qualifiedName).sorted() : [])
    }
}
