import Foundation

/// One record of the apply journal (`<root>/var/lib/suture/journal`, one JSON object per line).
///
/// A run writes `run-begin`, then `action-begin`/`action-end` around every action, `undo-begin`/`undo-end`
/// around every undo, and `run-end`. Each record is written with one `write(2)` and `fsync(2)`'d before
/// the step it announces starts, so after a crash the last record says exactly how far the run got.
public struct JournalRecord: Codable, Sendable, Hashable {
    /// Record kinds.
    public enum Event: String, Codable, Sendable, Hashable {
        case runBegin = "run-begin", actionBegin = "action-begin", actionEnd = "action-end",
             undoBegin = "undo-begin", undoEnd = "undo-end", orphanBegin = "orphan-begin",
             orphanEnd = "orphan-end", runEnd = "run-end"
    }
    /// 1-based sequence number within the run.
    public var seq: Int
    /// The kind.
    public var event: Event
    /// When it was written (ISO 8601).
    public var time: String
    /// `run-begin`: who ran (pid, command).
    public var holder: LockHolder?
    /// Index of the action in the plan (action and undo records).
    public var index: Int?
    /// The action (action-begin, undo-begin, orphan-begin).
    public var action: PlanAction?
    /// `action-end`/`undo-end`/`orphan-end`: `done`, `skipped`, `failed`; `run-end`: the result name.
    public var result: String?
    /// Free detail (error text, skip reason).
    public var detail: String?
    /// `run-end`: the exit code.
    public var exitCode: Int32?

    /// Memberwise initializer.
    public init(seq: Int, event: Event, time: String = isoTimestamp(Date()), holder: LockHolder? = nil,
                index: Int? = nil, action: PlanAction? = nil, result: String? = nil, detail: String? = nil,
                exitCode: Int32? = nil) {
        self.seq = seq
        self.event = event
        self.time = time
        self.holder = holder
        self.index = index
        self.action = action
        self.result = result
        self.detail = detail
        self.exitCode = exitCode
    }

    enum CodingKeys: String, CodingKey {
        case seq, event, time, holder, index, action, result, detail, exitCode = "exit_code"
    }
}

/// What the journal of an interrupted run shows: who ran, how far it got, and the steps that began but
/// never ended (those may be half done; the next run converges from live state).
public struct InterruptedRun: Codable, Sendable, Hashable, CustomStringConvertible {
    /// The interrupted run's holder (pid, command, start).
    public var holder: LockHolder?
    /// Number of records it wrote.
    public var records: Int
    /// The last record written.
    public var lastRecord: JournalRecord?
    /// Actions whose `*-begin` had no matching `*-end` (at most one per kind in practice).
    public var unfinished: [PlanAction]
    /// Every action the interrupted run finished (`done`), in order.
    public var finished: [PlanAction]

    /// Memberwise initializer.
    public init(holder: LockHolder?, records: Int, lastRecord: JournalRecord?, unfinished: [PlanAction],
                finished: [PlanAction]) {
        self.holder = holder
        self.records = records
        self.lastRecord = lastRecord
        self.unfinished = unfinished
        self.finished = finished
    }

    /// Uuids the interrupted run touched.
    public var uuids: Set<String> { Set((unfinished + finished).map(\.uuid)) }

    /// Two or three lines: who, how far, what was in flight.
    public var description: String {
        var s = "The previous run"
        if let holder { s += " (\(holder))" }
        s += " was interrupted after \(records) journal record(s)"
        if let lastRecord { s += "; last: \(lastRecord.event.rawValue)" }
        s += "."
        for action in unfinished { s += "\n  in flight: \(describe(action))" }
        if !finished.isEmpty { s += "\n  finished before the interruption: \(finished.count) action(s)" }
        s += "\nConverging from the live state."
        return s
    }
}

/// `activate CVE-1 (user) in pid 123 (demo)`.
public func describe(_ action: PlanAction) -> String {
    var s = "\(action.kind.rawValue) \(action.patch)"
    if let pid = action.pid {
        s += " in pid \(pid)"
        if let comm = action.comm, !comm.isEmpty { s += " (\(comm))" }
    } else if action.patchKind == .kernel && (action.kind == .activate || action.kind == .deactivate) {
        s += " (kernel)"
    }
    return s
}

/// Errors of the journal.
public struct JournalError: Error, Sendable, CustomStringConvertible {
    /// The journal path.
    public var path: String
    /// What failed.
    public var message: String
    /// `journal /var/lib/suture/journal: …`.
    public var description: String { "journal \(path): \(message)" }
}

