import Foundation

/// What `suture build --json` prints (`format_version` 1; snake_case keys). Written on success and on
/// failure (then `error` is set, and `refusals` when the differ refused the patch).
public struct BuildReport: Sendable, Codable {
    /// One timed phase.
    public struct Phase: Sendable, Codable {
        /// `prepare`, `original build`, `patched build`, `symbols`, `diff`, `link`, `verify`.
        public var name: String
        /// Wall-clock seconds.
        public var seconds: Double
        /// What happened (`cached`, `12 compiles`, …).
        public var detail: String
    }

    /// One compile unit the patches changed.
    public struct ChangedUnit: Sendable, Codable {
        /// Source path relative to the tree.
        public var source: String
        /// The patched object (copied into the work directory).
        public var object: String
        /// True when the unit only exists in the patched build.
        public var new: Bool
    }

    /// What went into the bundle for one target.
    public struct TargetReport: Sendable, Codable {
        /// The target ELF.
        public var path: String
        /// Its build-id (the bundle binds to it).
        public var buildID: String
        /// Where its symbols came from.
        public var symbols: SymbolChoice
        /// Replaced functions.
        public var replaced: [ReplacedFunction]
        /// Payload-only functions.
        public var newFunctions: [String]
        /// Functions changed only by line-number constants (not replaced).
        public var lineNumberOnly: [String]
        /// Replaced function → changed functions inlined into it.
        public var inlinedCauses: [String: [String]]
        /// Data living in the patch.
        public var newData: [String]
        /// Payload references bound to the target's own symbols.
        public var targetSymbols: [TargetSymbolRow]
        /// Symbols resolved at activation from the process's libraries.
        public var imports: [String]
        /// The payload object (work directory).
        public var payload: String

        enum CodingKeys: String, CodingKey {
            case path, buildID = "build_id", symbols, replaced, newFunctions = "new_functions",
                 lineNumberOnly = "line_number_only", inlinedCauses = "inlined_causes", newData = "new_data",
                 targetSymbols = "target_symbols", imports, payload
        }
    }

    /// A payload reference bound to a target symbol.
    public struct TargetSymbolRow: Sendable, Codable {
        /// Undefined symbol of the payload.
        public var payloadSymbol: String
        /// The target's symbol.
        public var targetSymbol: String
        /// Offset from the target's link base.
        public var offset: UInt64

        enum CodingKeys: String, CodingKey {
            case payloadSymbol = "payload_symbol", targetSymbol = "target_symbol", offset
        }
    }

    /// The written bundle.
    public struct Bundle: Sendable, Codable {
        /// Bundle directory.
        public var path: String
        /// The digest to pin in a manifest's `sha256`.
        public var sha256: String
        /// Patch name.
        public var name: String
        /// Bundle uuid.
        public var uuid: String
    }

    /// Always 1.
    public var formatVersion = 1
    /// The phases run, in order.
    public var phases: [Phase] = []
    /// Units whose object differs between the builds.
    public var changedUnits: [ChangedUnit] = []
    /// One per target that got an entity.
    public var targets: [TargetReport] = []
    /// Default targets (ELFs of the build) in which none of the changed functions is.
    public var skippedTargets: [String] = []
    /// The bundle, when written.
    public var bundle: Bundle?
    /// The work directory (logs, compile records, objects, payloads).
    public var workDirectory: String = ""
    /// True when the work directory is kept (`--keep-work`, or after a failure).
    public var workKept = false
    /// The build cache entry.
    public var cacheEntry: String = ""
    /// The error that stopped the build.
    public var error: String?
    /// The differ's refusals (one clear error each).
    public var refusals: [String] = []

    /// An empty report.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", phases, changedUnits = "changed_units", targets,
             skippedTargets = "skipped_targets", bundle, workDirectory = "work_directory", workKept = "work_kept",
             cacheEntry = "cache_entry", error, refusals
    }

    /// Pretty JSON, keys sorted.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }
}
