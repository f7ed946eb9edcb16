import Foundation

/// An error writing or reading one of Suture's state files.
public struct StateFileError: Error, Sendable, CustomStringConvertible {
    /// The file.
    public var path: String
    /// What failed.
    public var message: String

    /// Memberwise initializer.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `path: message`.
    public var description: String { "\(path): \(message)" }
}

/// The snapshot `suture patch save` writes and `suture patch restore` replays
/// (`<root>/var/lib/suture/saved-status.json`), mirroring SysCare's `save`/`restore`: the status of every
/// patch in the store, in store order. Unlike SysCare's status file it is only a snapshot for `restore`;
/// status itself is always read live.
public struct SavedStatus: Codable, Sendable, Hashable {
    /// One patch.
    public struct Entry: Codable, Sendable, Hashable {
        /// Patch uuid.
        public var uuid: String
        /// Patch name.
        public var name: String
        /// Status when saved.
        public var status: PatchStatus

        /// Memberwise initializer.
        public init(uuid: String, name: String, status: PatchStatus) {
            self.uuid = uuid
            self.name = name
            self.status = status
        }
    }
    /// JSON format version (1).
    public var formatVersion: Int = 1
    /// When saved (ISO 8601).
    public var time: String
    /// Every patch.
    public var patches: [Entry]

    /// Memberwise initializer.
    public init(time: String = isoTimestamp(Date()), patches: [Entry]) {
        self.time = time
        self.patches = patches
    }

    enum CodingKeys: String, CodingKey { case formatVersion = "format_version", time, patches }

    /// Reads the saved status.
    /// - Throws: `StateFileError` when missing or unreadable.
    public static func load(paths: StatePaths) throws(StateFileError) -> SavedStatus {
        guard let data = FileManager.default.contents(atPath: paths.savedStatus) else {
            throw StateFileError(path: paths.savedStatus, message: "no saved status (run `suture patch save` first)")
        }
        do { return try JSONDecoder().decode(SavedStatus.self, from: data) } catch {
            throw StateFileError(path: paths.savedStatus, message: "cannot read: \(error)")
        }
    }

    /// Writes it atomically and fsyncs (SysCare's `save` ends with `sync`).
    /// - Throws: `StateFileError`.
    public func save(paths: StatePaths) throws(StateFileError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let path = paths.savedStatus
        do {
            try makeDirectories(paths.stateDirectory)
            let data = try encoder.encode(self)
            try writeFileDurably(data, to: path)
        } catch let e as StateFileError {
            throw e
        } catch {
            throw StateFileError(path: path, message: "\(error)")
        }
    }
}
