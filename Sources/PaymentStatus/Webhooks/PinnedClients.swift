import AsyncHTTPClient
import Synchronization

/// HTTP clients that each connect a host name to one address: an `https`
/// attempt must reach the very address the URL policy just passed while the
/// receiver's certificate is still checked against the name, and
/// AsyncHTTPClient does that only per client (`dnsOverride`). Without it the
/// client resolves the name again after the check, and a name pointed
/// elsewhere in between (DNS rebinding) would take the attempt there.
///
/// One client per (name, address), kept while it is used so its connections
/// are reused; past `capacity` the idle ones are shut down and the busy ones
/// when their last attempt ends.
final class PinnedClients: Sendable {
    private let configuration: HTTPClient.Configuration
    private let clients = Mutex([Key: Pinned]())
    private let capacity: Int

    private struct Key: Hashable {
        let host: String
        let address: NetworkAddress
    }

    /// A client and the attempts using it now.
    private final class Pinned: Sendable {
        let client: HTTPClient
        /// Attempts using it, and whether it left the table (then the last
        /// one to end shuts it down); guarded by the table's lock.
        let state = Mutex((users: 0, retired: false))
        init(_ client: HTTPClient) { self.client = client }
    }

    /// `configuration` is every client's, but for the address each is pinned to.
    init(configuration: HTTPClient.Configuration, capacity: Int = 256) {
        self.configuration = configuration
        self.capacity = capacity
    }

    /// Runs `body` with the client that connects `host` to `address`.
    func with<T>(host: String, address: NetworkAddress, _ body: (HTTPClient) async throws -> T) async throws -> T {
        let pinned = acquire(Key(host: host, address: address))
        defer { release(pinned) }
        return try await body(pinned.client)
    }

    /// Shuts every client down; attempts still running on one are cut.
    func shutdown() async {
        let all = clients.withLock { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for pinned in all { try? await pinned.client.shutdown() }
    }

    var count: Int { clients.withLock { $0.count } }

    private func acquire(_ key: Key) -> Pinned {
        var idle: [Pinned] = []
        let pinned = clients.withLock { table in
            if let known = table[key] {
                known.state.withLock { $0.users += 1 }
                return known
            }
            if table.count >= capacity {
                for (oldKey, old) in table {
                    let unused = old.state.withLock { state in
                        state.retired = true
                        return state.users == 0
                    }
                    if unused { idle.append(old) }
                    table[oldKey] = nil
                }
            }
            var pinnedConfiguration = configuration
            pinnedConfiguration.dnsOverride = [key.host: key.address.description]
            let made = Pinned(HTTPClient(eventLoopGroupProvider: .singleton, configuration: pinnedConfiguration))
            made.state.withLock { $0.users = 1 }
            table[key] = made
            return made
        }
        for old in idle { Self.close(old) }
        return pinned
    }

    private func release(_ pinned: Pinned) {
        let last = clients.withLock { _ in
            pinned.state.withLock { state in
                state.users -= 1
                return state.retired && state.users == 0
            }
        }
        if last { Self.close(pinned) }
    }

    /// Closes a client nobody uses any more, without waiting for it.
    private static func close(_ pinned: Pinned) {
        pinned.client.shutdown { _ in }
    }
}
