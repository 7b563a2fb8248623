"""Fault tolerance for real: a Trainer SIGKILLed mid-epoch and run again with the same FnArgs
resumes from its last BackupAndRestore backup (config.backup_root), not from step 0. The kill
is injected at a fixed point (right after a given backup), so the test does not depend on how
fast the machine is."""
import glob
import os
import pathlib
import re
import signal

import trainer_harness

EPOCHS = 6
BATCH_SIZE = 20  # 330 training examples -> 16 steps per epoch, so TensorBoard logs every step
STEPS_PER_EPOCH = 330 // BATCH_SIZE
BACKUP_EVERY_STEPS = 2
# The injected crash: right after the first backup at or past this (epoch, batch). Epoch 1, as
# the first epoch also traces the model; batch 5, the middle of the first half of the epoch.
KILL_AFTER_BACKUP = (1, 5)
KILL_TIMEOUT_SECONDS = 600


def test_killed_trainer_resumes_from_its_backup_not_from_step_0(trainer_inputs, tmp_path):
    config = trainer_inputs.train_config(
        tmp_path / "out", epochs=EPOCHS, train_batch_size=BATCH_SIZE,
        checkpoint_every_steps=BACKUP_EVERY_STEPS)
    fn_args = trainer_inputs.fn_args_spec(config, tmp_path / "run")
    train_events = os.path.join(fn_args["model_run_dir"], "train", "events.out.tfevents.*")

    # The kill point is set, not raced: the process kills itself after that backup.
    first = trainer_harness.start_trainer(tmp_path / "first", fn_args,
                                          kill_after_backup=KILL_AFTER_BACKUP)
    try:
        first.popen.wait(timeout=KILL_TIMEOUT_SECONDS)
    finally:
        first.kill()  # whatever happened: leave no trainer behind
    assert first.popen.returncode == -signal.SIGKILL, first.describe()
    assert first.result() is None  # run_fn never returned ...
    assert trainer_harness.saved_models_under(tmp_path) == []  # ... nor exported

    # What the second run will restore: the last backup before the kill.
    backup = trainer_harness.backup_checkpoint_state(config.backup_root)
    assert backup and (backup["epoch"], backup["batch"]) >= KILL_AFTER_BACKUP, backup
    assert backup["epoch"] == KILL_AFTER_BACKUP[0] and backup["batch"] < KILL_AFTER_BACKUP[1] + \
        BACKUP_EVERY_STEPS, backup  # the first backup at or past the kill point
    epoch, batch, iterations = backup["epoch"], backup["batch"], backup["iterations"]
    assert 1 <= epoch < EPOCHS and 0 <= batch < STEPS_PER_EPOCH - 1, backup  # mid-epoch
    assert iterations == epoch * STEPS_PER_EPOCH + batch + 1, backup  # optimizer steps taken
    events_of_first_run = set(glob.glob(train_events))
    assert events_of_first_run

    second = trainer_harness.run_trainer(tmp_path / "second", fn_args)
    report = second.strategy_report()
    assert (report["epochs"], report["steps_per_epoch"]) == (EPOCHS, STEPS_PER_EPOCH), report

    # TensorBoard's record of the second run (its own event file in model_run_dir): epochs
    # from the backed-up one on, and train steps numbered on from the backup, one per step.
    events_of_second_run = sorted(set(glob.glob(train_events)) - events_of_first_run)
    assert len(events_of_second_run) == 1, events_of_second_run
    scalars = trainer_harness.tensorboard_scalars(events_of_second_run)
    assert scalars["epoch_loss"] == list(range(epoch, EPOCHS))
    assert scalars["batch_loss"] == list(range(iterations + 1, EPOCHS * STEPS_PER_EPOCH + 1))
    # The progress output (trainer/progress.py) agrees: it started in the interrupted epoch.
    epochs_shown = re.findall(r"^training: epoch (\d+)/(\d+) done", second.stdout, re.MULTILINE)
    assert epochs_shown == [(str(e + 1), str(EPOCHS)) for e in range(epoch, EPOCHS)]

    # The resumed run finished: exported, and its backup is gone (nothing left to resume).
    assert trainer_harness.saved_models_under(tmp_path) == [
        pathlib.Path(fn_args["serving_model_dir"])]
    assert trainer_harness.backup_checkpoint_state(config.backup_root) is None
