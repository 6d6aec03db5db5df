# Every failure of the client is an MQTTError: a caller catches one type, then looks at
# the subclass (or its args) to decide between retrying now, backing off, or reporting.


class MQTTError(Exception):
    pass


class ConnectionLost(MQTTError):
    # The socket failed or the broker closed it; args[0] is the OSError or a reason.
    pass


class ConnectRefused(MQTTError):
    # CONNACK with a non-zero return code (args[0]): 1 protocol, 2 client id,
    # 3 unavailable, 4 bad user name or password, 5 not authorised.
    pass


class ProtocolError(MQTTError):
    # The broker sent a packet this client cannot accept (malformed or unexpected).
    pass


class PacketTooLarge(ProtocolError):
    # An incoming packet longer than the receive buffer: dropped with the connection.
    pass


class KeepaliveTimeout(MQTTError):
    # No answer to PINGREQ in time: the connection is half-open.
    pass


class Timeout(MQTTError):
    # The broker did not answer CONNECT or SUBSCRIBE in time.
    pass


class SubscribeRefused(MQTTError):
    pass


class QueueFull(MQTTError):
    # Too many QoS 1 messages waiting for PUBACK.
    pass


class NotConnected(MQTTError):
    pass
