"""The private APIs the toolkit uses were checked against the installed
versions: an upgrade of any of these libraries fails here until each
wrapper in fastmim_mm/compat/private_api.py is re-checked."""
import importlib
import pathlib
import re

import pytest

from fastmim_mm.compat.private_api import CHECKED_VERSIONS, OVERRIDDEN

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / 'fastmim_mm'


@pytest.mark.parametrize('name', sorted(CHECKED_VERSIONS))
def test_installed_versions_are_the_checked_ones(name):
    installed = importlib.import_module(name).__version__.split('+')[0]
    checked = CHECKED_VERSIONS[name]
    assert installed == checked or installed.startswith(checked + '.'), (
        f'{name} {installed} is installed; the private APIs in '
        f'fastmim_mm/compat/private_api.py were checked against {checked}')


def test_no_private_api_outside_the_wrapper_module():
    """Outside private_api.py no module reaches into another library's
    underscored names (``x._name`` on an object that is not our own)."""
    found = []
    for path in PACKAGE.rglob('*.py'):
        if path.name == 'private_api.py':
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split('#')[0]
            for match in re.finditer(r'(\w+)\._[a-z]\w*', code):
                # os._exit: public, documented despite its underscore.
                if match[1] not in ('self', 'cls', 'super') and \
                        match[0] != 'os._exit':
                    found.append(f'{path.name}:{number}: {line.strip()}')
    assert not found, found


def test_overridden_private_methods_exist_and_are_listed():
    """Every private method a toolkit class overrides is in OVERRIDDEN and
    still exists upstream."""
    from mmengine.runner import Runner

    from fastmim_mm.engine import FastMIMRunner
    overridden = sorted(f'mmengine.runner.Runner.{name}'
                        for name in vars(FastMIMRunner)
                        if name.startswith('_') and not name.startswith('__')
                        and callable(getattr(Runner, name, None)))
    assert overridden == sorted(OVERRIDDEN)
    for path in OVERRIDDEN:
        assert callable(getattr(Runner, path.rsplit('.', 1)[-1]))
