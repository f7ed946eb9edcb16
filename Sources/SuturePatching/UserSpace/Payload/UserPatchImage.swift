/// Protection of one segment of a patch region. Never writable and executable at once (W^X).
public enum RegionProtection: Sendable, Hashable {
    /// `r--`: header, read-only data.
    case read
    /// `r-x`: code.
    case readExecute
    /// `rw-`: data, GOT / import table.
    case readWrite

    /// The `PROT_*` bits for mmap(2).
    var mmapBits: Int32 {
        switch self {
        case .read: return 0x1
        case .readExecute: return 0x1 | 0x4
        case .readWrite: return 0x1 | 0x2
        }
    }
}

/// The size and protection of one segment, known before the region's address is chosen.
public struct UserPatchSegmentSpec: Sendable, Hashable {
    /// Size in bytes (rounded up to whole pages when mapped).
    public var size: Int
    /// Final protection.
    public var protection: RegionProtection

    /// Memberwise initializer.
    public init(size: Int, protection: RegionProtection) {
        self.size = size
        self.protection = protection
    }
}

/// A patch image linked at its final address.
public struct UserPatchLinkedImage: Sendable, Hashable {
    /// Bytes of each segment, in the order of ``UserPatchImageSource/segments``; a segment may be shorter
    /// than its spec (the rest is zero, like `.bss`).
    public var segments: [[UInt8]]
    /// Absolute address of each replacement function, by its symbol in the payload.
    public var replacements: [String: UInt64]

    /// Memberwise initializer.
    public init(segments: [[UInt8]], replacements: [String: UInt64]) {
        self.segments = segments
        self.replacements = replacements
    }
}

/// Something that can produce the code of a user patch at a given address: the payload linker
/// (`PatchImageLinker`) or a hand-built image in tests.
///
/// Region layout: the header pages first, then each segment in order, each starting on a page boundary.
/// `linkImage(base:…)` receives the address of the first segment; segment `i` starts at
/// `base + Σ_{j<i} roundUp(segments[j].size, 4096)`. A target offset `o` (from the target's page-aligned
/// link base, as in `FunctionPatch.offset`) is at run-time address `targetBase + o`.
public protocol UserPatchImageSource: Sendable {
    /// Segment sizes and protections (the layout), independent of the address.
    var segments: [UserPatchSegmentSpec] { get }
    /// Links the image for `base` (first segment address) and `targetBase` (= load bias + link base of the
    /// target object), resolving the payload's imports with `resolveImport` (nil = unresolved).
    /// - Throws: any error (relocation overflow, unresolved import); the engine reports it as
    ///   `UNPATCHABLE_FUNCTION` (or `NO_NEAR_SPACE` for overflow when the error says so).
    func linkImage(base: UInt64, targetBase: UInt64, resolveImport: (String) -> UInt64?) throws -> UserPatchLinkedImage
}

/// A user patch as the engine needs it: identity, target functions and the image.
public struct UserPatchRequest: Sendable {
    /// Patch uuid (lower-case RFC 4122), used in the mapping name `suture:<uuid>`.
    public var uuid: String
    /// The bundle entity: target path, build-id and the replaced functions.
    public var entity: BundleEntityView
    /// The code to load.
    public var image: any UserPatchImageSource
    /// Makes, once per operation, a resolver of imports (`memcpy`) to absolute addresses in process
    /// `pid` (nil result = unresolved). Runs on the ptrace thread before any stop.
    public var makeImportResolver: (@Sendable (_ pid: Int32) -> (String) -> UInt64?)?

    /// Memberwise initializer.
    public init(uuid: String, entity: BundleEntityView, image: any UserPatchImageSource,
                makeImportResolver: (@Sendable (Int32) -> (String) -> UInt64?)? = nil) {
        self.uuid = uuid
        self.entity = entity
        self.image = image
        self.makeImportResolver = makeImportResolver
    }
}

/// The parts of a `BundleEntity` the engine uses.
public struct BundleEntityView: Sendable, Hashable {
    /// Target ELF path (used to match by device:inode, then by the mapped path).
    public var targetPath: String
    /// Expected GNU build-id, lower-case hex.
    public var targetBuildID: String
    /// Replaced functions.
    public var functions: [Function]

    /// One replaced function.
    public struct Function: Sendable, Hashable {
        /// Target symbol.
        public var symbol: String
        /// Offset of the entry from the target's link base (lowest `PT_LOAD` vaddr, page-aligned).
        public var offset: UInt64
        /// Size of the target function.
        public var size: UInt64
        /// Expected first bytes at the entry.
        public var expectedBytes: [UInt8]
        /// Replacement symbol in the payload.
        public var replacement: String

        /// Memberwise initializer.
        public init(symbol: String, offset: UInt64, size: UInt64, expectedBytes: [UInt8], replacement: String) {
            self.symbol = symbol
            self.offset = offset
            self.size = size
            self.expectedBytes = expectedBytes
            self.replacement = replacement
        }
    }

    /// Memberwise initializer.
    public init(targetPath: String, targetBuildID: String, functions: [Function]) {
        self.targetPath = targetPath
        self.targetBuildID = targetBuildID
        self.functions = functions
    }
}
