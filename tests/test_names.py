"""Column names made from user text: usable in pandas and SQL without quoting, unique, stable."""

from __future__ import annotations

from vlbias.utils.names import column_name, column_names


def test_column_names_need_no_quoting_and_stay_unique():
    assert column_name("suspicious person", "p_") == "p_suspicious_person"
    assert [column_name(s) for s in ("agency+", "agency-", "warm", "low-status")] == [
        "agency_pos",
        "agency_neg",
        "warm",
        "low_status",
    ]
    assert column_name("Café (noir)") == "cafe_noir" and column_name("2 people") == "_2_people"
    assert column_name("+") == "x" and column_name("?!", "p_") == "p_x"
    assert column_names(["a b", "a-b", "a_b", "c"], "p_") == ["p_a_b", "p_a_b_2", "p_a_b_3", "p_c"]
    assert column_names(column_names(["agency+", "suspicious person"])) == ["agency_pos", "suspicious_person"]
