"""What the scripts print: no known Paddle noise, aligned epoch lines, progress where no bar
is drawn, and closing lines naming every output and the time taken."""
import json
import re

import pytest

import console
import eval as eval_script
import results
import train
from configs import cli
from test_noise import assert_quiet
from tests.commands import command
from tests.tiny import make_demo_data, write_tiny_config


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """A tiny demo dataset and a config that trains on it in seconds."""
    root = tmp_path_factory.mktemp('console')
    data = make_demo_data(root / 'data', seed=3)
    return root, write_tiny_config(root, data)


def test_train_eval_predict_export_print_their_outputs_and_no_paddle_noise(demo):
    root, config = demo
    status, out = command('train.py', '--config', config, '--fix_random_seed')
    assert status == 0, out
    assert_quiet(out)
    assert '{"epoch"' not in out  # no raw log rows
    log = json.loads((root / 'run/train_log.json').read_text())
    for row in log:  # (best): the best so far
        e = row['epoch']
        best = max(range(1, e + 1), key=lambda k: (log[k - 1]['valid_top1'], -k))
        line = (f"epoch {e}/2  loss {row['train_loss']:7.4f}  top1 "
                f"{row['train_top1']:.3f}  val top1 {row['valid_top1']:.3f} top5 "
                f"{row['valid_top5']:.3f}{' (best)' if e == best else '       '}  lr ")
        assert line in out
    run = root / 'run'
    assert re.search(r'trained epochs 1-2 in \d+\.\d s; best validation top-1 '
                     rf"{log[best - 1]['valid_top1']:.3f} at epoch {best}\n", out)
    for line in (f'best weights     {run}/TSM_best', f'last checkpoint  {run}/TSM_epoch2',
                 f'curves           {run}/train_curves.png',
                 f'log              {run}/train_log.csv, train_log.json, train.log',
                 f'config           {run}/config.yaml'):
        assert f' INFO   {line}\n' in out

    status, out = command('eval.py', '--config', config)
    assert status == 0, out
    assert_quiet(out)
    folder = root / 'eval'
    assert re.search(r'scored 6 videos in \d+\.\d s \(\d+\.\d s in all\)\n', out)
    for line in (f'metrics    {folder}/TSM_eval.json',
                 f'per class  {folder}/per_class.csv, per_class.png',
                 f'confusion  {folder}/confusion.csv, confusion.png',
                 f'top-5      {folder}/top5.csv'):
        assert f' INFO   {line}\n' in out

    video = str(root / 'data' / (root / 'data/val.list').read_text().split()[0])
    status, out = command('predict.py', '--config', config, '--video_path', video)
    assert status == 0, out
    assert_quiet(out)
    assert re.search(r'1 video predicted in \d+\.\d s\n', out)
    assert (f" INFO   predictions  {root / 'predict'}/TSM_predict.json, TSM_predict.jsonl\n"
            in out)

    status, out = command('export.py', '--config', config, '--weights', str(run / 'TSM_best'),
                          '--save_dir', str(root / 'export'))
    assert status == 0, out
    assert_quiet(out)
    assert re.search(r'exported in \d+\.\d s, checked against the dynamic model on Paddle '
                     r'Inference\n', out)
    program = 'TSM.json' if (root / 'export/TSM.json').exists() else 'TSM.pdmodel'
    for line in (f"model     {root / 'export'}/{program}, TSM.pdiparams",
                 f"settings  {root / 'export'}/TSM.yaml"):
        assert f' INFO   {line}\n' in out


def test_train_shows_progress_where_no_bar_is_drawn_and_titles_its_plot(
        demo, tmp_path, monkeypatch, capsys):
    """Where stderr is no terminal (here, pytest's capture), a step line comes at least every
    PROGRESS_SECONDS even with log_interval 0; the curves are titled config: run folder."""
    root, config = demo
    titles = []
    monkeypatch.setattr(console, 'PROGRESS_SECONDS', 0)
    monkeypatch.setattr(results, 'train_curves',
                        lambda rows, path, title='': titles.append(title))
    save_dir = str(tmp_path / 'run')
    with pytest.raises(SystemExit) as exit_:
        cli.run('train', train.main, ['--config', config, '--save_dir', save_dir])
    assert exit_.value.code == 0
    err = capsys.readouterr().err
    steps = re.findall(r'INFO epoch (\d)  step (\d)/2  loss \d+\.\d{4}  top1 \d\.\d{3}  '
                       r'clips/s \d+\.\d  lr \S+  \d+ s\n', err)
    assert steps == [('1', '1'), ('1', '2'), ('2', '1'), ('2', '2')]
    assert titles == [f'cfg.yaml: {save_dir}'] * 2


