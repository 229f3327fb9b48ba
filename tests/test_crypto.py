"""Known answers and properties of the hashes, secp256k1 and BLS signatures, and their dispatch.

Known answers come from the references' own tests: ref-fvm's syscall test actor
(``testing/test_actors/actors/fil-syscall-actor``) and ``shared/src/crypto/signature.rs``,
filecoin-project ``bls-signatures`` ``tests/data.json``, filecoin-project
``serialization-vectors`` ``message_signing.json`` (Lotus-made signed messages), Lotus
``lib/sigs/bls/bls_test.go`` and ``chain/types/ethtypes`` tests, Zondax filecoin-signing-tools'
``signed_message.json`` (a Lotus-compatible secp256k1 message signature), and the published
standard digests of "abc".
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fvm.address import Address
from fvm.crypto import InvalidPrivateKey, InvalidSignatureInput, bls, hashes, secp256k1
from fvm.crypto.signature_verify import (
    delegated_address_of_public_key,
    eth_address_of_public_key,
    verify_signature,
)
from fvm.message import Message
from fvm.signature import Signature

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
BLS12_381_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001

# -- hashes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (hashes.SHA2_256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (hashes.BLAKE2B_256, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"),
        (
            hashes.BLAKE2B_512,
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
            "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
        ),
        (hashes.KECCAK_256, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"),
        (hashes.RIPEMD_160, "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"),
    ],
)
def test_each_supported_hash_gives_the_standard_digest_of_abc(code: int, expected: str) -> None:
    assert hashes.digest(code, b"abc").hex() == expected


def test_supported_hash_codes_are_ref_fvms_multihash_codes() -> None:
    assert set(hashes.SUPPORTED_HASHES) == {0x12, 0xB220, 0xB240, 0x1B, 0x1053}


def test_keccak_is_the_original_keccak_not_sha3() -> None:
    empty_keccak = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert hashes.keccak_256(b"").hex() == empty_keccak
    assert hashes.keccak_256(b"") != hashlib.sha3_256(b"").digest()


@pytest.mark.parametrize("code", [0x00, 0x13, 0x1012, 0xB201, 0xB260])
def test_unsupported_hash_codes_are_refused(code: int) -> None:
    with pytest.raises(hashes.UnsupportedHash) as info:
        hashes.digest(code, b"abc")
    assert info.value.code == code


# -- secp256k1 ----------------------------------------------------------------------------

# ref-fvm fil-syscall-actor ``test_secp_signature``: a signature over [3,1,4,1,5,9,2,6,5,3].
FVM_SECP_SIGNATURE = bytes.fromhex(
    "50d247f8dbe2558e8feba49bef44c117bfd723461922cb0e7486d6035b16c4ac"
    "699a8680e4ac0c19fba63300d22d175b0c12e42bcc9de95145032c79a71fa83400"
)
FVM_SECP_PUBLIC_KEY = bytes.fromhex(
    "04df264eeefe793a3f786d6cb3694cd3fcdfe20114dcd44d17bee08a3e671b30"
    "3c9697e91ed98997d018d475205e2c767d28191f439a6a616e20d13ec2921b1072"
)
FVM_SECP_MESSAGE = bytes([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])

# Zondax signed_message.json: private key, the message it signs, and Lotus's signature of the
# message's CID.
WALLET_SECP_PRIVATE_KEY = base64.b64decode("8VcW07ADswS4BV2cxi5rnIadVsyTDDhY1NfDH19T8Uo=")
WALLET_SECP_SIGNATURE = base64.b64decode(
    "nFuTI7MxEXqTQ0QmmQTmqbUsNZfHFXlNjz+susVDkAk1SrRCdJKxlVZZrM4vUtVBSYgtMIeigNfpqdKGIFhoWQA="
)


def wallet_message() -> Message:
    return Message(
        to=Address.parse("t17uoq6tp427uzv7fztkbsnn64iwotfrristwpryy"),
        from_=Address.parse("t1d2xrzcslx7xlbbylc5c3d5lvandqw4iwl6epxba"),
        sequence=1,
        value=100000,
        gas_limit=25000,
        gas_fee_cap=1,
        gas_premium=1,
        method_num=0,
        params=b"",
    )


def test_secp_recovers_ref_fvm_test_actor_public_key() -> None:
    digest = hashes.blake2b_256(FVM_SECP_MESSAGE)
    assert secp256k1.recover_public_key(FVM_SECP_SIGNATURE, digest) == FVM_SECP_PUBLIC_KEY


def test_secp_verifies_ref_fvm_test_actor_signature_and_rejects_tampering() -> None:
    signer = Address.new_secp256k1(FVM_SECP_PUBLIC_KEY)
    assert secp256k1.verify(FVM_SECP_SIGNATURE, FVM_SECP_MESSAGE, signer)

    tampered_signature = bytes([FVM_SECP_SIGNATURE[0] + 1]) + FVM_SECP_SIGNATURE[1:]
    assert not secp256k1.verify(tampered_signature, FVM_SECP_MESSAGE, signer)

    other_key = bytes([FVM_SECP_PUBLIC_KEY[0] + 1]) + FVM_SECP_PUBLIC_KEY[1:]
    other_signer = Address.new_secp256k1(other_key)
    assert not secp256k1.verify(FVM_SECP_SIGNATURE, FVM_SECP_MESSAGE, other_signer)

    tampered_message = bytes([FVM_SECP_MESSAGE[0] + 1]) + FVM_SECP_MESSAGE[1:]
    assert not secp256k1.verify(FVM_SECP_SIGNATURE, tampered_message, signer)


def test_secp_recovery_accepts_high_s_like_ref_fvm_malleability_vector() -> None:
    # ref-fvm ``secp_ecrecover_testvector``: an Ethereum ecrecover vector whose s is high.
    digest = bytes.fromhex("18c547e4f7b0f325ad1e56f57e26c745b09a3e503d86e00e5255ff7f715d3d1c")
    r = bytes.fromhex("73b1693892219d736caba55bdb67216e485557ea6b6af75f37096c9aa6a5a75f")
    s = bytes.fromhex("eeb940b1d03b21e36b0e47e79769f095fe2ab855bd91e3a38756b7d75a9c4549")
    assert int.from_bytes(s, "big") > SECP256K1_ORDER // 2
    public_key = secp256k1.recover_public_key(r + s + bytes([0x1C - 27]), digest)
    assert eth_address_of_public_key(public_key).hex() == "a94f5374fce5edbc8e2a8697c15331677e6ebf0b"


def test_secp_low_and_high_s_forms_recover_the_same_key() -> None:
    digest = hashes.blake2b_256(FVM_SECP_MESSAGE)
    r, s, v = FVM_SECP_SIGNATURE[:32], FVM_SECP_SIGNATURE[32:64], FVM_SECP_SIGNATURE[64]
    flipped_s = (SECP256K1_ORDER - int.from_bytes(s, "big")).to_bytes(32, "big")
    flipped = r + flipped_s + bytes([v ^ 1])
    assert secp256k1.recover_public_key(flipped, digest) == FVM_SECP_PUBLIC_KEY


def test_secp_wallet_key_gives_its_lotus_address_and_signature() -> None:
    public_key = secp256k1.public_key(WALLET_SECP_PRIVATE_KEY)
    address = Address.new_secp256k1(public_key)
    assert address == Address.parse("t1d2xrzcslx7xlbbylc5c3d5lvandqw4iwl6epxba")
    signing_bytes = wallet_message().cid().to_bytes()
    assert secp256k1.sign(WALLET_SECP_PRIVATE_KEY, signing_bytes) == WALLET_SECP_SIGNATURE
    assert secp256k1.verify(WALLET_SECP_SIGNATURE, signing_bytes, address)


@settings(max_examples=40, deadline=None)
@given(
    secret=st.integers(min_value=1, max_value=SECP256K1_ORDER - 1),
    data=st.binary(max_size=200),
)
def test_secp_sign_recover_verify_round_trip(secret: int, data: bytes) -> None:
    private_key = secret.to_bytes(32, "big")
    signature = secp256k1.sign(private_key, data)
    assert len(signature) == 65 and signature[64] in (0, 1)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_ORDER // 2
    public_key = secp256k1.public_key(private_key)
    assert secp256k1.recover_public_key(signature, hashes.blake2b_256(data)) == public_key
    assert secp256k1.verify(signature, data, Address.new_secp256k1(public_key))
    assert not secp256k1.verify(signature, data + b"x", Address.new_secp256k1(public_key))


@pytest.mark.parametrize(
    "signature",
    [
        FVM_SECP_SIGNATURE[:64] + bytes([4]),  # recovery id out of range
        bytes(32) + FVM_SECP_SIGNATURE[32:],  # r = 0
        FVM_SECP_SIGNATURE[:32] + bytes(32) + FVM_SECP_SIGNATURE[64:],  # s = 0
        FVM_SECP_SIGNATURE[:32] + SECP256K1_ORDER.to_bytes(32, "big") + b"\x00",  # s = n
        SECP256K1_ORDER.to_bytes(32, "big") + FVM_SECP_SIGNATURE[32:],  # r = n
        FVM_SECP_SIGNATURE[:64],  # no recovery id
        FVM_SECP_SIGNATURE + b"\x00",  # too long
    ],
    ids=["recovery-id-4", "r-zero", "s-zero", "s-is-n", "r-is-n", "64-bytes", "66-bytes"],
)
def test_secp_recovery_refuses_malformed_signatures(signature: bytes) -> None:
    digest = hashes.blake2b_256(FVM_SECP_MESSAGE)
    with pytest.raises(InvalidSignatureInput):
        secp256k1.recover_public_key(signature, digest)
    assert not secp256k1.verify(
        signature, FVM_SECP_MESSAGE, Address.new_secp256k1(FVM_SECP_PUBLIC_KEY)
    )


def test_secp_recovery_refuses_a_digest_of_the_wrong_length() -> None:
    with pytest.raises(InvalidSignatureInput):
        secp256k1.recover_public_key(FVM_SECP_SIGNATURE, bytes(31))


def test_secp_verify_refuses_a_signer_that_is_not_an_f1_address() -> None:
    bls_signer = Address.new_bls(bytes(48))
    assert not secp256k1.verify(FVM_SECP_SIGNATURE, FVM_SECP_MESSAGE, bls_signer)


@pytest.mark.parametrize(
    "private_key",
    [bytes(32), SECP256K1_ORDER.to_bytes(32, "big"), bytes(30) + b"\x01", bytes(32) + b"\x01"],
    ids=["zero", "group-order", "31-bytes", "33-bytes"],
)
def test_secp_refuses_invalid_private_keys(private_key: bytes) -> None:
    with pytest.raises(InvalidPrivateKey):
        secp256k1.public_key(private_key)
    with pytest.raises(InvalidPrivateKey):
        secp256k1.sign(private_key, b"data")


# -- BLS ----------------------------------------------------------------------------------

# ref-fvm fil-syscall-actor ``test_bls_signature`` / ``test_bls_aggregate``.
FVM_BLS_PUBLIC_KEYS = [
    bytes.fromhex(
        "ad9a91bc725565fa81e103cd803da1b9d2129354a00fe972b271738e04dd51d7"
        "bc970b57046e17db7d8f7ab0cf7b4292"
    ),
    bytes.fromhex(
        "a6bcfdba8c10c12edaa1031c4670c0fdc3b3a7b5c58213d833bc56b35828a1d7"
        "74bd9d1d1b3d906fc3dd64576bef19bd"
    ),
    bytes.fromhex(
        "a7f12d4899acc00a7690df78266a8c300e39680043ae94b1cc8a23c95c6cd03c"
        "6de209a902a81b498add4d4a67ba75e1"
    ),
]
FVM_BLS_SIGNATURE = bytes.fromhex(
    "b1d1c0aed5c7e709f7c9fac10efa8afc9b1b424e0ecca563c09a608ab33c3bbf"
    "3ab2e5e02bfd2bfec82575f7cb2d6fc305bc0e79283b29309d5859c6b15318d2"
    "feb94e9fe6691d25a96df7436fc1111f3311f160e0fe6f65811210f2b13d8f40"
)
FVM_BLS_AGGREGATE = bytes.fromhex(
    "a427e0d4b8c1b0810a7f6024653f8505df94fd228b6df4e5f2f75354066009a3"
    "57fcea34693057269a309622a5352a6c076ae15d930b9c6d6ce21b7ed5c79403"
    "4d66f8ef296cb19f0e3299312f16fa71fcaadf963361b413e2abf6c5325c2fb6"
)
# A valid G2 point and a valid G1 point that belong to none of the above.
FVM_BLS_OTHER_SIGNATURE = bytes.fromhex(
    "9248ef98583b45197718362569dc86832eba62232ea058e1c332872718b20bf1"
    "2ea6d6c643c83db7336c4573b8967c2015c0ccaefd97316ff63c34935a855a35"
    "09094ebb7f1acf2ff0f86d2d6853632d234e12db0d32911a17066720f8bceb6f"
)
FVM_BLS_OTHER_PUBLIC_KEY = bytes.fromhex(
    "9246913a19eb5ed4299d1bc690b29dbfda551751c60254ab08d4fb3e8f2ef13d"
    "f816a98a101327b3728443822d600184"
)
FVM_BLS_MESSAGES = [bytes(range(0, 10)), bytes(range(10, 20)), bytes(range(20, 30))]


def test_bls_verifies_ref_fvm_test_actor_signature() -> None:
    assert bls.verify(FVM_BLS_SIGNATURE, bytes(range(10)), FVM_BLS_PUBLIC_KEYS[0])


def test_bls_rejects_another_signature_key_or_message() -> None:
    message = bytes(range(10))
    assert not bls.verify(FVM_BLS_OTHER_SIGNATURE, message, FVM_BLS_PUBLIC_KEYS[0])
    assert not bls.verify(FVM_BLS_SIGNATURE, message, FVM_BLS_OTHER_PUBLIC_KEY)
    assert not bls.verify(FVM_BLS_SIGNATURE, bytes([1]) + message[1:], FVM_BLS_PUBLIC_KEYS[0])


def test_bls_verifies_ref_fvm_test_actor_aggregate() -> None:
    assert bls.verify_aggregate(FVM_BLS_AGGREGATE, FVM_BLS_MESSAGES, FVM_BLS_PUBLIC_KEYS)


def test_bls_aggregate_rejects_another_signature_key_or_message() -> None:
    keys, messages = FVM_BLS_PUBLIC_KEYS, FVM_BLS_MESSAGES
    assert not bls.verify_aggregate(FVM_BLS_OTHER_SIGNATURE, messages, keys)
    other_keys = [FVM_BLS_OTHER_PUBLIC_KEY, *keys[1:]]
    assert not bls.verify_aggregate(FVM_BLS_AGGREGATE, messages, other_keys)
    other_messages = [bytes([11, 22, 33, 44]), *messages[1:]]
    assert not bls.verify_aggregate(FVM_BLS_AGGREGATE, other_messages, keys)


# bls-signatures tests/data.json: private keys as decimal scalars, messages signed as text.
BLS_CRATE_VECTORS = [
    (
        "1234",
        49702461028268182420606074237888227477973439590128745083263225875180465421919,
        "mB3i2IqAotd1Ls2mZEM0Cniepi3WjcpqOoyvO2welCSKiBmk9rpVT1D1zLi8QOZ8",
        "hKpZytB4o0w8H4dukk7hmc2M90hXzrytMDdWGWTP2lDc5fTQcJqmkNrnETsBqcjD"
        "FVf1WJw463IOhoZP8MREb7ohiZ1M0LKGLsOV3h39tza/OMpW0XAZslfF1N1WO/W3",
    ),
    (
        "",
        27539689655622540958679105641905086851274830069992722298279813327323206776590,
        "sr4R3I5U7nTbwHVp/XT+A7X1Ktcc1JqFebbGOHiR9aIK2YDsJ0dhjBua01hGpoo+",
        "tTz9+LSIoobfHtIEMuK7xOY2EAN1ff2jpP1s2Y3pXlUT98RI1wsmgeFFR6bO1H58"
        "EOKEMuiryzTeHcKPOTKP0qE9sSpMajC9F7DkKIGkKQA+TCRYO6DymkD9g2zwXhpA",
    ),
    (
        "4fb3300556a1b2e3978f5da60cb0708b4d41385a6008976a88527d418d21cf9e",
        10137148177384684722183489239454536012581057454309712542449409651802267006317,
        "ox463x/VQuAMiuPU2v6hEzwJzXFyNYSxWc+3irXhutl/lVuJH3YcefqCFbjFOt33",
        "jUUS+r6A9/tocmeUqGsuIM0EtXh67Pv0OwLI62fkK2C3l+ugSJxOsRZeQ5HzHuhg"
        "CvQ6PVfmv9u5UFZJFvaxxX5O9/ujEv19tDGq7JBvo4rO/pBofTdVyz0QsZkBvQB0",
    ),
]


@pytest.mark.parametrize(("message", "scalar", "public_key", "signature"), BLS_CRATE_VECTORS)
def test_bls_matches_bls_signatures_crate_vectors(
    message: str, scalar: int, public_key: str, signature: str
) -> None:
    private_key = scalar.to_bytes(32, "little")
    assert bls.public_key(private_key) == base64.b64decode(public_key)
    assert bls.sign(private_key, message.encode()) == base64.b64decode(signature)
    assert bls.verify(base64.b64decode(signature), message.encode(), base64.b64decode(public_key))


# serialization-vectors message_signing.json: Lotus-serialised (little-endian) private keys,
# the signer's address, the message CID that was signed and the signature.
LOTUS_BLS_MESSAGE_SIGNING = [
    (
        "pyBOAP9camcZANKedHE+oaqPgtsOd/qBvOAO1YfvLVY=",
        "t3sogjuub37grt2tuvvlxbiamthwxenf2dwgq6sn7gpj72c5omg7gojjplsdsovgq6g3aagwerkght3e7boqfq",
        "0171a0e40220cebe89d62b1ff3c34a26d112fd0d1c71debefce08214cce0cdaaf67d532fbfeb",
        "sYHUj6N7Cb86A8pTPyaB82zdeemyHd+tZU4Vdsm6bz2GlaeLC5tsc3SX1Q7Fr5pRA5gXhcx4ID+vDqDVO7ZAnToK"
        "aWeZ2Wr28S+b4tGWOwqYHx8jkkvklyyNJ5wK4bq+",
    ),
    (
        "up1tp2I6oAPrSyiAW1chA9Uo32DiPy+nDb5Sl7BXmT0=",
        "t3unbjghaftrz676njfgakmfwvirbu5kxpafb57ex2s4sd7p2e5un2mru5fn3l2hnahcqsxtvwxy5j2cdtlaaa",
        "0171a0e4022085f14c26af4fee87f75ce11fb3f98f5bab2010992eaa52211c04ce677302cf40",
        "kfeQ7eyQ+Rs3jgv2igh2w5H4z8+laQXttg68Q5hPsf1vluiOjXFWELS1HrMqR7xaDR6Q2yjXLDdmxm+JsFr6MNSU"
        "bdDBBXsiH9aTUyxc3cA9Li5QZ0ed2k/oKHPhpeDh",
    ),
]


@pytest.mark.parametrize(
    ("private_key", "address", "cid_hex", "signature"), LOTUS_BLS_MESSAGE_SIGNING
)
def test_bls_little_endian_lotus_keys_sign_message_cids_as_lotus(
    private_key: str, address: str, cid_hex: str, signature: str
) -> None:
    key = base64.b64decode(private_key)
    signer = Address.parse(address)
    assert Address.new_bls(bls.public_key(key)) == signer
    cid_bytes = bytes.fromhex(cid_hex)
    expected = base64.b64decode(signature)
    assert bls.sign(key, cid_bytes) == expected
    assert verify_signature(Signature.new_bls(expected), signer, cid_bytes)


def test_bls_lotus_uncompressed_fails_vectors() -> None:
    # Lotus lib/sigs/bls ``TestUncompressedFails``: only the exact 96-byte compressed form passes.
    signer = Address.parse(
        "f3tcgq5scpfhdwh4dbalwktzf6mbv3ng2nw7tyzni5cyrsgvineid6jybnweecpa6misa6lk4tvwtxj2gkwpzq"
    )
    compressed = bytes.fromhex(
        "9927444bfcffdca34af57b78757b9b90f1cd28d2a3aeed2aa6bde299f8bbb9184756f2287b0588e6d3f2860d"
        "2bb2066e0c59778c1e644fb2cfb35fba8f09fa824a9ed825108c82ff4bf634c1037eeaf185f45673d4a1c1c6"
        "eeb712b7d72a5498"
    )
    uncompressed_tail = bytes.fromhex(
        "08942378dbce2ad72e87df083b66c631c18c582f9f9e104d2a7e13e79cbb22deccf67777b09c255d5de68809"
        "8c6335d40a85768db766a6c6ece6de2a9f3487281a48fecab14702f6512652709d7edb7e8bc9f641aaa83b7e"
        "8afd7ae479e659e4"
    )
    message = b"potato"
    assert verify_signature(Signature.new_bls(compressed), signer, message)
    one_byte_changed = compressed[:39] + bytes([0xF6]) + compressed[40:]
    assert not verify_signature(Signature.new_bls(one_byte_changed), signer, message)
    assert not verify_signature(Signature.new_bls(compressed + b"\x55"), signer, message)
    uncompressed = bytes([compressed[0] & 0x7F]) + compressed[1:] + uncompressed_tail
    assert not verify_signature(Signature.new_bls(uncompressed), signer, message)


def _bls_key(seed: int) -> bytes:
    return (seed % (BLS12_381_ORDER - 1) + 1).to_bytes(32, "little")


def test_bls_aggregate_of_distinct_messages_verifies() -> None:
    keys = [_bls_key(7 + i * 1_000_003) for i in range(4)]
    messages = [f"message {i}".encode() for i in range(4)]
    aggregate = bls.aggregate([bls.sign(k, m) for k, m in zip(keys, messages, strict=True)])
    public_keys = [bls.public_key(k) for k in keys]
    assert bls.verify_aggregate(aggregate, messages, public_keys)
    assert not bls.verify_aggregate(aggregate, messages[::-1], public_keys)


def test_bls_aggregate_with_a_repeated_message_never_verifies() -> None:
    keys = [_bls_key(11), _bls_key(13)]
    message = b"the same message"
    aggregate = bls.aggregate([bls.sign(k, message) for k in keys])
    public_keys = [bls.public_key(k) for k in keys]
    # The pairing equation holds, but bls-signatures refuses non-distinct messages.
    assert not bls.verify_aggregate(aggregate, [message, message], public_keys)


def test_bls_aggregate_over_no_messages_verifies_whatever_the_signature() -> None:
    assert bls.verify_aggregate(bls.IDENTITY_SIGNATURE, [], [])
    assert bls.verify_aggregate(b"not a signature", [], [])


def test_bls_aggregate_with_unequal_keys_and_messages_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="unequal"):
        bls.verify_aggregate(FVM_BLS_AGGREGATE, FVM_BLS_MESSAGES[:2], FVM_BLS_PUBLIC_KEYS)


def test_bls_identity_public_key_never_verifies() -> None:
    zero_key = bytes(32)
    identity_public_key = bls.public_key(zero_key)
    assert identity_public_key == bytes([0xC0]) + bytes(47)
    signature = bls.sign(zero_key, b"message")
    assert signature == bls.IDENTITY_SIGNATURE
    assert not bls.verify(signature, b"message", identity_public_key)
    keys = [identity_public_key, FVM_BLS_PUBLIC_KEYS[0]]
    messages = [b"message", bytes(range(10))]
    assert not bls.verify_aggregate(FVM_BLS_SIGNATURE, messages, keys)


@pytest.mark.parametrize(
    ("signature", "public_key"),
    [
        (FVM_BLS_SIGNATURE[:95], FVM_BLS_PUBLIC_KEYS[0]),
        (FVM_BLS_SIGNATURE, FVM_BLS_PUBLIC_KEYS[0][:47]),
        (bytes(96), FVM_BLS_PUBLIC_KEYS[0]),  # no compression flag
        (FVM_BLS_SIGNATURE, bytes(48)),
        (bytes([0xE0]) + bytes(95), FVM_BLS_PUBLIC_KEYS[0]),  # infinity flag with the sign bit
        (bytes([0x80]) + bytes(95), FVM_BLS_PUBLIC_KEYS[0]),  # x = 0: no G2 subgroup point
        (FVM_BLS_SIGNATURE, bytes([0x9F]) + b"\xff" * 47),  # x above the field modulus
    ],
    ids=[
        "short-signature",
        "short-key",
        "signature-without-compression-flag",
        "key-without-compression-flag",
        "signature-infinity-with-sign-bit",
        "signature-x-zero",
        "key-x-above-modulus",
    ],
)
def test_bls_malformed_points_fail_verification_without_raising(
    signature: bytes, public_key: bytes
) -> None:
    assert not bls.verify(signature, bytes(range(10)), public_key)
    assert not bls.verify_aggregate(signature, [bytes(range(10))], [public_key])


def test_bls_aggregate_of_nothing_is_the_identity_and_bad_points_are_refused() -> None:
    assert bls.aggregate([]) == bytes([0xC0]) + bytes(95)
    with pytest.raises(InvalidSignatureInput):
        bls.aggregate([FVM_BLS_SIGNATURE, bytes(96)])


@pytest.mark.parametrize(
    "private_key",
    [BLS12_381_ORDER.to_bytes(32, "little"), b"\xff" * 32, bytes(31)],
    ids=["group-order", "all-ones", "31-bytes"],
)
def test_bls_refuses_private_keys_outside_the_scalar_field(private_key: bytes) -> None:
    with pytest.raises(InvalidPrivateKey):
        bls.public_key(private_key)


@settings(max_examples=15, deadline=None)
@given(
    scalar=st.integers(min_value=1, max_value=BLS12_381_ORDER - 1),
    data=st.binary(max_size=100),
)
def test_bls_sign_verify_round_trip(scalar: int, data: bytes) -> None:
    private_key = scalar.to_bytes(32, "little")
    public_key = bls.public_key(private_key)
    signature = bls.sign(private_key, data)
    assert len(public_key) == 48 and len(signature) == 96
    assert bls.verify(signature, data, public_key)
    assert not bls.verify(signature, data + b"!", public_key)


# -- dispatch -----------------------------------------------------------------------------


def test_verify_signature_dispatches_on_type_and_signer_protocol() -> None:
    secp_signer = Address.new_secp256k1(FVM_SECP_PUBLIC_KEY)
    bls_signer = Address.new_bls(FVM_BLS_PUBLIC_KEYS[0])
    secp_signature = Signature.new_secp256k1(FVM_SECP_SIGNATURE)
    bls_signature = Signature.new_bls(FVM_BLS_SIGNATURE)
    assert verify_signature(secp_signature, secp_signer, FVM_SECP_MESSAGE)
    assert verify_signature(bls_signature, bls_signer, bytes(range(10)))
    assert not verify_signature(secp_signature, bls_signer, FVM_SECP_MESSAGE)
    assert not verify_signature(bls_signature, secp_signer, bytes(range(10)))
    assert not verify_signature(Signature.new_delegated(FVM_SECP_SIGNATURE), secp_signer, b"")
    assert not verify_signature(secp_signature, Address.new_id(1000), FVM_SECP_MESSAGE)


# Lotus ethtypes ``TestEtherScanLegacyRLP``: Ethereum mainnet transaction 0xc55e2b90…77ef, a
# legacy (homestead) transaction from 0x32Be343B94f860124dC4fEe278FDCBD38C102D88.
ETHERSCAN_TX_FIELDS = (
    "8301efc5"  # nonce
    "8506fc23ac00"  # gas price
    "83051615"  # gas limit
    "94104994f45d9d697ca104e5704a7b77d7fec3537c"  # to
    "890821878651a4d70000"  # value
    "80"  # input
)
ETHERSCAN_TX_V = 0x1B
ETHERSCAN_TX_R = "51222d91a379452395d0abaff981af4cfcc242f25cfaf947dea8245a477731f9"
ETHERSCAN_TX_S = "3a997c910b4701cca5d933fb26064ee5af7fe3236ff0ef2b58aa50b25aff8ca5"
ETHERSCAN_TX_SENDER = "32be343b94f860124dc4fee278fdcbd38c102d88"


def test_delegated_signature_of_an_ethereum_transaction_verifies_for_its_f410_sender() -> None:
    fields = bytes.fromhex(ETHERSCAN_TX_FIELDS)
    raw_signed = bytes.fromhex(
        "f871" + ETHERSCAN_TX_FIELDS + "1b" + "a0" + ETHERSCAN_TX_R + "a0" + ETHERSCAN_TX_S
    )
    assert len(raw_signed) == 2 + 0x71
    # What is signed is the RLP list of the six fields alone (Lotus ``ToRlpUnsignedMsg``).
    unsigned = bytes([0xC0 + len(fields)]) + fields
    signature = bytes.fromhex(ETHERSCAN_TX_R + ETHERSCAN_TX_S) + bytes([ETHERSCAN_TX_V - 27])
    sender = Address.new_delegated(10, bytes.fromhex(ETHERSCAN_TX_SENDER))
    assert verify_signature(Signature.new_delegated(signature), sender, unsigned)
    public_key = secp256k1.recover_public_key(signature, hashes.keccak_256(unsigned))
    assert delegated_address_of_public_key(public_key) == sender
    assert not verify_signature(Signature.new_delegated(signature), sender, unsigned + b"\x00")
    # The same bytes as a secp256k1 signature are checked over blake2b against an f1 signer.
    assert not verify_signature(Signature.new_secp256k1(signature), sender, unsigned)


def test_delegated_signature_needs_an_f410_signer_of_the_recovered_key() -> None:
    private_key = (12345).to_bytes(32, "big")
    data = b"an rlp payload"
    signature = secp256k1.sign_digest(private_key, hashes.keccak_256(data))
    public_key = secp256k1.public_key(private_key)
    delegated = Signature.new_delegated(signature)
    assert verify_signature(delegated, delegated_address_of_public_key(public_key), data)
    assert not verify_signature(delegated, Address.new_secp256k1(public_key), data)
    other_namespace = Address.new_delegated(11, eth_address_of_public_key(public_key))
    assert not verify_signature(delegated, other_namespace, data)
