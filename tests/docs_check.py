"""Check that the documentation names only what exists.

For a Markdown file, :func:`check_document` returns one line per problem,
``FILE:LINE: what is wrong``:

- every relative link and image resolves (a file or folder, and for an
  ``#anchor`` a heading of the target);
- every repository path it names (``configs/...``, ``tools/...``,
  ``projects/...``, ``fastmim_mm/...``, ``tests/...``, ``docs/...``, in
  prose, inline code or code blocks) exists; ``...`` and ``*`` stand for
  any characters and ``{a,b}`` for each of its items, and must match at
  least one file;
- every config it names loads (``Config.fromfile``);
- every ``tools/...`` or ``projects/...`` command (in a shell code block or
  inline code) passes only options its script defines, and its
  ``--cfg-options`` keys exist in the config of the command (checked as
  ``tools/train.py`` checks them); ``--cfg-options`` outside a command must
  fit one of the configs the document names;
- every ``make TARGET`` is a target of the Makefile, and every
  ``fastmim_mm.name`` imports.
"""
import functools
import glob
import importlib
import itertools
import os.path as osp
import re
import shlex
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config

from fastmim_mm.engine.arguments import NEW_KEY_PREFIX, unknown_key_message

ROOT = Path(__file__).resolve().parents[1]

# The documentation: README, contributing guide, guides, model zoo pages.
DOCUMENT_GLOBS = ('README.md', 'CONTRIBUTING.md', 'docs/**/*.md',
                  'configs/**/README.md', 'projects/*/README.md')

_TOP_DIRS = ('configs', 'tools', 'projects', 'fastmim_mm', 'tests', 'docs',
             'requirements', '.ci')
_TOP_FILES = ('setup.py', 'setup.cfg', 'Makefile', '.pre-commit-config.yaml',
              'LICENSE', 'CITATION.cff', 'CONTRIBUTING.md')
_PATH = re.compile(r'(?<![\w./~:$-])((?:' +
                   '|'.join(map(re.escape, _TOP_DIRS)) + r')/[\w.{},*/-]*)')
_FILE = re.compile(r'(?<![\w./-])(' + '|'.join(map(re.escape, _TOP_FILES)) +
                   r')(?![\w-])')
_LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
_URL = re.compile(r'\b(?:https?|mailto):[^\s)>`]+')
_MODULE_NAME = re.compile(r'(?<![\w./])fastmim_mm(?:\.[A-Za-z_]\w*)+')
_CODE_SPAN = re.compile(r'`([^`]+)`')
_FENCE = re.compile(r'^\s*```\s*([\w+-]*)')
_SHELL_LANGUAGES = ('bash', 'sh', 'shell', 'console')
_SCRIPT = re.compile(r'^(?:tools|projects)/\S+\.(?:py|sh)$')
_FLAG_LITERAL = re.compile(r'''['"](--[A-Za-z][\w-]*)['"=)]''')
_FLAG_CASE = re.compile(r'(?<![\w-])(--[A-Za-z][\w-]*)\)')


def documents(root: Path = ROOT) -> List[Path]:
    """The documentation files, sorted."""
    found = set()
    for pattern in DOCUMENT_GLOBS:
        found.update(
            Path(p) for p in glob.glob(str(root / pattern), recursive=True))
    return sorted(p for p in found if p.is_file())


def heading_anchors(text: str) -> set:
    """The anchors GitHub gives the headings of a Markdown text."""
    anchors, seen = set(), {}
    for line, _ in _prose_lines(text):
        match = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
        if not match:
            continue
        slug = re.sub(r'[^\w\- ]', '', match[1].lower()).replace(' ', '-')
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f'{slug}-{count}')
    return anchors


