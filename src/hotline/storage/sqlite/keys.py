"""Key rotation and revocation in the record (``crypto.succession``): a peer's past keys, and this
terminal's own successions and revocations. Each change appends the entry that explains it and
updates the derived rows in the same transaction, as ``store`` does."""

from __future__ import annotations

from typing import Any

from hotline.core.wire import pack, unpack
from hotline.storage.records import OwnStatement, PastKey
from hotline.storage.sqlite.journal import Journal


class KeyRecords:
    journal: Journal

    def record_succession(self, peer: str, statement: bytes, card_json: str, old_key: bytes, new_key: bytes,
                          safety_number: str, upto: int, at_ns: int) -> None:  # fmt: skip
        """The peer's key passed to ``new_key`` by ``statement`` (verified): pin the new card, keep the
        verification (the pinned key vouched for its successor), and keep the old key as retired."""
        entry = self.journal.append(
            "peer.succeeded",
            {"name": peer, "statement": statement, "card": card_json, "old_key": old_key, "identity_key": new_key,
             "safety_number": safety_number, "upto": upto},
            at_ns, peer=peer,
        )  # fmt: skip
        self.journal.execute(
            "UPDATE peers SET card = ?, identity_key = ?, safety_number = ? WHERE name = ?",
            (card_json, new_key, safety_number, peer),
        )
        self.journal.execute(
            "INSERT OR REPLACE INTO peer_keys(peer, key, state, successor, upto, at_ns, entry) "
            "VALUES (?, ?, 'retired', ?, ?, ?, ?)",
            (peer, old_key, new_key, upto, at_ns, entry),
        )

    def record_peer_revoked(self, peer: str, key: bytes, statement: bytes, reason: str, at_ns: int) -> None:
        """``key`` of ``peer`` is revoked (by its own signed statement, or by an operator here when
        ``statement`` is empty): refused from now on, until the peer is paired afresh with a new key."""
        entry = self.journal.append(
            "peer.revoked", {"name": peer, "key": key, "statement": statement, "reason": reason}, at_ns, peer=peer
        )
        self.journal.execute(
            "INSERT OR REPLACE INTO peer_keys(peer, key, state, successor, upto, at_ns, entry) "
            "VALUES (?, ?, 'revoked', NULL, 0, ?, ?)",
            (peer, key, at_ns, entry),
        )

    def set_safety_number(self, peer: str, number: str) -> None:
        """Our own key changed by succession (journaled by the caller, ``terminal.rotated``)."""
        self.journal.execute("UPDATE peers SET safety_number = ? WHERE name = ?", (number, peer))

    def past_keys(self, peer: str) -> list[PastKey]:
        rows = self.journal.execute(
            "SELECT key, state, successor, upto, at_ns FROM peer_keys WHERE peer = ? ORDER BY entry", (peer,)
        ).fetchall()
        return [PastKey(bytes(r[0]), r[1], None if r[2] is None else bytes(r[2]), r[3], r[4]) for r in rows]

    def revoked_keys(self) -> dict[bytes, str]:
        """Every revoked key, to the peer it was revoked for: no pairing may pin one again."""
        rows = self.journal.execute("SELECT key, peer FROM peer_keys WHERE state = 'revoked'").fetchall()
        return {bytes(r[0]): r[1] for r in rows}

    def _forget_cutoffs(self, peer: str) -> None:
        # A new stream (a pairing, a re-key) starts again from sequence 1: "up to N of the stream then
        # running" no longer names anything a retired key signed.
        self.journal.execute("UPDATE peer_keys SET upto = 0 WHERE peer = ?", (peer,))

    def record_own_statement(self, kind: str, body: dict[str, Any], statement: bytes, peers: dict[str, int],
                             at_ns: int) -> None:  # fmt: skip
        """This terminal rotated (``terminal.rotated``) or revoked (``terminal.revoked``) its own key;
        ``body`` names the new public keys (the journal verifies what follows against them); ``peers``
        the peers paired then, each to the last envelope the old key sealed for it."""
        entry = self.journal.append(kind, {**body, "statement": statement, "peers": peers}, at_ns)
        self.journal.execute("INSERT INTO own_statements(entry, kind, statement, peers) VALUES (?, ?, ?, ?)",
                             (entry, kind, statement, pack(peers)))  # fmt: skip

    def own_statements(self) -> list[OwnStatement]:
        """This terminal's successions and revocations, oldest first: sent on every new link, so a
        peer that was away when one was made hears it before anything else."""
        rows = self.journal.execute("SELECT kind, statement, peers FROM own_statements ORDER BY entry").fetchall()
        return [OwnStatement(r[0], bytes(r[1]), unpack(bytes(r[2]))) for r in rows]
