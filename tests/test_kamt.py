"""Tests of store.kamt: roots recorded from ref-fvm's KAMT, canonical form, and bad nodes.

There is no KAMT in the shared test vectors (no EVM contract is touched at network versions
17/18 there), so exactness is checked against roots that ref-fvm's own ``fvm_ipld_kamt`` (HEAD
of the ref-fvm mirror, built with in-memory stand-ins for its blockstore and CBOR crates)
computed for the operation scripts that :func:`kamt_script` generates.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store import dag_cbor
from store.blockstore import MemoryBlockstore, put
from store.cid import CID, RAW
from store.errors import HamtError
from store.kamt import Kamt, KamtError

EMPTY_NODE_CID = CID.parse("bafy2bzaceamp42wmmgr2g2ymg46euououzfyck7szknvfacqscohrvaikwfay")

Operation = tuple[str, bytes, bytes]


def kamt_script(seed: int) -> tuple[int, int, list[Operation]]:
    """A reproducible mix of sets, deletes and reloads over keys sharing long prefixes."""
    rng = random.Random(seed)
    bit_width = rng.randint(1, 8)
    max_bucket_size = rng.choice([1, 1, 2, 3])
    base = rng.getrandbits(256)
    offsets = {rng.getrandbits(rng.choice([2, 4, 8, 16, 64])) for _ in range(rng.randrange(1, 50))}
    keys = [((base + offset) % (1 << 256)).to_bytes(32, "big") for offset in sorted(offsets)]
    keys += [rng.getrandbits(256).to_bytes(32, "big") for _ in range(rng.choice([0, 3]))]
    operations: list[Operation] = []
    for _ in range(rng.randrange(1, 160)):
        draw = rng.random()
        key = rng.choice(keys)
        if draw < 0.6:
            operations.append(("set", key, rng.getrandbits(64).to_bytes(8, "big").lstrip(b"\0")))
        elif draw < 0.95:
            operations.append(("delete", key, b""))
        else:
            operations.append(("reload", b"", b""))
    return bit_width, max_bucket_size, operations


def run_script(bit_width: int, max_bucket_size: int, operations: list[Operation]) -> CID:
    store = MemoryBlockstore()
    options: dict[str, Any] = {"bit_width": bit_width, "max_bucket_size": max_bucket_size}
    kamt = Kamt(store, **options)
    for kind, key, value in operations:
        if kind == "set":
            kamt.set(key, value)
        elif kind == "delete":
            kamt.delete(key)
        else:
            kamt = Kamt(store, kamt.flush(), **options)
    return kamt.flush()


# Root CIDs that ref-fvm's fvm_ipld_kamt computed for kamt_script(seed), values as byte strings.
REFERENCE_ROOTS: dict[int, str] = {
    0: "bafy2bzacebxojnsehrey54kfkg6hylllvoz6rabyky4qk7tmwy4ge6r6gq75u",
    1: "bafy2bzacecmfu3tebvn555dnmlrvoijzkj6mchi4ghrdn2ieimvuonnfwbh7e",
    2: "bafy2bzaceaah5ank7xomrhwu7b44ygstql2pmdgrcrnpnetzq2ca3tfqfokc4",
    3: "bafy2bzacebizyhwjdi4vnmtowndhsgrkdg4qkmsbzjfiijf6ktvlyvwazg65m",
    4: "bafy2bzaceclx3e7xujh43nkrvgbk2s2ytj5jswlwdkhm2nwahav5e2ssr6l6i",
    5: "bafy2bzaceamp42wmmgr2g2ymg46euououzfyck7szknvfacqscohrvaikwfay",
    6: "bafy2bzacea4ynixv4u3xdefmnqdjcqpd5ktbfp4kxxa3fg3cd4y366tr2zgqm",
    7: "bafy2bzacec7nw6hnomhfdlc3hxb3jcit36z7ggqzfuvaoqpvaujbha4ijxtbi",
    8: "bafy2bzacedzvnyit7ywon3whni7k3k3dp6vxh4oozqj7vvynjyjvzkttn4vem",
    9: "bafy2bzacea7sbhpivfs7nucv4ntidein7fmh45fk42rcu25zlmifddtxxbwxk",
    10: "bafy2bzacecz5acm3uu4me5yyrfcmqwokozclegbwqnekkxu6ihrioavk5ancy",
    11: "bafy2bzaceagzh7ud66myy74rxnr4qbxhrlzh4kcxou7wtiemr5m66p6mdpsmw",
    12: "bafy2bzacecugmg3ba3gww6gdkt3ytgt2pnvrx74rdmts6gposuigi47bbwk24",
    13: "bafy2bzacedixyy3uiqp354szcx5hs5lx7bpzlaskgmt3tv5vjs6lmejtcrrds",
    14: "bafy2bzacebgt2qlh4w246mlqslyldysxqqmc6wtjajaso55iamsozsmfaqaes",
    15: "bafy2bzaceb773jsqodviimmu53jgv5o7wsohdofrfw7mi6xgn5mjegw2wha36",
    16: "bafy2bzacec2kwlpkrvwviynykcqcfx4cxlvlye3bg7zwjz2dt5hha7lg5566w",
    17: "bafy2bzacecgtxekw7xumqjnev46ujosvuwfmv7idgn2pfbm3xu5lulizcc7mm",
    18: "bafy2bzacecziewndla73o4iq7gl3fnvvksm5ybbkx3im2qo36j6gkzbppwauk",
    19: "bafy2bzacearcys3aj6rsmvverb3kr5zsdisxa65bot23c35esfpsghv6ullfk",
    20: "bafy2bzacecrtxk2dnv4mcio7oaz727nnpprx6yhbrogr7oc7wdxbw4g4hw5t2",
    21: "bafy2bzacecnlh6xici7yv2aefdbmgwkqpiyi5bzh6o34ywxydzhxuzwpdv3wk",
    22: "bafy2bzacea5qlq4qyurdl27jb4gsv6cdglvko2n2okqzcwwjyflqdbq3lvm4e",
    23: "bafy2bzacebyrpnqwanfzaems5y7ulxqxteviy4yuq27wyb7w3cunst4bwgo4q",
    24: "bafy2bzacebyqqgg74nshrxgy7wgg72qc4jq43wcszlvhwwpfu32vjrxctizre",
    25: "bafy2bzacea5am2fq5dvudrwzaizbg2j7vgsbkt5tzdibw4n5k5qluq4zv6rtw",
    26: "bafy2bzacedroqshgjmow26emlye4cftotijkbckje2gogzv3wzi3alh73zxiw",
    27: "bafy2bzacealncw3m77ftaxb6zvrt3ye535h35qyie6k2xyr6owkditbpcfjno",
    28: "bafy2bzacecjdfxrplldtrum2gsovn4c5njp7jzbjkjorik3zpttqasjlt77ii",
    29: "bafy2bzacecoh2ztlp5mzvlfv546u7xddtkcwlc64cuehrutwwxrhbsqu7gwlo",
    30: "bafy2bzaceb5sgv2ezmo7odsaui2cvgii5do6zk2elbc674mcua6umfgw3rij2",
    31: "bafy2bzacecd2wvwa2wzf5j63ixg7cm4vywde5tc2jzazmpbdhwssiegly2uoc",
    32: "bafy2bzacedevwgzxz7exguc673ttj3ejtriwokwflqgcqtzzyicu2vkdxiwhs",
    33: "bafy2bzacebqqsnko6b6b42uakn4eiolzroqmtpt6stykhetlbwmjmkok6z7co",
    34: "bafy2bzaceadlocafd3wq4tysoicsc32v5lkccgwgjbv7tfjki5rldxk3xvhzy",
    35: "bafy2bzacecv76fjvyqgchqhiq263llwhvq5ujhhpaq56bo2u2hpzjihypuwmc",
    36: "bafy2bzacealhyhk663zssiyxg2bsrgwarmrrmczxkyysf4fkur5fj3nnx3h62",
    37: "bafy2bzaceb3la5r333mgn4ndyb5tvchuo3dsjzepawgg63d5tmuwj6n4mfwck",
    38: "bafy2bzaceb6q36kc2xew5iicpaaqo2yzot7dgeiowlppqbwbqwiefsgx2q3xc",
    39: "bafy2bzacecjujvumlck6ttxvp7tan5bb4fxqanagk44f5myls6ebti2yiimre",
    40: "bafy2bzaceap3bgqgjgutvowthdwcgbbqzvohz4g2dvfu4lik2jfbpsrw4ro54",
    41: "bafy2bzaceb32k4ypjgslr5u7v5gdg35eqvdrei7yajppk5bgf2bxngxiis6do",
    42: "bafy2bzaceaer2jjcl5gj32jfyomqi7i2bevv6ylc2hurane7m4evzwrrtesi2",
    43: "bafy2bzacedt7faxee4m5pvjtoqjxphlgiailwyctuojaaytmyvawdg7vkwjyw",
    44: "bafy2bzacebanau6weu2ljedfkwcg7jzldk4mj3rmj7d5kqznxz72unna25ghm",
    45: "bafy2bzaceb6rqrkgn22oq3txrv3pypynglwvcj7mqmq3mex2fsvtlfkqtkhpg",
    46: "bafy2bzaceblpib3vkmlrswnzhyfusa65gd3v666mboav7yl67nxnvs7eyz7ok",
    47: "bafy2bzacebgjh2oegdnkgx46tex6kegnhtj6gqoolynbeif7myrao6w7sevym",
}


@pytest.mark.parametrize("seed", sorted(REFERENCE_ROOTS))
def test_kamt_operation_script_reaches_the_root_ref_fvm_computed(seed: int) -> None:
    assert str(run_script(*kamt_script(seed))) == REFERENCE_ROOTS[seed]


def test_kamt_reference_scripts_exercise_extensions_splits_and_folds() -> None:
    """The recorded scripts are only worth as much as the shapes they reach."""
    widths = set()
    bucket_sizes = set()
    extended_links = 0
    for seed in REFERENCE_ROOTS:
        bit_width, max_bucket_size, operations = kamt_script(seed)
        widths.add(bit_width)
        bucket_sizes.add(max_bucket_size)
        store = MemoryBlockstore()
        kamt = Kamt(store, bit_width=bit_width, max_bucket_size=max_bucket_size)
        for kind, key, value in operations:
            if kind == "set":
                kamt.set(key, value)
            elif kind == "delete":
                kamt.delete(key)
        kamt.flush()
        for _cid, data in store.items():
            for pointer in dag_cbor.decode(data)[1]:
                if "l" in pointer and pointer["l"][1] > 0:
                    extended_links += 1
    assert widths == set(range(1, 9))
    assert bucket_sizes == {1, 2, 3}
    assert extended_links > 100


# -- layout -----------------------------------------------------------------------------------


def _key(value: int) -> bytes:
    return value.to_bytes(32, "big")


def test_empty_kamt_flushes_to_the_empty_node() -> None:
    store = MemoryBlockstore()
    assert Kamt(store).flush() == EMPTY_NODE_CID


def test_kamt_bucket_keys_are_written_without_leading_zero_bytes() -> None:
    store = MemoryBlockstore()
    kamt = Kamt(store)
    kamt.set(_key(0x0102), b"\x07")
    # The key's top 5 bits are 0: slot 0 of the root.
    assert store.get(kamt.flush()) == dag_cbor.encode([b"\x01", [{"v": [[b"\x01\x02", b"\x07"]]}]])
    assert dict(Kamt(store, kamt.flush()).items()) == {_key(0x0102): b"\x07"}


def test_kamt_two_keys_sharing_a_prefix_sit_behind_one_extension() -> None:
    """Keys 0b...0 and 0b...1 differ only in the last bit: with bit width 5 the root's slot 0
    links, behind an extension of the 50 shared 5-bit groups after the first, to a node whose
    last (1-bit) group tells them apart."""
    store = MemoryBlockstore()
    kamt = Kamt(store)
    kamt.set(_key(0), b"a")
    kamt.set(_key(1), b"b")
    root = dag_cbor.decode(store.get(kamt.flush()) or b"")
    assert root[0] == b"\x01"
    ((tag, (child, length, path)),) = root[1][0].items()
    assert tag == "l"
    assert length == 250
    assert path == bytes(32)
    child_node = dag_cbor.decode(store.get(child) or b"")
    assert child_node == [b"\x03", [{"v": [[b"", b"a"]]}, {"v": [[b"\x01", b"b"]]}]]


def test_kamt_extension_bits_are_packed_from_the_top_of_the_first_byte() -> None:
    """ref-fvm's ``test_split`` key, bit width 3: after the root's 3 bits the two keys agree
    up to bit 27, so the extension is 8 whole groups (24 bits) from bit 3 on."""
    first = bytearray(32)
    first[:5] = bytes([0b10001000, 0b10010010, 0b10101010, 0b11011011, 0b11101110])
    second = bytearray(first)
    second[3] = 0b11010111
    store = MemoryBlockstore()
    kamt = Kamt(store, bit_width=3)
    kamt.set(bytes(first), b"1")
    kamt.set(bytes(second), b"2")
    root = dag_cbor.decode(store.get(kamt.flush()) or b"")
    ((_cid, length, path),) = (pointer["l"] for pointer in root[1])
    assert length == 24
    assert path == bytes([0b01000100, 0b10010101, 0b01010110])


def test_kamt_set_if_absent_and_membership() -> None:
    kamt = Kamt(MemoryBlockstore())
    assert kamt.set_if_absent(_key(5), 1)
    assert not kamt.set_if_absent(_key(5), 2)
    assert kamt.get(_key(5)) == 1
    assert _key(5) in kamt
    assert _key(6) not in kamt
    assert b"short" not in kamt
    assert not kamt.delete(_key(6))
    assert kamt.delete(_key(5))
    assert kamt.get(_key(5)) is None


def test_kamt_rejects_keys_of_the_wrong_size() -> None:
    kamt = Kamt(MemoryBlockstore())
    with pytest.raises(ValueError, match="32 bytes"):
        kamt.set(b"\x01", 1)
    with pytest.raises(ValueError, match="32 bytes"):
        kamt.get(bytes(33))
    with pytest.raises(ValueError, match="bit width"):
        Kamt(MemoryBlockstore(), bit_width=9)
    with pytest.raises(ValueError, match="at least one entry"):
        Kamt(MemoryBlockstore(), max_bucket_size=0)


# -- canonical form ---------------------------------------------------------------------------


@st.composite
def _clustered_keys(draw: st.DrawFn) -> tuple[int, list[bytes]]:
    """Keys near a random base, so they share long prefixes (the EVM's array slots do)."""
    key_size = draw(st.sampled_from([2, 4, 32]))
    base = draw(st.integers(0, (1 << (8 * key_size)) - 1))
    spread = draw(st.sampled_from([4, 64, 1 << 12]))
    offsets = draw(st.lists(st.integers(0, spread), min_size=1, max_size=40, unique=True))
    top = 1 << (8 * key_size)
    return key_size, sorted({((base + o) % top).to_bytes(key_size, "big") for o in offsets})


@settings(max_examples=300, deadline=None)
@given(
    bit_width=st.sampled_from([1, 2, 3, 5, 8]),
    max_bucket_size=st.sampled_from([1, 2, 3]),
    keys=_clustered_keys(),
    data=st.data(),
)
def test_kamt_root_depends_only_on_final_contents(
    bit_width: int, max_bucket_size: int, keys: tuple[int, list[bytes]], data: st.DataObject
) -> None:
    key_size, pool = keys
    options: dict[str, Any] = {
        "bit_width": bit_width,
        "max_bucket_size": max_bucket_size,
        "key_size": key_size,
    }
    operations = data.draw(
        st.lists(
            st.tuples(st.sampled_from(["set", "delete", "reload"]), st.sampled_from(pool)),
            max_size=120,
        )
    )
    store = MemoryBlockstore()
    kamt = Kamt(store, **options)
    model: dict[bytes, int] = {}
    for step, (kind, key) in enumerate(operations):
        if kind == "set":
            kamt.set(key, step)
            model[key] = step
        elif kind == "delete":
            assert kamt.delete(key) == (key in model)
            model.pop(key, None)
        else:
            kamt = Kamt(store, kamt.flush(), **options)
    for key in pool:
        assert kamt.get(key) == model.get(key)
    assert sorted(kamt.items()) == sorted(model.items())
    fresh = Kamt(MemoryBlockstore(), **options)
    for key, value in sorted(model.items(), reverse=True):
        fresh.set(key, value)
    assert kamt.flush() == fresh.flush()


@settings(max_examples=200, deadline=None)
@given(
    bit_width=st.sampled_from([1, 3, 5]),
    max_bucket_size=st.sampled_from([1, 3]),
    keys=_clustered_keys(),
    data=st.data(),
)
def test_kamt_deleting_down_to_few_entries_folds_back_to_canonical_form(
    bit_width: int, max_bucket_size: int, keys: tuple[int, list[bytes]], data: st.DataObject
) -> None:
    key_size, pool = keys
    options: dict[str, Any] = {
        "bit_width": bit_width,
        "max_bucket_size": max_bucket_size,
        "key_size": key_size,
    }
    keep = data.draw(st.lists(st.sampled_from(pool), max_size=5, unique=True))
    store = MemoryBlockstore()
    kamt = Kamt(store, **options)
    for key in data.draw(st.permutations(pool)):
        kamt.set(key, key)
    kamt = Kamt(store, kamt.flush(), **options)
    for key in data.draw(st.permutations([k for k in pool if k not in keep])):
        assert kamt.delete(key)
    fresh = Kamt(MemoryBlockstore(), **options)
    for key in keep:
        fresh.set(key, key)
    assert kamt.flush() == fresh.flush()


# -- bad input --------------------------------------------------------------------------------


def _link(length: int, path: bytes) -> dict[str, Any]:
    return {"l": [EMPTY_NODE_CID, length, path]}


@pytest.mark.parametrize(
    ("node", "fragment"),
    [
        ([b""], "[bitfield, pointers]"),
        ([b"\x01", [[[b"\x01", 0]]]], "map with one key"),
        ([b"\x01", [{"v": [[b"\x01", 0]], "l": []}]], "map with one key"),
        ([b"\x01", [{"x": []}]], "unknown key"),
        ([b"\x01", [{"v": []}]], "empty KAMT bucket"),
        ([b"\x01", [{"v": [[b"\x01", 0], [b"\x02", 0]]}]], "too many items in bucket 2 > 1"),
        ([b"\x01", [{"v": [[bytes(33), 0]]}]], "more than 32"),
        ([b"\x01", [{"v": [["a", 0]]}]], "key must be a byte string"),
        ([b"\x01", [{"l": [EMPTY_NODE_CID, 0]}]], "[cid, extension length, extension]"),
        ([b"\x01", [_link(3, b"\x00")]], "not a multiple of the bit width 5"),
        ([b"\x01", [_link(255, bytes(32))]], "must be less than 251 bits"),
        ([b"\x01", [_link(10, b"\x00")]], "only 1 bytes"),
        ([b"\x01", [_link(-5, b"")]], "32-bit unsigned"),
        ([b"\x01", [{"l": [CID.hash_of(b"x", RAW), 0, b""]}]], "must be DAG-CBOR"),
        ([b"\x03", [_link(0, b"")]], "doesn't match bitfield"),
    ],
)
def test_kamt_rejects_malformed_node(node: Any, fragment: str) -> None:
    store = MemoryBlockstore()
    cid = put(store, dag_cbor.encode(node))
    with pytest.raises(KamtError) as excinfo:
        list(Kamt(store, cid).items())
    assert fragment in excinfo.value.what
    assert excinfo.value.where is not None
    assert str(cid) in excinfo.value.where
    assert isinstance(excinfo.value, HamtError)


def test_kamt_rejects_unsorted_bucket_by_numeric_key_order() -> None:
    store = MemoryBlockstore()
    # As numbers 0x0100 > 0x02, although b"\x01\x00" < b"\x02" as byte strings.
    cid = put(store, dag_cbor.encode([b"\x01", [{"v": [[b"\x01\x00", 0], [b"\x02", 0]]}]]))
    with pytest.raises(KamtError, match="unsorted"):
        Kamt(store, cid, max_bucket_size=2)


def test_kamt_rejects_an_empty_node_below_the_root() -> None:
    store = MemoryBlockstore()
    put(store, dag_cbor.encode([b"", []]))
    root = put(store, dag_cbor.encode([b"\x01", [_link(0, b"")]]))
    with pytest.raises(KamtError, match="zero pointers"):
        list(Kamt(store, root).items())
