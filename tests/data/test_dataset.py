"""UCF101 split files, folder labels, the file-prefix quirk, and class phrases."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipsearch.data.collection import (
    class_phrase,
    load_collection,
    parse_ucf_name,
    read_class_ind,
    read_split_list,
    split_camel_case,
)
from clipsearch.errors import DatasetError

CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
FILES = {
    # real UCF101 quirk: the folder says Handstand, the files say HandStand
    "HandstandPushups": "HandStandPushups",
    "ApplyEyeMakeup": "ApplyEyeMakeup",
    "YoYo": "YoYo",
}


def make_ucf(root: Path, groups: int = 9) -> Path:
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text(
        "".join(f"{i} {c}\r\n" for i, c in enumerate(CLASSES, 1)), newline=""
    )
    train = {k: [] for k in (1, 2, 3)}
    test = {k: [] for k in (1, 2, 3)}
    for label, cls in enumerate(CLASSES, 1):
        folder = root / "UCF-101" / cls
        folder.mkdir(parents=True)
        for g in range(1, groups + 1):
            name = f"v_{FILES[cls]}_g{g:02d}_c01.avi"
            (folder / name).write_bytes(b"")
            for k in (1, 2, 3):
                tested = 7 * (k - 1) < g <= 7 * k
                (test if tested else train)[k].append(
                    f"{cls}/{name}" + ("" if tested else f" {label}")
                )
    for k in (1, 2, 3):
        (lists / f"trainlist0{k}.txt").write_text("\r\n".join(train[k]) + "\r\n", newline="")
        (lists / f"testlist0{k}.txt").write_text("\r\n".join(test[k]) + "\r\n", newline="")
    return root


def test_class_ind_is_one_based_in_order(tmp_path: Path) -> None:
    root = make_ucf(tmp_path)
    assert read_class_ind(root / "ucfTrainTestlist" / "classInd.txt") == CLASSES


def test_split_lists_parse_with_crlf(tmp_path: Path) -> None:
    root = make_ucf(tmp_path)
    train = read_split_list(root / "ucfTrainTestlist" / "trainlist01.txt")
    test = read_split_list(root / "ucfTrainTestlist" / "testlist01.txt")
    assert ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 1) in train
    assert ("YoYo/v_YoYo_g01_c01.avi", None) in test
    assert all(not p.endswith("\r") for p, _ in train + test)


def test_collection_splits_labels_and_prefix_quirk(tmp_path: Path) -> None:
    coll = load_collection(make_ucf(tmp_path))
    assert coll.is_ucf and coll.classes == CLASSES
    assert len(coll.clips) == 27
    quirky = [c for c in coll.clips if c.path.startswith("HandstandPushups/")]
    assert quirky and all("v_HandStandPushups_" in c.path for c in quirky)
    # label from the folder, never from the file prefix
    assert {c.label for c in quirky} == {"HandstandPushups"}
    for k, tested_groups in ((1, range(1, 8)), (2, range(8, 10)), (3, ())):
        test = coll.split(k, "test")
        train = coll.split(k, "train")
        assert {c.group for c in test} == set(tested_groups)
        assert len(test) + len(train) == 27
        assert not {c.path for c in test} & {c.path for c in train}
    clip = next(c for c in coll.clips if c.path == "YoYo/v_YoYo_g08_c01.avi")
    assert clip.splits == {1: "train", 2: "test", 3: "train"}
    assert (clip.group, clip.clip) == (8, 1)


def test_split_number_is_checked(tmp_path: Path) -> None:
    coll = load_collection(make_ucf(tmp_path))
    with pytest.raises(DatasetError, match="split must be one of"):
        coll.split(4, "test")


def test_malformed_class_ind_names_file_and_line(tmp_path: Path) -> None:
    root = make_ucf(tmp_path)
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("1 A\nbogus line here\n")
    with pytest.raises(DatasetError, match=r"classInd.txt:2"):
        load_collection(root)


def test_list_label_outside_class_ind_is_rejected(tmp_path: Path) -> None:
    root = make_ucf(tmp_path)
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text("YoYo/v_YoYo_g08_c01.avi 9\n")
    with pytest.raises(DatasetError, match="outside classInd"):
        load_collection(root)


def test_plain_folder_of_videos(tmp_path: Path) -> None:
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "a.mp4").write_bytes(b"")
    (tmp_path / "b.MKV").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    coll = load_collection(tmp_path)
    assert not coll.is_ucf
    assert {(c.path, c.label) for c in coll.clips} == {("cats/a.mp4", "cats"), ("b.MKV", None)}
    with pytest.raises(DatasetError, match="no ucfTrainTestlist"):
        coll.split(1, "test")


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_collection(tmp_path / "nope")


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("BallRollingLeft", "ball rolling left"),
        ("DotsScattering", "dots scattering"),
        ("PlayingGuitar", "playing guitar"),
        ("JumpingJack", "jumping jacks"),
        ("YoYo", "playing with a yo-yo"),
        ("HandstandPushups", "handstand push-ups"),
        ("BaseballPitch", "a baseball pitch"),
        ("Skijet", "riding a jet ski"),
        ("SomeFolderName", "some folder name"),
    ],
)
def test_class_phrase(name: str, phrase: str) -> None:
    assert class_phrase(name) == phrase


def test_every_ucf101_class_has_a_phrase_in_class_ind_order() -> None:
    from clipsearch.data.ucf101_classes import UCF101_CLASSES, UCF101_PHRASES

    assert len(UCF101_CLASSES) == len(set(UCF101_CLASSES)) == 101
    # classInd.txt numbers the folders in case-insensitive alphabetical order
    assert list(UCF101_CLASSES) == sorted(UCF101_CLASSES, key=str.lower)
    assert UCF101_CLASSES.index("HandstandPushups") + 1 == 37
    assert UCF101_CLASSES[-1] == "YoYo" and UCF101_CLASSES.index("WritingOnBoard") + 1 == 100
    phrases = list(UCF101_PHRASES.values())
    assert len(set(phrases)) == 101
    assert all(p and p == p.strip() and p[0].islower() for p in phrases)


def test_camel_case_split_handles_acronyms_and_digits() -> None:
    assert split_camel_case("HTMLPage2Go") == "html page 2 go"


def test_parse_ucf_name() -> None:
    assert parse_ucf_name("v_HandStandPushups_g08_c01.avi") == ("HandStandPushups", 8, 1)
    assert parse_ucf_name("holiday.mp4") is None


def test_a_link_that_leads_to_no_video_says_why(tmp_path: Path) -> None:
    (tmp_path / "good.mp4").write_bytes(b"\0" * 64)
    (tmp_path / "unplugged.mp4").symlink_to(tmp_path / "drive" / "clip.mp4")
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    (tmp_path / "device.mp4").symlink_to("/dev/null")
    coll = load_collection(tmp_path)
    assert [c.path for c in coll.clips] == ["good.mp4"]
    assert dict(coll.problems) == {
        "device.mp4": "link to something that is not a regular file",
        "loop.mp4": "broken link (it leads round in a loop)",
        "unplugged.mp4": "broken link (its target is missing)",
    }
