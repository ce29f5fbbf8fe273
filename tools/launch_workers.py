"""Start the processes of a distributed run with a readable console; what
tools/dist_train.sh, tools/dist_test.sh and tools/slurm_train.sh run.

    launch_workers.py PROG torchrun [torchrun arguments] SCRIPT [ARGS]
    launch_workers.py PROG exec COMMAND [ARGS]         (srun ..., say)

- A line the processes write to stderr reaches the console once, however
  many processes write it (an error each of them reports, a warning each
  of them gives), and of the one-line errors ("train.py: error: ...") the
  first: what the others report of the same failure in their own words
  goes to the log file, where every line goes.
- The launcher's own report (torchrun's ChildFailedError with its 40 lines,
  its warnings, srun's per-task exit lines) goes to the log file only. When
  a process failed without writing an error line, one line names it and
  the log file.
- The exit status is the failed process's: the status it exited with (75:
  stopped by a signal after saving a checkpoint, see PreemptionHook), or
  128 + the signal that killed it.
- SIGTERM and SIGUSR1 sent to the launcher go to the training processes
  (torchrun) or to COMMAND, and the launcher waits for them to exit.

The log file is LAUNCH_LOG if set (kept), else a temporary file that is
removed when the run succeeds or was stopped with a checkpoint.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

PREEMPTED_EXIT_CODE = 75  # fastmim_mm.engine.hooks.PREEMPTED_EXIT_CODE
FORWARDED = (signal.SIGTERM, signal.SIGUSR1)
# A process's one-line error: "train.py: error: ...".
ERROR_LINE = re.compile(r'^\S+: error: ')
# The launcher's per-task lines, for the log file only.
LOG_ONLY = re.compile(r'^srun: (error: .*: tasks? [\d,-]+: (Exited with exit '
                      r'code \d+|Killed|Terminated)|Job step aborted)')


class LogFile:
    """The log file, written by the relay and by ``logging`` alike."""

    def __init__(self, path: str) -> None:
        self._file = open(path, 'ab')
        self._lock = threading.Lock()

    def write_bytes(self, raw: bytes) -> None:
        with self._lock:
            self._file.write(raw)
            self._file.flush()

    def write(self, text: str) -> None:
        self.write_bytes(text.encode(errors='replace'))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._file.close()


class Console:
    """Receives what the processes write to stderr (through fd 2) and
    passes each line on to the console once, and to the log file."""

    def __init__(self, log: LogFile) -> None:
        self.log = log
        self.error_shown = False
        self._console = os.fdopen(os.dup(2), 'wb', buffering=0)
        read_fd, self._write_fd = os.pipe()
        self._saved_fd2 = os.dup(2)
        os.dup2(self._write_fd, 2)
        self._thread = threading.Thread(
            target=self._relay, args=(read_fd, ), daemon=True)
        self._thread.start()

    def _relay(self, read_fd: int) -> None:
        shown = set()
        dropping = False  # the lines under a line not shown again
        with os.fdopen(read_fd, 'rb') as pipe:
            for raw in pipe:
                self.log.write_bytes(raw)
                line = raw.decode(errors='replace').rstrip()
                if line[:1].isspace():
                    if dropping:
                        continue
                elif line:
                    error = bool(ERROR_LINE.match(line))
                    dropping = (
                        line in shown or bool(LOG_ONLY.match(line))
                        or error and self.error_shown)
                    if dropping:
                        continue
                    shown.add(line)
                    self.error_shown |= error
                self._console.write(raw)

    def close(self) -> None:
        """Stop receiving; returns once the processes' lines are through
        (or after 10 s, should an orphaned process hold the pipe)."""
        os.dup2(self._saved_fd2, 2)
        os.close(self._saved_fd2)
        os.close(self._write_fd)
        self._thread.join(timeout=10)

    def say(self, message: str) -> None:
        self._console.write((message + '\n').encode())


def _children() -> list:
    """Process ids of this process's children (Linux /proc)."""
    me, found = os.getpid(), []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces or parentheses.
        if int(stat.rsplit(')', 1)[1].split()[1]) == me:
            found.append(int(entry))
    return found


