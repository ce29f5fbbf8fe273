"""RunConsole: a warning given in every loader worker of a run, and again
in the main process, reaches the console once, in one line, and the log
file; a line a library prints that the run keeps off the console goes to
the log file."""
import subprocess
import sys

from ..conftest import ROOT

SCRIPT = r'''
import sys, warnings
import torch
from torch.utils.data import DataLoader, Dataset
from mmengine.logging import MMLogger
from fastmim_mm.engine.runner import RunConsole, _Console

class Warns(Dataset):
    def __len__(self):
        return 8
    def __getitem__(self, i):
        warnings.warn('the dataset warns for every sample')
        return torch.tensor(i)

logger = MMLogger.get_instance('run_console', log_file=sys.argv[1])
for handler in logger.handlers:
    if type(handler).__name__ == 'StreamHandler':
        handler.addFilter(_Console())
console = RunConsole.install()
console.attach(logger)
for epoch in range(2):
    for batch in DataLoader(Warns(), batch_size=2, num_workers=2):
        pass
Warns()[0]
print('set param backbone.cls_token as id 0')
logger.warning('a logged warning')
logger.warning('a logged warning')
print('done')
'''


def test_warnings_of_workers_are_shown_once(tmp_path):
    log_file = tmp_path / 'run.log'
    result = subprocess.run([sys.executable, '-c', SCRIPT,
                             str(log_file)],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    console = (result.stdout + result.stderr).splitlines()
    # 2 epochs x 2 workers x 4 samples, then the main process: one line.
    shown = [line for line in console if 'the dataset warns' in line]
    assert len(shown) == 1, console
    assert shown[0].endswith('UserWarning: the dataset warns for every '
                             'sample (<string>:12)')
    assert sum('a logged warning' in line for line in console) == 1
    assert not [line for line in console if 'set param' in line]
    assert console[-1] == 'done'
    log = log_file.read_text()
    assert 'UserWarning: the dataset warns for every sample' in log
    assert 'set param backbone.cls_token as id 0' in log
