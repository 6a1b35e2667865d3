"""Epoch checkpoints, so that a killed run (a kill, a crash, a Slurm timeout or preemption) resumes from its last
finished epoch and ends as an uninterrupted run would (bitwise on the CPU); and saving a run's trained model.

A checkpoint folder belongs to one `fslib.engine.training.train` call. It holds `state.pt`, overwritten at every
epoch end
but the last: the weights, the optimiser, the schedule, the gradient scaler, every random generator the loop draws
from (torch's, CUDA's, Python's `random`, the data order's, the surgery's), the outcome so far (steps, selection,
training and surgery logs) and what the caller records alongside (its rows). With `select: best` the best weights so
far lie beside it in `best-<step>.pt`, written only when they change (a large model's checkpoint stays one copy of
the weights and the optimiser, plus the best weights). Every file goes through a temporary file and a rename,
`state.pt` last, so a kill at any moment leaves the last epoch's checkpoint whole.

The checkpoint is written after the epoch's evaluation, when the surgery's statistics have just been reset: a
resumed epoch starts exactly where the next epoch of the uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from fslib.core.files import make_shareable, replace_folder, save_pretrained, write_atomic

CHECKPOINT_DIR = "checkpoint"  # in a run's folder, removed once the run has written its rows
MODEL_DIR = "model"  # in a run's folder: the model `save_model` asks for
STATE_FILE = "state.pt"


class EpochCheckpoint:
    """The checkpoint folder of one training stage. `identity` names what is trained (the config hash and the
    stage): a checkpoint of anything else found in the folder is discarded. `save_extra()` returns the caller's
    state to keep with each checkpoint (tensors, numbers, strings, lists and dicts of them), `restore_extra(state)`
    puts it back when training resumes."""

    def __init__(self, folder: Path | str, identity: str, save_extra: Callable[[], dict] | None = None,
                 restore_extra: Callable[[dict], None] | None = None):
        self.folder, self.identity = Path(folder), identity
        self.save_extra, self.restore_extra = save_extra, restore_extra

    def load(self, total_steps: int) -> dict | None:
        """The state saved at the last epoch end (with `best_state`, the best weights, or None), the caller's
        extra state restored; None when there is none for this stage and length, in which case whatever the folder
        held is removed (a checkpoint of another config, or the data changed since)."""
        path = self.folder / STATE_FILE
        try:
            state = torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None
            if state is not None and state["identity"] == self.identity and state["total_steps"] == total_steps:
                best = state.pop("best_file")
                state["best_state"] = torch.load(self.folder / best, map_location="cpu",
                                                 weights_only=True) if best else None
            else:
                state = None
        except Exception as error:  # written atomically, so only a damaged disk gets here: start over
            print(f"{path}: unreadable checkpoint ({type(error).__name__}: {error}); training from the start",
                  file=sys.stderr)
            state = None
        if state is None:
            self.remove()
            return None
        for stray in self.folder.glob("best-*.pt"):  # written by the killed attempt after its last state.pt
            if stray.name != best:
                stray.unlink()
        if self.restore_extra:
            self.restore_extra(state.pop("extra"))
        print(f"resuming {self.identity} after epoch {state['epoch']} (step {state['outcome']['steps']}) from "
              f"{path}", file=sys.stderr)
        return state

    def save(self, state: dict, best_state: dict | None, best_step: int) -> None:
        """Write the state of an epoch end (from `capture`) and the best weights so far (taken after step
        `best_step`)."""
        best = f"best-{best_step}.pt" if best_state is not None else None
        if best and not (self.folder / best).exists():
            write_atomic(self.folder / best, lambda temporary: torch.save(best_state, temporary))
        extra = plain(self.save_extra()) if self.save_extra else {}
        write_atomic(self.folder / STATE_FILE, lambda temporary: torch.save(
            {**state, "identity": self.identity, "best_file": best, "extra": extra}, temporary))
        for old in self.folder.glob("best-*.pt"):  # only after state.pt stops naming them
            if old.name != best:
                old.unlink()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def capture(epoch: int, total_steps: int, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler,
            scaler: torch.amp.GradScaler, generator: torch.Generator, surgeon, outcome, best_score: float) -> dict:
    """The training loop's state at the end of `epoch`."""
    rng = {"torch": torch.get_rng_state(), "python": random.getstate(), "data_order": generator.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    if surgeon is not None:
        rng["surgery"] = surgeon.state_dict()  # the surgeon's whole state: its generator and any of its own
    return {"epoch": epoch, "total_steps": total_steps, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "rng": rng, "outcome": plain(dataclasses.asdict(outcome)), "best_score": float(best_score)}


def plain(value):
    """`value` with numpy scalars (metrics are) turned into Python numbers: a checkpoint holds only what
    `torch.load(weights_only=True)` reads back."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(item) for item in value)
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        return value.item()
    return value


def restore(state: dict, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler,
            scaler: torch.amp.GradScaler, generator: torch.Generator, surgeon, outcome) -> None:
    """Put the state of `capture` back into the loop's objects (the model's parameters are copied in place, so
    the flat gradient views stay attached)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if state["scaler"]:  # a disabled scaler's state is empty
        scaler.load_state_dict(state["scaler"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    generator.set_state(rng["data_order"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    if surgeon is not None:
        if "surgery" not in rng:
            raise ValueError("the checkpoint was written without a surgeon; this run has one: it cannot resume")
        saved = rng["surgery"]  # a checkpoint written before surgeons had a state_dict holds the generator's state
        surgeon.load_state_dict(saved if isinstance(saved, dict) else {"rng": saved})
    for name, value in state["outcome"].items():
        setattr(outcome, name, value)


def save_trained_model(model: torch.nn.Module, tokenizer, folder: Path) -> None:
    """`save_pretrained` of the model and the tokenizer into `folder`, replacing what it held once the new one is
    complete, every file readable as the umask allows (safetensors writes 0600, which a group on shared storage
    cannot read)."""
    replace_folder(folder, lambda partial: save_pretrained(partial, model, tokenizer))


def copy_model(source: Path, folder: Path) -> None:
    """A copy of a saved model's folder (a source model, as a zero-shot run's model), replaced as a whole."""
    def fill(partial: Path) -> None:
        shutil.copytree(source, partial)
        make_shareable(partial)

    replace_folder(folder, fill)
