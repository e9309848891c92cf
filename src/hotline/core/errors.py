"""The one exception tree of Hotline.

Every error Hotline raises on purpose is a ``HotlineError``. Library exceptions
(``cryptography``'s ``InvalidTag``/``InvalidSignature``, ``sqlite3.Error``,
``msgpack`` errors, ``ssl.SSLError``) are converted into these at the module that
calls the library, so callers above never see them.

    HotlineError
    ├── ConfigError              a home folder, config file or argument is wrong
    │   └── PassphraseError      the key file could not be unlocked
    ├── IdentityError            a contact card or key is invalid
    │   ├── CardError            a card is malformed or its signature does not verify
    │   └── PeerKeyMismatch      a peer presented a key other than the one paired
    ├── CryptoError              end-to-end layer
    │   ├── SignatureError       a signature does not verify
    │   └── DecryptError         authenticated decryption failed, or a ratchet limit was hit
    ├── ProtocolError            the link protocol
    │   ├── LocalProtocolError   we were asked to do something the protocol forbids
    │   └── RemoteProtocolError  the peer sent something malformed, oversize or out of place
    │       └── KeyConflict      two successions from one key name different successors
    ├── JournalError             the journal could not be read or written
    │   └── JournalCorrupt       the hash chain or a signature in the journal is broken
    ├── DeliveryError            a message cannot be accepted (unknown peer, too large)
    ├── DeskError                a desk action the record does not allow (a second accept,
    │                            an answer to one's own request, an unknown call)
    ├── ControlError             the local control socket failed or refused a request
    │   └── ControlTimeout       no answer before the deadline (the request may still be done)
    └── AccessError              a user, token, password or role is wrong or not allowed

    NotFound marks, beside its place in the tree, an error that says the user, token or
    peer named does not exist (UnknownUser, UnknownToken: AccessError; UnknownPeer:
    ConfigError); the HTTP API answers it with 404, every other refusal with 400.

A ``RemoteProtocolError`` closes that one connection with a reason and becomes an
event; it never propagates out of the terminal.
"""

from __future__ import annotations


class HotlineError(Exception):
    """Base of every error Hotline raises on purpose."""


class ConfigError(HotlineError):
    """A home folder, configuration file or command-line argument is wrong."""


class PassphraseError(ConfigError):
    """The key file could not be unlocked with the given passphrase."""


class IdentityError(HotlineError):
    """A contact card or key is invalid."""


class CardError(IdentityError):
    """A contact card is malformed or its signature does not verify."""


class PeerKeyMismatch(IdentityError):
    """A peer presented a different identity key than the one pinned at pairing."""


class CryptoError(HotlineError):
    """The end-to-end layer refused an input."""


class SignatureError(CryptoError):
    """A signature does not verify."""


class DecryptError(CryptoError):
    """Authenticated decryption failed, or a ratchet limit was exceeded."""


class ProtocolError(HotlineError):
    """The link protocol was violated."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol forbids (our bug or misuse)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed, oversize, replayed or out of place."""


class KeyConflict(RemoteProtocolError):
    """A key handed the peer's name to two different keys: someone else holds one of them."""


class JournalError(HotlineError):
    """The journal could not be read or written."""


class JournalCorrupt(JournalError):
    """The journal's hash chain or one of its signatures is broken."""


class DeliveryError(HotlineError):
    """A message cannot be accepted for delivery."""


class DeskError(HotlineError):
    """A call, readout or commitment action that the desk's state machines do not allow."""


class ControlError(HotlineError):
    """The local control socket failed or refused a request."""


class ControlTimeout(ControlError):
    """The terminal did not answer before the deadline; what was asked may still be done."""


class AccessError(HotlineError):
    """A user, token, password or role is wrong, or a principal is not allowed to do something."""


class NotFound(HotlineError):
    """The thing named does not exist (a marker the HTTP API turns into 404)."""


class UnknownUser(AccessError, NotFound):
    """No console user by that name."""


class UnknownToken(AccessError, NotFound):
    """No live API token with that id."""


class UnknownPeer(ConfigError, NotFound):
    """No paired peer by that name."""
