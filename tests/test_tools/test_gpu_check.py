"""tools/analysis/gpu_check.sh in its CPU form: the steps of the GPU check
(ops, Mask R-CNN, UperNet, benchmark, end-to-end pre-training with both
decoding paths, decoding alone) run with tiny sizes and land in one
table."""
import json
import os
import subprocess

from ..conftest import ROOT


def test_gpu_check_cpu_form(tmp_path):
    out = tmp_path / 'out'
    proc = subprocess.run(
        [
            'bash',
            str(ROOT / 'tools' / 'analysis' / 'gpu_check.sh'),
            '--device',
            'cpu',
            '--out',
            str(out),
            '--work-dir',
            str(tmp_path / 'work'),
            # Left out for time: the bare-model row runs
            # benchmark_pretrain.py again (as the benchmark rows do), and
            # dist_train.sh on CPU is tests/test_engine/test_distributed.py's.
            '--skip',
            'bare,nccl'
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads((out / 'gpu_check.json').read_text())
    steps = [r['step'] for r in rows]
    assert all(r['status'] == 'ok' for r in rows), rows
    assert steps[0].startswith('detection ops')
    assert 'routed to torchvision on [\'cpu\']' in rows[0]['result']
    assert 'max |diff| 0.0e+00' in rows[0]['result']
    assert any(s.startswith('Mask R-CNN') for s in steps)
    assert any(s.startswith('UperNet') for s in steps)
    assert {'benchmark fastmim_vit-b@128', 'benchmark mae_vit-b@224'} <= \
        set(steps)
    e2e = [r for r in rows if 'end to end' in r['step']]
    assert len(e2e) == 2 and all('images/s' in r['result'] for r in e2e)
    assert any(
        s.startswith('DeviceDecodeDataPreprocessor alone') for s in steps)
    assert 'bare model' not in ' '.join(steps)  # --skip
    assert 'dist_train' not in ' '.join(steps)
    # One table, printed last: a header line, column names, a rule and one
    # line per row.
    table = (out / 'gpu_check.md').read_text().splitlines()
    assert table[0].startswith('gpu_check on CPU only')
    assert len([line for line in table if line.startswith('| ')]) == \
        len(rows) + 2
    assert proc.stdout.rstrip().endswith(table[-1])
    assert (out / 'gpu_check_logs.tar.gz').stat().st_size > 0
