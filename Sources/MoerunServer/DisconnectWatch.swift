// Notices a client that goes away while its request runs, also before any byte of the response was written (a
// request still queued in the engine): a channel handler watching for the peer's FIN, a reset, or the channel
// closing. Hummingbird enables remote half-closure, so a FIN arrives as `ChannelEvent.inputClosed`; NIO reads on
// (auto-read) while the handler runs, so the FIN is seen as it comes.
import Hummingbird
import NIOCore
import Synchronization

/// The request context of this server: Hummingbird's basic one plus the connection, which the watch needs.
struct ServerRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Installed when a request arrives (before its body is read, so no close can slip past it); calls the action set
/// by `onClose` once the connection's inbound side ends, at once if it already has.
final class DisconnectWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    private let state = Mutex<(closed: Bool, action: (@Sendable () -> Void)?)>((false, nil))
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Puts a watcher in front of the HTTP decoder of `channel`.
    static func install(on channel: any Channel) async throws -> DisconnectWatcher {
        let watcher = DisconnectWatcher(channel: channel)
        try await channel.pipeline.addHandler(watcher, position: .first).get()
        if !channel.isActive { watcher.fire() }
        return watcher
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    func onClose(_ action: @escaping @Sendable () -> Void) {
        let closed = state.withLock { s in
            if !s.closed { s.action = action }
            return s.closed
        }
        if closed { action() }
    }

    /// Takes the watcher out, so that a keep-alive connection's next request starts unwatched.
    func remove() {
        state.withLock { $0.action = nil }
        channel.pipeline.removeHandler(self, promise: nil)
    }

    private func fire() {
        let action = state.withLock { s in
            defer { s.closed = true; s.action = nil }
            return s.action
        }
        action?()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { fire() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fire()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fire()
        context.fireErrorCaught(error)
    }
}
