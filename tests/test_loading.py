"""enrich.loading (select, HandSequenceDataset) and enrich.export (npz, Parquet) on the bundled samples."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from enrich.export import export_contacts_parquet, export_npz
from enrich.loading import HandSequenceDataset, fit_median_residual_2d, fit_observed_fraction, select
from enrich.records import ClipResult
from enrich.store import open_results


@pytest.fixture(scope="module")
def results_path(sample_results: Path) -> Path:
    return sample_results


@pytest.fixture(scope="module")
def records(results_path: Path) -> dict[str, ClipResult]:
    with open_results(results_path) as results:
        return {r.video_id: r for r in results}


def ids(selected) -> list[str]:
    return [r.video_id for r in selected]


def test_samples_are_as_expected(records: dict[str, ClipResult]) -> None:
    assert set(records) == {"2", "13201", "80962"}
    assert {vid: r.meta.class_id for vid, r in records.items()} == {"2": 68, "13201": 79, "80962": 55}
    assert "right" in records["2"].hands and len(records["2"].contacts.segments.hand) > 0


def test_select_by_class_and_template(results_path: Path, records: dict[str, ClipResult]) -> None:
    assert ids(select(results_path, class_ids=[68])) == ["2"]
    assert ids(select(results_path, class_ids={79, 55})) == ["13201", "80962"]
    assert ids(select(results_path, class_ids=[])) == []
    expected = [vid for vid, r in records.items() if "pretending" in r.meta.template.lower()]
    assert expected and ids(select(results_path, template="PRETENDING to")) == expected
    # an open Results works as well as a path, and conditions combine
    with open_results(results_path) as results:
        assert ids(select(results, template="pretending", class_ids=[79])) == ["13201"]


def test_select_by_hand_and_contact(results_path: Path, records: dict[str, ClipResult]) -> None:
    for side in ("left", "right"):
        assert ids(select(results_path, hand=side)) == [vid for vid, r in records.items() if side in r.hands]
    assert "2" in ids(select(results_path, hand="right"))
    with_segments = [vid for vid, r in records.items() if len(r.contacts.segments.hand) > 0]
    assert "2" in with_segments
    assert ids(select(results_path, in_contact=True)) == with_segments
    assert ids(select(results_path, in_contact=False)) == [vid for vid in records if vid not in with_segments]
    with pytest.raises(ValueError, match="hand"):
        list(select(results_path, hand="both"))


def test_select_by_fit_quality(results_path: Path, records: dict[str, ClipResult]) -> None:
    fits = {vid: [t.fit for t in r.hands.values() if t.fit is not None] for vid, r in records.items()}
    medians = sorted({fit_median_residual_2d(f) for fs in fits.values() for f in fs})
    fractions = sorted({fit_observed_fraction(f) for fs in fits.values() for f in fs})
    # the residual thresholds below then split the samples; the observed fractions may all be 1 (the lift drops
    # 13201's last, inconsistent detection rather than filling a gap towards it)
    assert len(medians) >= 2
    for threshold in medians:
        expected = [vid for vid, fs in fits.items() if any(fit_median_residual_2d(f) <= threshold for f in fs)]
        assert ids(select(results_path, max_residual_2d_px=threshold)) == expected
    for threshold in fractions:
        expected = [vid for vid, fs in fits.items() if any(fit_observed_fraction(f) >= threshold for f in fs)]
        assert ids(select(results_path, min_observed=threshold)) == expected
    # the median is over observed frames only: unobserved rows hold -1 and must not pull it down
    fit = next(iter(records["80962"].hands.values())).fit  # its one hand; the side vote is a near tie
    n = len(fit)
    observed = np.arange(n) >= n - 3
    residual = np.where(observed, 0.0, -1.0).astype(np.float32)
    residual[observed] = [6.0, 2.0, 4.0]
    assert fit_median_residual_2d(replace(fit, residual_2d_px=residual, observed=observed)) == 4.0
    assert fit_median_residual_2d(replace(fit, observed=np.zeros(n, bool))) == float("inf")
    # hand and quality apply to the same track: a right hand that is good enough
    good = [vid for vid, r in records.items() if "right" in r.hands and r.hands["right"].fit is not None]
    assert ids(select(results_path, hand="right", max_residual_2d_px=medians[-1])) == good


def check_item(item: dict, record: ClipResult, start_row: int, n: int) -> None:
    fit = record.hands[item["side"]].fit
    rows = slice(start_row, start_row + n)
    for name in ("global_orient", "hand_pose", "transl", "joints3d"):
        assert item[name].dtype == torch.float32
        np.testing.assert_array_equal(item[name].numpy(), getattr(fit, name)[rows])
    np.testing.assert_array_equal(item["betas"].numpy(), fit.betas)
    assert item["observed"].dtype == torch.bool
    np.testing.assert_array_equal(item["observed"].numpy(), fit.observed[rows])
    np.testing.assert_array_equal(item["frame_index"].numpy(), fit.frame_index[rows])
    assert item["start"] == int(fit.frame_index[start_row])
    assert item["class_id"] == record.meta.class_id and item["video_id"] == record.video_id


def fitted_tracks(records: dict[str, ClipResult]) -> list[tuple[str, str, int]]:
    return [(vid, side, len(t.fit)) for vid, r in records.items() for side, t in r.hands.items() if t.fit is not None]


def test_dataset_whole_tracks(results_path: Path, records: dict[str, ClipResult]) -> None:
    tracks = fitted_tracks(records)
    dataset = HandSequenceDataset(results_path)
    assert len(dataset) == len(tracks)
    for i, (vid, side, n) in enumerate(tracks):
        item = dataset[i]
        assert (item["video_id"], item["side"]) == (vid, side)
        assert item["global_orient"].shape == (n, 3) and item["hand_pose"].shape == (n, 45)
        assert item["betas"].shape == (10,) and item["transl"].shape == (n, 3)
        assert item["joints3d"].shape == (n, 21, 3) and item["observed"].shape == (n,)
        check_item(item, records[vid], 0, n)
    # records in memory give the same items; filters choose tracks
    in_memory = HandSequenceDataset(list(records.values()))
    assert len(in_memory) == len(dataset)
    check_item(in_memory[0], records[tracks[0][0]], 0, tracks[0][2])
    assert [dataset.index(i)[:2] for i in range(len(dataset))] == [t[:2] for t in tracks]
    only_right = HandSequenceDataset(results_path, filters={"hand": "right"})
    assert [only_right.index(i)[:2] for i in range(len(only_right))] == [t[:2] for t in tracks if t[1] == "right"]
    dataset.close()


@pytest.mark.parametrize(("window", "stride"), [(8, 4), (16, 16), (12, None)])
def test_dataset_windows(results_path: Path, records: dict[str, ClipResult], window: int, stride: int | None) -> None:
    step = stride or window
    tracks = fitted_tracks(records)
    expected = [(vid, side, s) for vid, side, n in tracks for s in range(0, n - window + 1, step)]
    assert sum(max(0, (n - window) // step + 1) for _, _, n in tracks) == len(expected)
    dataset = HandSequenceDataset(results_path, window=window, stride=stride)
    assert [dataset.index(i) for i in range(len(dataset))] == expected
    for i, (vid, _, start) in enumerate(expected):
        item = dataset[i]
        assert item["joints3d"].shape == (window, 21, 3) and item["observed"].shape == (window,)
        check_item(item, records[vid], start, window)
    assert len(HandSequenceDataset(results_path, window=10_000)) == 0  # tracks shorter than a window give none
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_dataset_in_dataloader_workers(results_path: Path, records: dict[str, ClipResult]) -> None:
    dataset = HandSequenceDataset(results_path, window=8, stride=8)
    dataset[0]  # the parent has an open handle now: workers must not use it
    loader = DataLoader(dataset, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    assert sum(len(b["video_id"]) for b in batches) == len(dataset)
    first = batches[0]
    assert first["hand_pose"].shape == (4, 8, 45) and first["observed"].dtype == torch.bool
    for k in range(4):
        vid, side, start = dataset.index(k)
        fit = records[vid].hands[side].fit
        np.testing.assert_array_equal(first["joints3d"][k].numpy(), fit.joints3d[start : start + 8])
    dataset.close()


def test_export_npz_round_trips(results_path: Path, records: dict[str, ClipResult], tmp_path: Path) -> None:
    assert export_npz(results_path, tmp_path) == len(records)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{vid}.npz" for vid in records)
    for vid, record in records.items():
        with np.load(tmp_path / f"{vid}.npz") as archive:  # no allow_pickle: every array is plain
            assert int(archive["class_id"]) == record.meta.class_id
            assert str(archive["template"]) == record.meta.template
            for side in ("left", "right"):
                track = record.hands.get(side)
                assert (f"{side}_keypoints2d" in archive.files) == (track is not None)
                if track is None:
                    continue
                np.testing.assert_array_equal(archive[f"{side}_keypoints2d"], track.keypoints2d)
                np.testing.assert_array_equal(archive[f"{side}_keypoints2d_frame_index"], track.frame_index)
                for name in ("global_orient", "hand_pose", "betas", "transl", "joints3d", "frame_index", "observed"):
                    value = archive[f"{side}_{name}"]
                    assert value.dtype == getattr(track.fit, name).dtype
                    np.testing.assert_array_equal(value, getattr(track.fit, name))


def test_export_contacts_parquet(results_path: Path, records: dict[str, ClipResult], tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    counts = export_contacts_parquet(results_path, tmp_path)
    with open_results(results_path) as results:
        for table, read in (("contacts", results.contacts), ("segments", results.segments)):
            exported = pd.read_parquet(tmp_path / f"{table}.parquet")
            assert list(exported.columns)[0] == "video_id" and counts[table] == len(exported)
            expected = pd.concat([read(vid).assign(video_id=vid) for vid in records], ignore_index=True)
            expected = expected[list(exported.columns)]
            pd.testing.assert_frame_equal(exported, expected, check_dtype=False)
            for column in exported.columns.drop(["video_id", "hand"]):
                assert exported[column].dtype == expected[column].dtype


def test_export_parquet_without_pyarrow(results_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)  # import pyarrow now raises ImportError
    with pytest.raises(ImportError, match="pip install pyarrow"):
        export_contacts_parquet(results_path, tmp_path)


def test_vertices_come_from_the_recorded_hand_model(results_path: Path, records: dict[str, ClipResult]) -> None:
    from enrich.loading import hand_models_of, mesh_vertices

    with open_results(results_path) as results:
        models = hand_models_of(results)
    track = records["2"].hands["right"]
    vertices = mesh_vertices(track, models["right"])
    assert vertices.shape == (len(track.fit), models["right"].n_vertices, 3)
    # the mesh surrounds its own skeleton: each frame's vertex centroid lies within 5 cm of the joints' centroid
    gap_m = np.linalg.norm(vertices.mean(1) - track.joints3d.mean(1), axis=-1)
    assert np.all(gap_m < 0.05)
