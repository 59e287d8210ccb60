"""The leak counter of scripts/load_test.py (issue 16, part 4): the load test fails a run when a
blinded session received an arm label or a Treg token in any websocket message. No server here:
the counter is a pure function over one message's bytes, checked on real protobuf messages."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from load_test import leak_tokens  # noqa: E402


def _markdown_msg(text: str) -> bytes:
    """A ForwardMsg as the server sends it: a delta drawing ``text`` as markdown."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    msg = ForwardMsg()
    msg.delta.new_element.markdown.body = text
    return msg.SerializeToString()


CASES = [
    ("| Low-dose IL-2 | 12 |", ["Low-dose IL-2"]),
    ("ARMCD,IL2LD", ["IL2LD"]), ("arm PBO,", ["PBO"]), ("Placebo", ["Placebo"]),
    ("Group A vs Group B", ["Group A", "Group B"]),
    ("PARAMCD TREGPCT", ["TREG"]), ("Regulatory T cells (% of CD4)", ["Regulatory T"]), ("Treg count", ["Treg"]),
    # ordinary words and codes are not leaks
    ("a randomised, double-blind, Placebo-controlled trial", []), ("All participants, 220", []),
    ("Group Allocation concealed", []), ("xPBO2", []), ("PBOPBOIL2LD", ["PBO", "PBO", "IL2LD"]),
    ("Respiratory failure", []),
]


def test_leak_counter_flags_arm_and_treg_tokens_in_messages_and_nothing_else():
    """Text drawn as markdown, and a table, which reaches the browser as Arrow bytes inside the
    ForwardMsg (string values back to back): arm labels, codes and Treg tokens are found, ordinary
    words are not."""
    for text, found in CASES:
        assert leak_tokens(_markdown_msg(text)) == found, text
        assert leak_tokens(text.encode()) == found, text
    import pandas as pd
    from streamlit.dataframe_util import convert_pandas_df_to_arrow_bytes
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    msg = ForwardMsg()
    msg.delta.new_element.dataframe.arrow_data.data = convert_pandas_df_to_arrow_bytes(
        pd.DataFrame({"group": ["Placebo", "Low-dose IL-2"], "code": ["PBO", "PBO"], "n": [110, 110]}))
    assert sorted(leak_tokens(msg.SerializeToString())) == ["Low-dose IL-2", "PBO", "PBO", "Placebo"]
    msg.delta.new_element.dataframe.arrow_data.data = convert_pandas_df_to_arrow_bytes(
        pd.DataFrame({"group": ["All participants"], "n": [220]}))
    assert leak_tokens(msg.SerializeToString()) == []
