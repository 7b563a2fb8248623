"""MultiWorkerMirroredStrategy for real: two local worker processes on loopback, both running
`trainer.task.run_fn` with distribution='auto' and the same FnArgs (as TFX's Trainer would give
every replica), TF_CONFIG naming a 2-worker cluster. Only the chief may write the model."""
import os
import pathlib
import time

import trainer_harness

WORKERS = 2
TIMEOUT_SECONDS = 900  # both workers, imports included; the test fails (and kills) beyond it


def test_two_workers_train_together_and_only_the_chief_exports(trainer_inputs, tmp_path):
    config = trainer_inputs.train_config(tmp_path / "out", distribution="auto")
    # TFX gives every replica the same FnArgs: one serving_model_dir, one model_run_dir.
    fn_args = trainer_inputs.fn_args_spec(config, tmp_path / "run",
                                          serving_model_dir=tmp_path / "model" / "Format-Serving")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in trainer_harness.free_ports(WORKERS)]}
    workers = []
    try:
        for index in range(WORKERS):
            workers.append(trainer_harness.start_trainer(
                tmp_path / f"worker{index}", fn_args,
                tf_config={"cluster": cluster, "task": {"type": "worker", "index": index}}))
        for worker in workers:
            worker.wait(max(1.0, TIMEOUT_SECONDS - (time.monotonic() - worker.started)))
    finally:
        for worker in workers:
            worker.kill()  # no-op for a finished worker
    for worker in workers:
        assert worker.popen.returncode == 0 and worker.result(), worker.describe()

    chief, other = (worker.result() for worker in workers)
    for index, (worker, result) in enumerate(zip(workers, (chief, other))):
        # `auto` resolved to multi_worker_mirrored from TF_CONFIG, over both processes.
        assert "Distribution strategy: multi_worker_mirrored (requested auto)" in worker.stderr
        assert f"task_id = {index}, num_workers = 2" in worker.stderr
        report = worker.strategy_report()
        assert report["replicas"] == 2, report
        [strategy] = result["strategies"]
        assert strategy["class"] in ("MultiWorkerMirroredStrategy",
                                     "CollectiveAllReduceStrategy"), strategy
        assert strategy["num_replicas_in_sync"] == 2
        assert (strategy["task_type"], strategy["task_id"]) == ("worker", index)
        assert "10/10" in worker.stdout  # every step of the epoch, in lock-step
    assert chief["strategies"][0]["is_chief"] and not other["strategies"][0]["is_chief"]

    serving_dir = pathlib.Path(fn_args["serving_model_dir"])
    # The chief exported into serving_model_dir; the other worker took part in saving (it
    # must, under MWMS) but into a scratch directory of its own, deleted afterwards.
    assert [(e["export_dir"], e["saved_model"]) for e in chief["exports"]] == [
        (str(serving_dir), True)]
    [scratch] = other["exports"]
    assert scratch["saved_model"] and not scratch["exists_after_run_fn"]
    assert not pathlib.Path(scratch["export_dir"]).is_relative_to(serving_dir)
    assert pathlib.Path(scratch["export_dir"]).is_relative_to(workers[1].directory / "tmp")

    # One SavedModel in the whole test directory: the chief's, at the serving_model_dir root.
    assert trainer_harness.saved_models_under(tmp_path) == [serving_dir]
    assert sorted(os.listdir(serving_dir)) == ["assets", "fingerprint.pb", "saved_model.pb",
                                               "variables"]
