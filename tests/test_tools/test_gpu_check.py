"""tools/analysis/gpu_check.sh in its CPU form: the steps of the GPU check
(ops, Mask R-CNN, UperNet, benchmark, end-to-end pre-training with both
decoding paths, decoding alone) run with tiny sizes and land in one table
that says it is a CPU rehearsal, names the models each row ran and what
each ratio compares."""
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
    # Rows say which model ran: tiny ones for the transfers and end to end,
    # the real ViT-B for the benchmark.
    assert 'Mask R-CNN tiny Swin (depths 1-1-1-1, 32 wide), COCO config ' \
        '(128 px LSJ)' in steps
    assert 'UperNet tiny ViT (4 blocks, 64 wide), ADE20K config (128 px ' \
        'crops)' in steps
    assert {
        'benchmark fastmim_vit-b@128 (real model)',
        'benchmark mae_vit-b@224 (real model)'
    } <= set(steps)
    e2e = [r for r in rows if 'end to end' in r['step']]
    assert [r['step'] for r in e2e] == [
        'FastMIM tiny ViT (2 blocks, 64 wide)@128 end to end, decoding on '
        'CPU workers, 2 workers',
        'FastMIM tiny ViT (2 blocks, 64 wide)@128 end to end, decoding on '
        'device (here the CPU), 2 workers'
    ]
    assert all('images/s' in r['result'] for r in e2e)
    # Every ratio says what it compares.
    assert all('time waiting for data / time per iter ' in r['result']
               for r in e2e)
    mae = next(r['result'] for r in rows
               if r['step'] == 'benchmark mae_vit-b@224 (real model)')
    assert 'images/s of fastmim_vit-b@128 / images/s of mae_vit-b@224 ' in mae
    assert '; that / (GFLOPs of mae_vit-b@224 / GFLOPs of ' \
        'fastmim_vit-b@128) ' in mae
    assert mae.endswith('(CPU, 1 step at batch 1: not a speed-up '
                        'measurement)')
    assert 'speed-up' not in ' '.join(r['result'] for r in rows).replace(
        'not a speed-up measurement', '')
    assert any(
        s.startswith('DeviceDecodeDataPreprocessor alone') for s in steps)
    assert 'bare model' not in ' '.join(steps)  # --skip
    assert 'dist_train' not in ' '.join(steps)
    # One table, printed last: a header line, column names, a rule and one
    # line per row.
    table = (out / 'gpu_check.md').read_text().splitlines()
    assert table[0].startswith(
        'gpu_check, CPU rehearsal (no GPU; ') and 'tiny models and data ' \
        'where a row says so' in table[0]
    assert len([line for line in table if line.startswith('| ')]) == \
        len(rows) + 2
    assert proc.stdout.rstrip().endswith(table[-1])
    # The console: the set-up line, a line per row, then the table; the
    # steps' own output is in their logs.
    console = (proc.stdout + proc.stderr).splitlines()
    assert not [
        line for line in console
        if line and not line.startswith(('[gpu_check', '| ', 'gpu_check, '))
    ]
    assert len(console) == 2 * len(rows) + 6
    assert (out / 'gpu_check_logs.tar.gz').stat().st_size > 0
