import pickle

import pytest
import torch

from rnnkit.errors import UserError
from rnnkit.train.checkpoint import FORMAT, load_checkpoint, save_atomic


def _complete(**parts):
    """A checkpoint with every part save_atomic's readers require, as the trainer writes it."""
    state = {
        "format": FORMAT,
        "model": {"w": torch.randn(3, 4, dtype=torch.float64)},
        "artifacts": {"vocab": ["<unk>", "a"]},
        "loop": {"step": 7, "epoch": 1},
        "optimizer": {"state": {}, "param_groups": []},
        "schedule": {},
        "rng": {"torch": torch.get_rng_state()},
        "task_loop": {},
    }
    state.update(parts)
    return state


def test_round_trip_is_bit_exact(tmp_path):
    state = _complete()
    path = tmp_path / "ck" / "last.pt"
    save_atomic(state, path)
    back = load_checkpoint(path)
    assert torch.equal(back["model"]["w"], state["model"]["w"]) and back["loop"] == state["loop"]
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"]) and back["artifacts"] == state["artifacts"]
    assert not [p for p in path.parent.iterdir() if p.name != "last.pt"]  # no temp files left behind


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "last.pt"
    save_atomic(_complete(v=1), path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_atomic(_complete(v=Boom()), path)
    assert load_checkpoint(path)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_checkpoint_missing_a_part_is_refused_naming_it(tmp_path):
    path = tmp_path / "last.pt"
    state = _complete()
    del state["optimizer"]
    save_atomic(state, path)
    with pytest.raises(UserError, match=r"missing or damaged: optimizer\)"):
        load_checkpoint(path)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_loading_never_executes_code(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": FORMAT, "x": Evil()}, f)
    with pytest.raises(UserError, match="not a loadable rnnkit checkpoint"):
        load_checkpoint(path)


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(UserError, match="not an rnnkit checkpoint"):
        load_checkpoint(path)
