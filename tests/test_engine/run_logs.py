"""What the runs of a work dir logged, run by run."""
import json
import os


def scalar_runs(work_dir) -> list:
    """Per-iteration losses of each run in ``work_dir`` (MMEngine's scalar
    log of each run's timestamped folder, window size 1), oldest first:
    one ``{iteration: loss}`` dict per run, iterations counted from 1."""
    logs = sorted(
        os.path.join(dp, f) for dp, _, fs in os.walk(work_dir) for f in fs
        if f == 'scalars.json')
    runs = []
    for log in logs:
        with open(log) as f:
            records = [json.loads(line) for line in f]
        runs.append({r['iter']: r['loss'] for r in records if 'loss' in r})
    return runs


def merged_losses(work_dir) -> dict:
    """``{iteration: loss}`` over the runs, the latest run's where several
    trained an iteration."""
    losses = {}
    for run in scalar_runs(work_dir):
        losses.update(run)
    return losses
