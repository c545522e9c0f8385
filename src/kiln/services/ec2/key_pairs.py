"""EC2 key pairs (CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair) per account and
region. A created pair's private key is returned once (``KeyMaterial``) and never kept; the public key
is what a VM instance launched with ``KeyName`` gets in its ``authorized_keys`` (through cloud-init)."""

from __future__ import annotations

import base64
import hashlib
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kiln.ec2_errors import InvalidKeyFormat, InvalidKeyPairDuplicate, InvalidKeyPairNotFound, InvalidParameterValue
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.ids import is_id, new_id

KEY_TYPES = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}
_NAME = re.compile(r"^[\x20-\x7e]{1,255}$")  # EC2: up to 255 ASCII characters


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidParameterValue("KeyName must be 1 to 255 printable ASCII characters", location="KeyName")


def parse_public_key(text: str) -> tuple[str, bytes]:
    """(key type, key blob) of an OpenSSH public key line; InvalidKey.Format otherwise."""
    parts = text.strip().split()
    if len(parts) >= 2 and parts[0] in KEY_TYPES:
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except ValueError:
            blob = b""
        if blob[4:4 + len(parts[0])] == parts[0].encode():
            return KEY_TYPES[parts[0]], blob
    raise InvalidKeyFormat("Key is not in valid OpenSSH public key format", location="PublicKeyMaterial")


def fingerprint(key_type: str, blob: bytes) -> str:
    """ed25519: base64 SHA-256 (as EC2 shows it); rsa: colon-separated MD5."""
    if key_type == "ed25519":
        return base64.b64encode(hashlib.sha256(blob).digest()).decode()
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _info(row: Any, *, include_public_key: bool = False) -> dict[str, Any]:
    info = {"KeyPairId": row.id, "KeyFingerprint": row.fingerprint, "KeyName": row.name, "KeyType": row.key_type,
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(row.tags.items())], "CreateTime": row.created_at}
    if include_public_key:
        info["PublicKey"] = row.public_key
    return info


def _insert(name: str, key_type: str, public_key: str, tags: Mapping[str, str] | None, account: str,
            region: str) -> Any:
    from sqlalchemy import select

    from kiln.db.base import utcnow
    from kiln.db.engine import session
    from kiln.db.tables.key_pairs import KeyPairRow

    _check_name(name)
    _, blob = parse_public_key(public_key)
    with session() as db:
        taken = db.scalar(select(KeyPairRow.id).where(KeyPairRow.account_id == account, KeyPairRow.region == region,
                                                      KeyPairRow.name == name))
        if taken is not None:
            raise InvalidKeyPairDuplicate(name).at(account=account, region=region)
        row = KeyPairRow(id=new_id("key"), account_id=account, region=region, name=name, key_type=key_type,
                         fingerprint=fingerprint(key_type, blob), public_key=public_key.strip(), tags=dict(tags or {}),
                         created_at=utcnow())
        db.add(row)
        db.flush()
        return _info(row)


def create_key_pair(name: str, *, key_type: str = "rsa", tags: Mapping[str, str] | None = None,
                    account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """EC2 ``CreateKeyPair``: a new pair made with ``ssh-keygen``; the answer's ``KeyMaterial`` is the
    private key (OpenSSH format), given this once."""
    from kiln.runtime.vm import ssh_keygen

    if key_type not in KEY_TYPES.values():
        raise InvalidParameterValue(f"KeyType must be one of {', '.join(sorted(KEY_TYPES.values()))}",
                                    location="KeyType")
    _check_name(name)
    with tempfile.TemporaryDirectory(prefix="kiln-key-") as scratch:
        private = Path(scratch) / "key"
        public = ssh_keygen(private, key_type=key_type, comment=name)
        material = private.read_text()
    return {**_insert(name, key_type, public, tags, account, region), "KeyMaterial": material}


def import_key_pair(name: str, public_key: str, *, tags: Mapping[str, str] | None = None,
                    account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """EC2 ``ImportKeyPair`` of an OpenSSH public key (ssh-ed25519 or ssh-rsa)."""
    key_type, _ = parse_public_key(public_key)
    return _insert(name, key_type, public_key, tags, account, region)


def _rows(names: Sequence[str], ids: Sequence[str], account: str, region: str) -> list[Any]:
    from sqlalchemy import select

    from kiln.db.engine import session
    from kiln.db.tables.key_pairs import KeyPairRow

    query = select(KeyPairRow).where(KeyPairRow.account_id == account, KeyPairRow.region == region)
    if names:
        query = query.where(KeyPairRow.name.in_(list(names)))
    if ids:
        query = query.where(KeyPairRow.id.in_(list(ids)))
    with session() as db:
        rows = list(db.scalars(query.order_by(KeyPairRow.name)))
        db.expunge_all()
    for wanted, have in ((names, {r.name for r in rows}), (ids, {r.id for r in rows})):
        missing = [item for item in wanted if item not in have]
        if missing:
            raise InvalidKeyPairNotFound(missing[0]).at(account=account, region=region)
    return rows


def describe_key_pairs(*, names: Sequence[str] = (), ids: Sequence[str] = (), include_public_key: bool = False,
                       account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """EC2 ``DescribeKeyPairs``; a name or id asked for that does not exist is InvalidKeyPair.NotFound."""
    rows = _rows(names, ids, account, region)
    return {"KeyPairs": [_info(row, include_public_key=include_public_key) for row in rows]}


def delete_key_pair(key: str, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """EC2 ``DeleteKeyPair`` by name or ``key-…`` id. As on EC2, deleting a name that does not exist
    succeeds; instances launched with the key keep it."""
    from sqlalchemy import delete, select

    from kiln.db.engine import session
    from kiln.db.tables.key_pairs import KeyPairRow

    column = KeyPairRow.id if is_id(key, "key") else KeyPairRow.name
    with session() as db:
        found = db.scalar(select(KeyPairRow.id).where(KeyPairRow.account_id == account, KeyPairRow.region == region,
                                                      column == key))
        if found is not None:
            db.execute(delete(KeyPairRow).where(KeyPairRow.id == found))
    return {"Return": True, **({"KeyPairId": found} if found else {})}


def public_key(name: str, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> str:
    """The public key of the account's key pair ``name`` (what RunInstances' ``KeyName`` installs)."""
    [row] = _rows([name], [], account, region)
    return str(row.public_key)
