import Glibc
import KCP

/// Status codes of `include/kcp.h`.
enum Status {
    static let ok: Int32 = 0
    static let invalidArgument: Int32 = 1
    static let engineError: Int32 = 2
}

/// Per-thread storage for the message of the last failed call.
private let errorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

private func storeError(_ message: String?) {
    free(pthread_getspecific(errorKey))
    pthread_setspecific(errorKey, message.flatMap { strdup($0) })
}

@_cdecl("kcp_error_message")
public func kcp_error_message() -> UnsafePointer<CChar> {
    if let message = pthread_getspecific(errorKey) {
        return UnsafePointer(message.assumingMemoryBound(to: CChar.self))
    }
    let empty: StaticString = ""
    return UnsafeRawPointer(empty.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// Runs `body` and turns what it throws into a status code and a message.
func boundary(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        storeError(nil)
        return Status.ok
    } catch let error as KCPError {
        storeError(error.description)
        if case .invalidArgument = error { return Status.invalidArgument }
        return Status.engineError
    } catch {
        storeError("\(error)")
        return Status.engineError
    }
}
