"""The fast canonical JSON of envelopes equals RFC 8785 (the rfc8785 library) byte for byte."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from dossier.envelope import leaf_bytes

keys = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
texts = st.text(max_size=40) | st.sampled_from(["（2026）京0105民初123号", "𠀀𪚥😀", '\u2028\x00\x1f\x7f"\\', "é"])
scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | texts
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=20)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=8))
def test_fast_path_equals_rfc8785(doc: dict[str, object]) -> None:
    assert leaf_bytes(doc) == rfc8785.dumps(doc)


def test_floats_and_non_ascii_keys_fall_back_to_rfc8785() -> None:
    for doc in ({"a": 1e21, "b": 0.1}, {"é": 1, "z": 2, "\U0001f600": 3, "\ue000": 4}):
        assert leaf_bytes(doc) == rfc8785.dumps(doc)
