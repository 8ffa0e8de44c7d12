"""The packages depend on each other in one direction only, read from the import statements:
no import cycles, the network never imports its weights code or the config, the reader never
imports the model or the config."""
import ast
import os

from tests.commands import ROOT

PACKAGES = ('configs', 'models', 'reader')
NETWORK = ('models.tsm', 'models.resnet', 'models.shift', 'models.online', 'models.fused',
           'models.device')


def _module_name(path):
    rel = os.path.relpath(path, ROOT)[:-len('.py')].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def _imports(path, name):
    """The project modules `path` (module `name`) imports, anywhere in the file."""
    tree = ast.parse(open(path).read())
    package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(parts + ([base] if base else []))
            found.add(base)
            found.update(f'{base}.{alias.name}' for alias in node.names)
    return found


def import_graph():
    modules = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for file in files:
                if file.endswith('.py'):
                    path = os.path.join(folder, file)
                    modules[_module_name(path)] = path
    return {name: {m for m in _imports(path, name) if m in modules and m != name}
            for name, path in modules.items()}


def test_no_import_cycles():
    graph = import_graph()
    assert 'models.weights.convert' in graph and 'reader.decode' in graph
    done, stack = set(), []

    def visit(name):
        if name in stack:
            raise AssertionError('import cycle: ' + ' -> '.join(stack[stack.index(name):]
                                                               + [name]))
        if name in done:
            return
        stack.append(name)
        for other in graph[name]:
            # a package imports its own modules to export them; that is no cycle
            if not other.startswith(name + '.'):
                visit(other)
        stack.pop()
        done.add(name)
    for name in graph:
        visit(name)


def test_layers_point_one_way():
    graph = import_graph()
    for name in NETWORK:
        bad = {m for m in graph[name]
               if m.startswith(('models.weights', 'models.deploy', 'configs', 'reader'))}
        assert not bad, f'{name} imports {bad}'
    for name, imported in graph.items():
        if name.startswith('reader'):
            bad = {m for m in imported if m.startswith(('models', 'configs'))}
            assert not bad, f'{name} imports {bad}'


def scripts():
    """{module name: path} of the scripts: the .py files of the root, data/ and benchmarks/
    that run as programs (an `if __name__ == '__main__'` block). A benchmark is importable by
    its folder's name or by its own (run from its folder, the folder is on sys.path)."""
    found = {}
    for folder in ('', 'data', 'benchmarks'):
        for file in sorted(os.listdir(os.path.join(ROOT, folder))):
            path = os.path.join(ROOT, folder, file)
            if file.endswith('.py') and "__name__ == '__main__'" in open(path).read():
                stem = file[:-len('.py')]
                found[f'{folder}.{stem}' if folder else stem] = path
                if folder == 'benchmarks':
                    found[stem] = path
    return found


def test_scripts_import_modules_never_other_scripts():
    found = scripts()
    assert {'train', 'eval', 'predict', 'export', 'bench', 'data.extract_frames',
            'benchmarks.bench_torch'} <= set(found)
    for name, path in found.items():
        own = {n for n, p in found.items() if p == path}
        imported = {m for m in _imports(path, name) if m in found and m not in own}
        assert not imported, f'{os.path.relpath(path, ROOT)} imports the scripts {imported}'


def test_the_weights_code_imports_no_deployment_code():
    graph = import_graph()
    weights = [name for name in graph if name.startswith('models.weights')]
    assert 'models.deploy.cache' in graph and len(weights) > 5
    for name in weights:
        bad = {m for m in graph[name] if m.startswith('models.deploy')}
        assert not bad, f'{name} imports {bad}'


IMPORT_ALL = """
import importlib, json, os, pkgutil, sys
import av, cv2, numpy, paddle, PIL, yaml  # what they do on import is theirs (cv2 sets a path)
before = dict(os.environ)
import models, reader, configs
for package in (models, reader, configs):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):
        importlib.import_module(info.name)
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
print(json.dumps({'changed': changed, 'modules': len([m for m in sys.modules
                                                     if m.startswith('models.')])}))
"""


def test_importing_the_packages_changes_nothing_in_the_environment():
    """Choosing MKL's code path and the like happens when a script starts, never on import."""
    import json
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ('MKL_DEBUG_CPU_TYPE',
                                                              'MKL_ENABLE_INSTRUCTIONS')}
    proc = subprocess.run([sys.executable, '-c', IMPORT_ALL], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result['modules'] > 20 and result['changed'] == []


# Modules that rename on their own terms: folders published whole (checkpoints, exports,
# frame folders, downloads with their `.part` and rejected files), and outputs.py, which
# writes every other file through a temporary name.
RENAMERS = {'outputs.py', 'models/weights/checkpoint.py', 'models/weights/download.py',
            'models/deploy/cache.py', 'data/extract_frames.py'}


def test_files_are_replaced_through_outputs_alone():
    for folder in ('', 'configs', 'models', 'reader', 'data', 'benchmarks'):
        for base, _, files in os.walk(os.path.join(ROOT, folder)):
            if folder == '' and base != ROOT:
                continue
            for file in files:
                path = os.path.join(base, file)
                rel = os.path.relpath(path, ROOT)
                if file.endswith('.py') and rel not in RENAMERS:
                    text = open(path).read()
                    assert 'os.replace(' not in text and 'os.rename(' not in text, (
                        f'{rel}: write through outputs.replacing or outputs.replacing_path')