def _prose_lines(text: str) -> Iterator[Tuple[str, int]]:
    """(line, number) of the lines outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fence = None if fence is not None else line
            continue
        if fence is None:
            yield line, number


def _code_blocks(text: str) -> Iterator[Tuple[str, str, int]]:
    """(language, source, first line number) of the fenced code blocks."""
    lines = text.splitlines()
    start = language = None
    for number, line in enumerate(lines, 1):
        match = _FENCE.match(line)
        if not match:
            continue
        if start is None:
            start, language = number, match[1].lower()
        else:
            yield language, '\n'.join(lines[start:number - 1]), start + 1
            start = None


@functools.lru_cache(maxsize=None)
def load_config(path: str) -> Tuple[Optional[Config], str]:
    """(config, '') for a config file that loads, else (None, the error's
    first line)."""
    try:
        return Config.fromfile(path), ''
    except Exception as e:  # noqa: BLE001 - any failure to load is reported
        lines = str(e).strip().splitlines() or [type(e).__name__]
        return None, f'{type(e).__name__}: {lines[0]}'


def _expand(path: str) -> List[str]:
    """``{a,b}`` to one path per item; ``...`` to a wildcard."""
    match = re.search(r'\{([^{}]*)\}', path)
    if match:
        return list(
            itertools.chain.from_iterable(
                _expand(path[:match.start()] + item + path[match.end():])
                for item in match[1].split(',')))
    return [path.replace('...', '*')]


def _matches(pattern: str, root: Path) -> List[Path]:
    if '*' not in pattern:
        return [root / pattern] if (root / pattern).exists() else []
    return [Path(p) for p in glob.glob(str(root / pattern))]


def _line_of(text: str, offset: int) -> int:
    return text.count('\n', 0, offset) + 1


def _sources(script: Path) -> List[Path]:
    """Where the options of a script may be defined besides the script:
    the Python scripts a shell script hands its arguments to, the toolkit
    modules a Python script imports, a project script's sibling modules."""
    text = script.read_text()
    if script.suffix == '.sh':
        names = re.findall(r'[\w/]*\w\.py', text)
        return [
            base / name.lstrip('/') for name in names
            for base in (script.parent, ROOT)
            if (base / name.lstrip('/')).is_file()
        ]
    found = [
        ROOT / (module.replace('.', '/') + '.py')
        for module in re.findall(r'from (fastmim_mm[\w.]*) import', text)
    ]
    if ROOT / 'projects' in script.parents:
        found += sorted(script.parent.glob('*.py'))
    return [path for path in found if path.is_file()]


@functools.lru_cache(maxsize=None)
def script_flags(script: Path) -> frozenset:
    """The ``--options`` a script defines (quoted, or as a shell ``case``
    pattern), in itself or in the files :func:`_sources` names."""
    flags, todo, seen = set(), [script], set()
    while todo:
        source = todo.pop()
        if source in seen:
            continue
        seen.add(source)
        content = source.read_text()
        flags.update(_FLAG_LITERAL.findall(content))
        if source.suffix == '.sh':
            flags.update(_FLAG_CASE.findall(content))
        todo.extend(_sources(source))
    return frozenset(flags)


