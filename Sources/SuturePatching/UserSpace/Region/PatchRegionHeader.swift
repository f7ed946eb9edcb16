import SutureCore

/// The header at the start of every Suture patch region (the first page(s) of the
/// `/memfd:suture:<uuid>` mapping, mapped read-only in the target).
///
/// It makes the region self-describing: deactivation and readback need nothing but the process itself.
/// Layout (format version 1, little-endian, documented in docs/user-patches.md):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `SUTURE\0\x01` |
/// | 8 | 4 | format version (1) |
/// | 12 | 4 | state: 1 PREPARED, 2 ACTIVE, 3 INCONSISTENT |
/// | 16 | 16 | patch uuid (binary, RFC 4122 byte order) |
/// | 32 | 8 | load bias of the target object |
/// | 40 | 8 | region size in bytes (header included) |
/// | 48 | 4 | header size in bytes (a multiple of the page size) |
/// | 52 | 4 | function count N |
/// | 56 | 1 | build-id length L (≤ 64) |
/// | 57 | 7 | reserved (0) |
/// | 64 | 64 | target build-id (L bytes, zero padded) |
/// | 128 + 128·i | 128 | function record i |
///
/// Function record: entry address (8), detour site address (8; entry + 4 after `endbr64`), function size
/// (8), replacement address (8), detour length (4), reserved (4), original bytes at the site (16, zero
/// padded), detour bytes (16, zero padded), symbol name (48, NUL padded, truncated).
public struct PatchRegionHeader: Sendable, Hashable {
    /// Region life cycle as stored in the header.
    public enum State: UInt32, Sendable, Hashable {
        /// Code loaded, no detour written: inert (safe to unmap).
        case prepared = 1
        /// Detours written.
        case active = 2
        /// A rollback failed part-way; the process needs an operator (restart).
        case inconsistent = 3

        /// The region state this header state reads back as (before the entries are checked).
        public var markerState: PatchRegionMarker.State {
            switch self {
            case .prepared: return .prepared
            case .active: return .active
            case .inconsistent: return .inconsistent
            }
        }
    }

    /// One detoured function.
    public struct Function: Sendable, Hashable {
        /// Absolute address of the function's entry in the target.
        public var entry: UInt64
        /// Absolute address where the detour is written (entry, or entry + 4 after `endbr64`).
        public var site: UInt64
        /// Size of the original function in bytes.
        public var size: UInt64
        /// Absolute address of the replacement function inside the region.
        public var replacement: UInt64
        /// The bytes at `site` before patching (detour length bytes).
        public var original: [UInt8]
        /// The detour (`e9 rel32`).
        public var detour: [UInt8]
        /// The replaced symbol (for messages; at most 47 bytes kept).
        public var symbol: String

        /// Memberwise initializer.
        public init(entry: UInt64, site: UInt64, size: UInt64, replacement: UInt64, original: [UInt8],
                    detour: [UInt8], symbol: String) {
            self.entry = entry
            self.site = site
            self.size = size
            self.replacement = replacement
            self.original = original
            self.detour = detour
            self.symbol = symbol
        }
    }

    /// `SUTURE\0\x01`.
    public static let magic: [UInt8] = [0x53, 0x55, 0x54, 0x55, 0x52, 0x45, 0x00, 0x01]
    /// The format version this code writes and reads.
    public static let formatVersion: UInt32 = 1
    /// Offset of the state field (updated in place on commit and revert).
    public static let stateOffset = 12
    static let fixedSize = 128
    static let recordSize = 128

    /// Format version read.
    public var version: UInt32 = PatchRegionHeader.formatVersion
    /// State.
    public var state: State
    /// Patch uuid, lower-case canonical text.
    public var uuid: String
    /// Load bias of the target object at prepare time.
    public var loadBias: UInt64
    /// Total region size.
    public var regionSize: UInt64
    /// Header size (page multiple).
    public var headerSize: UInt32
    /// Target build-id, lower-case hex.
    public var buildID: String
    /// Detoured functions.
    public var functions: [Function]

    /// Memberwise initializer.
    public init(state: State, uuid: String, loadBias: UInt64, regionSize: UInt64, headerSize: UInt32,
                buildID: String, functions: [Function]) {
        self.state = state
        self.uuid = uuid
        self.loadBias = loadBias
        self.regionSize = regionSize
        self.headerSize = headerSize
        self.buildID = buildID
        self.functions = functions
    }

