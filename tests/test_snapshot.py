"""Snapshots: Parquet + manifest, content hashes, immutability, atomic writes (real files)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_access.snapshot import (SnapshotError, load_datasets, read_manifest, snapshot_hash,
                                  verify_snapshot, write_snapshot)

CREATED = "2021-07-22T00:00:00+00:00"


def small_trial():
    adsl = pd.DataFrame({
        "USUBJID": ["S1", "S2", "S3"],
        "AGE": [61, 55, 70],
        "RANDDT": pd.to_datetime(["2018-01-10", "2018-02-01", "2018-03-05"]),
        "DTHDT": pd.to_datetime([None, "2019-05-01", None]),
        "DTHFL": [None, "Y", None],
    })
    adqs = pd.DataFrame({
        "USUBJID": ["S2", "S1", "S1"],       # deliberately not sorted: row order must survive
        "PARAMCD": ["ALSFRST", "ALSFRST", "ALSFRST"],
        "ADT": [dt.date(2018, 2, 1), dt.date(2018, 1, 10), None],   # dates as objects, one missing
        "ADTDTC": [None, None, "2018-03"],
        "AVAL": [40.0, 38.0, 37.0],
    })
    allocation = pd.DataFrame({"USUBJID": ["S1", "S2", "S3"], "RANDNO": [1, 2, 3],
                               "ARMCD": ["IL2LD", "PBO", "PBO"],
                               "ARM": ["Low-dose IL-2", "Placebo", "Placebo"],
                               "MASKCD": ["Group A", "Group B", "Group B"]})
    return {"adsl": adsl, "adqs": adqs}, allocation


def write(root, clinical=None, allocation="default", **kw):
    c, a = small_trial()
    kw.setdefault("created", CREATED)
    return write_snapshot(root, clinical if clinical is not None else c,
                          a if isinstance(allocation, str) else allocation,
                          "MIROCALS", dt.date(2021, 7, 22), "test", **kw)


def test_layout_and_manifest(tmp_path):
    root = tmp_path / "snap"
    manifests = write(root)
    assert sorted(p.name for p in (root / "clinical").iterdir()) == ["adqs.parquet", "adsl.parquet", "manifest.json"]
    assert sorted(p.name for p in (root / "allocation").iterdir()) == ["allocation.parquet", "manifest.json"]
    m = read_manifest(root / "clinical")
    assert m == manifests["clinical"]
    assert {k: m[k] for k in ("study", "part", "cut_date", "created", "source", "schema_version")} == {
        "study": "MIROCALS", "part": "clinical", "cut_date": "2021-07-22", "created": CREATED,
        "source": "test", "schema_version": "1.0"}
    for name, rows in {"adsl.parquet": 3, "adqs.parquet": 3}.items():
        digest = hashlib.sha256((root / "clinical" / name).read_bytes()).hexdigest()
        assert m["files"][name] == {"sha256": digest, "rows": rows}
    lines = "".join(f"{n}:{m['files'][n]['sha256']}\n" for n in sorted(m["files"]))
    assert m["content_hash"] == hashlib.sha256(lines.encode()).hexdigest()
    assert snapshot_hash(root / "clinical") == snapshot_hash(root) == m["content_hash"]
    a = read_manifest(root / "allocation")
    assert a["part"] == "allocation" and a["files"]["allocation.parquet"]["rows"] == 3


def test_parquet_types_and_round_trip(tmp_path):
    write(tmp_path)
    schema = pq.read_schema(tmp_path / "clinical" / "adqs.parquet")
    assert schema.field("ADT").type == pa.date32()
    assert schema.field("ADTDTC").type == pa.string()
    assert not schema.metadata or b"pandas" not in schema.metadata     # no index recorded
    assert pq.read_schema(tmp_path / "clinical" / "adsl.parquet").field("DTHDT").type == pa.date32()
    got = load_datasets(tmp_path / "clinical")
    clinical, _ = small_trial()
    expected = clinical["adqs"].assign(ADT=pd.to_datetime(clinical["adqs"]["ADT"]).astype("datetime64[ms]"))
    pd.testing.assert_frame_equal(got["adqs"], expected)
    pd.testing.assert_frame_equal(got["adsl"], clinical["adsl"].assign(
        RANDDT=clinical["adsl"]["RANDDT"].astype("datetime64[ms]"),
        DTHDT=clinical["adsl"]["DTHDT"].astype("datetime64[ms]")))
    assert list(load_datasets(tmp_path / "clinical", names=["adsl"])) == ["adsl"]


def test_all_null_columns_keep_their_kind(tmp_path):
    clinical = {"adae": pd.DataFrame({"USUBJID": ["S1"], "AENDT": [None], "AEOUT": [None]})}
    write(tmp_path, clinical=clinical, allocation=None)
    schema = pq.read_schema(tmp_path / "clinical" / "adae.parquet")
    assert schema.field("AENDT").type == pa.date32() and schema.field("AEOUT").type == pa.string()


def test_byte_identical_output_with_fixed_created(tmp_path):
    write(tmp_path / "a")
    write(tmp_path / "b")
    for part in ("clinical", "allocation"):
        for f in sorted((tmp_path / "a" / part).iterdir()):
            assert f.read_bytes() == (tmp_path / "b" / part / f.name).read_bytes(), f.name


def test_created_defaults_to_now(tmp_path):
    write(tmp_path, created=None)
    created = dt.datetime.fromisoformat(read_manifest(tmp_path / "clinical")["created"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 60


def test_no_allocation_part_when_none(tmp_path):
    manifests = write(tmp_path, allocation=None)
    assert list(manifests) == ["clinical"] and not (tmp_path / "allocation").exists()


def test_snapshots_are_immutable(tmp_path):
    write(tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "clinical").iterdir()}
    write(tmp_path, created="2030-01-01T00:00:00+00:00")    # same content: left untouched
    assert {p.name: p.read_bytes() for p in (tmp_path / "clinical").iterdir()} == before
    changed, _ = small_trial()
    changed["adsl"].loc[0, "AGE"] = 62
    with pytest.raises(SnapshotError, match="immutable"):
        write(tmp_path, clinical=changed)
    assert {p.name: p.read_bytes() for p in (tmp_path / "clinical").iterdir()} == before
    write(tmp_path, clinical=changed, overwrite=True)
    assert load_datasets(tmp_path / "clinical")["adsl"]["AGE"].tolist() == [62, 55, 70]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # no temp dirs left


def test_conflicting_allocation_changes_nothing(tmp_path):
    write(tmp_path)
    before = read_manifest(tmp_path / "clinical")
    new_clinical, alloc = small_trial()
    new_clinical["adsl"].loc[1, "AGE"] = 56
    alloc.loc[0, "ARMCD"] = "PBO"
    with pytest.raises(SnapshotError):
        write(tmp_path, clinical=new_clinical, allocation=alloc)
    assert read_manifest(tmp_path / "clinical") == before      # both parts checked before any write


def test_failed_write_leaves_nothing(tmp_path):
    bad = {"adsl": pd.DataFrame({"USUBJID": ["S1"], "X": [object()]})}
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError)):
        write(tmp_path / "snap", clinical=bad)
    assert not (tmp_path / "snap" / "clinical").exists()
    assert list((tmp_path / "snap").iterdir()) == []


def test_verify_reports_tampering(tmp_path):
    write(tmp_path)
    part = tmp_path / "clinical"
    assert verify_snapshot(part) == []
    with open(part / "adqs.parquet", "ab") as fh:
        fh.write(b"x")
    (part / "adsl.parquet").unlink()
    (part / "extra.parquet").write_bytes(b"")
    assert verify_snapshot(part) == ["adqs.parquet: SHA-256 differs from the manifest",
                                     "adsl.parquet: missing", "extra.parquet: not listed in the manifest"]
    m = json.loads((part / "manifest.json").read_text())
    m["content_hash"] = "0" * 64
    (part / "manifest.json").write_text(json.dumps(m))
    assert "manifest: content_hash does not match its file list" in verify_snapshot(part)


def test_not_a_snapshot(tmp_path):
    with pytest.raises(SnapshotError, match="not a snapshot"):
        read_manifest(tmp_path)


def test_find_allocations_sees_every_allocation_reachable_from_a_data_path(demo_snapshot, tmp_path):
    """One rule for `mirocals serve --blinded` and the dashboard's blinded instance: the
    allocation beside a clinical part, one renamed and buried five levels down, and none in a
    clinical-only copy."""
    import shutil
    from data_access.snapshot import find_allocations
    assert find_allocations(demo_snapshot / "clinical") == [(demo_snapshot / "allocation").resolve()]
    clean = tmp_path / "clean"
    shutil.copytree(demo_snapshot / "clinical", clean / "clinical")
    assert find_allocations(clean) == []
    deep = clean / "a" / "b" / "c" / "d" / "keys"
    shutil.copytree(demo_snapshot / "allocation", deep)
    assert find_allocations(clean) == [deep.resolve()]
