"""The documentation names only what exists (tests/docs_check.py), and the
check fails when it does not."""
import textwrap

import pytest
import yaml

from .docs_check import ROOT, check_document, documents

DOCS = documents()
PRETRAIN = 'configs/fastmim/fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py'  # noqa: E501


def test_the_documentation_is_found():
    names = {str(p.relative_to(ROOT)) for p in DOCS}
    assert {
        'README.md', 'CONTRIBUTING.md', 'configs/fastmim/README.md',
        'docs/en/index.md', 'docs/en/get_started.md',
        'docs/en/user_guides/pretrain.md'
    } <= names


@pytest.mark.parametrize(
    'document', DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_path_config_command_and_link_exists(document):
    problems = check_document(document)
    assert not problems, '\n'.join(problems)


def test_readme_stays_short():
    assert len((ROOT / 'README.md').read_text().splitlines()) <= 200


def test_the_guides_are_linked_from_the_index():
    index = (ROOT / 'docs' / 'en' / 'index.md').read_text()
    guides = sorted((ROOT / 'docs' / 'en').rglob('*.md'))
    missing = [
        str(p.relative_to(ROOT / 'docs' / 'en')) for p in guides
        if p.name != 'index.md'
        and f'({p.relative_to(ROOT / "docs" / "en")})' not in index
    ]
    assert not missing, missing


def test_citation_points_to_the_paper():
    citation = yaml.safe_load((ROOT / 'CITATION.cff').read_text())
    assert citation['cff-version'] == '1.2.0'
    assert citation['license'] == 'Apache-2.0'
    paper, = citation['references']
    assert paper['title'].startswith('FastMIM: Expediting Masked Image')
    assert paper['year'] == 2022
    assert [a['family-names'] for a in paper['authors']
            ] == ['Guo', 'Han', 'Wu', 'Tang', 'Wang', 'Xu']
    assert paper['identifiers'][0]['value'] == 'arXiv:2212.06593'


def test_license_is_the_apache_license_setup_py_declares():
    text = (ROOT / 'LICENSE').read_text()
    assert 'Apache License\n' in text and 'Version 2.0, January 2004' in text
    assert 'END OF TERMS AND CONDITIONS' in text
    assert "license='Apache-2.0'" in (ROOT / 'setup.py').read_text()


def test_the_check_reports_each_broken_reference(tmp_path):
    (tmp_path / 'other.md').write_text('# Some heading\n')
    doc = tmp_path / 'guide.md'
    doc.write_text(
        textwrap.dedent(f"""\
        # Guide

        Good: `{PRETRAIN}`, [other](other.md#some-heading),
        [up](#guide), `fastmim_mm.engine.CheckedLoading`, `make test`.

        ```bash
        python tools/train.py {PRETRAIN} --amp \\
            --cfg-options train_dataloader.dataset.dataset.data_root=x/
        ```

        Broken: {PRETRAIN.replace('800e', '900e')},
        [gone](missing.md), [nowhere](other.md#no-such-heading),
        `fastmim_mm.engine.NoSuchRunner`, `make no-such-target`.

        ```bash
        python tools/analysis/no_such_tool.py --out x
        python tools/train.py {PRETRAIN} --no-such-flag \\
            --cfg-options train_dataloader.dataset.data_root=x/
        ```
        """))
    problems = check_document(doc, root=ROOT)
    name = str(doc)
    assert problems == [
        f'{name}:12: link missing.md: missing.md does not exist',
        f'{name}:12: link other.md#no-such-heading: no heading '
        f'#no-such-heading in other.md',
        f'{name}:11: configs/fastmim/fastmim_vit-base-p16_8xb512-amp-coslr-'
        f'900e_in1k-128px.py does not exist',
        f'{name}:16: tools/analysis/no_such_tool.py does not exist',
        f'{name}:13: fastmim_mm.engine.NoSuchRunner does not exist (no such '
        f'module or attribute)',
        f'{name}:17: tools/train.py has no option --no-such-flag',
        f'{name}:17: --cfg-options train_dataloader.dataset.data_root: '
        f"{PRETRAIN} has no key 'data_root' in train_dataloader.dataset, "
        f"and PerSampleSeedDataset takes no argument 'data_root'. Did you "
        f'mean train_dataloader.dataset.dataset.data_root? (the '
        f'PerSampleSeedDataset in train_dataloader.dataset wraps a '
        f'dataset)',
        f"{name}:13: make no-such-target: the Makefile has no target "
        f"'no-such-target'",
    ]


def test_the_check_reports_a_config_that_does_not_load(tmp_path):
    (tmp_path / 'configs').mkdir()
    (tmp_path / 'configs' /
     'broken.py').write_text("_base_ = './no_such_base.py'\n")
    doc = tmp_path / 'guide.md'
    doc.write_text('Run `configs/broken.py`.\n')
    problems = check_document(doc, root=tmp_path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        'guide.md:1: config configs/broken.py does not load: ')
    assert 'no_such_base.py' in problems[0]
