import NIOSSL

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the server's certificate chain and private key are (PEM).
public struct TLSFiles: Sendable, Equatable {
    public var certificate: String
    public var key: String

    static let certificateSetting = "PAYMENT_TLS_CERTIFICATE (--tls-certificate)"
    static let keySetting = "PAYMENT_TLS_KEY (--tls-key)"

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }
}

/// A certificate chain and the private key of its first certificate, read
/// from their files and checked to belong together.
public struct TLSIdentity: Sendable {
    /// The server's certificate first, then the intermediates that lead to a root.
    public let chain: [NIOSSLCertificate]
    public let key: NIOSSLPrivateKey

    /// Reads and checks both files; an error names the file at fault.
    public static func load(_ files: TLSFiles) throws(ConfigurationError) -> TLSIdentity {
        let certificateBytes = try read(files.certificate, setting: TLSFiles.certificateSetting)
        let keyBytes = try read(files.key, setting: TLSFiles.keySetting)
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(certificateBytes)
        } catch {
            throw ConfigurationError(
                setting: TLSFiles.certificateSetting, message: "'\(files.certificate)' is not a PEM certificate chain: \(error)")
        }
        guard !chain.isEmpty else {
            throw ConfigurationError(setting: TLSFiles.certificateSetting, message: "'\(files.certificate)' holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw ConfigurationError(
                setting: TLSFiles.keySetting, message: "'\(files.key)' is not an unencrypted PEM private key: \(error)")
        }
        let identity = TLSIdentity(chain: chain, key: key)
        do {
            // BoringSSL refuses a key whose public half is not the certificate's.
            _ = try NIOSSLContext(configuration: identity.serverConfiguration())
        } catch {
            throw ConfigurationError(
                setting: TLSFiles.keySetting,
                message: "'\(files.key)' is not the private key of the certificate in '\(files.certificate)': \(error)")
        }
        return identity
    }

    /// A plain server configuration presenting this identity.
    func serverConfiguration() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// What a handshake with this identity applies on top of the server's context.
    var handshakeOverride: NIOSSLContextConfigurationOverride {
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = chain.map { .certificate($0) }
        override.privateKey = .privateKey(key)
        return override
    }

    /// The server certificate's serial number and names, for the log.
    public var summary: String { chain[0].description }

    private static func read(_ path: String, setting: String) throws(ConfigurationError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            // The operating system's reason: no such file, permission denied.
            let reason = access(path, R_OK) == 0 ? "it is not a regular file" : String(cString: strerror(errno))
            throw ConfigurationError(setting: setting, message: "'\(path)' cannot be read: \(reason)")
        }
        return Array(data)
    }
}