def _forward_signals(targets) -> None:
    """SIGTERM and SIGUSR1 to this process go to ``targets()`` instead."""

    def forward(signum, frame):
        for pid in targets():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    for sig in FORWARDED:
        signal.signal(sig, forward)


def _status(code: int) -> int:
    return 128 - code if code < 0 else code


def _describe(code: int) -> str:
    if code < 0:
        return f'was killed by {signal.Signals(-code).name}'
    return f'ended with exit status {code}'


def run_torchrun(prog: str, argv: list, console: Console, log_path: str):
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import \
        ChildFailedError
    from torch.distributed.run import parse_args, run

    # torchrun's messages (its OMP_NUM_THREADS notice, the failures it sees,
    # the processes it stops; torch's log handler writes to sys.stderr) go
    # to the log file only. The processes write to fd 2, the console.
    sys.stderr = console.log
    # torchrun would stop the processes on SIGTERM, killing them after
    # 30 s (and die of SIGUSR1); here both reach them and torchrun waits.
    _forward_signals(_children)
    try:
        run(parse_args(['--signals-to-handle=SIGINT,SIGHUP,SIGQUIT', *argv]))
        return 0
    except ChildFailedError as e:
        console.log.write(str(e) + '\n')
        failures = e.failures

        def order(rank):  # what torchrun stopped itself comes last
            code = failures[rank].exitcode
            return (code < 0, code == -signal.SIGTERM,
                    failures[rank].timestamp, rank)

        rank = min(failures, key=order)
        code = failures[rank].exitcode
        if code != PREEMPTED_EXIT_CODE and not console.error_shown:
            console.say(f'{prog}: error: the process of rank {rank} '
                        f'{_describe(code)}; torchrun\'s report is in '
                        f'{log_path}')
        return _status(code)
    except SignalException as e:  # SIGINT, SIGHUP, SIGQUIT
        console.say(f'{prog}: stopped by {signal.Signals(e.sigval).name}; '
                    f'torchrun stopped the processes.')
        return 128 + e.sigval
    except Exception as e:  # rendezvous, ports, arguments
        console.log.write(f'{type(e).__name__}: {e}\n')
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        console.say(f'{prog}: error: torchrun could not start the processes '
                    f'({type(e).__name__}: {first}); see {log_path}')
        return 1


def run_command(prog: str, argv: list, console: Console, log_path: str):
    try:
        proc = subprocess.Popen(argv)
    except OSError as e:
        console.say(f'{prog}: error: cannot run {argv[0]}: {e.strerror}')
        return 127
    _forward_signals(lambda: [proc.pid])
    code = proc.wait()
    if code not in (0, PREEMPTED_EXIT_CODE) and not console.error_shown:
        console.say(f'{prog}: error: {os.path.basename(argv[0])} '
                    f'{_describe(code)}; its messages are in {log_path}')
    return _status(code)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] not in ('torchrun', 'exec'):
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        return 2
    prog, mode, rest = argv[0], argv[1], argv[2:]
    log_path = os.environ.get('LAUNCH_LOG')
    keep_log = bool(log_path)
    if not keep_log:
        fd, log_path = tempfile.mkstemp(prefix=f'{prog}-', suffix='.log')
        os.close(fd)
    log = LogFile(log_path)
    console = Console(log)
    try:
        run = run_torchrun if mode == 'torchrun' else run_command
        code = run(prog, rest, console, log_path)
    finally:
        console.close()
        log.close()
    if not keep_log and code in (0, PREEMPTED_EXIT_CODE):
        os.remove(log_path)
    return code


if __name__ == '__main__':
    sys.exit(main())
