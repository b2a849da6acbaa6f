import GRDB

/// Verifies a SQLite database before it is served (`payment-status check`):
/// the file's structure, the migrations it recorded against the files of the
/// migrations folder, and the history's own rules: each order's events are
/// numbered 1…`version` with no gap, and the newest one is the order's state.
/// Read from one snapshot, so it can run beside a live service; it changes nothing.
public enum SQLiteCheck {
    /// What the check found. `problems` empty means the database may be served.
    public struct Report: Sendable {
        public var problems: [String] = []
        /// Migration files the folder has and the database has not applied yet
        /// (`serve` and `migrate` apply them): not a problem.
        public var pendingMigrations: [String] = []
        public var appliedMigrations = 0
        public var orders = 0
        public var finishedOrders = 0
        public var events = 0
    }

    /// At most this many orders are named per broken rule; the count says how many in all.
    static let examples = 10

    public static func run(path: String, migrations directory: String) throws -> Report {
        try SQLiteFile.requireDatabase(at: path)
        let files = try MigrationFile.load(from: directory)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let database = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? database.close() }
        return try database.inDatabase { db in
            var report = Report()
            // One read transaction for every part, ended without a commit: on a
            // corrupt file even ending it may fail, and the report must survive that.
            try db.execute(sql: "BEGIN DEFERRED TRANSACTION")
            defer { try? db.execute(sql: "ROLLBACK") }
            // Each part on its own: a corrupt page may make any query throw, and
            // the report should still say what the other parts found.
            func part(_ name: String, _ body: () throws -> Void) {
                do { try body() } catch { report.problems.append("\(name) failed: \(error)") }
            }
            part("the integrity check") {
                let lines = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                if lines != ["ok"] { report.problems += lines.map { "integrity_check: \($0)" } }
            }
            part("the foreign key check") {
                let rows = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
                for row in rows.prefix(examples) {
                    let table: String = row[0]
                    let parent: String = row[2]
                    report.problems.append("foreign_key_check: a row of \(table) refers to a missing row of \(parent)")
                }
                if rows.count > examples { report.problems.append("foreign_key_check: \(rows.count) rows in all") }
            }
            part("reading schema_migrations") { try checkMigrations(db, files: files, directory: directory, into: &report) }
            part("checking the order histories") { try checkHistories(db, into: &report) }
            return report
        }
    }

    private static func checkMigrations(_ db: Database, files: [MigrationFile], directory: String, into report: inout Report) throws {
        guard try db.tableExists("schema_migrations") else {
            report.problems.append("no schema_migrations table: this database was never migrated")
            report.pendingMigrations = files.map(\.name)
            return
        }
        let recorded = try Row.fetchAll(db, sql: "SELECT name, checksum FROM schema_migrations ORDER BY name")
        report.appliedMigrations = recorded.count
        let byName = Dictionary(uniqueKeysWithValues: files.map { ($0.name, $0) })
        for row in recorded {
            let name: String = row["name"]
            let checksum: String = row["checksum"]
            guard let file = byName[name] else {
                report.problems.append("migration \(name) was applied but is not in \(directory)")
                continue
            }
            if file.checksum != checksum {
                report.problems.append("migration \(name) was applied with checksum \(checksum) but the file now has \(file.checksum)")
            }
        }
        let applied = Set(recorded.map { $0["name"] as String })
        report.pendingMigrations = files.map(\.name).filter { !applied.contains($0) }
    }

    private static func checkHistories(_ db: Database, into report: inout Report) throws {
        report.orders = try Int.fetchOne(db, sql: "SELECT count(*) FROM orders") ?? 0
        report.finishedOrders = try Int.fetchOne(db, sql: "SELECT count(*) FROM orders WHERE status IN ('succeeded', 'failed')") ?? 0
        report.events = try Int.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0
        // One pass over the events, in primary-key order: per order its count
        // and its lowest and highest seq. With (order_id, seq) unique, count =
        // highest = version and lowest = 1 means exactly 1…version.
        let rows = try Row.fetchAll(db, sql: """
            SELECT o.id, o.version, o.status, h.n, h.lo, h.hi, newest.status AS newest_status
            FROM orders o
            LEFT JOIN (SELECT order_id, count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM events GROUP BY order_id) h
                ON h.order_id = o.id
            LEFT JOIN events newest ON newest.order_id = o.id AND newest.seq = h.hi
            WHERE h.n IS NULL OR h.hi != o.version OR h.n != h.hi OR h.lo != 1 OR newest.status != o.status
            ORDER BY o.id
            """)
        var broken: [String: [String]] = [:]
        for row in rows {
            let id: String = row["id"]
            let version: Int = row["version"]
            let status: String = row["status"]
            guard let count: Int = row["n"], let lowest: Int = row["lo"], let highest: Int = row["hi"] else {
                broken["orders without events", default: []].append("\(id) (version \(version)) has no events")
                continue
            }
            if highest != version {
                broken["orders whose version is not their newest event's seq", default: []]
                    .append("\(id) has version \(version) but its newest event is seq \(highest)")
            }
            if count != highest || lowest != 1 {
                let seqs = try Int.fetchAll(db, sql: "SELECT seq FROM events WHERE order_id = ? ORDER BY seq", arguments: [id])
                let present = Set(seqs)
                let missing = (1...max(highest, 1)).filter { !present.contains($0) }
                broken["orders with a gap in their seqs", default: []]
                    .append("\(id) has \(count) events for seqs 1…\(highest); missing \(missing.prefix(5).map(String.init).joined(separator: ", "))\(missing.count > 5 ? ", …" : "")")
            }
            if let newest: String = row["newest_status"], newest != status {
                broken["orders whose status is not their newest event's", default: []]
                    .append("\(id) has status \(status) but its newest event says \(newest)")
            }
        }
        for (rule, cases) in broken.sorted(by: { $0.key < $1.key }) {
            report.problems.append("\(rule) (\(cases.count)): "
                + cases.prefix(examples).joined(separator: "; ") + (cases.count > examples ? "; …" : ""))
        }
    }
}