def test_no_line_before_its_time(monkeypatch, capsys):
    clock = iter([0.0, 10.0, 29.0, 31.0, 40.0, 62.0])
    monkeypatch.setattr(console, 'clock', lambda: next(clock))
    cli.setup_logging()
    progress = console.Progress(5, 'eval')
    for _ in range(5):
        progress.update({})
    progress.close()
    err = capsys.readouterr().err
    assert re.findall(r'eval  step (\d)/5  +(\d+) s', err) == [('3', '31'), ('5', '62')]


def test_eval_titles_its_plots(demo, tmp_path, monkeypatch):
    root, config = demo
    if not (root / 'run/TSM_best').exists():  # made by the first test
        assert command('train.py', '--config', config)[0] == 0
    titles = []
    monkeypatch.setattr(results, 'write_evaluation',
                        lambda *args, title='', **kwargs: titles.append(title))
    save_dir = str(tmp_path / 'eval')
    with pytest.raises(SystemExit) as exit_:
        cli.run('eval', eval_script.main, ['--config', config, '--save_dir', save_dir,
                                           '--dynamic'])
    assert exit_.value.code == 0
    assert titles == [f'cfg.yaml: {save_dir}']


@pytest.mark.parametrize('seconds, text', [(0.44, '0.4 s'), (9.96, '10 s'), (59.4, '59 s'),
                                           (185, '3 min 05 s'), (7265, '2 h 01 min')])
def test_duration(seconds, text):
    assert console.duration(seconds) == text


def test_epoch_lines_align():
    rows = [{'epoch': 1, 'lr': 0.0, 'train_loss': 12.3456789, 'train_top1': 0.1, 'dropped': 0,
             'valid_top1': 0.5, 'valid_top5': 0.9},
            {'epoch': 10, 'lr': 0.00125, 'train_loss': 1.5, 'train_top1': 0.5, 'dropped': 2},
            {'epoch': 11, 'lr': 0.000125, 'train_loss': 0.25, 'train_top1': 0.75, 'dropped': 0,
             'valid_top1': 0.625, 'valid_top5': 1.0, 'valid_dropped': 1}]
    lines = [console.epoch_line(r, 12, 11, s) for r, s in zip(rows, (92.4, 88, 1000))]
    assert lines == [
        'epoch  1/12  loss 12.3457  top1 0.100  val top1 0.500 top5 0.900         '
        'lr 0         92 s',
        'epoch 10/12  loss  1.5000  top1 0.500                                    '
        'lr 0.00125   88 s  (2 videos not decoded)',
        'epoch 11/12  loss  0.2500  top1 0.750  val top1 0.625 top5 1.000 (best)  '
        'lr 0.000125  1000 s  (1 video not decoded)']
    assert console.epoch_line(rows[1], 12, None, 88, validation=False) == (
        'epoch 10/12  loss  1.5000  top1 0.500  lr 0.00125   88 s  (2 videos not decoded)')


def test_a_window_run_prints_its_segments_and_each_window_with_verbose(demo, tmp_path,
                                                                        capsys):
    import predict
    root, config = demo
    if not (root / 'run/TSM_best').exists():  # made by the first test
        assert command('train.py', '--config', config)[0] == 0
    video = str(root / 'data' / (root / 'data/val.list').read_text().split()[0])
    names = (root / 'data/labels.txt').read_text().split()
    flags = ['--config', config, '--video_path', video, '--window', '0.5', '--dynamic',
             '--save_dir', str(tmp_path), '--no_plots']
    for verbose in ([], ['--verbose']):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            cli.run('predict', predict.main, flags + verbose)
        assert exit_.value.code == 0
        out, err = capsys.readouterr()
        timeline = json.loads((tmp_path / 'TSM_timeline.json').read_text())
        windows, segments = timeline['windows'], timeline['segments']
        assert len(windows) > 2
        printed = [line for line in out.splitlines() if line.startswith('window')]
        assert printed == ([f"window {w['start']:8.2f}-{w['end']:8.2f}s: "
                            f"{w['top_k'][0]['name']} {w['top_k'][0]['prob']:.3f}"
                            for w in windows] if verbose else [])
        assert out.splitlines()[len(printed):] == [
            f"segment {s['start']:.2f}-{s['end']:.2f}s: {names[s['label']]} {s['score']:.3f}"
            for s in segments]
        assert re.search(rf'INFO {len(segments)} segments? from {len(windows)} windows of 0.5 s '
                         rf'\(0.25 s apart\) in \d+\.\d s\n', err)
        assert f' INFO   timeline  {tmp_path}/TSM_timeline.json\n' in err
        assert f' INFO   segments  {tmp_path}/TSM_segments.csv\n' in err
