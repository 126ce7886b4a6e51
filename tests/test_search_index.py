"""pipeline.search.index: add / re-add / remove runs, search over several runs, model checks, atomicity."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from core.errors import UserError
from pipeline.search.attributes import parse_attributes
from pipeline.search.gallery import load_run
from pipeline.search.index import SearchIndex
from pipeline.search.rank import Query, rank
from test_search import NAMES, SPEC, make_run_folder, unit


def count(ix: SearchIndex, table: str) -> int:
    with sqlite3.connect(ix.db) as con:
        return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def files(ix: SearchIndex) -> list[str]:
    return sorted(p.name for p in ix.vectors.iterdir())   # array files


@pytest.fixture()
def ix(tmp_path) -> SearchIndex:
    return SearchIndex(tmp_path / "index", create=True)


def test_index_search_matches_run_search(tmp_path, ix):
    run = make_run_folder(tmp_path / "run", SPEC)
    status, rec = ix.add_run(run)
    assert status == "added" and rec["n_tracklets"] == 4 and rec["n_identities"] == 3
    for q in (Query(embedding=unit(1, 0, 1, 0)), Query(terms=tuple(parse_attributes("female upper_color=red", NAMES))),
              Query(embedding=unit(0, 1, 0, 0), cameras=("cam2",), t_from=0, t_to=16)):
        direct = rank([load_run(run)], q)
        indexed = rank(ix.galleries(), q)
        assert [r.identity for r in indexed] == [r.identity for r in direct]
        np.testing.assert_allclose([r.score for r in indexed], [r.score for r in direct], atol=0.01)
        assert [r.tracklets for r in indexed][0][0]["camera"] == direct[0].tracklets[0]["camera"]
    assert rank(ix.galleries(), Query(embedding=unit(1, 0, 0, 0)))[0].thumbnails["cam1"] == ["thumbs/1_cam1_0.jpg"]


def test_adding_twice_does_not_duplicate_and_a_change_replaces(tmp_path, ix):
    run = make_run_folder(tmp_path / "run", SPEC)
    ix.add_run(run)
    first = files(ix)
    assert ix.add_run(run)[0] == "unchanged"
    assert ix.add_run(tmp_path / "run" / ".." / "run")[0] == "unchanged"        # the same folder, other spelling
    assert len(ix.runs()) == 1 and count(ix, "tracklets") == 4 and files(ix) == first
    res = rank(ix.galleries(), Query(embedding=unit(1, 0, 0, 0), top=10))
    assert sorted(r.identity for r in res) == [1, 2, 3]
    # the run is re-associated: ids 1 and 2 swap
    make_run_folder(tmp_path / "run", {1: SPEC[2], 2: SPEC[1], 3: SPEC[3]})
    status, rec = ix.add_run(run)
    assert status == "replaced" and rec["id"] == 1 and len(ix.runs()) == 1 and count(ix, "tracklets") == 4
    assert files(ix) != first and len(files(ix)) == 1                       # old array file deleted
    assert rank(ix.galleries(), Query(embedding=unit(1, 0, 0, 0)))[0].identity == 2


def test_removed_run_disappears(tmp_path, ix):
    a = make_run_folder(tmp_path / "a", SPEC)
    b = make_run_folder(tmp_path / "b", {7: [("cam1", 1, 0.0, 5.0, unit(1, 0, 0, 0.01), [0.5] * 5, 10)]})
    ix.add_run(a)
    ix.add_run(b)
    res = rank(ix.galleries(), Query(embedding=unit(1, 0, 0, 0), top=2))
    assert [(r.run, r.identity) for r in res] == [("b", 7), ("a", 1)]
    removed = ix.remove_run("b")
    assert removed["name"] == "b" and len(ix.runs()) == 1 and count(ix, "tracklets") == 4
    assert len(files(ix)) == 1
    assert all(r.run == "a" for r in rank(ix.galleries(), Query(embedding=unit(1, 0, 0, 0))))
    with pytest.raises(UserError, match=r"not in the index .*1:a"):
        ix.remove_run("b")
    ix.remove_run(str(a))                                                       # by path
    assert ix.runs() == [] and count(ix, "identities") == 0 and files(ix) == []


def test_run_of_another_model_is_refused(tmp_path, ix):
    ix.add_run(make_run_folder(tmp_path / "a", SPEC))
    spec4 = {1: [("cam1", 1, 0.0, 5.0, unit(1, 0, 0, 0, 0, 0), None, 10)]}
    with pytest.raises(UserError, match=r"not comparable.*6-d.*4-d|not comparable"):
        ix.add_run(make_run_folder(tmp_path / "dim6", spec4))
    other = tmp_path / "other.onnx"
    other.write_bytes(b"another model, same dimension")
    with pytest.raises(UserError, match="not comparable") as exc:
        ix.add_run(make_run_folder(tmp_path / "same_dim", SPEC, reid=str(other)))
    assert "other" in str(exc.value) and "default" in str(exc.value)
    assert len(ix.runs()) == 1 and len(files(ix)) == 1                         # nothing half-added


def test_a_failed_add_leaves_the_index_as_it_was(tmp_path, ix, monkeypatch):
    """The new run's array file is written before the catalog commit; a failure there removes it and
    a reader meanwhile sees only committed runs."""
    import pipeline.search.index as index_mod

    ix.add_run(make_run_folder(tmp_path / "a", SPEC))
    before = (files(ix), count(ix, "tracklets"), ix.runs())
    seen = []

    def failing_commit(self, g, path, name, digest, stored):
        seen.append((stored["file"] in files(self), len(list(self.galleries()))))
        raise RuntimeError("disk full")
    monkeypatch.setattr(index_mod.SearchIndex, "_commit", failing_commit)
    with pytest.raises(RuntimeError, match="disk full"):
        ix.add_run(make_run_folder(tmp_path / "b", SPEC))
    assert seen == [(True, 1)]
    assert (files(ix), count(ix, "tracklets"), ix.runs()) == before


def test_rollback_inside_the_transaction(tmp_path, ix):
    """A failure after some rows were inserted rolls all of them back."""
    ix.add_run(make_run_folder(tmp_path / "a", SPEC))
    before = count(ix, "tracklets"), count(ix, "identities"), len(ix.runs())
    b = make_run_folder(tmp_path / "b", SPEC)
    g = load_run(b)
    g.gids = np.concatenate([g.gids, g.gids[:1]])        # a duplicate identity: PRIMARY KEY violation mid-insert
    with pytest.raises(sqlite3.IntegrityError):
        ix.add_gallery(g, str(b), "b", "digest")
    assert (count(ix, "tracklets"), count(ix, "identities"), len(ix.runs())) == before
    assert len(files(ix)) == 1


def test_missing_and_empty_indexes(tmp_path):
    with pytest.raises(UserError, match="no search index"):
        SearchIndex(tmp_path / "nothing")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("x")
    with pytest.raises(UserError, match="not a search index"):
        SearchIndex(tmp_path / "busy", create=True)


def test_attribute_search_on_an_index_without_attributes(tmp_path, ix):
    spec = {1: [("cam1", 1, 0.0, 5.0, unit(1, 0, 0, 0), None, 10)]}
    ix.add_run(make_run_folder(tmp_path / "a", spec, names=()))
    g = next(ix.galleries())
    assert g.attributes is None and g.attribute_names == ()
    with pytest.raises(UserError, match="predicts no attributes"):
        parse_attributes("female", g.attribute_names, g.model["name"])
    assert json.loads(json.dumps(ix.runs()[0]["model"]))["dim"] == 4


def test_array_file_round_trip(tmp_path):
    from pipeline.search.arrayfile import read_arrays, write_arrays

    arrays = {"codes": np.arange(-6, 6, dtype=np.int8).reshape(3, 4), "empty": np.zeros((0, 5), np.uint8),
              "flags": np.array([True, False, True]), "t": np.array([0.5, 1.5, 2.5]), "ids": np.array([7], "<i8")}
    layout = write_arrays(tmp_path / "a.bin", arrays)
    assert all(off % 64 == 0 for off, _, _ in layout.values())
    back = read_arrays(tmp_path / "a.bin", json.loads(json.dumps(layout)))
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and np.array_equal(back[k], v)
    assert not back["codes"].flags.writeable


# ---- damage (issue 32, D10) ---------------------------------------------------------------------------------------
def _two_runs(tmp_path, ix):
    a = make_run_folder(tmp_path / "a", SPEC)
    b = make_run_folder(tmp_path / "b", {7: [("cam1", 1, 0.0, 5.0, unit(1, 0, 0, 0.01), [0.5] * 5, 10)]})
    ix.add_run(a)
    ix.add_run(b)
    return a, b


def _scores(ix):
    return [(r.run, r.identity, round(r.score, 6)) for r in rank(ix.galleries(), Query(embedding=unit(1, 0, 0, 0)))]


def _truncate(f):
    f.write_bytes(f.read_bytes()[:100])


def _overwrite(f):               # same size, other bytes in the int8 codes (scores would change silently)
    data = bytearray(f.read_bytes())
    data[0:16] = bytes(16)
    f.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _overwrite, lambda f: f.unlink()], ids=["cut", "overwritten", "deleted"])
def test_a_damaged_vectors_file_names_the_run_and_the_command_that_re_adds_it(tmp_path, ix, damage):
    a, b = _two_runs(tmp_path, ix)
    before = _scores(ix)
    run_b = ix.find_run("b")
    damage(ix.vectors / run_b["file"])
    with pytest.raises(UserError) as exc:         # no partial results, no changed scores
        _scores(ix)
    msg = str(exc.value)
    assert "\n" not in msg and "run 'b' (id 2)" in msg and f"mcmt index add {b} --index {ix.path}" in msg
    assert "'a'" not in msg
    with pytest.raises(UserError, match="run 'b'"):      # --example from the damaged run
        next(ix.galleries([ix.find_run("b")]))
    assert len(list(ix.galleries([ix.find_run("a")]))) == 1      # the intact run alone still reads
    assert ix.add_run(b)[0] == "replaced"                 # the named command repairs it (content unchanged)
    assert _scores(ix) == before


def test_a_changed_catalog_row_is_damage(tmp_path, ix):
    a, b = _two_runs(tmp_path, ix)
    with sqlite3.connect(ix.db) as con:
        con.execute("UPDATE runs SET cameras=? WHERE name='a'", (json.dumps(["cam2", "cam1"]),))
    with pytest.raises(UserError, match=r"run 'a' \(id 1\).*catalog row was changed.*mcmt index add"):
        _scores(ix)


@pytest.mark.parametrize("how", ["emptied", "deleted", "garbage"])
def test_a_damaged_catalog_is_refused_not_replaced(tmp_path, ix, how):
    _two_runs(tmp_path, ix)
    vectors = files(ix)
    if how == "emptied":
        ix.db.write_bytes(b"")
    elif how == "deleted":
        ix.db.unlink()
    else:
        ix.db.write_bytes(b"x" * 8192)
    for create in (True, False):                         # 'mcmt index add' and 'mcmt search --index'
        with pytest.raises(UserError, match=r"catalog .*index.sqlite.* is damaged.*2 run\(s\).*mcmt index add"):
            SearchIndex(ix.path, create=create)
    assert files(ix) == vectors                          # nothing collected, nothing created


def test_search_and_list_commands_on_a_damaged_index(tmp_path, ix, capsys):
    from pipeline.cli import main

    a, b = _two_runs(tmp_path, ix)
    _truncate(ix.vectors / ix.find_run("b")["file"])
    capsys.readouterr()
    assert main(["search", "--index", str(ix.path), "--attributes", "female"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"run 'b' (id 2) of the index {ix.path} is damaged" in err and "cut short" in err
    assert main(["index", "list", "--index", str(ix.path)]) == 1
    out, err = capsys.readouterr()
    assert "2 run(s)" in out and f"mcmt index add {b} --index" in err
    assert main(["index", "add", str(b), "--index", str(ix.path)]) == 0
    assert main(["search", "--index", str(ix.path), "--attributes", "female"]) == 0


def test_an_index_of_version_2_is_upgraded_in_place(tmp_path, ix):
    a, b = _two_runs(tmp_path, ix)
    before = _scores(ix)
    with sqlite3.connect(ix.db) as con:                  # what version 2 wrote
        for col in ("size", "crc32", "checksum"):
            con.execute(f"ALTER TABLE runs DROP COLUMN {col}")
        con.execute("UPDATE meta SET value='2'")
    up = SearchIndex(ix.path)
    assert _scores(up) == before and all(r["crc32"] is not None and r["damage"] is None for r in up.runs())
    _overwrite(up.vectors / up.find_run("a")["file"])
    with pytest.raises(UserError, match="run 'a'.*changed since it was added"):
        _scores(up)