/// The apply journal: an append-only file of `JournalRecord` lines, fsync'd record by record.
///
/// One journal describes one run: `begin` truncates it and writes `run-begin`. A journal whose last
/// record is not `run-end` belongs to a run that was killed; `inspect` reports it.
///
/// Test hook (debug builds only, `SUTURE_TEST_HOOKS`; release builds never read the variable): when the
/// environment variable `SUTURE_TEST_STOP_AT_STEP=K` is set, the process stops itself with `SIGSTOP` right
/// after record K is durable, so a test can `kill -9` it at that exact step.
public final class ApplyJournal: @unchecked Sendable {
    /// The journal path.
    public let path: String
    private var fd: Int32 = -1
    private var seq = 0
    private let stopAtStep: Int?
    private let encoder: JSONEncoder

    /// A journal at `paths.journal`; nothing is written until `begin`.
    public init(paths: StatePaths) {
        path = paths.journal
        #if SUTURE_TEST_HOOKS
        stopAtStep = ProcessInfo.processInfo.environment["SUTURE_TEST_STOP_AT_STEP"].flatMap(Int.init)
        #else
        stopAtStep = nil
        #endif
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
    }

    /// Reads the journal left by the previous run.
    /// - Returns: nil when there is none or it ended with `run-end`; otherwise what was interrupted.
    public static func inspect(paths: StatePaths) -> InterruptedRun? {
        guard let data = FileManager.default.contents(atPath: paths.journal), !data.isEmpty else { return nil }
        let decoder = JSONDecoder()
        var records: [JournalRecord] = []
        for line in data.split(separator: 0x0a) where !line.isEmpty {
            // A torn last line (crash mid-write) is ignored: the record before it is the last durable one.
            if let r = try? decoder.decode(JournalRecord.self, from: Data(line)) { records.append(r) }
        }
        if records.isEmpty || records.last?.event == .runEnd { return nil }
        var open: [Int: PlanAction] = [:]
        var openOrphans: [PlanAction] = []
        var finished: [PlanAction] = []
        for r in records {
            switch r.event {
            case .actionBegin, .undoBegin: if let i = r.index, let a = r.action { open[i] = a }
            case .actionEnd, .undoEnd:
                if let i = r.index, let a = open.removeValue(forKey: i), r.result == "done", r.event == .actionEnd {
                    finished.append(a)
                }
            case .orphanBegin: if let a = r.action { openOrphans.append(a) }
            case .orphanEnd: if !openOrphans.isEmpty { openOrphans.removeLast() }
            case .runBegin, .runEnd: break
            }
        }
        let unfinished = open.sorted { $0.key < $1.key }.map(\.value) + openOrphans
        return InterruptedRun(holder: records.first?.holder, records: records.count, lastRecord: records.last,
                              unfinished: unfinished, finished: finished)
    }

    /// Starts a new journal (truncating the previous one) with a `run-begin` record.
    /// - Throws: `JournalError` when the file cannot be written or synced.
    public func begin(holder: LockHolder) throws(JournalError) {
        do { try makeDirectories((path as NSString).deletingLastPathComponent) } catch {
            throw JournalError(path: path, message: "\(error)")
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        if fd < 0 { throw JournalError(path: path, message: errnoText()) }
        seq = 0
        try append(JournalRecord(seq: 0, event: .runBegin, holder: holder))
        // Make the truncation and the new file durable in the directory too.
        let dfd = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// True once `begin` succeeded and until `end`.
    public var isOpen: Bool { fd >= 0 }

    /// Appends one record (its `seq` is assigned here), then `fsync`s.
    /// - Throws: `JournalError` on a short write or a failed fsync.
    public func append(_ record: JournalRecord) throws(JournalError) {
        guard fd >= 0 else { throw JournalError(path: path, message: "journal not open") }
        seq += 1
        var r = record
        r.seq = seq
        guard var data = try? encoder.encode(r) else {
            throw JournalError(path: path, message: "cannot encode record")
        }
        data.append(0x0a)
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written != data.count { throw JournalError(path: path, message: "write: \(errnoText())") }
        if fsync(fd) != 0 { throw JournalError(path: path, message: "fsync: \(errnoText())") }
        if let stopAtStep, stopAtStep == seq {
            // Test hook: freeze here so the test can kill -9 this process at exactly this step.
            raise(SIGSTOP)
        }
    }

    /// Writes `run-end` and closes the journal.
    /// - Throws: `JournalError`.
    public func end(result: String, exitCode: Int32) throws(JournalError) {
        defer { if fd >= 0 { close(fd); fd = -1 } }
        try append(JournalRecord(seq: 0, event: .runEnd, result: result, exitCode: exitCode))
    }

    deinit { if fd >= 0 { close(fd) } }
}