    /// Header bytes needed for `functionCount` records, rounded up to `pageSize`.
    public static func size(functionCount: Int, pageSize: Int = 4096) -> Int {
        let raw = fixedSize + recordSize * functionCount
        return (raw + pageSize - 1) / pageSize * pageSize
    }

    /// Serialises to exactly `headerSize` bytes.
    public func encode() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Int(headerSize))
        func put(_ v: UInt64, _ at: Int, _ n: Int) { for i in 0..<n { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        func bytes(_ v: [UInt8], _ at: Int, _ max: Int) { for (i, x) in v.prefix(max).enumerated() { b[at + i] = x } }
        bytes(Self.magic, 0, 8)
        put(UInt64(version), 8, 4)
        put(UInt64(state.rawValue), 12, 4)
        bytes(Self.uuidBytes(uuid) ?? [], 16, 16)
        put(loadBias, 32, 8)
        put(regionSize, 40, 8)
        put(UInt64(headerSize), 48, 4)
        put(UInt64(functions.count), 52, 4)
        let bid = Self.hexBytes(buildID) ?? []
        b[56] = UInt8(min(bid.count, 64))
        bytes(bid, 64, 64)
        for (i, f) in functions.enumerated() {
            let o = Self.fixedSize + Self.recordSize * i
            put(f.entry, o, 8)
            put(f.site, o + 8, 8)
            put(f.size, o + 16, 8)
            put(f.replacement, o + 24, 8)
            put(UInt64(f.detour.count), o + 32, 4)
            bytes(f.original, o + 40, 16)
            bytes(f.detour, o + 56, 16)
            bytes(Array(f.symbol.utf8), o + 72, 47)
        }
        return b
    }

    /// Parses a header; `nil` when the magic, version or sizes are wrong.
    public static func decode(_ b: [UInt8]) -> PatchRegionHeader? {
        guard b.count >= fixedSize, Array(b[0..<8]) == magic else { return nil }
        func get(_ at: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(b[at + i]) << (8 * i) }
            return v
        }
        guard UInt32(get(8, 4)) == formatVersion, let state = State(rawValue: UInt32(get(12, 4))) else { return nil }
        let count = Int(get(52, 4))
        let headerSize = UInt32(get(48, 4))
        guard count <= 4096, b.count >= fixedSize + recordSize * count else { return nil }
        let bidLen = min(Int(b[56]), 64)
        var functions: [Function] = []
        for i in 0..<count {
            let o = fixedSize + recordSize * i
            let len = min(Int(get(o + 32, 4)), 16)
            let nameBytes = b[(o + 72)..<(o + 119)]
            let nameEnd = nameBytes.firstIndex(of: 0) ?? nameBytes.endIndex
            functions.append(Function(entry: get(o, 8), site: get(o + 8, 8), size: get(o + 16, 8),
                                      replacement: get(o + 24, 8), original: Array(b[(o + 40)..<(o + 40 + len)]),
                                      detour: Array(b[(o + 56)..<(o + 56 + len)]),
                                      symbol: String(decoding: nameBytes[..<nameEnd], as: UTF8.self)))
        }
        return PatchRegionHeader(state: state, uuid: uuidString(Array(b[16..<32])), loadBias: get(32, 8),
                                 regionSize: get(40, 8), headerSize: headerSize,
                                 buildID: hexString(Array(b[64..<(64 + bidLen)])), functions: functions)
    }

    /// `0123abcd-…` → 16 bytes; nil if malformed.
    public static func uuidBytes(_ s: String) -> [UInt8]? {
        let hex = String(s.filter { $0 != "-" })
        guard hex.count == 32 else { return nil }
        return hexBytes(hex)
    }

    static func uuidString(_ b: [UInt8]) -> String {
        let h = hexString(b)
        let c = Array(h)
        guard c.count == 32 else { return h }
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20])
            + "-" + String(c[20..<32])
    }

    /// Lower-case hex → bytes (nil when odd length or not hex).
    public static func hexBytes(_ s: String) -> [UInt8]? {
        let chars = Array(s.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var i = 0
        while i < chars.count {
            guard let h = nibble(chars[i]), let l = nibble(chars[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }

    /// Bytes → lower-case hex.
    public static func hexString(_ b: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var s = ""
        s.reserveCapacity(b.count * 2)
        for x in b {
            s.append(digits[Int(x >> 4)])
            s.append(digits[Int(x & 15)])
        }
        return s
    }
}
