import ATPSnapshot

/// Finds the snapshot directory a `--snapshot` argument names.
public enum SnapshotLocator {
    /// `argument` as a snapshot directory: `latest` is the newest complete snapshot (the largest
    /// id; `.tmp` directories are writes in progress) under `<dataDirectory>/snapshots`; anything
    /// else is the path of a snapshot directory (`…/snapshot-<20 digits>`). Throws
    /// `ReconcileError.usage` when there is none.
    public static func resolve(_ argument: String, dataDirectory: String?) throws(ReconcileError) -> String {
        guard argument == "latest" else {
            var path = argument
            while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
            guard FileTree.isDirectory(path) else { throw .usage("--snapshot \(argument): no such directory") }
            let name = path.split(separator: "/").last.map(String.init) ?? path
            guard SnapshotStore.snapshotID(ofDirectoryName: name) != nil else {
                throw .usage("--snapshot \(argument): not a snapshot directory (its name must be snapshot-<20 digits>), or pass latest with --data-dir")
            }
            return path
        }
        guard let dataDirectory else { throw .usage("--snapshot latest needs --data-dir (the directory holding snapshots/)") }
        let snapshots = dataDirectory + "/snapshots"
        guard let names = FileTree.list(snapshots) else { throw .usage("--snapshot latest: cannot read \(snapshots)") }
        let ids = names.compactMap(SnapshotStore.snapshotID(ofDirectoryName:))
        guard let newest = ids.max() else { throw .usage("--snapshot latest: \(snapshots) holds no complete snapshot") }
        let digits = String(newest)
        return snapshots + "/snapshot-" + String(repeating: "0", count: 20 - digits.count) + digits
    }
}
