"""The README is a user's document of about 300 lines, its long material in docs/; every link
there leads somewhere, and every command it shows names a script that exists and flags that
script takes."""
import os
import re

import pytest

from tests.commands import ROOT

DOCS = ['README.md'] + [os.path.join('docs', f) for f in sorted(os.listdir(
    os.path.join(ROOT, 'docs'))) if f.endswith('.md')]
LINK = re.compile(r'\]\(([^)\s]+)\)')


def read(path):
    return open(os.path.join(ROOT, path)).read()


def anchors(text):
    """GitHub's anchors of the headings of a markdown text."""
    return {re.sub(r'[^\w\- ]', '', line.lstrip('#').strip().lower()).replace(' ', '-')
            for line in text.splitlines() if line.startswith('#')}


def test_the_readme_is_about_300_lines():
    assert len(read('README.md').splitlines()) <= 330


@pytest.mark.parametrize('doc', DOCS)
def test_every_relative_link_leads_to_a_file_and_heading(doc):
    for target in LINK.findall(read(doc)):
        if re.match(r'[a-z]+://', target):
            continue
        path, _, anchor = target.partition('#')
        file = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        assert os.path.isfile(os.path.join(ROOT, file)), f'{doc}: {target} is not a file'
        if anchor:
            assert anchor in anchors(read(file)), f'{doc}: {target} names no heading'


def commands(text):
    """Every `python X.py ...` and `bash run.sh ...` command of a markdown text: the lines of
    its code blocks (continuations joined) and its inline code."""
    found = []
    for block in re.findall(r'```bash\n(.*?)```', text, re.S):
        found += block.replace('\\\n', ' ').splitlines()
    found += re.findall(r'`((?:python|bash run\.sh) [^`]+)`', text)
    return [c.split('#')[0].strip() for c in found
            if c.strip().startswith(('python ', 'bash run.sh '))]


def known_flags(path):
    return set(re.findall(r"add_argument\(\s*'(--\w+)'", read(path)))


SCRIPTS = {'train': 'train.py', 'eval': 'eval.py', 'predict': 'predict.py',
           'export': 'export.py', 'bench': 'bench.py'}
# the flags run.sh passes to paddle.distributed.launch
LAUNCHER = set(re.findall(r'--\w+', next(line for line in read('run.sh').splitlines()
                                         if '--nproc_per_node|' in line))) | {'--gpus'}


def flags_of(command):
    """(script path, the flags it accepts) of a README command line."""
    words = command.split()
    if words[0] == 'bash':
        mode = words[2]
        if mode in ('demo', 'test', 'setup'):
            return 'run.sh', set()
        script = SCRIPTS[mode]
    elif words[1] == '-m':
        script = words[2].replace('.', '/') + '.py'
    else:
        script = words[1]
    known = known_flags(script) | {'--help'}
    if script in ('train.py', 'eval.py', 'predict.py', 'export.py'):
        known |= known_flags('configs/cli.py') | LAUNCHER
    return script, known


@pytest.mark.parametrize('doc', DOCS)
def test_every_command_names_a_script_and_flags_it_takes(doc):
    shown = commands(read(doc))
    assert len(shown) >= (20 if doc == 'README.md' else 0)
    for command in shown:
        script, known = flags_of(command)
        assert os.path.isfile(os.path.join(ROOT, script)), f'{doc}: {command}'
        for flag in re.findall(r'(?<![\w-])(--\w+)', command):
            assert flag in known, f'{doc}: {command}: {script} takes no {flag}'


@pytest.mark.parametrize('doc', DOCS)
def test_each_override_has_its_own_o(doc):
    """-o takes one SECTION.key=value: a second one after it is an argument argparse refuses."""
    loose = re.findall(r'-o [A-Z]+\.\w+=\S+ [A-Z]+\.\w+=\S+', read(doc))
    assert not loose, f'{doc}: {loose}'