class _Checker:
    """The checks of one document."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self.root = root
        self.text = path.read_text()
        self.problems: List[str] = []
        self.configs: List[str] = []  # the configs the document names
        kept = dict((n, line) for line, n in _prose_lines(self.text))
        # The text with its code blocks blanked, line numbers kept.
        self.prose = '\n'.join(
            kept.get(n, '') for n in range(1,
                                           len(self.text.splitlines()) + 1))
        try:
            self.name = str(path.relative_to(root))
        except ValueError:
            self.name = str(path)

    def problem(self, line: int, message: str) -> None:
        entry = f'{self.name}:{line}: {message}'
        if entry not in self.problems:
            self.problems.append(entry)

    def run(self) -> List[str]:
        self.check_links()
        self.check_paths()
        self.check_module_names()
        for language, source, first in _code_blocks(self.text):
            if language in _SHELL_LANGUAGES:
                for command, line in self._shell_commands(source, first):
                    self.check_command(command, line)
        for match in _CODE_SPAN.finditer(self.prose):
            span = match[1].replace('\n', ' ')
            line = _line_of(self.prose, match.start())
            self.check_command(span, line)
        return self.problems

    def _scannable(self) -> str:
        """The text without URLs and link targets (line numbers kept)."""
        text = _LINK.sub(lambda m: m[0][:m[0].index('](') + 1], self.text)
        return _URL.sub('', text)

    # Links ---------------------------------------------------------------

    def check_links(self) -> None:
        # Code spans blanked, newlines kept: `[a](b)` in code is no link.
        prose = _CODE_SPAN.sub(lambda m: re.sub(r'[^\n]', ' ', m[0]),
                               self.prose)
        for match in _LINK.finditer(prose):
            target = match[1]
            if _URL.match(target) or target.startswith('<'):
                continue
            line = _line_of(prose, match.start())
            file_part, _, anchor = target.partition('#')
            dest = (self.path.parent / file_part).resolve() \
                if file_part else self.path
            if not dest.exists():
                self.problem(line, f'link {target}: {file_part} does not '
                             f'exist')
                continue
            if anchor and dest.suffix == '.md' and anchor not in \
                    heading_anchors(dest.read_text()):
                self.problem(
                    line, f'link {target}: no heading #{anchor} in '
                    f'{osp.relpath(dest, self.path.parent)}')

    # Paths and configs ---------------------------------------------------

    def check_paths(self) -> None:
        text = self._scannable()
        found = [(m[1], m.start()) for m in _PATH.finditer(text)]
        found += [(m[1], m.start()) for m in _FILE.finditer(text)]
        for raw, offset in found:
            path = raw.rstrip('.,;:')
            line = _line_of(text, offset)
            for pattern in _expand(path):
                matches = _matches(pattern.rstrip('/'), self.root)
                if not matches:
                    self.problem(line, f'{pattern} does not exist')
                for match in matches:
                    self.check_config(match, line)

    def check_config(self, path: Path, line: int) -> None:
        relative = str(path.relative_to(self.root))
        if not (relative.startswith('configs/') and path.suffix == '.py'):
            return
        if relative not in self.configs:
            self.configs.append(relative)
        _, error = load_config(str(path))
        if error:
            self.problem(line, f'config {relative} does not load: {error}')

    # Names of the toolkit ------------------------------------------------

    def check_module_names(self) -> None:
        text = self._scannable()
        for match in _MODULE_NAME.finditer(text):
            if not _resolves(match[0]):
                self.problem(
                    _line_of(text, match.start()),
                    f'{match[0]} does not exist (no such module or '
                    f'attribute)')

    # Commands ------------------------------------------------------------

    @staticmethod
    def _shell_commands(source: str, first: int) -> Iterator[Tuple[str, int]]:
        command, start = '', None
        for number, line in enumerate(source.splitlines(), first):
            if start is None:
                start = number
            if line.rstrip().endswith('\\'):
                command += line.rstrip()[:-1] + ' '
                continue
            yield command + line, start
            command, start = '', None

    def check_command(self, command: str, line: int) -> None:
        try:
            tokens = shlex.split(command, comments=True)
        except ValueError:
            return
        tokens = [t.strip('[]') for t in tokens]
        tokens = [t for t in tokens if t]
        if tokens[:1] == ['time']:
            tokens = tokens[1:]
        if tokens[:1] == ['make'] and len(tokens) > 1:
            target = tokens[1]
            if '=' not in target and target not in _make_targets(self.root):
                self.problem(
                    line, f'make {target}: the Makefile has no '
                    f'target {target!r}')
            return
        script = next((i for i, t in enumerate(tokens) if _SCRIPT.match(t)),
                      None)
        if script is None:
            if '--cfg-options' in tokens:
                self.check_cfg_options(tokens, None, line)
            return
        path = self.root / tokens[script]
        args = tokens[script + 1:]
        if not path.is_file():
            return  # reported by check_paths
        known = script_flags(path)
        for arg in args:
            flag = arg.split('=', 1)[0]
            if flag.startswith('--') and flag not in known:
                self.problem(line, f'{tokens[script]} has no option {flag}')
        config = next(
            (a
             for a in args if a.startswith('configs/') and a.endswith('.py')),
            None)
        self.check_cfg_options(args, config, line)

    def check_cfg_options(self, tokens: List[str], config: Optional[str],
                          line: int) -> None:
        if '--cfg-options' not in tokens:
            return
        keys = []
        for token in tokens[tokens.index('--cfg-options') + 1:]:
            if token.startswith('--'):
                break
            key = token.split('=', 1)[0]
            if '=' not in token or key.startswith(NEW_KEY_PREFIX) or \
                    not re.fullmatch(r'[a-z_][\w.]*', key):
                continue  # a new key, or a placeholder such as KEY=VALUE
            keys.append(key)
        if config is not None:
            candidates = [config]
        else:
            candidates = list(self.configs)
        loaded = [(c, load_config(str(self.root / c))[0]) for c in candidates]
        loaded = [(c, cfg) for c, cfg in loaded if cfg is not None]
        if not loaded:
            return
        for key in keys:
            messages = [unknown_key_message(cfg, key) for _, cfg in loaded]
            if all(m is not None for m in messages):
                where = loaded[0][0] if config else \
                    'any config this document names'
                self.problem(line,
                             f'--cfg-options {key}: {where} {messages[0]}')


def _resolves(name: str) -> bool:
    """Whether a dotted ``fastmim_mm`` name is a module or an attribute of
    one."""
    parts = name.split('.')
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@functools.lru_cache(maxsize=None)
def _make_targets(root: Path) -> frozenset:
    text = (root / 'Makefile').read_text()
    return frozenset(re.findall(r'^([\w.-]+)\s*:(?!=)', text, re.M))


def check_document(path: Path, root: Path = ROOT) -> List[str]:
    """Every problem of one Markdown file, ``FILE:LINE: message`` each."""
    return _Checker(Path(path), Path(root)).run()
