import Foundation
import NIOSSL

/// A throwaway certificate and key made with `openssl` for one test, valid
/// for 127.0.0.1 and localhost.
struct TestCertificate: Sendable {
    let certificate: String
    let key: String
    /// The certificate a client sees first (the leaf), in DER.
    let leafDER: [UInt8]
    /// The serial number, as `openssl` prints it (hex, upper case).
    let serial: String

    /// A self-signed certificate (ECDSA P-256) named `name` in `folder`,
    /// valid for `subjectAltName`.
    static func selfSigned(
        in folder: String, name: String, subjectAltName: String = "DNS:localhost,IP:127.0.0.1"
    ) throws -> TestCertificate {
        let certificate = "\(folder)/\(name).crt"
        let key = "\(folder)/\(name).key"
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=\(name)", "-addext", "subjectAltName=\(subjectAltName)",
            "-keyout", key, "-out", certificate,
        ])
        return try TestCertificate(certificate: certificate, key: key)
    }

    /// A root authority, an intermediate it signed and a leaf the
    /// intermediate signed; the certificate file holds the chain a server
    /// sends (leaf, then intermediate), and a client trusts only the root.
    static func chained(in folder: String, name: String) throws -> (leaf: TestCertificate, intermediate: TestCertificate, root: TestCertificate) {
        let root = try selfSigned(in: folder, name: "\(name)-root")
        let intermediate = try signed(in: folder, name: "\(name)-intermediate", by: root, extensions: "basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n")
        let leaf = try signed(in: folder, name: "\(name)-leaf", by: intermediate, extensions: "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        let chain = "\(folder)/\(name).crt"
        try (String(contentsOfFile: leaf.certificate, encoding: .utf8) + String(contentsOfFile: intermediate.certificate, encoding: .utf8))
            .write(toFile: chain, atomically: true, encoding: .utf8)
        return (try TestCertificate(certificate: chain, key: leaf.key), intermediate, root)
    }

    /// A certificate named `name`, signed by `issuer`, with these X.509v3 extensions.
    private static func signed(in folder: String, name: String, by issuer: TestCertificate, extensions: String) throws -> TestCertificate {
        let key = "\(folder)/\(name).key"
        let request = "\(folder)/\(name).csr"
        let certificate = "\(folder)/\(name).crt"
        let extensionsFile = "\(folder)/\(name).ext"
        try extensions.write(toFile: extensionsFile, atomically: true, encoding: .utf8)
        try openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=\(name)", "-keyout", key, "-out", request,
        ])
        try openssl([
            "x509", "-req", "-in", request, "-CA", issuer.certificate, "-CAkey", issuer.key, "-CAcreateserial",
            "-days", "2", "-extfile", extensionsFile, "-out", certificate,
        ])
        return try TestCertificate(certificate: certificate, key: key)
    }

    init(certificate: String, key: String) throws {
        self.certificate = certificate
        self.key = key
        let leaf = try NIOSSLCertificate.fromPEMFile(certificate)[0]
        leafDER = try leaf.toDERBytes()
        serial = leaf.serialNumber.map { String(format: "%02X", $0) }.joined()
    }

    /// Copies this pair over `other`'s paths, replacing the files whole (as
    /// a renewal tool does), so a reader never sees half a file.
    func install(at other: TestCertificate) throws {
        for (from, to) in [(certificate, other.certificate), (key, other.key)] {
            let temporary = to + ".new"
            try? FileManager.default.removeItem(atPath: temporary)
            try FileManager.default.copyItem(atPath: from, toPath: temporary)
            guard rename(temporary, to) == 0 else { throw TestFailure("rename \(temporary) to \(to): \(String(cString: strerror(errno)))") }
        }
    }

    @discardableResult
    static func openssl(_ arguments: [String]) throws -> String {
        try run("/usr/bin/openssl", arguments)
    }

    /// Runs a tool to its end and returns what it printed; fails on a non-zero exit.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestFailure("\(tool) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)")
        }
        return text
    }
}
